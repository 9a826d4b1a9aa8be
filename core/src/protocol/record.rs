//! Individual records inside RecordBatch v2: building batches (for Sluice's own tools, Raft
//! entries stored as batches, and tests) and reading the records of an uncompressed batch.
//!
//! The broker itself never needs this: it stores batches as received. Compressed batches are not
//! decoded here; reading one is an error, not a guess.

use super::records::{
    parse_header, verify_crc, BatchHeader, Compression, RecordsError, BATCH_HEADER_BYTES,
    BATCH_LOG_OVERHEAD,
};
use super::wire::{Reader, Writer};
use bytes::Bytes;

/// One record to put in a batch.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct NewRecord<'a> {
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// Added to the batch's base timestamp.
    pub timestamp_delta: i64,
    pub headers: Vec<(&'a str, Option<&'a [u8]>)>,
}

/// Batch-level fields of a batch to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchSpec {
    pub base_offset: i64,
    pub partition_leader_epoch: i32,
    /// Attribute bits; compression bits must be 0 (records are written uncompressed).
    pub attributes: i16,
    pub base_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl Default for BatchSpec {
    fn default() -> Self {
        BatchSpec {
            base_offset: 0,
            partition_leader_epoch: -1,
            attributes: 0,
            base_timestamp: 0,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
        }
    }
}

/// Attribute bit marking a control batch.
pub const ATTR_CONTROL: i16 = 0x20;

/// Encodes an uncompressed RecordBatch v2 with a valid CRC32C.
pub fn build_batch(spec: BatchSpec, records: &[NewRecord<'_>]) -> Vec<u8> {
    assert!(
        spec.attributes & 0x07 == 0,
        "build_batch writes uncompressed batches only"
    );
    assert!(!records.is_empty(), "a batch holds at least one record");
    let mut body = Writer::new();
    let mut max_delta = 0i64;
    for (i, r) in records.iter().enumerate() {
        max_delta = max_delta.max(r.timestamp_delta);
        let mut rec = Writer::new();
        rec.i8(0);
        rec.varlong(r.timestamp_delta);
        rec.varint(i as i32);
        put_varint_bytes(&mut rec, r.key);
        put_varint_bytes(&mut rec, r.value);
        rec.varint(r.headers.len() as i32);
        for (k, v) in &r.headers {
            put_varint_bytes(&mut rec, Some(k.as_bytes()));
            put_varint_bytes(&mut rec, *v);
        }
        body.varint(rec.len() as i32);
        body.raw(rec.as_slice());
    }
    let mut w = Writer::new();
    w.i64(spec.base_offset);
    w.i32(0); // batch length, patched below
    w.i32(spec.partition_leader_epoch);
    w.i8(2);
    w.u32(0); // crc, patched below
    w.i16(spec.attributes);
    w.i32(records.len() as i32 - 1);
    w.i64(spec.base_timestamp);
    w.i64(spec.base_timestamp + max_delta);
    w.i64(spec.producer_id);
    w.i16(spec.producer_epoch);
    w.i32(spec.base_sequence);
    w.i32(records.len() as i32);
    w.raw(body.as_slice());
    let mut bytes = w.into_inner();
    let length = (bytes.len() - BATCH_LOG_OVERHEAD) as i32;
    bytes[8..12].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    bytes
}

fn put_varint_bytes(w: &mut Writer, b: Option<&[u8]>) {
    match b {
        None => w.varint(-1),
        Some(b) => {
            w.varint(b.len() as i32);
            w.raw(b);
        }
    }
}

/// A record read back from an uncompressed batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordView {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Reads every record of one whole, uncompressed batch, checking its CRC and every length.
pub fn read_records(batch: &[u8]) -> Result<Vec<RecordView>, RecordsError> {
    let h = parse_header(batch)?;
    verify_crc(batch)?;
    if h.compression() != Compression::None {
        return Err(RecordsError::UnknownCompression(
            (h.attributes & 0x07) as u8,
        ));
    }
    parse_records(&h, &batch[BATCH_HEADER_BYTES..h.size()])
}

/// Parses the records of a batch from its (uncompressed) records section: the bytes after the
/// header, or what a compressed batch's records section decompresses to.
pub fn parse_records(h: &BatchHeader, payload: &[u8]) -> Result<Vec<RecordView>, RecordsError> {
    let malformed = || RecordsError::TruncatedBatch {
        needed: h.size(),
        remaining: payload.len(),
    };
    let mut r = Reader::new(payload);
    // Each record takes at least 7 bytes, so the count is bounded by the bytes present.
    let count = (h.records_count.max(0) as usize).min(r.remaining() / 7 + 1);
    let mut out = Vec::with_capacity(count);
    for _ in 0..h.records_count {
        let len = r.varint().map_err(|_| malformed())?;
        let body = r
            .take(usize::try_from(len).map_err(|_| malformed())?)
            .map_err(|_| malformed())?;
        let mut rr = Reader::new(body);
        let mut parse = || -> Result<RecordView, super::DecodeError> {
            let _attributes = rr.i8()?;
            let ts_delta = rr.varlong()?;
            let offset_delta = rr.varint()?;
            let key = varint_bytes(&mut rr)?;
            let value = varint_bytes(&mut rr)?;
            let n = rr.varint()?;
            let mut headers = Vec::new();
            for _ in 0..n.max(0) {
                let k = varint_bytes(&mut rr)?.unwrap_or_default();
                let v = varint_bytes(&mut rr)?;
                headers.push((String::from_utf8_lossy(&k).into_owned(), v));
            }
            rr.finish()?;
            Ok(RecordView {
                offset: h.base_offset + i64::from(offset_delta),
                timestamp: h.base_timestamp.saturating_add(ts_delta),
                key,
                value,
                headers,
            })
        };
        out.push(parse().map_err(|_| malformed())?);
    }
    r.finish().map_err(|_| malformed())?;
    Ok(out)
}

/// Decompresses a batch's records section. Core never links a codec: drivers that can
/// decompress (the runtime) pass one in where exact per-record answers need it.
pub trait Decompressor: Send {
    fn decompress(&self, codec: Compression, data: &[u8]) -> Result<Vec<u8>, String>;
}

/// The records of one whole batch, compressed or not (`None` when it is compressed and no
/// decompressor was given).
pub fn read_records_with(
    batch: &[u8],
    decompressor: Option<&dyn Decompressor>,
) -> Result<Option<Vec<RecordView>>, String> {
    let h = parse_header(batch).map_err(|e| e.to_string())?;
    verify_crc(batch).map_err(|e| e.to_string())?;
    let payload = &batch[BATCH_HEADER_BYTES..h.size()];
    match (h.compression(), decompressor) {
        (Compression::None, _) => parse_records(&h, payload)
            .map(Some)
            .map_err(|e| e.to_string()),
        (_, None) => Ok(None),
        (codec, Some(d)) => {
            let plain = d.decompress(codec, payload)?;
            parse_records(&h, &plain)
                .map(Some)
                .map_err(|e| e.to_string())
        }
    }
}

fn varint_bytes(r: &mut Reader<'_>) -> Result<Option<Bytes>, super::DecodeError> {
    let len = r.varint()?;
    if len < 0 {
        return Ok(None);
    }
    Ok(Some(Bytes::copy_from_slice(r.take(len as usize)?)))
}

/// A batch of `count` records with `payload`-byte values, base timestamp `ts`: for tests.
#[cfg(test)]
pub(crate) fn test_batch(base_offset: i64, count: usize, ts: i64, payload: usize) -> Vec<u8> {
    let value = vec![0x5a; payload];
    let records: Vec<NewRecord<'_>> = (0..count)
        .map(|_| NewRecord {
            value: Some(&value),
            ..NewRecord::default()
        })
        .collect();
    build_batch(
        BatchSpec {
            base_offset,
            base_timestamp: ts,
            ..BatchSpec::default()
        },
        &records,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_batches_validate_and_read_back() {
        let records = [
            NewRecord {
                key: Some(b"k1"),
                value: Some(b"hello"),
                timestamp_delta: 0,
                headers: vec![("h", Some(b"v"))],
            },
            NewRecord {
                key: None,
                value: None,
                timestamp_delta: 7,
                headers: vec![],
            },
        ];
        let spec = BatchSpec {
            base_offset: 40,
            base_timestamp: 1_000,
            partition_leader_epoch: 3,
            ..BatchSpec::default()
        };
        let b = build_batch(spec, &records);
        let h = parse_header(&b).expect("valid header");
        assert_eq!(
            (
                h.base_offset,
                h.last_offset(),
                h.max_timestamp,
                h.partition_leader_epoch
            ),
            (40, 41, 1_007, 3)
        );
        verify_crc(&b).expect("valid crc");
        let read = read_records(&b).expect("reads");
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(read[0].value.as_deref(), Some(&b"hello"[..]));
        assert_eq!(
            read[0].headers,
            vec![("h".to_string(), Some(Bytes::from_static(b"v")))]
        );
        assert_eq!(
            (read[1].offset, read[1].timestamp, read[1].value.clone()),
            (41, 1_007, None)
        );
    }

    #[test]
    fn reading_a_damaged_batch_is_an_error_not_a_panic() {
        let b = test_batch(0, 3, 5, 20);
        for cut in 0..b.len() {
            assert!(read_records(&b[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..b.len() {
            let mut bad = b.clone();
            bad[i] ^= 0x10;
            // Flips outside the CRC (offset, length, epoch) may still read; nothing panics.
            let _ = read_records(&bad);
        }
    }
}
