//! Raft's log and hard state on the storage engine, shared by every driver.
//!
//! Each Raft entry is stored as one RecordBatch v2 with a single record: entry index `i` lives
//! at offset `i - 1`, the term is the batch's partition leader epoch (Kafka's leader epoch is
//! the Raft term), a no-op entry is a control batch, and the entry's data is the record value.
//! The (term, vote) pair is a checksummed state file written atomically.
//!
//! The whole log is loaded at start-up (Raft gets a base of zero); `ReadEntries` decodes entries
//! back from their batches.
//!
//! This maps storage requests to engine calls; it makes no Raft decisions.

use super::atomic::{read_state_file, write_state_file, StateFileError};
use super::disk::{Disk, DiskError};
use super::log::{LogConfig, LogError, RecoveryReport, SegmentLog};
use crate::ids::{LogIndex, NodeId, Term};
use crate::protocol::record::{build_batch, read_records, BatchSpec, NewRecord, ATTR_CONTROL};
use crate::protocol::records::{batches, RecordsError};
use crate::raft::{
    Entry, EntryKind, HardState, LogPosition, Recovered, StorageCompletion, StorageRequest,
};
use std::fmt;

/// Bytes read per call while loading the log at start-up.
const LOAD_CHUNK: usize = 1 << 20;

#[derive(Debug, PartialEq, Eq)]
pub enum StoreError {
    Log(LogError),
    State(StateFileError),
    /// Stored data that cannot be a Raft log written by this code.
    Invalid(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Log(e) => write!(f, "raft log: {e}"),
            StoreError::State(e) => write!(f, "raft hard state: {e}"),
            StoreError::Invalid(m) => write!(f, "raft log: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<LogError> for StoreError {
    fn from(e: LogError) -> Self {
        StoreError::Log(e)
    }
}

impl From<DiskError> for StoreError {
    fn from(e: DiskError) -> Self {
        StoreError::Log(LogError::Disk(e))
    }
}

impl From<RecordsError> for StoreError {
    fn from(e: RecordsError) -> Self {
        StoreError::Log(LogError::Corrupt(e))
    }
}

#[derive(Debug)]
pub struct RaftStore {
    log: SegmentLog,
    hard_state_path: String,
}

impl RaftStore {
    /// Opens (recovering) the store in `dir`: the log in `dir/log`, the hard state in
    /// `dir/hard_state`. Returns what Raft needs to start and what recovery did.
    pub fn open(
        disk: &mut dyn Disk,
        dir: &str,
        cfg: LogConfig,
        now_wall_ms: i64,
    ) -> Result<(RaftStore, Recovered, RecoveryReport), StoreError> {
        let hard_state_path = format!("{dir}/hard_state");
        let hard_state = match read_state_file(disk, &hard_state_path).map_err(StoreError::State)? {
            None => HardState::default(),
            Some(bytes) => decode_hard_state(&bytes)?,
        };
        let (log, report) = SegmentLog::open(disk, &format!("{dir}/log"), cfg, 0, now_wall_ms)?;
        if log.log_start() != 0 {
            return Err(StoreError::Invalid(format!(
                "log starts at offset {}, snapshots are not supported yet",
                log.log_start()
            )));
        }
        let mut entries = Vec::new();
        let mut next = 0;
        while next < log.next_offset() {
            let chunk = log.read(disk, next, LOAD_CHUNK)?;
            for batch in batches(&chunk.bytes) {
                let batch = batch?;
                entries.push(decode_entry(batch.bytes)?);
            }
            next = chunk.next_offset;
        }
        if entries.len() as i64 != log.next_offset() {
            return Err(StoreError::Invalid(format!(
                "{} entries for {} offsets",
                entries.len(),
                log.next_offset()
            )));
        }
        Ok((
            RaftStore {
                log,
                hard_state_path,
            },
            Recovered {
                hard_state,
                base: Default::default(),
                entries,
            },
            report,
        ))
    }

    /// Performs one storage request and returns its completion.
    pub fn execute(
        &mut self,
        disk: &mut dyn Disk,
        req: StorageRequest,
        now_wall_ms: i64,
    ) -> Result<StorageCompletion, StoreError> {
        Ok(match req {
            StorageRequest::SaveHardState(hs) => {
                write_state_file(disk, &self.hard_state_path, &encode_hard_state(hs))?;
                StorageCompletion::HardStateSaved(hs)
            }
            StorageRequest::Append { first, entries } => {
                let expected = LogIndex(self.log.next_offset() as u64 + 1);
                if first != expected {
                    return Err(StoreError::Invalid(format!(
                        "append at {first:?}, log ends before {expected:?}"
                    )));
                }
                let mut blob = Vec::new();
                for (k, e) in entries.iter().enumerate() {
                    blob.extend_from_slice(&encode_entry(first.0 - 1 + k as u64, e, now_wall_ms)?);
                }
                self.log.append(disk, &blob, now_wall_ms)?;
                StorageCompletion::Appended {
                    last: LogIndex(self.log.next_offset() as u64),
                }
            }
            StorageRequest::Truncate { from } => {
                self.log.truncate(disk, from.0 as i64 - 1, now_wall_ms)?;
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

    /// Entries from `from` on (at most `max_entries`; past the first, at most `max_bytes` of
    /// data) and the position of entry `from - 1`; `None` when `from` is past the log's end.
    fn read_entries(
        &self,
        disk: &mut dyn Disk,
        from: LogIndex,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<(Option<LogPosition>, Vec<Entry>), StoreError> {
        let end = LogIndex(self.log.next_offset() as u64);
        if from == LogIndex::ZERO || from > end.next() {
            return Ok((None, Vec::new()));
        }
        // Start at entry `from - 1` (offset `from - 2`) to learn its term; index 0 has term 0.
        let mut index = LogIndex(from.0.saturating_sub(1).max(1));
        let mut prev = (from == LogIndex(1)).then(LogPosition::default);
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut offset = index.0 as i64 - 1;
        while offset < self.log.next_offset() {
            let chunk = self.log.read(disk, offset, LOAD_CHUNK)?;
            for batch in batches(&chunk.bytes) {
                let entry = decode_entry(batch?.bytes)?;
                if index < from {
                    prev = Some(LogPosition {
                        index,
                        term: entry.term,
                    });
                } else {
                    bytes = bytes.saturating_add(entry.data.len());
                    if out.len() == max_entries || (!out.is_empty() && bytes > max_bytes) {
                        return Ok((prev, out));
                    }
                    out.push(entry);
                }
                index = index.next();
            }
            offset = chunk.next_offset;
        }
        Ok((prev, out))
    }

    pub fn log(&self) -> &SegmentLog {
        &self.log
    }
}

fn encode_entry(offset: u64, e: &Entry, now_wall_ms: i64) -> Result<Vec<u8>, StoreError> {
    let epoch = i32::try_from(e.term.0)
        .map_err(|_| StoreError::Invalid(format!("term {:?} exceeds a leader epoch", e.term)))?;
    let spec = BatchSpec {
        base_offset: offset as i64,
        partition_leader_epoch: epoch,
        attributes: if e.kind == EntryKind::Noop {
            ATTR_CONTROL
        } else {
            0
        },
        base_timestamp: now_wall_ms,
        ..BatchSpec::default()
    };
    Ok(build_batch(
        spec,
        &[NewRecord {
            value: Some(&e.data),
            ..NewRecord::default()
        }],
    ))
}

fn decode_entry(batch: &[u8]) -> Result<Entry, StoreError> {
    let h = crate::protocol::records::parse_header(batch)?;
    let records = read_records(batch)?;
    let [record] = records.as_slice() else {
        return Err(StoreError::Invalid(format!(
            "batch at offset {} holds {} records, not one",
            h.base_offset,
            records.len()
        )));
    };
    let term = Term(
        u64::try_from(h.partition_leader_epoch)
            .map_err(|_| StoreError::Invalid("negative term".into()))?,
    );
    let kind = if h.is_control() {
        EntryKind::Noop
    } else {
        EntryKind::Normal
    };
    Ok(Entry {
        term,
        kind,
        data: record.value.clone().unwrap_or_default(),
    })
}

pub(crate) fn encode_hard_state(hs: HardState) -> Vec<u8> {
    let mut b = Vec::with_capacity(13);
    b.extend_from_slice(&hs.term.0.to_be_bytes());
    match hs.voted_for {
        None => b.push(0),
        Some(n) => {
            b.push(1);
            b.extend_from_slice(&n.0.to_be_bytes());
        }
    }
    b
}

pub(crate) fn decode_hard_state(b: &[u8]) -> Result<HardState, StoreError> {
    let bad = || StoreError::Invalid(format!("hard state of {} bytes", b.len()));
    let term = Term(u64::from_be_bytes(
        b.get(..8).ok_or_else(bad)?.try_into().map_err(|_| bad())?,
    ));
    let voted_for = match (b.get(8), b.len()) {
        (Some(0), 9) => None,
        (Some(1), 13) => Some(NodeId(u32::from_be_bytes(
            b[9..13].try_into().map_err(|_| bad())?,
        ))),
        _ => return Err(bad()),
    };
    Ok(HardState { term, voted_for })
}

#[cfg(test)]
mod tests {
    use super::super::mem::MemDisk;
    use super::*;
    use bytes::Bytes;

    fn entries() -> Vec<Entry> {
        vec![
            Entry::noop(Term(1)),
            Entry::normal(Term(1), Bytes::from_static(b"a")),
            Entry::normal(Term(2), Bytes::from_static(b"")),
            Entry::normal(Term(2), Bytes::from(vec![7; 300])),
        ]
    }

    #[test]
    fn requests_persist_and_recover_as_the_same_raft_state() {
        let mut disk = MemDisk::default();
        let (mut store, rec, _) =
            RaftStore::open(&mut disk, "raft", LogConfig::default(), 0).expect("opens");
        assert_eq!(rec, Recovered::default());
        let hs = HardState {
            term: Term(2),
            voted_for: Some(NodeId(3)),
        };
        store
            .execute(&mut disk, StorageRequest::SaveHardState(hs), 5)
            .expect("saves");
        let append = StorageRequest::Append {
            first: LogIndex(1),
            entries: entries(),
        };
        assert_eq!(
            store.execute(&mut disk, append, 5),
            Ok(StorageCompletion::Appended { last: LogIndex(4) })
        );
        store
            .execute(&mut disk, StorageRequest::Truncate { from: LogIndex(4) }, 5)
            .expect("truncates");
        store
            .execute(&mut disk, StorageRequest::Sync { up_to: LogIndex(3) }, 5)
            .expect("syncs");
        let (_, rec, _) =
            RaftStore::open(&mut disk, "raft", LogConfig::default(), 0).expect("reopens");
        assert_eq!(rec.hard_state, hs);
        assert_eq!(rec.entries, entries()[..3].to_vec());
    }

    #[test]
    fn an_append_that_does_not_continue_the_log_is_refused() {
        let mut disk = MemDisk::default();
        let (mut store, _, _) =
            RaftStore::open(&mut disk, "raft", LogConfig::default(), 0).expect("opens");
        let append = StorageRequest::Append {
            first: LogIndex(3),
            entries: entries(),
        };
        assert!(matches!(
            store.execute(&mut disk, append, 0),
            Err(StoreError::Invalid(_))
        ));
    }
}
