//! Group at least once: every acknowledged record below the group's final committed offset
//! of its partition (as an OffsetFetch read it at the end) was delivered to some member of
//! the group. A member commits the position after what it delivered, so a committed offset
//! above a record nobody delivered means a member resumed past it. Catches coordinators that
//! report a committed offset other than the one committed (a member resumes past records) and
//! members that skip.

use super::HistoryChecker;
use crate::checkers::CheckerKind;
use crate::kafka::history::{FinalState, GroupOp, History, SendOutcome};
use std::collections::BTreeSet;

#[derive(Debug, Default)]
pub struct GroupAtLeastOnce;

impl HistoryChecker for GroupAtLeastOnce {
    fn kind(&self) -> CheckerKind {
        CheckerKind::GroupAtLeastOnce
    }

    fn finish(&mut self, h: &History, f: &FinalState) -> Result<(), String> {
        let Some(committed) = f.group.as_ref().and_then(|g| g.committed.as_ref()) else {
            return Ok(());
        };
        let delivered: BTreeSet<(u32, i64)> = h
            .group_ops
            .iter()
            .filter_map(|op| match op {
                GroupOp::Delivered {
                    partition, offsets, ..
                } => Some(offsets.iter().map(move |&o| (*partition, o))),
                _ => None,
            })
            .flatten()
            .collect();
        let mut missing = Vec::new();
        for s in &h.sends {
            let SendOutcome::Ok { base_offset, .. } = s.outcome else {
                continue;
            };
            let p = s.partition;
            let (Some(&c), Some(log)) = (committed.get(p as usize), f.partitions.get(p as usize))
            else {
                continue;
            };
            for (k, &v) in s.values.iter().enumerate() {
                let o = base_offset + k as i64;
                let in_log = log.value_at(o) == Some(Some(v));
                if o < c && in_log && !delivered.contains(&(p, o)) {
                    missing.push((p, o, v, c));
                }
            }
        }
        match missing.first() {
            None => Ok(()),
            Some(&(p, o, v, c)) => Err(format!(
                "{} acknowledged record(s) below the group's committed offsets were delivered to no member; the first is partition {p} offset {o} (v{v:#x}), below committed offset {c}",
                missing.len()
            )),
        }
    }
}
