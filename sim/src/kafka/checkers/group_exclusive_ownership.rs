//! Group exclusive ownership: in one generation of the group, each partition of the topic is
//! assigned to at most one member, as the members' SyncGroup answers show it. A member is its
//! group.instance.id if it has one (a static member's new incarnation takes its old place,
//! and its assignment, in the same generation, by design), else its member id. Catches a
//! generation handed out twice with different assignments (a coordinator that answered a
//! rebalance before it was durable, then failed over) and assignments given to the wrong
//! member.

use super::HistoryChecker;
use crate::checkers::CheckerKind;
use crate::kafka::history::{GroupOp, History};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct GroupExclusiveOwnership {
    /// (generation, partition) -> (owner, its member id, client, time).
    owners: BTreeMap<(i32, u32), (String, String, u32, u64)>,
}

impl HistoryChecker for GroupExclusiveOwnership {
    fn kind(&self) -> CheckerKind {
        CheckerKind::GroupExclusiveOwnership
    }

    fn on_group_op(&mut self, h: &History, i: usize) -> Result<(), String> {
        let GroupOp::Assigned {
            member,
            member_id,
            instance,
            generation,
            partitions,
            at,
        } = &h.group_ops[i]
        else {
            return Ok(());
        };
        let owner = instance.clone().unwrap_or_else(|| member_id.clone());
        for &p in partitions {
            let (o, id, c, t) = self
                .owners
                .entry((*generation, p))
                .or_insert_with(|| (owner.clone(), member_id.clone(), *member, *at));
            if *o != owner {
                return Err(format!(
                    "partition {p} is assigned twice in generation {generation}: to {id} (client {c}) at {:.3}ms and to {member_id} (client {member}) at {:.3}ms",
                    *t as f64 / 1e6,
                    *at as f64 / 1e6
                ));
            }
        }
        Ok(())
    }
}
