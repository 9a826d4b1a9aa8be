//! Group commit monotonic: the committed offset of a partition for the group never goes
//! backwards, as acknowledged commits and OffsetFetch answers show it, except by a reset.
//!
//! Observations are intervals: a commit took effect between its request and its
//! acknowledgement, and an OffsetFetch read the committed offset between its request and its
//! answer. An observation that began after another ended must not show a lower offset (-1,
//! nothing committed, is lowest). A reset (a member moving its position back on purpose, or
//! auto.offset.reset) suspends the rule for its partition until a commit requested after the
//! reset is acknowledged; that commit's offset is the new floor.
//!
//! Catches commits acknowledged before they are durable (lost in a coordinator failover),
//! commits accepted from members of an old generation (a zombie's stale position written
//! over its successor's), and committed offsets that a new coordinator forgot.

use super::HistoryChecker;
use crate::checkers::CheckerKind;
use crate::kafka::history::{GroupOp, History};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
struct Partition {
    /// A reset began at this time and no commit requested after it is acknowledged yet.
    reset_at: Option<u64>,
    /// Observations in completion order: (completed at, highest offset so far, and what
    /// showed that highest offset).
    seen: Vec<(u64, i64, String)>,
}

#[derive(Debug, Default)]
pub struct GroupCommitMonotonic {
    partitions: BTreeMap<u32, Partition>,
}

impl GroupCommitMonotonic {
    fn observe(
        &mut self,
        partition: u32,
        invoked_at: u64,
        at: u64,
        offset: i64,
        what: String,
        commit: bool,
    ) -> Result<(), String> {
        let p = self.partitions.entry(partition).or_default();
        if let Some(reset_at) = p.reset_at {
            if commit && invoked_at >= reset_at {
                p.reset_at = None;
                p.seen = vec![(at, offset, what)];
            }
            return Ok(());
        }
        let before = p.seen.partition_point(|(done, _, _)| *done < invoked_at);
        if before > 0 {
            let (done, high, by) = &p.seen[before - 1];
            if *high > offset {
                return Err(format!(
                    "partition {partition}'s committed offset went back: {by} (over by {:.3}ms) showed {high}, then {what} (from {:.3}ms to {:.3}ms) showed {offset}",
                    *done as f64 / 1e6,
                    invoked_at as f64 / 1e6,
                    at as f64 / 1e6
                ));
            }
        }
        let high = p.seen.last().filter(|s| s.1 >= offset);
        let entry = match high {
            Some((_, h, by)) => (at, *h, by.clone()),
            None => (at, offset, what),
        };
        p.seen.push(entry);
        Ok(())
    }
}

impl HistoryChecker for GroupCommitMonotonic {
    fn kind(&self) -> CheckerKind {
        CheckerKind::GroupCommitMonotonic
    }

    fn on_group_op(&mut self, h: &History, i: usize) -> Result<(), String> {
        match &h.group_ops[i] {
            GroupOp::Committed {
                member,
                member_id,
                generation,
                partition,
                offset,
                reset,
                invoked_at,
                at,
            } => {
                let what = format!(
                    "a commit by {member_id} (client {member}, generation {generation}{})",
                    if *reset { ", a reset" } else { "" }
                );
                self.observe(*partition, *invoked_at, *at, *offset, what, true)
            }
            GroupOp::Fetched {
                member,
                partition,
                offset,
                invoked_at,
                at,
            } => {
                let what = format!("an OffsetFetch by client {member}");
                self.observe(*partition, *invoked_at, *at, *offset, what, false)
            }
            GroupOp::Reset { partition, at, .. } => {
                let p = self.partitions.entry(*partition).or_default();
                p.reset_at = Some(p.reset_at.map_or(*at, |r| r.min(*at)));
                p.seen.clear();
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
