//! A Kafka partition's log as a Raft log: the same segment files clients read from are the
//! replicated log, so a record is written once.
//!
//! Raft numbers entries densely; Kafka numbers records. Each normal entry is exactly one
//! RecordBatch v2 (the leader assigned its base offset before proposing it), and each no-op entry
//! a leader appends on election is a one-record control batch, so entry `i` occupies the offsets
//! right after entry `i - 1`. The store keeps the (base offset, term) of every entry on disk to
//! map truncations from indexes to offsets.
//!
//! Files in the partition's directory: `log/` (segments), `hard_state` (term and vote), and
//! `raft_base` (the index, term and end offset of the last entry retention removed), written
//! before the segments go, so recovery can always number the first remaining batch.
//!
//! Recovery hands Raft a fully compacted log (every entry on disk as committed). That holds for a
//! single voter, whose durable entries are all in a majority; replicated partitions will need a
//! persisted commit point and the tail above it.

use super::atomic::{read_state_file, write_state_file};
use super::disk::Disk;
use super::log::{LogConfig, ReadResult, RecoveryReport, SegmentLog};
use super::raft_store::{decode_hard_state, encode_hard_state, StoreError};
use crate::ids::{LogIndex, Term};
use crate::protocol::record::{build_batch, BatchSpec, NewRecord, ATTR_CONTROL};
use crate::protocol::records::{
    batches, parse_header, set_base_offset, set_partition_leader_epoch, BatchHeader,
};
use crate::raft::{EntryKind, HardState, LogPosition, Recovered, StorageCompletion};
use crate::raft::{Entry, StorageRequest};
use std::collections::VecDeque;

/// Bytes read per call while scanning the log at start-up.
const SCAN_CHUNK: usize = 1 << 20;

/// What a partition finds on disk when it opens.
#[derive(Debug)]
pub struct PartitionRecovery {
    pub raft: Recovered,
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
    /// (base offset, term) of every entry on disk, from `first_index` on.
    entries: VecDeque<(i64, Term)>,
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
        let hard_state = match read_state_file(disk, &format!("{dir}/hard_state"))
            .map_err(StoreError::State)?
        {
            None => HardState::default(),
            Some(bytes) => decode_hard_state(&bytes)?,
        };
        let (base, base_offset) = match read_state_file(disk, &format!("{dir}/raft_base"))
            .map_err(StoreError::State)?
        {
            None => (LogPosition::default(), 0),
            Some(bytes) => decode_base(&bytes)?,
        };
        let (log, report) = SegmentLog::open(disk, &format!("{dir}/log"), cfg, base_offset, now_wall_ms)?;
        if log.log_start() > base_offset {
            return Err(StoreError::Invalid(format!(
                "log starts at offset {} but the recorded base ends at {base_offset}",
                log.log_start()
            )));
        }
        let mut store = PartitionStore {
            log,
            dir: dir.to_string(),
            first_index: base.index.next(),
            entries: VecDeque::new(),
        };
        let mut last = base;
        let mut next = store.log.log_start();
        while next < store.log.next_offset() {
            let chunk = store.log.read(disk, next, SCAN_CHUNK)?;
            for batch in batches(&chunk.bytes) {
                let h = batch?.header;
                if h.base_offset < base_offset {
                    continue; // removed by retention before a crash cut the deletion short
                }
                let term = epoch_term(h.partition_leader_epoch)?;
                store.entries.push_back((h.base_offset, term));
                last = LogPosition {
                    index: last.index.next(),
                    term,
                };
                visit(&h);
            }
            next = chunk.next_offset;
        }
        let recovery = PartitionRecovery {
            raft: Recovered {
                hard_state,
                base: last,
                entries: Vec::new(),
            },
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
                write_state_file(disk, &format!("{}/hard_state", self.dir), &encode_hard_state(hs))?;
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
                for e in &entries {
                    let start = blob.len();
                    encode_entry(&mut blob, e, next, now_wall_ms)?;
                    added.push((next, e.term));
                    next = parse_header(&blob[start..])?.last_offset() + 1;
                }
                self.log.append(disk, &blob, now_wall_ms)?;
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
                    .ok_or_else(|| StoreError::Invalid(format!("truncate at compacted {from:?}")))?;
                if let Some(&(offset, _)) = self.entries.get(k) {
                    self.log.truncate(disk, offset, now_wall_ms)?;
                    self.entries.truncate(k);
                }
                StorageCompletion::Truncated { from }
            }
            StorageRequest::Sync { up_to } => {
                self.log.sync(disk)?;
                StorageCompletion::Synced { up_to }
            }
        })
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

    /// Rolls the active segment if it is due, then deletes segments past retention. Returns the
    /// log start offset.
    pub fn housekeeping(&mut self, disk: &mut dyn Disk, now_wall_ms: i64) -> Result<i64, StoreError> {
        let start = self.log.retention_start(now_wall_ms);
        if start <= self.log.log_start() {
            return Ok(self.log.log_start());
        }
        // Entry k is the first that stays; record the one before it, then delete.
        let k = self.entries.partition_point(|&(offset, _)| offset < start);
        if k == 0 {
            return Ok(self.log.log_start());
        }
        let (_, term) = self.entries[k - 1];
        let base = LogPosition {
            index: LogIndex(self.first_index.0 + k as u64 - 1),
            term,
        };
        write_state_file(disk, &format!("{}/raft_base", self.dir), &encode_base(base, start))?;
        self.entries.drain(..k);
        self.first_index = base.index.next();
        Ok(self.log.remove_before(disk, start)?)
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

fn encode_entry(blob: &mut Vec<u8>, e: &Entry, offset: i64, now_wall_ms: i64) -> Result<(), StoreError> {
    let epoch = i32::try_from(e.term.0)
        .map_err(|_| StoreError::Invalid(format!("term {:?} exceeds a leader epoch", e.term)))?;
    let start = blob.len();
    match e.kind {
        EntryKind::Noop => {
            let spec = BatchSpec {
                base_offset: offset,
                partition_leader_epoch: epoch,
                attributes: ATTR_CONTROL,
                base_timestamp: now_wall_ms,
                ..BatchSpec::default()
            };
            // A leader-change marker: the control record key (version 0, type 2 in Kafka's
            // KRaft numbering), no value. Consumers skip control batches.
            let key = [0u8, 0, 0, 2];
            blob.extend_from_slice(&build_batch(
                spec,
                &[NewRecord {
                    key: Some(&key),
                    ..NewRecord::default()
                }],
            ));
        }
        EntryKind::Normal => {
            let h = parse_header(&e.data)?;
            if h.size() != e.data.len() {
                return Err(StoreError::Invalid(format!(
                    "an entry holds {} bytes but its batch {}",
                    e.data.len(),
                    h.size()
                )));
            }
            blob.extend_from_slice(&e.data);
        }
    }
    let batch = &mut blob[start..];
    set_base_offset(batch, offset)?;
    set_partition_leader_epoch(batch, epoch)?;
    Ok(())
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
        return Err(StoreError::Invalid(format!("raft base of {} bytes", b.len())));
    }
    Ok((
        LogPosition {
            index: LogIndex(u64::from_be_bytes(field(0)?)),
            term: Term(u64::from_be_bytes(field(1)?)),
        },
        i64::from_be_bytes(field(2)?),
    ))
}
