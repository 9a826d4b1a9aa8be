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
//! `epochs` (the no-op entries), `raft_base` (the index, term and end offset of the last
//! entry retention removed), written before the segments go, so recovery can always number the
//! first remaining entry, and `commit` (the persisted commit point, see below).
//!
//! Crash consistency of no-ops: the epochs file is durable as soon as it is written, possibly
//! before earlier appends are synced. Recovery drops a no-op recorded past the recovered log
//! end, so what survives is always a prefix of what was appended.
//!
//! What recovery hands Raft depends on the group. A single voter's log is fully compacted
//! (every entry on disk counts as committed: its durable entries are all in its majority of
//! one). With peers that would be unsafe (an entry on this disk may never have reached a
//! majority), so the base is the persisted commit point ([`PartitionStore::save_commit`]) and
//! the entries after it come back as an uncommitted tail that the leader may still truncate.
//! Retention never removes an entry above the persisted commit point.
//!
//! `ReadEntries` serves a leader catching up a follower from entries it has compacted: normal
//! entries are their batches as stored (the same bytes that were appended, once the proposer
//! stamped base offset and leader epoch as the broker does), no-ops come from `epochs`.

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
use bytes::Bytes;
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
    /// Bytes of the partition's segment files.
    pub size_bytes: u64,
    pub report: RecoveryReport,
}

#[derive(Debug)]
pub struct PartitionStore {
    log: SegmentLog,
    dir: String,
    /// The entry before `entries[0]`: the last one retention removed (index 0 if none).
    base: LogPosition,
    /// (offset, term, no-op) of every entry on disk, from `base.index + 1` on.
    entries: VecDeque<(i64, Term, bool)>,
    /// The no-op entries on disk: (term, offset of the batch that follows).
    noops: Vec<(Term, i64)>,
    /// Every entry on disk counts as committed (see the module docs).
    single_voter: bool,
    /// The commit point last persisted in the `commit` file.
    saved_commit: LogIndex,
}

impl PartitionStore {
    /// Opens (recovering) or creates the partition in `dir`. `visit` sees the header of every
    /// batch on disk in offset order (the broker rebuilds idempotent-producer state from them).
    /// `single_voter` picks what Raft gets back: a fully compacted log, or the persisted commit
    /// point as the base with the entries after it (see the module docs).
    pub fn open(
        disk: &mut dyn Disk,
        dir: &str,
        cfg: LogConfig,
        now_wall_ms: i64,
        single_voter: bool,
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
        let saved_commit =
            match read_state_file(disk, &format!("{dir}/commit")).map_err(StoreError::State)? {
                None => LogIndex::ZERO,
                Some(bytes) => decode_commit(&bytes)?,
            };
        let mut store = PartitionStore {
            log,
            dir: dir.to_string(),
            base,
            entries: VecDeque::new(),
            noops: Vec::new(),
            single_voter,
            saved_commit,
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
        let (raft_base, entries) = if single_voter {
            (last, Vec::new())
        } else {
            // The commit point, within what survived: never below what retention removed,
            // never past the end.
            let index = saved_commit.clamp(base.index, last.index);
            store.saved_commit = index;
            let raft_base = store.position(index).expect("held or the base");
            let (_, tail) = store.read_entries(disk, index.next(), usize::MAX, usize::MAX)?;
            (raft_base, tail)
        };
        let recovery = PartitionRecovery {
            raft: Recovered {
                hard_state,
                base: raft_base,
                entries,
            },
            epochs,
            log_start: base_offset.max(store.log.log_start()),
            next_offset: store.log.next_offset(),
            size_bytes: store.log.size_bytes(),
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
                // The epochs file goes first: a crash may keep (unsynced) batches appended after
                // a no-op, and recovery must then know that no-op, or every later entry moves
                // one index down and same-term entries shift silently. (A no-op recorded past
                // the recovered end is dropped by recovery, so this order is always safe.)
                // Found by the Kafka-level simulator (kafka-swarm seed 2).
                if noops_changed {
                    self.save_noops(disk)?;
                }
                if !blob.is_empty() {
                    self.log.append(disk, &blob, now_wall_ms)?;
                }
                self.entries.extend(added);
                StorageCompletion::Appended {
                    last: self.next_index().prev(),
                }
            }
            StorageRequest::Truncate { from } => {
                let k = from
                    .0
                    .checked_sub(self.base.index.0 + 1)
                    .and_then(|k| usize::try_from(k).ok())
                    .ok_or_else(|| {
                        StoreError::Invalid(format!("truncate at compacted {from:?}"))
                    })?;
                if from <= self.saved_commit {
                    return Err(StoreError::Invalid(format!(
                        "truncate at {from:?}, at or below the commit point {:?}",
                        self.saved_commit
                    )));
                }
                if let Some(&(offset, term, noop)) = self.entries.get(k) {
                    self.log.truncate(disk, offset, now_wall_ms)?;
                    self.entries.truncate(k);
                    let before = self.noops.len();
                    // No-ops at the cut offset precede the entry there (a no-op records the
                    // offset of the batch after it): they stay unless the cut starts at a no-op,
                    // and then only the earlier ones (lower terms) stay. Dropping them all made
                    // a restarted replica lose a no-op before the cut and number every later
                    // entry one lower (found by the Kafka-level simulator, kafka-kip966 seed 52).
                    self.noops
                        .retain(|&(t, o)| o < offset || (o == offset && (!noop || t < term)));
                    if self.noops.len() != before {
                        // The truncation must be durable before the epochs file forgets the
                        // no-op: a crash that undid it would bring back batches after a no-op
                        // recovery no longer knows (the same index shift as above).
                        self.log.sync(disk)?;
                        self.save_noops(disk)?;
                    }
                }
                StorageCompletion::Truncated { from }
            }
            StorageRequest::Sync { up_to } => {
                self.log.sync(disk)?;
                StorageCompletion::Synced { up_to }
            }
            StorageRequest::ReadEntries {
                peer,
                from,
                max_entries,
                max_bytes,
            } => {
                let (prev, entries) = self.read_entries(disk, from, max_entries, max_bytes)?;
                StorageCompletion::EntriesRead {
                    peer,
                    from,
                    prev,
                    entries,
                }
            }
        })
    }

    /// Persists `commit` (clamped to the entries on disk) as the commit point recovery starts
    /// from, if it advanced. The log is synced first: the commit point then never names an
    /// entry a crash could still lose or roll back to an older version (an unsynced truncation
    /// and the entry that replaced it). Costs a sync, so the caller decides how often.
    pub fn save_commit(&mut self, disk: &mut dyn Disk, commit: LogIndex) -> Result<(), StoreError> {
        let commit = commit.min(self.next_index().prev());
        if commit <= self.saved_commit {
            return Ok(());
        }
        self.log.sync(disk)?;
        let path = format!("{}/commit", self.dir);
        write_state_file(disk, &path, &commit.0.to_be_bytes())?;
        self.saved_commit = commit;
        Ok(())
    }

    /// The position of entry `index` if this store still knows it: a held entry or the base.
    fn position(&self, index: LogIndex) -> Option<LogPosition> {
        if index == self.base.index {
            return Some(self.base);
        }
        let (_, term, _) = *self.entries.get(self.slot(index)?)?;
        Some(LogPosition { index, term })
    }

    /// Where entry `index` is in `entries`, if it is at or after the first held one.
    fn slot(&self, index: LogIndex) -> Option<usize> {
        let k = index.0.checked_sub(self.base.index.0 + 1)?;
        usize::try_from(k).ok()
    }

    /// Entries from `from` on (at most `max_entries`; past the first, at most `max_bytes` of
    /// data) and the position before `from`, or `None` if retention removed what is needed.
    fn read_entries(
        &self,
        disk: &mut dyn Disk,
        from: LogIndex,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<(Option<LogPosition>, Vec<Entry>), StoreError> {
        let (Some(prev), Some(start)) = (self.position(from.prev()), self.slot(from)) else {
            return Ok((None, Vec::new()));
        };
        let mut out = Vec::new();
        let mut bytes = 0usize;
        // Batches read ahead of the entries that need them, in offset order.
        let mut batches_ahead: VecDeque<(i64, Bytes)> = VecDeque::new();
        for &(offset, term, noop) in self.entries.iter().skip(start).take(max_entries) {
            let entry = if noop {
                Entry::noop(term)
            } else {
                if batches_ahead.is_empty() {
                    let budget = max_bytes.saturating_sub(bytes).max(1);
                    let chunk = self.log.read(disk, offset, budget)?;
                    for batch in batches(&chunk.bytes) {
                        let batch = batch?;
                        let data = Bytes::copy_from_slice(batch.bytes);
                        batches_ahead.push_back((batch.header.base_offset, data));
                    }
                }
                match batches_ahead.pop_front() {
                    Some((at, data)) if at == offset => Entry::normal(term, data),
                    other => {
                        return Err(StoreError::Invalid(format!(
                            "entry at offset {offset} but the log has a batch at {:?}",
                            other.map(|(at, _)| at)
                        )))
                    }
                }
            };
            bytes = bytes.saturating_add(entry.data.len());
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(entry);
        }
        Ok((Some(prev), out))
    }

    fn save_noops(&mut self, disk: &mut dyn Disk) -> Result<(), StoreError> {
        let path = format!("{}/epochs", self.dir);
        Ok(write_state_file(disk, &path, &encode_noops(&self.noops))?)
    }

    fn next_index(&self) -> LogIndex {
        LogIndex(self.base.index.0 + 1 + self.entries.len() as u64)
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

    /// Deletes segments past retention, never an entry above the persisted commit point
    /// (unless a single voter: all its entries count as committed). Returns the log start
    /// offset.
    pub fn housekeeping(
        &mut self,
        disk: &mut dyn Disk,
        now_wall_ms: i64,
        floor: Option<i64>,
    ) -> Result<i64, StoreError> {
        let retention = self.log.retention_start(now_wall_ms);
        let start = floor
            .map_or(retention, |f| retention.max(f.min(self.log.next_offset())))
            .min(self.retention_limit());
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
            index: LogIndex(self.base.index.0 + k as u64),
            term,
        };
        write_state_file(
            disk,
            &format!("{}/raft_base", self.dir),
            &encode_base(base, start),
        )?;
        self.entries.drain(..k);
        self.base = base;
        // Only whole segments go: when the commit point cut `start` inside one, the log keeps
        // it and still starts before `start`; recovery skips those batches like a deletion a
        // crash cut short. Offsets below `start` are gone as far as anyone is told.
        Ok(self.log.remove_before(disk, start)?.max(start))
    }

    /// The first offset retention must keep: that of the first entry after the persisted
    /// commit point.
    fn retention_limit(&self) -> i64 {
        if self.single_voter {
            return i64::MAX;
        }
        let first_kept = self.saved_commit.next();
        match self.slot(first_kept).and_then(|k| self.entries.get(k)) {
            Some(&(offset, _, _)) => offset,
            None if first_kept <= self.base.index => self.log.log_start(),
            None => self.log.next_offset(),
        }
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

fn decode_commit(b: &[u8]) -> Result<LogIndex, StoreError> {
    let bytes: [u8; 8] = b
        .try_into()
        .map_err(|_| StoreError::Invalid(format!("commit point of {} bytes", b.len())))?;
    Ok(LogIndex(u64::from_be_bytes(bytes)))
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
        PartitionStore::open(disk, "p", cfg, 0, true, &mut |_| {}).unwrap()
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
        let start = s.housekeeping(&mut disk, 0, None).unwrap();
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
