//! Group generation monotonic: a member never joins a generation older than one it joined
//! before, and one generation of the group is one membership: every answer for it names the
//! same leader, the leader's answers list the same members, and every member answered for it
//! is among them. Members are compared by group.instance.id when they have one (a static
//! member's new incarnation replaces its old member id in the same generation, by design).
//!
//! A member may see the same generation twice: a follower rejoining a Stable group is told
//! the current generation again (after a coordinator failover that lost a rebalance before
//! anyone learned of it, for one). It may not see a lower one, nor a generation whose
//! membership changed. Catches a coordinator that hands out a generation before it is
//! durable and, after a failover, hands it out again or goes back to an older one.

use super::HistoryChecker;
use crate::checkers::CheckerKind;
use crate::kafka::history::{GroupOp, History};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Default)]
struct Generation {
    /// Leader member ids as answers named them, with who said so and when.
    leaders: BTreeMap<String, (u32, u64)>,
    /// The members (identities) the first leader's answer listed, with when.
    members: Option<(BTreeSet<String>, u32, u64)>,
    /// Identities answered as members of this generation, with when.
    joined: BTreeMap<String, (u32, u64)>,
}

#[derive(Debug, Default)]
pub struct GroupGenerationMonotonic {
    /// member id -> (generation, time) of its latest join.
    last: BTreeMap<String, (i32, u64)>,
    /// member id -> identity (its group.instance.id, or the member id itself), once known.
    identity: BTreeMap<String, String>,
    generations: BTreeMap<i32, Generation>,
}

impl GroupGenerationMonotonic {
    fn identity_of(&self, member_id: &str) -> Option<String> {
        self.identity.get(member_id).cloned()
    }

    /// The checks of one generation, with what is known now.
    fn judge(&self, generation: i32) -> Result<(), String> {
        let Some(g) = self.generations.get(&generation) else {
            return Ok(());
        };
        let mut resolved: Vec<(String, &str, u32, u64)> = Vec::new();
        for (leader, &(client, at)) in &g.leaders {
            if let Some(id) = self.identity_of(leader) {
                resolved.push((id, leader, client, at));
            }
        }
        if let (Some(a), Some(b)) = (
            resolved.first(),
            resolved.iter().find(|r| r.0 != resolved[0].0),
        ) {
            return Err(format!(
                "generation {generation} has two leaders: client {} was told {} at {:.3}ms, client {} was told {} at {:.3}ms",
                a.2,
                a.1,
                a.3 as f64 / 1e6,
                b.2,
                b.1,
                b.3 as f64 / 1e6
            ));
        }
        if let Some((members, by, at)) = &g.members {
            for (who, &(client, t)) in &g.joined {
                if !members.contains(who) {
                    return Err(format!(
                        "generation {generation}: client {client} joined it as {who} at {:.3}ms, but its leader's answer (to client {by} at {:.3}ms) lists only {members:?}",
                        t as f64 / 1e6,
                        *at as f64 / 1e6
                    ));
                }
            }
        }
        Ok(())
    }
}

impl HistoryChecker for GroupGenerationMonotonic {
    fn kind(&self) -> CheckerKind {
        CheckerKind::GroupGenerationMonotonic
    }

    fn on_group_op(&mut self, h: &History, i: usize) -> Result<(), String> {
        let GroupOp::Joined {
            member,
            member_id,
            instance,
            generation,
            leader,
            members,
            at,
        } = &h.group_ops[i]
        else {
            return Ok(());
        };
        let (member, generation, at) = (*member, *generation, *at);
        if let Some(&(prev, t)) = self.last.get(member_id) {
            if generation < prev {
                return Err(format!(
                    "member {member_id} (client {member}) joined generation {generation} at {:.3}ms after generation {prev} at {:.3}ms",
                    at as f64 / 1e6,
                    t as f64 / 1e6
                ));
            }
        }
        self.last.insert(member_id.clone(), (generation, at));
        let me = instance.clone().unwrap_or_else(|| member_id.clone());
        self.identity.insert(member_id.clone(), me.clone());
        for (id, inst) in members {
            self.identity
                .insert(id.clone(), inst.clone().unwrap_or_else(|| id.clone()));
        }
        let listed: Option<BTreeSet<String>> = (!members.is_empty()).then(|| {
            members
                .iter()
                .map(|(id, inst)| inst.clone().unwrap_or_else(|| id.clone()))
                .collect()
        });
        let g = self.generations.entry(generation).or_default();
        g.leaders.entry(leader.clone()).or_insert((member, at));
        g.joined.entry(me).or_insert((member, at));
        if let Some(listed) = listed {
            match &g.members {
                None => g.members = Some((listed, member, at)),
                Some((first, by, t)) if *first != listed => {
                    return Err(format!(
                        "generation {generation} came with two memberships: {first:?} (to client {by} at {:.3}ms) and {listed:?} (to client {member} at {:.3}ms)",
                        *t as f64 / 1e6,
                        at as f64 / 1e6
                    ));
                }
                Some(_) => {}
            }
        }
        // An identity learned now may resolve the leaders of other generations too.
        let known: Vec<i32> = self.generations.keys().copied().collect();
        for g in known {
            self.judge(g)?;
        }
        Ok(())
    }
}
