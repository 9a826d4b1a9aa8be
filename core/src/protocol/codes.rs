//! Kafka error codes, by their protocol names.
//!
//! Every Kafka error code Sluice sends, in one table.

/// No error.
pub const NONE: i16 = 0;
/// A record batch failed its CRC or framing checks.
pub const CORRUPT_MESSAGE: i16 = 2;
/// The request's API version is not supported by the broker.
pub const UNSUPPORTED_VERSION: i16 = 35;
/// The record batch uses a compression codec the broker does not know.
pub const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;

// The broker's codes (Kafka's numbering, from the protocol specification).

/// The requested offset is outside the partition's log.
pub const OFFSET_OUT_OF_RANGE: i16 = 1;
/// The topic or partition does not exist on this broker.
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
/// There is no leader for this partition right now (an election is in progress).
pub const LEADER_NOT_AVAILABLE: i16 = 5;
/// This broker does not lead the partition; refresh metadata.
pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
/// The request did not complete in time.
pub const REQUEST_TIMED_OUT: i16 = 7;
/// A batch or record is larger than the topic's max.message.bytes.
pub const MESSAGE_TOO_LARGE: i16 = 10;
/// The topic name is not legal.
pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
/// The record batches of a produce request are larger than the broker accepts.
pub const RECORD_LIST_TOO_LARGE: i16 = 18;
/// acks is not 0, 1 or -1.
pub const INVALID_REQUIRED_ACKS: i16 = 21;
/// A produce request for a transaction, which this broker does not support.
pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
/// The topic already exists.
pub const TOPIC_ALREADY_EXISTS: i16 = 36;
/// The partition count is not legal.
pub const INVALID_PARTITIONS: i16 = 37;
/// The replication factor is larger than the broker count, or not legal.
pub const INVALID_REPLICATION_FACTOR: i16 = 38;
/// A topic config name or value is not legal.
pub const INVALID_CONFIG: i16 = 40;
/// The request is malformed or asks for something this broker does not do.
pub const INVALID_REQUEST: i16 = 42;
/// An idempotent batch's sequence number is not the next one expected.
pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
/// The producer's epoch is older than the partition has seen (it was fenced).
pub const INVALID_PRODUCER_EPOCH: i16 = 47;
/// The disk under this partition failed.
pub const KAFKA_STORAGE_ERROR: i16 = 56;
/// The partition holds no state for this producer id (for instance, retention removed it).
pub const UNKNOWN_PRODUCER_ID: i16 = 59;
/// The client's leader epoch is newer than the broker's.
pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
/// The client's leader epoch is older than the broker's.
pub const FENCED_LEADER_EPOCH: i16 = 74;
