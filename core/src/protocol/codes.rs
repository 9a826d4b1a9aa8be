//! The Kafka error codes the codec itself produces or maps to.
//!
//! Owns only those few numbers; the broker's full error-code table belongs with the broker.

/// No error.
pub const NONE: i16 = 0;
/// A record batch failed its CRC or framing checks.
pub const CORRUPT_MESSAGE: i16 = 2;
/// The request's API version is not supported by the broker.
pub const UNSUPPORTED_VERSION: i16 = 35;
/// The record batch uses a compression codec the broker does not know.
pub const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
