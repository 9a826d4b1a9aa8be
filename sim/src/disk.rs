//! One node's storage in the simulator: the real storage engine (`RaftStore` over a
//! `SegmentLog`) running on a [`SimFs`], behind a device queue with latency.
//!
//! Fault model (the byte-level crash model is in `fs.rs`):
//! - Requests complete in order (a FIFO device queue), each after a latency drawn per kind; a
//!   slow-disk fault multiplies latencies. The Kafka-level simulator uses `GroupCommit`
//!   instead: the same FIFO order, with one fsync per drain of the queue, as the product's
//!   storage thread does.
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
        let sync = matches!(
            req,
            StorageRequest::Sync { .. } | StorageRequest::SaveHardState(_)
        );
        device_completion(
            &mut self.busy_until,
            self.slow_factor,
            now,
            sync,
            params,
            rng,
        )
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

/// The FIFO device queue shared by every simulated disk: a request submitted `now` completes
/// after the requests before it (`busy_until`) plus its own latency, drawn from the sync or the
/// write range and multiplied by the slow-disk factor.
pub fn device_completion(
    busy_until: &mut u64,
    slow_factor: u64,
    now: u64,
    sync: bool,
    params: &DiskParams,
    rng: &mut DetRng,
) -> u64 {
    let (lo, hi) = if sync {
        (params.sync_us_min, params.sync_us_max)
    } else {
        (params.write_us_min, params.write_us_max)
    };
    let us = rng.range_inclusive(lo, hi.max(lo)) * slow_factor.max(1);
    let at = now.max(*busy_until) + us * 1_000;
    *busy_until = at;
    at
}

pub(crate) fn faults(p: &DiskParams) -> FsFaults {
    FsFaults {
        io_error_ppm: p.io_error_ppm,
        garbage_ppm: p.garbage_ppm,
        torn_writes: p.torn_writes,
    }
}

/// A device queue with group commit, as `runtime-tokio`'s storage thread performs jobs: when
/// the device is idle, it takes every queued job at once (a drain), performs the writes in
/// order, then one fsync for all the syncs among them. Jobs before the drain's first sync
/// complete after their writes; the sync and every job after it complete after the fsync.
/// Jobs that arrive during a drain wait for the next one. A drain takes at most
/// `GROUP_COMMIT_MAX_JOBS` jobs (a device queue depth), so a slow-disk episode slows the jobs
/// queued while it lasts, not everything queued behind them for seconds after the disk
/// recovered. Completion times never decrease, so completions come back in submission order.
///
/// Latencies are drawn per write and once per drain for the fsync, from `DiskParams`, and
/// multiplied by the slow-disk factor.
/// The most jobs one group-commit drain takes.
pub const GROUP_COMMIT_MAX_JOBS: usize = 64;

#[derive(Debug)]
pub struct GroupCommit<J> {
    queue: std::collections::VecDeque<J>,
    busy_until: u64,
    draining: bool,
    pub slow_factor: u64,
}

impl<J> Default for GroupCommit<J> {
    fn default() -> Self {
        GroupCommit {
            queue: std::collections::VecDeque::new(),
            busy_until: 0,
            draining: false,
            slow_factor: 1,
        }
    }
}

impl<J> GroupCommit<J> {
    /// Queues a job; returns true if the device is idle and a drain should start now.
    pub fn submit(&mut self, job: J) -> bool {
        self.queue.push_back(job);
        !self.draining
    }

    /// Starts a drain at `now` over every queued job: their completion times, in order. The
    /// device is busy until `busy_until()`; call `on_idle` then.
    pub fn drain(
        &mut self,
        now: u64,
        params: &DiskParams,
        rng: &mut DetRng,
        is_sync: impl Fn(&J) -> bool,
    ) -> Vec<(u64, J)> {
        let slow = self.slow_factor.max(1);
        let mut t = now.max(self.busy_until);
        let mut out = Vec::with_capacity(self.queue.len());
        let mut after_sync = Vec::new();
        let take = self.queue.len().min(GROUP_COMMIT_MAX_JOBS);
        for job in self.queue.drain(..take) {
            if !after_sync.is_empty() || is_sync(&job) {
                // Performed with the rest of the drain; completes after the fsync.
                let (lo, hi) = (params.write_us_min, params.write_us_max);
                t += rng.range_inclusive(lo, hi.max(lo)) * slow * 1_000;
                after_sync.push(job);
                continue;
            }
            let (lo, hi) = (params.write_us_min, params.write_us_max);
            t += rng.range_inclusive(lo, hi.max(lo)) * slow * 1_000;
            out.push((t, job));
        }
        if !after_sync.is_empty() {
            let (lo, hi) = (params.sync_us_min, params.sync_us_max);
            t += rng.range_inclusive(lo, hi.max(lo)) * slow * 1_000;
            out.extend(after_sync.into_iter().map(|j| (t, j)));
        }
        self.busy_until = t;
        self.draining = !out.is_empty();
        out
    }

    /// The current drain is over; returns true if jobs queued meanwhile need a new drain.
    pub fn on_idle(&mut self) -> bool {
        self.draining = false;
        !self.queue.is_empty()
    }

    pub fn busy_until(&self) -> u64 {
        self.busy_until
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Power cut: queued jobs vanish with the process that asked for them.
    pub fn clear(&mut self) {
        self.queue.clear();
        self.draining = false;
        self.busy_until = 0;
    }
}
