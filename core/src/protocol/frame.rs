//! Length-prefixed framing: find the next complete frame in a connection's receive buffer.
//!
//! Owns the 4-byte big-endian size prefix and the maximum frame size. It does not buffer, read
//! sockets or allocate: the driver owns the buffer and asks again when more bytes arrive. A size
//! is validated (not negative, not above the maximum) as soon as its 4 bytes are present, so a
//! driver never reserves memory for a frame that will be refused.

use super::error::DecodeError;

/// Kafka's default `socket.request.max.bytes`: 100 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 100 * 1024 * 1024;

/// The bytes of a size prefix.
pub const SIZE_PREFIX_BYTES: usize = 4;

/// What the receive buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameStatus<'a> {
    /// A whole frame (without its size prefix); drop `consumed` bytes from the buffer after it.
    Complete { frame: &'a [u8], consumed: usize },
    /// Not yet a whole frame; the buffer must hold `needed` bytes in total (prefix included).
    /// `needed` has been checked against the maximum, so reserving it is safe.
    Incomplete { needed: usize },
}

/// Looks for one frame at the start of `buf`.
pub fn next_frame(buf: &[u8], max_frame_bytes: usize) -> Result<FrameStatus<'_>, DecodeError> {
    let Some(prefix) = buf.get(..SIZE_PREFIX_BYTES) else {
        return Ok(FrameStatus::Incomplete {
            needed: SIZE_PREFIX_BYTES,
        });
    };
    let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    let size = usize::try_from(size).map_err(|_| DecodeError::NegativeLength(i64::from(size)))?;
    if size > max_frame_bytes {
        return Err(DecodeError::FrameTooLarge {
            size,
            max: max_frame_bytes,
        });
    }
    let total = SIZE_PREFIX_BYTES + size;
    match buf.get(SIZE_PREFIX_BYTES..total) {
        Some(frame) => Ok(FrameStatus::Complete {
            frame,
            consumed: total,
        }),
        None => Ok(FrameStatus::Incomplete { needed: total }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_complete_frame_is_returned_with_the_bytes_it_consumed() {
        let buf = [0, 0, 0, 2, 7, 8, 9];
        assert_eq!(
            next_frame(&buf, 16),
            Ok(FrameStatus::Complete {
                frame: &[7, 8],
                consumed: 6
            })
        );
    }

    #[test]
    fn a_partial_prefix_or_body_asks_for_more_bytes() {
        assert_eq!(
            next_frame(&[0, 0], 16),
            Ok(FrameStatus::Incomplete { needed: 4 })
        );
        assert_eq!(
            next_frame(&[0, 0, 0, 3, 1], 16),
            Ok(FrameStatus::Incomplete { needed: 7 })
        );
    }

    #[test]
    fn a_negative_size_is_rejected() {
        assert_eq!(
            next_frame(&[0xff, 0xff, 0xff, 0xfe], 16),
            Err(DecodeError::NegativeLength(-2))
        );
        assert_eq!(
            next_frame(&i32::MIN.to_be_bytes(), DEFAULT_MAX_FRAME_BYTES),
            Err(DecodeError::NegativeLength(i64::from(i32::MIN)))
        );
    }

    #[test]
    fn a_size_above_the_maximum_is_rejected_before_the_body_arrives() {
        assert_eq!(
            next_frame(&i32::MAX.to_be_bytes(), DEFAULT_MAX_FRAME_BYTES),
            Err(DecodeError::FrameTooLarge {
                size: i32::MAX as usize,
                max: DEFAULT_MAX_FRAME_BYTES
            })
        );
        assert_eq!(
            next_frame(&[0, 0, 0, 17], 16),
            Err(DecodeError::FrameTooLarge { size: 17, max: 16 })
        );
    }

    #[test]
    fn an_empty_frame_is_complete_and_left_for_the_decoder_to_refuse() {
        assert_eq!(
            next_frame(&[0, 0, 0, 0], 16),
            Ok(FrameStatus::Complete {
                frame: &[],
                consumed: 4
            })
        );
    }
}
