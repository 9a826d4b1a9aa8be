//! The Kafka broker as a sans-IO state machine: requests in as frames, responses out as frames,
//! storage as requests and completions, time as inputs.
//!
//! One broker owns the topic catalogue and every partition it hosts. Each partition is a Raft
//! group (one voter for now, so the cluster work only adds voters): Produce proposes batches,
//! the Raft commit index is the high watermark, `acks=1` answers once the store wrote the batch,
//! `acks=all` once it is committed (synced), `acks=0` never.
//!
//! Responses leave each connection in request order: a request that must wait (a produce for
//! its commit, a fetch for data) holds back the responses behind it, as Kafka requires.
//!
//! Modules: `topics` (catalogue and configs), `partition` (offsets, high watermark, idempotent
//! producers), `admin` (metadata and topic administration), `data` (produce, fetch, offsets),
//! `storage` (the storage jobs and the executor drivers share).

mod admin;
mod data;
mod partition;
mod storage;
mod topics;

pub use partition::{Partition, SequenceCheck};
pub use storage::{BrokerStorage, ReadError, StorageDone, StorageJob, CATALOGUE_FILE};
pub use topics::{validate_topic_name, Catalogue, Topic, TopicConfig};

use crate::ids::NodeId;
use crate::protocol::{self, api_versions_fallback_response, codes, Request, Response};
use crate::raft::{self, Raft};
use crate::rng::DetRng;
use crate::storage::LogConfig;
use crate::time::{Instant, Now};
use bytes::Bytes;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// A client connection, numbered by the driver.
pub type ConnId = u64;

/// A partition's identity for storage routing; never reused, so completions for a deleted
/// partition cannot reach a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionId(pub u64);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerConfig {
    pub node_id: i32,
    /// The address clients are told to connect to (Metadata, DescribeCluster).
    pub advertised_host: String,
    pub advertised_port: i32,
    /// Create a topic when Metadata names an unknown one (Kafka's auto.create.topics.enable).
    pub auto_create_topics: bool,
    /// Partitions of an auto-created topic, or of CreateTopics with -1 (Kafka's num.partitions).
    pub default_partitions: u32,
    /// Broker-wide log defaults; topics override them.
    pub log: LogConfig,
    /// How often retention runs on each partition.
    pub housekeeping_interval: Duration,
    /// Largest produce or fetch wait the broker honours.
    pub max_wait: Duration,
    pub raft_election_timeout: Duration,
    pub raft_heartbeat_interval: Duration,
}

impl BrokerConfig {
    pub fn new(node_id: i32, host: &str, port: i32) -> BrokerConfig {
        BrokerConfig {
            node_id,
            advertised_host: host.to_string(),
            advertised_port: port,
            auto_create_topics: false,
            default_partitions: 1,
            log: LogConfig::default(),
            housekeeping_interval: Duration::from_secs(60),
            max_wait: Duration::from_secs(30),
            raft_election_timeout: Duration::from_millis(150),
            raft_heartbeat_interval: Duration::from_millis(50),
        }
    }
}

#[derive(Debug)]
pub enum Input {
    /// One request frame (without its size prefix) from a connection.
    Request {
        now: Now,
        conn: ConnId,
        frame: Bytes,
    },
    /// The connection is gone; drop what it was waiting for.
    Disconnected { now: Now, conn: ConnId },
    /// Storage finished a job for a partition (`None`: the catalogue).
    Storage {
        now: Now,
        target: Option<PartitionId>,
        done: StorageDone,
    },
    /// A deadline from `poll_timeout` may have passed. Early calls are no-ops.
    Timeout(Now),
}

#[derive(Debug)]
pub enum Output {
    /// Write this response frame (size prefix included) to the connection; an empty frame
    /// means the request is finished with no answer (acks=0): write nothing. `api_key` and
    /// `received` (when the request arrived) are for the driver's metrics.
    Response {
        conn: ConnId,
        frame: Vec<u8>,
        api_key: i16,
        received: Instant,
    },
    /// Close the connection (after writing what was sent before): it sent something that
    /// cannot be answered.
    Close { conn: ConnId, reason: String },
    /// Perform this job and answer with `Input::Storage` for the same target.
    Storage {
        target: Option<PartitionId>,
        job: StorageJob,
    },
    /// Worth a log line.
    Event(Event),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    TopicCreated {
        topic: String,
        partitions: u32,
    },
    TopicDeleted {
        topic: String,
    },
    /// A partition's store opened; `dropped_bytes` of torn or corrupt tail were cut off.
    PartitionOpened {
        topic: String,
        partition: u32,
        recovery: String,
        dropped_bytes: u64,
    },
    LeaderElected {
        topic: String,
        partition: u32,
        epoch: i32,
    },
    HighWatermark {
        topic: String,
        partition: u32,
        offset: i64,
    },
    LogStartMoved {
        topic: String,
        partition: u32,
        offset: i64,
    },
    /// A request the broker refused outright, for the driver's metrics and logs.
    Malformed {
        conn: ConnId,
        reason: String,
    },
}

/// A response slot on a connection: filled when the request's answer is ready.
#[derive(Debug, Default)]
struct ConnQueue {
    next_seq: u64,
    first_unsent: u64,
    ready: BTreeMap<u64, (Vec<u8>, i16, Instant)>,
}

/// Where a waiting request's answer goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    pub conn: ConnId,
    pub seq: u64,
    pub correlation_id: i32,
    pub api_key: i16,
    pub api_version: i16,
    pub received: Instant,
}

pub struct Broker {
    cfg: BrokerConfig,
    catalogue: Catalogue,
    /// Topic -> partition index -> id.
    partition_ids: BTreeMap<String, Vec<PartitionId>>,
    partitions: BTreeMap<PartitionId, Partition>,
    next_partition_id: u64,
    conns: BTreeMap<ConnId, ConnQueue>,
    data: data::Waiting,
    admin: admin::Waiting,
    next_token: u64,
    housekeeping_deadline: Option<Instant>,
    outputs: VecDeque<Output>,
    rng: DetRng,
    now: Now,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("node_id", &self.cfg.node_id)
            .field("topics", &self.catalogue.topics.len())
            .field("partitions", &self.partitions.len())
            .finish()
    }
}

impl Broker {
    /// Starts a broker from its persisted catalogue (`None` on a fresh data directory). Every
    /// partition's store is opened through storage jobs before it serves.
    pub fn new(
        cfg: BrokerConfig,
        catalogue: Option<&[u8]>,
        mut rng: DetRng,
        now: Now,
    ) -> Result<Broker, String> {
        cfg.log.validate()?;
        let fresh = catalogue.is_none();
        let catalogue = match catalogue {
            Some(bytes) => Catalogue::decode(bytes, &cfg.log)?,
            None => Catalogue {
                cluster_id: random_id(&mut rng),
                next_producer_id: 1000,
                ..Catalogue::default()
            },
        };
        let mut broker = Broker {
            housekeeping_deadline: Some(now.mono + cfg.housekeeping_interval),
            cfg,
            catalogue,
            partition_ids: BTreeMap::new(),
            partitions: BTreeMap::new(),
            next_partition_id: 1,
            conns: BTreeMap::new(),
            data: data::Waiting::default(),
            admin: admin::Waiting::default(),
            next_token: 1,
            outputs: VecDeque::new(),
            rng,
            now,
        };
        if fresh {
            broker.save_catalogue_silently();
        }
        let topics: Vec<Topic> = broker.catalogue.topics.values().cloned().collect();
        for t in topics {
            broker.open_partitions(&t, 0);
        }
        Ok(broker)
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.cfg
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// Whether every partition has opened and elected itself (for start-up logs and tests).
    pub fn all_partitions_ready(&self) -> bool {
        self.partitions.values().all(Partition::is_leader)
    }

    // ----- driving contract -----

    pub fn handle_input(&mut self, input: Input) {
        let now = match &input {
            Input::Request { now, .. }
            | Input::Disconnected { now, .. }
            | Input::Storage { now, .. } => *now,
            Input::Timeout(now) => *now,
        };
        if now.mono >= self.now.mono {
            self.now = now;
        }
        match input {
            Input::Request { conn, frame, .. } => self.on_request(conn, &frame),
            Input::Disconnected { conn, .. } => {
                self.conns.remove(&conn);
                self.data.forget_conn(conn);
            }
            Input::Storage { target, done, .. } => self.on_storage(target, done),
            Input::Timeout(_) => self.on_timeout(),
        }
        self.invariants();
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let raft = self
            .partitions
            .values()
            .filter_map(|p| p.raft.as_ref().and_then(Raft::poll_timeout));
        raft.chain(self.data.next_deadline())
            .chain(self.housekeeping_deadline)
            .min()
    }

    pub fn invariants(&self) {
        for p in self.partitions.values() {
            assert!(
                p.log_start <= p.high_watermark,
                "log start above the high watermark"
            );
            assert!(
                p.high_watermark <= p.next_offset,
                "high watermark above the log end"
            );
        }
    }

    // ----- requests -----

    fn on_request(&mut self, conn: ConnId, frame: &[u8]) {
        let q = self.conns.entry(conn).or_default();
        let seq = q.next_seq;
        q.next_seq += 1;
        let (header, request) = match protocol::decode_request(frame) {
            Ok(decoded) => decoded,
            Err(e) => {
                let head: String = frame.iter().take(48).map(|b| format!("{b:02x}")).collect();
                let reason = format!("undecodable request: {e} (first bytes {head})");
                self.outputs.push_back(Output::Event(Event::Malformed {
                    conn,
                    reason: reason.clone(),
                }));
                self.conns.remove(&conn);
                self.data.forget_conn(conn);
                self.outputs.push_back(Output::Close { conn, reason });
                return;
            }
        };
        let reply = Reply {
            conn,
            seq,
            correlation_id: header.correlation_id,
            api_key: header.api_key as i16,
            api_version: header.api_version,
            received: self.now.mono,
        };
        match request {
            Request::UnsupportedApiVersions => {
                self.finish_raw(
                    reply,
                    Some(api_versions_fallback_response(header.correlation_id)),
                );
            }
            Request::ApiVersions(_) => {
                let body = protocol::messages::api_versions::ApiVersionsResponse {
                    error_code: codes::NONE,
                    api_keys: protocol::supported_api_versions(),
                    ..Default::default()
                };
                self.respond(reply, Response::ApiVersions(body));
            }
            Request::Metadata(r) => self.on_metadata(reply, r),
            Request::CreateTopics(r) => self.on_create_topics(reply, r),
            Request::DeleteTopics(r) => self.on_delete_topics(reply, r),
            Request::CreatePartitions(r) => self.on_create_partitions(reply, r),
            Request::DescribeConfigs(r) => self.on_describe_configs(reply, r),
            Request::DescribeCluster(_) => self.on_describe_cluster(reply),
            Request::InitProducerId(r) => self.on_init_producer_id(reply, r),
            Request::Produce(r) => self.on_produce(reply, r),
            Request::Fetch(r) => self.on_fetch(reply, r),
            Request::ListOffsets(r) => self.on_list_offsets(reply, r),
            Request::OffsetForLeaderEpoch(r) => self.on_offset_for_leader_epoch(reply, r),
        }
    }

    /// Queues `response` as the answer to `reply`, flushing whatever is now in order.
    fn respond(&mut self, reply: Reply, response: Response) {
        let frame = protocol::encode_response(reply.correlation_id, reply.api_version, &response);
        self.finish_raw(reply, Some(frame));
    }

    /// Fills a response slot (`None`: the request gets no response, as acks=0 produce).
    fn finish_raw(&mut self, reply: Reply, frame: Option<Vec<u8>>) {
        let Some(q) = self.conns.get_mut(&reply.conn) else {
            return; // the connection closed while the request waited
        };
        // A request answered with nothing (acks=0) still leaves as an empty frame, so the
        // driver can count every request as finished (it bounds requests in flight per
        // connection) without knowing which requests get no answer.
        q.ready.insert(
            reply.seq,
            (frame.unwrap_or_default(), reply.api_key, reply.received),
        );
        while let Some((frame, api_key, received)) = q.ready.remove(&q.first_unsent) {
            q.first_unsent += 1;
            self.outputs.push_back(Output::Response {
                conn: reply.conn,
                frame,
                api_key,
                received,
            });
        }
    }

    fn token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    // ----- partitions -----

    /// Issues store-open jobs for partitions `from..` of a topic.
    fn open_partitions(&mut self, topic: &Topic, from: u32) {
        let ids = self.partition_ids.entry(topic.name.clone()).or_default();
        for index in from..topic.partitions {
            let id = PartitionId(self.next_partition_id);
            self.next_partition_id += 1;
            ids.push(id);
            self.partitions
                .insert(id, Partition::new(&topic.name, index));
            self.outputs.push_back(Output::Storage {
                target: Some(id),
                job: StorageJob::Open {
                    dir: topic.partition_dir(index),
                    cfg: topic.config.log_config(&self.cfg.log),
                },
            });
        }
    }

    fn partition_id(&self, topic: &str, index: i32) -> Option<PartitionId> {
        let ids = self.partition_ids.get(topic)?;
        usize::try_from(index)
            .ok()
            .and_then(|i| ids.get(i))
            .copied()
    }

    fn save_catalogue(&mut self) {
        self.outputs.push_back(Output::Storage {
            target: None,
            job: StorageJob::SaveCatalogue(self.catalogue.encode()),
        });
    }

    fn on_storage(&mut self, target: Option<PartitionId>, done: StorageDone) {
        let Some(id) = target else {
            if let StorageDone::CatalogueSaved = done {
                self.on_catalogue_saved();
            }
            return;
        };
        if !self.partitions.contains_key(&id) {
            return; // deleted meanwhile
        }
        match done {
            StorageDone::Opened { recovery, batches } => self.on_opened(id, recovery, batches),
            StorageDone::Raft(completion) => {
                if let raft::StorageCompletion::Appended { last } = completion {
                    let p = self.partitions.get_mut(&id).expect("checked");
                    p.written = p.written.max(last);
                }
                self.drive_raft(id, |now| raft::Input::Storage { now, completion });
                self.after_partition_change(id);
            }
            StorageDone::Read { token, result } => self.on_read(id, token, result),
            StorageDone::OffsetForTimestamp { token, result } => {
                self.on_timestamp_lookup(id, token, result)
            }
            StorageDone::Housekeeping { log_start } => {
                let p = self.partitions.get_mut(&id).expect("checked");
                if log_start > p.log_start {
                    p.log_start = log_start.min(p.high_watermark);
                    self.outputs.push_back(Output::Event(Event::LogStartMoved {
                        topic: p.topic.clone(),
                        partition: p.index,
                        offset: p.log_start,
                    }));
                }
            }
            StorageDone::Deleted => {
                self.partitions.remove(&id);
            }
            StorageDone::CatalogueSaved => {}
        }
    }

    fn on_opened(
        &mut self,
        id: PartitionId,
        recovery: crate::storage::PartitionRecovery,
        batches: Vec<crate::protocol::records::BatchHeader>,
    ) {
        let node = NodeId(self.cfg.node_id as u32);
        let mut raft_cfg = raft::Config::new(node, vec![node]);
        raft_cfg.election_timeout = self.cfg.raft_election_timeout;
        raft_cfg.heartbeat_interval = self.cfg.raft_heartbeat_interval;
        let rng = DetRng::with_stream(self.rng.next_u64(), id.0);
        let report = recovery.report.to_string();
        let dropped_bytes = recovery.report.truncated.iter().map(|t| t.2).sum();
        let p = self.partitions.get_mut(&id).expect("checked");
        for h in &batches {
            p.remember_batch(h, h.base_offset);
        }
        for &(epoch, offset) in &recovery.epochs {
            p.note_epoch(epoch, offset);
        }
        p.log_start = recovery.log_start;
        p.next_offset = recovery.next_offset;
        p.high_watermark = recovery.next_offset;
        p.written = recovery.raft.base.index;
        let mut raft = Raft::new(raft_cfg, recovery.raft, rng, self.now)
            .expect("a single-voter config is valid");
        raft.campaign_if_alone();
        p.raft = Some(raft);
        self.outputs
            .push_back(Output::Event(Event::PartitionOpened {
                topic: p.topic.clone(),
                partition: p.index,
                recovery: report,
                dropped_bytes,
            }));
        self.drain_raft(id);
        self.after_partition_change(id);
    }

    /// Feeds one input to a partition's Raft group and routes its outputs.
    fn drive_raft(&mut self, id: PartitionId, input: impl FnOnce(Now) -> raft::Input) {
        let now = self.now;
        let Some(raft) = self.partitions.get_mut(&id).and_then(|p| p.raft.as_mut()) else {
            return;
        };
        raft.handle_input(input(now));
        self.drain_raft(id);
    }

    fn drain_raft(&mut self, id: PartitionId) {
        let p = self.partitions.get_mut(&id).expect("live partition");
        let Some(raft) = p.raft.as_mut() else { return };
        let mut lost = false;
        while let Some(out) = raft.poll_output() {
            match out {
                raft::Output::Storage(req) => self.outputs.push_back(Output::Storage {
                    target: Some(id),
                    job: StorageJob::Raft(req),
                }),
                raft::Output::Send { .. } => {} // a single voter has no peers
                raft::Output::Proposal { outcome, .. } => {
                    // Busy is seen by the proposer (the log did not grow); these mean
                    // leadership was lost with proposals in flight.
                    if matches!(
                        outcome,
                        raft::ProposalOutcome::NotLeader { .. } | raft::ProposalOutcome::Unknown
                    ) {
                        lost = true;
                    }
                }
                raft::Output::Event(raft::Event::RoleChanged { term, role, .. }) => {
                    if role == raft::Role::Leader {
                        self.outputs.push_back(Output::Event(Event::LeaderElected {
                            topic: p.topic.clone(),
                            partition: p.index,
                            epoch: term.0 as i32,
                        }));
                    }
                }
                raft::Output::Event(_) => {}
            }
        }
        p.sync_with_raft();
        if lost {
            self.data.fail_partition(id, codes::NOT_LEADER_OR_FOLLOWER);
        }
    }

    /// After anything that may move a partition's written index or high watermark: answer the
    /// produce and fetch requests waiting on it.
    fn after_partition_change(&mut self, id: PartitionId) {
        let Some(p) = self.partitions.get_mut(&id) else {
            return;
        };
        let before = p.high_watermark;
        p.advance_high_watermark();
        let hw = p.high_watermark;
        if hw != before {
            self.outputs.push_back(Output::Event(Event::HighWatermark {
                topic: p.topic.clone(),
                partition: p.index,
                offset: hw,
            }));
        }
        self.produce_progress(id);
        if hw != before {
            self.wake_fetches(id);
        }
    }

    fn on_timeout(&mut self) {
        let now = self.now.mono;
        let due: Vec<PartitionId> = self
            .partitions
            .iter()
            .filter(|(_, p)| {
                p.raft
                    .as_ref()
                    .and_then(Raft::poll_timeout)
                    .is_some_and(|d| d <= now)
            })
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            self.drive_raft(id, raft::Input::Timeout);
            self.after_partition_change(id);
        }
        if self.housekeeping_deadline.is_some_and(|d| d <= now) {
            self.housekeeping_deadline = Some(now + self.cfg.housekeeping_interval);
            let ids: Vec<PartitionId> = self
                .partitions
                .iter()
                .filter(|(_, p)| p.raft.is_some())
                .map(|(&id, _)| id)
                .collect();
            for id in ids {
                self.outputs.push_back(Output::Storage {
                    target: Some(id),
                    job: StorageJob::Housekeeping,
                });
            }
        }
        self.expire_waits();
    }
}

/// A random id in Kafka's cluster-id shape (22 base64url characters of 16 random bytes).
fn random_id(rng: &mut DetRng) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..22).map(|_| ALPHABET[rng.index(64)] as char).collect()
}

/// A topic id: 16 random bytes.
fn random_uuid(rng: &mut DetRng) -> crate::protocol::wire::Uuid {
    let mut b = [0u8; 16];
    for x in &mut b {
        *x = rng.index(256) as u8;
    }
    crate::protocol::wire::Uuid(b)
}

#[cfg(test)]
mod tests;
