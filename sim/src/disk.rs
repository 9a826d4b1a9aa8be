//! The simulated disk under one node's Raft log and hard state.
//!
//! Fault model:
//! - Requests complete in order (a FIFO device queue), each after a latency drawn per kind;
//!   a slow-disk fault multiplies latencies.
//! - `SaveHardState` is atomic (write, fsync, rename): durable on completion.
//! - `Append` and `Truncate` reach only the volatile page cache on completion; a `Sync`
//!   completion makes every earlier one durable.
//! - On a crash, the volatile writes are lost, except that a random prefix of them may have
//!   reached the platter; the last surviving append may be torn (only a prefix of its entries
//!   survives: a torn record fails its checksum and recovery cuts the log there). Requests still
//!   in the device queue are lost.
//!
//! Not modelled here: read errors, bit flips, misdirected writes. The real storage engine
//! (segment files over the `Disk` trait) brings those, and replaces this log model.

use sluice_core::ids::LogIndex;
use sluice_core::raft::{Entry, HardState, Recovered, StorageCompletion, StorageRequest};
use sluice_core::rng::DetRng;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskParams {
    pub write_us_min: u64,
    pub write_us_max: u64,
    pub sync_us_min: u64,
    pub sync_us_max: u64,
    /// Whether a crash may keep a prefix of unsynced writes (with a torn last append).
    pub torn_writes: bool,
}

impl Default for DiskParams {
    fn default() -> Self {
        DiskParams {
            write_us_min: 5,
            write_us_max: 50,
            sync_us_min: 100,
            sync_us_max: 2_000,
            torn_writes: true,
        }
    }
}

#[derive(Clone, Debug)]
enum VolatileOp {
    Append(Vec<Entry>),
    Truncate(LogIndex),
}

#[derive(Debug)]
pub struct SimDisk {
    durable_log: Vec<Entry>,
    durable_hard: HardState,
    /// The log as the page cache holds it: durable plus completed-but-unsynced writes.
    volatile: Vec<VolatileOp>,
    busy_until: u64,
    pub slow_factor: u64,
}

impl SimDisk {
    pub fn new() -> SimDisk {
        SimDisk {
            durable_log: Vec::new(),
            durable_hard: HardState::default(),
            volatile: Vec::new(),
            busy_until: 0,
            slow_factor: 1,
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
        let us = rng.range_inclusive(lo, hi.max(lo)) * self.slow_factor;
        let at = now.max(self.busy_until) + us * 1_000;
        self.busy_until = at;
        at
    }

    /// Applies a request as it completes and returns the completion to hand to Raft.
    pub fn complete(&mut self, req: StorageRequest) -> StorageCompletion {
        match req {
            StorageRequest::SaveHardState(hs) => {
                self.durable_hard = hs;
                StorageCompletion::HardStateSaved(hs)
            }
            StorageRequest::Append { first, entries } => {
                let last = LogIndex(first.0 + entries.len() as u64 - 1);
                self.volatile.push(VolatileOp::Append(entries));
                StorageCompletion::Appended { last }
            }
            StorageRequest::Truncate { from } => {
                self.volatile.push(VolatileOp::Truncate(from));
                StorageCompletion::Truncated { from }
            }
            StorageRequest::Sync { up_to } => {
                for op in std::mem::take(&mut self.volatile) {
                    apply(&mut self.durable_log, op);
                }
                StorageCompletion::Synced { up_to }
            }
        }
    }

    /// A crash: keeps a random prefix of the unsynced writes (the last one possibly torn) and
    /// forgets the device queue. Returns how many unsynced entries were lost, for the trace.
    pub fn crash(&mut self, params: &DiskParams, rng: &mut DetRng) -> usize {
        let volatile = std::mem::take(&mut self.volatile);
        let mut lost = 0;
        let keep = if params.torn_writes {
            rng.range_inclusive(0, volatile.len() as u64) as usize
        } else {
            0
        };
        for (i, op) in volatile.into_iter().enumerate() {
            match op {
                VolatileOp::Append(mut entries) if i == keep => {
                    let torn = rng.range_inclusive(0, entries.len() as u64) as usize;
                    lost += entries.len() - torn;
                    entries.truncate(torn);
                    apply(&mut self.durable_log, VolatileOp::Append(entries));
                }
                op if i < keep => apply(&mut self.durable_log, op),
                VolatileOp::Append(entries) => lost += entries.len(),
                VolatileOp::Truncate(_) => {}
            }
        }
        self.busy_until = 0;
        lost
    }

    pub fn recover(&self) -> Recovered {
        Recovered {
            hard_state: self.durable_hard,
            entries: self.durable_log.clone(),
        }
    }
}

impl Default for SimDisk {
    fn default() -> Self {
        SimDisk::new()
    }
}

fn apply(log: &mut Vec<Entry>, op: VolatileOp) {
    match op {
        VolatileOp::Append(entries) => log.extend(entries),
        VolatileOp::Truncate(from) => log.truncate(from.0.saturating_sub(1) as usize),
    }
}
