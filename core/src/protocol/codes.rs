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

// Consumer groups.

/// The group coordinator is loading its state from the log (it just became leader of the
/// group's `__consumer_offsets` partition); retry.
pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
/// No coordinator is available for the group right now (the offsets topic is being created,
/// its partition has no leader, or the group is being deleted); retry.
pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
/// This broker is not the group's coordinator; find it again.
pub const NOT_COORDINATOR: i16 = 16;
/// The group's members do not share a protocol type and a protocol.
pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
/// The group id is empty or otherwise not legal.
pub const INVALID_GROUP_ID: i16 = 24;
/// The member id is not (or no longer) a member of the group.
pub const UNKNOWN_MEMBER_ID: i16 = 25;
/// The session timeout is outside the broker's allowed range.
pub const INVALID_SESSION_TIMEOUT: i16 = 26;
/// The group is rebalancing; rejoin.
pub const REBALANCE_IN_PROGRESS: i16 = 27;
/// The committed offset's metadata string is too long.
pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;
/// The generation is not the group's current one.
pub const ILLEGAL_GENERATION: i16 = 22;
/// The group is not empty, so it cannot be deleted.
pub const NON_EMPTY_GROUP: i16 = 68;
/// The group does not exist.
pub const GROUP_ID_NOT_FOUND: i16 = 69;
/// A new member must rejoin with the member id in this response (KIP-394).
pub const MEMBER_ID_REQUIRED: i16 = 79;
/// Another member with the same group.instance.id replaced this one (KIP-345).
pub const FENCED_INSTANCE_ID: i16 = 82;
/// The group already has group.max.size members.
pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
/// An offset commit for this partition is waiting to be replicated (OffsetFetch with
/// require_stable); retry.
pub const UNSTABLE_OFFSET_COMMIT: i16 = 88;
