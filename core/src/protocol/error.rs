//! The codec's typed decode error: every way a frame from the network can be malformed.
//!
//! Owns [`DecodeError`] only. It does not map errors to Kafka error codes or decide whether a
//! connection is closed: that is the broker's call. Record-batch corruption has its own type,
//! [`super::records::RecordsError`], because it is answered per partition, not per connection.

use std::fmt;

use super::api::ApiKey;

/// Why a frame, a header or a message body could not be decoded.
///
/// Every variant describes the peer's bytes; none is a bug in Sluice, so none is ever asserted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended before a value was complete.
    Truncated { needed: usize, remaining: usize },
    /// A length prefix below -1 (or -1 where the schema has no null): no such length exists.
    NegativeLength(i64),
    /// A length or element count larger than the bytes left could possibly hold.
    InvalidLength { length: u64, remaining: usize },
    /// A varint with too many continuation bytes, or bits beyond its width.
    InvalidVarint,
    /// A string that is not UTF-8.
    InvalidUtf8,
    /// A null where the schema of this version does not allow one.
    UnexpectedNull,
    /// A request or response for an API key Sluice does not know.
    UnknownApiKey(i16),
    /// A known API at a version outside the range Sluice implements.
    UnsupportedVersion { api: ApiKey, version: i16 },
    /// Bytes left over after a complete message (or inside a tagged field after its value).
    TrailingBytes(usize),
    /// A frame whose declared size exceeds the configured maximum.
    FrameTooLarge { size: usize, max: usize },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { needed, remaining } => {
                write!(f, "truncated: needed {needed} bytes, {remaining} left")
            }
            DecodeError::NegativeLength(n) => write!(f, "invalid negative length {n}"),
            DecodeError::InvalidLength { length, remaining } => {
                write!(
                    f,
                    "length {length} cannot fit in the {remaining} bytes left"
                )
            }
            DecodeError::InvalidVarint => write!(f, "malformed varint"),
            DecodeError::InvalidUtf8 => write!(f, "string is not valid UTF-8"),
            DecodeError::UnexpectedNull => write!(f, "null in a non-nullable field"),
            DecodeError::UnknownApiKey(k) => write!(f, "unknown api key {k}"),
            DecodeError::UnsupportedVersion { api, version } => {
                let range = api.supported();
                write!(
                    f,
                    "{} version {version} is not supported (supported: {}..={})",
                    api.name(),
                    range.min,
                    range.max
                )
            }
            DecodeError::TrailingBytes(n) => write!(f, "{n} unexpected trailing bytes"),
            DecodeError::FrameTooLarge { size, max } => {
                write!(f, "frame of {size} bytes exceeds the maximum of {max}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}
