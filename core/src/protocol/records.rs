//! RecordBatch v2 (magic 2) headers over raw bytes: parse and validate the 61-byte header,
//! verify the CRC32C, walk the batches of a Produce `records` blob, and rewrite the two header
//! fields a broker assigns (base offset and partition leader epoch).
//!
//! Owns the batch framing and header layout. It never decompresses and never parses individual
//! records: the broker stores batches as received. Message formats v0/v1 (magic 0/1) are refused;
//! Produce v3+ requires v2.
//!
//! Layout (big-endian), with the CRC covering `attributes` through the end of the batch, so the
//! broker may rewrite `base_offset` and `partition_leader_epoch` without recomputing it:
//!
//! ```text
//!  0 base_offset i64            8 batch_length i32 (bytes after this field)
//! 12 partition_leader_epoch i32 16 magic i8      17 crc u32
//! 21 attributes i16             23 last_offset_delta i32
//! 27 base_timestamp i64         35 max_timestamp i64
//! 43 producer_id i64            51 producer_epoch i16
//! 53 base_sequence i32          57 records_count i32   61 records...
//! ```

use std::fmt;

/// Bytes of a RecordBatch v2 header.
pub const BATCH_HEADER_BYTES: usize = 61;
/// Bytes before (and including) `batch_length`; `batch_length` counts what follows.
pub const BATCH_LOG_OVERHEAD: usize = 12;
/// The smallest valid `batch_length`: the rest of the header, with no records.
pub const BATCH_LENGTH_MIN: i32 = (BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD) as i32;

const MAGIC_V2: i8 = 2;
const OFFSET_PARTITION_LEADER_EPOCH: usize = 12;
const OFFSET_MAGIC: usize = 16;
const OFFSET_CRC: usize = 17;
const OFFSET_ATTRIBUTES: usize = 21;

/// Why a records blob is corrupt. Kafka answers all of these with CORRUPT_MESSAGE (2) for the
/// partition, except an unknown compression codec (UNSUPPORTED_COMPRESSION_TYPE, 76).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordsError {
    /// Fewer bytes than a header, or than `batch_length` promises.
    TruncatedBatch {
        needed: usize,
        remaining: usize,
    },
    /// `batch_length` smaller than a header.
    InvalidBatchLength(i32),
    /// A magic byte other than 2.
    BadMagic(i8),
    /// The stored CRC32C does not match the bytes.
    BadCrc {
        stored: u32,
        computed: u32,
    },
    /// Compression bits 5, 6 or 7.
    UnknownCompression(u8),
    NegativeRecordCount(i32),
    NegativeLastOffsetDelta(i32),
    /// A blob with no batch at all.
    Empty,
}

impl RecordsError {
    /// The Kafka error code a partition gets for this batch.
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            RecordsError::UnknownCompression(_) => super::codes::UNSUPPORTED_COMPRESSION_TYPE,
            _ => super::codes::CORRUPT_MESSAGE,
        }
    }
}

impl fmt::Display for RecordsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordsError::TruncatedBatch { needed, remaining } => {
                write!(
                    f,
                    "truncated batch: needs {needed} bytes, {remaining} present"
                )
            }
            RecordsError::InvalidBatchLength(n) => write!(f, "invalid batch length {n}"),
            RecordsError::BadMagic(m) => write!(f, "unsupported record batch magic {m}"),
            RecordsError::BadCrc { stored, computed } => {
                write!(
                    f,
                    "crc mismatch: stored {stored:#010x}, computed {computed:#010x}"
                )
            }
            RecordsError::UnknownCompression(c) => write!(f, "unknown compression codec {c}"),
            RecordsError::NegativeRecordCount(n) => write!(f, "negative record count {n}"),
            RecordsError::NegativeLastOffsetDelta(n) => {
                write!(f, "negative last offset delta {n}")
            }
            RecordsError::Empty => write!(f, "no record batch"),
        }
    }
}

impl std::error::Error for RecordsError {}

/// The compression codec in attribute bits 0-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    fn from_bits(bits: u8) -> Result<Self, RecordsError> {
        Ok(match bits {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            other => return Err(RecordsError::UnknownCompression(other)),
        })
    }
}

/// A decoded RecordBatch v2 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    pub fn compression(&self) -> Compression {
        // Validated when the header was parsed.
        Compression::from_bits((self.attributes & 0x07) as u8).unwrap_or(Compression::None)
    }
    /// Bit 3: the timestamps are log-append times (set by the broker), not create times.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & 0x08 != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }
    /// Control batches carry transaction markers, not user records.
    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }
    /// Written by an idempotent producer: carries a producer id and sequence numbers the
    /// broker must check (control batches excepted).
    pub fn is_idempotent(&self) -> bool {
        self.producer_id >= 0 && self.base_sequence >= 0 && !self.is_control()
    }
    /// The offset of the batch's last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }
    /// Total bytes of the batch, log overhead included.
    pub fn size(&self) -> usize {
        BATCH_LOG_OVERHEAD + self.batch_length as usize
    }
}

fn be<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[at..at + N]);
    out
}

/// Parses and validates the header at the start of `bytes`: enough bytes for the header and for
/// `batch_length`, magic 2, a known codec, non-negative counts. The CRC is not checked here (see
/// [`Batch::verify_crc`]), so a caller may look at a header cheaply.
pub fn parse_header(bytes: &[u8]) -> Result<BatchHeader, RecordsError> {
    let h = parse_header_prefix(bytes)?;
    if h.size() > bytes.len() {
        return Err(RecordsError::TruncatedBatch {
            needed: h.size(),
            remaining: bytes.len(),
        });
    }
    Ok(h)
}

/// Like [`parse_header`], but needs only the 61 header bytes, not the whole batch: storage reads
/// a header from disk before deciding how much more to read.
pub fn parse_header_prefix(bytes: &[u8]) -> Result<BatchHeader, RecordsError> {
    if bytes.len() < BATCH_HEADER_BYTES {
        return Err(RecordsError::TruncatedBatch {
            needed: BATCH_HEADER_BYTES,
            remaining: bytes.len(),
        });
    }
    let h = BatchHeader {
        base_offset: i64::from_be_bytes(be(bytes, 0)),
        batch_length: i32::from_be_bytes(be(bytes, 8)),
        partition_leader_epoch: i32::from_be_bytes(be(bytes, OFFSET_PARTITION_LEADER_EPOCH)),
        magic: bytes[OFFSET_MAGIC] as i8,
        crc: u32::from_be_bytes(be(bytes, OFFSET_CRC)),
        attributes: i16::from_be_bytes(be(bytes, OFFSET_ATTRIBUTES)),
        last_offset_delta: i32::from_be_bytes(be(bytes, 23)),
        base_timestamp: i64::from_be_bytes(be(bytes, 27)),
        max_timestamp: i64::from_be_bytes(be(bytes, 35)),
        producer_id: i64::from_be_bytes(be(bytes, 43)),
        producer_epoch: i16::from_be_bytes(be(bytes, 51)),
        base_sequence: i32::from_be_bytes(be(bytes, 53)),
        records_count: i32::from_be_bytes(be(bytes, 57)),
    };
    if h.batch_length < BATCH_LENGTH_MIN {
        return Err(RecordsError::InvalidBatchLength(h.batch_length));
    }
    if h.magic != MAGIC_V2 {
        return Err(RecordsError::BadMagic(h.magic));
    }
    Compression::from_bits((h.attributes & 0x07) as u8)?;
    if h.records_count < 0 {
        return Err(RecordsError::NegativeRecordCount(h.records_count));
    }
    if h.last_offset_delta < 0 {
        return Err(RecordsError::NegativeLastOffsetDelta(h.last_offset_delta));
    }
    Ok(h)
}

/// Checks the CRC32C of one whole batch given as bytes (header included).
pub fn verify_crc(batch: &[u8]) -> Result<(), RecordsError> {
    let h = parse_header(batch)?;
    Batch {
        header: h,
        bytes: &batch[..h.size()],
    }
    .verify_crc()
}

/// One whole batch inside a blob, with its parsed header.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    pub header: BatchHeader,
    /// The batch's bytes, exactly `header.size()` of them.
    pub bytes: &'a [u8],
}

impl Batch<'_> {
    /// Checks the CRC32C over `attributes` through the end of the batch.
    pub fn verify_crc(&self) -> Result<(), RecordsError> {
        let computed = crc32c::crc32c(&self.bytes[OFFSET_ATTRIBUTES..]);
        if computed != self.header.crc {
            return Err(RecordsError::BadCrc {
                stored: self.header.crc,
                computed,
            });
        }
        Ok(())
    }

    /// The encoded records after the header (possibly compressed), unparsed.
    pub fn records(&self) -> &[u8] {
        &self.bytes[BATCH_HEADER_BYTES..]
    }
}

/// Iterates the batches of a blob. Strict, as suits Produce: a trailing partial batch is an
/// error, not something to skip. After the first error the iterator ends.
#[derive(Debug, Clone)]
pub struct Batches<'a> {
    rest: &'a [u8],
    failed: bool,
}

pub fn batches(blob: &[u8]) -> Batches<'_> {
    Batches {
        rest: blob,
        failed: false,
    }
}

impl<'a> Iterator for Batches<'a> {
    type Item = Result<Batch<'a>, RecordsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        match parse_header(self.rest) {
            Ok(header) => {
                let (bytes, rest) = self.rest.split_at(header.size());
                self.rest = rest;
                Some(Ok(Batch { header, bytes }))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// What validation learned about a Produce blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobSummary {
    pub batch_count: usize,
    /// Sum of `last_offset_delta + 1`: the offsets the blob will occupy.
    pub offset_count: i64,
}

/// Validates every batch of a Produce blob, CRC included. An empty blob is an error: Kafka
/// refuses a partition entry without a batch.
pub fn validate(blob: &[u8]) -> Result<BlobSummary, RecordsError> {
    let mut summary = BlobSummary {
        batch_count: 0,
        offset_count: 0,
    };
    for batch in batches(blob) {
        let batch = batch?;
        batch.verify_crc()?;
        summary.batch_count += 1;
        summary.offset_count += i64::from(batch.header.last_offset_delta) + 1;
    }
    if summary.batch_count == 0 {
        return Err(RecordsError::Empty);
    }
    Ok(summary)
}

/// Rewrites one batch's base offset in place. `baseOffset` is outside the CRC, so it stays valid.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) -> Result<(), RecordsError> {
    let field = batch.get_mut(..8).ok_or(RecordsError::TruncatedBatch {
        needed: 8,
        remaining: 0,
    })?;
    field.copy_from_slice(&base_offset.to_be_bytes());
    Ok(())
}

/// Rewrites one batch's partition leader epoch in place (also outside the CRC).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) -> Result<(), RecordsError> {
    let remaining = batch.len();
    let field = batch
        .get_mut(OFFSET_PARTITION_LEADER_EPOCH..OFFSET_PARTITION_LEADER_EPOCH + 4)
        .ok_or(RecordsError::TruncatedBatch {
            needed: OFFSET_PARTITION_LEADER_EPOCH + 4,
            remaining,
        })?;
    field.copy_from_slice(&epoch.to_be_bytes());
    Ok(())
}

/// Assigns consecutive offsets to every batch of a blob, starting at `first_offset`, and stamps
/// each with `leader_epoch`. Returns the next free offset. The blob must already have passed
/// [`validate`]; a malformed blob is refused before anything is written.
pub fn assign_offsets(
    blob: &mut [u8],
    first_offset: i64,
    leader_epoch: i32,
) -> Result<i64, RecordsError> {
    let mut spans = Vec::new();
    for batch in batches(blob) {
        let batch = batch?;
        spans.push((batch.header.size(), batch.header.last_offset_delta));
    }
    let mut next = first_offset;
    let mut at = 0;
    for (size, last_offset_delta) in spans {
        let batch = &mut blob[at..at + size];
        set_base_offset(batch, next)?;
        set_partition_leader_epoch(batch, leader_epoch)?;
        next += i64::from(last_offset_delta) + 1;
        at += size;
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a RecordBatch v2 around opaque record bytes, with a correct CRC.
    fn batch(base_offset: i64, last_offset_delta: i32, attributes: i16, records: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&base_offset.to_be_bytes());
        let batch_length = (BATCH_LENGTH_MIN as usize + records.len()) as i32;
        b.extend_from_slice(&batch_length.to_be_bytes());
        b.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
        b.push(2); // magic
        b.extend_from_slice(&[0; 4]); // crc, filled in below
        b.extend_from_slice(&attributes.to_be_bytes());
        b.extend_from_slice(&last_offset_delta.to_be_bytes());
        b.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
        b.extend_from_slice(&1_700_000_000_123i64.to_be_bytes());
        b.extend_from_slice(&42i64.to_be_bytes()); // producer id
        b.extend_from_slice(&3i16.to_be_bytes()); // producer epoch
        b.extend_from_slice(&7i32.to_be_bytes()); // base sequence
        b.extend_from_slice(&(last_offset_delta + 1).to_be_bytes());
        b.extend_from_slice(records);
        fix_crc(&mut b);
        b
    }

    fn fix_crc(b: &mut [u8]) {
        let crc = crc32c::crc32c(&b[OFFSET_ATTRIBUTES..]);
        b[OFFSET_CRC..OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
    }

    #[test]
    fn a_built_batch_parses_with_every_header_field() {
        let b = batch(5, 2, 0x10 | 0x04, b"abc");
        let h = parse_header(&b).unwrap();
        assert_eq!(h.base_offset, 5);
        assert_eq!(h.batch_length as usize, b.len() - BATCH_LOG_OVERHEAD);
        assert_eq!(h.partition_leader_epoch, -1);
        assert_eq!(h.magic, 2);
        assert_eq!(h.compression(), Compression::Zstd);
        assert!(h.is_transactional());
        assert!(!h.is_control());
        assert!(!h.is_log_append_time());
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.last_offset(), 7);
        assert_eq!(h.base_timestamp, 1_700_000_000_000);
        assert_eq!(h.max_timestamp, 1_700_000_000_123);
        assert_eq!(h.producer_id, 42);
        assert_eq!(h.producer_epoch, 3);
        assert_eq!(h.base_sequence, 7);
        assert_eq!(h.records_count, 3);
        let only = batches(&b).next().unwrap().unwrap();
        assert_eq!(only.records(), b"abc");
        assert_eq!(only.verify_crc(), Ok(()));
    }

    #[test]
    fn a_blob_of_several_batches_validates_and_counts_offsets() {
        let mut blob = batch(0, 0, 0, b"x");
        blob.extend(batch(0, 4, 0, b"yyyy"));
        assert_eq!(
            validate(&blob),
            Ok(BlobSummary {
                batch_count: 2,
                offset_count: 6
            })
        );
    }

    #[test]
    fn a_flipped_bit_anywhere_under_the_crc_is_caught() {
        let good = batch(0, 1, 0, b"payload");
        for at in OFFSET_ATTRIBUTES..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x01;
            let r = validate(&bad);
            assert!(r.is_err(), "flip at {at} not caught");
        }
    }

    #[test]
    fn a_wrong_crc_is_reported_with_both_values() {
        let mut b = batch(0, 0, 0, b"z");
        b[OFFSET_CRC] ^= 0xff;
        assert!(matches!(validate(&b), Err(RecordsError::BadCrc { .. })));
    }

    #[test]
    fn offset_and_epoch_rewrites_keep_the_crc_valid() {
        let mut blob = batch(0, 2, 0, b"abc");
        blob.extend(batch(0, 0, 0, b"d"));
        let next = assign_offsets(&mut blob, 100, 9).unwrap();
        assert_eq!(next, 104);
        let got: Vec<_> = batches(&blob).map(|b| b.unwrap()).collect();
        assert_eq!(got[0].header.base_offset, 100);
        assert_eq!(got[1].header.base_offset, 103);
        assert!(got.iter().all(|b| b.header.partition_leader_epoch == 9));
        assert_eq!(validate(&blob).map(|s| s.batch_count), Ok(2));
    }

    #[test]
    fn magic_other_than_two_is_refused() {
        let mut b = batch(0, 0, 0, b"");
        b[OFFSET_MAGIC] = 1;
        assert_eq!(validate(&b), Err(RecordsError::BadMagic(1)));
    }

    #[test]
    fn batch_lengths_below_the_header_or_beyond_the_buffer_are_refused() {
        let mut b = batch(0, 0, 0, b"abc");
        b[8..12].copy_from_slice(&(BATCH_LENGTH_MIN - 1).to_be_bytes());
        assert_eq!(
            validate(&b),
            Err(RecordsError::InvalidBatchLength(BATCH_LENGTH_MIN - 1))
        );
        b[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            validate(&b),
            Err(RecordsError::TruncatedBatch { .. })
        ));
        b[8..12].copy_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(validate(&b), Err(RecordsError::InvalidBatchLength(-1)));
    }

    #[test]
    fn a_batch_truncated_at_any_byte_is_refused() {
        let b = batch(0, 1, 0, b"records!");
        for len in 0..b.len() {
            assert!(validate(&b[..len]).is_err(), "prefix of {len} accepted");
        }
        let mut two = b.clone();
        two.extend_from_slice(&b[..30]);
        assert!(matches!(
            validate(&two),
            Err(RecordsError::TruncatedBatch { .. })
        ));
    }

    #[test]
    fn negative_counts_and_unknown_codecs_are_refused() {
        let mut b = batch(0, 0, 0, b"");
        b[57..61].copy_from_slice(&(-1i32).to_be_bytes());
        fix_crc(&mut b);
        assert_eq!(validate(&b), Err(RecordsError::NegativeRecordCount(-1)));

        let mut b = batch(0, 0, 0, b"");
        b[23..27].copy_from_slice(&(-5i32).to_be_bytes());
        fix_crc(&mut b);
        assert_eq!(validate(&b), Err(RecordsError::NegativeLastOffsetDelta(-5)));

        let b = batch(0, 0, 5, b"");
        assert_eq!(validate(&b), Err(RecordsError::UnknownCompression(5)));
        assert_eq!(
            RecordsError::UnknownCompression(5).kafka_error_code(),
            super::super::codes::UNSUPPORTED_COMPRESSION_TYPE
        );
    }

    #[test]
    fn an_empty_blob_is_refused_and_a_malformed_one_is_not_rewritten() {
        assert_eq!(validate(&[]), Err(RecordsError::Empty));
        let mut blob = batch(0, 0, 0, b"a");
        blob.extend_from_slice(&[0; 10]);
        let before = blob.clone();
        assert!(assign_offsets(&mut blob, 50, 1).is_err());
        assert_eq!(blob, before);
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic_the_batch_walker(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = validate(&bytes);
            let mut copy = bytes.clone();
            let _ = assign_offsets(&mut copy, 0, 0);
        }
    }
}
