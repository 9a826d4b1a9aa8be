//! Consumer groups: the group coordinator (Kafka's classic protocol) and the offsets it keeps.
//!
//! A group lives in one partition of the internal `__consumer_offsets` topic, chosen by hashing
//! its id; the serving leader of that partition is the group's coordinator. Every replica
//! applies the partition's committed records to a [`Stored`] view, so a new leader starts from
//! the committed state the moment it may serve (until then it answers
//! COORDINATOR_LOAD_IN_PROGRESS; a broker that does not lead the partition answers
//! NOT_COORDINATOR).
//!
//! What is written, and when a client hears about it:
//! - a completed join writes the group as empty at its new generation before anyone learns
//!   the generation, so a generation is never handed out twice, even across a failover;
//! - the leader's assignment writes the full membership before any member gets it;
//! - an offset commit is answered once its records are committed.
//!
//! A coordinator that takes over resumes a group with members as Stable with their
//! assignments, and one caught mid-rebalance as Empty (its members rejoin).
//!
//! The topic does not grow without bound: once enough records are superseded, the leader
//! writes a checkpoint (one batch with every live key, marked by a record header) and every
//! replica's housekeeping deletes the whole segments below the latest committed checkpoint.

pub mod records;
pub mod state;

use self::records::{encode_batch, partition_for, GroupRecord, OffsetValue, Stored, OFFSETS_TOPIC};
use self::state::{Group, GroupState, Member, ParkedJoin};
use super::metadata::{MetaOp, NewTopic};
use super::{Broker, BrokerBug, Event, Output, PartitionId, Reply};
use crate::protocol::codes;
use crate::protocol::messages::delete_groups::*;
use crate::protocol::messages::describe_groups::*;
use crate::protocol::messages::find_coordinator::*;
use crate::protocol::messages::heartbeat::*;
use crate::protocol::messages::join_group::*;
use crate::protocol::messages::leave_group::*;
use crate::protocol::messages::list_groups::*;
use crate::protocol::messages::offset_commit::*;
use crate::protocol::messages::offset_fetch::*;
use crate::protocol::messages::sync_group::*;
use crate::protocol::records::{set_base_offset, set_partition_leader_epoch};
use crate::protocol::Response;
use crate::raft;
use crate::time::Instant;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Kafka's offset.metadata.max.bytes.
const MAX_OFFSET_METADATA: usize = 4096;
/// Superseded records before a checkpoint is worth writing (also at least twice the live keys).
const CHECKPOINT_MIN_RECORDS: u64 = 1000;
/// A checkpoint is one Raft entry; above this the partition is left uncompacted (and a
/// broker event says so) rather than sending an entry peers would refuse.
const CHECKPOINT_MAX_BYTES: usize = 32 << 20;
/// How long before a broker asks the controller again to create the offsets topic.
const TOPIC_REQUEST_INTERVAL: Duration = Duration::from_secs(1);

/// What to do once a write to an offsets partition commits (or cannot).
#[derive(Debug)]
enum AfterWrite {
    /// A rebalance's join phase: answer these joins.
    Join(Vec<(Reply, JoinGroupResponse)>),
    /// The leader's assignment for `generation`.
    Sync {
        group: String,
        generation: i32,
        assignments: BTreeMap<String, Bytes>,
    },
    /// A static member took over its old id's place without a rebalance.
    StaticRejoin(Reply, Box<JoinGroupResponse>),
    Offsets {
        reply: Reply,
        response: Box<OffsetCommitResponse>,
        /// (group, topic, partition) of the records in the write.
        keys: Vec<(String, String, i32)>,
    },
    /// Part of a DeleteGroups request.
    Delete { request: u64, group: String },
    /// A checkpoint of this partition: another may be written once it settles.
    Checkpoint(PartitionId),
    /// Nobody waits (an emptied group).
    Quiet,
}

#[derive(Debug)]
struct Write {
    partition: PartitionId,
    /// The offset after the write's batch: it is committed once the high watermark reaches it.
    end: i64,
    then: AfterWrite,
}

#[derive(Debug)]
struct PendingDelete {
    reply: Reply,
    response: DeleteGroupsResponse,
    waiting: usize,
}

/// The broker's side of consumer groups.
#[derive(Debug, Default)]
pub(super) struct Groups {
    /// Committed view of every hosted offsets partition.
    stored: BTreeMap<PartitionId, Stored>,
    /// Offsets partitions this broker serves as coordinator (their groups are in `live`).
    serving: BTreeSet<PartitionId>,
    live: BTreeMap<String, Group>,
    writes: BTreeMap<u64, Write>,
    /// Offset commits written but not yet committed: (group, topic, partition) -> count.
    unstable: BTreeMap<(String, String, i32), usize>,
    deletes: BTreeMap<u64, PendingDelete>,
    /// A checkpoint write is in flight on these partitions.
    checkpointing: BTreeSet<PartitionId>,
    next_key: u64,
    topic_requested: Option<Instant>,
}

impl Groups {
    fn key(&mut self) -> u64 {
        self.next_key += 1;
        self.next_key
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.live.values().filter_map(Group::next_deadline).min()
    }

    pub(super) fn checkpoint_floor(&self, id: PartitionId) -> Option<i64> {
        self.stored.get(&id).and_then(|s| s.checkpoint_start)
    }

    fn group_ids(&self) -> Vec<String> {
        self.live.keys().cloned().collect()
    }
}

/// A group as observers see it (DescribeGroups shape, for the simulator's checkers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSummary {
    pub group: String,
    pub state: &'static str,
    pub generation: i32,
    pub members: Vec<String>,
}

/// (partition, committed offset, leader epoch, metadata, error) as OffsetFetch reports it.
type OffsetRow = (i32, i64, i32, String, i16);

fn join_error(code: i16, member_id: &str) -> JoinGroupResponse {
    JoinGroupResponse {
        error_code: code,
        generation_id: -1,
        protocol_name: Some(String::new()),
        member_id: member_id.to_string(),
        ..Default::default()
    }
}

/// The answer to `member_id`'s join for the group's current generation: the leader also
/// gets every member with its metadata for the chosen protocol.
fn join_response(g: &Group, member_id: &str) -> JoinGroupResponse {
    let protocol = g.protocol.as_deref();
    let leader = g.leader.clone().unwrap_or_default();
    let members = if leader == member_id {
        g.members
            .values()
            .map(|m| JoinGroupResponseMember {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                metadata: m.metadata(protocol),
            })
            .collect()
    } else {
        Vec::new()
    };
    JoinGroupResponse {
        error_code: codes::NONE,
        generation_id: g.generation,
        protocol_type: g.protocol_type.clone(),
        protocol_name: Some(protocol.unwrap_or_default().to_string()),
        leader,
        member_id: member_id.to_string(),
        members,
        ..Default::default()
    }
}

fn sync_error(code: i16) -> SyncGroupResponse {
    SyncGroupResponse {
        error_code: code,
        ..Default::default()
    }
}

fn new_uuid(rng: &mut crate::rng::DetRng) -> String {
    let b: Vec<u8> = (0..16).map(|_| rng.index(256) as u8).collect();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

impl Broker {
    // ----- coordinator discovery -----

    /// The offsets partition of `group` as this broker hosts and serves it, or the error a
    /// group request gets here.
    fn coordinator_for(&self, group: &str) -> Result<PartitionId, i16> {
        let Some(topic) = self.catalogue.topics.get(OFFSETS_TOPIC) else {
            return Err(codes::NOT_COORDINATOR);
        };
        let index = partition_for(group, topic.partition_count());
        let Some(id) = self.partition_id(OFFSETS_TOPIC, index as i32) else {
            return Err(codes::NOT_COORDINATOR);
        };
        if self.groups.serving.contains(&id) {
            return Ok(id);
        }
        match self.partitions.get(&id) {
            Some(p) if p.is_leader() => Err(codes::COORDINATOR_LOAD_IN_PROGRESS),
            _ => Err(codes::NOT_COORDINATOR),
        }
    }

    /// Replicas of the offsets topic: Kafka's offsets.topic.replication.factor, capped by the
    /// brokers the cluster is made of (voters and registered brokers), so a single broker
    /// gets one replica and a 3-broker cluster waits for its third broker rather than
    /// creating an under-replicated topic.
    fn offsets_replication_factor(&self) -> u16 {
        let size = self
            .meta
            .voters
            .len()
            .max(self.catalogue.brokers.len())
            .max(1);
        self.cfg
            .offsets_topic_replication_factor
            .clamp(1, u16::try_from(size).unwrap_or(u16::MAX))
    }

    /// Asks the controller to create the offsets topic (at most once a second).
    fn request_offsets_topic(&mut self) {
        let now = self.now.mono;
        if self
            .groups
            .topic_requested
            .is_some_and(|t| now.saturating_since(t) < TOPIC_REQUEST_INTERVAL)
        {
            return;
        }
        self.groups.topic_requested = Some(now);
        let topic = NewTopic {
            name: OFFSETS_TOPIC.to_string(),
            partitions: self.cfg.offsets_topic_partitions,
            replication_factor: self.offsets_replication_factor(),
            configs: vec![
                ("retention.ms".into(), "-1".into()),
                (
                    "segment.bytes".into(),
                    self.cfg.offsets_segment_bytes.to_string(),
                ),
            ],
        };
        self.forward(
            MetaOp::CreateTopics(vec![topic]),
            super::admin::Waiter::AutoCreate,
            30_000,
        );
    }

    /// (node, host, port) of the coordinator of `key`, or the error.
    fn find_coordinator(
        &mut self,
        key: &str,
        key_type: i8,
    ) -> Result<(i32, String, i32), (i16, String)> {
        if key_type != 0 {
            return Err((
                codes::INVALID_REQUEST,
                "transactions are not supported, so there is no transaction coordinator".into(),
            ));
        }
        if key.is_empty() {
            return Err((codes::INVALID_REQUEST, "the group id is empty".into()));
        }
        let Some(topic) = self.catalogue.topics.get(OFFSETS_TOPIC).cloned() else {
            self.request_offsets_topic();
            return Err((
                codes::COORDINATOR_NOT_AVAILABLE,
                format!("{OFFSETS_TOPIC} is being created"),
            ));
        };
        let index = partition_for(key, topic.partition_count());
        let view = self.partition_view(&topic, index);
        if view.leader < 0 {
            return Err((
                codes::COORDINATOR_NOT_AVAILABLE,
                format!("{OFFSETS_TOPIC}-{index} has no leader"),
            ));
        }
        self.live_brokers()
            .into_iter()
            .find(|b| b.0 == view.leader)
            .ok_or_else(|| {
                (
                    codes::COORDINATOR_NOT_AVAILABLE,
                    format!("the leader of {OFFSETS_TOPIC}-{index} is offline"),
                )
            })
    }

    pub(super) fn on_find_coordinator(&mut self, reply: Reply, r: FindCoordinatorRequest) {
        let mut response = FindCoordinatorResponse::default();
        if reply.api_version >= 4 {
            for key in &r.coordinator_keys {
                let c = match self.find_coordinator(key, r.key_type) {
                    Ok((node_id, host, port)) => Coordinator {
                        key: key.clone(),
                        node_id,
                        host,
                        port,
                        error_code: codes::NONE,
                        error_message: None,
                    },
                    Err((code, message)) => Coordinator {
                        key: key.clone(),
                        node_id: -1,
                        host: String::new(),
                        port: -1,
                        error_code: code,
                        error_message: Some(message),
                    },
                };
                response.coordinators.push(c);
            }
        } else {
            match self.find_coordinator(&r.key, r.key_type) {
                Ok((node_id, host, port)) => {
                    response.node_id = node_id;
                    response.host = host;
                    response.port = port;
                    response.error_message = None;
                }
                Err((code, message)) => {
                    response.error_code = code;
                    response.error_message = Some(message);
                    response.node_id = -1;
                    response.port = -1;
                }
            }
        }
        self.respond(reply, Response::FindCoordinator(response));
    }

    // ----- the log under the groups -----

    /// Proposes `records` to an offsets partition this broker serves. On refusal (leadership
    /// moving, too many appends pending) `then` comes back.
    fn group_append(
        &mut self,
        id: PartitionId,
        records: &[GroupRecord],
        checkpoint: bool,
        then: AfterWrite,
    ) -> Result<(), AfterWrite> {
        let wall = self.now.wall_ms;
        let proposal = raft::ProposalId(self.token());
        let now = self.now;
        let Some(p) = self.partitions.get_mut(&id).filter(|p| p.is_serving()) else {
            return Err(then);
        };
        let mut data = encode_batch(records, wall, checkpoint);
        if checkpoint && data.len() > CHECKPOINT_MAX_BYTES {
            return Err(then);
        }
        let base = p.next_offset;
        set_base_offset(&mut data, base).expect("a batch built here");
        set_partition_leader_epoch(&mut data, p.leader_epoch()).expect("a batch built here");
        let count = records.len().max(1) as i64;
        let raft = p.raft.as_mut().expect("a serving leader has a raft group");
        let before = raft.last_index();
        raft.handle_input(raft::Input::Propose {
            now,
            id: proposal,
            data: Bytes::from(data),
        });
        let appended = raft.last_index() != before;
        self.drain_raft(id);
        if !appended {
            return Err(then);
        }
        let key = self.groups.key();
        self.groups.writes.insert(
            key,
            Write {
                partition: id,
                end: base + count,
                then,
            },
        );
        Ok(())
    }

    /// After an offsets partition's high watermark or role may have changed: apply what
    /// committed, finish the writes it covers, start or stop coordinating, and checkpoint.
    pub(super) fn group_partition_change(&mut self, id: PartitionId) {
        let Some(p) = self.partitions.get_mut(&id) else {
            return;
        };
        if !p.keep_committed {
            return;
        }
        let batches = std::mem::take(&mut p.committed_batches);
        let hw = p.high_watermark;
        let serving = p.is_serving();
        let stored = self.groups.stored.entry(id).or_default();
        for (base, batch) in batches {
            stored.apply_batch(&batch, base);
        }
        let done: Vec<u64> = self
            .groups
            .writes
            .iter()
            .filter(|(_, w)| w.partition == id && w.end <= hw)
            .map(|(&k, _)| k)
            .collect();
        for k in done {
            let w = self.groups.writes.remove(&k).expect("listed");
            self.write_committed(w.then);
        }
        let coordinating = self.groups.serving.contains(&id);
        if serving && !coordinating {
            self.load_groups(id);
        } else if !serving && coordinating {
            self.unload_groups(id);
        }
        if serving {
            self.maybe_checkpoint(id);
        }
    }

    /// Leadership of an offsets partition was lost: stop coordinating its groups at once.
    pub(super) fn group_leadership_lost(&mut self, id: PartitionId) {
        if self.groups.serving.contains(&id)
            && !self.partitions.get(&id).is_some_and(|p| p.is_serving())
        {
            self.unload_groups(id);
        }
    }

    /// Rebuilds an offsets partition's committed view from its stored batches (at start-up).
    pub(super) fn replay_groups(&mut self, id: PartitionId, batches: Vec<(i64, Bytes)>) {
        let Some(p) = self.partitions.get_mut(&id) else {
            return;
        };
        p.keep_committed = true;
        let hw = p.high_watermark;
        let mut stored = Stored::default();
        for (base, batch) in batches.into_iter().filter(|(base, _)| *base < hw) {
            stored.apply_batch(&batch, base);
        }
        self.groups.stored.insert(id, stored);
    }

    pub(super) fn forget_group_partition(&mut self, id: PartitionId) {
        if self.groups.serving.contains(&id) {
            self.unload_groups(id);
        }
        self.groups.stored.remove(&id);
    }

    fn load_groups(&mut self, id: PartitionId) {
        let now = self.now.mono;
        self.groups.serving.insert(id);
        let stored = self.groups.stored.entry(id).or_default();
        let groups: Vec<Group> = stored
            .groups
            .iter()
            .map(|(gid, g)| Group::from_stored(gid, id, g.meta.as_ref(), now))
            .collect();
        let count = groups.len();
        for g in groups {
            self.groups.live.insert(g.id.clone(), g);
        }
        if let Some(p) = self.partitions.get(&id) {
            self.outputs.push_back(Output::Event(Event::GroupsLoaded {
                partition: p.index,
                groups: count,
            }));
        }
    }

    fn unload_groups(&mut self, id: PartitionId) {
        self.groups.serving.remove(&id);
        let gone: Vec<String> = self
            .groups
            .live
            .iter()
            .filter(|(_, g)| g.partition == id)
            .map(|(k, _)| k.clone())
            .collect();
        if let Some(p) = self.partitions.get(&id) {
            self.outputs.push_back(Output::Event(Event::GroupsUnloaded {
                partition: p.index,
                groups: gone.len(),
            }));
        }
        let mut answers = Vec::new();
        for gid in gone {
            let g = self.groups.live.remove(&gid).expect("listed");
            for m in g.members.into_values() {
                if let Some(j) = m.join {
                    answers.push((
                        j.reply,
                        Response::JoinGroup(join_error(codes::NOT_COORDINATOR, &m.id)),
                    ));
                }
                if let Some(reply) = m.sync {
                    answers.push((
                        reply,
                        Response::SyncGroup(sync_error(codes::NOT_COORDINATOR)),
                    ));
                }
            }
        }
        for (reply, response) in answers {
            self.respond(reply, response);
        }
        self.groups.checkpointing.remove(&id);
        let failed: Vec<u64> = self
            .groups
            .writes
            .iter()
            .filter(|(_, w)| w.partition == id)
            .map(|(&k, _)| k)
            .collect();
        for k in failed {
            let w = self.groups.writes.remove(&k).expect("listed");
            self.write_failed(w.then, codes::NOT_COORDINATOR);
        }
    }

    fn write_committed(&mut self, then: AfterWrite) {
        match then {
            AfterWrite::Join(answers) => {
                for (reply, response) in answers {
                    self.respond(reply, Response::JoinGroup(response));
                }
            }
            AfterWrite::Sync {
                group,
                generation,
                assignments,
            } => self.assignment_committed(&group, generation, assignments),
            AfterWrite::StaticRejoin(reply, response) => {
                self.respond(reply, Response::JoinGroup(*response))
            }
            AfterWrite::Offsets {
                reply,
                response,
                keys,
            } => {
                self.settle_unstable(&keys);
                self.respond(reply, Response::OffsetCommit(*response));
            }
            AfterWrite::Delete { request, group } => {
                self.groups.live.remove(&group);
                self.delete_done(request, &group, codes::NONE);
            }
            AfterWrite::Checkpoint(id) => {
                self.groups.checkpointing.remove(&id);
            }
            AfterWrite::Quiet => {}
        }
    }

    fn write_failed(&mut self, then: AfterWrite, code: i16) {
        match then {
            AfterWrite::Join(answers) => {
                for (reply, response) in answers {
                    let e = join_error(code, &response.member_id);
                    self.respond(reply, Response::JoinGroup(e));
                }
            }
            AfterWrite::Sync { group, .. } => {
                if let Some(g) = self.groups.live.get_mut(&group) {
                    g.writing = false;
                    self.prepare_rebalance(&group);
                }
            }
            AfterWrite::StaticRejoin(reply, response) => {
                let e = join_error(code, &response.member_id);
                self.respond(reply, Response::JoinGroup(e));
            }
            AfterWrite::Offsets {
                reply,
                mut response,
                keys,
            } => {
                self.settle_unstable(&keys);
                for t in &mut response.topics {
                    for p in &mut t.partitions {
                        if p.error_code == codes::NONE {
                            p.error_code = code;
                        }
                    }
                }
                self.respond(reply, Response::OffsetCommit(*response));
            }
            AfterWrite::Delete { request, group } => {
                if let Some(g) = self.groups.live.get_mut(&group) {
                    g.state = GroupState::Empty;
                }
                self.delete_done(request, &group, code);
            }
            AfterWrite::Checkpoint(id) => {
                self.groups.checkpointing.remove(&id);
            }
            AfterWrite::Quiet => {}
        }
    }

    fn settle_unstable(&mut self, keys: &[(String, String, i32)]) {
        for k in keys {
            if let Some(n) = self.groups.unstable.get_mut(k) {
                *n -= 1;
                if *n == 0 {
                    self.groups.unstable.remove(k);
                }
            }
        }
    }

    /// Writes a checkpoint when enough records are superseded. It holds the committed state
    /// with this leader's entries in flight applied on top, so it covers everything before
    /// it in the log (if those entries are truncated, so is the checkpoint after them).
    fn maybe_checkpoint(&mut self, id: PartitionId) {
        if self.groups.checkpointing.contains(&id) {
            return;
        }
        let Some(p) = self.partitions.get(&id) else {
            return;
        };
        let Some(stored) = self.groups.stored.get(&id) else {
            return;
        };
        let live = stored.live_records() as u64;
        if stored.applied_since_checkpoint < CHECKPOINT_MIN_RECORDS.max(2 * live) {
            return;
        }
        let mut at_log_end = stored.clone();
        for (base, batch) in p.uncommitted_batches() {
            at_log_end.apply_batch(&batch, base);
        }
        let records = at_log_end.checkpoint();
        self.groups.checkpointing.insert(id);
        if let Err(then) = self.group_append(id, &records, true, AfterWrite::Checkpoint(id)) {
            self.write_failed(then, codes::NONE);
        }
    }

    // ----- timers -----

    pub(super) fn group_timers(&mut self) {
        let now = self.now.mono;
        let no_expiry = self.cfg.has_bug(BrokerBug::GroupNoSessionExpiry);
        for gid in self.groups.group_ids() {
            let Some(g) = self.groups.live.get_mut(&gid) else {
                continue;
            };
            let before = g.pending.len();
            g.pending.retain(|_, deadline| *deadline > now);
            let pending_expired = g.pending.len() != before;
            if no_expiry {
                // The planted bug renews a lapsed session rather than ending it (leaving the
                // deadline in the past would spin the timer).
                for m in g.members.values_mut().filter(|m| m.expired(now)) {
                    m.expires = now + m.session_timeout;
                }
            }
            let expired: Vec<String> = g
                .members
                .values()
                .filter(|m| m.expired(now))
                .map(|m| m.id.clone())
                .collect();
            for id in &expired {
                g.remove(id);
                self.outputs
                    .push_back(Output::Event(Event::GroupMemberExpired {
                        group: gid.clone(),
                        member: id.clone(),
                    }));
            }
            if !expired.is_empty() {
                self.members_left(&gid);
            } else if pending_expired {
                self.maybe_complete_join(&gid);
            }
            let Some(g) = self.groups.live.get_mut(&gid) else {
                continue;
            };
            if g.state != GroupState::PreparingRebalance {
                continue;
            }
            if g.rebalance_deadline.is_some_and(|d| d <= now) {
                self.complete_join(&gid);
            } else if g.initial_delay_until.is_some_and(|d| d <= now) {
                g.initial_delay_until = None;
                self.maybe_complete_join(&gid);
            }
        }
    }

    // ----- rebalancing -----

    /// After members left or expired.
    fn members_left(&mut self, gid: &str) {
        let Some(g) = self.groups.live.get(gid) else {
            return;
        };
        match g.state {
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(gid),
            GroupState::PreparingRebalance => self.maybe_complete_join(gid),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    fn prepare_rebalance(&mut self, gid: &str) {
        let now = self.now.mono;
        let delay = self.cfg.group_initial_rebalance_delay;
        let Some(g) = self.groups.live.get_mut(gid) else {
            return;
        };
        let mut answers = Vec::new();
        if g.state == GroupState::CompletingRebalance {
            for m in g.members.values_mut() {
                if let Some(reply) = m.sync.take() {
                    m.expires = now + m.session_timeout;
                    answers.push(reply);
                }
            }
        }
        g.writing = false;
        let was_empty = g.state == GroupState::Empty;
        g.state = GroupState::PreparingRebalance;
        g.rebalance_deadline = Some(now + g.rebalance_timeout());
        g.initial_delay_until = (was_empty && !delay.is_zero()).then_some(now + delay);
        for reply in answers {
            self.respond(
                reply,
                Response::SyncGroup(sync_error(codes::REBALANCE_IN_PROGRESS)),
            );
        }
        self.maybe_complete_join(gid);
    }

    fn maybe_complete_join(&mut self, gid: &str) {
        let now = self.now.mono;
        let Some(g) = self.groups.live.get(gid) else {
            return;
        };
        if g.state == GroupState::PreparingRebalance
            && g.initial_delay_until.is_none_or(|d| d <= now)
            && g.all_joined()
        {
            self.complete_join(gid);
        }
    }

    /// Ends the join phase: members that did not rejoin (dynamic ones) are gone, the
    /// generation moves on, and the joins are answered once that generation is committed.
    fn complete_join(&mut self, gid: &str) {
        let now = self.now.mono;
        let wall = self.now.wall_ms;
        let Some(g) = self.groups.live.get_mut(gid) else {
            return;
        };
        let gone: Vec<String> = g
            .members
            .values()
            .filter(|m| m.join.is_none() && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            g.remove(&id);
        }
        g.initial_delay_until = None;
        g.rebalance_deadline = None;
        g.writing = false;
        g.generation += 1;
        g.state_timestamp = wall;
        let partition = g.partition;
        if g.members.is_empty() {
            g.state = GroupState::Empty;
            g.protocol = None;
            g.leader = None;
            let record = GroupRecord::Group {
                group: gid.to_string(),
                value: Some(g.value(false)),
            };
            let _ = self.group_append(partition, &[record], false, AfterWrite::Quiet);
            return;
        }
        g.protocol = g.select_protocol();
        let leader_ok = g
            .leader
            .as_ref()
            .and_then(|l| g.members.get(l))
            .is_some_and(|m| m.join.is_some());
        if !leader_ok {
            g.leader = g
                .members
                .values()
                .find(|m| m.join.is_some())
                .or_else(|| g.members.values().next())
                .map(|m| m.id.clone());
        }
        g.state = GroupState::CompletingRebalance;
        let answers: Vec<(Reply, JoinGroupResponse)> = g
            .members
            .values()
            .filter_map(|m| Some((m.join.as_ref()?.reply, join_response(g, &m.id))))
            .collect();
        for m in g.members.values_mut() {
            m.assignment = Bytes::new();
            if m.join.take().is_some() {
                m.expires = now + m.session_timeout;
            }
        }
        if self.cfg.has_bug(BrokerBug::GroupJoinNotWritten)
            || self.cfg.has_bug(BrokerBug::GroupRebalanceNotWritten)
        {
            self.write_committed(AfterWrite::Join(answers));
            return;
        }
        let record = GroupRecord::Group {
            group: gid.to_string(),
            value: Some(g.value(false)),
        };
        if let Err(then) = self.group_append(partition, &[record], false, AfterWrite::Join(answers))
        {
            self.write_failed(then, codes::COORDINATOR_NOT_AVAILABLE);
            if let Some(g) = self.groups.live.get_mut(gid) {
                g.state = GroupState::PreparingRebalance;
                g.rebalance_deadline = Some(now + g.rebalance_timeout());
            }
        }
    }

    fn assignment_committed(
        &mut self,
        gid: &str,
        generation: i32,
        assignments: BTreeMap<String, Bytes>,
    ) {
        let now = self.now.mono;
        let Some(g) = self.groups.live.get_mut(gid) else {
            return;
        };
        if g.generation != generation || g.state != GroupState::CompletingRebalance {
            return; // a newer rebalance already answered the waiting syncs
        }
        g.writing = false;
        g.state = GroupState::Stable;
        let mut answers = Vec::new();
        for (id, m) in g.members.iter_mut() {
            m.assignment = assignments.get(id).cloned().unwrap_or_default();
            if let Some(reply) = m.sync.take() {
                m.expires = now + m.session_timeout;
                answers.push((reply, m.assignment.clone()));
            }
        }
        let (pt, pn) = (g.protocol_type.clone(), g.protocol.clone());
        self.outputs.push_back(Output::Event(Event::GroupStable {
            group: gid.to_string(),
            generation,
            members: g.members.len(),
        }));
        for (reply, assignment) in answers {
            self.respond(
                reply,
                Response::SyncGroup(SyncGroupResponse {
                    protocol_type: pt.clone(),
                    protocol_name: pn.clone(),
                    assignment,
                    ..Default::default()
                }),
            );
        }
    }

    // ----- requests -----

    pub(super) fn on_join_group(&mut self, reply: Reply, client_id: &str, r: JoinGroupRequest) {
        let answer = self.join_group(reply, client_id, r);
        if let Some(response) = answer {
            self.respond(reply, Response::JoinGroup(response));
        }
    }

    /// Handles a join; `Some` is an immediate answer, `None` means the join is parked or
    /// answered later.
    fn join_group(
        &mut self,
        reply: Reply,
        client_id: &str,
        r: JoinGroupRequest,
    ) -> Option<JoinGroupResponse> {
        let now = self.now.mono;
        let gid = r.group_id.clone();
        if gid.is_empty() {
            return Some(join_error(codes::INVALID_GROUP_ID, &r.member_id));
        }
        let session = Duration::from_millis(r.session_timeout_ms.max(0) as u64);
        if r.session_timeout_ms < 0
            || session < self.cfg.group_min_session_timeout
            || session > self.cfg.group_max_session_timeout
        {
            return Some(join_error(codes::INVALID_SESSION_TIMEOUT, &r.member_id));
        }
        let partition = match self.coordinator_for(&gid) {
            Ok(p) => p,
            Err(code) => return Some(join_error(code, &r.member_id)),
        };
        let rebalance_timeout = if r.rebalance_timeout_ms < 0 {
            session
        } else {
            Duration::from_millis(r.rebalance_timeout_ms as u64)
        };
        let protocols: Vec<(String, Bytes)> = r
            .protocols
            .iter()
            .map(|p| (p.name.clone(), p.metadata.clone()))
            .collect();
        let instance = r.group_instance_id.clone().filter(|i| !i.is_empty());
        if !self.groups.live.contains_key(&gid) {
            if !r.member_id.is_empty() {
                return Some(join_error(codes::UNKNOWN_MEMBER_ID, &r.member_id));
            }
            self.groups
                .live
                .insert(gid.clone(), Group::new(&gid, partition));
        }
        let uuid = new_uuid(&mut self.rng);
        let client_host = self
            .conns
            .get(&reply.conn)
            .filter(|c| !c.host.is_empty())
            .map_or_else(String::new, |c| format!("/{}", c.host));
        let g = self.groups.live.get_mut(&gid).expect("present");
        if g.state == GroupState::Dead {
            return Some(join_error(codes::COORDINATOR_NOT_AVAILABLE, &r.member_id));
        }
        if !g.supports(&r.protocol_type, &protocols) {
            return Some(join_error(codes::INCONSISTENT_GROUP_PROTOCOL, &r.member_id));
        }
        let new_member = |id: String| Member {
            id,
            instance_id: instance.clone(),
            client_id: client_id.to_string(),
            client_host: client_host.clone(),
            rebalance_timeout,
            session_timeout: session,
            protocol_type: r.protocol_type.clone(),
            protocols: protocols.clone(),
            assignment: Bytes::new(),
            join: Some(ParkedJoin { reply }),
            sync: None,
            expires: now + session,
        };
        if r.member_id.is_empty() {
            let id = format!("{client_id}-{uuid}");
            if let Some(instance) = &instance {
                if let Some(old) = g.statics.get(instance).cloned() {
                    return self.static_rejoin(reply, &gid, &old, new_member(id));
                }
            } else if reply.api_version >= 4 {
                g.pending.insert(id.clone(), now + session);
                return Some(join_error(codes::MEMBER_ID_REQUIRED, &id));
            }
            self.add_member(&gid, new_member(id));
            return None;
        }
        if g.pending.remove(&r.member_id).is_some() {
            self.add_member(&gid, new_member(r.member_id.clone()));
            return None;
        }
        if g.is_fenced(&r.member_id, instance.as_deref()) {
            return Some(join_error(codes::FENCED_INSTANCE_ID, &r.member_id));
        }
        let Some(m) = g.members.get_mut(&r.member_id) else {
            return Some(join_error(codes::UNKNOWN_MEMBER_ID, &r.member_id));
        };
        // A known member rejoins.
        let changed = m.protocols != protocols;
        m.protocols = protocols;
        m.rebalance_timeout = rebalance_timeout;
        m.session_timeout = session;
        m.expires = now + session;
        let is_leader = g.leader.as_deref() == Some(r.member_id.as_str());
        let park = match g.state {
            GroupState::PreparingRebalance => true,
            GroupState::CompletingRebalance => changed,
            GroupState::Stable => changed || is_leader,
            GroupState::Empty | GroupState::Dead => {
                return Some(join_error(codes::UNKNOWN_MEMBER_ID, &r.member_id))
            }
        };
        if !park {
            return Some(join_response(g, &r.member_id));
        }
        let m = g.members.get_mut(&r.member_id).expect("present");
        if let Some(old) = m.join.replace(ParkedJoin { reply }) {
            let e = join_error(codes::REBALANCE_IN_PROGRESS, &r.member_id);
            self.respond(old.reply, Response::JoinGroup(e));
        }
        let state = self.groups.live[&gid].state;
        if state == GroupState::PreparingRebalance {
            self.maybe_complete_join(&gid);
        } else {
            self.prepare_rebalance(&gid);
        }
        None
    }

    /// Adds a member whose join is parked, starting or continuing a rebalance.
    fn add_member(&mut self, gid: &str, m: Member) {
        let now = self.now.mono;
        let delay = self.cfg.group_initial_rebalance_delay;
        let g = self.groups.live.get_mut(gid).expect("present");
        if g.members.is_empty() {
            g.protocol_type = Some(m.protocol_type.clone());
        }
        if let Some(instance) = &m.instance_id {
            g.statics.insert(instance.clone(), m.id.clone());
        }
        g.members.insert(m.id.clone(), m);
        match g.state {
            GroupState::PreparingRebalance => {
                if let (Some(_), Some(deadline)) = (g.initial_delay_until, g.rebalance_deadline) {
                    g.initial_delay_until = Some((now + delay).min(deadline));
                }
                self.maybe_complete_join(gid);
            }
            _ => self.prepare_rebalance(gid),
        }
    }

    /// A static member came back with a new member id: it takes its old place (and
    /// assignment); the old id is fenced. A Stable group does not rebalance.
    fn static_rejoin(
        &mut self,
        reply: Reply,
        gid: &str,
        old_id: &str,
        mut m: Member,
    ) -> Option<JoinGroupResponse> {
        let g = self.groups.live.get_mut(gid).expect("present");
        let was_leader = g.leader.as_deref() == Some(old_id);
        let Some(old) = g.remove(old_id) else {
            return Some(join_error(codes::UNKNOWN_MEMBER_ID, &m.id));
        };
        m.assignment = old.assignment.clone();
        let instance = m.instance_id.clone().expect("a static member");
        g.statics.insert(instance, m.id.clone());
        if was_leader {
            g.leader = Some(m.id.clone());
        }
        let mut fenced = Vec::new();
        if let Some(j) = old.join {
            fenced.push((
                j.reply,
                Response::JoinGroup(join_error(codes::FENCED_INSTANCE_ID, old_id)),
            ));
        }
        if let Some(s) = old.sync {
            fenced.push((
                s,
                Response::SyncGroup(sync_error(codes::FENCED_INSTANCE_ID)),
            ));
        }
        let same_protocol = g
            .protocol
            .as_ref()
            .is_some_and(|p| m.protocols.iter().any(|(n, _)| n == p));
        let answer = if g.state == GroupState::Stable && same_protocol {
            m.join = None;
            let id = m.id.clone();
            g.members.insert(id.clone(), m);
            // The leader keeps the current assignment rather than computing a new one.
            let response = JoinGroupResponse {
                skip_assignment: g.leader.as_deref() == Some(id.as_str()),
                ..join_response(g, &id)
            };
            let partition = g.partition;
            let record = GroupRecord::Group {
                group: gid.to_string(),
                value: Some(g.value(true)),
            };
            if let Err(then) = self.group_append(
                partition,
                &[record],
                false,
                AfterWrite::StaticRejoin(reply, Box::new(response)),
            ) {
                self.write_failed(then, codes::COORDINATOR_NOT_AVAILABLE);
            }
            None
        } else {
            let state = g.state;
            g.members.insert(m.id.clone(), m);
            if state == GroupState::PreparingRebalance {
                self.maybe_complete_join(gid);
            } else {
                self.prepare_rebalance(gid);
            }
            None
        };
        for (reply, response) in fenced {
            self.respond(reply, response);
        }
        answer
    }

    pub(super) fn on_sync_group(&mut self, reply: Reply, r: SyncGroupRequest) {
        if let Some(code) = self.sync_group(reply, r) {
            self.respond(reply, Response::SyncGroup(sync_error(code)));
        }
    }

    /// `Some(code)`: answer now with this error; `None`: answered or parked.
    fn sync_group(&mut self, reply: Reply, r: SyncGroupRequest) -> Option<i16> {
        let now = self.now.mono;
        if let Err(code) = self.coordinator_for(&r.group_id) {
            return Some(code);
        }
        let gid = r.group_id.clone();
        let Some(g) = self.groups.live.get_mut(&gid) else {
            return Some(codes::UNKNOWN_MEMBER_ID);
        };
        if g.state == GroupState::Dead {
            return Some(codes::COORDINATOR_NOT_AVAILABLE);
        }
        let instance = r.group_instance_id.as_deref().filter(|i| !i.is_empty());
        if g.is_fenced(&r.member_id, instance) {
            return Some(codes::FENCED_INSTANCE_ID);
        }
        if !g.members.contains_key(&r.member_id) {
            return Some(codes::UNKNOWN_MEMBER_ID);
        }
        if r.generation_id != g.generation {
            return Some(codes::ILLEGAL_GENERATION);
        }
        let mismatch = |asked: &Option<String>, ours: &Option<String>| {
            asked.as_ref().is_some_and(|a| Some(a) != ours.as_ref())
        };
        if mismatch(&r.protocol_type, &g.protocol_type) || mismatch(&r.protocol_name, &g.protocol) {
            return Some(codes::INCONSISTENT_GROUP_PROTOCOL);
        }
        match g.state {
            GroupState::Empty | GroupState::Dead => Some(codes::UNKNOWN_MEMBER_ID),
            GroupState::PreparingRebalance => Some(codes::REBALANCE_IN_PROGRESS),
            GroupState::Stable => {
                let m = g.members.get_mut(&r.member_id).expect("present");
                m.expires = now + m.session_timeout;
                let response = SyncGroupResponse {
                    protocol_type: g.protocol_type.clone(),
                    protocol_name: g.protocol.clone(),
                    assignment: m.assignment.clone(),
                    ..Default::default()
                };
                self.respond(reply, Response::SyncGroup(response));
                None
            }
            GroupState::CompletingRebalance => {
                let m = g.members.get_mut(&r.member_id).expect("present");
                let old = m.sync.replace(reply);
                let is_leader = g.leader.as_deref() == Some(r.member_id.as_str());
                let mut write = None;
                if is_leader && !g.writing {
                    g.writing = true;
                    let assignments: BTreeMap<String, Bytes> = r
                        .assignments
                        .iter()
                        .filter(|a| g.members.contains_key(&a.member_id))
                        .map(|a| (a.member_id.clone(), a.assignment.clone()))
                        .collect();
                    let mut snapshot = g.clone();
                    for (id, m) in snapshot.members.iter_mut() {
                        m.assignment = assignments.get(id).cloned().unwrap_or_default();
                    }
                    snapshot.state_timestamp = self.now.wall_ms;
                    write = Some((
                        g.partition,
                        GroupRecord::Group {
                            group: gid.clone(),
                            value: Some(snapshot.value(true)),
                        },
                        AfterWrite::Sync {
                            group: gid.clone(),
                            generation: g.generation,
                            assignments,
                        },
                    ));
                }
                if let Some(old) = old {
                    self.respond(
                        old,
                        Response::SyncGroup(sync_error(codes::REBALANCE_IN_PROGRESS)),
                    );
                }
                if let Some((partition, record, then)) = write {
                    if self.cfg.has_bug(BrokerBug::GroupRebalanceNotWritten) {
                        self.write_committed(then);
                    } else if let Err(then) = self.group_append(partition, &[record], false, then) {
                        self.write_failed(then, codes::COORDINATOR_NOT_AVAILABLE);
                    }
                }
                None
            }
        }
    }

    pub(super) fn on_heartbeat(&mut self, reply: Reply, r: HeartbeatRequest) {
        let code = self.heartbeat(&r);
        self.respond(
            reply,
            Response::Heartbeat(HeartbeatResponse {
                error_code: code,
                ..Default::default()
            }),
        );
    }

    fn heartbeat(&mut self, r: &HeartbeatRequest) -> i16 {
        let now = self.now.mono;
        if let Err(code) = self.coordinator_for(&r.group_id) {
            return code;
        }
        let Some(g) = self.groups.live.get_mut(&r.group_id) else {
            return codes::UNKNOWN_MEMBER_ID;
        };
        if g.state == GroupState::Dead {
            return codes::COORDINATOR_NOT_AVAILABLE;
        }
        let instance = r.group_instance_id.as_deref().filter(|i| !i.is_empty());
        if g.is_fenced(&r.member_id, instance) {
            return codes::FENCED_INSTANCE_ID;
        }
        let state = g.state;
        let generation = g.generation;
        let Some(m) = g.members.get_mut(&r.member_id) else {
            return codes::UNKNOWN_MEMBER_ID;
        };
        if r.generation_id != generation {
            return codes::ILLEGAL_GENERATION;
        }
        match state {
            GroupState::Empty | GroupState::Dead => codes::UNKNOWN_MEMBER_ID,
            GroupState::PreparingRebalance => {
                m.expires = now + m.session_timeout;
                codes::REBALANCE_IN_PROGRESS
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                m.expires = now + m.session_timeout;
                codes::NONE
            }
        }
    }

    pub(super) fn on_leave_group(&mut self, reply: Reply, r: LeaveGroupRequest) {
        let batch = reply.api_version >= 3;
        let identities: Vec<(String, Option<String>)> = if batch {
            r.members
                .iter()
                .map(|m| {
                    (
                        m.member_id.clone(),
                        m.group_instance_id.clone().filter(|i| !i.is_empty()),
                    )
                })
                .collect()
        } else {
            vec![(r.member_id.clone(), None)]
        };
        let mut response = LeaveGroupResponse::default();
        match self.coordinator_for(&r.group_id) {
            Err(code) => response.error_code = code,
            Ok(_) => {
                let mut results = Vec::new();
                let mut removed = Vec::new();
                match self.groups.live.get_mut(&r.group_id) {
                    None => {
                        results = identities
                            .iter()
                            .map(|(id, instance)| {
                                (id.clone(), instance.clone(), codes::UNKNOWN_MEMBER_ID)
                            })
                            .collect();
                    }
                    Some(g) => {
                        for (id, instance) in &identities {
                            let target = match instance {
                                Some(i) => match g.statics.get(i) {
                                    Some(current) if !id.is_empty() && current != id => {
                                        results.push((
                                            id.clone(),
                                            instance.clone(),
                                            codes::FENCED_INSTANCE_ID,
                                        ));
                                        continue;
                                    }
                                    Some(current) => current.clone(),
                                    None => {
                                        results.push((
                                            id.clone(),
                                            instance.clone(),
                                            codes::UNKNOWN_MEMBER_ID,
                                        ));
                                        continue;
                                    }
                                },
                                None => id.clone(),
                            };
                            if g.pending.remove(&target).is_some() {
                                results.push((id.clone(), instance.clone(), codes::NONE));
                                continue;
                            }
                            match g.remove(&target) {
                                Some(m) => {
                                    results.push((id.clone(), instance.clone(), codes::NONE));
                                    removed.push(m);
                                }
                                None => results.push((
                                    id.clone(),
                                    instance.clone(),
                                    codes::UNKNOWN_MEMBER_ID,
                                )),
                            }
                        }
                    }
                }
                for m in &removed {
                    if let Some(j) = &m.join {
                        let e = join_error(codes::UNKNOWN_MEMBER_ID, &m.id);
                        self.respond(j.reply, Response::JoinGroup(e));
                    }
                    if let Some(s) = m.sync {
                        self.respond(s, Response::SyncGroup(sync_error(codes::UNKNOWN_MEMBER_ID)));
                    }
                }
                if results.iter().any(|r| r.2 == codes::NONE) {
                    self.members_left(&r.group_id);
                }
                if batch {
                    response.members = results
                        .into_iter()
                        .map(
                            |(member_id, group_instance_id, error_code)| MemberResponse {
                                member_id,
                                group_instance_id,
                                error_code,
                            },
                        )
                        .collect();
                } else {
                    response.error_code = results.first().map_or(codes::NONE, |r| r.2);
                }
            }
        }
        self.respond(reply, Response::LeaveGroup(response));
    }

    pub(super) fn on_offset_commit(&mut self, reply: Reply, r: OffsetCommitRequest) {
        let now = self.now.mono;
        let wall = self.now.wall_ms;
        let gid = r.group_id.clone();
        let generation = r.generation_id_or_member_epoch;
        let any_generation = self.cfg.has_bug(BrokerBug::GroupCommitFromAnyGeneration);
        let early_answer = self.cfg.has_bug(BrokerBug::GroupCommitBeforeReplicated);
        let group_code = match self.coordinator_for(&gid) {
            Err(code) => Err(code),
            Ok(partition) => {
                let instance = r.group_instance_id.as_deref().filter(|i| !i.is_empty());
                if gid.is_empty() {
                    Err(codes::INVALID_GROUP_ID)
                } else {
                    match self.groups.live.get_mut(&gid) {
                        None if generation < 0 => {
                            self.groups
                                .live
                                .insert(gid.clone(), Group::new(&gid, partition));
                            Ok(partition)
                        }
                        None => Err(codes::ILLEGAL_GENERATION),
                        Some(g) => {
                            if g.state == GroupState::Dead {
                                Err(codes::COORDINATOR_NOT_AVAILABLE)
                            } else if any_generation
                                || (generation < 0 && g.state == GroupState::Empty)
                            {
                                Ok(partition)
                            } else if g.is_fenced(&r.member_id, instance) {
                                Err(codes::FENCED_INSTANCE_ID)
                            } else if g.state == GroupState::CompletingRebalance {
                                Err(codes::REBALANCE_IN_PROGRESS)
                            } else if !g.members.contains_key(&r.member_id) {
                                Err(codes::UNKNOWN_MEMBER_ID)
                            } else if generation != g.generation {
                                Err(codes::ILLEGAL_GENERATION)
                            } else {
                                let m = g.members.get_mut(&r.member_id).expect("present");
                                m.expires = now + m.session_timeout;
                                Ok(partition)
                            }
                        }
                    }
                }
            }
        };
        let mut response = OffsetCommitResponse::default();
        let mut records = Vec::new();
        let mut keys = Vec::new();
        for t in &r.topics {
            let mut topic = OffsetCommitResponseTopic {
                name: t.name.clone(),
                partitions: Vec::new(),
            };
            for p in &t.partitions {
                let metadata = p.committed_metadata.clone().unwrap_or_default();
                let code = match group_code {
                    Err(code) => code,
                    Ok(_) if metadata.len() > MAX_OFFSET_METADATA => {
                        codes::OFFSET_METADATA_TOO_LARGE
                    }
                    Ok(_) => {
                        records.push(GroupRecord::Offset {
                            group: gid.clone(),
                            topic: t.name.clone(),
                            partition: p.partition_index,
                            value: Some(OffsetValue {
                                offset: p.committed_offset,
                                leader_epoch: p.committed_leader_epoch,
                                metadata,
                                commit_timestamp: if p.commit_timestamp >= 0 {
                                    p.commit_timestamp
                                } else {
                                    wall
                                },
                            }),
                        });
                        keys.push((gid.clone(), t.name.clone(), p.partition_index));
                        codes::NONE
                    }
                };
                topic.partitions.push(OffsetCommitResponsePartition {
                    partition_index: p.partition_index,
                    error_code: code,
                });
            }
            response.topics.push(topic);
        }
        let Ok(partition) = group_code else {
            self.respond(reply, Response::OffsetCommit(response));
            return;
        };
        if records.is_empty() {
            self.respond(reply, Response::OffsetCommit(response));
            return;
        }
        for k in &keys {
            *self.groups.unstable.entry(k.clone()).or_default() += 1;
        }
        let then = if early_answer {
            self.respond(reply, Response::OffsetCommit(response.clone()));
            self.settle_unstable(&keys);
            AfterWrite::Quiet
        } else {
            AfterWrite::Offsets {
                reply,
                response: Box::new(response),
                keys,
            }
        };
        if let Err(then) = self.group_append(partition, &records, false, then) {
            self.write_failed(then, codes::COORDINATOR_NOT_AVAILABLE);
        }
    }

    /// Committed offsets of one group: (error, topics).
    fn fetch_offsets(
        &self,
        gid: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
        require_stable: bool,
    ) -> (i16, Vec<(String, Vec<OffsetRow>)>) {
        let partition = match self.coordinator_for(gid) {
            Ok(p) => p,
            Err(code) => {
                let topics = topics
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(t, ps)| {
                        (
                            t,
                            ps.into_iter()
                                .map(|p| (p, -1, -1, String::new(), code))
                                .collect(),
                        )
                    })
                    .collect();
                return (code, topics);
            }
        };
        let off_by_one = i64::from(self.cfg.has_bug(BrokerBug::GroupFetchOffsetOffByOne));
        let stored = self
            .groups
            .stored
            .get(&partition)
            .and_then(|s| s.groups.get(gid));
        let offsets = stored.map(|g| &g.offsets);
        let wanted: Vec<(String, Vec<i32>)> = match topics {
            Some(t) => t,
            None => {
                let mut all: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                for (t, p) in offsets.into_iter().flat_map(|o| o.keys()) {
                    all.entry(t.clone()).or_default().push(*p);
                }
                all.into_iter().collect()
            }
        };
        let out = wanted
            .into_iter()
            .map(|(topic, parts)| {
                let rows = parts
                    .into_iter()
                    .map(|p| {
                        let key = (gid.to_string(), topic.clone(), p);
                        if require_stable && self.groups.unstable.contains_key(&key) {
                            return (p, -1, -1, String::new(), codes::UNSTABLE_OFFSET_COMMIT);
                        }
                        match offsets.and_then(|o| o.get(&(topic.clone(), p))) {
                            Some(v) => {
                                let offset = v.offset + off_by_one;
                                (p, offset, v.leader_epoch, v.metadata.clone(), codes::NONE)
                            }
                            None => (p, -1, -1, String::new(), codes::NONE),
                        }
                    })
                    .collect();
                (topic, rows)
            })
            .collect();
        (codes::NONE, out)
    }

    pub(super) fn on_offset_fetch(&mut self, reply: Reply, r: OffsetFetchRequest) {
        let mut response = OffsetFetchResponse::default();
        if reply.api_version >= 8 {
            for g in &r.groups {
                let topics = g.topics.as_ref().map(|ts| {
                    ts.iter()
                        .map(|t| (t.name.clone(), t.partition_indexes.clone()))
                        .collect()
                });
                let (code, topics) = self.fetch_offsets(&g.group_id, topics, r.require_stable);
                response.groups.push(OffsetFetchResponseGroup {
                    group_id: g.group_id.clone(),
                    error_code: code,
                    topics: if code != codes::NONE {
                        Vec::new()
                    } else {
                        topics
                            .into_iter()
                            .map(|(name, rows)| OffsetFetchResponseTopics {
                                name,
                                partitions: rows
                                    .into_iter()
                                    .map(|(p, offset, epoch, metadata, code)| {
                                        OffsetFetchResponsePartitions {
                                            partition_index: p,
                                            committed_offset: offset,
                                            committed_leader_epoch: epoch,
                                            metadata: Some(metadata),
                                            error_code: code,
                                        }
                                    })
                                    .collect(),
                            })
                            .collect()
                    },
                });
            }
        } else {
            let topics = r.topics.as_ref().map(|ts| {
                ts.iter()
                    .map(|t| (t.name.clone(), t.partition_indexes.clone()))
                    .collect()
            });
            let (code, topics) = self.fetch_offsets(&r.group_id, topics, r.require_stable);
            response.error_code = code;
            response.topics = topics
                .into_iter()
                .map(|(name, rows)| OffsetFetchResponseTopic {
                    name,
                    partitions: rows
                        .into_iter()
                        .map(
                            |(p, offset, epoch, metadata, code)| OffsetFetchResponsePartition {
                                partition_index: p,
                                committed_offset: offset,
                                committed_leader_epoch: epoch,
                                metadata: Some(metadata),
                                error_code: code,
                            },
                        )
                        .collect(),
                })
                .collect();
        }
        self.respond(reply, Response::OffsetFetch(response));
    }

    pub(super) fn on_describe_groups(&mut self, reply: Reply, r: DescribeGroupsRequest) {
        let mut response = DescribeGroupsResponse::default();
        for gid in &r.groups {
            let mut d = DescribedGroup {
                group_id: gid.clone(),
                ..Default::default()
            };
            if let Err(code) = self.coordinator_for(gid) {
                d.error_code = code;
                response.groups.push(d);
                continue;
            }
            match self.groups.live.get(gid) {
                None => d.group_state = GroupState::Dead.name().to_string(),
                Some(g) => {
                    d.group_state = g.state.name().to_string();
                    d.protocol_type = g.protocol_type.clone().unwrap_or_default();
                    let stable = g.state == GroupState::Stable;
                    if stable {
                        d.protocol_data = g.protocol.clone().unwrap_or_default();
                    }
                    d.members = g
                        .members
                        .values()
                        .map(|m| DescribedGroupMember {
                            member_id: m.id.clone(),
                            group_instance_id: m.instance_id.clone(),
                            client_id: m.client_id.clone(),
                            client_host: m.client_host.clone(),
                            member_metadata: if stable {
                                m.metadata(g.protocol.as_deref())
                            } else {
                                Bytes::new()
                            },
                            member_assignment: if stable {
                                m.assignment.clone()
                            } else {
                                Bytes::new()
                            },
                        })
                        .collect();
                }
            }
            response.groups.push(d);
        }
        self.respond(reply, Response::DescribeGroups(response));
    }

    pub(super) fn on_list_groups(&mut self, reply: Reply, r: ListGroupsRequest) {
        let loading = self
            .partitions
            .iter()
            .any(|(id, p)| p.keep_committed && p.is_leader() && !self.groups.serving.contains(id));
        let mut response = ListGroupsResponse::default();
        if loading {
            response.error_code = codes::COORDINATOR_LOAD_IN_PROGRESS;
        }
        for g in self.groups.live.values() {
            let state = g.state.name();
            if !r.states_filter.is_empty()
                && !r
                    .states_filter
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(state))
            {
                continue;
            }
            response.groups.push(ListedGroup {
                group_id: g.id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                group_state: state.to_string(),
            });
        }
        self.respond(reply, Response::ListGroups(response));
    }

    pub(super) fn on_delete_groups(&mut self, reply: Reply, r: DeleteGroupsRequest) {
        let request = self.groups.key();
        let mut response = DeleteGroupsResponse::default();
        let mut writes = Vec::new();
        for gid in &r.groups_names {
            let code = match self.coordinator_for(gid) {
                Err(code) => code,
                Ok(partition) => match self.groups.live.get_mut(gid) {
                    None => codes::GROUP_ID_NOT_FOUND,
                    Some(g) if g.state == GroupState::Dead => codes::COORDINATOR_NOT_AVAILABLE,
                    Some(g) if g.state != GroupState::Empty => codes::NON_EMPTY_GROUP,
                    Some(g) => {
                        g.state = GroupState::Dead;
                        let mut records = vec![GroupRecord::Group {
                            group: gid.clone(),
                            value: None,
                        }];
                        if let Some(s) = self
                            .groups
                            .stored
                            .get(&partition)
                            .and_then(|s| s.groups.get(gid))
                        {
                            for (topic, p) in s.offsets.keys() {
                                records.push(GroupRecord::Offset {
                                    group: gid.clone(),
                                    topic: topic.clone(),
                                    partition: *p,
                                    value: None,
                                });
                            }
                        }
                        writes.push((partition, gid.clone(), records));
                        codes::NONE
                    }
                },
            };
            response.results.push(DeletableGroupResult {
                group_id: gid.clone(),
                error_code: code,
            });
        }
        let waiting = writes.len();
        self.groups.deletes.insert(
            request,
            PendingDelete {
                reply,
                response,
                waiting,
            },
        );
        for (partition, gid, records) in writes {
            let then = AfterWrite::Delete {
                request,
                group: gid,
            };
            if let Err(then) = self.group_append(partition, &records, false, then) {
                self.write_failed(then, codes::COORDINATOR_NOT_AVAILABLE);
            }
        }
        self.delete_done(request, "", codes::NONE);
    }

    /// One group of a DeleteGroups request is settled (`""`: just check whether all are).
    fn delete_done(&mut self, request: u64, gid: &str, code: i16) {
        let Some(d) = self.groups.deletes.get_mut(&request) else {
            return;
        };
        if !gid.is_empty() {
            d.waiting = d.waiting.saturating_sub(1);
            if let Some(r) = d.response.results.iter_mut().find(|r| r.group_id == gid) {
                r.error_code = code;
            }
        }
        if d.waiting == 0 {
            let d = self.groups.deletes.remove(&request).expect("present");
            self.respond(d.reply, Response::DeleteGroups(d.response));
        }
    }

    // ----- observers -----

    /// The groups this broker coordinates, for the simulator's checkers and tests.
    pub fn group_summaries(&self) -> Vec<GroupSummary> {
        self.groups
            .live
            .values()
            .map(|g| GroupSummary {
                group: g.id.clone(),
                state: g.state.name(),
                generation: g.generation,
                members: g.members.keys().cloned().collect(),
            })
            .collect()
    }
}
