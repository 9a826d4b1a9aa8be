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
pub mod group;
mod metadata;
mod partition;
pub mod peer;
mod storage;
mod topics;

pub use metadata::{assign_replicas, MetaOp, MetaRecord, NewTopic};
pub use partition::{Partition, SequenceCheck};
pub use peer::{Envelope, GroupKey, PartitionKey, PeerBody};
pub use storage::{
    BrokerStorage, ReadError, StorageDone, StorageJob, StorageTarget, CATALOGUE_FILE, METADATA_DIR,
};
pub use topics::{validate_topic_name, BrokerInfo, Catalogue, Topic, TopicConfig};

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
    /// The metadata group's voters (node ids). Empty: this broker alone.
    pub voters: Vec<i32>,
    /// Where other brokers reach this one (registered in the metadata log).
    pub peer_addr: String,
    /// The data directory, as DescribeLogDirs names it.
    pub log_dir: String,
    /// Replicas of a topic created without a replication factor (Kafka's
    /// default.replication.factor), capped by the live brokers.
    pub default_replication_factor: u16,
    /// How often a broker reports to the controller.
    pub heartbeat_interval: Duration,
    /// A broker silent this long is fenced (Kafka's broker.session.timeout.ms).
    pub session_timeout: Duration,
    /// How often a leader checks whether to hand leadership back to the preferred replica.
    pub leader_balance_interval: Duration,
    /// Partitions of `__consumer_offsets` (Kafka's offsets.topic.num.partitions).
    pub offsets_topic_partitions: u32,
    /// Replicas of `__consumer_offsets`, capped by the brokers of the cluster (Kafka's
    /// offsets.topic.replication.factor).
    pub offsets_topic_replication_factor: u16,
    /// Segment size of `__consumer_offsets` (Kafka's offsets.topic.segment.bytes): the
    /// granularity at which superseded group records are deleted.
    pub offsets_segment_bytes: u64,
    /// Allowed session timeouts of group members (Kafka's group.min/max.session.timeout.ms).
    pub group_min_session_timeout: Duration,
    pub group_max_session_timeout: Duration,
    /// How long the first rebalance of an empty group waits for more members (Kafka's
    /// group.initial.rebalance.delay.ms).
    pub group_initial_rebalance_delay: Duration,
    /// A deliberately planted bug, for proving that the simulator's Kafka-level checkers
    /// catch it.
    #[cfg(feature = "broken-variants")]
    pub bug: Option<BrokerBug>,
}

/// Known-wrong broker behaviours that tests switch on to show a checker catching them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokerBug {
    /// Fetch serves records up to the leader's log end, above the high watermark.
    ReadAboveHighWatermark,
    /// acks=all is answered once the leader wrote the batch, before it is committed.
    AckAllAtLeaderAppend,
    /// A new leader serves before an entry of its term commits (its high watermark may be
    /// below what the previous leader exposed).
    ServeBeforeTermCommit,
    /// Idempotent producer state is not rebuilt from replicated batches (only the leader that
    /// appended a batch remembers it).
    ForgetReplicatedProducerState,
    /// OffsetCommit skips the generation and member checks, so a member that was replaced
    /// (paused past its session) can still commit its stale position.
    GroupCommitFromAnyGeneration,
    /// A completed join is answered without writing the generation first, so a coordinator
    /// that takes over can hand out the same generation again.
    GroupJoinNotWritten,
    /// An offset commit is answered when proposed, before it is replicated.
    GroupCommitBeforeReplicated,
    /// Members never expire: a crashed member keeps its partitions.
    GroupNoSessionExpiry,
    /// OffsetFetch reports one past the committed offset (a consumer resumes past a record).
    GroupFetchOffsetOffByOne,
    /// Neither a completed join nor the leader's assignment is written before members learn of
    /// them (the rebalance lives only in the coordinator's memory), so a coordinator that takes
    /// over resumes an older generation and hands the next one out again, with another
    /// assignment.
    GroupRebalanceNotWritten,
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
            voters: Vec::new(),
            peer_addr: String::new(),
            log_dir: "data".to_string(),
            default_replication_factor: 1,
            heartbeat_interval: Duration::from_millis(200),
            session_timeout: Duration::from_millis(2000),
            leader_balance_interval: Duration::from_secs(2),
            offsets_topic_partitions: 16,
            offsets_topic_replication_factor: 3,
            offsets_segment_bytes: 16 << 20,
            group_min_session_timeout: Duration::from_secs(6),
            group_max_session_timeout: Duration::from_secs(1800),
            group_initial_rebalance_delay: Duration::from_secs(3),
            #[cfg(feature = "broken-variants")]
            bug: None,
        }
    }

    #[cfg(feature = "broken-variants")]
    pub(crate) fn has_bug(&self, bug: BrokerBug) -> bool {
        self.bug == Some(bug)
    }

    #[cfg(not(feature = "broken-variants"))]
    #[inline(always)]
    pub(crate) fn has_bug(&self, _bug: BrokerBug) -> bool {
        false
    }

    /// The metadata voters, this broker alone when none are configured.
    pub fn metadata_voters(&self) -> Vec<i32> {
        if self.voters.is_empty() {
            vec![self.node_id]
        } else {
            self.voters.clone()
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
    /// A client connected from `host` (its IP address; DescribeGroups reports it for group
    /// members). Optional: a connection the broker was not told about has no host.
    Connected {
        now: Now,
        conn: ConnId,
        host: String,
    },
    /// The connection is gone; drop what it was waiting for.
    Disconnected { now: Now, conn: ConnId },
    /// Storage finished a job for `target`.
    Storage {
        now: Now,
        target: StorageTarget,
        done: StorageDone,
    },
    /// One message from another broker (an encoded [`Envelope`]).
    Peer { now: Now, bytes: Bytes },
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
        target: StorageTarget,
        job: StorageJob,
    },
    /// Deliver these bytes to broker `to` (best effort: loss is tolerated, order per pair of
    /// brokers is expected but not relied on).
    Peer { to: i32, bytes: Vec<u8> },
    /// The peer addresses the metadata log now lists (id, host:port), for the driver's
    /// address book. Voters' addresses come from the driver's own configuration.
    PeerAddresses(Vec<(i32, String)>),
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
    /// This broker became the partition's leader.
    LeaderElected {
        topic: String,
        partition: u32,
        epoch: i32,
    },
    /// This broker stopped leading the partition (another leader, or lost quorum).
    LeaderLost {
        topic: String,
        partition: u32,
        epoch: i32,
        /// The new leader, if this broker knows it.
        leader: Option<i32>,
    },
    /// This broker's replica timed out waiting for a leader and stands for election in
    /// `epoch` (its pre-vote succeeded: a majority also lost the leader).
    ElectionStarted {
        topic: String,
        partition: u32,
        epoch: i32,
    },
    /// This broker's replica follows a new leader (`leader`, in `epoch`).
    FollowingLeader {
        topic: String,
        partition: u32,
        epoch: i32,
        leader: i32,
    },
    /// Uncommitted entries of this replica were removed to match the leader.
    Truncated {
        topic: String,
        partition: u32,
        from_offset: i64,
        entries: u64,
    },
    /// The metadata group has a new term; `leader` is the controller if known.
    ControllerChanged {
        term: u64,
        leader: Option<i32>,
    },
    MetadataError {
        reason: String,
    },
    /// An idempotent batch was refused (out of order, unknown producer, fenced epoch): what
    /// the partition knows of the producer, for the operator chasing a client's fatal error.
    SequenceRefused {
        topic: String,
        partition: u32,
        producer_id: i64,
        epoch: i16,
        sequence: i32,
        code: i16,
        /// The partition's recent batches of this producer: (first seq, last seq, offsets).
        known: String,
    },
    /// A peer sent bytes that do not decode (another version, or not a broker).
    PeerRejected {
        reason: String,
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
    /// This broker now coordinates the groups of an offsets partition (it serves as its
    /// leader), resumed from the committed records.
    GroupsLoaded {
        partition: u32,
        groups: usize,
    },
    /// This broker stopped coordinating an offsets partition's groups (leadership lost).
    GroupsUnloaded {
        partition: u32,
        groups: usize,
    },
    /// A group finished a rebalance: its members have their assignments.
    GroupStable {
        group: String,
        generation: i32,
        members: usize,
    },
    /// A member's session timed out without a heartbeat; the group rebalances without it.
    GroupMemberExpired {
        group: String,
        member: String,
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
    /// The client's address, as Kafka shows it ("/127.0.0.1"); empty if not known.
    host: String,
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
    /// Topic -> partition index -> id, for the partitions this broker hosts.
    partition_ids: BTreeMap<String, BTreeMap<u32, PartitionId>>,
    partitions: BTreeMap<PartitionId, Partition>,
    /// Cluster-wide partition identity -> local id.
    keys: BTreeMap<PartitionKey, PartitionId>,
    meta: metadata::MetaState,
    /// Raft messages gathered during one input, per destination broker.
    outbox: BTreeMap<i32, Vec<(GroupKey, raft::Message)>>,
    balance_deadline: Option<Instant>,
    next_partition_id: u64,
    conns: BTreeMap<ConnId, ConnQueue>,
    data: data::Waiting,
    admin: admin::Waiting,
    groups: group::Groups,
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
    /// Starts a broker from its persisted metadata image (`None` on a fresh data directory).
    /// The metadata group's store (voters) and every hosted partition's store are opened
    /// through storage jobs before they serve.
    pub fn new(
        cfg: BrokerConfig,
        catalogue: Option<&[u8]>,
        mut rng: DetRng,
        now: Now,
    ) -> Result<Broker, String> {
        cfg.log.validate()?;
        let voters = cfg.metadata_voters();
        let mut sorted = voters.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != voters.len() {
            return Err(format!("a voter is listed twice in {voters:?}"));
        }
        if voters.iter().any(|&v| v < 0) {
            return Err(format!("voter ids must not be negative: {voters:?}"));
        }
        let catalogue = match catalogue {
            Some(bytes) => Catalogue::decode(bytes, &cfg.log, cfg.node_id)?,
            None => Catalogue::default(),
        };
        let incarnation = rng.next_u64();
        let mut broker = Broker {
            housekeeping_deadline: Some(now.mono + cfg.housekeeping_interval),
            balance_deadline: Some(now.mono + cfg.leader_balance_interval),
            catalogue,
            partition_ids: BTreeMap::new(),
            partitions: BTreeMap::new(),
            keys: BTreeMap::new(),
            meta: metadata::MetaState::new(voters, incarnation, now.mono),
            outbox: BTreeMap::new(),
            next_partition_id: 1,
            conns: BTreeMap::new(),
            data: data::Waiting::default(),
            admin: admin::Waiting::default(),
            groups: group::Groups::default(),
            next_token: 1,
            outputs: VecDeque::new(),
            rng,
            now,
            cfg,
        };
        if broker.is_voter() {
            broker.outputs.push_back(Output::Storage {
                target: StorageTarget::Metadata,
                job: StorageJob::OpenMetadata,
            });
        }
        let topics: Vec<Topic> = broker.catalogue.topics.values().cloned().collect();
        for t in topics {
            broker.open_partitions(&t, 0);
        }
        if !broker.catalogue.brokers.is_empty() {
            broker.announce_peer_addresses();
        }
        Ok(broker)
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.cfg
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// Whether every hosted partition has opened and knows its leader (for start-up logs and
    /// tests).
    pub fn all_partitions_ready(&self) -> bool {
        self.partitions
            .values()
            .all(|p| p.raft.as_ref().is_some_and(|r| r.leader().is_some()))
    }

    /// The controller (metadata group leader) as this broker knows it.
    pub fn controller(&self) -> Option<i32> {
        self.meta.controller
    }

    /// The hosted partitions, for observers (the simulator's checkers, status output).
    pub fn partitions(&self) -> impl Iterator<Item = &Partition> {
        self.partitions.values()
    }

    /// The metadata group member, if this broker is a voter and its store has opened.
    pub fn metadata_raft(&self) -> Option<&Raft> {
        self.meta.raft.as_ref()
    }

    // ----- driving contract -----

    pub fn handle_input(&mut self, input: Input) {
        let now = match &input {
            Input::Request { now, .. }
            | Input::Connected { now, .. }
            | Input::Disconnected { now, .. }
            | Input::Storage { now, .. }
            | Input::Peer { now, .. } => *now,
            Input::Timeout(now) => *now,
        };
        if now.mono >= self.now.mono {
            self.now = now;
        }
        match input {
            Input::Request { conn, frame, .. } => self.on_request(conn, &frame),
            Input::Connected { conn, host, .. } => {
                self.conns.entry(conn).or_default().host = host;
            }
            Input::Disconnected { conn, .. } => {
                self.conns.remove(&conn);
                self.data.forget_conn(conn);
            }
            Input::Storage { target, done, .. } => self.on_storage(target, done),
            Input::Peer { bytes, .. } => self.on_peer(&bytes),
            Input::Timeout(_) => self.on_timeout(),
        }
        self.flush_outbox();
        self.invariants();
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let raft = self
            .partitions
            .values()
            .filter_map(|p| p.raft.as_ref().and_then(Raft::poll_timeout))
            .map(quantize);
        let meta = self.meta.raft.as_ref().and_then(Raft::poll_timeout);
        raft.chain(meta)
            .chain(self.data.next_deadline())
            .chain(self.housekeeping_deadline)
            .chain(self.balance_deadline)
            .chain(self.meta.heartbeat_due)
            .chain(self.groups.next_deadline())
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
            Request::DescribeLogDirs(r) => self.on_describe_log_dirs(reply, r),
            Request::InitProducerId(r) => self.on_init_producer_id(reply, r),
            Request::Produce(r) => self.on_produce(reply, r),
            Request::Fetch(r) => self.on_fetch(reply, r),
            Request::ListOffsets(r) => self.on_list_offsets(reply, r),
            Request::OffsetForLeaderEpoch(r) => self.on_offset_for_leader_epoch(reply, r),
            Request::FindCoordinator(r) => self.on_find_coordinator(reply, r),
            Request::JoinGroup(r) => {
                let client_id = header.client_id.clone().unwrap_or_default();
                self.on_join_group(reply, &client_id, r)
            }
            Request::SyncGroup(r) => self.on_sync_group(reply, r),
            Request::Heartbeat(r) => self.on_heartbeat(reply, r),
            Request::LeaveGroup(r) => self.on_leave_group(reply, r),
            Request::OffsetCommit(r) => self.on_offset_commit(reply, r),
            Request::OffsetFetch(r) => self.on_offset_fetch(reply, r),
            Request::DescribeGroups(r) => self.on_describe_groups(reply, r),
            Request::ListGroups(r) => self.on_list_groups(reply, r),
            Request::DeleteGroups(r) => self.on_delete_groups(reply, r),
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

    // ----- peers -----

    fn on_peer(&mut self, bytes: &[u8]) {
        let env = match Envelope::decode(bytes) {
            Ok(env) => env,
            Err(reason) => {
                self.outputs
                    .push_back(Output::Event(Event::PeerRejected { reason }));
                return;
            }
        };
        let from = env.from;
        if from == self.cfg.node_id || from < 0 {
            return;
        }
        match env.body {
            PeerBody::Raft(messages) => {
                for (group, message) in messages {
                    let from = NodeId(from as u32);
                    match group {
                        GroupKey::Metadata => {
                            self.drive_meta(|now| raft::Input::Receive { now, from, message })
                        }
                        GroupKey::Partition(key) => {
                            // Not hosted (yet): this broker has not applied the topic's creation,
                            // or the topic is gone. Raft retries; nothing to answer.
                            let Some(&id) = self.keys.get(&key) else {
                                continue;
                            };
                            self.drive_raft(id, |now| raft::Input::Receive { now, from, message });
                            self.after_partition_change(id);
                        }
                    }
                }
            }
            PeerBody::Heartbeat(hb) => {
                let reply = self.controller_heartbeat(from, hb);
                self.send_peer(from, PeerBody::HeartbeatReply(reply));
            }
            PeerBody::HeartbeatReply(reply) => self.on_heartbeat_reply(from, reply),
            PeerBody::Forward { id, op } => self.controller_op(from, id, op),
            PeerBody::Forwarded { id, result } => self.on_forwarded(id, result),
        }
    }

    // ----- partitions -----

    /// Issues store-open jobs for partitions `from..` of a topic that this broker hosts.
    fn open_partitions(&mut self, topic: &Topic, from: u32) {
        let me = self.cfg.node_id;
        for index in from..topic.partition_count() {
            let replicas = topic.replicas[index as usize].clone();
            if !replicas.contains(&me) {
                continue;
            }
            let id = PartitionId(self.next_partition_id);
            self.next_partition_id += 1;
            self.partition_ids
                .entry(topic.name.clone())
                .or_default()
                .insert(index, id);
            let key = PartitionKey {
                topic_id: topic.id.0,
                partition: index,
            };
            self.keys.insert(key, id);
            let single_voter = replicas.len() == 1;
            let replay = topic.name == group::records::OFFSETS_TOPIC;
            let mut p = Partition::new(&topic.name, index, key, replicas);
            p.keep_committed = replay;
            p.serve_before_term_commit = self.cfg.has_bug(BrokerBug::ServeBeforeTermCommit);
            p.forget_replicated_producers =
                self.cfg.has_bug(BrokerBug::ForgetReplicatedProducerState);
            self.partitions.insert(id, p);
            self.outputs.push_back(Output::Storage {
                target: StorageTarget::Partition(id),
                job: StorageJob::Open {
                    dir: topic.partition_dir(index),
                    cfg: topic.config.log_config(&self.cfg.log),
                    single_voter,
                    replay,
                },
            });
        }
    }

    fn partition_id(&self, topic: &str, index: i32) -> Option<PartitionId> {
        let ids = self.partition_ids.get(topic)?;
        u32::try_from(index).ok().and_then(|i| ids.get(&i)).copied()
    }

    /// The error for a partition this broker does not host: unknown if the metadata does not
    /// list it, otherwise "not the leader" so the client refreshes metadata and goes there.
    fn not_hosted_code(&self, topic: &str, index: i32) -> i16 {
        let listed = self
            .catalogue
            .topics
            .get(topic)
            .is_some_and(|t| index >= 0 && (index as u32) < t.partition_count());
        if listed {
            codes::NOT_LEADER_OR_FOLLOWER
        } else {
            codes::UNKNOWN_TOPIC_OR_PARTITION
        }
    }

    /// Leader, epoch, replicas and in-sync replicas of a partition as this broker sees it:
    /// from its own replica if it hosts one, else from the controller's leader table.
    fn partition_view(&self, topic: &Topic, index: u32) -> PartitionView {
        let replicas = topic.replicas[index as usize].clone();
        let key = PartitionKey {
            topic_id: topic.id.0,
            partition: index,
        };
        let live = |b: i32| {
            b == self.cfg.node_id || self.catalogue.brokers.get(&b).is_none_or(|i| !i.fenced)
        };
        let table = self.meta.known_leaders.get(&key);
        let local = self.keys.get(&key).and_then(|id| self.partitions.get(id));
        let (mut leader, mut epoch, mut lag) = (-1, -1, None);
        if let Some(&(e, l, ref lg)) = table {
            (leader, epoch, lag) = (l, e, Some(lg.clone()));
        }
        // This broker's own replica, when it knows better: a newer term, or a leader it
        // follows (or is) in the table's term. A replica that lost track of the leader in the
        // same term (its pre-vote failed: the others still hear the leader) keeps the table's.
        let mut followed = false;
        if let Some(p) = local {
            if let Some(r) = &p.raft {
                let term = p.leader_epoch();
                let own = r.leader().map(|l| l.0 as i32);
                if term > epoch || (term == epoch && own.is_some()) || table.is_none() {
                    // A follower knows no lags itself: it takes what the leader last reported
                    // to the controller for this same leadership, so that every broker
                    // reports about the same in-sync replicas.
                    lag = if p.is_leader() {
                        Some(p.follower_lag())
                    } else {
                        table
                            .filter(|&&(e, l, _)| e == term && Some(l) == own)
                            .map(|(_, _, lg)| lg.clone())
                    };
                    leader = own.unwrap_or(-1);
                    epoch = term;
                    followed = own.is_some();
                }
            }
        }
        // The controller fences a broker it stopped hearing from. A leader known only from
        // the table is then not advertised (it is probably gone); one this broker's replica
        // follows in the current term still leads, whatever the controller thinks, and
        // clients must keep writing to it.
        if leader >= 0 && !followed && !live(leader) {
            leader = -1;
        }
        let in_sync = match lag {
            Some(lag) if leader >= 0 => replicas
                .iter()
                .copied()
                .filter(|&r| r == leader || (live(r) && lag.iter().any(|&(b, l)| b == r && l == 0)))
                .collect(),
            _ => replicas.iter().copied().filter(|&r| live(r)).collect(),
        };
        PartitionView {
            leader,
            epoch,
            replicas,
            in_sync,
        }
    }

    /// What this broker reports to the controller about the partitions it leads.
    fn leader_reports(&self) -> Vec<peer::LeaderReport> {
        self.partitions
            .values()
            .filter(|p| p.is_leader())
            .map(|p| peer::LeaderReport {
                key: p.key,
                epoch: p.leader_epoch(),
                lag: p.follower_lag(),
            })
            .collect()
    }

    fn save_catalogue(&mut self) {
        self.outputs.push_back(Output::Storage {
            target: StorageTarget::Broker,
            job: StorageJob::SaveCatalogue(self.catalogue.encode()),
        });
    }

    fn on_storage(&mut self, target: StorageTarget, done: StorageDone) {
        let id = match target {
            StorageTarget::Broker => return, // catalogue saves: nobody waits on them
            StorageTarget::Metadata => {
                match done {
                    StorageDone::MetadataOpened { recovered } => self.on_metadata_opened(recovered),
                    StorageDone::Raft(completion) => {
                        self.drive_meta(|now| raft::Input::Storage { now, completion })
                    }
                    _ => {}
                }
                return;
            }
            StorageTarget::Partition(id) => id,
        };
        if !self.partitions.contains_key(&id) {
            return; // deleted meanwhile
        }
        match done {
            StorageDone::Opened {
                recovery,
                batches,
                replay,
            } => self.on_opened(id, *recovery, batches, replay),
            StorageDone::Raft(completion) => {
                if let raft::StorageCompletion::Appended { last } = completion {
                    let p = self.partitions.get_mut(&id).expect("checked");
                    p.written = p.written.max(last);
                }
                self.drive_raft(id, |now| raft::Input::Storage { now, completion });
                self.after_partition_change(id);
            }
            StorageDone::Read { token, result } => self.on_read(token, result),
            StorageDone::OffsetForTimestamp { token, result } => {
                self.on_timestamp_lookup(id, token, result)
            }
            StorageDone::Housekeeping {
                log_start,
                size_bytes,
            } => {
                let p = self.partitions.get_mut(&id).expect("checked");
                p.size_bytes = size_bytes;
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
                self.forget_group_partition(id);
            }
            StorageDone::CatalogueSaved
            | StorageDone::CommitSaved
            | StorageDone::MetadataOpened { .. } => {}
        }
    }

    fn on_opened(
        &mut self,
        id: PartitionId,
        recovery: crate::storage::PartitionRecovery,
        batches: Vec<crate::protocol::records::BatchHeader>,
        replay: Vec<(i64, Bytes)>,
    ) {
        let node = NodeId(self.cfg.node_id as u32);
        let p = self.partitions.get_mut(&id).expect("checked");
        let voters = p.replicas.iter().map(|&r| NodeId(r as u32)).collect();
        let mut raft_cfg = raft::Config::new(node, voters);
        raft_cfg.election_timeout = self.cfg.raft_election_timeout;
        raft_cfg.heartbeat_interval = self.cfg.raft_heartbeat_interval;
        let rng = DetRng::with_stream(self.rng.next_u64(), id.0);
        let report = recovery.report.to_string();
        let dropped_bytes = recovery.report.truncated.iter().map(|t| t.2).sum();
        let recovered = p.open(recovery, &batches);
        let keep_committed = p.keep_committed;
        let raft = Raft::new(raft_cfg, recovered, rng, self.now);
        let mut raft = match raft {
            Ok(r) => r,
            Err(e) => {
                self.outputs.push_back(Output::Event(Event::MetadataError {
                    reason: format!("{}-{}: bad replica set: {e}", p.topic, p.index),
                }));
                return;
            }
        };
        raft.campaign_if_alone();
        // A brand-new partition's preferred replica stands first, so clients do not see a
        // leadership move to it a balance interval later.
        if p.replicas.len() > 1 && p.replicas[0] == self.cfg.node_id && raft.last_index().0 == 0 {
            raft.campaign_now();
        }
        p.raft = Some(raft);
        p.sync_with_raft();
        if keep_committed {
            self.replay_groups(id, replay);
        }
        let p = self.partitions.get_mut(&id).expect("checked");
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
        let mut truncated = None;
        while let Some(out) = raft.poll_output() {
            match out {
                raft::Output::Storage(req) => self.outputs.push_back(Output::Storage {
                    target: StorageTarget::Partition(id),
                    job: StorageJob::Raft(req),
                }),
                raft::Output::Send { to, message } => self
                    .outbox
                    .entry(to.0 as i32)
                    .or_default()
                    .push((GroupKey::Partition(p.key), message)),
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
                raft::Output::Event(raft::Event::RoleChanged { term, role, leader }) => {
                    let epoch = i32::try_from(term.0).unwrap_or(i32::MAX);
                    let (topic, partition) = (p.topic.clone(), p.index);
                    let leader = leader.map(|l| l.0 as i32);
                    if role == raft::Role::Leader {
                        p.was_leader = true;
                        self.outputs.push_back(Output::Event(Event::LeaderElected {
                            topic,
                            partition,
                            epoch,
                        }));
                        continue;
                    }
                    if p.was_leader {
                        p.was_leader = false;
                        lost = true;
                        self.outputs.push_back(Output::Event(Event::LeaderLost {
                            topic: topic.clone(),
                            partition,
                            epoch,
                            leader,
                        }));
                    }
                    let event = match (role, leader) {
                        (raft::Role::Candidate, _) => Some(Event::ElectionStarted {
                            topic,
                            partition,
                            epoch,
                        }),
                        (raft::Role::Follower, Some(leader)) if leader != self.cfg.node_id => {
                            Some(Event::FollowingLeader {
                                topic,
                                partition,
                                epoch,
                                leader,
                            })
                        }
                        _ => None,
                    };
                    if let Some(e) = event {
                        self.outputs.push_back(Output::Event(e));
                    }
                }
                raft::Output::Event(raft::Event::Truncated { from, removed }) => {
                    let (first, total) = truncated.unwrap_or((from, 0));
                    truncated = Some((first.min(from), total + removed));
                }
                raft::Output::Event(_) => {}
            }
        }
        // Truncations first: the entries that replaced the removed ones are in the log now
        // and are accounted next.
        let truncated = truncated.map(|(from, removed)| (p.truncate_from(from), removed));
        p.sync_with_raft();
        if let Some((from_offset, entries)) = truncated {
            self.outputs.push_back(Output::Event(Event::Truncated {
                topic: p.topic.clone(),
                partition: p.index,
                from_offset,
                entries,
            }));
        }
        if lost {
            self.group_leadership_lost(id);
            self.data.fail_partition(id, codes::NOT_LEADER_OR_FOLLOWER);
            self.flush_failed_produces();
            // Parked fetches learn at once that this broker no longer leads.
            self.wake_fetches(id);
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
            if let Some(commit) = p.commit_to_save() {
                self.outputs.push_back(Output::Storage {
                    target: StorageTarget::Partition(id),
                    job: StorageJob::SaveCommit(commit),
                });
            }
        }
        self.produce_progress(id);
        if hw != before {
            self.wake_fetches(id);
        }
        self.group_partition_change(id);
    }

    fn on_timeout(&mut self) {
        let now = self.now.mono;
        if self
            .meta
            .raft
            .as_ref()
            .and_then(Raft::poll_timeout)
            .is_some_and(|d| d <= now)
        {
            self.drive_meta(raft::Input::Timeout);
        }
        if self.meta.heartbeat_due.is_some_and(|d| d <= now) {
            self.heartbeat_tick();
        }
        let due: Vec<PartitionId> = self
            .partitions
            .iter()
            .filter(|(_, p)| {
                p.raft
                    .as_ref()
                    .and_then(Raft::poll_timeout)
                    .is_some_and(|d| quantize(d) <= now)
            })
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            self.drive_raft(id, raft::Input::Timeout);
            self.after_partition_change(id);
        }
        if self.balance_deadline.is_some_and(|d| d <= now) {
            self.balance_deadline = Some(now + self.cfg.leader_balance_interval);
            self.balance_leaders();
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
                let floor = self.groups.checkpoint_floor(id);
                self.outputs.push_back(Output::Storage {
                    target: StorageTarget::Partition(id),
                    job: StorageJob::Housekeeping { floor },
                });
            }
        }
        self.expire_waits();
        if self.groups.next_deadline().is_some_and(|d| d <= now) {
            self.group_timers();
        }
    }

    /// Hands leadership back to each partition's preferred replica (the first) when it is
    /// live and fully caught up, so leadership spreads as the assignment intended and returns
    /// to a broker after it comes back.
    fn balance_leaders(&mut self) {
        let me = self.cfg.node_id;
        let mut moving = Vec::new();
        for (&id, p) in self.partitions.iter_mut() {
            let Some(&preferred) = p.replicas.first() else {
                continue;
            };
            if preferred == me || !p.is_leader() {
                continue;
            }
            let live = self
                .catalogue
                .brokers
                .get(&preferred)
                .is_some_and(|b| !b.fenced);
            let Some(raft) = p.raft.as_mut() else {
                continue;
            };
            let target = NodeId(preferred as u32);
            if live && raft.matched(target) == Some(raft.last_index()) && !raft.is_transferring() {
                raft.transfer_leadership(target);
                moving.push(id);
            }
        }
        for id in moving {
            self.drain_raft(id);
        }
    }
}

/// A partition as clients are told about it.
#[derive(Debug)]
struct PartitionView {
    leader: i32,
    epoch: i32,
    replicas: Vec<i32>,
    in_sync: Vec<i32>,
}

/// Partition timers fire on a 5 ms grid, so the heartbeats of many partitions led by one
/// broker leave together and travel to each peer in one envelope.
fn quantize(t: Instant) -> Instant {
    const GRID: u64 = 5_000_000;
    Instant(t.0.div_ceil(GRID) * GRID)
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
