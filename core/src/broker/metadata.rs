//! The cluster metadata: a Raft group over the configured voters replicates the metadata log
//! (broker registrations and fencing, topics with their replica assignment and configs,
//! producer-id blocks); every broker applies it, in order, to its [`Catalogue`].
//!
//! Roles, all inside one `Broker`:
//! - Controller: the broker leading the metadata group. It receives every broker's heartbeat
//!   (registering new or restarted brokers, fencing those whose heartbeats stop, unfencing them
//!   when they return), turns admin operations into records (validating them against its
//!   image and assigning replicas over the live brokers), and answers a heartbeat with the
//!   committed entries the broker has not applied yet and the table of partition leaders.
//! - Every broker: heartbeats to the controller, forwards admin operations to it, and applies
//!   committed entries: voters from their own Raft log, the others from heartbeat replies
//!   (they follow the log without voting).
//!
//! Partition leadership is not in the log: each partition's own Raft group elects its leader,
//! leaders report it in their heartbeats, and the controller hands the table back to everyone.

use super::peer::{
    encode_records, Envelope, ForwardResult, GroupKey, Heartbeat, HeartbeatReply, LeaderInfo,
    LeaderReport, LeaderTable, PartitionKey, PeerBody,
};
use super::topics::{BrokerInfo, Catalogue, Topic, TopicConfig};
use super::{random_id, random_uuid, Broker, Event, Output, StorageJob, StorageTarget};
use crate::ids::{LogIndex, NodeId};
use crate::protocol::codes;
use crate::raft::{self, ProposalId, Raft};
use crate::time::Instant;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Producer ids a broker takes from the controller at a time.
const PRODUCER_ID_BLOCK: i64 = 1000;
/// Committed entries sent in one heartbeat reply.
const ENTRIES_PER_REPLY: u64 = 256;
/// Forwarded results the controller remembers, so a retried forward is not applied twice.
const REMEMBERED_RESULTS: usize = 1024;

/// One change to the metadata. An entry of the metadata log is a list of these, applied
/// atomically.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaRecord {
    InitCluster {
        cluster_id: String,
    },
    RegisterBroker {
        id: i32,
        info: BrokerInfo,
    },
    FenceBroker {
        id: i32,
    },
    UnfenceBroker {
        id: i32,
    },
    CreateTopic {
        name: String,
        id: [u8; 16],
        replicas: Vec<Vec<i32>>,
        /// Explicitly set configs (name, value); the rest are broker defaults.
        configs: Vec<(String, String)>,
    },
    DeleteTopic {
        name: String,
        id: [u8; 16],
    },
    AddPartitions {
        name: String,
        id: [u8; 16],
        replicas: Vec<Vec<i32>>,
    },
    /// A block of producer ids for `broker` (in its incarnation), starting at the image's cursor
    /// when applied, so concurrent requests can never get overlapping blocks.
    ProducerIds {
        broker: i32,
        incarnation: u64,
        count: i64,
    },
}

/// An admin operation for the controller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaOp {
    CreateTopics(Vec<NewTopic>),
    DeleteTopics(Vec<String>),
    /// (topic, new partition count).
    CreatePartitions(Vec<(String, u32)>),
    AllocateProducerIds {
        incarnation: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTopic {
    pub name: String,
    pub partitions: u32,
    pub replication_factor: u16,
    pub configs: Vec<(String, String)>,
}

/// What applying an entry changed, for the broker to act on.
#[derive(Debug)]
pub(super) enum Applied {
    TopicCreated(Topic),
    TopicDeleted(Topic),
    PartitionsAdded { topic: Topic, from: u32 },
    Brokers,
    ProducerIds { first: i64, count: i64 },
}

impl Catalogue {
    /// Applies one record. Records that no longer make sense (a topic created twice by two
    /// controllers, a deletion of a topic already gone) are skipped identically everywhere.
    pub(super) fn apply(
        &mut self,
        record: MetaRecord,
        defaults: &crate::storage::LogConfig,
        me: (i32, u64),
    ) -> Option<Applied> {
        match record {
            MetaRecord::InitCluster { cluster_id } => {
                if self.cluster_id.is_empty() {
                    self.cluster_id = cluster_id;
                }
                None
            }
            MetaRecord::RegisterBroker { id, info } => {
                self.brokers.insert(id, info);
                Some(Applied::Brokers)
            }
            MetaRecord::FenceBroker { id } | MetaRecord::UnfenceBroker { id } => {
                let fence = matches!(record, MetaRecord::FenceBroker { .. });
                let b = self.brokers.get_mut(&id)?;
                (b.fenced != fence).then(|| {
                    b.fenced = fence;
                    Applied::Brokers
                })
            }
            MetaRecord::CreateTopic {
                name,
                id,
                replicas,
                configs,
            } => {
                if self.topics.contains_key(&name) {
                    return None;
                }
                let mut config = TopicConfig::defaults(defaults);
                for (k, v) in &configs {
                    // Validated by the broker that took the request; a config this broker
                    // does not know keeps its default rather than failing the whole log.
                    let _ = config.set(k, Some(v));
                }
                let topic = Topic {
                    name: name.clone(),
                    id: crate::protocol::wire::Uuid(id),
                    replicas,
                    config,
                };
                self.topics.insert(name, topic.clone());
                Some(Applied::TopicCreated(topic))
            }
            MetaRecord::DeleteTopic { name, id } => {
                if self.topics.get(&name).is_none_or(|t| t.id.0 != id) {
                    return None;
                }
                self.topics.remove(&name).map(Applied::TopicDeleted)
            }
            MetaRecord::AddPartitions { name, id, replicas } => {
                let topic = self.topics.get_mut(&name).filter(|t| t.id.0 == id)?;
                let from = topic.partition_count();
                topic.replicas.extend(replicas);
                Some(Applied::PartitionsAdded {
                    topic: topic.clone(),
                    from,
                })
            }
            MetaRecord::ProducerIds {
                broker,
                incarnation,
                count,
            } => {
                let first = self.next_producer_id;
                self.next_producer_id += count;
                ((broker, incarnation) == me).then_some(Applied::ProducerIds { first, count })
            }
        }
    }
}

/// Assigns `partitions` new partitions over the live brokers, round-robin, so that preferred
/// leaders (the first replica) spread evenly; `offset` continues the rotation across topics.
pub fn assign_replicas(live: &[i32], partitions: u32, rf: u16, offset: usize) -> Vec<Vec<i32>> {
    let n = live.len();
    (0..partitions as usize)
        .map(|p| {
            (0..rf as usize)
                .map(|r| live[(offset + p + r) % n])
                .collect()
        })
        .collect()
}

/// A controller's proposal waiting for its commit.
#[derive(Debug)]
struct PendingOp {
    from: i32,
    forward: u64,
    results: Vec<(i16, Option<String>)>,
    /// Brokers whose registration or fencing this proposal changes.
    brokers: Vec<i32>,
}

/// A forward this broker is waiting on.
#[derive(Debug)]
pub(super) struct Forward {
    pub op: MetaOp,
    pub waiter: super::admin::Waiter,
    /// When the controller last got it (resent after a silence).
    pub sent_at: Option<Instant>,
    pub deadline: Instant,
}

#[derive(Debug, Default)]
pub(super) struct MetaState {
    /// This broker's member of the metadata group (voters only, once its store opened).
    pub raft: Option<Raft>,
    pub voters: Vec<i32>,
    pub incarnation: u64,
    // ----- controller side (while `raft` leads) -----
    last_seen: BTreeMap<i32, Instant>,
    pending: BTreeMap<ProposalId, PendingOp>,
    /// Brokers with a registration or fencing change in flight.
    changing: BTreeSet<i32>,
    /// partition -> (epoch, leader, follower lag), from the leaders' heartbeats.
    leaders: BTreeMap<PartitionKey, LeaderInfo>,
    results: BTreeMap<(i32, u64), ForwardResult>,
    /// `results` keys in the order they were answered, oldest first (evicted first).
    results_order: VecDeque<(i32, u64)>,
    cluster_proposed: bool,
    // ----- every broker -----
    /// The controller, as far as this broker knows.
    pub controller: Option<i32>,
    /// The last (term, controller) reported as an event.
    announced: Option<(u64, Option<i32>)>,
    probe: usize,
    pub heartbeat_due: Option<Instant>,
    pub forwards: BTreeMap<u64, Forward>,
    next_forward: u64,
    /// The leader table from the controller (partitions this broker does not host).
    pub known_leaders: BTreeMap<PartitionKey, LeaderInfo>,
    /// Producer ids taken from the controller: [next, end).
    pub producer_ids: (i64, i64),
    pub producer_ids_requested: bool,
}

impl MetaState {
    pub fn new(voters: Vec<i32>, incarnation: u64, now: Instant) -> MetaState {
        MetaState {
            voters,
            incarnation,
            heartbeat_due: Some(now),
            // Forward ids of different incarnations must not collide in the controller's
            // memory of answered forwards.
            next_forward: incarnation & 0xffff_ffff_0000_0000,
            ..Default::default()
        }
    }

    pub fn is_controller(&self) -> bool {
        self.raft
            .as_ref()
            .is_some_and(|r| r.role() == raft::Role::Leader)
    }

    pub fn forward_id(&mut self) -> u64 {
        self.next_forward += 1;
        self.next_forward
    }
}

impl Broker {
    // ----- the metadata group -----

    pub(super) fn is_voter(&self) -> bool {
        self.meta.voters.contains(&self.cfg.node_id)
    }

    pub(super) fn on_metadata_opened(&mut self, recovered: raft::Recovered) {
        let me = NodeId(self.cfg.node_id as u32);
        let voters = self.meta.voters.iter().map(|&v| NodeId(v as u32)).collect();
        let mut cfg = raft::Config::new(me, voters);
        cfg.election_timeout = self.cfg.raft_election_timeout;
        cfg.heartbeat_interval = self.cfg.raft_heartbeat_interval;
        let rng = crate::rng::DetRng::with_stream(self.rng.next_u64(), u64::MAX);
        let mut r = Raft::new(cfg, recovered, rng, self.now).expect("voters validated at start");
        r.campaign_if_alone();
        self.meta.raft = Some(r);
        self.drain_meta();
    }

    pub(super) fn drive_meta(&mut self, input: impl FnOnce(crate::time::Now) -> raft::Input) {
        let now = self.now;
        let Some(r) = self.meta.raft.as_mut() else {
            return;
        };
        r.handle_input(input(now));
        self.drain_meta();
    }

    pub(super) fn drain_meta(&mut self) {
        let mut outcomes = Vec::new();
        let mut became_leader = false;
        {
            let Some(r) = self.meta.raft.as_mut() else {
                return;
            };
            while let Some(out) = r.poll_output() {
                match out {
                    raft::Output::Storage(req) => self.outputs.push_back(Output::Storage {
                        target: StorageTarget::Metadata,
                        job: StorageJob::Raft(req),
                    }),
                    raft::Output::Send { to, message } => self
                        .outbox
                        .entry(to.0 as i32)
                        .or_default()
                        .push((GroupKey::Metadata, message)),
                    raft::Output::Proposal { id, outcome } => outcomes.push((id, outcome)),
                    raft::Output::Event(raft::Event::RoleChanged { term, role, leader }) => {
                        if role == raft::Role::Leader {
                            became_leader = true;
                        }
                        if let Some(l) = leader {
                            self.meta.controller = Some(l.0 as i32);
                        }
                        // Raft reports every role step (pre-candidate, candidate, ...); the
                        // log line is about the controller, so only its changes go out.
                        let seen = (term.0, leader.map(|l| l.0 as i32));
                        if self.meta.announced != Some(seen) {
                            self.meta.announced = Some(seen);
                            self.outputs
                                .push_back(Output::Event(Event::ControllerChanged {
                                    term: seen.0,
                                    leader: seen.1,
                                }));
                        }
                    }
                    raft::Output::Event(_) => {}
                }
            }
        }
        if became_leader {
            self.on_became_controller();
        }
        for (id, outcome) in outcomes {
            self.on_meta_outcome(id, outcome);
        }
        self.apply_committed_metadata();
    }

    /// Applies committed metadata entries this broker's own log holds (voters).
    fn apply_committed_metadata(&mut self) {
        let Some(r) = &self.meta.raft else { return };
        let commit = r.commit_index().0;
        let mut entries = Vec::new();
        let mut i = self.catalogue.applied + 1;
        while i <= commit {
            match r.entry(LogIndex(i)) {
                Some(e) if e.kind == raft::EntryKind::Normal => entries.push((i, e.data.clone())),
                Some(_) => entries.push((i, bytes::Bytes::new())),
                None => break, // compacted: the image already covers it
            }
            i += 1;
        }
        for (index, data) in entries {
            self.apply_entry(index, &data);
        }
    }

    /// Applies metadata entry `index` (empty data: a no-op entry).
    pub(super) fn apply_entry(&mut self, index: u64, data: &[u8]) {
        if index <= self.catalogue.applied {
            return;
        }
        let records = if data.is_empty() {
            Vec::new()
        } else {
            match super::peer::decode_records(data) {
                Ok(r) => r,
                Err(e) => {
                    // Only this build writes the log; an undecodable committed entry means a
                    // newer version wrote it. Skipping keeps the broker up; say so loudly.
                    self.outputs.push_back(Output::Event(Event::MetadataError {
                        reason: format!("metadata entry {index} is undecodable: {e}"),
                    }));
                    Vec::new()
                }
            }
        };
        let mut changed = false;
        for record in records {
            let me = (self.cfg.node_id, self.meta.incarnation);
            changed = true;
            if let Some(applied) = self.catalogue.apply(record, &self.cfg.log, me) {
                self.on_applied(applied);
            }
        }
        self.catalogue.applied = index;
        if changed {
            self.save_catalogue();
        }
        self.answer_after_apply();
    }

    fn on_applied(&mut self, applied: Applied) {
        match applied {
            Applied::TopicCreated(topic) => {
                self.outputs.push_back(Output::Event(Event::TopicCreated {
                    topic: topic.name.clone(),
                    partitions: topic.partition_count(),
                }));
                self.open_partitions(&topic, 0);
            }
            Applied::TopicDeleted(topic) => self.remove_topic(&topic),
            Applied::PartitionsAdded { topic, from } => self.open_partitions(&topic, from),
            Applied::Brokers => self.announce_peer_addresses(),
            Applied::ProducerIds { first, count } => {
                self.meta.producer_ids = (first, first + count);
                self.meta.producer_ids_requested = false;
                self.serve_producer_id_waiters();
            }
        }
    }

    /// Tells the driver where every registered broker listens for peers.
    pub(super) fn announce_peer_addresses(&mut self) {
        let peers = self
            .catalogue
            .brokers
            .iter()
            .map(|(&id, b)| (id, b.peer_addr.clone()))
            .collect();
        self.outputs.push_back(Output::PeerAddresses(peers));
    }

    // ----- controller -----

    fn on_became_controller(&mut self) {
        let now = self.now.mono;
        self.meta.last_seen = self.catalogue.brokers.keys().map(|&id| (id, now)).collect();
        self.meta.pending.clear();
        self.meta.changing.clear();
        self.meta.cluster_proposed = false;
        self.meta.controller = Some(self.cfg.node_id);
        // Register this broker and set the cluster id without waiting a heartbeat interval.
        self.meta.heartbeat_due = Some(now);
    }

    fn on_meta_outcome(&mut self, id: ProposalId, outcome: raft::ProposalOutcome) {
        let Some(op) = self.meta.pending.remove(&id) else {
            return;
        };
        for b in &op.brokers {
            self.meta.changing.remove(b);
        }
        let result = match outcome {
            raft::ProposalOutcome::Committed { index, .. } => ForwardResult::Done {
                index: index.0,
                results: op.results,
            },
            _ => ForwardResult::NotController { leader: None },
        };
        if op.forward != 0 {
            self.send_forward_result(op.from, op.forward, result);
        }
    }

    fn send_forward_result(&mut self, to: i32, forward: u64, result: ForwardResult) {
        if matches!(result, ForwardResult::Done { .. }) {
            if self.meta.results_order.len() >= REMEMBERED_RESULTS {
                let oldest = self.meta.results_order.pop_front().expect("non-empty");
                self.meta.results.remove(&oldest);
            }
            self.meta.results_order.push_back((to, forward));
            self.meta.results.insert((to, forward), result.clone());
        }
        if to == self.cfg.node_id {
            self.on_forwarded(forward, result);
        } else {
            self.send_peer(
                to,
                PeerBody::Forwarded {
                    id: forward,
                    result,
                },
            );
        }
    }

    /// Proposes `records` to the metadata group; `forward` (non-zero) is answered on commit.
    fn propose_records(
        &mut self,
        records: Vec<MetaRecord>,
        from: i32,
        forward: u64,
        results: Vec<(i16, Option<String>)>,
        brokers: Vec<i32>,
    ) {
        let id = ProposalId(self.token());
        for b in &brokers {
            self.meta.changing.insert(*b);
        }
        self.meta.pending.insert(
            id,
            PendingOp {
                from,
                forward,
                results,
                brokers,
            },
        );
        let data = bytes::Bytes::from(encode_records(&records));
        self.drive_meta(|now| raft::Input::Propose { now, id, data });
    }

    /// The controller's side of a forwarded operation.
    pub(super) fn controller_op(&mut self, from: i32, forward: u64, op: MetaOp) {
        if !self.meta.is_controller() {
            let leader = self.meta.raft.as_ref().and_then(|r| r.leader());
            let result = ForwardResult::NotController {
                leader: leader.map(|l| l.0 as i32),
            };
            self.send_forward_result(from, forward, result);
            return;
        }
        if let Some(done) = self.meta.results.get(&(from, forward)).cloned() {
            self.send_forward_result(from, forward, done);
            return;
        }
        let mut records = Vec::new();
        let mut results = Vec::new();
        match op {
            MetaOp::CreateTopics(topics) => {
                let live = self.assignable_brokers();
                let mut offset: usize = self
                    .catalogue
                    .topics
                    .values()
                    .map(|t| t.replicas.len())
                    .sum();
                for t in topics {
                    if self.catalogue.topics.contains_key(&t.name) {
                        results.push((
                            codes::TOPIC_ALREADY_EXISTS,
                            Some(format!("topic '{}' already exists", t.name)),
                        ));
                        continue;
                    }
                    if usize::from(t.replication_factor) > live.len() {
                        results.push((
                            codes::INVALID_REPLICATION_FACTOR,
                            Some(format!(
                                "replication factor {} is larger than the {} live brokers",
                                t.replication_factor,
                                live.len()
                            )),
                        ));
                        continue;
                    }
                    let replicas =
                        assign_replicas(&live, t.partitions, t.replication_factor, offset);
                    offset += t.partitions as usize;
                    records.push(MetaRecord::CreateTopic {
                        name: t.name,
                        id: random_uuid(&mut self.rng).0,
                        replicas,
                        configs: t.configs,
                    });
                    results.push((codes::NONE, None));
                }
            }
            MetaOp::DeleteTopics(names) => {
                for name in names {
                    match self.catalogue.topics.get(&name) {
                        None => results.push((
                            codes::UNKNOWN_TOPIC_OR_PARTITION,
                            Some(format!("topic '{name}' does not exist")),
                        )),
                        Some(t) => {
                            records.push(MetaRecord::DeleteTopic {
                                name: name.clone(),
                                id: t.id.0,
                            });
                            results.push((codes::NONE, None));
                        }
                    }
                }
            }
            MetaOp::CreatePartitions(list) => {
                let live = self.assignable_brokers();
                for (name, count) in list {
                    let Some(t) = self.catalogue.topics.get(&name) else {
                        results.push((
                            codes::UNKNOWN_TOPIC_OR_PARTITION,
                            Some(format!("topic '{name}' does not exist")),
                        ));
                        continue;
                    };
                    let have = t.partition_count();
                    let rf = t.replicas.first().map_or(1, Vec::len);
                    if count <= have {
                        results.push((
                            codes::INVALID_PARTITIONS,
                            Some(format!(
                                "topic '{name}' has {have} partitions; the new count {count} must be larger"
                            )),
                        ));
                    } else if rf > live.len() {
                        results.push((
                            codes::INVALID_REPLICATION_FACTOR,
                            Some(format!(
                                "the topic's replication factor {rf} is larger than the {} live brokers",
                                live.len()
                            )),
                        ));
                    } else {
                        let replicas =
                            assign_replicas(&live, count - have, rf as u16, have as usize);
                        records.push(MetaRecord::AddPartitions {
                            name: name.clone(),
                            id: t.id.0,
                            replicas,
                        });
                        results.push((codes::NONE, None));
                    }
                }
            }
            MetaOp::AllocateProducerIds { incarnation } => {
                records.push(MetaRecord::ProducerIds {
                    broker: from,
                    incarnation,
                    count: PRODUCER_ID_BLOCK,
                });
                results.push((codes::NONE, None));
            }
        }
        if records.is_empty() {
            let index = self.catalogue.applied;
            self.send_forward_result(from, forward, ForwardResult::Done { index, results });
        } else {
            self.propose_records(records, from, forward, results, Vec::new());
        }
    }

    /// Brokers new replicas may go to: the live registered ones, and the controller itself
    /// (alive by definition, even before its own registration commits).
    fn assignable_brokers(&self) -> Vec<i32> {
        let mut live = self.catalogue.live_brokers();
        if !live.contains(&self.cfg.node_id) {
            live.push(self.cfg.node_id);
            live.sort_unstable();
        }
        live
    }

    /// The controller's side of a heartbeat: liveness, registration, the leader table, and the
    /// committed entries the broker lacks.
    pub(super) fn controller_heartbeat(&mut self, from: i32, hb: Heartbeat) -> HeartbeatReply {
        let Some(r) = self
            .meta
            .raft
            .as_ref()
            .filter(|r| r.role() == raft::Role::Leader)
        else {
            let leader = self
                .meta
                .raft
                .as_ref()
                .and_then(|r| r.leader())
                .map(|l| l.0 as i32);
            return HeartbeatReply::NotController { leader };
        };
        let commit = r.commit_index().0;
        let mut entries = Vec::new();
        let mut upto = hb.applied;
        let mut i = hb.applied + 1;
        while i <= commit && i <= hb.applied + ENTRIES_PER_REPLY {
            match r.entry(LogIndex(i)) {
                Some(e) => {
                    if e.kind == raft::EntryKind::Normal {
                        entries.push((i, e.data.clone()));
                    }
                    upto = i;
                }
                None => break,
            }
            i += 1;
        }
        self.meta.last_seen.insert(from, self.now.mono);
        for report in hb.leading {
            let LeaderReport { key, epoch, lag } = report;
            let newer = self
                .meta
                .leaders
                .get(&key)
                .is_none_or(|&(e, _, _)| epoch >= e);
            if newer {
                self.meta.leaders.insert(key, (epoch, from, lag));
            }
        }
        // Registration: a new broker, a restart (new incarnation) or a new address.
        let info = BrokerInfo {
            incarnation: hb.incarnation,
            host: hb.host,
            port: hb.port,
            peer_addr: hb.peer_addr,
            fenced: false,
        };
        if !self.meta.changing.contains(&from) {
            let known = self.catalogue.brokers.get(&from);
            let record = match known {
                Some(b)
                    if b.incarnation == info.incarnation
                        && b.host == info.host
                        && b.port == info.port
                        && b.peer_addr == info.peer_addr =>
                {
                    b.fenced.then_some(MetaRecord::UnfenceBroker { id: from })
                }
                _ => Some(MetaRecord::RegisterBroker { id: from, info }),
            };
            if let Some(record) = record {
                self.propose_records(vec![record], from, 0, Vec::new(), vec![from]);
            }
        }
        let leaders = LeaderTable {
            leaders: self
                .meta
                .leaders
                .iter()
                .map(|(k, info)| (*k, info.clone()))
                .collect(),
        };
        HeartbeatReply::Ok {
            entries,
            upto,
            leaders,
        }
    }

    /// Controller housekeeping on every heartbeat tick: the cluster id, and fencing brokers
    /// whose heartbeats stopped.
    fn controller_tick(&mut self) {
        if !self.meta.is_controller() {
            return;
        }
        if self.catalogue.cluster_id.is_empty() && !self.meta.cluster_proposed {
            self.meta.cluster_proposed = true;
            let cluster_id = random_id(&mut self.rng);
            self.propose_records(
                vec![MetaRecord::InitCluster { cluster_id }],
                self.cfg.node_id,
                0,
                Vec::new(),
                Vec::new(),
            );
        }
        let now = self.now.mono;
        let timeout = self.cfg.session_timeout;
        let silent: Vec<i32> = self
            .catalogue
            .brokers
            .iter()
            .filter(|(id, b)| {
                !b.fenced
                    && !self.meta.changing.contains(id)
                    && self
                        .meta
                        .last_seen
                        .get(id)
                        .is_none_or(|&t| now.saturating_since(t) > timeout)
            })
            .map(|(&id, _)| id)
            .collect();
        for id in silent {
            self.propose_records(
                vec![MetaRecord::FenceBroker { id }],
                self.cfg.node_id,
                0,
                Vec::new(),
                vec![id],
            );
            // Its leaderships are void: clients should not be sent to it.
            self.meta.leaders.retain(|_, (_, l, _)| *l != id);
        }
    }

    // ----- every broker -----

    /// Sends this broker's heartbeat to the controller (or handles it locally).
    pub(super) fn heartbeat_tick(&mut self) {
        let now = self.now.mono;
        self.meta.heartbeat_due = Some(now + self.cfg.heartbeat_interval);
        self.controller_tick();
        let hb = Heartbeat {
            incarnation: self.meta.incarnation,
            host: self.cfg.advertised_host.clone(),
            port: self.cfg.advertised_port,
            peer_addr: self.cfg.peer_addr.clone(),
            applied: self.catalogue.applied,
            leading: self.leader_reports(),
        };
        let me = self.cfg.node_id;
        if self.meta.is_controller() {
            let reply = self.controller_heartbeat(me, hb);
            self.on_heartbeat_reply(me, reply);
        } else {
            let to = self.controller_guess();
            self.send_peer(to, PeerBody::Heartbeat(hb));
        }
        self.resend_forwards();
    }

    /// The controller if known, else the next voter in turn.
    fn controller_guess(&mut self) -> i32 {
        if let Some(l) = self.meta.raft.as_ref().and_then(|r| r.leader()) {
            return l.0 as i32;
        }
        if let Some(c) = self.meta.controller {
            return c;
        }
        // Ask the other voters in turn (this broker would have answered itself already).
        let others: Vec<i32> = self
            .meta
            .voters
            .iter()
            .copied()
            .filter(|&v| v != self.cfg.node_id)
            .collect();
        if others.is_empty() {
            return self.cfg.node_id;
        }
        self.meta.probe = (self.meta.probe + 1) % others.len();
        others[self.meta.probe]
    }

    pub(super) fn on_heartbeat_reply(&mut self, from: i32, reply: HeartbeatReply) {
        match reply {
            HeartbeatReply::NotController { leader } => {
                self.meta.controller = leader.filter(|&l| l != from);
            }
            HeartbeatReply::Ok {
                entries,
                upto,
                leaders,
            } => {
                self.meta.controller = Some(from);
                self.meta.known_leaders = leaders.leaders.into_iter().collect();
                if self.meta.raft.is_none() {
                    // Not a voter: follow the controller's committed log.
                    let from_index = self.catalogue.applied;
                    if upto > from_index {
                        for (index, data) in entries {
                            if index > self.catalogue.applied {
                                // No-op entries are not sent; advance over them first.
                                self.catalogue.applied = index - 1;
                                self.apply_entry(index, &data);
                            }
                        }
                        if upto > self.catalogue.applied {
                            self.catalogue.applied = upto;
                            self.answer_after_apply();
                        }
                        if upto < from_index + ENTRIES_PER_REPLY {
                            return;
                        }
                        // More to fetch: ask again now rather than after a heartbeat interval.
                        self.meta.heartbeat_due = Some(self.now.mono);
                    }
                }
            }
        }
    }

    /// Sends an admin operation to the controller (or handles it here if this is it).
    pub(super) fn forward(&mut self, op: MetaOp, waiter: super::admin::Waiter, timeout_ms: i32) {
        let id = self.meta.forward_id();
        let timeout = std::time::Duration::from_millis(timeout_ms.clamp(1000, 600_000) as u64);
        self.meta.forwards.insert(
            id,
            Forward {
                op,
                waiter,
                sent_at: None,
                deadline: self.now.mono + timeout,
            },
        );
        self.send_forward(id);
    }

    fn send_forward(&mut self, id: u64) {
        let Some(f) = self.meta.forwards.get_mut(&id) else {
            return;
        };
        f.sent_at = Some(self.now.mono);
        let op = f.op.clone();
        let me = self.cfg.node_id;
        if self.meta.is_controller() {
            self.controller_op(me, id, op);
        } else {
            let to = self.controller_guess();
            self.send_peer(to, PeerBody::Forward { id, op });
        }
    }

    /// Resends forwards unanswered for a while (the controller may have changed) and fails
    /// those past their deadline.
    fn resend_forwards(&mut self) {
        let now = self.now.mono;
        let silence = self.cfg.raft_election_timeout * 2;
        let ids: Vec<u64> = self.meta.forwards.keys().copied().collect();
        for id in ids {
            let f = &self.meta.forwards[&id];
            if f.deadline <= now {
                let f = self.meta.forwards.remove(&id).expect("present");
                self.fail_waiter(f.waiter, codes::REQUEST_TIMED_OUT);
            } else if f.sent_at.is_none_or(|t| now.saturating_since(t) >= silence) {
                self.send_forward(id);
            }
        }
    }

    pub(super) fn on_forwarded(&mut self, id: u64, result: ForwardResult) {
        match result {
            ForwardResult::NotController { leader } => {
                self.meta.controller = leader;
                if let Some(f) = self.meta.forwards.get_mut(&id) {
                    // Retried on the next heartbeat tick, to whoever is controller then.
                    f.sent_at = None;
                    if leader.is_some() {
                        self.send_forward(id);
                    }
                }
            }
            ForwardResult::Done { index, results } => {
                if let Some(f) = self.meta.forwards.remove(&id) {
                    self.finish_waiter(f.waiter, index, results);
                }
            }
        }
    }

    /// Queues a peer message for `to`.
    pub(super) fn send_peer(&mut self, to: i32, body: PeerBody) {
        if to == self.cfg.node_id {
            return; // a lone voter before its election: nobody else to ask
        }
        let bytes = Envelope::new(self.cfg.node_id, body).encode();
        self.outputs.push_back(Output::Peer { to, bytes });
    }

    /// Flushes the Raft messages gathered during this input, one envelope per destination.
    pub(super) fn flush_outbox(&mut self) {
        for (to, messages) in std::mem::take(&mut self.outbox) {
            self.send_peer(to, PeerBody::Raft(messages));
        }
    }
}
