//! A simulated member of a Kafka consumer group (the classic protocol with eager rebalancing),
//! written sans-IO like the other clients, and the end-of-run offset observer.
//!
//! A member does what a Kafka consumer subscribed to the topic does:
//! - FindCoordinator at any broker; on COORDINATOR_NOT_AVAILABLE it asks again, and any
//!   coordinator error (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE), dropped connection or
//!   timeout on a group request makes it look the coordinator up again.
//!   COORDINATOR_LOAD_IN_PROGRESS is retried at the same coordinator after a backoff.
//! - JoinGroup (v9) with protocol type "consumer" and one protocol, "range", whose metadata is
//!   its subscription (Kafka's ConsumerProtocolSubscription v0); a dynamic member does the
//!   MEMBER_ID_REQUIRED round trip, a static one sends its group.instance.id.
//! - The leader computes a range assignment of the topic's partitions over the members (sorted
//!   by group.instance.id, else member id) and sends it in SyncGroup (Kafka's
//!   ConsumerProtocolAssignment v0); a static leader told `skip_assignment` sends none.
//! - Once assigned, it heartbeats every `heartbeat_ms`, fetches the committed offsets
//!   (OffsetFetch, require_stable) and reads from there (the log start when none), delivers
//!   what it reads, and commits its positions every `commit_interval_ms`.
//! - REBALANCE_IN_PROGRESS: it commits its positions, then revokes them and rejoins (eager).
//!   ILLEGAL_GENERATION: its partitions are lost (no commit), it rejoins with its member id;
//!   UNKNOWN_MEMBER_ID: the same, as a new member. FENCED_INSTANCE_ID is fatal: it stops.
//!
//! What it records: every generation it joins, every assignment, every acknowledged commit,
//! every committed offset it fetched, every delivery (also as polls and seeks, so the
//! consumer checkers judge members too) and every reset.
//!
//! Scheduled actions come from the simulator: start, leave (commit, LeaveGroup, stop), crash
//! (the simulator drops its connections), pause (the simulator holds its inputs), and an
//! explicit reset (positions moved back and committed, recorded as a reset).
//!
//! Not modelled: the cooperative (incremental) protocol, KIP-848's new protocol, other
//! assignors, subscription changes, max.poll.interval (a member polls as fast as it reads).

use super::client::{
    fetch_request, fetched_records, Channel, Cx, MetaView, Note, Requests, FETCH_V, TOPIC,
};
use super::config::GroupWorkload;
use super::history::{ConsumerOp, GroupOp, Poll, StopReason};
use bytes::Bytes;
use sluice_core::protocol::codes;
use sluice_core::protocol::messages::fetch::*;
use sluice_core::protocol::messages::find_coordinator::*;
use sluice_core::protocol::messages::heartbeat::*;
use sluice_core::protocol::messages::join_group::*;
use sluice_core::protocol::messages::leave_group::*;
use sluice_core::protocol::messages::offset_commit::*;
use sluice_core::protocol::messages::offset_fetch::*;
use sluice_core::protocol::messages::sync_group::*;
use sluice_core::protocol::{Reader, Request, Response, Writer};
use std::collections::{BTreeMap, BTreeSet};

pub const FIND_COORDINATOR_V: i16 = 3;
pub const JOIN_GROUP_V: i16 = 9;
pub const SYNC_GROUP_V: i16 = 5;
pub const HEARTBEAT_V: i16 = 4;
pub const LEAVE_GROUP_V: i16 = 5;
pub const OFFSET_COMMIT_V: i16 = 8;
pub const OFFSET_FETCH_V: i16 = 7;
const PROTOCOL_TYPE: &str = "consumer";
const PROTOCOL: &str = "range";
const MS: u64 = 1_000_000;
/// Consecutive OFFSET_OUT_OF_RANGE answers before a member resets to the log start
/// (auto.offset.reset=earliest).
const OUT_OF_RANGE_RESET: u32 = 4;
/// A leaving member gives up on LeaveGroup after this long (close() has a timeout too).
const LEAVE_TIMEOUT_NS: u64 = 5_000 * MS;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Req {
    Metadata,
    Fetch,
    FindCoordinator,
    Join,
    Sync { generation: i32 },
    Heartbeat { generation: i32 },
    Commit,
    OffsetFetch { epoch: u64, sent_at: u64 },
    Leave,
}

impl Req {
    /// Requests that go to the coordinator.
    fn is_group(self) -> bool {
        !matches!(self, Req::Metadata | Req::Fetch | Req::FindCoordinator)
    }
}

/// Where a member is in the group protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Not running (never started, left, crashed or fenced).
    Down,
    /// Wants a JoinGroup answered.
    Joining,
    /// Joined `generation`; wants its SyncGroup answered.
    Syncing,
    /// Assigned; wants the committed offsets of its partitions.
    Fetching,
    /// Assigned, positions known: reading, heartbeating, committing.
    Consuming,
    /// A rebalance began: committing its positions before it revokes them and rejoins.
    Revoking,
    /// Committing, then LeaveGroup, then stop.
    Leaving,
}

/// What a member does once the commit in flight is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum After {
    Nothing,
    Rejoin,
    Leave,
}

#[derive(Debug)]
struct Owned {
    /// None until the committed offset is fetched.
    position: Option<i64>,
    out_of_range: u32,
    retry_at: u64,
    /// The last fetch answer had nothing past the position (it reached the high watermark).
    caught_up: bool,
}

#[derive(Debug)]
struct CommitInFlight {
    corr: i32,
    generation: i32,
    member_id: String,
    /// (partition, offset, carries a reset).
    offsets: Vec<(u32, i64, bool)>,
    invoked_at: u64,
    after: After,
    /// Sent for the end-of-run flush.
    flush: bool,
}

/// One partition of a fetch in flight: (partition, position, leader epoch named).
type Asked = (u32, i64, i32);

/// The end-of-run flush: a commit of every position, acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flush {
    Idle,
    Wanted,
    Done,
}

/// Looks up the group's coordinator, shared by members and the observer.
#[derive(Debug, Default)]
struct Lookup {
    node: Option<u32>,
    inflight: Option<i32>,
    next_at: u64,
}

impl Lookup {
    fn maybe_find(&mut self, cx: &mut Cx<'_>, reqs: &mut Requests<Req>, group: &str) {
        if self.node.is_some() || self.inflight.is_some() || cx.now < self.next_at {
            return;
        }
        let node = cx.random_broker();
        let request = Request::FindCoordinator(FindCoordinatorRequest {
            key: group.to_string(),
            key_type: 0,
            ..Default::default()
        });
        let corr = reqs.send(
            cx,
            node,
            FIND_COORDINATOR_V,
            request,
            Req::FindCoordinator,
            true,
        );
        self.inflight = Some(corr);
    }

    fn on_done(&mut self, corr: i32, r: Option<&FindCoordinatorResponse>, cx: &mut Cx<'_>) {
        if self.inflight != Some(corr) {
            return;
        }
        self.inflight = None;
        match r {
            Some(r)
                if r.error_code == codes::NONE && (1..=cx.brokers as i32).contains(&r.node_id) =>
            {
                self.node = Some(r.node_id as u32);
            }
            _ => self.next_at = cx.now + cx.workload.retry_backoff_ms * MS,
        }
    }

    /// The coordinator answered with a coordinator error or its connection dropped.
    fn forget(&mut self, cx: &Cx<'_>) {
        if self.node.take().is_some() {
            self.next_at = cx.now + cx.workload.retry_backoff_ms * MS;
        }
    }

    fn next_wake(&self) -> Option<u64> {
        (self.node.is_none() && self.inflight.is_none()).then_some(self.next_at)
    }
}

fn is_coordinator_error(code: i16) -> bool {
    matches!(
        code,
        codes::NOT_COORDINATOR | codes::COORDINATOR_NOT_AVAILABLE
    )
}

/// Kafka's ConsumerProtocolSubscription v0: the topics, no user data.
pub fn encode_subscription(topics: &[&str]) -> Bytes {
    let mut w = Writer::new();
    w.i16(0);
    w.array_len(false, Some(topics.len()));
    for t in topics {
        w.string(false, t);
    }
    w.nullable_bytes(false, None);
    Bytes::from(w.into_inner())
}

/// The topics of a subscription (any version: later ones only append fields).
pub fn decode_subscription(b: &[u8]) -> Option<Vec<String>> {
    let mut r = Reader::new(b);
    r.i16().ok()?;
    let n = r.array_len(false, 2).ok()??;
    (0..n).map(|_| r.string(false).ok()).collect()
}

/// Kafka's ConsumerProtocolAssignment v0: the partitions of `TOPIC`, no user data.
pub fn encode_assignment(partitions: &[u32]) -> Bytes {
    let mut w = Writer::new();
    w.i16(0);
    w.array_len(false, Some(1));
    w.string(false, TOPIC);
    w.array_len(false, Some(partitions.len()));
    for &p in partitions {
        w.i32(p as i32);
    }
    w.nullable_bytes(false, None);
    Bytes::from(w.into_inner())
}

/// The partitions of `TOPIC` in an assignment (None: it does not decode; empty bytes are an
/// empty assignment).
pub fn decode_assignment(b: &[u8]) -> Option<Vec<u32>> {
    if b.is_empty() {
        return Some(Vec::new());
    }
    let mut r = Reader::new(b);
    r.i16().ok()?;
    let topics = r.array_len(false, 6).ok()?.unwrap_or(0);
    let mut out = Vec::new();
    for _ in 0..topics {
        let name = r.string(false).ok()?;
        let n = r.array_len(false, 4).ok()?.unwrap_or(0);
        for _ in 0..n {
            let p = r.i32().ok()?;
            if name == TOPIC && p >= 0 {
                out.push(p as u32);
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    Some(out)
}

/// The range assignor: the members subscribed to the topic, sorted by group.instance.id (else
/// member id), each take a contiguous range of its `partitions`, the first ones one more
/// when they do not divide evenly. Every member gets an entry (maybe empty).
pub fn range_assign(
    members: &[JoinGroupResponseMember],
    partitions: u32,
) -> Vec<SyncGroupRequestAssignment> {
    let mut subscribed: Vec<(&str, &str)> = members
        .iter()
        .filter(|m| {
            decode_subscription(&m.metadata).is_some_and(|ts| ts.iter().any(|t| t == TOPIC))
        })
        .map(|m| {
            let key = m.group_instance_id.as_deref().unwrap_or(&m.member_id);
            (key, m.member_id.as_str())
        })
        .collect();
    subscribed.sort_unstable();
    let mut ranges: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    let n = subscribed.len() as u32;
    if let (Some(per), Some(extra)) = (partitions.checked_div(n), partitions.checked_rem(n)) {
        for (i, (_, id)) in subscribed.iter().enumerate() {
            let i = i as u32;
            let start = i * per + i.min(extra);
            let len = per + u32::from(i < extra);
            ranges.insert(id, (start..start + len).collect());
        }
    }
    members
        .iter()
        .map(|m| SyncGroupRequestAssignment {
            member_id: m.member_id.clone(),
            assignment: encode_assignment(
                ranges
                    .get(m.member_id.as_str())
                    .map_or(&[][..], Vec::as_slice),
            ),
        })
        .collect()
}

/// A group member slot: one simulated client that runs incarnation after incarnation.
#[derive(Debug)]
pub struct GroupMember {
    /// The client id (also the consumer id of its polls).
    pub id: u32,
    pub slot: u32,
    group: String,
    pub instance: Option<String>,
    session_timeout_ms: u64,
    rebalance_timeout_ms: u64,
    heartbeat_ns: u64,
    commit_interval_ns: u64,
    partitions: u32,
    pub stage: Stage,
    pub incarnations: u32,
    /// Times it began committing before revoking (for group triggers).
    pub revokes: u64,
    meta: MetaView,
    /// Metadata, fetches and FindCoordinator, on the data connections.
    reqs: Requests<Req>,
    /// Requests to the coordinator, on a connection of their own.
    greqs: Requests<Req>,
    lookup: Lookup,
    pub member_id: String,
    pub generation: i32,
    /// Whether SyncGroup answered for `generation` (the member holds an assignment).
    pub assigned: bool,
    owned: BTreeMap<u32, Owned>,
    /// Bumped whenever the assignment or a position moves on purpose: answers to requests
    /// sent before are stale.
    epoch: u64,
    /// node -> (correlation id, what the fetch asked for, epoch).
    fetching: BTreeMap<u32, (i32, Vec<Asked>, u64)>,
    /// When the stage's next group request may go (a backoff after an error).
    retry_at: u64,
    next_heartbeat_at: u64,
    next_commit_at: u64,
    commit: Option<CommitInFlight>,
    /// Partitions whose position was reset and not yet committed.
    reset_pending: BTreeSet<u32>,
    leave_deadline: u64,
    flush: Flush,
}

impl GroupMember {
    pub fn new(id: u32, slot: u32, g: &GroupWorkload, partitions: u32) -> GroupMember {
        GroupMember {
            id,
            slot,
            group: g.group.clone(),
            instance: g.instance_id(slot),
            session_timeout_ms: g.session_timeout_ms,
            rebalance_timeout_ms: g.rebalance_timeout_ms,
            heartbeat_ns: g.heartbeat_ms * MS,
            commit_interval_ns: g.commit_interval_ms * MS,
            partitions,
            stage: Stage::Down,
            incarnations: 0,
            revokes: 0,
            meta: MetaView::new(partitions),
            reqs: Requests::new(),
            greqs: Requests::on(Channel::Group),
            lookup: Lookup::default(),
            member_id: String::new(),
            generation: -1,
            assigned: false,
            owned: BTreeMap::new(),
            epoch: 0,
            fetching: BTreeMap::new(),
            retry_at: 0,
            next_heartbeat_at: 0,
            next_commit_at: 0,
            commit: None,
            reset_pending: BTreeSet::new(),
            leave_deadline: 0,
            flush: Flush::Idle,
        }
    }

    pub fn is_running(&self) -> bool {
        self.stage != Stage::Down
    }

    /// The partitions it holds, once assigned.
    pub fn partitions(&self) -> Option<Vec<u32>> {
        self.assigned.then(|| self.owned.keys().copied().collect())
    }

    /// What it is doing, for liveness reports.
    pub fn describe(&self) -> String {
        format!(
            "{:?} id={} generation={} coordinator={:?} owned={:?}",
            self.stage,
            self.member_id,
            self.generation,
            self.lookup.node,
            self.owned
                .iter()
                .map(|(p, o)| (*p, o.position))
                .collect::<Vec<_>>()
        )
    }

    fn push_op(cx: &mut Cx<'_>, op: GroupOp) {
        cx.history.group_ops.push(op);
        cx.notes.push(Note::GroupOp(cx.history.group_ops.len() - 1));
    }

    // ----- actions the simulator schedules -----

    /// Starts a new incarnation (nothing if one runs).
    pub fn start(&mut self, cx: &mut Cx<'_>) {
        if self.is_running() {
            return;
        }
        self.incarnations += 1;
        self.reset_state();
        self.stage = Stage::Joining;
        self.retry_at = cx.now;
        Self::push_op(
            cx,
            GroupOp::Started {
                member: self.id,
                instance: self.instance.clone(),
                at: cx.now,
            },
        );
        self.step(cx);
    }

    /// The process died: everything in flight is gone (the simulator closes its
    /// connections).
    pub fn crash(&mut self, cx: &mut Cx<'_>) {
        if self.is_running() {
            self.stop(StopReason::Crashed, cx);
        }
    }

    /// Commit, LeaveGroup, stop.
    pub fn leave(&mut self, cx: &mut Cx<'_>) {
        match self.stage {
            Stage::Down | Stage::Leaving => return,
            Stage::Consuming | Stage::Revoking if self.has_positions() => {
                self.stage = Stage::Leaving;
                self.leave_deadline = cx.now + LEAVE_TIMEOUT_NS;
                match &mut self.commit {
                    Some(c) => c.after = After::Leave,
                    None => self.send_commit(After::Leave, cx),
                }
            }
            _ => {
                self.stage = Stage::Leaving;
                self.leave_deadline = cx.now + LEAVE_TIMEOUT_NS;
                self.commit = None;
            }
        }
        self.step(cx);
    }

    /// Moves every owned position back (to a point drawn below it) and commits it.
    pub fn reset_positions(&mut self, cx: &mut Cx<'_>) {
        if self.stage != Stage::Consuming {
            return;
        }
        let owned: Vec<(u32, i64)> = self
            .owned
            .iter()
            .filter_map(|(&p, o)| o.position.filter(|&x| x > 0).map(|x| (p, x)))
            .collect();
        if owned.is_empty() {
            return;
        }
        self.epoch += 1;
        for (p, position) in owned {
            let to = cx.rng.range(0, position as u64) as i64;
            self.seek(p, to, true, cx);
        }
        self.next_commit_at = cx.now;
        self.step(cx);
    }

    /// The end of the run (producers have stopped): read every owned partition to its end,
    /// then commit; `flushed` once that commit is acknowledged.
    pub fn request_flush(&mut self, cx: &mut Cx<'_>) {
        let holds = self.assigned && !self.owned.is_empty();
        let settling = matches!(self.stage, Stage::Fetching | Stage::Consuming);
        self.flush = if holds && settling {
            Flush::Wanted
        } else {
            Flush::Done
        };
        self.step(cx);
    }

    fn caught_up(&self) -> bool {
        self.owned.values().all(|o| o.caught_up)
    }

    pub fn flushed(&self) -> bool {
        self.flush == Flush::Done || !self.is_running()
    }

    fn stop(&mut self, why: StopReason, cx: &mut Cx<'_>) {
        Self::push_op(
            cx,
            GroupOp::Stopped {
                member: self.id,
                member_id: self.member_id.clone(),
                why,
                at: cx.now,
            },
        );
        if why != StopReason::Crashed {
            for node in 1..=cx.brokers {
                cx.out.push(self.reqs.close(node));
                cx.out.push(self.greqs.close(node));
            }
        }
        self.reset_state();
        self.stage = Stage::Down;
    }

    fn reset_state(&mut self) {
        self.reqs.inflight.clear();
        self.greqs.inflight.clear();
        self.meta = MetaView::new(self.partitions);
        self.lookup = Lookup::default();
        self.member_id.clear();
        self.generation = -1;
        self.assigned = false;
        self.owned.clear();
        self.epoch += 1;
        self.fetching.clear();
        self.commit = None;
        self.reset_pending.clear();
        self.flush = Flush::Idle;
    }

    // ----- driving -----

    pub fn on_wake(&mut self, cx: &mut Cx<'_>) {
        while let Some(node) = self.reqs.expired(cx.now) {
            cx.out.push(self.reqs.close(node));
            self.drop_connection(Channel::Data, node, cx);
        }
        while let Some(node) = self.greqs.expired(cx.now) {
            cx.out.push(self.greqs.close(node));
            self.drop_connection(Channel::Group, node, cx);
        }
        if self.stage == Stage::Leaving && cx.now >= self.leave_deadline {
            self.stop(StopReason::Left, cx);
            return;
        }
        self.step(cx);
    }

    /// The next time something is due, strictly after `now`.
    pub fn next_wake(&self, now: u64) -> Option<u64> {
        if !self.is_running() {
            return None;
        }
        let mut times = vec![self.meta.next_wake()];
        times.extend(self.reqs.next_deadline());
        times.extend(self.greqs.next_deadline());
        times.extend(self.lookup.next_wake());
        times.push(self.retry_at);
        if self.assigned && matches!(self.stage, Stage::Fetching | Stage::Consuming) {
            times.push(self.next_heartbeat_at);
        }
        if self.stage == Stage::Consuming {
            times.push(self.next_commit_at);
            for (p, o) in &self.owned {
                if let Some((node, _)) = self.meta.leader(*p) {
                    if !self.fetching.contains_key(&node) {
                        times.push(o.retry_at);
                    }
                }
            }
        }
        if self.stage == Stage::Leaving {
            times.push(self.leave_deadline);
        }
        times
            .into_iter()
            .filter(|&t| t > now && t != u64::MAX)
            .min()
    }

    /// Whether a request to the coordinator matching `f` is in flight.
    fn inflight(&self, f: impl Fn(&Req) -> bool) -> bool {
        self.greqs.any(f)
    }

    fn step(&mut self, cx: &mut Cx<'_>) {
        if !self.is_running() {
            return;
        }
        self.meta.maybe_refresh(cx, &mut self.reqs, Req::Metadata);
        self.lookup.maybe_find(cx, &mut self.reqs, &self.group);
        if let Some(node) = self.lookup.node {
            self.group_requests(node, cx);
        }
        if self.stage == Stage::Consuming {
            self.fetch(cx);
        }
    }

    /// Sends the group requests that are due to coordinator `node`.
    fn group_requests(&mut self, node: u32, cx: &mut Cx<'_>) {
        let due = cx.now >= self.retry_at;
        match self.stage {
            Stage::Joining if due && !self.inflight(|k| *k == Req::Join) => {
                self.send_join(node, cx)
            }
            Stage::Fetching if due && !self.inflight(|k| matches!(k, Req::OffsetFetch { .. })) => {
                self.send_offset_fetch(node, cx)
            }
            Stage::Leaving if self.commit.is_none() && !self.inflight(|k| *k == Req::Leave) => {
                self.send_leave(node, cx)
            }
            _ => {}
        }
        let beating = self.assigned && matches!(self.stage, Stage::Fetching | Stage::Consuming);
        if beating
            && cx.now >= self.next_heartbeat_at
            && !self.inflight(|k| matches!(k, Req::Heartbeat { .. }))
        {
            self.send_heartbeat(node, cx);
        }
        let flush_due = self.flush == Flush::Wanted && self.caught_up();
        if self.stage == Stage::Consuming
            && (cx.now >= self.next_commit_at || flush_due)
            && self.commit.is_none()
            && self.has_positions()
        {
            self.send_commit(After::Nothing, cx);
        }
    }

    fn has_positions(&self) -> bool {
        self.owned.values().any(|o| o.position.is_some())
    }

    fn backoff(&mut self, cx: &Cx<'_>) {
        self.retry_at = cx.now + cx.workload.retry_backoff_ms * MS;
    }

    /// Rejoin: the assignment is gone (revoked or lost); `keep_id` false rejoins as a new
    /// member.
    fn rejoin(&mut self, keep_id: bool, cx: &mut Cx<'_>) {
        self.owned.clear();
        self.assigned = false;
        self.epoch += 1;
        self.fetching.clear();
        self.reset_pending.clear();
        if !keep_id {
            self.member_id.clear();
            self.generation = -1;
        }
        if self.stage != Stage::Leaving {
            self.stage = Stage::Joining;
        }
        self.retry_at = cx.now;
    }

    /// A rebalance began: commit (eager revoke), then rejoin.
    fn revoke_then_rejoin(&mut self, cx: &mut Cx<'_>) {
        match self.stage {
            Stage::Consuming if self.has_positions() => {
                self.stage = Stage::Revoking;
                self.revokes += 1;
                match &mut self.commit {
                    Some(c) => c.after = After::Rejoin,
                    None => self.send_commit(After::Rejoin, cx),
                }
            }
            Stage::Revoking | Stage::Leaving => {}
            _ => self.rejoin(true, cx),
        }
    }

    fn send_join(&mut self, node: u32, cx: &mut Cx<'_>) {
        let request = Request::JoinGroup(JoinGroupRequest {
            group_id: self.group.clone(),
            session_timeout_ms: self.session_timeout_ms as i32,
            rebalance_timeout_ms: self.rebalance_timeout_ms as i32,
            member_id: self.member_id.clone(),
            group_instance_id: self.instance.clone(),
            protocol_type: PROTOCOL_TYPE.into(),
            protocols: vec![JoinGroupRequestProtocol {
                name: PROTOCOL.into(),
                metadata: encode_subscription(&[TOPIC]),
            }],
            reason: None,
        });
        let corr = self
            .greqs
            .send(cx, node, JOIN_GROUP_V, request, Req::Join, true);
        self.long_deadline(corr, cx);
    }

    /// A JoinGroup or SyncGroup may wait at the coordinator for the rebalance: its client-side
    /// timeout is the rebalance timeout and then some, as Kafka's consumer sets it.
    fn long_deadline(&mut self, corr: i32, cx: &Cx<'_>) {
        if let Some(r) = self.greqs.inflight.get_mut(&corr) {
            r.deadline = cx.now + (self.rebalance_timeout_ms + 5_000) * MS;
        }
    }

    fn send_sync(
        &mut self,
        node: u32,
        assignments: Vec<SyncGroupRequestAssignment>,
        cx: &mut Cx<'_>,
    ) {
        let generation = self.generation;
        let request = Request::SyncGroup(SyncGroupRequest {
            group_id: self.group.clone(),
            generation_id: generation,
            member_id: self.member_id.clone(),
            group_instance_id: self.instance.clone(),
            protocol_type: Some(PROTOCOL_TYPE.into()),
            protocol_name: Some(PROTOCOL.into()),
            assignments,
        });
        let corr = self.greqs.send(
            cx,
            node,
            SYNC_GROUP_V,
            request,
            Req::Sync { generation },
            true,
        );
        self.long_deadline(corr, cx);
    }

    fn send_heartbeat(&mut self, node: u32, cx: &mut Cx<'_>) {
        let generation = self.generation;
        let request = Request::Heartbeat(HeartbeatRequest {
            group_id: self.group.clone(),
            generation_id: generation,
            member_id: self.member_id.clone(),
            group_instance_id: self.instance.clone(),
        });
        self.greqs.send(
            cx,
            node,
            HEARTBEAT_V,
            request,
            Req::Heartbeat { generation },
            true,
        );
        self.next_heartbeat_at = cx.now + self.heartbeat_ns;
    }

    fn send_offset_fetch(&mut self, node: u32, cx: &mut Cx<'_>) {
        let parts: Vec<i32> = self.owned.keys().map(|&p| p as i32).collect();
        let request = Request::OffsetFetch(OffsetFetchRequest {
            group_id: self.group.clone(),
            topics: Some(vec![OffsetFetchRequestTopic {
                name: TOPIC.into(),
                partition_indexes: parts,
            }]),
            require_stable: true,
            ..Default::default()
        });
        let (epoch, sent_at) = (self.epoch, cx.now);
        self.greqs.send(
            cx,
            node,
            OFFSET_FETCH_V,
            request,
            Req::OffsetFetch { epoch, sent_at },
            true,
        );
    }

    /// Commits every known position; `after` says what follows it. Without a coordinator the
    /// commit cannot go: what follows happens at once.
    fn send_commit(&mut self, after: After, cx: &mut Cx<'_>) {
        let Some(node) = self.lookup.node else {
            if after != After::Nothing {
                self.commit_over(after, cx);
            }
            return;
        };
        let offsets: Vec<(u32, i64, bool)> = self
            .owned
            .iter()
            .filter_map(|(&p, o)| o.position.map(|x| (p, x, self.reset_pending.contains(&p))))
            .collect();
        let request = Request::OffsetCommit(OffsetCommitRequest {
            group_id: self.group.clone(),
            generation_id_or_member_epoch: self.generation,
            member_id: self.member_id.clone(),
            group_instance_id: self.instance.clone(),
            topics: vec![OffsetCommitRequestTopic {
                name: TOPIC.into(),
                partitions: offsets
                    .iter()
                    .map(|&(p, offset, _)| OffsetCommitRequestPartition {
                        partition_index: p as i32,
                        committed_offset: offset,
                        committed_leader_epoch: -1,
                        committed_metadata: Some(String::new()),
                        ..Default::default()
                    })
                    .collect(),
            }],
            ..Default::default()
        });
        let corr = self
            .greqs
            .send(cx, node, OFFSET_COMMIT_V, request, Req::Commit, true);
        self.commit = Some(CommitInFlight {
            corr,
            generation: self.generation,
            member_id: self.member_id.clone(),
            offsets,
            invoked_at: cx.now,
            after,
            flush: self.flush == Flush::Wanted && self.caught_up(),
        });
        self.next_commit_at = cx.now + self.commit_interval_ns;
    }

    fn send_leave(&mut self, node: u32, cx: &mut Cx<'_>) {
        if self.member_id.is_empty() && self.instance.is_none() {
            self.stop(StopReason::Left, cx);
            return;
        }
        let request = Request::LeaveGroup(LeaveGroupRequest {
            group_id: self.group.clone(),
            members: vec![MemberIdentity {
                member_id: self.member_id.clone(),
                group_instance_id: self.instance.clone(),
                reason: Some("the simulation's leave action".into()),
            }],
            ..Default::default()
        });
        self.greqs
            .send(cx, node, LEAVE_GROUP_V, request, Req::Leave, true);
    }

    /// Sends a fetch to every leader of owned partitions with a known position.
    fn fetch(&mut self, cx: &mut Cx<'_>) {
        let mut by_node: BTreeMap<u32, Vec<Asked>> = BTreeMap::new();
        for (&p, o) in &self.owned {
            let (Some(position), Some((node, epoch))) = (o.position, self.meta.leader(p)) else {
                continue;
            };
            if o.retry_at > cx.now || self.fetching.contains_key(&node) {
                continue;
            }
            by_node.entry(node).or_default().push((p, position, epoch));
        }
        for (node, parts) in by_node {
            let request = fetch_request(&parts, cx.workload.fetch_max_wait_ms);
            let corr = self.reqs.send(cx, node, FETCH_V, request, Req::Fetch, true);
            self.fetching.insert(node, (corr, parts, self.epoch));
        }
    }

    /// Moves a position on purpose (an assignment's committed offset, or a reset), recording
    /// a seek, and for a reset a reset.
    fn seek(&mut self, p: u32, offset: i64, reset: bool, cx: &mut Cx<'_>) {
        if let Some(o) = self.owned.get_mut(&p) {
            o.position = Some(offset);
            o.out_of_range = 0;
            o.caught_up = false;
        }
        if reset {
            self.record_reset(p, offset, true, cx);
        }
        cx.history.consumer_ops.push(ConsumerOp::Seek {
            consumer: self.id,
            partition: p,
            offset,
            at: cx.now,
        });
        cx.notes
            .push(Note::ConsumerOp(cx.history.consumer_ops.len() - 1));
    }

    // ----- answers -----

    pub fn on_response(&mut self, channel: Channel, node: u32, frame: &[u8], cx: &mut Cx<'_>) {
        let reqs = match channel {
            Channel::Data => &mut self.reqs,
            Channel::Group => &mut self.greqs,
        };
        let Some((req, response)) = reqs.on_response(node, frame) else {
            return;
        };
        let corr = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        match (req.kind, response) {
            (Req::Metadata, Response::Metadata(m)) => self.meta.on_done(corr, Some(&m), cx.now),
            (Req::FindCoordinator, Response::FindCoordinator(r)) => {
                self.lookup.on_done(corr, Some(&r), cx)
            }
            (Req::Fetch, Response::Fetch(f)) => {
                let asked = match self.fetching.get(&node) {
                    Some((c, parts, epoch)) if *c == corr => Some((parts.clone(), *epoch)),
                    _ => None,
                };
                self.fetching.remove(&node);
                if let Some((asked, epoch)) = asked {
                    if epoch == self.epoch && self.stage == Stage::Consuming {
                        self.on_fetch(node, &asked, f, cx);
                    }
                }
            }
            (Req::Join, Response::JoinGroup(r)) => self.on_join(node, r, cx),
            (Req::Sync { generation }, Response::SyncGroup(r)) => self.on_sync(generation, r, cx),
            (Req::Heartbeat { generation }, Response::Heartbeat(r)) => {
                self.on_heartbeat(generation, r.error_code, cx)
            }
            (Req::OffsetFetch { epoch, sent_at }, Response::OffsetFetch(r)) => {
                self.on_offset_fetch(epoch, sent_at, r, cx)
            }
            (Req::Commit, Response::OffsetCommit(r)) => self.on_commit(corr, r, cx),
            (Req::Leave, Response::LeaveGroup(_)) if self.stage == Stage::Leaving => {
                self.stop(StopReason::Left, cx)
            }
            _ => {}
        }
        self.step(cx);
    }

    fn trace_error(what: &'static str, code: i16, cx: &mut Cx<'_>) {
        cx.notes.push(Note::Trace(what, i64::from(code), 0));
    }

    /// The error of a group answer that is not specific to one request; returns true if it
    /// was handled (the caller does nothing more).
    fn group_error(&mut self, code: i16, cx: &mut Cx<'_>) -> bool {
        if is_coordinator_error(code) {
            self.lookup.forget(cx);
            self.backoff(cx);
            return true;
        }
        if code == codes::FENCED_INSTANCE_ID {
            self.stop(StopReason::Fenced, cx);
            return true;
        }
        if code == codes::COORDINATOR_LOAD_IN_PROGRESS {
            self.backoff(cx);
            return true;
        }
        false
    }

    fn on_join(&mut self, node: u32, r: JoinGroupResponse, cx: &mut Cx<'_>) {
        if self.stage != Stage::Joining {
            return;
        }
        match r.error_code {
            codes::NONE => {
                self.member_id = r.member_id.clone();
                self.generation = r.generation_id;
                let leader = r.leader == r.member_id;
                Self::push_op(
                    cx,
                    GroupOp::Joined {
                        member: self.id,
                        member_id: r.member_id.clone(),
                        instance: self.instance.clone(),
                        generation: r.generation_id,
                        leader: r.leader.clone(),
                        members: r
                            .members
                            .iter()
                            .map(|m| (m.member_id.clone(), m.group_instance_id.clone()))
                            .collect(),
                        at: cx.now,
                    },
                );
                cx.notes.push(Note::Trace(
                    "member joined generation (generation, leads)",
                    i64::from(r.generation_id),
                    i64::from(leader),
                ));
                let assignments = if leader && !r.skip_assignment {
                    range_assign(&r.members, self.partitions)
                } else {
                    Vec::new()
                };
                self.stage = Stage::Syncing;
                self.send_sync(node, assignments, cx);
            }
            codes::MEMBER_ID_REQUIRED => {
                self.member_id = r.member_id;
                self.retry_at = cx.now;
            }
            codes::UNKNOWN_MEMBER_ID => {
                Self::trace_error("join refused (code)", r.error_code, cx);
                self.rejoin(false, cx);
                self.backoff(cx);
            }
            code => {
                Self::trace_error("join refused (code)", code, cx);
                if !self.group_error(code, cx) {
                    self.backoff(cx);
                }
            }
        }
    }

    fn on_sync(&mut self, generation: i32, r: SyncGroupResponse, cx: &mut Cx<'_>) {
        if self.stage != Stage::Syncing || generation != self.generation {
            return;
        }
        match r.error_code {
            codes::NONE => {
                let Some(partitions) = decode_assignment(&r.assignment) else {
                    cx.notes
                        .push(Note::Trace("undecodable assignment, rejoin", 0, 0));
                    self.rejoin(true, cx);
                    return;
                };
                Self::push_op(
                    cx,
                    GroupOp::Assigned {
                        member: self.id,
                        member_id: self.member_id.clone(),
                        instance: self.instance.clone(),
                        generation,
                        partitions: partitions.clone(),
                        at: cx.now,
                    },
                );
                self.assigned = true;
                self.epoch += 1;
                self.owned = partitions
                    .into_iter()
                    .map(|p| {
                        (
                            p,
                            Owned {
                                position: None,
                                out_of_range: 0,
                                retry_at: 0,
                                caught_up: false,
                            },
                        )
                    })
                    .collect();
                self.stage = if self.owned.is_empty() {
                    Stage::Consuming
                } else {
                    Stage::Fetching
                };
                self.retry_at = cx.now;
                self.next_heartbeat_at = cx.now + self.heartbeat_ns;
                self.next_commit_at = cx.now + self.commit_interval_ns;
            }
            codes::UNKNOWN_MEMBER_ID => {
                Self::trace_error("sync refused (code)", r.error_code, cx);
                self.rejoin(false, cx);
            }
            code => {
                Self::trace_error("sync refused (code)", code, cx);
                if code == codes::FENCED_INSTANCE_ID {
                    self.stop(StopReason::Fenced, cx);
                    return;
                }
                if is_coordinator_error(code) {
                    self.lookup.forget(cx);
                }
                self.rejoin(true, cx);
                if code != codes::REBALANCE_IN_PROGRESS {
                    self.backoff(cx);
                }
            }
        }
    }

    fn on_heartbeat(&mut self, generation: i32, code: i16, cx: &mut Cx<'_>) {
        let current = generation == self.generation
            && self.assigned
            && matches!(self.stage, Stage::Fetching | Stage::Consuming);
        if !current || code == codes::NONE {
            return;
        }
        Self::trace_error("heartbeat refused (code)", code, cx);
        match code {
            codes::REBALANCE_IN_PROGRESS => self.revoke_then_rejoin(cx),
            codes::ILLEGAL_GENERATION => self.rejoin(true, cx),
            codes::UNKNOWN_MEMBER_ID => self.rejoin(false, cx),
            code => {
                self.group_error(code, cx);
            }
        }
    }

    fn on_offset_fetch(
        &mut self,
        epoch: u64,
        invoked_at: u64,
        r: OffsetFetchResponse,
        cx: &mut Cx<'_>,
    ) {
        if self.stage != Stage::Fetching || epoch != self.epoch {
            return;
        }
        if r.error_code != codes::NONE {
            Self::trace_error("offset fetch refused (code)", r.error_code, cx);
            if !self.group_error(r.error_code, cx) {
                self.backoff(cx);
            }
            return;
        }
        let rows: Vec<(u32, i64, i16)> = r
            .topics
            .iter()
            .filter(|t| t.name == TOPIC)
            .flat_map(|t| t.partitions.iter())
            .map(|p| (p.partition_index as u32, p.committed_offset, p.error_code))
            .collect();
        let complete = self.owned.keys().all(|p| {
            rows.iter()
                .any(|(q, _, code)| q == p && *code == codes::NONE)
        });
        if !complete {
            let code = rows
                .iter()
                .map(|r| r.2)
                .find(|&c| c != codes::NONE)
                .unwrap_or(-1);
            Self::trace_error("offset fetch incomplete (code)", code, cx);
            self.backoff(cx);
            return;
        }
        self.epoch += 1;
        for (p, committed, _) in rows {
            if !self.owned.contains_key(&p) {
                continue;
            }
            Self::push_op(
                cx,
                GroupOp::Fetched {
                    member: self.id,
                    partition: p,
                    offset: committed,
                    invoked_at,
                    at: cx.now,
                },
            );
            // Nothing committed: auto.offset.reset=earliest (no retention: the log starts at 0).
            self.seek(p, committed.max(0), false, cx);
        }
        self.stage = Stage::Consuming;
    }

    fn on_commit(&mut self, corr: i32, r: OffsetCommitResponse, cx: &mut Cx<'_>) {
        let Some(c) = self.commit.take_if(|c| c.corr == corr) else {
            return;
        };
        let mut first_error = codes::NONE;
        for t in r.topics.iter().filter(|t| t.name == TOPIC) {
            for p in &t.partitions {
                let partition = p.partition_index as u32;
                let Some(&(_, offset, reset)) = c.offsets.iter().find(|o| o.0 == partition) else {
                    continue;
                };
                if p.error_code != codes::NONE {
                    if first_error == codes::NONE {
                        first_error = p.error_code;
                    }
                    continue;
                }
                if reset {
                    self.reset_pending.remove(&partition);
                }
                Self::push_op(
                    cx,
                    GroupOp::Committed {
                        member: self.id,
                        member_id: c.member_id.clone(),
                        generation: c.generation,
                        partition,
                        offset,
                        reset,
                        invoked_at: c.invoked_at,
                        at: cx.now,
                    },
                );
            }
        }
        if c.flush && first_error == codes::NONE && self.flush == Flush::Wanted {
            self.flush = Flush::Done;
        }
        let current = c.generation == self.generation && c.member_id == self.member_id;
        if first_error != codes::NONE && current {
            Self::trace_error("commit refused (code)", first_error, cx);
            let rebalancing = matches!(self.stage, Stage::Consuming | Stage::Revoking);
            match first_error {
                codes::REBALANCE_IN_PROGRESS | codes::ILLEGAL_GENERATION if rebalancing => {
                    self.rejoin(true, cx)
                }
                codes::UNKNOWN_MEMBER_ID if rebalancing => self.rejoin(false, cx),
                code => {
                    if self.group_error(code, cx) && !self.is_running() {
                        return;
                    }
                }
            }
        }
        self.commit_over(c.after, cx);
    }

    /// The commit in flight is over (answered, refused or lost): do what was waiting on it.
    fn commit_over(&mut self, after: After, cx: &mut Cx<'_>) {
        match after {
            After::Nothing => {}
            After::Rejoin => {
                if self.stage == Stage::Revoking {
                    self.rejoin(true, cx);
                }
            }
            After::Leave => {
                if self.stage == Stage::Leaving {
                    // Without a coordinator, step() finds it first.
                    if let Some(node) = self.lookup.node {
                        self.send_leave(node, cx);
                    }
                }
            }
        }
    }

    fn on_fetch(&mut self, node: u32, asked: &[Asked], f: FetchResponse, cx: &mut Cx<'_>) {
        let backoff = cx.workload.retry_backoff_ms * MS;
        let mut resets = Vec::new();
        for t in f.responses.iter().filter(|t| t.topic == TOPIC) {
            for pd in &t.partitions {
                let p = pd.partition_index as u32;
                let Some(&(_, from, epoch)) = asked.iter().find(|(q, _, _)| *q == p) else {
                    continue;
                };
                let Some(o) = self.owned.get_mut(&p) else {
                    continue;
                };
                if o.position != Some(from) {
                    continue;
                }
                match pd.error_code {
                    codes::NONE => {
                        o.out_of_range = 0;
                        let records = fetched_records(pd, from);
                        if let Some(&(last, _)) = records.last() {
                            o.position = Some(last + 1);
                        }
                        o.caught_up = o.position.is_some_and(|x| x >= pd.high_watermark);
                        if !records.is_empty() {
                            Self::push_op(
                                cx,
                                GroupOp::Delivered {
                                    member: self.id,
                                    member_id: self.member_id.clone(),
                                    generation: self.generation,
                                    partition: p,
                                    offsets: records.iter().map(|r| r.0).collect(),
                                    at: cx.now,
                                },
                            );
                        }
                        cx.history.consumer_ops.push(ConsumerOp::Poll(Poll {
                            consumer: self.id,
                            partition: p,
                            node,
                            epoch,
                            at: cx.now,
                            from,
                            high_watermark: pd.high_watermark,
                            records,
                        }));
                        cx.notes
                            .push(Note::ConsumerOp(cx.history.consumer_ops.len() - 1));
                    }
                    codes::OFFSET_OUT_OF_RANGE => {
                        o.out_of_range += 1;
                        o.retry_at = cx.now + backoff;
                        self.meta.invalidate(Some(p));
                        if o.out_of_range >= OUT_OF_RANGE_RESET {
                            resets.push((p, pd.log_start_offset.max(0), from));
                        }
                    }
                    code => {
                        cx.notes.push(Note::Trace(
                            "member fetch error (code, partition)",
                            i64::from(code),
                            i64::from(p),
                        ));
                        o.retry_at = cx.now + backoff;
                        self.meta.invalidate(Some(p));
                    }
                }
            }
        }
        for (p, start, from) in resets {
            cx.notes.push(Note::Trace(
                "member: out of range, reset to the log start (partition, from)",
                i64::from(p),
                from,
            ));
            self.auto_reset(p, start, cx);
        }
    }

    /// auto.offset.reset=earliest after OFFSET_OUT_OF_RANGE: recorded as a reset, since the
    /// next commit may go below what is committed.
    fn auto_reset(&mut self, p: u32, to: i64, cx: &mut Cx<'_>) {
        self.record_reset(p, to, false, cx);
        self.seek(p, to, false, cx);
    }

    /// A position moved back on purpose: the next commit may go below what is committed.
    fn record_reset(&mut self, p: u32, offset: i64, explicit: bool, cx: &mut Cx<'_>) {
        self.reset_pending.insert(p);
        Self::push_op(
            cx,
            GroupOp::Reset {
                member: self.id,
                member_id: self.member_id.clone(),
                partition: p,
                offset,
                explicit,
                at: cx.now,
            },
        );
    }

    pub fn on_reset(&mut self, channel: Channel, node: u32, cx: &mut Cx<'_>) {
        self.drop_connection(channel, node, cx);
        self.step(cx);
    }

    pub fn on_refused(&mut self, channel: Channel, node: u32, corr: i32, cx: &mut Cx<'_>) {
        let reqs = match channel {
            Channel::Data => &mut self.reqs,
            Channel::Group => &mut self.greqs,
        };
        if let Some(r) = reqs.take(corr) {
            self.lost(node, corr, r.kind, cx);
        }
        self.step(cx);
    }

    fn drop_connection(&mut self, channel: Channel, node: u32, cx: &mut Cx<'_>) {
        let reqs = match channel {
            Channel::Data => &mut self.reqs,
            Channel::Group => &mut self.greqs,
        };
        for (corr, r) in reqs.drop_node(node) {
            self.lost(node, corr, r.kind, cx);
        }
    }

    /// A request got no answer (its connection dropped, timed out, or was refused).
    fn lost(&mut self, node: u32, corr: i32, kind: Req, cx: &mut Cx<'_>) {
        if !self.is_running() {
            return;
        }
        if kind.is_group() && self.lookup.node == Some(node) {
            self.lookup.forget(cx);
        }
        match kind {
            Req::Metadata => {
                self.meta.on_done(corr, None, cx.now);
                self.meta.wanted = true;
            }
            Req::FindCoordinator => self.lookup.on_done(corr, None, cx),
            Req::Fetch => {
                if let Some((_, parts, _)) = self.fetching.remove(&node) {
                    for (p, _, _) in parts {
                        self.meta.invalidate(Some(p));
                    }
                }
            }
            Req::Join | Req::OffsetFetch { .. } | Req::Heartbeat { .. } => self.backoff(cx),
            Req::Sync { generation } => {
                if self.stage == Stage::Syncing && generation == self.generation {
                    self.rejoin(true, cx);
                    self.backoff(cx);
                }
            }
            Req::Commit => {
                if let Some(c) = self.commit.take_if(|c| c.corr == corr) {
                    self.commit_over(c.after, cx);
                }
            }
            Req::Leave => {
                if self.stage == Stage::Leaving {
                    self.stop(StopReason::Left, cx);
                }
            }
        }
    }
}

/// Reads the group's committed offsets once, at the end of the run (an admin's
/// `kafka-consumer-groups --describe`): FindCoordinator, then OffsetFetch of every partition
/// until it is answered without error.
#[derive(Debug)]
pub struct OffsetObserver {
    pub id: u32,
    group: String,
    partitions: u32,
    reqs: Requests<Req>,
    lookup: Lookup,
    retry_at: u64,
    /// Committed offset per partition (-1: none), once read.
    pub result: Option<Vec<i64>>,
}

impl OffsetObserver {
    pub fn new(id: u32, group: &str, partitions: u32) -> OffsetObserver {
        OffsetObserver {
            id,
            group: group.to_string(),
            partitions,
            reqs: Requests::new(),
            lookup: Lookup::default(),
            retry_at: 0,
            result: None,
        }
    }

    pub fn on_wake(&mut self, cx: &mut Cx<'_>) {
        while let Some(node) = self.reqs.expired(cx.now) {
            cx.out.push(self.reqs.close(node));
            self.on_reset(node, cx);
        }
        self.step(cx);
    }

    pub fn next_wake(&self, now: u64) -> Option<u64> {
        if self.result.is_some() {
            return None;
        }
        let mut times = vec![self.retry_at];
        times.extend(self.reqs.next_deadline());
        times.extend(self.lookup.next_wake());
        times
            .into_iter()
            .filter(|&t| t > now && t != u64::MAX)
            .min()
    }

    fn step(&mut self, cx: &mut Cx<'_>) {
        if self.result.is_some() {
            return;
        }
        self.lookup.maybe_find(cx, &mut self.reqs, &self.group);
        let Some(node) = self.lookup.node else { return };
        if cx.now < self.retry_at || self.reqs.any(|k| matches!(k, Req::OffsetFetch { .. })) {
            return;
        }
        let request = Request::OffsetFetch(OffsetFetchRequest {
            group_id: self.group.clone(),
            topics: Some(vec![OffsetFetchRequestTopic {
                name: TOPIC.into(),
                partition_indexes: (0..self.partitions as i32).collect(),
            }]),
            require_stable: true,
            ..Default::default()
        });
        self.reqs.send(
            cx,
            node,
            OFFSET_FETCH_V,
            request,
            Req::OffsetFetch {
                epoch: 0,
                sent_at: cx.now,
            },
            true,
        );
    }

    pub fn on_response(&mut self, node: u32, frame: &[u8], cx: &mut Cx<'_>) {
        let Some((req, response)) = self.reqs.on_response(node, frame) else {
            return;
        };

        let corr = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        match (req.kind, response) {
            (Req::FindCoordinator, Response::FindCoordinator(r)) => {
                self.lookup.on_done(corr, Some(&r), cx)
            }
            (Req::OffsetFetch { sent_at, .. }, Response::OffsetFetch(r)) => {
                self.on_offsets(sent_at, r, cx)
            }
            _ => {}
        }
        self.step(cx);
    }

    fn on_offsets(&mut self, invoked_at: u64, r: OffsetFetchResponse, cx: &mut Cx<'_>) {
        let mut offsets = vec![None; self.partitions as usize];
        let mut code = r.error_code;
        for t in r.topics.iter().filter(|t| t.name == TOPIC) {
            for p in &t.partitions {
                if p.error_code != codes::NONE {
                    code = p.error_code;
                } else if let Some(slot) = offsets.get_mut(p.partition_index as usize) {
                    *slot = Some(p.committed_offset);
                }
            }
        }
        if code != codes::NONE || offsets.iter().any(Option::is_none) {
            cx.notes.push(Note::Trace(
                "observer offset fetch refused (code)",
                i64::from(code),
                0,
            ));
            if is_coordinator_error(code) {
                self.lookup.forget(cx);
            }
            self.retry_at = cx.now + cx.workload.retry_backoff_ms * MS;
            return;
        }
        let offsets: Vec<i64> = offsets.into_iter().map(|o| o.unwrap_or(-1)).collect();
        for (p, &offset) in offsets.iter().enumerate() {
            cx.history.group_ops.push(GroupOp::Fetched {
                member: self.id,
                partition: p as u32,
                offset,
                invoked_at,
                at: cx.now,
            });
            cx.notes.push(Note::GroupOp(cx.history.group_ops.len() - 1));
        }
        cx.notes
            .push(Note::Trace("observer read the committed offsets", 0, 0));
        self.result = Some(offsets);
    }

    pub fn on_reset(&mut self, node: u32, cx: &mut Cx<'_>) {
        for (corr, r) in self.reqs.drop_node(node) {
            self.lost(corr, r.kind, cx);
        }
    }

    pub fn on_refused(&mut self, _node: u32, corr: i32, cx: &mut Cx<'_>) {
        if let Some(r) = self.reqs.take(corr) {
            self.lost(corr, r.kind, cx);
        }
        self.step(cx);
    }

    fn lost(&mut self, corr: i32, kind: Req, cx: &mut Cx<'_>) {
        match kind {
            Req::FindCoordinator => self.lookup.on_done(corr, None, cx),
            _ => {
                self.lookup.forget(cx);
                self.retry_at = cx.now + cx.workload.retry_backoff_ms * MS;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, instance: Option<&str>) -> JoinGroupResponseMember {
        JoinGroupResponseMember {
            member_id: id.into(),
            group_instance_id: instance.map(Into::into),
            metadata: encode_subscription(&[TOPIC]),
        }
    }

    fn assigned(a: &[SyncGroupRequestAssignment]) -> Vec<(String, Vec<u32>)> {
        a.iter()
            .map(|x| {
                (
                    x.member_id.clone(),
                    decode_assignment(&x.assignment).expect("decodes"),
                )
            })
            .collect()
    }

    #[test]
    fn the_range_assignor_splits_partitions_in_contiguous_ranges_first_ones_larger() {
        let members = [member("b", None), member("a", None), member("c", None)];
        let got = assigned(&range_assign(&members, 5));
        assert_eq!(
            got,
            vec![
                ("b".to_string(), vec![2, 3]),
                ("a".to_string(), vec![0, 1]),
                ("c".to_string(), vec![4]),
            ]
        );
        // More members than partitions: the last ones get nothing.
        let got = assigned(&range_assign(&members, 2));
        assert_eq!(got[2], ("c".to_string(), vec![]));
    }

    #[test]
    fn static_members_are_ordered_by_instance_id_so_a_restart_keeps_its_range() {
        let before = [
            member("z-1", Some("static-0")),
            member("a-1", Some("static-1")),
        ];
        let after = [
            member("a-2", Some("static-0")),
            member("a-1", Some("static-1")),
        ];
        assert_eq!(assigned(&range_assign(&before, 4))[0].1, vec![0, 1]);
        assert_eq!(assigned(&range_assign(&after, 4))[0].1, vec![0, 1]);
    }

    #[test]
    fn a_member_that_does_not_subscribe_to_the_topic_gets_nothing() {
        let mut other = member("a", None);
        other.metadata = encode_subscription(&["other"]);
        let got = assigned(&range_assign(&[other, member("b", None)], 3));
        assert_eq!(got[0].1, Vec::<u32>::new());
        assert_eq!(got[1].1, vec![0, 1, 2]);
    }

    #[test]
    fn subscriptions_and_assignments_round_trip_and_garbage_does_not_decode() {
        assert_eq!(
            decode_subscription(&encode_subscription(&[TOPIC, "x"])),
            Some(vec![TOPIC.to_string(), "x".to_string()])
        );
        assert_eq!(
            decode_assignment(&encode_assignment(&[3, 1])),
            Some(vec![1, 3])
        );
        assert_eq!(decode_assignment(&[]), Some(vec![]));
        assert_eq!(decode_assignment(&[0, 0, 0, 0, 0, 9]), None);
    }
}
