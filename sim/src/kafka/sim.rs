//! The Kafka-level simulator: a cluster of full `Broker` state machines (each over its own
//! `SimFs` and `BrokerStorage`, behind a device queue with latency), simulated Kafka clients
//! speaking the real wire protocol over simulated connections, a fault plan, checkers after
//! every event, and two phases.
//!
//! Safety phase: the fault plan runs; history checkers run as each send completes and each
//! poll is recorded, and `leader-per-epoch` after every broker event. Liveness phase: the
//! network heals, faults stop, every broker restarts and every paused one resumes; each
//! producer must get `liveness_acks` more acknowledgements, then stops and must finish what
//! it has pending; then a final reader reads every partition to its high watermark; the cluster
//! must converge (every partition with one serving leader, every replica caught up and in
//! agreement through the high watermark) within `liveness_ms`. The final state (the serving
//! leaders' logs, read from their storage) feeds the checkers' last pass.
//!
//! A run with a consumer group (`cfg.group`) also schedules its member actions and
//! rebalance-triggered faults in the safety phase (paused members resume when it ends), and
//! its liveness phase goes on until the group settles (Stable on its coordinator, whose
//! members are exactly the live members, every partition assigned): the members then read to
//! the end and commit, an observer reads the committed offsets, and the cluster must be
//! converged again. A group that has not settled by `liveness_ms` is left to the
//! `group-stable-after-liveness` checker. Rebalance time is measured from each member's death
//! to the group settled again (`rebalance.rs`).
//!
//! Connections behave like TCP: ordered, never duplicated; a drop (client_drop_ppm), a broker
//! crash or a client timeout resets one, and everything in flight on it becomes "unknown". A
//! client that connects to a broker that is down is refused (definitely not delivered).
//! Partitions cut only broker-to-broker links; clients reach every running broker. A group
//! member talks to its coordinator on connections of its own (a second client id,
//! `Kind::GroupChannel`), as Kafka's consumer does.
//!
//! A run is a pure function of its config and seed (no wall clock, no OS randomness, no hash
//! iteration). The simulator makes no Kafka decisions: it moves frames and bytes, performs
//! storage jobs through `BrokerStorage`, and reads state to check it.

use super::checkers::{new_checker, HistoryChecker, LeaderPerEpoch, METADATA_GROUP};
use super::client::{records_of, Admin, Channel, ClientOut, Cx, Note, TOPIC};
use super::config::{KafkaBug, KafkaConfig, MemberAction, RebalanceStep};
use super::consumer::Consumer;
use super::failover::Failover;
use super::group_member::{GroupMember, OffsetObserver};
use super::history::{
    CoordinatorView, FinalPartition, FinalState, GroupOp, GroupView, History, LiveMember,
    SendOutcome,
};
use super::producer::Producer;
use super::rebalance::Rebalance;
use crate::checkers::{CheckerKind, Violation};
use crate::clock::NodeClock;
use crate::disk::{faults, GroupCommit};
use crate::faults::{FaultAction, Target};
use crate::fs::{FsFaults, SimFs, SimFsHandle};
use crate::network::Network;
use crate::queue::EventQueue;
use crate::seeds::{stream, Stream};
use crate::sim::Verdict;
use crate::trace::{Record, Trace};
use bytes::Bytes;
use sluice_core::broker::group::records::{partition_for, OFFSETS_TOPIC};
use sluice_core::broker::{
    Broker, BrokerConfig, BrokerStorage, ConnId, Event, Input, Output, PartitionId, StorageDone,
    StorageJob, StorageTarget,
};
use sluice_core::raft::{Role, StorageRequest};
use sluice_core::rng::DetRng;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

const MS: u64 = 1_000_000;
const CHECK_EVERY: u64 = 10 * MS;
const DATA_DIR: &str = "data";

#[derive(Debug)]
enum Ev {
    Peer {
        from: u32,
        to: u32,
        bytes: Bytes,
    },
    Request {
        node: u32,
        incarnation: u32,
        conn: ConnId,
        frame: Bytes,
    },
    Disconnect {
        node: u32,
        incarnation: u32,
        conn: ConnId,
    },
    Response {
        client: u32,
        conn: ConnId,
        frame: Vec<u8>,
    },
    Refused {
        client: u32,
        node: u32,
        corr: i32,
    },
    ClientWake {
        client: u32,
    },
    Timer {
        node: u32,
    },
    Storage {
        node: u32,
        incarnation: u32,
        target: StorageTarget,
        job: StorageJob,
    },
    Fault {
        index: usize,
    },
    AutoRestart {
        node: u32,
        incarnation: u32,
    },
    /// The node's device finished a drain.
    DeviceIdle {
        node: u32,
        incarnation: u32,
    },
    Liveness,
    Check,
    /// `cfg.group.actions[index]` is due.
    MemberAction {
        index: usize,
    },
    /// A member restarting after a crash starts again.
    MemberStart {
        client: u32,
    },
    /// A paused member resumes.
    MemberResume {
        client: u32,
    },
    /// A connection of a paused client was reset; it learns when it resumes.
    ClientReset {
        client: u32,
        node: u32,
    },
    /// `cfg.group.triggers[index]` fires.
    GroupTrigger {
        index: usize,
    },
    /// The follow-up of `cfg.group.triggers[index]` (a restart, a heal).
    GroupTriggerThen {
        index: usize,
    },
}

#[derive(Debug)]
struct Node {
    broker: Option<Broker>,
    storage: Option<BrokerStorage>,
    fs: SimFs,
    paused: bool,
    incarnation: u32,
    clock: NodeClock,
    timer_at: Option<u64>,
    deferred: Vec<Ev>,
    device: GroupCommit<(StorageTarget, StorageJob)>,
    /// This incarnation's storage ids of the topic's partitions, by partition index.
    partition_ids: BTreeMap<u32, PartitionId>,
}

#[derive(Debug)]
enum Kind {
    Admin(Admin),
    Producer(Producer),
    Consumer(Consumer),
    Member(Box<GroupMember>),
    Observer(OffsetObserver),
    /// The coordinator connections of member client `owner`: events for this client go to
    /// the owner, on its group channel.
    GroupChannel {
        owner: u32,
    },
}

impl Kind {
    fn on_wake(&mut self, cx: &mut Cx<'_>) {
        match self {
            Kind::Admin(a) => a.on_wake(cx),
            Kind::Producer(p) => p.on_wake(cx),
            Kind::Consumer(x) => x.on_wake(cx),
            Kind::Member(m) => m.on_wake(cx),
            Kind::Observer(o) => o.on_wake(cx),
            Kind::GroupChannel { .. } => {}
        }
    }

    fn on_response(&mut self, channel: Channel, node: u32, frame: &[u8], cx: &mut Cx<'_>) {
        match self {
            Kind::Admin(a) => a.on_response(node, frame, cx),
            Kind::Producer(p) => p.on_response(node, frame, cx),
            Kind::Consumer(c) => c.on_response(node, frame, cx),
            Kind::Member(m) => m.on_response(channel, node, frame, cx),
            Kind::Observer(o) => o.on_response(node, frame, cx),
            Kind::GroupChannel { .. } => {}
        }
    }

    fn on_reset(&mut self, channel: Channel, node: u32, cx: &mut Cx<'_>) {
        match self {
            Kind::Admin(a) => a.on_reset(node, cx),
            Kind::Producer(p) => p.on_reset(node, cx),
            Kind::Consumer(x) => x.on_reset(node, cx),
            Kind::Member(m) => m.on_reset(channel, node, cx),
            Kind::Observer(o) => o.on_reset(node, cx),
            Kind::GroupChannel { .. } => {}
        }
    }

    fn on_refused(&mut self, channel: Channel, node: u32, corr: i32, cx: &mut Cx<'_>) {
        match self {
            Kind::Admin(a) => a.on_refused(node, corr, cx),
            Kind::Producer(p) => p.on_refused(node, corr, cx),
            Kind::Consumer(c) => c.on_refused(node, corr, cx),
            Kind::Member(m) => m.on_refused(channel, node, corr, cx),
            Kind::Observer(o) => o.on_refused(node, corr, cx),
            Kind::GroupChannel { .. } => {}
        }
    }

    fn next_wake(&self, now: u64) -> Option<u64> {
        match self {
            Kind::Admin(a) => a.next_wake(now),
            Kind::Producer(p) => p.next_wake(now),
            Kind::Consumer(x) => x.next_wake(now),
            Kind::Member(m) => m.next_wake(now),
            Kind::Observer(o) => o.next_wake(now),
            Kind::GroupChannel { .. } => None,
        }
    }
}

#[derive(Debug)]
struct Client {
    kind: Kind,
    wake_at: Option<u64>,
    /// A paused client (a group member in a long GC pause) handles nothing until it resumes:
    /// what arrives for it waits in `deferred`.
    paused: bool,
    deferred: Vec<Ev>,
}

/// A client's connection to one broker.
#[derive(Clone, Copy, Debug)]
struct Conn {
    id: ConnId,
    incarnation: u32,
    /// Latest arrival scheduled in each direction (TCP keeps order).
    to_broker_at: u64,
    to_client_at: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Safety,
    /// Producers run until each has `liveness_acks` more acknowledgements.
    Producing {
        started: u64,
    },
    /// Producers finish what they have pending.
    Draining {
        started: u64,
    },
    /// The final reader reads everything; the cluster converges (and the group settles).
    Reading {
        started: u64,
    },
    /// The group settled: its members commit their positions, then an observer reads the
    /// committed offsets.
    Settling {
        started: u64,
    },
    Done,
}

impl Phase {
    fn started(self) -> Option<u64> {
        match self {
            Phase::Producing { started }
            | Phase::Draining { started }
            | Phase::Reading { started }
            | Phase::Settling { started } => Some(started),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KafkaStats {
    /// Inputs delivered to brokers: requests, peer messages, timers, storage completions.
    pub events: u64,
    /// Client-side and fault events.
    pub other_events: u64,
    pub sim_ns: u64,
    pub sends: u64,
    /// Sends acknowledged with acks=all (idempotent ones included).
    pub acked_all: u64,
    pub acked_one: u64,
    pub failed: u64,
    pub unknown: u64,
    pub polls: u64,
    pub records_polled: u64,
    pub leaders_elected: u64,
    pub crashes: u64,
    pub storage_errors: u64,
    pub torn_tails_cut: u64,
    pub truncations: u64,
    pub peer_dropped: u64,
    pub connection_resets: u64,
    pub session_resets: u64,
    /// Records in the final logs.
    pub final_records: u64,
    /// Failover samples (ns), see `failover.rs`.
    pub failovers: Vec<u64>,
    pub failovers_unresolved: u64,
    /// Group members' JoinGroup answers, acknowledged commits (per partition) and records
    /// delivered.
    pub group_joins: u64,
    pub group_commits: u64,
    pub group_delivered: u64,
    /// The highest generation a member joined.
    pub group_generation: i64,
    /// Rebalance samples (ns), see `rebalance.rs`.
    pub rebalances: Vec<u64>,
    pub rebalances_unresolved: u64,
    /// Static members restarted while the group was settled that joined again, and how many
    /// of them took their place back in the generation they left (no rebalance).
    pub static_rejoins: u64,
    pub static_rejoins_same_generation: u64,
}

impl KafkaStats {
    /// (p50, max) failover in milliseconds.
    pub fn failover_ms(&self) -> Option<(f64, f64)> {
        super::failover::summarize(&self.failovers)
    }

    /// (p50, max) rebalance time in milliseconds.
    pub fn rebalance_ms(&self) -> Option<(f64, f64)> {
        super::failover::summarize(&self.rebalances)
    }
}

#[derive(Clone, Debug)]
pub struct KafkaReport {
    pub verdict: Verdict,
    pub stats: KafkaStats,
    pub trace_hash: u64,
    pub trace_tail: Vec<String>,
}

#[derive(Debug)]
pub struct KafkaSim {
    cfg: KafkaConfig,
    now: u64,
    queue: EventQueue<Ev>,
    nodes: Vec<Node>,
    net: Network,
    disk_rng: DetRng,
    workload_rng: DetRng,
    group_rng: DetRng,
    fault_rng: DetRng,
    start_rng: DetRng,
    clients: Vec<Client>,
    conns: BTreeMap<(u32, u32), Conn>,
    /// Every connection ever opened -> (client, node index).
    conn_route: BTreeMap<ConnId, (u32, u32)>,
    next_conn: u64,
    history: History,
    checkers: Vec<Box<dyn HistoryChecker>>,
    leaders: LeaderPerEpoch,
    failover: Failover,
    trace: Trace,
    stats: KafkaStats,
    phase: Phase,
    verdict: Option<Verdict>,
    final_reader: Option<u32>,
    liveness_marks: Vec<u64>,
    notes: Vec<Note>,
    outs: Vec<ClientOut>,
    arrivals: Vec<u64>,
    /// Client ids of the group's member slots.
    members: Vec<u32>,
    /// Member client -> the client that holds its coordinator connections.
    group_channels: BTreeMap<u32, u32>,
    observer: Option<u32>,
    rebalance: Rebalance,
    /// Per node, the group's (state, generation) it last reported (for the triggers).
    group_seen: Vec<Option<(&'static str, i32)>>,
    /// Static members restarted while the group was settled, with the generation they left,
    /// until they join again.
    static_restarts: BTreeMap<u32, i32>,
    triggers_fired: Vec<bool>,
}

impl KafkaSim {
    pub fn new(cfg: KafkaConfig) -> Result<KafkaSim, String> {
        cfg.validate()?;
        let n = cfg.brokers as usize;
        let mut clock_rng = stream(cfg.seed, Stream::Clock);
        let lying = (cfg.bug == Some(KafkaBug::DiskForgetsHardState)).then_some("/hard_state");
        let nodes = (0..n)
            .map(|_| {
                let drift = cfg.clock.drift_ppm_max;
                let skew = cfg.clock.wall_skew_ms_max;
                let rate = clock_rng.range_inclusive(0, 2 * drift as u64) as i64 - drift;
                let wall = clock_rng.range_inclusive(0, 2 * skew as u64) as i64 - skew;
                let origin = clock_rng.range(0, 1 << 40);
                let mut fs = SimFs::new();
                fs.lying_suffix = lying;
                Node {
                    broker: None,
                    storage: None,
                    fs,
                    paused: false,
                    incarnation: 0,
                    clock: NodeClock::new(origin, rate, wall),
                    timer_at: None,
                    deferred: Vec::new(),
                    device: GroupCommit::default(),
                    partition_ids: BTreeMap::new(),
                }
            })
            .collect();
        let checkers = cfg
            .checkers
            .0
            .iter()
            .filter_map(|&k| new_checker(k))
            .collect();
        Ok(KafkaSim {
            now: 0,
            queue: EventQueue::default(),
            nodes,
            net: Network::new(n, cfg.network.clone(), stream(cfg.seed, Stream::Network)),
            disk_rng: stream(cfg.seed, Stream::Disk),
            workload_rng: stream(cfg.seed, Stream::Workload),
            group_rng: stream(cfg.seed, Stream::Group),
            fault_rng: stream(cfg.seed, Stream::Faults),
            start_rng: stream(cfg.seed, Stream::Raft),
            clients: Vec::new(),
            conns: BTreeMap::new(),
            conn_route: BTreeMap::new(),
            next_conn: 1,
            history: History::default(),
            checkers,
            leaders: LeaderPerEpoch::default(),
            failover: Failover::default(),
            trace: Trace::default(),
            stats: KafkaStats::default(),
            phase: Phase::Safety,
            verdict: None,
            final_reader: None,
            liveness_marks: Vec::new(),
            notes: Vec::new(),
            outs: Vec::new(),
            arrivals: Vec::new(),
            members: Vec::new(),
            group_channels: BTreeMap::new(),
            observer: None,
            rebalance: Rebalance::default(),
            group_seen: vec![None; n],
            static_restarts: BTreeMap::new(),
            triggers_fired: vec![false; cfg.group.as_ref().map_or(0, |g| g.triggers.len())],
            cfg,
        })
    }

    pub fn config(&self) -> &KafkaConfig {
        &self.cfg
    }

    /// Runs to the end and reports. Never panics: a state machine assertion becomes a verdict.
    pub fn run(mut self) -> KafkaReport {
        let result = catch_unwind(AssertUnwindSafe(|| self.run_inner()));
        if let Err(panic) = result {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "non-string panic".into());
            self.verdict = Some(Verdict::Panic(msg));
        }
        self.report()
    }

    /// Runs to the end and returns the report with the history (for tests).
    pub fn run_with_history(mut self) -> (KafkaReport, History) {
        let result = catch_unwind(AssertUnwindSafe(|| self.run_inner()));
        if let Err(panic) = result {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "non-string panic".into());
            self.verdict = Some(Verdict::Panic(msg));
        }
        let report = self.report();
        (report, std::mem::take(&mut self.history))
    }

    fn report(&mut self) -> KafkaReport {
        let st = &mut self.stats;
        st.sim_ns = self.now;
        st.leaders_elected = self.leaders.elected;
        st.sends = self.history.sends.len() as u64;
        st.acked_all = self.history.acked_all() as u64;
        st.acked_one = self
            .history
            .sends
            .iter()
            .filter(|s| s.acks == 1 && matches!(s.outcome, SendOutcome::Ok { .. }))
            .count() as u64;
        st.failed = self
            .history
            .sends
            .iter()
            .filter(|s| matches!(s.outcome, SendOutcome::Failed { .. }))
            .count() as u64;
        st.unknown = self
            .history
            .sends
            .iter()
            .filter(|s| matches!(s.outcome, SendOutcome::Unknown | SendOutcome::Pending))
            .count() as u64;
        st.polls = self.history.polls().count() as u64;
        st.records_polled = self.history.records_polled() as u64;
        st.session_resets = self
            .clients
            .iter()
            .map(|c| match &c.kind {
                Kind::Producer(p) => p.session_resets,
                _ => 0,
            })
            .sum();
        st.failovers = self.failover.samples.clone();
        st.failovers_unresolved = self.failover.unresolved() as u64;
        st.rebalances = self.rebalance.samples.clone();
        st.rebalances_unresolved = u64::from(self.rebalance.is_open());
        group_stats(st, &self.history);
        KafkaReport {
            verdict: self.verdict.clone().unwrap_or(Verdict::Pass),
            stats: self.stats.clone(),
            trace_hash: self.trace.hash(),
            trace_tail: self.trace.tail(200),
        }
    }

    fn run_inner(&mut self) {
        for i in 0..self.nodes.len() {
            self.start_node(i);
        }
        self.spawn_clients();
        for (index, f) in self.cfg.faults.iter().enumerate() {
            self.queue.push(f.at_ms * MS, Ev::Fault { index });
        }
        self.queue.push(self.cfg.safety_ms * MS, Ev::Liveness);
        let deadline = (self.cfg.safety_ms + self.cfg.liveness_ms) * MS + MS;
        while self.verdict.is_none() {
            let Some((at, ev)) = self.queue.pop() else {
                self.verdict = Some(Verdict::Liveness("event queue ran dry".into()));
                break;
            };
            if at > deadline {
                let state = self.describe_state();
                self.verdict = Some(Verdict::Liveness(format!(
                    "did not converge by the deadline: {state}"
                )));
                break;
            }
            self.now = at;
            self.handle(ev);
            if self.stats.events + self.stats.other_events > self.cfg.max_events {
                let state = self.describe_state();
                self.verdict = Some(Verdict::Liveness(format!(
                    "event budget of {} exhausted at {:.3}ms (livelock?): {state}",
                    self.cfg.max_events,
                    self.now as f64 / 1e6
                )));
            }
        }
    }

    fn spawn_clients(&mut self) {
        let w = self.cfg.workload.clone();
        let at = self.workload_rng.range(0, 10 * MS);
        self.add_client(Kind::Admin(Admin::new()), at);
        for kind in &w.producers {
            let id = self.clients.len() as u32;
            let start = self.workload_rng.range(0, 50 * MS);
            self.add_client(
                Kind::Producer(Producer::new(id, *kind, w.partitions, start)),
                start,
            );
        }
        let consumers = w.consumers;
        for c in 0..consumers {
            let id = self.clients.len() as u32;
            let mut assigned: Vec<u32> = (0..w.partitions).filter(|p| p % consumers == c).collect();
            // One extra partition each, so that several consumers read some partitions and
            // their reads can be compared.
            let extra = self.workload_rng.range(0, u64::from(w.partitions)) as u32;
            if !assigned.contains(&extra) {
                assigned.push(extra);
            }
            assigned.sort_unstable();
            let start = self.workload_rng.range(0, 50 * MS);
            self.add_client(
                Kind::Consumer(Consumer::new(id, w.partitions, assigned, start, false)),
                start,
            );
        }
        if let Some(g) = self.cfg.group.clone() {
            for slot in 0..g.members {
                let id = self.clients.len() as u32;
                self.members.push(id);
                let member = GroupMember::new(id, slot, &g, w.partitions);
                self.add_client(Kind::Member(Box::new(member)), 0);
                let channel = self.clients.len() as u32;
                self.clients.push(Client {
                    kind: Kind::GroupChannel { owner: id },
                    wake_at: None,
                    paused: false,
                    deferred: Vec::new(),
                });
                self.group_channels.insert(id, channel);
            }
            for (index, a) in g.actions.iter().enumerate() {
                self.queue.push(a.at_ms * MS, Ev::MemberAction { index });
            }
        }
    }

    fn add_client(&mut self, kind: Kind, at: u64) {
        let id = self.clients.len() as u32;
        self.clients.push(Client {
            kind,
            wake_at: Some(at),
            paused: false,
            deferred: Vec::new(),
        });
        self.queue.push(at, Ev::ClientWake { client: id });
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Peer { from, to, bytes } => self.on_peer(from, to, bytes),
            Ev::Request {
                node,
                incarnation,
                conn,
                frame,
            } => self.on_request(node, incarnation, conn, frame),
            Ev::Disconnect {
                node,
                incarnation,
                conn,
            } => self.on_disconnect(node, incarnation, conn),
            Ev::Response {
                client,
                conn,
                frame,
            } => self.on_response(client, conn, frame),
            Ev::Refused { client, node, corr } => {
                self.stats.other_events += 1;
                let (owner, channel) = self.owner_of(client);
                let ev = Ev::Refused { client, node, corr };
                if self.defer_if_paused(owner, ev).is_some() {
                    self.client_input(owner, |k, cx| k.on_refused(channel, node, corr, cx));
                }
            }
            Ev::ClientWake { client } => self.on_client_wake(client),
            Ev::Timer { node } => self.on_timer(node),
            Ev::Storage {
                node,
                incarnation,
                target,
                job,
            } => self.on_storage(node, incarnation, target, job),
            Ev::Fault { index } => self.on_fault(index),
            Ev::AutoRestart { node, incarnation } => {
                if self.nodes[node as usize].incarnation == incarnation {
                    self.restart(node as usize);
                }
            }
            Ev::DeviceIdle { node, incarnation } => {
                let n = &mut self.nodes[node as usize];
                if n.incarnation == incarnation && n.device.on_idle() {
                    self.start_drain(node as usize);
                }
            }
            Ev::Liveness => self.on_liveness_start(),
            Ev::Check => self.on_check(),
            Ev::MemberAction { index } => self.on_member_action(index),
            Ev::MemberStart { client } => {
                self.stats.other_events += 1;
                self.client_input(client, |k, cx| {
                    if let Kind::Member(m) = k {
                        m.start(cx);
                    }
                });
            }
            Ev::MemberResume { client } => self.resume_client(client),
            Ev::ClientReset { client, node } => {
                self.stats.other_events += 1;
                let (owner, channel) = self.owner_of(client);
                let ev = Ev::ClientReset { client, node };
                if self.defer_if_paused(owner, ev).is_some() {
                    self.client_input(owner, |k, cx| k.on_reset(channel, node, cx));
                }
            }
            Ev::GroupTrigger { index } => {
                self.stats.other_events += 1;
                if self.phase == Phase::Safety {
                    let t = &self.cfg.group.as_ref().expect("a group").triggers[index];
                    let (action, then) = (t.action.clone(), t.then.clone());
                    if let Some((ms, _)) = then {
                        self.queue
                            .push(self.now + ms * MS, Ev::GroupTriggerThen { index });
                    }
                    self.apply_fault(action);
                }
            }
            Ev::GroupTriggerThen { index } => {
                self.stats.other_events += 1;
                if self.phase == Phase::Safety {
                    let t = &self.cfg.group.as_ref().expect("a group").triggers[index];
                    if let Some((_, action)) = t.then.clone() {
                        self.apply_fault(action);
                    }
                }
            }
        }
    }

    // ----- brokers -----

    fn broker_config(&self, i: usize) -> BrokerConfig {
        let id = i as i32 + 1;
        let k = &self.cfg.broker;
        let mut c = BrokerConfig::new(id, &format!("n{id}"), 9092);
        c.voters = (1..=self.cfg.voters as i32).collect();
        c.peer_addr = format!("n{id}:9093");
        c.default_replication_factor = self.cfg.workload.replication_factor;
        c.raft_election_timeout = Duration::from_millis(k.election_timeout_ms);
        c.raft_heartbeat_interval = Duration::from_millis(k.raft_heartbeat_ms);
        c.heartbeat_interval = Duration::from_millis(k.heartbeat_ms);
        c.session_timeout = Duration::from_millis(k.session_timeout_ms);
        c.leader_balance_interval = Duration::from_millis(k.leader_balance_ms);
        c.log.segment_bytes = k.segment_bytes;
        c.log.retention_ms = None;
        if let Some(KafkaBug::Broker(b)) = self.cfg.bug {
            c.bug = Some(b);
        }
        if let Some(g) = &self.cfg.group {
            c.offsets_topic_partitions = g.offsets_partitions;
            c.group_initial_rebalance_delay = Duration::from_millis(g.initial_rebalance_delay_ms);
        }
        c
    }

    fn start_node(&mut self, i: usize) {
        let cfg = self.broker_config(i);
        let seed = self.start_rng.next_u64();
        let node = &mut self.nodes[i];
        let now = node.clock.now(self.now);
        let storage = BrokerStorage::new(DATA_DIR);
        node.fs.faults = FsFaults {
            io_error_ppm: 0,
            ..faults(&self.cfg.disk)
        };
        let catalogue = storage
            .load_catalogue(&mut SimFsHandle {
                fs: &mut node.fs,
                rng: &mut self.disk_rng,
            })
            // No faults are injected into synced data, so an unreadable catalogue is a bug.
            .unwrap_or_else(|e| panic!("n{} cannot read its catalogue: {e}", i + 1));
        let broker = Broker::new(cfg, catalogue.as_deref(), DetRng::new(seed), now)
            .unwrap_or_else(|e| panic!("n{} does not start: {e}", i + 1));
        node.broker = Some(broker);
        node.storage = Some(storage);
        node.paused = false;
        node.timer_at = None;
        node.partition_ids.clear();
        self.drain(i);
        self.reschedule_timer(i);
    }

    fn crash(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if node.broker.is_none() {
            return;
        }
        node.broker = None;
        node.storage = None;
        node.paused = false;
        node.deferred.clear();
        node.incarnation += 1;
        node.timer_at = None;
        node.device.clear();
        node.fs.faults = faults(&self.cfg.disk);
        let lost = node.fs.crash(&mut self.disk_rng);
        self.stats.crashes += 1;
        self.trace.record(
            self.now,
            Record::Fault {
                text: "crash (unsynced bytes lost)",
                node: i as u32 + 1,
                arg: lost as i64,
            },
        );
        let dead: Vec<(u32, u32)> = self
            .conns
            .keys()
            .filter(|(_, n)| *n == i as u32)
            .copied()
            .collect();
        for (c, n) in dead {
            self.reset_conn(c, n);
        }
    }

    fn restart(&mut self, i: usize) {
        if self.nodes[i].broker.is_some() {
            return;
        }
        self.trace.record(
            self.now,
            Record::Fault {
                text: "restart",
                node: i as u32 + 1,
                arg: 0,
            },
        );
        self.start_node(i);
    }

    fn pause(&mut self, i: usize) {
        if self.nodes[i].broker.is_some() && !self.nodes[i].paused {
            self.nodes[i].paused = true;
            self.trace.record(
                self.now,
                Record::Fault {
                    text: "pause",
                    node: i as u32 + 1,
                    arg: 0,
                },
            );
        }
    }

    fn resume(&mut self, i: usize) {
        if !self.nodes[i].paused {
            return;
        }
        self.nodes[i].paused = false;
        self.trace.record(
            self.now,
            Record::Fault {
                text: "resume",
                node: i as u32 + 1,
                arg: 0,
            },
        );
        for ev in std::mem::take(&mut self.nodes[i].deferred) {
            let ev = match ev {
                Ev::Timer { node } => {
                    self.nodes[i].timer_at = Some(self.now);
                    Ev::Timer { node }
                }
                other => other,
            };
            self.queue.push(self.now, ev);
        }
        self.reschedule_timer(i);
    }

    /// Whether node `i` can take an input now; defers `ev` if it is paused.
    fn accepts(&mut self, i: usize, incarnation: Option<u32>, ev: Ev) -> Option<Ev> {
        let node = &mut self.nodes[i];
        if node.broker.is_none() || incarnation.is_some_and(|inc| inc != node.incarnation) {
            return None;
        }
        if node.paused {
            node.deferred.push(ev);
            return None;
        }
        Some(ev)
    }

    /// The device takes every queued job: each completes (as a storage event) at the time the
    /// group-commit model gives it.
    fn start_drain(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let jobs = node
            .device
            .drain(self.now, &self.cfg.disk, &mut self.disk_rng, |(_, j)| {
                job_is_sync(j)
            });
        let incarnation = node.incarnation;
        let idle_at = node.device.busy_until();
        let any = !jobs.is_empty();
        for (at, (target, job)) in jobs {
            self.queue.push(
                at,
                Ev::Storage {
                    node: i as u32,
                    incarnation,
                    target,
                    job,
                },
            );
        }
        if any {
            self.queue.push(
                idle_at,
                Ev::DeviceIdle {
                    node: i as u32,
                    incarnation,
                },
            );
        }
    }

    fn on_peer(&mut self, from: u32, to: u32, bytes: Bytes) {
        let down = self.nodes[to as usize].broker.is_none();
        if down || self.net.is_blocked(from as usize, to as usize) {
            self.stats.peer_dropped += 1;
            self.trace.record(
                self.now,
                Record::Drop {
                    from: from + 1,
                    to: to + 1,
                    kind: "peer",
                    why: if down { "down" } else { "partition" },
                },
            );
            return;
        }
        let Some(Ev::Peer { bytes, .. }) =
            self.accepts(to as usize, None, Ev::Peer { from, to, bytes })
        else {
            return;
        };
        self.trace.record(
            self.now,
            Record::Deliver {
                from: from + 1,
                to: to + 1,
                kind: "peer",
                term: 0,
                a: bytes.len() as u64,
                b: 0,
            },
        );
        let now = self.nodes[to as usize].clock.now(self.now);
        self.input(to as usize, Input::Peer { now, bytes });
    }

    fn on_request(&mut self, node: u32, incarnation: u32, conn: ConnId, frame: Bytes) {
        let ev = Ev::Request {
            node,
            incarnation,
            conn,
            frame,
        };
        let Some(Ev::Request { frame, .. }) = self.accepts(node as usize, Some(incarnation), ev)
        else {
            return;
        };
        let now = self.nodes[node as usize].clock.now(self.now);
        self.input(node as usize, Input::Request { now, conn, frame });
    }

    fn on_disconnect(&mut self, node: u32, incarnation: u32, conn: ConnId) {
        let ev = Ev::Disconnect {
            node,
            incarnation,
            conn,
        };
        if self.accepts(node as usize, Some(incarnation), ev).is_none() {
            return;
        }
        let now = self.nodes[node as usize].clock.now(self.now);
        self.input(node as usize, Input::Disconnected { now, conn });
    }

    fn on_timer(&mut self, node: u32) {
        let n = &self.nodes[node as usize];
        if n.timer_at != Some(self.now) || n.broker.is_none() {
            return;
        }
        if self
            .accepts(node as usize, None, Ev::Timer { node })
            .is_none()
        {
            return;
        }
        self.nodes[node as usize].timer_at = None;
        self.trace
            .record(self.now, Record::Timer { node: node + 1 });
        let now = self.nodes[node as usize].clock.now(self.now);
        self.input(node as usize, Input::Timeout(now));
    }

    fn on_storage(&mut self, node: u32, incarnation: u32, target: StorageTarget, job: StorageJob) {
        let ev = Ev::Storage {
            node,
            incarnation,
            target,
            job,
        };
        let Some(Ev::Storage { target, job, .. }) =
            self.accepts(node as usize, Some(incarnation), ev)
        else {
            return;
        };
        let i = node as usize;
        let kind = job_kind(&job);
        let n = &mut self.nodes[i];
        let wall_ms = n.clock.now(self.now).wall_ms;
        n.fs.faults = faults(&self.cfg.disk);
        let storage = n.storage.as_mut().expect("a running broker has storage");
        let result = storage.execute(
            &mut SimFsHandle {
                fs: &mut n.fs,
                rng: &mut self.disk_rng,
            },
            target,
            job,
            wall_ms,
        );
        let done = match result {
            Ok(done) => done,
            Err(_) => {
                // Fail-stop: a broker whose disk failed stops and recovers from what is there.
                self.stats.storage_errors += 1;
                self.trace.record(
                    self.now,
                    Record::Fault {
                        text: "storage error, broker stops",
                        node: node + 1,
                        arg: self.stats.storage_errors as i64,
                    },
                );
                self.crash(i);
                let incarnation = self.nodes[i].incarnation;
                let at = self.now + self.fault_rng.range_inclusive(50, 500) * MS;
                self.queue.push(at, Ev::AutoRestart { node, incarnation });
                return;
            }
        };
        self.trace.record(
            self.now,
            Record::Storage {
                node: node + 1,
                kind,
                index: target_index(target),
            },
        );
        let now = self.nodes[i].clock.now(self.now);
        self.input(i, Input::Storage { now, target, done });
    }

    /// Hands one input to a broker, routes its outputs, and runs the per-event checks.
    fn input(&mut self, i: usize, input: Input) {
        self.stats.events += 1;
        self.nodes[i]
            .broker
            .as_mut()
            .expect("input to a running broker")
            .handle_input(input);
        self.drain(i);
        self.check_leaders(i);
        self.watch_group(i);
        self.reschedule_timer(i);
    }

    fn drain(&mut self, i: usize) {
        loop {
            let Some(out) = self.nodes[i].broker.as_mut().and_then(Broker::poll_output) else {
                return;
            };
            self.route(i, out);
        }
    }

    fn route(&mut self, i: usize, out: Output) {
        match out {
            Output::Response { conn, frame, .. } => {
                if !frame.is_empty() {
                    self.send_to_client(i, conn, frame);
                }
            }
            Output::Close { conn, .. } => {
                if let Some(&(c, n)) = self.conn_route.get(&conn) {
                    if self.conns.get(&(c, n)).is_some_and(|k| k.id == conn) {
                        self.reset_conn(c, n);
                    }
                }
            }
            Output::Storage { target, job } => {
                if let (StorageTarget::Partition(id), StorageJob::Open { dir, .. }) = (target, &job)
                {
                    if let Some(p) = partition_of_dir(dir) {
                        self.nodes[i].partition_ids.insert(p, id);
                    }
                }
                if self.nodes[i].device.submit((target, job)) {
                    self.start_drain(i);
                }
            }
            Output::Peer { to, bytes } => {
                if to < 1 || to as usize > self.nodes.len() || to as usize == i + 1 {
                    return;
                }
                let to = to as u32 - 1;
                let mut arrivals = std::mem::take(&mut self.arrivals);
                self.net.send_peer(self.now, i, to as usize, &mut arrivals);
                if arrivals.is_empty() {
                    self.stats.peer_dropped += 1;
                }
                let bytes = Bytes::from(bytes);
                for &at in &arrivals {
                    self.queue.push(
                        at,
                        Ev::Peer {
                            from: i as u32,
                            to,
                            bytes: bytes.clone(),
                        },
                    );
                }
                self.arrivals = arrivals;
            }
            Output::PeerAddresses(_) => {}
            Output::Event(e) => self.on_broker_event(i, e),
        }
    }

    fn on_broker_event(&mut self, i: usize, e: Event) {
        let node = i as u32 + 1;
        let (what, partition, a) = match e {
            Event::LeaderElected {
                partition, epoch, ..
            } => ("LEADER", partition, i64::from(epoch)),
            Event::LeaderLost {
                partition, epoch, ..
            } => ("lost leadership", partition, i64::from(epoch)),
            Event::Truncated {
                partition,
                from_offset,
                ..
            } => {
                self.stats.truncations += 1;
                ("truncated from", partition, from_offset)
            }
            Event::PartitionOpened {
                partition,
                dropped_bytes,
                ..
            } => {
                if dropped_bytes > 0 {
                    self.stats.torn_tails_cut += 1;
                }
                ("opened, torn bytes cut", partition, dropped_bytes as i64)
            }
            Event::ControllerChanged { term, leader } => (
                "controller term",
                u32::MAX,
                term as i64 * 100 + i64::from(leader.unwrap_or(0)),
            ),
            Event::TopicCreated { partitions, .. } => ("topic created", partitions, 0),
            Event::HighWatermark {
                partition, offset, ..
            } => ("hw", partition, offset),
            _ => return,
        };
        self.trace.record(
            self.now,
            Record::Broker {
                node,
                what,
                partition,
                a,
            },
        );
    }

    /// `leader-per-epoch`, from the broker's Raft states after each of its inputs.
    fn check_leaders(&mut self, i: usize) {
        let Some(b) = self.nodes[i].broker.as_ref() else {
            return;
        };
        let node = i as u32 + 1;
        let mut found = Vec::new();
        if let Some(r) = b.metadata_raft() {
            if r.role() == Role::Leader {
                found.push((METADATA_GROUP, r.term().0));
            }
        }
        for p in b.partitions() {
            if let Some(r) = p.raft.as_ref().filter(|r| r.role() == Role::Leader) {
                found.push(((p.key.topic_id, p.key.partition), r.term().0));
            }
        }
        for (group, epoch) in found {
            if let Err(e) = self.leaders.on_leader(group, epoch, node) {
                if self.cfg.has_checker(CheckerKind::LeaderPerEpoch) {
                    self.violate(CheckerKind::LeaderPerEpoch, e);
                }
            }
        }
    }

    fn reschedule_timer(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let Some(b) = node.broker.as_ref() else {
            return;
        };
        match b.poll_timeout() {
            Some(deadline) => {
                let at = node.clock.global_at(deadline, self.now);
                if node.timer_at != Some(at) {
                    node.timer_at = Some(at);
                    self.queue.push(at, Ev::Timer { node: i as u32 });
                }
            }
            None => node.timer_at = None,
        }
    }

    // ----- connections -----

    /// A broker's response frame goes back over the client's connection.
    fn send_to_client(&mut self, i: usize, conn: ConnId, frame: Vec<u8>) {
        let Some(&(c, n)) = self.conn_route.get(&conn) else {
            return;
        };
        debug_assert_eq!(n as usize, i);
        let Some(k) = self.conns.get(&(c, n)).copied().filter(|k| k.id == conn) else {
            return; // the connection is gone; so is the response
        };
        let Some(arrival) = self.net.send_client(self.now) else {
            self.reset_conn(c, n);
            return;
        };
        let at = arrival.max(k.to_client_at);
        self.conns.get_mut(&(c, n)).expect("open").to_client_at = at;
        self.queue.push(
            at,
            Ev::Response {
                client: c,
                conn,
                frame,
            },
        );
    }

    fn on_response(&mut self, client: u32, conn: ConnId, frame: Vec<u8>) {
        self.stats.other_events += 1;
        let (owner, channel) = self.owner_of(client);
        let ev = Ev::Response {
            client,
            conn,
            frame,
        };
        let Some(Ev::Response { frame, .. }) = self.defer_if_paused(owner, ev) else {
            return;
        };
        let Some(&(_, n)) = self.conn_route.get(&conn) else {
            return;
        };
        if self.conns.get(&(client, n)).is_none_or(|k| k.id != conn) {
            return;
        }
        let corr = if frame.len() >= 8 {
            i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]])
        } else {
            -1
        };
        self.trace.record(
            self.now,
            Record::Client {
                client,
                node: n + 1,
                what: "answer",
                a: i64::from(corr),
                b: frame.len() as i64,
            },
        );
        let node = n + 1;
        self.client_input(owner, |k, cx| k.on_response(channel, node, &frame, cx));
    }

    /// The connection between client `c` and node index `n` dies: the broker is told (if it
    /// still runs), and the client learns that everything in flight on it is in doubt.
    fn reset_conn(&mut self, c: u32, n: u32) {
        let Some(k) = self.conns.remove(&(c, n)) else {
            return;
        };
        self.stats.connection_resets += 1;
        self.trace.record(
            self.now,
            Record::Client {
                client: c,
                node: n + 1,
                what: "connection reset",
                a: k.id as i64,
                b: 0,
            },
        );
        self.disconnect_broker(n, k);
        let node = n + 1;
        let (owner, channel) = self.owner_of(c);
        let ev = Ev::ClientReset { client: c, node };
        if self.defer_if_paused(owner, ev).is_some() {
            self.client_input(owner, |kind, cx| kind.on_reset(channel, node, cx));
        }
    }

    /// The client whose inputs events for client `c` are, and on which channel: a member's
    /// coordinator connections belong to a client of their own (`Kind::GroupChannel`).
    fn owner_of(&self, c: u32) -> (u32, Channel) {
        match self.clients[c as usize].kind {
            Kind::GroupChannel { owner } => (owner, Channel::Group),
            _ => (c, Channel::Data),
        }
    }

    /// The client that holds client `c`'s connections of `channel`.
    fn channel_client(&self, c: u32, channel: Channel) -> u32 {
        match channel {
            Channel::Data => c,
            Channel::Group => self.group_channels.get(&c).copied().unwrap_or(c),
        }
    }

    fn disconnect_broker(&mut self, n: u32, k: Conn) {
        if self.nodes[n as usize].incarnation == k.incarnation
            && self.nodes[n as usize].broker.is_some()
        {
            let at = self.now + self.net.params.delay_min_us * 1_000;
            let at = at.max(k.to_broker_at);
            self.queue.push(
                at,
                Ev::Disconnect {
                    node: n,
                    incarnation: k.incarnation,
                    conn: k.id,
                },
            );
        }
    }

    /// Carries out what a client asked for.
    fn client_outputs(&mut self, c: u32) {
        let outs = std::mem::take(&mut self.outs);
        for out in outs {
            match out {
                ClientOut::Send {
                    node,
                    corr,
                    frame,
                    channel,
                } => {
                    let via = self.channel_client(c, channel);
                    self.client_send(via, node, corr, frame);
                }
                ClientOut::Close { node, channel } => {
                    let c = self.channel_client(c, channel);
                    if let Some(k) = self.conns.remove(&(c, node - 1)) {
                        self.trace.record(
                            self.now,
                            Record::Client {
                                client: c,
                                node,
                                what: "timeout, close",
                                a: k.id as i64,
                                b: 0,
                            },
                        );
                        self.disconnect_broker(node - 1, k);
                    }
                }
            }
        }
    }

    fn client_send(&mut self, c: u32, node: u32, corr: i32, frame: Vec<u8>) {
        let n = node - 1;
        self.trace.record(
            self.now,
            Record::Client {
                client: c,
                node,
                what: "request",
                a: i64::from(corr),
                b: frame.len() as i64,
            },
        );
        let incarnation = self.nodes[n as usize].incarnation;
        if self.nodes[n as usize].broker.is_none() {
            // Connection refused: the request never left.
            let at = self.now + 2 * self.net.params.delay_min_us * 1_000;
            self.queue.push(
                at,
                Ev::Refused {
                    client: c,
                    node,
                    corr,
                },
            );
            return;
        }
        let stale = self
            .conns
            .get(&(c, n))
            .is_some_and(|k| k.incarnation != incarnation);
        if stale {
            self.conns.remove(&(c, n));
        }
        let k = match self.conns.get(&(c, n)) {
            Some(k) => *k,
            None => {
                let id = self.next_conn;
                self.next_conn += 1;
                self.conn_route.insert(id, (c, n));
                let k = Conn {
                    id,
                    incarnation,
                    to_broker_at: 0,
                    to_client_at: 0,
                };
                self.conns.insert((c, n), k);
                k
            }
        };
        let Some(arrival) = self.net.send_client(self.now) else {
            self.reset_conn(c, n);
            return;
        };
        let at = arrival.max(k.to_broker_at);
        self.conns.get_mut(&(c, n)).expect("open").to_broker_at = at;
        self.queue.push(
            at,
            Ev::Request {
                node: n,
                incarnation,
                conn: k.id,
                frame: Bytes::from(frame).slice(4..),
            },
        );
    }

    // ----- clients -----

    fn on_client_wake(&mut self, c: u32) {
        self.stats.other_events += 1;
        if self.clients[c as usize].wake_at != Some(self.now) {
            return;
        }
        self.clients[c as usize].wake_at = None;
        if self.clients[c as usize].paused {
            return; // it wakes when it resumes
        }
        self.client_input(c, |k, cx| k.on_wake(cx));
    }

    /// Hands one input to a client, then carries out its outputs, runs the checkers on what
    /// it recorded, and reschedules its wake-up.
    fn client_input(&mut self, c: u32, f: impl FnOnce(&mut Kind, &mut Cx<'_>)) {
        let revokes = |k: &Kind| match k {
            Kind::Member(m) => m.revokes,
            _ => 0,
        };
        let revokes_before = revokes(&self.clients[c as usize].kind);
        let mut notes = std::mem::take(&mut self.notes);
        {
            let rng = match self.clients[c as usize].kind {
                Kind::Member(_) | Kind::Observer(_) => &mut self.group_rng,
                _ => &mut self.workload_rng,
            };
            let mut cx = Cx {
                now: self.now,
                rng,
                history: &mut self.history,
                out: &mut self.outs,
                notes: &mut notes,
                brokers: self.cfg.brokers,
                workload: &self.cfg.workload,
                bug: self.cfg.bug,
            };
            f(&mut self.clients[c as usize].kind, &mut cx);
        }
        let revoking = revokes(&self.clients[c as usize].kind) > revokes_before;
        self.client_outputs(c);
        if revoking {
            self.group_step(RebalanceStep::Revoking, 0);
        }
        for note in notes.drain(..) {
            self.on_note(c, note);
        }
        self.notes = notes;
        let next = self.clients[c as usize].kind.next_wake(self.now);
        let client = &mut self.clients[c as usize];
        match next {
            Some(at) => {
                if client.wake_at.is_none_or(|w| w > at || w < self.now) {
                    client.wake_at = Some(at);
                    self.queue.push(at, Ev::ClientWake { client: c });
                }
            }
            None => client.wake_at = None,
        }
    }

    fn on_note(&mut self, client: u32, note: Note) {
        let mut violation = None;
        match note {
            Note::Trace(what, a, b) => self.trace.record(
                self.now,
                Record::Client {
                    client,
                    node: 0,
                    what,
                    a,
                    b,
                },
            ),
            Note::SendDone(i) => {
                let s = &self.history.sends[i];
                let outcome = match s.outcome {
                    SendOutcome::Ok { .. } => "ok",
                    SendOutcome::Failed { .. } => "failed",
                    _ => "unknown",
                };
                let base = match s.outcome {
                    SendOutcome::Ok { base_offset, .. } => base_offset,
                    _ => -1,
                };
                self.trace.record(
                    self.now,
                    Record::ClientResult {
                        client: s.producer,
                        op: i as u64,
                        outcome,
                        index: base as u64,
                    },
                );
                if let (SendOutcome::Ok { node, .. }, -1) = (s.outcome, s.acks) {
                    let p = s.partition;
                    let epoch = self.epoch_at(node, p);
                    self.failover.on_ack(self.now, p, epoch);
                }
                for c in &mut self.checkers {
                    if let Err(e) = c.on_send(&self.history, i) {
                        violation.get_or_insert((c.kind(), e));
                    }
                }
            }
            Note::ConsumerOp(i) => {
                for c in &mut self.checkers {
                    if let Err(e) = c.on_consumer_op(&self.history, i) {
                        violation.get_or_insert((c.kind(), e));
                    }
                }
            }
            Note::GroupOp(i) => {
                for c in &mut self.checkers {
                    if let Err(e) = c.on_group_op(&self.history, i) {
                        violation.get_or_insert((c.kind(), e));
                    }
                }
                match self.history.group_ops[i] {
                    GroupOp::Assigned { .. } => self.check_settled(),
                    GroupOp::Joined {
                        member, generation, ..
                    } => {
                        if let Some(left) = self.static_restarts.remove(&member) {
                            self.stats.static_rejoins += 1;
                            if generation == left {
                                self.stats.static_rejoins_same_generation += 1;
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        if let Some((kind, e)) = violation {
            self.violate(kind, e);
        }
    }

    /// The leader epoch broker `node` (1-based) has for partition `p` now (-1 if unknown).
    fn epoch_at(&self, node: u32, p: u32) -> i32 {
        self.nodes
            .get(node as usize - 1)
            .and_then(|n| n.broker.as_ref())
            .and_then(|b| b.partitions().find(|x| x.index == p && x.topic == TOPIC))
            .map_or(-1, |x| x.leader_epoch())
    }

    fn violate(&mut self, checker: CheckerKind, detail: String) {
        if self.verdict.is_none() {
            self.verdict = Some(Verdict::Safety(Violation {
                checker,
                at_ns: self.now,
                detail,
            }));
        }
    }

    // ----- faults -----

    fn running(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].broker.is_some())
            .collect()
    }

    /// The leader of partition 0 (the focus partition) with the highest epoch.
    fn partition_leader(&self, p: u32) -> Option<usize> {
        (0..self.nodes.len())
            .filter_map(|i| {
                let b = self.nodes[i].broker.as_ref()?;
                let part = b
                    .partitions()
                    .find(|x| x.index == p && x.topic == TOPIC && x.is_leader())?;
                Some((i, part.leader_epoch()))
            })
            .max_by_key(|&(_, e)| e)
            .map(|(i, _)| i)
    }

    fn controller(&self) -> Option<usize> {
        (0..self.nodes.len())
            .filter_map(|i| {
                let r = self.nodes[i].broker.as_ref()?.metadata_raft()?;
                (r.role() == Role::Leader).then(|| (i, r.term()))
            })
            .max_by_key(|&(_, t)| t)
            .map(|(i, _)| i)
    }

    fn resolve(&mut self, target: Target) -> Option<usize> {
        let pick = |rng: &mut DetRng, v: &[usize]| (!v.is_empty()).then(|| v[rng.index(v.len())]);
        let running = self.running();
        match target {
            Target::Node(n) => (n < self.cfg.brokers).then_some(n as usize),
            Target::Leader => self
                .partition_leader(0)
                .or_else(|| pick(&mut self.fault_rng, &running)),
            Target::Controller => self
                .controller()
                .or_else(|| pick(&mut self.fault_rng, &running)),
            Target::Follower => {
                let leader = self.partition_leader(0);
                let replicas: Vec<usize> = running
                    .iter()
                    .copied()
                    .filter(|&i| Some(i) != leader)
                    .filter(|&i| {
                        self.nodes[i].broker.as_ref().is_some_and(|b| {
                            b.partitions().any(|x| x.index == 0 && x.topic == TOPIC)
                        })
                    })
                    .collect();
                let others: Vec<usize> = running
                    .iter()
                    .copied()
                    .filter(|&i| Some(i) != leader)
                    .collect();
                if replicas.is_empty() {
                    pick(&mut self.fault_rng, &others)
                } else {
                    pick(&mut self.fault_rng, &replicas)
                }
            }
            Target::Random => pick(&mut self.fault_rng, &running),
            Target::Crashed => {
                let down: Vec<usize> = (0..self.nodes.len())
                    .filter(|&i| self.nodes[i].broker.is_none())
                    .collect();
                pick(&mut self.fault_rng, &down)
            }
            Target::Coordinator => self.coordinator(),
        }
    }

    /// Starts failover clocks for the partitions node `i` leads.
    fn leader_fault(&mut self, i: usize) {
        let Some(b) = self.nodes[i].broker.as_ref() else {
            return;
        };
        let led: Vec<(u32, i32)> = b
            .partitions()
            .filter(|p| p.topic == TOPIC && p.is_leader())
            .map(|p| (p.index, p.leader_epoch()))
            .collect();
        for (p, e) in led {
            self.failover.on_fault(self.now, p, e);
        }
    }

    fn on_fault(&mut self, index: usize) {
        self.stats.other_events += 1;
        if self.phase != Phase::Safety {
            return;
        }
        let action = self.cfg.faults[index].action.clone();
        self.apply_fault(action);
    }

    /// Applies one fault action now.
    pub fn apply_fault(&mut self, action: FaultAction) {
        crate::faults::apply(self, action);
    }

    // ----- the consumer group -----

    /// Holds `ev` if client `c` is paused (it handles it when it resumes); else hands it back.
    fn defer_if_paused(&mut self, c: u32, ev: Ev) -> Option<Ev> {
        let client = &mut self.clients[c as usize];
        if client.paused {
            client.deferred.push(ev);
            return None;
        }
        Some(ev)
    }

    fn resume_client(&mut self, c: u32) {
        let client = &mut self.clients[c as usize];
        if !client.paused {
            return;
        }
        client.paused = false;
        let deferred = std::mem::take(&mut client.deferred);
        client.wake_at = Some(self.now);
        self.trace.record(
            self.now,
            Record::Client {
                client: c,
                node: 0,
                what: "member resumes (held inputs)",
                a: deferred.len() as i64,
                b: 0,
            },
        );
        for ev in deferred {
            self.queue.push(self.now, ev);
        }
        self.queue.push(self.now, Ev::ClientWake { client: c });
    }

    /// The member's process dies: its connections close (the brokers see them go).
    fn crash_member(&mut self, c: u32) {
        let client = &mut self.clients[c as usize];
        client.paused = false;
        client.deferred.clear();
        self.client_input(c, |k, cx| {
            if let Kind::Member(m) = k {
                m.crash(cx);
            }
        });
        let alias = self.channel_client(c, Channel::Group);
        let conns: Vec<(u32, u32)> = self
            .conns
            .keys()
            .filter(|k| k.0 == c || k.0 == alias)
            .copied()
            .collect();
        for key in conns {
            if let Some(k) = self.conns.remove(&key) {
                self.disconnect_broker(key.1, k);
            }
        }
    }

    fn on_member_action(&mut self, index: usize) {
        self.stats.other_events += 1;
        if self.phase != Phase::Safety {
            return;
        }
        let a = self.cfg.group.as_ref().expect("a group").actions[index];
        let c = self.members[a.member as usize];
        let running = matches!(&self.clients[c as usize].kind, Kind::Member(m) if m.is_running());
        let awake = running && !self.clients[c as usize].paused;
        let what = match a.action {
            MemberAction::Join => "member action: join",
            MemberAction::Leave => "member action: leave",
            MemberAction::Crash => "member action: crash",
            MemberAction::Pause { .. } => "member action: pause",
            MemberAction::Restart { .. } => "member action: restart",
            MemberAction::Reset => "member action: reset",
        };
        self.trace.record(
            self.now,
            Record::Client {
                client: c,
                node: 0,
                what,
                a: index as i64,
                b: i64::from(running),
            },
        );
        match a.action {
            MemberAction::Join => self.client_input(c, |k, cx| {
                if let Kind::Member(m) = k {
                    m.start(cx);
                }
            }),
            MemberAction::Leave if awake => {
                self.rebalance.on_death(self.now);
                self.client_input(c, |k, cx| {
                    if let Kind::Member(m) = k {
                        m.leave(cx);
                    }
                });
            }
            MemberAction::Crash if running => {
                self.rebalance.on_death(self.now);
                self.crash_member(c);
            }
            MemberAction::Pause { ms } if awake => {
                self.rebalance.on_death(self.now);
                self.clients[c as usize].paused = true;
                self.queue
                    .push(self.now + ms * MS, Ev::MemberResume { client: c });
            }
            MemberAction::Restart { down_ms } if running => {
                let is_static = matches!(
                    &self.clients[c as usize].kind,
                    Kind::Member(m) if m.instance.is_some()
                );
                let settled = self
                    .group_view()
                    .filter(|g| g.unsettled().is_none())
                    .and_then(|g| g.coordinator.map(|c| c.generation));
                if let (true, Some(generation)) = (is_static, settled) {
                    self.static_restarts.insert(c, generation);
                }
                self.rebalance.on_death(self.now);
                self.crash_member(c);
                self.queue
                    .push(self.now + down_ms * MS, Ev::MemberStart { client: c });
            }
            MemberAction::Reset if awake => self.client_input(c, |k, cx| {
                if let Kind::Member(m) = k {
                    m.reset_positions(cx);
                }
            }),
            _ => {}
        }
    }

    /// After broker `i` handled an input: if the group entered a rebalance step there, the
    /// first trigger waiting for that step is scheduled.
    fn watch_group(&mut self, i: usize) {
        let Some(g) = self.cfg.group.as_ref() else {
            return;
        };
        if self.phase != Phase::Safety || self.triggers_fired.iter().all(|f| *f) {
            return;
        }
        let Some(b) = self.nodes[i].broker.as_ref() else {
            return;
        };
        let seen = b
            .group_summaries()
            .into_iter()
            .find(|x| x.group == g.group)
            .map(|x| (x.state, x.generation));
        if seen == self.group_seen[i] {
            return;
        }
        self.group_seen[i] = seen;
        let step = match seen {
            Some(("PreparingRebalance", _)) => RebalanceStep::Preparing,
            Some(("CompletingRebalance", _)) => RebalanceStep::Completing,
            _ => return,
        };
        self.group_step(step, i as u32 + 1);
    }

    /// The group reached `step` (at node `node`, 0 for a member's step): the first trigger
    /// waiting for it is scheduled.
    fn group_step(&mut self, step: RebalanceStep, node: u32) {
        let Some(g) = self.cfg.group.as_ref() else {
            return;
        };
        if self.phase != Phase::Safety {
            return;
        }
        let now = self.now;
        let due =
            g.triggers.iter().enumerate().find(|(k, t)| {
                !self.triggers_fired[*k] && t.step == step && t.after_ms * MS <= now
            });
        if let Some((k, t)) = due {
            let at = now + t.delay_us * 1_000;
            self.triggers_fired[k] = true;
            self.trace.record(
                now,
                Record::Broker {
                    node,
                    what: "group trigger armed (index)",
                    partition: u32::MAX,
                    a: k as i64,
                },
            );
            self.queue.push(at, Ev::GroupTrigger { index: k });
        }
    }

    /// The running, unpaused broker that serves the group's offsets partition (the highest
    /// leader epoch among those that believe they do).
    fn coordinator(&self) -> Option<usize> {
        let g = self.cfg.group.as_ref()?;
        let index = partition_for(&g.group, g.offsets_partitions);
        (0..self.nodes.len())
            .filter(|&i| !self.nodes[i].paused)
            .filter_map(|i| {
                let b = self.nodes[i].broker.as_ref()?;
                let p = b
                    .partitions()
                    .find(|p| p.topic == OFFSETS_TOPIC && p.index == index && p.is_serving())?;
                Some((i, p.leader_epoch()))
            })
            .max_by_key(|&(_, e)| e)
            .map(|(i, _)| i)
    }

    /// The group now, as its coordinator and its live members see it.
    fn group_view(&self) -> Option<GroupView> {
        let g = self.cfg.group.as_ref()?;
        let coordinator = self.coordinator().and_then(|i| {
            let b = self.nodes[i].broker.as_ref()?;
            let s = b
                .group_summaries()
                .into_iter()
                .find(|x| x.group == g.group)?;
            Some(CoordinatorView {
                node: i as u32 + 1,
                state: s.state.to_string(),
                generation: s.generation,
                members: s.members,
            })
        });
        let live = self
            .members
            .iter()
            .filter_map(|&c| {
                let client = &self.clients[c as usize];
                let Kind::Member(m) = &client.kind else {
                    return None;
                };
                (m.is_running() && !client.paused).then(|| LiveMember {
                    member: c,
                    member_id: m.member_id.clone(),
                    generation: m.generation,
                    partitions: m.partitions(),
                })
            })
            .collect();
        let committed = self
            .observer
            .and_then(|o| match &self.clients[o as usize].kind {
                Kind::Observer(x) => x.result.clone(),
                _ => None,
            });
        Some(GroupView {
            group: g.group.clone(),
            partitions: self.cfg.workload.partitions,
            coordinator,
            live,
            committed,
        })
    }

    /// Closes the open rebalance sample if the group is settled now.
    fn check_settled(&mut self) {
        if self.rebalance.is_open() && self.group_view().is_some_and(|g| g.unsettled().is_none()) {
            self.rebalance.on_settled(self.now);
        }
    }

    // ----- liveness -----

    fn on_liveness_start(&mut self) {
        self.trace.record(
            self.now,
            Record::Phase {
                name: "liveness: heal, restart, stop faults",
            },
        );
        self.phase = Phase::Producing { started: self.now };
        self.net.heal();
        self.net.params.loss_ppm = 0;
        self.net.params.dup_ppm = 0;
        self.net.params.client_drop_ppm = 0;
        self.cfg.disk.io_error_ppm = 0;
        for i in 0..self.nodes.len() {
            self.nodes[i].device.slow_factor = 1;
            self.resume(i);
            self.restart(i);
        }
        for c in self.members.clone() {
            self.resume_client(c);
        }
        self.liveness_marks = self
            .clients
            .iter()
            .map(|c| match &c.kind {
                Kind::Producer(p) => progress(p, &self.history),
                _ => 0,
            })
            .collect();
        self.queue.push(self.now, Ev::Check);
    }

    fn on_check(&mut self) {
        let Some(started) = self.phase.started() else {
            return;
        };
        self.check_settled();
        // The last check before the liveness bound (the run's deadline follows it closely).
        let last_check = self.now + CHECK_EVERY > started + self.cfg.liveness_ms * MS;
        match self.phase {
            Phase::Producing { .. } => {
                let need = self.cfg.workload.liveness_acks;
                let enough = self.clients.iter().enumerate().all(|(c, k)| match &k.kind {
                    Kind::Producer(p) => {
                        progress(p, &self.history) >= self.liveness_marks[c] + need
                    }
                    Kind::Admin(a) => a.done,
                    Kind::Consumer(_)
                    | Kind::Member(_)
                    | Kind::Observer(_)
                    | Kind::GroupChannel { .. } => true,
                });
                if enough {
                    self.trace.record(
                        self.now,
                        Record::Phase {
                            name: "liveness: producers stop",
                        },
                    );
                    for c in &mut self.clients {
                        if let Kind::Producer(p) = &mut c.kind {
                            p.stopping = true;
                        }
                    }
                    self.phase = Phase::Draining { started };
                }
            }
            Phase::Draining { .. } => {
                let idle = self.clients.iter().all(|c| match &c.kind {
                    Kind::Producer(p) => p.is_idle(),
                    _ => true,
                });
                if idle {
                    self.trace.record(
                        self.now,
                        Record::Phase {
                            name: "liveness: final reader starts",
                        },
                    );
                    let id = self.clients.len() as u32;
                    let w = &self.cfg.workload;
                    let all: Vec<u32> = (0..w.partitions).collect();
                    let reader = Consumer::new(id, w.partitions, all, self.now, true);
                    self.add_client(Kind::Consumer(reader), self.now);
                    self.final_reader = Some(id);
                    self.phase = Phase::Reading { started };
                }
            }
            Phase::Reading { .. } => {
                let read = self.final_reader.is_some_and(|r| {
                    matches!(&self.clients[r as usize].kind, Kind::Consumer(c) if c.caught_up())
                });
                if read && self.converged() {
                    self.check_settled();
                    match self.group_view().map(|g| g.unsettled()) {
                        None => {
                            self.trace
                                .record(self.now, Record::Phase { name: "converged" });
                            self.done();
                            return;
                        }
                        Some(None) => self.start_settling(started),
                        Some(Some(_)) => {
                            if last_check {
                                // The cluster converged but the group did not: the group
                                // checkers judge it from the final state.
                                self.trace.record(
                                    self.now,
                                    Record::Phase {
                                        name: "converged, the group did not settle",
                                    },
                                );
                                self.done();
                                return;
                            }
                        }
                    }
                }
            }
            Phase::Settling { .. } => {
                let observed = self.observer.is_some_and(|o| {
                    matches!(&self.clients[o as usize].kind, Kind::Observer(x) if x.result.is_some())
                });
                // The final state is read from a converged cluster (leadership may have moved
                // since the Reading phase, by leader balancing).
                if (observed && self.converged()) || last_check {
                    self.trace.record(
                        self.now,
                        Record::Phase {
                            name: if observed {
                                "converged, the group's offsets read"
                            } else {
                                "converged, the group's offsets not read in time"
                            },
                        },
                    );
                    self.done();
                    return;
                }
                let flushed = self.members.iter().all(|&c| {
                    self.clients[c as usize].paused
                        || matches!(&self.clients[c as usize].kind, Kind::Member(m) if m.flushed())
                });
                if flushed && self.observer.is_none() {
                    let id = self.clients.len() as u32;
                    let g = self.cfg.group.as_ref().expect("a group");
                    let o = OffsetObserver::new(id, &g.group, self.cfg.workload.partitions);
                    self.add_client(Kind::Observer(o), self.now);
                    self.observer = Some(id);
                }
            }
            Phase::Safety | Phase::Done => return,
        }
        if self.now > started + self.cfg.liveness_ms * MS {
            let state = self.describe_state();
            let what = match self.phase {
                Phase::Producing { .. } => "producers made no progress",
                Phase::Draining { .. } => "producers did not finish their pending sends",
                _ => "the cluster did not converge (or the final reader did not catch up)",
            };
            self.verdict = Some(Verdict::Liveness(format!(
                "{what} within {}ms of healing: {state}",
                self.cfg.liveness_ms
            )));
            return;
        }
        self.queue.push(self.now + CHECK_EVERY, Ev::Check);
    }

    /// The run is over: consumers stop, and the final state is judged.
    fn done(&mut self) {
        self.phase = Phase::Done;
        for c in &mut self.clients {
            if let Kind::Consumer(x) = &mut c.kind {
                x.stopped = true;
            }
        }
        self.finish();
    }

    /// The group settled after the liveness phase: members commit their positions.
    fn start_settling(&mut self, started: u64) {
        self.trace.record(
            self.now,
            Record::Phase {
                name: "liveness: the group settled, members commit",
            },
        );
        self.phase = Phase::Settling { started };
        for c in self.members.clone() {
            self.client_input(c, |k, cx| {
                if let Kind::Member(m) = k {
                    m.request_flush(cx);
                }
            });
        }
    }

    /// Every partition has exactly one serving leader, and every replica runs, follows it in
    /// its epoch and has every entry it has, committed.
    fn converged(&self) -> bool {
        if self.nodes.iter().any(|n| n.broker.is_none() || n.paused) {
            return false;
        }
        (0..self.cfg.workload.partitions).all(|p| self.partition_converged(p))
    }

    fn partition_converged(&self, p: u32) -> bool {
        let mut serving = Vec::new();
        let mut replicas = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let b = n.broker.as_ref().expect("running");
            if let Some(part) = b.partitions().find(|x| x.index == p && x.topic == TOPIC) {
                if part.is_serving() {
                    serving.push(i);
                }
                replicas.push(part);
            }
        }
        if serving.len() != 1 || replicas.len() != usize::from(self.cfg.workload.replication_factor)
        {
            return false;
        }
        let leader = replicas
            .iter()
            .find(|x| x.is_serving())
            .expect("one serving");
        let Some(lr) = leader.raft.as_ref() else {
            return false;
        };
        let last = lr.last_index();
        lr.commit_index() == last
            && replicas.iter().all(|x| {
                x.raft.as_ref().is_some_and(|r| {
                    r.term() == lr.term()
                        && r.leader() == lr.leader()
                        && r.last_index() == last
                        && r.commit_index() == last
                        && r.durable_index() == last
                })
            })
            && replicas
                .iter()
                .all(|x| x.high_watermark == leader.high_watermark)
    }

    fn describe_state(&self) -> String {
        let mut s = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let Some(b) = n.broker.as_ref() else {
                s.push(format!("n{} down", i + 1));
                continue;
            };
            let parts: Vec<String> = b
                .partitions()
                .filter(|x| x.topic == TOPIC)
                .map(|x| {
                    let r = x.raft.as_ref();
                    format!(
                        "p{}:{}{} e{} hw={} end={} commit={} last={}",
                        x.index,
                        r.map_or("opening".to_string(), |r| format!("{:?}", r.role())),
                        if x.is_serving() { "*" } else { "" },
                        x.leader_epoch(),
                        x.high_watermark,
                        x.next_offset,
                        r.map_or(0, |r| r.commit_index().0),
                        r.map_or(0, |r| r.last_index().0)
                    )
                })
                .collect();
            let fenced: Vec<i32> = b
                .catalogue()
                .brokers
                .iter()
                .filter(|(_, info)| info.fenced)
                .map(|(&id, _)| id)
                .collect();
            s.push(format!(
                "n{}{} controller={:?} fenced={:?} disk_backlog={:.1}ms slow={} [{}]",
                i + 1,
                if n.paused { " paused" } else { "" },
                b.controller(),
                fenced,
                n.device.busy_until().saturating_sub(self.now) as f64 / 1e6,
                n.device.slow_factor,
                parts.join(", ")
            ));
        }
        let pending: Vec<String> = self
            .clients
            .iter()
            .enumerate()
            .filter_map(|(c, k)| match &k.kind {
                Kind::Producer(p)
                    if !p.is_idle() || matches!(self.phase, Phase::Producing { .. }) =>
                {
                    Some(format!(
                        "producer {c} ({}, progress {} since {}): {}",
                        p.kind.label(),
                        progress(p, &self.history),
                        self.liveness_marks.get(c).copied().unwrap_or(0),
                        p.describe()
                    ))
                }
                Kind::Admin(a) if !a.done => Some(format!(
                    "admin: topic not created after {} attempts",
                    a.attempts
                )),
                Kind::Consumer(x) if x.final_reader && !x.caught_up() => {
                    let at: Vec<String> =
                        x.partitions().map(|(p, o)| format!("p{p}@{o}")).collect();
                    Some(format!("final reader at {}", at.join(" ")))
                }
                Kind::Member(m) if m.is_running() => Some(format!(
                    "member {c}{}: {}",
                    if k.paused { " (paused)" } else { "" },
                    m.describe()
                )),
                _ => None,
            })
            .collect();
        let pending = match self.group_view().and_then(|g| g.unsettled()) {
            Some(why) => {
                let mut p = pending;
                p.push(format!("group: {why}"));
                p
            }
            None => pending,
        };
        format!(
            "phase {:?}; {}; {}",
            self.phase,
            s.join("; "),
            pending.join("; ")
        )
    }

    /// The end of the run: read the final logs, compare replicas, run the checkers' last pass,
    /// then the gates.
    fn finish(&mut self) {
        let fin = match self.final_state() {
            Ok(f) => f,
            Err(e) => {
                self.verdict = Some(Verdict::Liveness(e));
                return;
            }
        };
        self.stats.final_records = fin.partitions.iter().map(|p| p.values.len() as u64).sum();
        let mut fin = fin;
        fin.group = self.group_view();
        for c in &mut self.checkers {
            if let Err(e) = c.finish(&self.history, &fin) {
                let kind = c.kind();
                self.violate(kind, e);
                return;
            }
        }
        let acked = self.history.acked_all() as u64;
        if acked < self.cfg.min_acked {
            self.verdict = Some(Verdict::Gate(format!(
                "only {acked} acks=all sends were acknowledged (gate: {})",
                self.cfg.min_acked
            )));
            return;
        }
        let polled = self.history.records_polled() as u64;
        if polled < self.cfg.min_polled {
            self.verdict = Some(Verdict::Gate(format!(
                "consumers read only {polled} records (gate: {})",
                self.cfg.min_polled
            )));
            return;
        }
        if self.cfg.group.is_some() {
            let ops = &self.history.group_ops;
            let assigned = ops.iter().any(
                |o| matches!(o, GroupOp::Assigned { partitions, .. } if !partitions.is_empty()),
            );
            let committed = ops.iter().any(|o| matches!(o, GroupOp::Committed { .. }));
            if !assigned || !committed {
                self.verdict = Some(Verdict::Gate(format!(
                    "the group exercised too little: a member assigned partitions: {assigned}, a commit acknowledged: {committed}"
                )));
                return;
            }
        }
        self.verdict = Some(Verdict::Pass);
    }

    /// Reads every partition's log through the high watermark from each replica's storage;
    /// replicas must agree.
    fn final_state(&mut self) -> Result<FinalState, String> {
        let mut out = FinalState::default();
        for p in 0..self.cfg.workload.partitions {
            let leader = (0..self.nodes.len())
                .find(|&i| {
                    self.nodes[i].broker.as_ref().is_some_and(|b| {
                        b.partitions()
                            .any(|x| x.index == p && x.topic == TOPIC && x.is_serving())
                    })
                })
                .ok_or_else(|| format!("partition {p} has no serving leader at the end"))?;
            let (hw, log_start) = {
                let b = self.nodes[leader].broker.as_ref().expect("running");
                let x = b
                    .partitions()
                    .find(|x| x.index == p && x.topic == TOPIC)
                    .expect("hosted");
                (x.high_watermark, x.log_start)
            };
            let reference = self.read_log(leader, p, log_start, hw)?;
            for i in 0..self.nodes.len() {
                if i == leader || !self.nodes[i].partition_ids.contains_key(&p) {
                    continue;
                }
                let replica = self.read_log(i, p, log_start, hw)?;
                if replica != reference {
                    let at = reference
                        .iter()
                        .zip(&replica)
                        .position(|(a, b)| a != b)
                        .unwrap_or(reference.len().min(replica.len()));
                    return Err(format!(
                        "replicas disagree below the high watermark: partition {p} n{} and n{} differ at record {} of {} (high watermark {hw}): {:?} vs {:?}",
                        leader + 1,
                        i + 1,
                        at,
                        reference.len(),
                        reference.get(at),
                        replica.get(at)
                    ) + &format!(" [n{}: {}; n{}: {}]", leader + 1, self.describe_replica(leader, p), i + 1, self.describe_replica(i, p)));
                }
            }
            let mut values = Vec::with_capacity(reference.len());
            for (k, &(o, v)) in reference.iter().enumerate() {
                if o != log_start + k as i64 {
                    return Err(format!(
                        "partition {p}: n{}'s log is not dense: offset {o} at position {k} from {log_start}",
                        leader + 1
                    ));
                }
                values.push(v);
            }
            out.partitions.push(FinalPartition {
                leader: leader as u32 + 1,
                high_watermark: hw,
                log_start,
                values,
            });
        }
        Ok(out)
    }

    fn describe_replica(&self, i: usize, p: u32) -> String {
        let Some(x) = self.nodes[i]
            .broker
            .as_ref()
            .and_then(|b| b.partitions().find(|x| x.index == p && x.topic == TOPIC))
        else {
            return "not hosted".into();
        };
        let r = x.raft.as_ref();
        format!(
            "epoch {} hw {} next_offset {} raft last {} commit {} durable {} epochs {:?}",
            x.leader_epoch(),
            x.high_watermark,
            x.next_offset,
            r.map_or(0, |r| r.last_index().0),
            r.map_or(0, |r| r.commit_index().0),
            r.map_or(0, |r| r.durable_index().0),
            x.epochs
        )
    }

    /// Node `i`'s records of partition `p` in `[from, to)`, read from its storage.
    fn read_log(
        &mut self,
        i: usize,
        p: u32,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, Option<u64>)>, String> {
        let node = &mut self.nodes[i];
        let id = *node
            .partition_ids
            .get(&p)
            .ok_or_else(|| format!("n{} has no store for partition {p}", i + 1))?;
        let wall = node.clock.now(self.now).wall_ms;
        node.fs.faults = FsFaults {
            io_error_ppm: 0,
            ..faults(&self.cfg.disk)
        };
        let storage = node.storage.as_mut().expect("running");
        let mut out = Vec::new();
        let mut at = from;
        while at < to {
            let done = storage
                .execute(
                    &mut SimFsHandle {
                        fs: &mut node.fs,
                        rng: &mut self.disk_rng,
                    },
                    StorageTarget::Partition(id),
                    StorageJob::Read {
                        token: 0,
                        from: at,
                        max_bytes: 1 << 20,
                    },
                    wall,
                )
                .map_err(|e| format!("n{} cannot read partition {p}: {e}", i + 1))?;
            let StorageDone::Read { result, .. } = done else {
                return Err("a read answered with something else".into());
            };
            let read =
                result.map_err(|e| format!("n{} reading partition {p} at {at}: {e:?}", i + 1))?;
            if read.bytes.is_empty() {
                break;
            }
            let next = read.next_offset;
            for (o, v) in records_of(&Bytes::from(read.bytes)) {
                if o >= at && o < to {
                    out.push((o, v));
                }
            }
            if next <= at {
                break;
            }
            at = next;
        }
        Ok(out)
    }
}

/// What counts as a producer's progress in the liveness phase: acknowledgements, or for
/// acks=0 (nothing is ever acknowledged) sends made.
fn progress(p: &Producer, h: &History) -> u64 {
    if p.kind.acks == 0 {
        h.sends.iter().filter(|s| s.producer == p.id).count() as u64
    } else {
        p.acked
    }
}

/// The group's counters, from the history.
fn group_stats(st: &mut KafkaStats, h: &History) {
    st.group_joins = 0;
    st.group_commits = 0;
    st.group_delivered = 0;
    st.group_generation = -1;
    for op in &h.group_ops {
        match op {
            GroupOp::Joined { generation, .. } => {
                st.group_joins += 1;
                st.group_generation = st.group_generation.max(i64::from(*generation));
            }
            GroupOp::Committed { .. } => st.group_commits += 1,
            GroupOp::Delivered { offsets, .. } => st.group_delivered += offsets.len() as u64,
            _ => {}
        }
    }
}

/// The partition index of a store directory (`topics/<name>-<index>.<id>`) of our topic.
fn partition_of_dir(dir: &str) -> Option<u32> {
    let rest = dir.strip_prefix("topics/")?;
    let (name_index, _) = rest.rsplit_once('.')?;
    let (name, index) = name_index.rsplit_once('-')?;
    (name == TOPIC).then(|| index.parse().ok()).flatten()
}

fn job_is_sync(job: &StorageJob) -> bool {
    match job {
        StorageJob::Raft(r) => matches!(
            r,
            StorageRequest::Sync { .. } | StorageRequest::SaveHardState(_)
        ),
        StorageJob::Read { .. } | StorageJob::OffsetForTimestamp { .. } => false,
        _ => true,
    }
}

fn job_kind(job: &StorageJob) -> &'static str {
    match job {
        StorageJob::Raft(r) => match r {
            StorageRequest::SaveHardState(_) => "hard-state",
            StorageRequest::Append { .. } => "append",
            StorageRequest::Truncate { .. } => "truncate",
            StorageRequest::Sync { .. } => "sync",
            StorageRequest::ReadEntries { .. } => "read-entries",
        },
        StorageJob::Open { .. } => "open",
        StorageJob::OpenMetadata => "open-metadata",
        StorageJob::SaveCommit(_) => "save-commit",
        StorageJob::Read { .. } => "read",
        StorageJob::OffsetForTimestamp { .. } => "timestamp",
        StorageJob::Housekeeping { .. } => "housekeeping",
        StorageJob::Delete => "delete",
        StorageJob::SaveCatalogue(_) => "catalogue",
        #[allow(unreachable_patterns)]
        _ => "other",
    }
}

fn target_index(t: StorageTarget) -> u64 {
    match t {
        StorageTarget::Broker => 0,
        StorageTarget::Metadata => 1,
        StorageTarget::Partition(id) => id.0 + 1,
    }
}

impl crate::faults::FaultWorld for KafkaSim {
    fn now(&self) -> u64 {
        self.now
    }
    fn node_count(&self) -> usize {
        self.nodes.len()
    }
    fn resolve(&mut self, target: Target) -> Option<usize> {
        KafkaSim::resolve(self, target)
    }
    fn net(&mut self) -> &mut crate::network::Network {
        &mut self.net
    }
    fn fault_rng(&mut self) -> &mut DetRng {
        &mut self.fault_rng
    }
    fn record(&mut self, record: Record) {
        self.trace.record(self.now, record);
    }
    fn crash(&mut self, i: usize) {
        KafkaSim::crash(self, i);
    }
    fn restart(&mut self, i: usize) {
        KafkaSim::restart(self, i);
    }
    fn pause(&mut self, i: usize) {
        KafkaSim::pause(self, i);
    }
    fn resume(&mut self, i: usize) {
        KafkaSim::resume(self, i);
    }
    fn set_clock_rate(&mut self, i: usize, ppm: i64) {
        self.nodes[i].clock.set_rate(self.now, ppm);
        self.nodes[i].timer_at = None;
        self.reschedule_timer(i);
    }
    fn jump_wall_clock(&mut self, i: usize, ms: i64) {
        self.nodes[i].clock.jump_wall(ms);
    }
    fn slow_disk(&mut self, i: usize, factor: u64) {
        self.nodes[i].device.slow_factor = factor;
    }
    fn disrupting(&mut self, i: usize) {
        self.leader_fault(i);
    }
}
