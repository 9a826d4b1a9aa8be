//! Failover time, measured from the history: for every fault that takes a partition leader
//! away (a crash, an isolation, a one-way cut of its links, a pause), the time from the fault
//! to the first acks=all produce on that partition acknowledged by a leader of a later epoch.
//!
//! A fault whose partition never saw such an acknowledgement before the run ended is counted
//! as unresolved, not as a sample (the liveness phase heals everything, so most resolve).

use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct Failover {
    /// partition -> (fault time, the deposed leader's epoch), the oldest open fault per
    /// partition.
    open: BTreeMap<u32, (u64, i32)>,
    /// Nanoseconds from fault to the first acks=all acknowledgement at a new leader.
    pub samples: Vec<u64>,
}

impl Failover {
    /// A fault hit `partition`, led in `epoch`.
    pub fn on_fault(&mut self, now: u64, partition: u32, epoch: i32) {
        self.open.entry(partition).or_insert((now, epoch));
    }

    /// An acks=all produce on `partition` was acknowledged by a broker leading it in `epoch`.
    pub fn on_ack(&mut self, now: u64, partition: u32, epoch: i32) {
        if let Some(&(at, old)) = self.open.get(&partition) {
            if epoch > old {
                self.open.remove(&partition);
                self.samples.push(now.saturating_sub(at));
            }
        }
    }

    pub fn unresolved(&self) -> usize {
        self.open.len()
    }

    /// (p50, max) in milliseconds, if any failover was measured.
    pub fn summary(&self) -> Option<(f64, f64)> {
        summarize(&self.samples)
    }
}

/// (p50, max) in milliseconds of nanosecond samples.
pub fn summarize(samples: &[u64]) -> Option<(f64, f64)> {
    if samples.is_empty() {
        return None;
    }
    let mut s = samples.to_vec();
    s.sort_unstable();
    let p50 = s[(s.len() - 1) / 2];
    let max = *s.last().expect("non-empty");
    Some((p50 as f64 / 1e6, max as f64 / 1e6))
}
