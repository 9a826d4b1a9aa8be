//! Simulated Kafka clients, written sans-IO like the broker: each is a state machine that
//! takes "woke up", "a response arrived", "the connection dropped" and "the connection was
//! refused" as inputs and emits requests (real Kafka frames built with core's codec), closes
//! and wake-up times as outputs. The simulator carries the frames over its network.
//!
//! This file holds what every client shares: the driving context, request bookkeeping with
//! timeouts, the metadata view (refreshed from any broker on errors, drops and timeouts, and
//! ignoring answers older than what it already knows, as KIP-320 clients do), the
//! classification of error codes, and the admin client that creates the topic. Producers,
//! consumers (which assign partitions themselves) and consumer-group members live in
//! `producer.rs`, `consumer.rs` and `group_member.rs`.
//!
//! Not modelled: transactions, compression, ApiVersions negotiation (the versions are fixed
//! and within what Sluice speaks).

use super::config::{KafkaBug, KafkaWorkload};
use super::history::History;
use bytes::Bytes;
use sluice_core::protocol::codes;
use sluice_core::protocol::messages::create_topics::*;
use sluice_core::protocol::messages::fetch::{
    FetchPartition, FetchRequest, FetchTopic, PartitionData,
};
use sluice_core::protocol::messages::metadata::*;
use sluice_core::protocol::{
    decode_response, encode_request, ApiKey, Request, RequestHeader, Response,
};
use sluice_core::rng::DetRng;
use std::collections::BTreeMap;

pub const TOPIC: &str = "jepsen";
pub const METADATA_V: i16 = 9;
pub const CREATE_TOPICS_V: i16 = 5;
pub const INIT_PRODUCER_ID_V: i16 = 3;
pub const PRODUCE_V: i16 = 8;
pub const FETCH_V: i16 = 11;
/// Clients refresh metadata at least this often, errors or not (metadata.max.age.ms, short).
const METADATA_MAX_AGE_NS: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;

/// Which of a client's connections to a broker a request goes on. Responses on one
/// connection come back in order, so Kafka's consumer talks to its group coordinator on a
/// connection of its own: a JoinGroup parked for a rebalance then holds up no fetch or
/// metadata request (whose timeout would close the connection and lose the join).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Data,
    Group,
}

/// What a client asks the simulator to do.
#[derive(Debug)]
pub enum ClientOut {
    /// Send this request frame (size prefix included) on the `channel` connection to broker
    /// `node` (1-based), opening one if needed. `corr` names the request if it is refused.
    Send {
        node: u32,
        corr: i32,
        frame: Vec<u8>,
        channel: Channel,
    },
    /// Close the `channel` connection to `node` (a request on it timed out).
    Close { node: u32, channel: Channel },
}

/// What changed in the history, for the simulator's incremental checkers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Note {
    /// `history.sends[i]` completed (its outcome is final).
    SendDone(usize),
    /// `history.consumer_ops[i]` was recorded.
    ConsumerOp(usize),
    /// `history.group_ops[i]` was recorded.
    GroupOp(usize),
    /// Worth a trace record: what happened, and two numbers (an error code, a partition, ...).
    Trace(&'static str, i64, i64),
}

/// Everything a client may touch while it handles one input.
#[derive(Debug)]
pub struct Cx<'a> {
    pub now: u64,
    pub rng: &'a mut DetRng,
    pub history: &'a mut History,
    pub out: &'a mut Vec<ClientOut>,
    pub notes: &'a mut Vec<Note>,
    pub brokers: u32,
    pub workload: &'a KafkaWorkload,
    pub bug: Option<KafkaBug>,
}

impl Cx<'_> {
    pub fn random_broker(&mut self) -> u32 {
        self.rng.range_inclusive(1, u64::from(self.brokers)) as u32
    }

    pub fn has_bug(&self, bug: KafkaBug) -> bool {
        self.bug == Some(bug)
    }
}

/// How a producer must read an error code on a produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Refused before anything was appended, and retrying cannot help.
    Fatal,
    /// Refused before anything was appended (this attempt); retry after a metadata refresh.
    RetryNotAppended,
    /// Possibly appended (the broker may have written it before the error); retry.
    RetryInDoubt,
}

pub fn classify(code: i16) -> ErrorClass {
    match code {
        codes::CORRUPT_MESSAGE
        | codes::MESSAGE_TOO_LARGE
        | codes::RECORD_LIST_TOO_LARGE
        | codes::INVALID_TOPIC_EXCEPTION
        | codes::INVALID_REQUIRED_ACKS
        | codes::INVALID_REQUEST
        | codes::TRANSACTIONAL_ID_AUTHORIZATION_FAILED => ErrorClass::Fatal,
        codes::UNKNOWN_TOPIC_OR_PARTITION
        | codes::LEADER_NOT_AVAILABLE
        | codes::OUT_OF_ORDER_SEQUENCE_NUMBER
        | codes::INVALID_PRODUCER_EPOCH
        | codes::UNKNOWN_PRODUCER_ID
        | codes::UNKNOWN_LEADER_EPOCH
        | codes::FENCED_LEADER_EPOCH => ErrorClass::RetryNotAppended,
        // NOT_LEADER_OR_FOLLOWER also answers a produce whose leader stepped down after
        // appending it; REQUEST_TIMED_OUT one that was appended but not replicated in time.
        _ => ErrorClass::RetryInDoubt,
    }
}

pub fn code_name(code: i16) -> &'static str {
    match code {
        codes::NONE => "ok",
        codes::OFFSET_OUT_OF_RANGE => "OFFSET_OUT_OF_RANGE",
        codes::CORRUPT_MESSAGE => "CORRUPT_MESSAGE",
        codes::UNKNOWN_TOPIC_OR_PARTITION => "UNKNOWN_TOPIC_OR_PARTITION",
        codes::LEADER_NOT_AVAILABLE => "LEADER_NOT_AVAILABLE",
        codes::NOT_LEADER_OR_FOLLOWER => "NOT_LEADER_OR_FOLLOWER",
        codes::REQUEST_TIMED_OUT => "REQUEST_TIMED_OUT",
        codes::MESSAGE_TOO_LARGE => "MESSAGE_TOO_LARGE",
        codes::OUT_OF_ORDER_SEQUENCE_NUMBER => "OUT_OF_ORDER_SEQUENCE_NUMBER",
        codes::INVALID_PRODUCER_EPOCH => "INVALID_PRODUCER_EPOCH",
        codes::UNKNOWN_PRODUCER_ID => "UNKNOWN_PRODUCER_ID",
        codes::KAFKA_STORAGE_ERROR => "KAFKA_STORAGE_ERROR",
        codes::FENCED_LEADER_EPOCH => "FENCED_LEADER_EPOCH",
        codes::UNKNOWN_LEADER_EPOCH => "UNKNOWN_LEADER_EPOCH",
        codes::TOPIC_ALREADY_EXISTS => "TOPIC_ALREADY_EXISTS",
        codes::INVALID_REPLICATION_FACTOR => "INVALID_REPLICATION_FACTOR",
        _ => "error",
    }
}

/// One request a client waits on.
#[derive(Clone, Copy, Debug)]
pub struct InFlight<K> {
    pub node: u32,
    pub api: ApiKey,
    pub version: i16,
    pub deadline: u64,
    pub kind: K,
}

/// A client's requests in flight on one channel, by correlation id.
#[derive(Debug)]
pub struct Requests<K> {
    next_corr: i32,
    pub inflight: BTreeMap<i32, InFlight<K>>,
    channel: Channel,
}

impl<K: Copy> Requests<K> {
    pub fn new() -> Requests<K> {
        Requests::on(Channel::Data)
    }

    /// Requests that go on `channel`'s connections.
    pub fn on(channel: Channel) -> Requests<K> {
        Requests {
            next_corr: 0,
            inflight: BTreeMap::new(),
            channel,
        }
    }

    /// Closing this channel's connection to `node`.
    pub fn close(&self, node: u32) -> ClientOut {
        ClientOut::Close {
            node,
            channel: self.channel,
        }
    }

    /// Encodes and queues a request; `expect_response` false for acks=0 produces.
    pub fn send(
        &mut self,
        cx: &mut Cx<'_>,
        node: u32,
        version: i16,
        request: Request,
        kind: K,
        expect_response: bool,
    ) -> i32 {
        self.next_corr += 1;
        let corr = self.next_corr;
        let api = request.api_key();
        let header = RequestHeader {
            api_key: api,
            api_version: version,
            correlation_id: corr,
            client_id: Some("sim".into()),
        };
        let frame = encode_request(&header, &request);
        if expect_response {
            let deadline = cx.now + cx.workload.request_timeout_ms * MS;
            self.inflight.insert(
                corr,
                InFlight {
                    node,
                    api,
                    version,
                    deadline,
                    kind,
                },
            );
        }
        cx.out.push(ClientOut::Send {
            node,
            corr,
            frame,
            channel: self.channel,
        });
        corr
    }

    /// Matches a response frame (size prefix included) to its request and decodes it.
    pub fn on_response(&mut self, node: u32, frame: &[u8]) -> Option<(InFlight<K>, Response)> {
        if frame.len() < 8 {
            return None;
        }
        let corr = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        let req = *self.inflight.get(&corr)?;
        if req.node != node {
            return None;
        }
        self.inflight.remove(&corr);
        match decode_response(req.api, req.version, &frame[4..]) {
            Ok((_, body)) => Some((req, body)),
            // A broker that answers with bytes its own codec cannot read back is a bug the
            // simulator must surface, not a network fault.
            Err(e) => panic!("undecodable {:?} response from n{node}: {e}", req.api),
        }
    }

    /// Removes and returns every request on the connection to `node`.
    pub fn drop_node(&mut self, node: u32) -> Vec<(i32, InFlight<K>)> {
        let corrs: Vec<i32> = self
            .inflight
            .iter()
            .filter(|(_, r)| r.node == node)
            .map(|(&c, _)| c)
            .collect();
        corrs
            .into_iter()
            .map(|c| (c, self.inflight.remove(&c).expect("listed")))
            .collect()
    }

    pub fn take(&mut self, corr: i32) -> Option<InFlight<K>> {
        self.inflight.remove(&corr)
    }

    /// The first node with a request past its deadline.
    pub fn expired(&self, now: u64) -> Option<u32> {
        self.inflight
            .values()
            .find(|r| r.deadline <= now)
            .map(|r| r.node)
    }

    pub fn next_deadline(&self) -> Option<u64> {
        self.inflight.values().map(|r| r.deadline).min()
    }

    pub fn any(&self, f: impl Fn(&K) -> bool) -> bool {
        self.inflight.values().any(|r| f(&r.kind))
    }
}

impl<K: Copy> Default for Requests<K> {
    fn default() -> Self {
        Requests::new()
    }
}

/// A client's view of the topic: per partition the leader and its epoch.
#[derive(Debug)]
pub struct MetaView {
    /// (leader node, epoch); `None` while unknown.
    pub leaders: Vec<Option<(u32, i32)>>,
    /// The highest epoch seen per partition (older answers are ignored).
    pub epochs: Vec<i32>,
    /// The topic is known (its partition count read).
    pub known: bool,
    pub wanted: bool,
    inflight: Option<i32>,
    next_at: u64,
    refreshed_at: u64,
}

impl MetaView {
    pub fn new(partitions: u32) -> MetaView {
        MetaView {
            leaders: vec![None; partitions as usize],
            epochs: vec![-1; partitions as usize],
            known: false,
            wanted: true,
            inflight: None,
            next_at: 0,
            refreshed_at: 0,
        }
    }

    pub fn leader(&self, p: u32) -> Option<(u32, i32)> {
        self.leaders.get(p as usize).copied().flatten()
    }

    /// Asks for a refresh (after an error, a drop or a timeout); forgets the partition's
    /// leader so nothing more is sent to it until the answer.
    pub fn invalidate(&mut self, p: Option<u32>) {
        self.wanted = true;
        if let Some(p) = p {
            if let Some(l) = self.leaders.get_mut(p as usize) {
                *l = None;
            }
        }
    }

    /// Sends a Metadata request if one is wanted (or due) and none is in flight.
    pub fn maybe_refresh<K: Copy>(&mut self, cx: &mut Cx<'_>, reqs: &mut Requests<K>, kind: K) {
        let due = cx.now >= self.refreshed_at + METADATA_MAX_AGE_NS;
        if self.inflight.is_some() || !(self.wanted || due) || cx.now < self.next_at {
            return;
        }
        let node = cx.random_broker();
        let request = Request::Metadata(MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                name: Some(TOPIC.into()),
                ..Default::default()
            }]),
            allow_auto_topic_creation: false,
            ..Default::default()
        });
        let corr = reqs.send(cx, node, METADATA_V, request, kind, true);
        self.inflight = Some(corr);
        self.next_at = cx.now + cx.workload.retry_backoff_ms * MS;
    }

    /// The Metadata request is over (answered, dropped or timed out).
    pub fn on_done(&mut self, corr: i32, response: Option<&MetadataResponse>, now: u64) {
        if self.inflight == Some(corr) {
            self.inflight = None;
        }
        let Some(m) = response else { return };
        let Some(t) = m
            .topics
            .iter()
            .find(|t| t.name.as_deref() == Some(TOPIC) && t.error_code == codes::NONE)
        else {
            return;
        };
        if t.partitions.len() != self.leaders.len() {
            return;
        }
        self.known = true;
        self.wanted = false;
        self.refreshed_at = now;
        for p in &t.partitions {
            let i = p.partition_index as usize;
            if i >= self.leaders.len() {
                continue;
            }
            let epoch = p.leader_epoch;
            if epoch < self.epochs[i] {
                continue; // KIP-320: an answer older than what this client knows
            }
            self.epochs[i] = epoch;
            let leader = (p.leader_id >= 1 && p.error_code == codes::NONE)
                .then_some((p.leader_id as u32, epoch));
            self.leaders[i] = leader;
            if leader.is_none() {
                self.wanted = true;
            }
        }
    }

    pub fn next_wake(&self) -> u64 {
        if self.inflight.is_some() {
            u64::MAX
        } else if self.wanted {
            self.next_at
        } else {
            (self.refreshed_at + METADATA_MAX_AGE_NS).max(self.next_at)
        }
    }

    pub fn is_inflight(&self, corr: i32) -> bool {
        self.inflight == Some(corr)
    }
}

/// The admin client: creates the topic at the start and retries until it exists.
#[derive(Debug)]
pub struct Admin {
    reqs: Requests<()>,
    pub done: bool,
    next_at: u64,
    pub attempts: u32,
}

impl Admin {
    pub fn new() -> Admin {
        Admin {
            reqs: Requests::new(),
            done: false,
            next_at: 0,
            attempts: 0,
        }
    }

    pub fn on_wake(&mut self, cx: &mut Cx<'_>) {
        if let Some(node) = self.reqs.expired(cx.now) {
            self.reqs.drop_node(node);
            cx.out.push(self.reqs.close(node));
            self.next_at = cx.now;
        }
        if self.done || !self.reqs.inflight.is_empty() || cx.now < self.next_at {
            return;
        }
        self.attempts += 1;
        let w = cx.workload;
        let request = Request::CreateTopics(CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: TOPIC.into(),
                num_partitions: w.partitions as i32,
                replication_factor: w.replication_factor as i16,
                configs: vec![CreatableTopicConfig {
                    name: "max.message.bytes".into(),
                    value: Some(w.max_message_bytes.to_string()),
                }],
                ..Default::default()
            }],
            timeout_ms: 5_000,
            ..Default::default()
        });
        let node = cx.random_broker();
        self.reqs.send(cx, node, CREATE_TOPICS_V, request, (), true);
    }

    pub fn on_response(&mut self, node: u32, frame: &[u8], cx: &mut Cx<'_>) {
        let Some((_, Response::CreateTopics(r))) = self.reqs.on_response(node, frame) else {
            return;
        };
        let code = r.topics.first().map_or(-1, |t| t.error_code);
        if code == codes::NONE || code == codes::TOPIC_ALREADY_EXISTS {
            self.done = true;
        } else {
            self.next_at = cx.now + 100 * MS;
        }
    }

    pub fn on_reset(&mut self, node: u32, cx: &mut Cx<'_>) {
        if !self.reqs.drop_node(node).is_empty() {
            self.next_at = cx.now + 50 * MS;
        }
    }

    pub fn on_refused(&mut self, _node: u32, corr: i32, cx: &mut Cx<'_>) {
        if self.reqs.take(corr).is_some() {
            self.next_at = cx.now + 50 * MS;
        }
    }

    /// The next time something is due, strictly after `now`.
    pub fn next_wake(&self, now: u64) -> Option<u64> {
        if self.done {
            return None;
        }
        let retry = self.reqs.inflight.is_empty().then_some(self.next_at);
        [retry, self.reqs.next_deadline()]
            .into_iter()
            .flatten()
            .filter(|&t| t > now)
            .min()
    }
}

impl Default for Admin {
    fn default() -> Self {
        Admin::new()
    }
}

/// A fetch of `parts` ((partition, position, leader epoch) each) of the topic from one leader.
pub fn fetch_request(parts: &[(u32, i64, i32)], max_wait_ms: u64) -> Request {
    Request::Fetch(FetchRequest {
        replica_id: -1,
        max_wait_ms: max_wait_ms as i32,
        min_bytes: 1,
        max_bytes: 1 << 20,
        topics: vec![FetchTopic {
            topic: TOPIC.into(),
            partitions: parts
                .iter()
                .map(|&(p, position, epoch)| FetchPartition {
                    partition: p as i32,
                    current_leader_epoch: epoch,
                    fetch_offset: position,
                    partition_max_bytes: 64 * 1024,
                    ..Default::default()
                })
                .collect(),
        }],
        ..Default::default()
    })
}

/// The records of a fetched partition at or after `from` (a batch may start before it), as
/// (offset, value); records whose value is not one of ours are left out.
pub fn fetched_records(pd: &PartitionData, from: i64) -> Vec<(i64, u64)> {
    let bytes = pd.records.clone().unwrap_or_default();
    records_of(&bytes)
        .into_iter()
        .filter(|(o, _)| *o >= from)
        .filter_map(|(o, v)| v.map(|v| (o, v)))
        .collect()
}

/// The values of the records in one fetched batch blob: (offset, value) of each record.
pub fn records_of(bytes: &Bytes) -> Vec<(i64, Option<u64>)> {
    let mut out = Vec::new();
    for b in sluice_core::protocol::records::batches(bytes) {
        let Ok(b) = b else { break };
        let Ok(records) = sluice_core::protocol::record::read_records(b.bytes) else {
            break;
        };
        for r in records {
            out.push((
                r.offset,
                r.value.as_deref().and_then(super::history::decode_value),
            ));
        }
    }
    out
}
