//! One node's storage in the simulator: the real storage engine (`RaftStore` over a
//! `SegmentLog`) running on a [`SimFs`], behind a device queue with latency.
//!
//! Fault model (the byte-level crash model is in `fs.rs`):
//! - Requests complete in order (a FIFO device queue), each after a latency drawn per kind; a
//!   slow-disk fault multiplies latencies.
//! - Appends and truncations are volatile until a sync; the hard state is written atomically.
//!   A crash keeps a random, possibly torn and garbage-tailed, prefix of unsynced bytes, and the
//!   engine's recovery must cut it at the first bad batch.
//! - A write or sync may fail (`io_error_ppm`); the node then stops (fail-stop) and restarts
//!   later, recovering from what is on its disk. Recovery itself sees no injected errors.

use crate::fs::{FsFaults, SimFs, SimFsHandle};
use sluice_core::raft::{Recovered, StorageCompletion, StorageRequest};
use sluice_core::rng::DetRng;
use sluice_core::storage::{LogConfig, RaftStore, RecoveryReport, StoreError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskParams {
    pub write_us_min: u64,
    pub write_us_max: u64,
    pub sync_us_min: u64,
    pub sync_us_max: u64,
    /// Whether a crash may keep a prefix of unsynced bytes (a torn write).
    pub torn_writes: bool,
    /// Probability that a kept torn tail carries a garbage byte.
    pub garbage_ppm: u32,
    /// Probability that a write or sync fails.
    pub io_error_ppm: u32,
    /// Segment size of the Raft log, small so simulated runs roll segments.
    pub segment_bytes: u64,
}

impl Default for DiskParams {
    fn default() -> Self {
        DiskParams {
            write_us_min: 5,
            write_us_max: 50,
            sync_us_min: 100,
            sync_us_max: 2_000,
            torn_writes: true,
            garbage_ppm: 300_000,
            io_error_ppm: 0,
            segment_bytes: 64 * 1024,
        }
    }
}

impl DiskParams {
    fn log_config(&self) -> LogConfig {
        LogConfig {
            segment_bytes: self.segment_bytes,
            retention_ms: None,
            ..LogConfig::default()
        }
    }
}

#[derive(Debug, Default)]
pub struct NodeDisk {
    pub fs: SimFs,
    store: Option<RaftStore>,
    busy_until: u64,
    pub slow_factor: u64,
}

const STORE_DIR: &str = "raft";

impl NodeDisk {
    pub fn new() -> NodeDisk {
        NodeDisk {
            slow_factor: 1,
            ..NodeDisk::default()
        }
    }

    /// When a request submitted now will complete.
    pub fn schedule(
        &mut self,
        now: u64,
        req: &StorageRequest,
        params: &DiskParams,
        rng: &mut DetRng,
    ) -> u64 {
        let (lo, hi) = match req {
            StorageRequest::Sync { .. } | StorageRequest::SaveHardState(_) => {
                (params.sync_us_min, params.sync_us_max)
            }
            _ => (params.write_us_min, params.write_us_max),
        };
        let us = rng.range_inclusive(lo, hi.max(lo)) * self.slow_factor.max(1);
        let at = now.max(self.busy_until) + us * 1_000;
        self.busy_until = at;
        at
    }

    /// Performs a request as it completes.
    pub fn complete(
        &mut self,
        req: StorageRequest,
        params: &DiskParams,
        rng: &mut DetRng,
        now_wall_ms: i64,
    ) -> Result<StorageCompletion, StoreError> {
        self.fs.faults = faults(params);
        let store = self
            .store
            .as_mut()
            .expect("a running node has an open store");
        store.execute(
            &mut SimFsHandle {
                fs: &mut self.fs,
                rng,
            },
            req,
            now_wall_ms,
        )
    }

    /// Power cut: the store closes and the file system loses what it may lose. Returns the
    /// number of unsynced bytes lost.
    pub fn crash(&mut self, params: &DiskParams, rng: &mut DetRng) -> usize {
        self.store = None;
        self.busy_until = 0;
        self.fs.faults = faults(params);
        self.fs.crash(rng)
    }

    /// Opens the store from what is on disk (no injected errors during recovery).
    pub fn recover(
        &mut self,
        params: &DiskParams,
        rng: &mut DetRng,
        now_wall_ms: i64,
    ) -> Result<(Recovered, RecoveryReport), StoreError> {
        self.fs.faults = FsFaults {
            io_error_ppm: 0,
            ..faults(params)
        };
        let (store, recovered, report) = RaftStore::open(
            &mut SimFsHandle {
                fs: &mut self.fs,
                rng,
            },
            STORE_DIR,
            params.log_config(),
            now_wall_ms,
        )?;
        self.store = Some(store);
        Ok((recovered, report))
    }
}

fn faults(p: &DiskParams) -> FsFaults {
    FsFaults {
        io_error_ppm: p.io_error_ppm,
        garbage_ppm: p.garbage_ppm,
        torn_writes: p.torn_writes,
    }
}
