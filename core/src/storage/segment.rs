//! One segment: a `.log` file of whole batches starting at offset `base`, plus its in-memory
//! sparse indexes. The indexes are persisted (as checksummed state files) when the segment is
//! closed by a roll, and rebuilt by scanning when missing, stale or corrupt.

use super::atomic::{read_state_file, write_state_file};
use super::disk::{Disk, DiskError};
use crate::protocol::records::{parse_header_prefix, BatchHeader, BATCH_HEADER_BYTES};

/// Reads a segment file in chunks of this many bytes while scanning.
const SCAN_CHUNK: usize = 1 << 20;

/// Every batch in a segment file is followed by a CRC32C of its first `HEADER_GUARDED` bytes:
/// base offset, length, partition leader epoch, magic and CRC sit outside Kafka's own batch
/// CRC (so a broker can rewrite them), which would let a torn write change the leader epoch
/// (for Raft, the term) unnoticed. Reads strip the trailers; files are Sluice's own format.
pub(crate) const TRAILER_BYTES: usize = 4;
const HEADER_GUARDED: usize = 21;

/// The trailer for a batch.
pub(crate) fn trailer(batch: &[u8]) -> [u8; TRAILER_BYTES] {
    crc32c::crc32c(&batch[..HEADER_GUARDED]).to_be_bytes()
}

/// Bytes a batch of `batch_size` bytes takes in a segment file.
pub(crate) fn stored_size(batch_size: usize) -> u64 {
    (batch_size + TRAILER_BYTES) as u64
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Segment {
    pub base: i64,
    /// Bytes in the `.log` file that belong to the log.
    pub size: u64,
    /// One past the last offset in the segment (`base` when empty).
    pub next_offset: i64,
    /// Largest batch max-timestamp in the segment; -1 when empty.
    pub max_timestamp: i64,
    /// Wall-clock time the segment was created (for age-based rolling).
    pub created_wall_ms: i64,
    /// (offset - base, position), ascending: sparse.
    pub index: Vec<(u32, u32)>,
    /// (max timestamp so far, offset - base), ascending in both.
    pub time_index: Vec<(i64, u32)>,
    bytes_since_index: u64,
}

pub(crate) fn log_path(dir: &str, base: i64) -> String {
    format!("{dir}/{base:020}.log")
}

pub(crate) fn index_path(dir: &str, base: i64) -> String {
    format!("{dir}/{base:020}.index")
}

/// The base offset encoded in a segment file name, if it is one.
pub(crate) fn parse_log_name(name: &str) -> Option<i64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Why a scan stopped before the end of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ScanStop {
    pub position: u64,
    pub reason: String,
}

impl Segment {
    pub fn empty(base: i64, now_wall_ms: i64) -> Segment {
        Segment {
            base,
            size: 0,
            next_offset: base,
            max_timestamp: -1,
            created_wall_ms: now_wall_ms,
            index: Vec::new(),
            time_index: Vec::new(),
            bytes_since_index: 0,
        }
    }

    /// Records a batch stored at `position` (with its trailer).
    pub fn on_append(&mut self, position: u64, h: &BatchHeader, interval: u64) {
        let rel = (h.base_offset - self.base) as u32;
        let size = stored_size(h.size());
        if self.index.is_empty() || self.bytes_since_index >= interval {
            self.index.push((rel, position as u32));
            if h.max_timestamp > self.time_index.last().map_or(-1, |t| t.0) {
                self.time_index.push((h.max_timestamp, rel));
            }
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += size;
        self.size = position + size;
        self.next_offset = h.last_offset() + 1;
        self.max_timestamp = self.max_timestamp.max(h.max_timestamp);
    }

    /// The position to start scanning from to find `offset`.
    pub fn position_for(&self, offset: i64) -> u64 {
        let rel = (offset - self.base).clamp(0, i64::from(u32::MAX)) as u32;
        let i = self.index.partition_point(|(r, _)| *r <= rel);
        if i == 0 {
            0
        } else {
            u64::from(self.index[i - 1].1)
        }
    }

    /// The position to start scanning from to find the first batch with max timestamp >= `ts`.
    pub fn position_for_timestamp(&self, ts: i64) -> u64 {
        let i = self.time_index.partition_point(|(t, _)| *t < ts);
        if i == 0 {
            return 0;
        }
        // The entry before the first >= ts: its batch or a later one holds the answer.
        self.position_for(self.base + i64::from(self.time_index[i - 1].1))
    }

    /// Scans `.log` from the start, verifying every batch (header, CRC, offset continuity),
    /// and rebuilds this segment's metadata and indexes from what is valid. Returns where and
    /// why it stopped early, if it did.
    pub fn scan(
        disk: &mut dyn Disk,
        dir: &str,
        base: i64,
        interval: u64,
        now_wall_ms: i64,
    ) -> Result<(Segment, Option<ScanStop>), DiskError> {
        let path = log_path(dir, base);
        let file_len = disk.len(&path)?;
        let mut seg = Segment::empty(base, now_wall_ms);
        let mut chunk: Vec<u8> = Vec::new();
        let mut chunk_pos = 0u64;
        let mut pos = 0u64;
        while pos < file_len {
            let stop = |reason: String| {
                Some(ScanStop {
                    position: pos,
                    reason,
                })
            };
            // Make sure the whole header is in the chunk.
            if pos + BATCH_HEADER_BYTES as u64 > chunk_pos + chunk.len() as u64 {
                chunk_pos = pos;
                chunk = disk.read(&path, pos, SCAN_CHUNK)?;
            }
            let at = (pos - chunk_pos) as usize;
            if chunk.len() - at < BATCH_HEADER_BYTES {
                return Ok((
                    seg,
                    stop(format!(
                        "torn batch header ({} of {BATCH_HEADER_BYTES} bytes)",
                        chunk.len() - at
                    )),
                ));
            }
            let h = match parse_header_prefix(&chunk[at..]) {
                Ok(h) => h,
                Err(e) => return Ok((seg, stop(format!("bad batch header: {e}")))),
            };
            if h.base_offset != seg.next_offset {
                let reason = format!(
                    "batch base offset {} where {} was expected",
                    h.base_offset, seg.next_offset
                );
                return Ok((seg, stop(reason)));
            }
            let size = stored_size(h.size());
            if pos + size > file_len {
                let present = file_len - pos;
                return Ok((
                    seg,
                    stop(format!("torn batch: {present} of {size} bytes present")),
                ));
            }
            if pos + size > chunk_pos + chunk.len() as u64 {
                chunk_pos = pos;
                chunk = disk.read(&path, pos, SCAN_CHUNK.max(size as usize))?;
            }
            let at = (pos - chunk_pos) as usize;
            let bytes = &chunk[at..at + h.size()];
            if let Err(e) = crate::protocol::records::verify_crc(bytes) {
                return Ok((seg, stop(format!("corrupt batch: {e}"))));
            }
            if chunk[at + h.size()..at + size as usize] != trailer(bytes) {
                let reason = "corrupt batch header: trailer checksum mismatch".to_string();
                return Ok((seg, stop(reason)));
            }
            seg.on_append(pos, &h, interval);
            pos += size;
        }
        Ok((seg, None))
    }

    /// Persists the indexes and summary of a closed segment.
    pub fn save_index(&self, disk: &mut dyn Disk, dir: &str) -> Result<(), DiskError> {
        let mut b = Vec::with_capacity(32 + self.index.len() * 8 + self.time_index.len() * 12);
        b.extend_from_slice(&self.size.to_be_bytes());
        b.extend_from_slice(&self.next_offset.to_be_bytes());
        b.extend_from_slice(&self.max_timestamp.to_be_bytes());
        b.extend_from_slice(&self.created_wall_ms.to_be_bytes());
        b.extend_from_slice(&(self.index.len() as u32).to_be_bytes());
        for (rel, pos) in &self.index {
            b.extend_from_slice(&rel.to_be_bytes());
            b.extend_from_slice(&pos.to_be_bytes());
        }
        for (ts, rel) in &self.time_index {
            b.extend_from_slice(&ts.to_be_bytes());
            b.extend_from_slice(&rel.to_be_bytes());
        }
        write_state_file(disk, &index_path(dir, self.base), &b)
    }

    /// Loads a persisted index if it exists, is intact, and matches the `.log` file's length.
    pub fn load_index(disk: &mut dyn Disk, dir: &str, base: i64, log_len: u64) -> Option<Segment> {
        let b = read_state_file(disk, &index_path(dir, base)).ok()??;
        let mut r = crate::protocol::Reader::new(&b);
        let size = r.i64().ok()? as u64;
        let next_offset = r.i64().ok()?;
        let max_timestamp = r.i64().ok()?;
        let created_wall_ms = r.i64().ok()?;
        let n = r.u32().ok()? as usize;
        if size != log_len || n > r.remaining() / 8 {
            return None;
        }
        let mut seg = Segment::empty(base, created_wall_ms);
        seg.size = size;
        seg.next_offset = next_offset;
        seg.max_timestamp = max_timestamp;
        for _ in 0..n {
            let rel = r.u32().ok()?;
            let pos = r.u32().ok()?;
            if u64::from(pos) >= size {
                return None;
            }
            seg.index.push((rel, pos));
        }
        while r.remaining() > 0 {
            let ts = r.i64().ok()?;
            let rel = r.u32().ok()?;
            seg.time_index.push((ts, rel));
        }
        seg.bytes_since_index = u64::MAX / 2;
        Some(seg)
    }
}
