//! `SegmentLog`: one partition's log as an ordered list of segments.
//!
//! Offsets are assigned by the caller (the replication layer); the log checks that every
//! appended batch starts exactly at its end. Reads return whole batches as stored.

use super::disk::{Disk, DiskError, DiskErrorKind};
use super::segment::{
    index_path, log_path, parse_log_name, stored_size, trailer, Segment, TRAILER_BYTES,
};
use crate::protocol::records::{batches, parse_header_prefix, RecordsError, BATCH_HEADER_BYTES};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// Roll to a new segment before the active one would exceed this many bytes.
    pub segment_bytes: u64,
    /// Roll once the active segment is this old.
    pub segment_ms: i64,
    /// Delete closed segments whose newest record is older than this (`None`: keep).
    pub retention_ms: Option<i64>,
    /// Delete the oldest closed segments while the log is larger than this (`None`: no limit).
    pub retention_bytes: Option<u64>,
    /// Bytes between sparse index entries.
    pub index_interval_bytes: u64,
}

pub const SEVEN_DAYS_MS: i64 = 7 * 24 * 3600 * 1000;

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: SEVEN_DAYS_MS,
            retention_ms: Some(SEVEN_DAYS_MS),
            retention_bytes: None,
            index_interval_bytes: 4096,
        }
    }
}

impl LogConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(1024..=(1 << 31)).contains(&self.segment_bytes) {
            return Err(format!(
                "segment.bytes must be between 1 KiB and 2 GiB, got {}",
                self.segment_bytes
            ));
        }
        if self.segment_ms <= 0 {
            return Err(format!(
                "segment.ms must be positive, got {}",
                self.segment_ms
            ));
        }
        if self.retention_ms.is_some_and(|ms| ms <= 0) {
            return Err("retention.ms must be positive (or -1 for unlimited)".into());
        }
        if self.index_interval_bytes == 0 {
            return Err("index.interval.bytes must be positive".into());
        }
        Ok(())
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum LogError {
    Disk(DiskError),
    /// The appended records are not valid batches.
    Corrupt(RecordsError),
    /// A batch does not start where the log ends.
    NonContiguous {
        expected: i64,
        got: i64,
    },
    OffsetOutOfRange {
        offset: i64,
        log_start: i64,
        log_end: i64,
    },
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::Disk(e) => write!(f, "disk: {e}"),
            LogError::Corrupt(e) => write!(f, "corrupt records: {e}"),
            LogError::NonContiguous { expected, got } => {
                write!(f, "batch starts at offset {got}, log ends at {expected}")
            }
            LogError::OffsetOutOfRange {
                offset,
                log_start,
                log_end,
            } => {
                write!(
                    f,
                    "offset {offset} outside the log [{log_start}, {log_end})"
                )
            }
        }
    }
}

impl std::error::Error for LogError {}

impl From<DiskError> for LogError {
    fn from(e: DiskError) -> Self {
        LogError::Disk(e)
    }
}

/// What recovery found and did; `truncated` is worth a log line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub segments: usize,
    pub rebuilt_indexes: usize,
    /// (segment file, position, bytes dropped, why) for each truncation.
    pub truncated: Vec<(String, u64, u64, String)>,
    /// Segment files removed because they no longer continue the log.
    pub removed_segments: Vec<String>,
    pub log_start: i64,
    pub next_offset: i64,
}

impl fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} segments, offsets [{}, {}), {} indexes rebuilt",
            self.segments, self.log_start, self.next_offset, self.rebuilt_indexes
        )?;
        for (file, pos, dropped, why) in &self.truncated {
            write!(
                f,
                "; truncated {file} at byte {pos}, dropping {dropped} bytes: {why}"
            )?;
        }
        for file in &self.removed_segments {
            write!(f, "; removed {file} (does not continue the log)")?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    pub first_offset: i64,
    pub last_offset: i64,
    pub rolled: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadResult {
    /// Whole batches; empty when `from` is the log end.
    pub bytes: Vec<u8>,
    /// Offset after the last batch returned.
    pub next_offset: i64,
}

#[derive(Debug)]
pub struct SegmentLog {
    dir: String,
    cfg: LogConfig,
    /// Ascending by base; never empty; the last one is active.
    segments: Vec<Segment>,
    dirty: bool,
}

impl SegmentLog {
    /// Opens (recovering) or creates the log in `dir`. `start_offset` is where an empty log
    /// begins.
    pub fn open(
        disk: &mut dyn Disk,
        dir: &str,
        cfg: LogConfig,
        start_offset: i64,
        now_wall_ms: i64,
    ) -> Result<(SegmentLog, RecoveryReport), LogError> {
        let mut bases: Vec<i64> = disk
            .list(dir)?
            .iter()
            .filter_map(|n| parse_log_name(n))
            .collect();
        bases.sort_unstable();
        let mut report = RecoveryReport::default();
        let mut segments: Vec<Segment> = Vec::new();
        let last = bases.len().saturating_sub(1);
        let mut broken = false;
        for (i, base) in bases.iter().copied().enumerate() {
            let path = log_path(dir, base);
            let continues = segments.last().is_none_or(|prev| prev.next_offset == base);
            if broken || !continues {
                // A gap: everything from here on is unreachable and possibly stale.
                remove_segment(disk, dir, base)?;
                report.removed_segments.push(path);
                broken = true;
                continue;
            }
            let len = disk.len(&path)?;
            let loaded = if i < last {
                Segment::load_index(disk, dir, base, len)
            } else {
                None
            };
            let seg = match loaded {
                Some(seg) => seg,
                None => {
                    report.rebuilt_indexes += 1;
                    let (seg, stop) =
                        Segment::scan(disk, dir, base, cfg.index_interval_bytes, now_wall_ms)?;
                    if let Some(stop) = stop {
                        disk.truncate(&path, stop.position)?;
                        disk.sync(&path)?;
                        report.truncated.push((
                            path.clone(),
                            stop.position,
                            len - stop.position,
                            stop.reason,
                        ));
                        // Anything after a truncated segment no longer continues the log.
                        broken = i < last;
                    }
                    if i < last && !broken {
                        seg.save_index(disk, dir)?;
                    }
                    seg
                }
            };
            if seg.size == 0 && i < last && !broken {
                // An empty closed segment (a crash right after a roll): drop it.
                remove_segment(disk, dir, base)?;
                report.removed_segments.push(path);
                continue;
            }
            segments.push(seg);
        }
        if let Some(active) = segments.last() {
            // A closed segment recovered as the last one is active again: its index is stale.
            remove_if_exists(disk, &index_path(dir, active.base))?;
        } else {
            segments.push(Segment::empty(start_offset, now_wall_ms));
        }
        if !report.removed_segments.is_empty() {
            disk.sync_dir(dir)?;
        }
        let log = SegmentLog {
            dir: dir.to_string(),
            cfg,
            segments,
            dirty: false,
        };
        report.segments = log.segments.len();
        report.log_start = log.log_start();
        report.next_offset = log.next_offset();
        Ok((log, report))
    }

    pub fn log_start(&self) -> i64 {
        self.segments[0].base
    }

    pub fn next_offset(&self) -> i64 {
        self.active().next_offset
    }

    /// The largest batch max timestamp in the log; -1 when it holds no timestamped batch.
    pub fn max_timestamp(&self) -> i64 {
        self.segments
            .iter()
            .map(|s| s.max_timestamp)
            .max()
            .unwrap_or(-1)
    }

    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    pub fn config(&self) -> &LogConfig {
        &self.cfg
    }

    /// Whether appended bytes are waiting for a sync.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    fn active(&self) -> &Segment {
        self.segments.last().expect("a log always has a segment")
    }

    /// Appends validated batches whose offsets continue the log. Not durable until `sync`.
    pub fn append(
        &mut self,
        disk: &mut dyn Disk,
        blob: &[u8],
        now_wall_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let mut expected = self.next_offset();
        let first_offset = expected;
        let mut headers = Vec::new();
        let mut stored = Vec::with_capacity(blob.len() + 16 * TRAILER_BYTES);
        for batch in batches(blob) {
            let batch = batch.map_err(LogError::Corrupt)?;
            batch.verify_crc().map_err(LogError::Corrupt)?;
            if batch.header.base_offset != expected {
                return Err(LogError::NonContiguous {
                    expected,
                    got: batch.header.base_offset,
                });
            }
            expected = batch.header.last_offset() + 1;
            headers.push(batch.header);
            stored.extend_from_slice(batch.bytes);
            stored.extend_from_slice(&trailer(batch.bytes));
        }
        if headers.is_empty() {
            return Err(LogError::Corrupt(RecordsError::Empty));
        }
        let blob = stored.as_slice();
        let rolled = self.maybe_roll(disk, blob.len() as u64, now_wall_ms)?;
        let dir = self.dir.clone();
        let interval = self.cfg.index_interval_bytes;
        let active = self.segments.last_mut().expect("active");
        let path = log_path(&dir, active.base);
        let new_file = active.size == 0;
        disk.append(&path, blob)?;
        if new_file {
            // A file's directory entry is durable only after the directory is synced: without
            // this a crash could lose a whole segment whose data was synced.
            disk.sync_dir(&dir)?;
        }
        let mut pos = active.size;
        for h in &headers {
            active.on_append(pos, h, interval);
            pos += stored_size(h.size());
        }
        self.dirty = true;
        Ok(AppendInfo {
            first_offset,
            last_offset: expected - 1,
            rolled,
        })
    }

    fn maybe_roll(
        &mut self,
        disk: &mut dyn Disk,
        incoming: u64,
        now_wall_ms: i64,
    ) -> Result<bool, LogError> {
        let active = self.active();
        let full = active.size + incoming > self.cfg.segment_bytes;
        let old = now_wall_ms.saturating_sub(active.created_wall_ms) >= self.cfg.segment_ms;
        if active.size == 0 || !(full || old) {
            return Ok(false);
        }
        // Close the active segment durably before a new one can hold data after it.
        let base = active.base;
        let next = active.next_offset;
        disk.sync(&log_path(&self.dir, base))?;
        self.active().save_index(disk, &self.dir)?;
        self.dirty = false;
        self.segments.push(Segment::empty(next, now_wall_ms));
        Ok(true)
    }

    pub fn sync(&mut self, disk: &mut dyn Disk) -> Result<(), LogError> {
        if self.dirty {
            let path = log_path(&self.dir, self.active().base);
            match disk.sync(&path) {
                Ok(()) => {}
                // Nothing was ever written to a fresh active segment.
                Err(e) if e.kind == DiskErrorKind::NotFound && self.active().size == 0 => {}
                Err(e) => return Err(e.into()),
            }
            self.dirty = false;
        }
        Ok(())
    }

    /// Whole batches from the one containing `from`, up to `max_bytes` (at least one batch
    /// is returned even if it is larger, so a consumer can always make progress).
    pub fn read(
        &self,
        disk: &mut dyn Disk,
        from: i64,
        max_bytes: usize,
    ) -> Result<ReadResult, LogError> {
        let (start, end) = (self.log_start(), self.next_offset());
        if from < start || from > end {
            return Err(LogError::OffsetOutOfRange {
                offset: from,
                log_start: start,
                log_end: end,
            });
        }
        if from == end {
            return Ok(ReadResult {
                bytes: Vec::new(),
                next_offset: end,
            });
        }
        let seg_i = self.segments.partition_point(|s| s.next_offset <= from);
        let seg = &self.segments[seg_i];
        let path = log_path(&self.dir, seg.base);
        let mut pos = seg.position_for(from);
        // Skip batches that end before `from`.
        loop {
            let h = self.header_at(disk, &path, pos)?;
            if h.last_offset() >= from {
                break;
            }
            pos += stored_size(h.size());
        }
        let first_pos = pos;
        let mut next_offset = from;
        let mut sizes = Vec::new();
        let mut total = 0usize;
        while pos < seg.size {
            let h = self.header_at(disk, &path, pos)?;
            if !sizes.is_empty() && total + h.size() > max_bytes {
                break;
            }
            sizes.push(h.size());
            total += h.size();
            pos += stored_size(h.size());
            next_offset = h.last_offset() + 1;
        }
        let stored = disk.read(&path, first_pos, (pos - first_pos) as usize)?;
        if stored.len() as u64 != pos - first_pos {
            return Err(LogError::Disk(DiskError::new(
                DiskErrorKind::Io,
                &path,
                "short read inside the log",
            )));
        }
        // Strip the trailers: readers get Kafka batches exactly as they were appended.
        let mut bytes = Vec::with_capacity(total);
        let mut at = 0;
        for size in sizes {
            bytes.extend_from_slice(&stored[at..at + size]);
            at += size + TRAILER_BYTES;
        }
        Ok(ReadResult { bytes, next_offset })
    }

    fn header_at(
        &self,
        disk: &mut dyn Disk,
        path: &str,
        pos: u64,
    ) -> Result<crate::protocol::records::BatchHeader, LogError> {
        let bytes = disk.read(path, pos, BATCH_HEADER_BYTES)?;
        parse_header_prefix(&bytes).map_err(LogError::Corrupt)
    }

    /// The first batch whose max timestamp is at least `ts`: (its base offset, its max
    /// timestamp). Batch granularity: records inside a compressed batch are not inspected.
    pub fn offset_for_timestamp(
        &self,
        disk: &mut dyn Disk,
        ts: i64,
    ) -> Result<Option<(i64, i64)>, LogError> {
        let Some(seg) = self.segments.iter().find(|s| s.max_timestamp >= ts) else {
            return Ok(None);
        };
        let path = log_path(&self.dir, seg.base);
        let mut pos = seg.position_for_timestamp(ts);
        while pos < seg.size {
            let h = self.header_at(disk, &path, pos)?;
            if h.max_timestamp >= ts {
                return Ok(Some((h.base_offset, h.max_timestamp)));
            }
            pos += stored_size(h.size());
        }
        Ok(None)
    }

    /// Removes every batch at or after `offset`, which must be a batch boundary or the end;
    /// an offset inside a batch truncates that whole batch. Returns the new end offset.
    /// Not durable until `sync`.
    pub fn truncate(
        &mut self,
        disk: &mut dyn Disk,
        offset: i64,
        now_wall_ms: i64,
    ) -> Result<i64, LogError> {
        if offset >= self.next_offset() {
            return Ok(self.next_offset());
        }
        if offset < self.log_start() {
            let (log_start, log_end) = (self.log_start(), self.next_offset());
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start,
                log_end,
            });
        }
        while self.segments.len() > 1
            && self.active().base >= offset
            && self.active().base > self.log_start()
        {
            let seg = self.segments.pop().expect("more than one");
            remove_segment(disk, &self.dir, seg.base)?;
        }
        let dir = self.dir.clone();
        let seg = self.segments.last().expect("active");
        let path = log_path(&dir, seg.base);
        let mut pos = seg.position_for(offset);
        loop {
            if pos >= seg.size {
                break;
            }
            let h = self.header_at(disk, &path, pos)?;
            if h.last_offset() >= offset {
                break;
            }
            pos += stored_size(h.size());
        }
        disk.truncate(&path, pos)?;
        remove_if_exists(disk, &index_path(&dir, seg.base))?;
        // Rebuild the truncated segment's metadata from what remains.
        let base = seg.base;
        let created = seg.created_wall_ms;
        let (mut rebuilt, _) =
            Segment::scan(disk, &dir, base, self.cfg.index_interval_bytes, now_wall_ms)?;
        rebuilt.created_wall_ms = created;
        *self.segments.last_mut().expect("active") = rebuilt;
        self.dirty = true;
        disk.sync_dir(&dir)?;
        Ok(self.next_offset())
    }

    /// Deletes closed segments past the retention limits. Returns the new log start offset.
    pub fn apply_retention(
        &mut self,
        disk: &mut dyn Disk,
        now_wall_ms: i64,
    ) -> Result<i64, LogError> {
        let start = self.retention_start(now_wall_ms);
        self.remove_before(disk, start)
    }

    /// The log start offset retention would leave (whole closed segments past the time or
    /// size limit go), without deleting anything.
    pub fn retention_start(&self, now_wall_ms: i64) -> i64 {
        let mut total = self.size_bytes();
        for (i, seg) in self.segments.iter().enumerate() {
            if i + 1 == self.segments.len() {
                return seg.base;
            }
            let expired = self.cfg.retention_ms.is_some_and(|ms| {
                seg.max_timestamp >= 0 && now_wall_ms.saturating_sub(seg.max_timestamp) > ms
            });
            let oversize = self
                .cfg
                .retention_bytes
                .is_some_and(|limit| total - seg.size >= limit && total > limit);
            if !(expired || oversize) {
                return seg.base;
            }
            total -= seg.size;
        }
        self.log_start()
    }

    /// Deletes every closed segment that ends at or before `start` (a segment boundary from
    /// [`SegmentLog::retention_start`]). Returns the new log start offset.
    pub fn remove_before(&mut self, disk: &mut dyn Disk, start: i64) -> Result<i64, LogError> {
        let mut removed = false;
        while self.segments.len() > 1 && self.segments[1].base <= start {
            let base = self.segments.remove(0).base;
            remove_segment(disk, &self.dir, base)?;
            removed = true;
        }
        if removed {
            disk.sync_dir(&self.dir)?;
        }
        Ok(self.log_start())
    }
}

fn remove_if_exists(disk: &mut dyn Disk, path: &str) -> Result<(), DiskError> {
    match disk.remove(path) {
        Err(e) if e.kind != DiskErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn remove_segment(disk: &mut dyn Disk, dir: &str, base: i64) -> Result<(), DiskError> {
    remove_if_exists(disk, &log_path(dir, base))?;
    remove_if_exists(disk, &index_path(dir, base))
}
