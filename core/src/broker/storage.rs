//! The broker's storage requests and the executor every driver uses to perform them, so the
//! simulator and the runtime share one implementation of "what a request does to the disk".
//!
//! Requests for one target are answered in the order they were made (the driver keeps one FIFO
//! queue); a Raft request that fails means the disk is broken and the broker must stop
//! (fail-stop: the error goes to the driver, which stops the process).

use super::PartitionId;
use crate::protocol::record::{read_records_with, Decompressor};
use crate::protocol::records::{batches, BatchHeader};
use crate::raft::{StorageCompletion, StorageRequest};
use crate::storage::{
    read_state_file, write_state_file, Disk, LogConfig, LogError, PartitionRecovery,
    PartitionStore, RaftStore, ReadResult, StoreError,
};
use std::collections::BTreeMap;

/// ListOffsets' "largest timestamp" query (KIP-734), passed through `OffsetForTimestamp`.
pub const MAX_TIMESTAMP: i64 = -3;

/// Where the catalogue lives, relative to the data directory.
pub const CATALOGUE_FILE: &str = "catalogue";
/// Where a voter keeps the metadata log, relative to the data directory.
pub const METADATA_DIR: &str = "metadata";

/// What a storage job is for. Jobs for one target are performed in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StorageTarget {
    /// The broker's own files (the catalogue).
    Broker,
    /// The metadata group's log (voters).
    Metadata,
    Partition(PartitionId),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageJob {
    /// Open (creating or recovering) a partition's store in `dir`. A single voter's whole
    /// log is committed; a replicated partition's recovery stops at its commit point.
    Open {
        dir: String,
        cfg: LogConfig,
        single_voter: bool,
        /// Also return every stored batch (the offsets topic's partitions, whose records
        /// rebuild the group coordinator's state).
        replay: bool,
    },
    /// Open (creating or recovering) the metadata group's log.
    OpenMetadata,
    /// Persist a replicated partition's commit point (a lower bound of its commit index).
    SaveCommit(crate::ids::LogIndex),
    /// A request from the partition's Raft group.
    Raft(StorageRequest),
    /// Read whole batches from `from`, about `max_bytes` (at least one batch).
    Read {
        token: u64,
        from: i64,
        max_bytes: usize,
    },
    /// The first record with a timestamp at or after `ts` (or, for [`MAX_TIMESTAMP`], the
    /// record with the largest timestamp).
    OffsetForTimestamp { token: u64, ts: i64 },
    /// Apply retention. `floor`: the log below this offset is redundant and may go too (an
    /// offsets partition's latest checkpoint).
    Housekeeping { floor: Option<i64> },
    /// Remove the partition's files.
    Delete,
    /// Persist the catalogue (target: `Broker`).
    SaveCatalogue(Vec<u8>),
}

#[derive(Debug)]
pub enum StorageDone {
    MetadataOpened {
        recovered: crate::raft::Recovered,
    },
    Opened {
        /// Boxed: it is much larger than any other completion.
        recovery: Box<PartitionRecovery>,
        /// Headers of the idempotent batches on disk, in offset order.
        batches: Vec<BatchHeader>,
        /// (base offset, batch) of every stored batch, when the job asked to replay.
        replay: Vec<(i64, bytes::Bytes)>,
    },
    Raft(StorageCompletion),
    Read {
        token: u64,
        result: Result<ReadResult, ReadError>,
    },
    OffsetForTimestamp {
        token: u64,
        result: Result<Option<(i64, i64)>, String>,
    },
    Housekeeping {
        log_start: i64,
        /// Bytes of the segment files left.
        size_bytes: u64,
    },
    Deleted,
    CatalogueSaved,
    CommitSaved,
}

/// Why a read returned no data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The offset is no longer (or not yet) in the log: retention moved the start meanwhile.
    OutOfRange,
    /// The disk failed.
    Failed(String),
}

/// Performs storage jobs against a data directory on a [`Disk`].
pub struct BrokerStorage {
    data_dir: String,
    stores: BTreeMap<PartitionId, PartitionStore>,
    metadata: Option<RaftStore>,
    /// For exact timestamp lookups inside compressed batches; without one, a lookup that lands
    /// in a compressed batch answers with the batch's first offset.
    decompressor: Option<Box<dyn Decompressor>>,
}

impl std::fmt::Debug for BrokerStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerStorage")
            .field("data_dir", &self.data_dir)
            .field("partitions", &self.stores.len())
            .finish()
    }
}

impl BrokerStorage {
    pub fn new(data_dir: &str) -> BrokerStorage {
        BrokerStorage {
            data_dir: data_dir.trim_end_matches('/').to_string(),
            stores: BTreeMap::new(),
            metadata: None,
            decompressor: None,
        }
    }

    pub fn with_decompressor(mut self, d: Box<dyn Decompressor>) -> BrokerStorage {
        self.decompressor = Some(d);
        self
    }

    /// Reads the persisted catalogue, if any.
    pub fn load_catalogue(&self, disk: &mut dyn Disk) -> Result<Option<Vec<u8>>, StoreError> {
        read_state_file(disk, &format!("{}/{CATALOGUE_FILE}", self.data_dir))
            .map_err(StoreError::State)
    }

    /// Performs one job. An `Err` is a disk failure the broker cannot continue after.
    pub fn execute(
        &mut self,
        disk: &mut dyn Disk,
        target: StorageTarget,
        job: StorageJob,
        now_wall_ms: i64,
    ) -> Result<StorageDone, StoreError> {
        let missing = || StoreError::Invalid(format!("no open store for {target:?}"));
        if target == StorageTarget::Metadata {
            return self.execute_metadata(disk, job, now_wall_ms);
        }
        let id = match target {
            StorageTarget::Partition(id) => Some(id),
            _ => None,
        };
        Ok(match job {
            StorageJob::SaveCatalogue(bytes) => {
                write_state_file(disk, &format!("{}/{CATALOGUE_FILE}", self.data_dir), &bytes)?;
                StorageDone::CatalogueSaved
            }
            StorageJob::OpenMetadata => return Err(missing()),
            StorageJob::SaveCommit(commit) => {
                let store = self.store(id).ok_or_else(missing)?;
                store.save_commit(disk, commit)?;
                StorageDone::CommitSaved
            }
            StorageJob::Open {
                dir,
                cfg,
                single_voter,
                replay,
            } => {
                let id = id.ok_or_else(missing)?;
                let mut batches = Vec::new();
                let (store, recovery) = PartitionStore::open(
                    disk,
                    &format!("{}/{dir}", self.data_dir),
                    cfg,
                    now_wall_ms,
                    single_voter,
                    // Only idempotent batches matter after start-up (producer state).
                    &mut |h| {
                        if h.is_idempotent() {
                            batches.push(*h)
                        }
                    },
                )?;
                let replay = if replay {
                    replay_batches(&store, disk)?
                } else {
                    Vec::new()
                };
                self.stores.insert(id, store);
                StorageDone::Opened {
                    recovery: Box::new(recovery),
                    batches,
                    replay,
                }
            }
            StorageJob::Raft(req) => {
                let store = self.store(id).ok_or_else(missing)?;
                StorageDone::Raft(store.execute(disk, req, now_wall_ms)?)
            }
            StorageJob::Read {
                token,
                from,
                max_bytes,
            } => {
                let store = self.store(id).ok_or_else(missing)?;
                StorageDone::Read {
                    token,
                    result: store.read(disk, from, max_bytes).map_err(|e| match e {
                        StoreError::Log(LogError::OffsetOutOfRange { .. }) => ReadError::OutOfRange,
                        other => ReadError::Failed(other.to_string()),
                    }),
                }
            }
            StorageJob::OffsetForTimestamp { token, ts } => {
                let decompressor = self.decompressor.as_deref();
                let store = id
                    .and_then(|id| self.stores.get_mut(&id))
                    .ok_or_else(missing)?;
                StorageDone::OffsetForTimestamp {
                    token,
                    result: offset_for_timestamp(store, disk, ts, decompressor),
                }
            }
            StorageJob::Housekeeping { floor } => {
                let store = self.store(id).ok_or_else(missing)?;
                let log_start = store.housekeeping(disk, now_wall_ms, floor)?;
                StorageDone::Housekeeping {
                    log_start,
                    size_bytes: store.log().size_bytes(),
                }
            }
            StorageJob::Delete => {
                let id = id.ok_or_else(missing)?;
                if let Some(store) = self.stores.remove(&id) {
                    remove_tree(disk, store.dir())?;
                }
                StorageDone::Deleted
            }
        })
    }

    fn execute_metadata(
        &mut self,
        disk: &mut dyn Disk,
        job: StorageJob,
        now_wall_ms: i64,
    ) -> Result<StorageDone, StoreError> {
        match job {
            StorageJob::OpenMetadata => {
                let dir = format!("{}/{METADATA_DIR}", self.data_dir);
                let (store, recovered, _report) =
                    RaftStore::open(disk, &dir, LogConfig::default(), now_wall_ms)?;
                self.metadata = Some(store);
                Ok(StorageDone::MetadataOpened { recovered })
            }
            StorageJob::Raft(req) => {
                let store = self.metadata.as_mut().ok_or_else(|| {
                    StoreError::Invalid("the metadata log is not open".to_string())
                })?;
                Ok(StorageDone::Raft(store.execute(disk, req, now_wall_ms)?))
            }
            other => Err(StoreError::Invalid(format!(
                "{other:?} is not a metadata job"
            ))),
        }
    }

    /// Makes every partition's appended data durable (for a clean shutdown).
    pub fn sync_all(&mut self, disk: &mut dyn Disk) -> Result<(), StoreError> {
        for store in self.stores.values_mut() {
            store.sync(disk)?;
        }
        Ok(())
    }

    fn store(&mut self, id: Option<PartitionId>) -> Option<&mut PartitionStore> {
        id.and_then(|id| self.stores.get_mut(&id))
    }
}

/// The first record at or after `ts`: the time index finds the batch, then its records are
/// read (decompressed if needed) to find the exact record. (offset, timestamp).
fn offset_for_timestamp(
    store: &mut PartitionStore,
    disk: &mut dyn Disk,
    ts: i64,
    decompressor: Option<&dyn Decompressor>,
) -> Result<Option<(i64, i64)>, String> {
    // ListOffsets -3 (KIP-734): the record with the largest timestamp, i.e. the first record
    // at or after the log's maximum timestamp.
    let ts = if ts == MAX_TIMESTAMP {
        match store.log().max_timestamp() {
            max if max >= 0 => max,
            _ => return Ok(None),
        }
    } else {
        ts
    };
    let Some((base, max_ts)) = store
        .offset_for_timestamp(disk, ts)
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let read = store.read(disk, base, 1).map_err(|e| e.to_string())?;
    let Some(batch) = batches(&read.bytes).next() else {
        return Ok(Some((base, max_ts)));
    };
    let batch = batch.map_err(|e| e.to_string())?;
    let records = read_records_with(batch.bytes, decompressor)?;
    let exact = records
        .into_iter()
        .flatten()
        .find(|r| r.timestamp >= ts)
        .map(|r| (r.offset, r.timestamp));
    Ok(Some(exact.unwrap_or((base, max_ts))))
}

/// Removes the files of a partition directory (its `log/` and state files).
/// Every batch of a store, from its log start, in order.
fn replay_batches(
    store: &PartitionStore,
    disk: &mut dyn Disk,
) -> Result<Vec<(i64, bytes::Bytes)>, StoreError> {
    const CHUNK: usize = 1 << 20;
    let mut out = Vec::new();
    let mut from = store.log().log_start();
    let end = store.log().next_offset();
    while from < end {
        let read = store.read(disk, from, CHUNK)?;
        if read.bytes.is_empty() || read.next_offset <= from {
            break;
        }
        for b in batches(&read.bytes) {
            let b = b.map_err(|e| StoreError::Invalid(format!("replaying a stored batch: {e}")))?;
            out.push((b.header.base_offset, bytes::Bytes::copy_from_slice(b.bytes)));
        }
        from = read.next_offset;
    }
    Ok(out)
}

fn remove_tree(disk: &mut dyn Disk, dir: &str) -> Result<(), StoreError> {
    for sub in [format!("{dir}/log"), dir.to_string()] {
        for name in disk.list(&sub)? {
            let path = format!("{sub}/{name}");
            if disk.len(&path).is_ok() {
                disk.remove(&path)?;
            }
        }
        disk.sync_dir(&sub)?;
    }
    Ok(())
}
