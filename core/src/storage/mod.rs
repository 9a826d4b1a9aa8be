//! The storage engine: partition logs as segment files of Kafka RecordBatch v2 batches, with a
//! sparse offset index and a time index per segment, size- and age-based rolling, retention by
//! time and size, crash recovery that cuts a torn or corrupt tail at the first bad batch, and
//! small state files (Raft term and vote, metadata) written atomically.
//!
//! Everything goes through the narrow [`Disk`] trait: the runtime implements it with real files
//! on a blocking thread, the simulator in memory with faults, so the same engine code runs in
//! both. This module decides layout and recovery; it never assigns offsets (the replication
//! layer does) and never decompresses records.
//!
//! Durability: appended bytes are durable only after [`SegmentLog::sync`]. Rolling a segment
//! syncs the one it closes, so only the active segment can ever hold unsynced bytes, and
//! recovery only has to scan that one.

mod atomic;
mod disk;
mod log;
mod partition_store;
mod raft_store;
mod segment;

pub use atomic::{read_state_file, write_state_file, StateFileError};
pub use disk::{names_in_dir, Disk, DiskError, DiskErrorKind};
pub use log::{AppendInfo, LogConfig, LogError, ReadResult, RecoveryReport, SegmentLog};
pub use partition_store::{PartitionRecovery, PartitionStore};
pub use raft_store::{RaftStore, StoreError};

#[cfg(test)]
pub(crate) mod mem;
#[cfg(test)]
mod tests;
