//! The simulator proper: one event loop driving N Raft nodes, their disks and clocks, a network
//! and a client workload, with a fault plan, checkers after every event, and two phases.
//!
//! Safety phase: the fault plan runs; every checker runs after every event. Liveness phase:
//! the network heals, faults stop, every crashed node restarts and every paused one resumes;
//! clients must get `liveness_acks` appends acknowledged, then stop, and the cluster must
//! converge (one leader, every log equal and committed) within `liveness_ms`.
//!
//! A run is a pure function of its config and seed: no wall clock, no OS randomness, no hash
//! iteration. `Report::trace_hash` fingerprints the run.

use crate::checkers::{
    AcknowledgedDurable, CheckerKind, CommitMonotonic, CommittedPrefix, DefiniteFailures,
    ElectionSafety, NoDuplicates, Violation,
};
use crate::clock::NodeClock;
use crate::config::SimConfig;
use crate::disk::NodeDisk;
use crate::faults::{FaultAction, Target};
use crate::history::{decode_value, encode_value, value_of, History, Op, OpOutcome};
use crate::network::Network;
use crate::queue::EventQueue;
use crate::seeds::{stream, Stream};
use crate::trace::{Record, Trace};
use sluice_core::ids::{LogIndex, NodeId};
use sluice_core::raft::{
    Entry, EntryKind, Event, Input, Message, Output, ProposalId, ProposalOutcome, Raft, Role,
    StorageCompletion, StorageRequest,
};
use sluice_core::rng::DetRng;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

const MS: u64 = 1_000_000;
const US: u64 = 1_000;
const CHECK_EVERY: u64 = 10 * MS;

#[derive(Debug)]
enum Ev {
    Peer {
        from: u32,
        to: u32,
        msg: Message,
    },
    Request {
        node: u32,
        client: u32,
        op: u64,
    },
    Reply {
        client: u32,
        op: u64,
        outcome: ProposalOutcome,
    },
    ClientTimeout {
        client: u32,
        op: u64,
    },
    ClientGo {
        client: u32,
    },
    Timer {
        node: u32,
    },
    Storage {
        node: u32,
        incarnation: u32,
        req: StorageRequest,
    },
    Fault {
        index: usize,
    },
    /// A node that stopped on a storage error comes back.
    AutoRestart {
        node: u32,
        incarnation: u32,
    },
    Liveness,
    Check,
}

#[derive(Debug)]
struct SimNode {
    raft: Option<Raft>,
    paused: bool,
    incarnation: u32,
    disk: NodeDisk,
    clock: NodeClock,
    timer_at: Option<u64>,
    deferred: Vec<Ev>,
    seen_commit: u64,
}

#[derive(Debug)]
struct Client {
    target: u32,
    next_op: u64,
    pending: Option<(u64, usize)>,
    stopped: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Safety,
    Liveness {
        started: u64,
        acked_at_start: u64,
        clients_stopped: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// A checker caught a safety violation.
    Safety(Violation),
    /// A state machine assertion fired: also a safety failure.
    Panic(String),
    /// The cluster did not converge in the liveness phase.
    Liveness(String),
    /// The run exercised too little to mean anything.
    Gate(String),
}

impl Verdict {
    /// Process exit code for this verdict: 0 pass, 1 safety, 2 liveness (and gates).
    pub fn exit_code(&self) -> i32 {
        match self {
            Verdict::Pass => 0,
            Verdict::Safety(_) | Verdict::Panic(_) => 1,
            Verdict::Liveness(_) | Verdict::Gate(_) => 2,
        }
    }

    pub fn is_pass(&self) -> bool {
        *self == Verdict::Pass
    }

    pub fn checker(&self) -> Option<CheckerKind> {
        match self {
            Verdict::Safety(v) => Some(v.checker),
            _ => None,
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Pass => write!(f, "PASS"),
            Verdict::Safety(v) => write!(f, "SAFETY VIOLATION {v}"),
            Verdict::Panic(m) => write!(f, "SAFETY VIOLATION (assertion) {m}"),
            Verdict::Liveness(m) => write!(f, "LIVENESS FAILURE {m}"),
            Verdict::Gate(m) => write!(f, "GATE FAILED {m}"),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events delivered to state machines: messages, timers, storage completions.
    pub events: u64,
    /// Client-side and fault events (not counted in `events`).
    pub other_events: u64,
    pub sim_ns: u64,
    pub acked: u64,
    pub failed: u64,
    pub unknown: u64,
    pub leaders_elected: u64,
    pub crashes: u64,
    pub truncations: u64,
    pub messages_dropped: u64,
    /// Injected storage errors that stopped a node.
    pub storage_errors: u64,
    /// Restarts whose recovery cut a torn or corrupt log tail.
    pub torn_tails_cut: u64,
    pub final_commit: u64,
}

#[derive(Clone, Debug)]
pub struct Report {
    pub verdict: Verdict,
    pub stats: Stats,
    pub trace_hash: u64,
    pub trace_tail: Vec<String>,
}

#[derive(Debug)]
pub struct Simulation {
    cfg: SimConfig,
    now: u64,
    queue: EventQueue<Ev>,
    nodes: Vec<SimNode>,
    net: Network,
    disk_rng: DetRng,
    workload_rng: DetRng,
    fault_rng: DetRng,
    raft_rng: DetRng,
    clients: Vec<Client>,
    history: History,
    canonical: Vec<Entry>,
    committed_values: BTreeMap<u64, u64>,
    election_safety: ElectionSafety,
    committed_prefix: CommittedPrefix,
    commit_monotonic: CommitMonotonic,
    acknowledged: AcknowledgedDurable,
    no_duplicates: NoDuplicates,
    definite_failures: DefiniteFailures,
    trace: Trace,
    stats: Stats,
    phase: Phase,
    verdict: Option<Verdict>,
    outputs: Vec<Output>,
    arrivals: Vec<u64>,
}

impl Simulation {
    pub fn new(cfg: SimConfig) -> Result<Simulation, String> {
        cfg.validate()?;
        let n = cfg.nodes as usize;
        let mut clock_rng = stream(cfg.seed, Stream::Clock);
        let nodes = (0..n)
            .map(|_| {
                let drift = cfg.clock.drift_ppm_max;
                let skew = cfg.clock.wall_skew_ms_max;
                let rate = clock_rng.range_inclusive(0, 2 * drift as u64) as i64 - drift;
                let wall = clock_rng.range_inclusive(0, 2 * skew as u64) as i64 - skew;
                let origin = clock_rng.range(0, 1 << 40);
                SimNode {
                    raft: None,
                    paused: false,
                    incarnation: 0,
                    disk: NodeDisk::new(),
                    clock: NodeClock::new(origin, rate, wall),
                    timer_at: None,
                    deferred: Vec::new(),
                    seen_commit: 0,
                }
            })
            .collect();
        let clients = (0..cfg.workload.clients)
            .map(|c| Client {
                target: c % cfg.nodes,
                next_op: 1,
                pending: None,
                stopped: false,
            })
            .collect();
        Ok(Simulation {
            now: 0,
            queue: EventQueue::default(),
            nodes,
            net: Network::new(n, cfg.network.clone(), stream(cfg.seed, Stream::Network)),
            disk_rng: stream(cfg.seed, Stream::Disk),
            workload_rng: stream(cfg.seed, Stream::Workload),
            fault_rng: stream(cfg.seed, Stream::Faults),
            raft_rng: stream(cfg.seed, Stream::Raft),
            clients,
            history: History::default(),
            canonical: Vec::new(),
            committed_values: BTreeMap::new(),
            election_safety: ElectionSafety::default(),
            committed_prefix: CommittedPrefix,
            commit_monotonic: CommitMonotonic::new(n),
            acknowledged: AcknowledgedDurable::default(),
            no_duplicates: NoDuplicates::default(),
            definite_failures: DefiniteFailures::default(),
            trace: Trace::default(),
            stats: Stats::default(),
            phase: Phase::Safety,
            verdict: None,
            outputs: Vec::new(),
            arrivals: Vec::new(),
            cfg,
        })
    }

    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    /// Runs to the end and reports. Never panics: a state machine assertion becomes a verdict.
    pub fn run(mut self) -> Report {
        let result = catch_unwind(AssertUnwindSafe(|| self.run_inner()));
        if let Err(panic) = result {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "non-string panic".into());
            self.verdict = Some(Verdict::Panic(msg));
        }
        self.stats.sim_ns = self.now;
        self.stats.leaders_elected = self.election_safety.leaders_elected() as u64;
        self.stats.acked = self.history.count(|o| matches!(o, OpOutcome::Ok { .. })) as u64;
        self.stats.failed = self.history.count(|o| *o == OpOutcome::Failed) as u64;
        self.stats.unknown =
            self.history
                .count(|o| matches!(o, OpOutcome::Unknown | OpOutcome::Pending)) as u64;
        self.stats.final_commit = self.canonical.len() as u64;
        Report {
            verdict: self.verdict.clone().unwrap_or(Verdict::Pass),
            stats: self.stats.clone(),
            trace_hash: self.trace.hash(),
            trace_tail: self.trace.tail(60),
        }
    }

    fn run_inner(&mut self) {
        for i in 0..self.nodes.len() {
            self.start_node(i);
        }
        for c in 0..self.clients.len() as u32 {
            let at = self.workload_rng.range(0, 10 * MS);
            self.queue.push(at, Ev::ClientGo { client: c });
        }
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

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Peer { from, to, msg } => self.on_peer(from, to, msg),
            Ev::Request { node, client, op } => self.on_request(node, client, op),
            Ev::Reply {
                client,
                op,
                outcome,
            } => self.on_reply(client, op, outcome),
            Ev::ClientTimeout { client, op } => self.on_client_timeout(client, op),
            Ev::ClientGo { client } => self.on_client_go(client),
            Ev::Timer { node } => self.on_timer(node),
            Ev::Storage {
                node,
                incarnation,
                req,
            } => self.on_storage(node, incarnation, req),
            Ev::Fault { index } => self.on_fault(index),
            Ev::AutoRestart { node, incarnation } => {
                if self.nodes[node as usize].incarnation == incarnation {
                    self.restart(node as usize);
                }
            }
            Ev::Liveness => self.on_liveness_start(),
            Ev::Check => self.on_check(),
        }
    }

    // ----- node events -----

    fn on_peer(&mut self, from: u32, to: u32, msg: Message) {
        let node = &mut self.nodes[to as usize];
        if node.raft.is_none() {
            self.stats.messages_dropped += 1;
            self.trace.record(
                self.now,
                Record::Drop {
                    from: from + 1,
                    to: to + 1,
                    kind: msg.kind(),
                    why: "down",
                },
            );
            return;
        }
        if node.paused {
            node.deferred.push(Ev::Peer { from, to, msg });
            return;
        }
        if self.net.is_blocked(from as usize, to as usize) {
            self.stats.messages_dropped += 1;
            self.trace.record(
                self.now,
                Record::Drop {
                    from: from + 1,
                    to: to + 1,
                    kind: msg.kind(),
                    why: "partition",
                },
            );
            return;
        }
        let (term, a, b) = summarize(&msg);
        self.trace.record(
            self.now,
            Record::Deliver {
                from: from + 1,
                to: to + 1,
                kind: msg.kind(),
                term,
                a,
                b,
            },
        );
        let now = self.nodes[to as usize].clock.now(self.now);
        self.input(
            to as usize,
            Input::Receive {
                now,
                from: NodeId(from + 1),
                message: msg,
            },
        );
    }

    fn on_timer(&mut self, node: u32) {
        let n = &mut self.nodes[node as usize];
        if n.timer_at != Some(self.now) || n.raft.is_none() {
            return; // Superseded or the node is down.
        }
        if n.paused {
            n.deferred.push(Ev::Timer { node });
            return;
        }
        n.timer_at = None;
        self.trace
            .record(self.now, Record::Timer { node: node + 1 });
        let now = n.clock.now(self.now);
        self.input(node as usize, Input::Timeout(now));
    }

    fn on_storage(&mut self, node: u32, incarnation: u32, req: StorageRequest) {
        let n = &mut self.nodes[node as usize];
        if n.incarnation != incarnation || n.raft.is_none() {
            return; // The process that asked is gone; the request died with it.
        }
        if n.paused {
            n.deferred.push(Ev::Storage {
                node,
                incarnation,
                req,
            });
            return;
        }
        let wall_ms = n.clock.now(self.now).wall_ms;
        let completion = match n
            .disk
            .complete(req, &self.cfg.disk, &mut self.disk_rng, wall_ms)
        {
            Ok(c) => c,
            Err(_) => {
                // Fail-stop: a node whose storage failed stops and recovers from its disk.
                self.stats.storage_errors += 1;
                let arg = self.stats.storage_errors as i64;
                self.trace.record(
                    self.now,
                    Record::Fault {
                        text: "storage error, node stops",
                        node: node + 1,
                        arg,
                    },
                );
                self.crash(node as usize);
                let incarnation = self.nodes[node as usize].incarnation;
                let at = self.now + self.workload_rng.range_inclusive(50, 500) * MS;
                self.queue.push(at, Ev::AutoRestart { node, incarnation });
                return;
            }
        };
        let (kind, index) = match &completion {
            StorageCompletion::HardStateSaved(hs) => ("hard-state", hs.term.0),
            StorageCompletion::Appended { last } => ("appended", last.0),
            StorageCompletion::Truncated { from } => ("truncated", from.0),
            StorageCompletion::Synced { up_to } => ("synced", up_to.0),
            StorageCompletion::EntriesRead { from, .. } => ("entries-read", from.0),
        };
        self.trace.record(
            self.now,
            Record::Storage {
                node: node + 1,
                kind,
                index,
            },
        );
        let now = self.nodes[node as usize].clock.now(self.now);
        self.input(node as usize, Input::Storage { now, completion });
    }

    /// Hands one input to a node, routes its outputs, and runs the per-event checks.
    fn input(&mut self, i: usize, input: Input) {
        self.stats.events += 1;
        let mut outputs = std::mem::take(&mut self.outputs);
        {
            let raft = self.nodes[i]
                .raft
                .as_mut()
                .expect("input to a running node");
            raft.handle_input(input);
            while let Some(o) = raft.poll_output() {
                outputs.push(o);
            }
        }
        for o in outputs.drain(..) {
            self.route(i, o);
        }
        self.outputs = outputs;
        self.check_commits(i);
        self.reschedule_timer(i);
    }

    fn route(&mut self, i: usize, output: Output) {
        match output {
            Output::Send { to, message } => {
                let to = to.0 - 1;
                let mut arrivals = std::mem::take(&mut self.arrivals);
                self.net.send_peer(self.now, i, to as usize, &mut arrivals);
                if arrivals.is_empty() {
                    self.stats.messages_dropped += 1;
                }
                if let Some((&last, rest)) = arrivals.split_last() {
                    for &at in rest {
                        self.queue.push(
                            at,
                            Ev::Peer {
                                from: i as u32,
                                to,
                                msg: message.clone(),
                            },
                        );
                    }
                    self.queue.push(
                        last,
                        Ev::Peer {
                            from: i as u32,
                            to,
                            msg: message,
                        },
                    );
                }
                self.arrivals = arrivals;
            }
            Output::Storage(req) => {
                let node = &mut self.nodes[i];
                let at = node
                    .disk
                    .schedule(self.now, &req, &self.cfg.disk, &mut self.disk_rng);
                let incarnation = node.incarnation;
                self.queue.push(
                    at,
                    Ev::Storage {
                        node: i as u32,
                        incarnation,
                        req,
                    },
                );
            }
            Output::Proposal { id, outcome } => {
                let client = (id.0 >> 40) as u32;
                let op = id.0 & ((1 << 40) - 1);
                if let Some(at) = self.net.send_client(self.now) {
                    self.queue.push(
                        at,
                        Ev::Reply {
                            client,
                            op,
                            outcome,
                        },
                    );
                }
            }
            Output::Event(Event::RoleChanged { term, role, .. }) => {
                let name = match role {
                    Role::Follower => "follower",
                    Role::PreCandidate => "pre-candidate",
                    Role::Candidate => "candidate",
                    Role::Leader => "LEADER",
                };
                self.trace.record(
                    self.now,
                    Record::Role {
                        node: i as u32 + 1,
                        term: term.0,
                        role: name,
                    },
                );
                // Leaders are always recorded (for stats); a violation counts only if enabled.
                if role == Role::Leader {
                    let result = self.election_safety.on_leader(term.0, i as u32 + 1);
                    if let (Err(e), true) = (
                        result,
                        self.cfg.checkers.contains(CheckerKind::ElectionSafety),
                    ) {
                        self.violate(CheckerKind::ElectionSafety, e);
                    }
                }
            }
            Output::Event(Event::Truncated { from, removed }) => {
                self.stats.truncations += 1;
                self.trace.record(
                    self.now,
                    Record::Truncated {
                        node: i as u32 + 1,
                        from: from.0,
                        removed,
                    },
                );
            }
            // The simulator never compacts a log, so no follower ever needs a snapshot.
            Output::Event(Event::FollowerNeedsSnapshot { .. }) => {}
            Output::Event(Event::LostQuorum { term }) => {
                self.trace.record(
                    self.now,
                    Record::Role {
                        node: i as u32 + 1,
                        term: term.0,
                        role: "lost-quorum",
                    },
                );
            }
        }
    }

    fn check_commits(&mut self, i: usize) {
        let node = i as u32 + 1;
        let raft = self.nodes[i].raft.as_ref().expect("running");
        let commit = raft.commit_index().0;
        if self.cfg.checkers.contains(CheckerKind::CommitMonotonic) {
            if let Err(e) = self.commit_monotonic.observe(i, commit) {
                self.violate(CheckerKind::CommitMonotonic, e);
                return;
            }
        }
        let seen = self.nodes[i].seen_commit.min(commit);
        if commit == seen {
            self.nodes[i].seen_commit = commit;
            return;
        }
        self.trace.record(
            self.now,
            Record::Commit {
                node,
                index: commit,
            },
        );
        let raft = self.nodes[i].raft.as_ref().expect("running");
        for index in seen + 1..=commit {
            let entry = raft
                .entry(LogIndex(index))
                .expect("committed entries exist");
            if index as usize > self.canonical.len() {
                self.canonical.push(entry.clone());
            } else if self.cfg.checkers.contains(CheckerKind::CommittedPrefix) {
                let canonical = &self.canonical[index as usize - 1];
                if let Err(e) = self
                    .committed_prefix
                    .on_committed(node, index, entry, canonical)
                {
                    self.violate(CheckerKind::CommittedPrefix, e);
                    return;
                }
            }
            if entry.kind != EntryKind::Normal {
                continue;
            }
            let Some(value) = decode_value(&entry.data) else {
                continue;
            };
            self.committed_values.entry(value).or_insert(index);
            if self.cfg.checkers.contains(CheckerKind::NoDuplicates) {
                if let Err(e) = self.no_duplicates.on_committed(node, index, value) {
                    self.violate(CheckerKind::NoDuplicates, e);
                    return;
                }
            }
            if self.cfg.checkers.contains(CheckerKind::DefiniteFailures) {
                if let Err(e) = self.definite_failures.on_committed(node, index, value) {
                    self.violate(CheckerKind::DefiniteFailures, e);
                    return;
                }
            }
        }
        self.nodes[i].seen_commit = commit;
    }

    fn reschedule_timer(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let Some(raft) = node.raft.as_ref() else {
            return;
        };
        match raft.poll_timeout() {
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

    fn violate(&mut self, checker: CheckerKind, detail: String) {
        if self.verdict.is_none() {
            self.verdict = Some(Verdict::Safety(Violation {
                checker,
                at_ns: self.now,
                detail,
            }));
        }
    }

    // ----- processes -----

    fn start_node(&mut self, i: usize) {
        let voters: Vec<NodeId> = (1..=self.cfg.nodes).map(NodeId).collect();
        let cfg = self.cfg.raft.config(NodeId(i as u32 + 1), voters);
        let rng = DetRng::new(self.raft_rng.next_u64());
        let node = &mut self.nodes[i];
        let now = node.clock.now(self.now);
        let (recovered, report) =
            match node
                .disk
                .recover(&self.cfg.disk, &mut self.disk_rng, now.wall_ms)
            {
                Ok(r) => r,
                // No faults are injected into recovery or into synced data, so this is a bug.
                Err(e) => panic!("n{} could not recover its storage: {e}", i + 1),
            };
        let raft = Raft::new(cfg, recovered, rng, now).expect("validated config");
        node.raft = Some(raft);
        node.paused = false;
        node.seen_commit = 0;
        node.timer_at = None;
        for (_, _, dropped, _) in &report.truncated {
            self.stats.torn_tails_cut += 1;
            let arg = *dropped as i64;
            self.trace.record(
                self.now,
                Record::Fault {
                    text: "recovery cut a torn log tail (bytes)",
                    node: i as u32 + 1,
                    arg,
                },
            );
        }
        self.commit_monotonic.on_restart(i);
        self.reschedule_timer(i);
    }

    fn crash(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if node.raft.is_none() {
            return;
        }
        node.raft = None;
        node.paused = false;
        node.deferred.clear();
        node.incarnation += 1;
        node.timer_at = None;
        let lost = node.disk.crash(&self.cfg.disk, &mut self.disk_rng);
        self.stats.crashes += 1;
        self.trace.record(
            self.now,
            Record::Fault {
                text: "crash (unsynced entries lost)",
                node: i as u32 + 1,
                arg: lost as i64,
            },
        );
    }

    fn restart(&mut self, i: usize) {
        if self.nodes[i].raft.is_some() {
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
        if self.nodes[i].raft.is_some() && !self.nodes[i].paused {
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
                // A deferred timer fires now, with whatever deadline the node has.
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

    // ----- clients -----

    fn on_client_go(&mut self, c: u32) {
        self.stats.other_events += 1;
        let client = &mut self.clients[c as usize];
        if client.stopped || client.pending.is_some() {
            return;
        }
        let op = client.next_op;
        client.next_op += 1;
        let node = client.target;
        let value = value_of(c, op);
        client.pending = Some((op, self.history.ops.len()));
        self.history.ops.push(Op {
            client: c,
            value,
            node: node + 1,
            invoked_at: self.now,
            completed_at: 0,
            outcome: OpOutcome::Pending,
        });
        self.trace.record(
            self.now,
            Record::Propose {
                node: node + 1,
                client: c,
                op,
            },
        );
        if let Some(at) = self.net.send_client(self.now) {
            self.queue.push(
                at,
                Ev::Request {
                    node,
                    client: c,
                    op,
                },
            );
        }
        let timeout = self.now + self.cfg.workload.request_timeout_ms * MS;
        self.queue
            .push(timeout, Ev::ClientTimeout { client: c, op });
    }

    fn on_request(&mut self, node: u32, client: u32, op: u64) {
        self.stats.other_events += 1;
        let n = &mut self.nodes[node as usize];
        if n.raft.is_none() {
            // Connection refused: the request definitely did not reach a log.
            if let Some(at) = self.net.send_client(self.now) {
                let outcome = ProposalOutcome::NotLeader { leader: None };
                self.queue.push(
                    at,
                    Ev::Reply {
                        client,
                        op,
                        outcome,
                    },
                );
            }
            return;
        }
        if n.paused {
            n.deferred.push(Ev::Request { node, client, op });
            return;
        }
        let value = value_of(client, op);
        let (lo, hi) = self.cfg.workload.payload_bytes;
        let padding = self.workload_rng.range_inclusive(lo, hi.max(lo)) as usize;
        let now = n.clock.now(self.now);
        let input = Input::Propose {
            now,
            id: ProposalId(value),
            data: encode_value(value, padding),
        };
        self.input(node as usize, input);
    }

    fn on_reply(&mut self, c: u32, op: u64, outcome: ProposalOutcome) {
        self.stats.other_events += 1;
        let Some((pending_op, h)) = self.clients[c as usize].pending else {
            return;
        };
        if pending_op != op {
            return; // A late reply to an op that already timed out.
        }
        let value = self.history.ops[h].value;
        let (result, label, index) = match outcome {
            ProposalOutcome::Committed { index, term } => (
                OpOutcome::Ok {
                    index: index.0,
                    term: term.0,
                },
                "ok",
                index.0,
            ),
            ProposalOutcome::NotLeader { leader } => {
                self.clients[c as usize].target = match leader {
                    Some(l) => l.0 - 1,
                    None => self.workload_rng.range(0, u64::from(self.cfg.nodes)) as u32,
                };
                (OpOutcome::Failed, "not-leader", 0)
            }
            ProposalOutcome::Busy => (OpOutcome::Failed, "busy", 0),
            ProposalOutcome::Unknown => {
                self.clients[c as usize].target =
                    self.workload_rng.range(0, u64::from(self.cfg.nodes)) as u32;
                (OpOutcome::Unknown, "unknown", 0)
            }
        };
        self.trace.record(
            self.now,
            Record::ClientResult {
                client: c,
                op,
                outcome: label,
                index,
            },
        );
        self.complete_op(c, h, result);
        match result {
            OpOutcome::Ok { index, .. } => {
                if self.cfg.checkers.contains(CheckerKind::AcknowledgedDurable) {
                    if let Err(e) = self.acknowledged.on_ack(value, index, &self.canonical) {
                        self.violate(CheckerKind::AcknowledgedDurable, e);
                    }
                } else {
                    let _ = self.acknowledged.on_ack(value, index, &self.canonical);
                }
            }
            OpOutcome::Failed => {
                self.definite_failures.on_failed(value);
                if let Some(&index) = self.committed_values.get(&value) {
                    if self.cfg.checkers.contains(CheckerKind::DefiniteFailures) {
                        let e = format!("v{value:#x} was committed at i{index} but then reported as definitely failed");
                        self.violate(CheckerKind::DefiniteFailures, e);
                    }
                }
            }
            _ => {}
        }
    }

    fn on_client_timeout(&mut self, c: u32, op: u64) {
        self.stats.other_events += 1;
        let Some((pending_op, h)) = self.clients[c as usize].pending else {
            return;
        };
        if pending_op != op {
            return;
        }
        self.trace.record(
            self.now,
            Record::ClientResult {
                client: c,
                op,
                outcome: "timeout",
                index: 0,
            },
        );
        self.clients[c as usize].target =
            self.workload_rng.range(0, u64::from(self.cfg.nodes)) as u32;
        self.complete_op(c, h, OpOutcome::Unknown);
    }

    fn complete_op(&mut self, c: u32, h: usize, outcome: OpOutcome) {
        self.history.ops[h].outcome = outcome;
        self.history.ops[h].completed_at = self.now;
        let client = &mut self.clients[c as usize];
        client.pending = None;
        if !client.stopped {
            let (lo, hi) = self.cfg.workload.think_us;
            let at = self.now + self.workload_rng.range_inclusive(lo, hi.max(lo)) * US;
            self.queue.push(at, Ev::ClientGo { client: c });
        }
    }

    // ----- faults -----

    fn running(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].raft.is_some())
            .collect()
    }

    fn current_leader(&self) -> Option<usize> {
        (0..self.nodes.len())
            .filter_map(|i| self.nodes[i].raft.as_ref().map(|r| (i, r)))
            .filter(|(_, r)| r.role() == Role::Leader)
            .max_by_key(|(_, r)| r.term())
            .map(|(i, _)| i)
    }

    fn resolve(&mut self, target: Target) -> Option<usize> {
        let pick = |rng: &mut DetRng, v: &[usize]| {
            if v.is_empty() {
                None
            } else {
                Some(v[rng.index(v.len())])
            }
        };
        match target {
            Target::Node(n) => (n < self.cfg.nodes).then_some(n as usize),
            Target::Leader | Target::Controller | Target::Coordinator => {
                match self.current_leader() {
                    Some(l) => Some(l),
                    None => {
                        let r = self.running();
                        pick(&mut self.fault_rng, &r)
                    }
                }
            }
            Target::Follower => {
                let leader = self.current_leader();
                let r: Vec<usize> = self
                    .running()
                    .into_iter()
                    .filter(|i| Some(*i) != leader)
                    .collect();
                pick(&mut self.fault_rng, &r)
            }
            Target::Random => {
                let r = self.running();
                pick(&mut self.fault_rng, &r)
            }
            Target::Crashed => {
                let r: Vec<usize> = (0..self.nodes.len())
                    .filter(|&i| self.nodes[i].raft.is_none())
                    .collect();
                pick(&mut self.fault_rng, &r)
            }
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

    // ----- liveness -----

    fn on_liveness_start(&mut self) {
        self.trace.record(
            self.now,
            Record::Phase {
                name: "liveness: heal, restart, stop faults",
            },
        );
        let acked = self.history.count(|o| matches!(o, OpOutcome::Ok { .. })) as u64;
        self.phase = Phase::Liveness {
            started: self.now,
            acked_at_start: acked,
            clients_stopped: false,
        };
        self.net.heal();
        self.net.params.loss_ppm = 0;
        self.net.params.dup_ppm = 0;
        self.net.params.client_drop_ppm = 0;
        for i in 0..self.nodes.len() {
            self.nodes[i].disk.slow_factor = 1;
            self.resume(i);
            self.restart(i);
        }
        self.queue.push(self.now, Ev::Check);
    }

    fn on_check(&mut self) {
        let Phase::Liveness {
            started,
            acked_at_start,
            clients_stopped,
        } = self.phase
        else {
            return;
        };
        if !clients_stopped {
            let acked = self.history.count(|o| matches!(o, OpOutcome::Ok { .. })) as u64;
            if acked >= acked_at_start + self.cfg.workload.liveness_acks {
                self.trace.record(
                    self.now,
                    Record::Phase {
                        name: "liveness: clients stop",
                    },
                );
                for c in &mut self.clients {
                    c.stopped = true;
                }
                self.phase = Phase::Liveness {
                    started,
                    acked_at_start,
                    clients_stopped: true,
                };
            }
        } else if self.clients.iter().all(|c| c.pending.is_none()) && self.converged() {
            self.trace
                .record(self.now, Record::Phase { name: "converged" });
            self.finish();
            return;
        }
        if self.now > started + self.cfg.liveness_ms * MS {
            let state = self.describe_state();
            let what = if clients_stopped {
                "the cluster did not converge"
            } else {
                "clients made no progress"
            };
            self.verdict = Some(Verdict::Liveness(format!(
                "{what} within {}ms of healing: {state}",
                self.cfg.liveness_ms
            )));
            return;
        }
        self.queue.push(self.now + CHECK_EVERY, Ev::Check);
    }

    fn converged(&self) -> bool {
        let Some(l) = self.current_leader() else {
            return false;
        };
        let leader = self.nodes[l].raft.as_ref().expect("leader runs");
        let last = leader.last_index();
        leader.commit_index() == last
            && self.nodes.iter().all(|n| {
                n.raft.as_ref().is_some_and(|r| {
                    r.term() == leader.term()
                        && r.leader() == Some(leader.id())
                        && r.last_index() == last
                        && r.commit_index() == last
                })
            })
    }

    fn describe_state(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| match &n.raft {
                None => format!("n{} down", i + 1),
                Some(r) => format!(
                    "n{} {:?} t{} leader={:?} last={} commit={} durable={}{}",
                    i + 1,
                    r.role(),
                    r.term().0,
                    r.leader(),
                    r.last_index().0,
                    r.commit_index().0,
                    r.durable_index().0,
                    if n.paused { " paused" } else { "" }
                ),
            })
            .collect();
        nodes.join("; ")
    }

    /// End-of-run checks over complete logs, then the gates.
    fn finish(&mut self) {
        // The simulator never compacts, so every log starts at index 1.
        let owned: Vec<(u32, Vec<Entry>)> = self
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.raft.as_ref().map(|r| (i as u32 + 1, r.log().entries())))
            .collect();
        let logs: Vec<(u32, &[Entry])> = owned.iter().map(|(n, e)| (*n, e.as_slice())).collect();
        let mut verdict = None;
        if self.cfg.checkers.contains(CheckerKind::CommittedPrefix) {
            if let Err(e) = self.committed_prefix.final_check(&logs) {
                verdict = Some((CheckerKind::CommittedPrefix, e));
            }
        }
        if verdict.is_none() && self.cfg.checkers.contains(CheckerKind::AcknowledgedDurable) {
            for (node, log) in &logs {
                if let Err(e) = self.acknowledged.final_check(*node, log) {
                    verdict = Some((CheckerKind::AcknowledgedDurable, e));
                    break;
                }
            }
        }
        if let Some((checker, detail)) = verdict {
            self.violate(checker, detail);
            return;
        }
        let acked = self.acknowledged.acknowledged() as u64;
        if acked < self.cfg.min_acked {
            self.verdict = Some(Verdict::Gate(format!(
                "only {acked} appends were acknowledged (gate: {})",
                self.cfg.min_acked
            )));
            return;
        }
        self.verdict = Some(Verdict::Pass);
    }
}

fn summarize(msg: &Message) -> (u64, u64, u64) {
    match msg {
        Message::PreVote { term, last } | Message::Vote { term, last, .. } => {
            (term.0, last.index.0, last.term.0)
        }
        Message::PreVoteResponse { term, granted } | Message::VoteResponse { term, granted } => {
            (term.0, u64::from(*granted), 0)
        }
        Message::Append(a) => (
            a.term.0,
            a.prev.index.0,
            a.prev.index.0 + a.entries.len() as u64,
        ),
        Message::AppendResponse { term, result } => match result {
            sluice_core::raft::AppendResult::Accepted { match_index } => (term.0, 1, match_index.0),
            sluice_core::raft::AppendResult::Rejected { next_hint, .. } => (term.0, 0, next_hint.0),
        },
        Message::TimeoutNow { term } => (term.0, 0, 0),
    }
}

impl crate::faults::FaultWorld for Simulation {
    fn now(&self) -> u64 {
        self.now
    }
    fn node_count(&self) -> usize {
        self.nodes.len()
    }
    fn resolve(&mut self, target: Target) -> Option<usize> {
        Simulation::resolve(self, target)
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
        Simulation::crash(self, i);
    }
    fn restart(&mut self, i: usize) {
        Simulation::restart(self, i);
    }
    fn pause(&mut self, i: usize) {
        Simulation::pause(self, i);
    }
    fn resume(&mut self, i: usize) {
        Simulation::resume(self, i);
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
        self.nodes[i].disk.slow_factor = factor;
    }
}
