//! A Kafka partition's log as a Raft log: the same segment files clients read from are the
//! replicated log, so a record is written once.
//!
//! Raft numbers entries densely; Kafka numbers records. Each normal entry is exactly one
//! RecordBatch v2 (the leader assigned its base offset before proposing it). The no-op entry a
//! leader appends on election takes no offset (Kafka offsets stay dense, as clients expect): it
//! is recorded in the `epochs` state file as (term, offset of the next batch), which is also
//! the leader-epoch history OffsetForLeaderEpoch answers from. Entry `i` therefore occupies
//! the offsets right after entry `i - 1`, and the store keeps (offset, term, no-op) of every
//! entry on disk to map truncations from indexes to offsets.
//!
//! Files in the partition's directory: `log/` (segments), `hard_state` (term and vote),
//! `epochs` (the no-op entries), and `raft_base` (the index, term and end offset of the last
//! entry retention removed), written before the segments go, so recovery can always number the
//! first remaining entry.
//!
//! Crash consistency of no-ops: the epochs file is durable as soon as it is written, possibly
//! before earlier appends are synced. Recovery drops a no-op recorded past the recovered log
//! end, so what survives is always a prefix of what was appended.
//!
//! Recovery hands Raft a fully compacted log (every entry on disk as committed). That holds for a
//! single voter, whose durable entries are all in a majority; replicated partitions will need a
//! persisted commit point and the tail above it.

use super::atomic::{read_state_file, write_state_file};
use super::disk::Disk;
use super::log::{LogConfig, ReadResult, RecoveryReport, SegmentLog};
use super::raft_store::{decode_hard_state, encode_hard_state, StoreError};
use crate::ids::{LogIndex, Term};
use crate::protocol::records::{
    batches, parse_header, set_base_offset, set_partition_leader_epoch, BatchHeader,
};
use crate::raft::{Entry, StorageRequest};
use crate::raft::{EntryKind, HardState, LogPosition, Recovered, StorageCompletion};
use std::collections::VecDeque;

/// Bytes read per call while scanning the log at start-up.
const SCAN_CHUNK: usize = 1 << 20;

/// What a partition finds on disk when it opens.
#[derive(Debug)]
pub struct PartitionRecovery {
    pub raft: Recovered,
    /// (leader epoch, first offset of that epoch), ascending.
    pub epochs: Vec<(i32, i64)>,
    pub log_start: i64,
    pub next_offset: i64,
    pub report: RecoveryReport,
}

#[derive(Debug)]
pub struct PartitionStore {
    log: SegmentLog,
    dir: String,
    /// Index of the entry at `entries[0]`.
    first_index: LogIndex,
    /// (offset, term, no-op) of every entry on disk, from `first_index` on.
    entries: VecDeque<(i64, Term, bool)>,
    /// The no-op entries on disk: (term, offset of the batch that follows).
    noops: Vec<(Term, i64)>,
}

impl PartitionStore {
    /// Opens (recovering) or creates the partition in `dir`. `visit` sees the header of every
    /// batch on disk in offset order (the broker rebuilds idempotent-producer state from them).
    pub fn open(
        disk: &mut dyn Disk,
        dir: &str,
        cfg: LogConfig,
        now_wall_ms: i64,
        visit: &mut dyn FnMut(&BatchHeader),
    ) -> Result<(PartitionStore, PartitionRecovery), StoreError> {
        let hard_state =
            match read_state_file(disk, &format!("{dir}/hard_state")).map_err(StoreError::State)? {
                None => HardState::default(),
                Some(bytes) => decode_hard_state(&bytes)?,
            };
        let (base, base_offset) =
            match read_state_file(disk, &format!("{dir}/raft_base")).map_err(StoreError::State)? {
                None => (LogPosition::default(), 0),
                Some(bytes) => decode_base(&bytes)?,
            };
        let (log, report) =
            SegmentLog::open(disk, &format!("{dir}/log"), cfg, base_offset, now_wall_ms)?;
        if log.log_start() > base_offset {
            return Err(StoreError::Invalid(format!(
                "log starts at offset {} but the recorded base ends at {base_offset}",
                log.log_start()
            )));
        }
        let mut noops =
            match read_state_file(disk, &format!("{dir}/epochs")).map_err(StoreError::State)? {
                None => Vec::new(),
                Some(bytes) => decode_noops(&bytes)?,
            };
        let mut store = PartitionStore {
            log,
            dir: dir.to_string(),
            first_index: base.index.next(),
            entries: VecDeque::new(),
            noops: Vec::new(),
        };
        let mut last = base;
        let mut epochs: Vec<(i32, i64)> = Vec::new();
        let mut next_noop = 0;
        let mut push = |store: &mut PartitionStore, offset: i64, term: Term, noop: bool| {
            store.entries.push_back((offset, term, noop));
            last = LogPosition {
                index: last.index.next(),
                term,
            };
            let epoch = i32::try_from(term.0).unwrap_or(i32::MAX);
            if epochs.last().is_none_or(|&(e, _)| e < epoch) {
                epochs.push((epoch, offset));
            }
        };
        let mut next = store.log.log_start();
        while next < store.log.next_offset() {
            let chunk = store.log.read(disk, next, SCAN_CHUNK)?;
            for batch in batches(&chunk.bytes) {
                let h = batch?.header;
                while let Some(&(term, offset)) = noops.get(next_noop) {
                    if offset > h.base_offset {
                        break;
                    }
                    next_noop += 1;
                    if offset >= base_offset && offset == h.base_offset {
                        push(&mut store, offset, term, true);
                    }
                }
                if h.base_offset < base_offset {
                    continue; // removed by retention before a crash cut the deletion short
                }
                push(
                    &mut store,
                    h.base_offset,
                    epoch_term(h.partition_leader_epoch)?,
                    false,
                );
                visit(&h);
            }
            next = chunk.next_offset;
        }
        let end = store.log.next_offset();
        while let Some(&(term, offset)) = noops.get(next_noop) {
            if offset != end {
                break;
            }
            next_noop += 1;
            push(&mut store, offset, term, true);
        }
        if next_noop < noops.len() {
            // No-ops past the recovered end belonged to a lost tail.
            noops.truncate(next_noop);
            write_state_file(disk, &format!("{dir}/epochs"), &encode_noops(&noops))?;
        }
        store.noops = noops;
        let recovery = PartitionRecovery {
            raft: Recovered {
                hard_state,
                base: last,
                entries: Vec::new(),
            },
            epochs,
            log_start: base_offset.max(store.log.log_start()),
            next_offset: store.log.next_offset(),
            report,
        };
        Ok((store, recovery))
    }

    /// Performs one Raft storage request. Normal entries must be single batches whose base
    /// offset continues the log; a no-op becomes a control batch at the next offset.
    pub fn execute(
        &mut self,
        disk: &mut dyn Disk,
        req: StorageRequest,
        now_wall_ms: i64,
    ) -> Result<StorageCompletion, StoreError> {
        Ok(match req {
            StorageRequest::SaveHardState(hs) => {
                write_state_file(
                    disk,
                    &format!("{}/hard_state", self.dir),
                    &encode_hard_state(hs),
                )?;
                StorageCompletion::HardStateSaved(hs)
            }
            StorageRequest::Append { first, entries } => {
                let expected = self.next_index();
                if first != expected {
                    return Err(StoreError::Invalid(format!(
                        "append at {first:?}, log ends before {expected:?}"
                    )));
                }
                let mut blob = Vec::new();
                let mut next = self.log.next_offset();
                let mut added = Vec::with_capacity(entries.len());
                let mut noops_changed = false;
                for e in &entries {
                    if e.kind == EntryKind::Noop {
                        self.noops.push((e.term, next));
                        noops_changed = true;
                        added.push((next, e.term, true));
                        continue;
                    }
                    let start = blob.len();
                    encode_entry(&mut blob, e, next)?;
                    added.push((next, e.term, false));
                    next = parse_header(&blob[start..])?.last_offset() + 1;
                }
                if !blob.is_empty() {
                    self.log.append(disk, &blob, now_wall_ms)?;
                }
                if noops_changed {
                    self.save_noops(disk)?;
                }
                self.entries.extend(added);
                StorageCompletion::Appended {
                    last: self.next_index().prev(),
                }
            }
            StorageRequest::Truncate { from } => {
                let k = from
                    .0
                    .checked_sub(self.first_index.0)
                    .and_then(|k| usize::try_from(k).ok())
                    .ok_or_else(|| {
                        StoreError::Invalid(format!("truncate at compacted {from:?}"))
                    })?;
                if let Some(&(offset, term, noop)) = self.entries.get(k) {
                    self.log.truncate(disk, offset, now_wall_ms)?;
                    self.entries.truncate(k);
                    let before = self.noops.len();
                    self.noops
                        .retain(|&(t, o)| o < offset || (noop && o == offset && t < term));
                    if self.noops.len() != before {
                        self.save_noops(disk)?;
                    }
                }
                StorageCompletion::Truncated { from }
            }
            StorageRequest::Sync { up_to } => {
                self.log.sync(disk)?;
                StorageCompletion::Synced { up_to }
            }
        })
    }

    fn save_noops(&mut self, disk: &mut dyn Disk) -> Result<(), StoreError> {
        let path = format!("{}/epochs", self.dir);
        Ok(write_state_file(disk, &path, &encode_noops(&self.noops))?)
    }

    fn next_index(&self) -> LogIndex {
        LogIndex(self.first_index.0 + self.entries.len() as u64)
    }

    pub fn read(
        &self,
        disk: &mut dyn Disk,
        from: i64,
        max_bytes: usize,
    ) -> Result<ReadResult, StoreError> {
        Ok(self.log.read(disk, from, max_bytes)?)
    }

    /// The first batch whose max timestamp is at or after `ts`: (base offset, max timestamp).
    pub fn offset_for_timestamp(
        &self,
        disk: &mut dyn Disk,
        ts: i64,
    ) -> Result<Option<(i64, i64)>, StoreError> {
        Ok(self.log.offset_for_timestamp(disk, ts)?)
    }

    /// Deletes segments past retention. Returns the log start offset.
    pub fn housekeeping(
        &mut self,
        disk: &mut dyn Disk,
        now_wall_ms: i64,
    ) -> Result<i64, StoreError> {
        let start = self.log.retention_start(now_wall_ms);
        if start <= self.log.log_start() {
            return Ok(self.log.log_start());
        }
        // Entry k is the first that stays; record the one before it, then delete.
        let k = self
            .entries
            .partition_point(|&(offset, _, _)| offset < start);
        if k == 0 {
            return Ok(self.log.log_start());
        }
        let (_, term, _) = self.entries[k - 1];
        let base = LogPosition {
            index: LogIndex(self.first_index.0 + k as u64 - 1),
            term,
        };
        write_state_file(
            disk,
            &format!("{}/raft_base", self.dir),
            &encode_base(base, start),
        )?;
        self.entries.drain(..k);
        self.first_index = base.index.next();
        Ok(self.log.remove_before(disk, start)?)
    }

    /// Makes appended data durable.
    pub fn sync(&mut self, disk: &mut dyn Disk) -> Result<(), StoreError> {
        Ok(self.log.sync(disk)?)
    }

    pub fn log(&self) -> &SegmentLog {
        &self.log
    }

    pub fn dir(&self) -> &str {
        &self.dir
    }
}

fn epoch_term(epoch: i32) -> Result<Term, StoreError> {
    u64::try_from(epoch)
        .map(Term)
        .map_err(|_| StoreError::Invalid(format!("batch with leader epoch {epoch}")))
}

fn encode_entry(blob: &mut Vec<u8>, e: &Entry, offset: i64) -> Result<(), StoreError> {
    let epoch = i32::try_from(e.term.0)
        .map_err(|_| StoreError::Invalid(format!("term {:?} exceeds a leader epoch", e.term)))?;
    let h = parse_header(&e.data)?;
    if h.size() != e.data.len() {
        return Err(StoreError::Invalid(format!(
            "an entry holds {} bytes but its batch {}",
            e.data.len(),
            h.size()
        )));
    }
    let start = blob.len();
    blob.extend_from_slice(&e.data);
    let batch = &mut blob[start..];
    set_base_offset(batch, offset)?;
    set_partition_leader_epoch(batch, epoch)?;
    Ok(())
}

fn encode_noops(noops: &[(Term, i64)]) -> Vec<u8> {
    let mut b = Vec::with_capacity(noops.len() * 16);
    for &(term, offset) in noops {
        b.extend_from_slice(&term.0.to_be_bytes());
        b.extend_from_slice(&offset.to_be_bytes());
    }
    b
}

fn decode_noops(b: &[u8]) -> Result<Vec<(Term, i64)>, StoreError> {
    if !b.len().is_multiple_of(16) {
        return Err(StoreError::Invalid(format!(
            "epochs file of {} bytes",
            b.len()
        )));
    }
    Ok(b.chunks_exact(16)
        .map(|c| {
            let term = u64::from_be_bytes(c[..8].try_into().expect("8 bytes"));
            let offset = i64::from_be_bytes(c[8..].try_into().expect("8 bytes"));
            (Term(term), offset)
        })
        .collect())
}

fn encode_base(base: LogPosition, end_offset: i64) -> Vec<u8> {
    let mut b = Vec::with_capacity(24);
    b.extend_from_slice(&base.index.0.to_be_bytes());
    b.extend_from_slice(&base.term.0.to_be_bytes());
    b.extend_from_slice(&end_offset.to_be_bytes());
    b
}

fn decode_base(b: &[u8]) -> Result<(LogPosition, i64), StoreError> {
    let field = |i: usize| -> Result<[u8; 8], StoreError> {
        b.get(i * 8..i * 8 + 8)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| StoreError::Invalid(format!("raft base of {} bytes", b.len())))
    };
    if b.len() != 24 {
        return Err(StoreError::Invalid(format!(
            "raft base of {} bytes",
            b.len()
        )));
    }
    Ok((
        LogPosition {
            index: LogIndex(u64::from_be_bytes(field(0)?)),
            term: Term(u64::from_be_bytes(field(1)?)),
        },
        i64::from_be_bytes(field(2)?),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::record::test_batch;
    use crate::storage::mem::MemDisk;
    use bytes::Bytes;

    fn open(disk: &mut MemDisk, cfg: LogConfig) -> (PartitionStore, PartitionRecovery) {
        PartitionStore::open(disk, "p", cfg, 0, &mut |_| {}).unwrap()
    }

    fn data(term: u64, records: usize) -> Entry {
        Entry::normal(Term(term), Bytes::from(test_batch(0, records, 1_000, 10)))
    }

    fn noop(term: u64) -> Entry {
        Entry {
            term: Term(term),
            kind: EntryKind::Noop,
            data: Bytes::new(),
        }
    }

    fn append(store: &mut PartitionStore, disk: &mut MemDisk, first: u64, entries: Vec<Entry>) {
        let req = StorageRequest::Append {
            first: LogIndex(first),
            entries,
        };
        store.execute(disk, req, 0).unwrap();
        store
            .execute(disk, StorageRequest::Sync { up_to: LogIndex(0) }, 0)
            .unwrap();
    }

    #[test]
    fn no_ops_take_no_offsets_and_recovery_numbers_every_entry() {
        let mut disk = MemDisk::default();
        let (mut s, _) = open(&mut disk, LogConfig::default());
        append(&mut s, &mut disk, 1, vec![noop(1), data(1, 3), data(1, 2)]);
        append(&mut s, &mut disk, 4, vec![noop(2), noop(3), data(3, 1)]);
        assert_eq!(s.log().next_offset(), 6);
        let (_, rec) = open(&mut disk, LogConfig::default());
        assert_eq!(
            rec.raft.base,
            LogPosition {
                index: LogIndex(6),
                term: Term(3)
            }
        );
        assert_eq!(rec.next_offset, 6);
        assert_eq!(rec.epochs, vec![(1, 0), (2, 5), (3, 5)]);
    }

    #[test]
    fn truncating_at_a_no_op_removes_it_and_everything_after() {
        let mut disk = MemDisk::default();
        let (mut s, _) = open(&mut disk, LogConfig::default());
        append(
            &mut s,
            &mut disk,
            1,
            vec![noop(1), data(1, 3), noop(2), data(2, 2)],
        );
        s.execute(&mut disk, StorageRequest::Truncate { from: LogIndex(3) }, 0)
            .unwrap();
        assert_eq!(s.log().next_offset(), 3);
        append(&mut s, &mut disk, 3, vec![noop(3), data(3, 1)]);
        let (_, rec) = open(&mut disk, LogConfig::default());
        assert_eq!(
            rec.raft.base,
            LogPosition {
                index: LogIndex(4),
                term: Term(3)
            }
        );
        assert_eq!(rec.epochs, vec![(1, 0), (3, 3)]);
        assert_eq!(rec.next_offset, 4);
    }

    #[test]
    fn a_no_op_recorded_past_a_lost_tail_is_dropped() {
        let mut disk = MemDisk::default();
        let (mut s, _) = open(&mut disk, LogConfig::default());
        append(&mut s, &mut disk, 1, vec![noop(1), data(1, 3)]);
        let seg = "p/log/00000000000000000000.log".to_string();
        let synced = disk.files[&seg].len();
        append(&mut s, &mut disk, 3, vec![data(1, 2), noop(2)]);
        // A crash loses the unsynced batch, but the epochs file (written whole) survived.
        disk.files.get_mut(&seg).unwrap().truncate(synced);
        let (_, rec) = open(&mut disk, LogConfig::default());
        assert_eq!(
            rec.raft.base,
            LogPosition {
                index: LogIndex(2),
                term: Term(1)
            }
        );
        assert_eq!(rec.epochs, vec![(1, 0)]);
        let (_, again) = open(&mut disk, LogConfig::default());
        assert_eq!(
            again.raft.base, rec.raft.base,
            "the dropped no-op stays dropped"
        );
    }

    #[test]
    fn retention_keeps_entry_numbering_across_restarts() {
        let mut disk = MemDisk::default();
        let cfg = LogConfig {
            segment_bytes: 200,
            retention_bytes: Some(300),
            ..LogConfig::default()
        };
        let (mut s, _) = open(&mut disk, cfg.clone());
        append(&mut s, &mut disk, 1, vec![noop(1)]);
        for i in 0..10 {
            append(&mut s, &mut disk, 2 + i, vec![data(1, 2)]);
        }
        let start = s.housekeeping(&mut disk, 0).unwrap();
        assert!(start > 0, "retention removed something");
        assert_eq!(start % 2, 0, "whole batches go");
        let (_, rec) = open(&mut disk, cfg);
        assert_eq!(rec.log_start, start);
        assert_eq!(
            rec.raft.base,
            LogPosition {
                index: LogIndex(11),
                term: Term(1)
            }
        );
        assert_eq!(rec.next_offset, 20);
    }
}
