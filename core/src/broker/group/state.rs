//! One consumer group as its coordinator holds it: members, generation, the chosen protocol,
//! the rebalance in progress, and the requests parked on it (Kafka's classic group protocol).
//!
//! Owns the group's in-memory rules: which protocol the members share, who leads, who has
//! rejoined, when a member's session ends. The broker glue in `mod.rs` decides when to write
//! the group to the log and answers the parked requests.

use super::records::{GroupValue, MemberValue};
use crate::broker::{PartitionId, Reply};
use crate::time::Instant;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::time::Duration;

/// Kafka's group states, named as DescribeGroups and ListGroups spell them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupState {
    /// No members (it may still hold committed offsets).
    Empty,
    /// Waiting for the members to (re)join.
    PreparingRebalance,
    /// Everyone joined; waiting for the leader's assignment.
    CompletingRebalance,
    Stable,
    /// Being deleted.
    Dead,
}

impl GroupState {
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// A JoinGroup waiting for the rebalance to complete.
#[derive(Clone, Debug)]
pub struct ParkedJoin {
    pub reply: Reply,
}

#[derive(Clone, Debug)]
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout: Duration,
    pub session_timeout: Duration,
    pub protocol_type: String,
    /// (protocol name, metadata), in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub join: Option<ParkedJoin>,
    pub sync: Option<Reply>,
    /// When the session ends without a heartbeat.
    pub expires: Instant,
}

impl Member {
    /// The member's metadata for `protocol`.
    pub fn metadata(&self, protocol: Option<&str>) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| Some(name.as_str()) == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    /// Whether the session may end now: a member whose join or sync waits on the coordinator
    /// is kept alive by that request.
    pub fn expired(&self, now: Instant) -> bool {
        self.join.is_none() && self.sync.is_none() && self.expires <= now
    }
}

#[derive(Clone, Debug)]
pub struct Group {
    pub id: String,
    /// The `__consumer_offsets` partition that holds it.
    pub partition: PartitionId,
    pub state: GroupState,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub generation: i32,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// group.instance.id -> member id, for static members.
    pub statics: BTreeMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, until the member rejoins with it or its
    /// session timeout passes.
    pub pending: BTreeMap<String, Instant>,
    /// When a rebalance in PreparingRebalance completes whoever has rejoined.
    pub rebalance_deadline: Option<Instant>,
    /// The initial rebalance delay of a group that was empty: joins until this instant are
    /// gathered into the first generation (at most until `rebalance_deadline`).
    pub initial_delay_until: Option<Instant>,
    /// A write of this group's membership is in flight (join completion or assignment).
    pub writing: bool,
    /// Wall-clock ms of the last state change.
    pub state_timestamp: i64,
}

impl Group {
    pub fn new(id: &str, partition: PartitionId) -> Group {
        Group {
            id: id.to_string(),
            partition,
            state: GroupState::Empty,
            protocol_type: None,
            protocol: None,
            generation: 0,
            leader: None,
            members: BTreeMap::new(),
            statics: BTreeMap::new(),
            pending: BTreeMap::new(),
            rebalance_deadline: None,
            initial_delay_until: None,
            writing: false,
            state_timestamp: -1,
        }
    }

    /// The group as its last committed membership record left it. A group with members
    /// resumes Stable (members keep their assignments across a coordinator change); one
    /// without is Empty.
    pub fn from_stored(
        id: &str,
        partition: PartitionId,
        value: Option<&GroupValue>,
        now: Instant,
    ) -> Group {
        let mut g = Group::new(id, partition);
        let Some(v) = value else { return g };
        g.generation = v.generation;
        g.state_timestamp = v.state_timestamp;
        g.protocol_type = (!v.protocol_type.is_empty()).then(|| v.protocol_type.clone());
        if v.members.is_empty() {
            return g;
        }
        g.state = GroupState::Stable;
        g.protocol = v.protocol.clone();
        g.leader = v.leader.clone();
        for m in &v.members {
            let session_timeout = Duration::from_millis(m.session_timeout_ms.max(0) as u64);
            if let Some(instance) = &m.instance_id {
                g.statics.insert(instance.clone(), m.member_id.clone());
            }
            g.members.insert(
                m.member_id.clone(),
                Member {
                    id: m.member_id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout: Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64),
                    session_timeout,
                    protocol_type: v.protocol_type.clone(),
                    protocols: vec![(
                        v.protocol.clone().unwrap_or_default(),
                        m.subscription.clone(),
                    )],
                    assignment: m.assignment.clone(),
                    join: None,
                    sync: None,
                    expires: now + session_timeout,
                },
            );
        }
        g
    }

    /// The membership record of this group. `with_members`: false writes the group as empty
    /// at its generation (a rebalance whose assignment is not yet known: a coordinator that
    /// loads it makes everyone rejoin, and the generation never repeats).
    pub fn value(&self, with_members: bool) -> GroupValue {
        let members = if with_members {
            self.members
                .values()
                .map(|m| MemberValue {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: ms(m.rebalance_timeout),
                    session_timeout_ms: ms(m.session_timeout),
                    subscription: m.metadata(self.protocol.as_deref()),
                    assignment: m.assignment.clone(),
                })
                .collect()
        } else {
            Vec::new()
        };
        GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: if with_members {
                self.protocol.clone()
            } else {
                None
            },
            leader: if with_members {
                self.leader.clone()
            } else {
                None
            },
            state_timestamp: self.state_timestamp,
            members,
        }
    }

    /// Protocols every member supports.
    fn candidates(&self) -> Vec<String> {
        let mut members = self.members.values();
        let Some(first) = members.next() else {
            return Vec::new();
        };
        let mut out: Vec<String> = first.protocols.iter().map(|(n, _)| n.clone()).collect();
        for m in members {
            out.retain(|n| m.protocols.iter().any(|(p, _)| p == n));
        }
        out
    }

    /// Whether a member with this protocol type and these protocols may join: an empty group
    /// takes anything; otherwise the type must match and one protocol must be shared with
    /// everyone already in.
    pub fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocols.is_empty() || protocol_type.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && self
                .candidates()
                .iter()
                .any(|c| protocols.iter().any(|(p, _)| p == c))
    }

    /// The shared protocol the members vote for: each votes for its most preferred shared
    /// protocol; most votes wins, ties going to the protocol earliest in the leader's list.
    pub fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidates();
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(n)) {
                *votes.entry(name).or_default() += 1;
            }
        }
        let order = |name: &str| {
            candidates
                .iter()
                .position(|c| c == name)
                .unwrap_or(usize::MAX)
        };
        votes
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(order(b.0).cmp(&order(a.0))))
            .map(|(name, _)| name.to_string())
    }

    /// Every member has rejoined and no new member is still to come back with its id.
    pub fn all_joined(&self) -> bool {
        self.pending.is_empty() && self.members.values().all(|m| m.join.is_some())
    }

    /// The longest rebalance timeout among the members.
    pub fn rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// Removes a member (and its static mapping). Returns it.
    pub fn remove(&mut self, member_id: &str) -> Option<Member> {
        let m = self.members.remove(member_id)?;
        if let Some(instance) = &m.instance_id {
            if self.statics.get(instance).map(String::as_str) == Some(member_id) {
                self.statics.remove(instance);
            }
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = None;
        }
        Some(m)
    }

    /// A static member whose instance id now belongs to another member id was replaced.
    pub fn is_fenced(&self, member_id: &str, instance_id: Option<&str>) -> bool {
        instance_id.is_some_and(|i| {
            self.statics
                .get(i)
                .is_some_and(|current| current != member_id)
        })
    }

    /// The next instant a timer of this group is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        let rebalance = (self.state == GroupState::PreparingRebalance)
            .then(|| {
                let d = self.rebalance_deadline?;
                Some(self.initial_delay_until.map_or(d, |i| i.min(d)))
            })
            .flatten();
        let members = self
            .members
            .values()
            .filter(|m| m.join.is_none() && m.sync.is_none())
            .map(|m| m.expires);
        let pending = self.pending.values().copied();
        members.chain(pending).chain(rebalance).min()
    }
}

fn ms(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, protocols: &[&str]) -> Member {
        Member {
            id: id.into(),
            instance_id: None,
            client_id: "c".into(),
            client_host: String::new(),
            rebalance_timeout: Duration::from_secs(30),
            session_timeout: Duration::from_secs(10),
            protocol_type: "consumer".into(),
            protocols: protocols
                .iter()
                .map(|p| (p.to_string(), Bytes::from_static(b"m")))
                .collect(),
            assignment: Bytes::new(),
            join: None,
            sync: None,
            expires: Instant::ZERO,
        }
    }

    #[test]
    fn the_shared_protocol_with_most_first_choices_wins() {
        let mut g = Group::new("g", PartitionId(1));
        g.protocol_type = Some("consumer".into());
        g.members
            .insert("a".into(), member("a", &["range", "roundrobin"]));
        g.members
            .insert("b".into(), member("b", &["roundrobin", "range"]));
        g.members
            .insert("c".into(), member("c", &["roundrobin", "sticky"]));
        assert_eq!(g.select_protocol().as_deref(), Some("roundrobin"));
        let proto = |p: &str| vec![(p.to_string(), Bytes::new())];
        assert!(g.supports("consumer", &proto("roundrobin")));
        assert!(!g.supports("consumer", &proto("range")), "c lacks range");
        assert!(!g.supports("connect", &proto("roundrobin")));
        assert!(!g.supports("consumer", &[]));
    }

    #[test]
    fn a_stored_group_resumes_stable_with_its_assignments() {
        let mut g = Group::new("g", PartitionId(1));
        g.protocol_type = Some("consumer".into());
        g.protocol = Some("range".into());
        g.generation = 4;
        g.leader = Some("a".into());
        let mut a = member("a", &["range"]);
        a.instance_id = Some("i-a".into());
        a.assignment = Bytes::from_static(b"p0");
        g.members.insert("a".into(), a);
        g.statics.insert("i-a".into(), "a".into());
        let back = Group::from_stored("g", PartitionId(1), Some(&g.value(true)), Instant(5));
        assert_eq!(back.state, GroupState::Stable);
        assert_eq!(back.generation, 4);
        assert_eq!(back.members["a"].assignment, Bytes::from_static(b"p0"));
        assert_eq!(back.statics["i-a"], "a");
        assert!(back.is_fenced("other", Some("i-a")));
        let empty = Group::from_stored("g", PartitionId(1), Some(&g.value(false)), Instant(5));
        assert_eq!(empty.state, GroupState::Empty);
        assert_eq!(empty.generation, 4);
    }
}
