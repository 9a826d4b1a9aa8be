//! The data path: Produce, Fetch (with long polling), ListOffsets and OffsetForLeaderEpoch, and
//! the requests that wait on a partition (a produce for its acks, a fetch for data or its
//! deadline, a timestamp lookup for storage).

use super::partition::SequenceCheck;
use super::{Broker, PartitionId, Reply, StorageTarget};
use crate::ids::LogIndex;
use crate::protocol::codes;
use crate::protocol::messages::fetch::*;
use crate::protocol::messages::list_offsets::*;
use crate::protocol::messages::offset_for_leader_epoch::{
    EpochEndOffset as EpochEnd, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
    OffsetForLeaderTopicResult,
};
use crate::protocol::messages::produce::*;
use crate::protocol::records::{batches, set_base_offset, set_partition_leader_epoch, validate};
use crate::protocol::Response;
use crate::raft;
use crate::storage::ReadResult;
use crate::time::Instant;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::time::Duration;

/// ListOffsets special timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
use super::storage::MAX_TIMESTAMP;

/// A produce waiting for its batches to be written (acks=1) or committed (acks=all).
#[derive(Debug)]
struct PendingProduce {
    reply: Reply,
    acks: i16,
    response: ProduceResponse,
    /// (partition, topic slot, partition slot, entry index, end offset) still awaited.
    waits: Vec<(PartitionId, usize, usize, LogIndex, i64)>,
    deadline: Instant,
}

#[derive(Debug)]
struct FetchSlot {
    topic: usize,
    partition: usize,
    id: Option<PartitionId>,
    /// The error when `id` is `None`.
    missing: i16,
    reading: bool,
}

#[derive(Debug)]
struct PendingFetch {
    reply: Reply,
    request: FetchRequest,
    response: FetchResponse,
    slots: Vec<FetchSlot>,
    reads: usize,
    deadline: Instant,
    /// Answer whatever the next pass finds (the wait is over).
    last_pass: bool,
    parked: bool,
}

#[derive(Debug)]
struct PendingList {
    reply: Reply,
    response: ListOffsetsResponse,
    lookups: usize,
}

#[derive(Debug, Default)]
pub(super) struct Waiting {
    produces: BTreeMap<u64, PendingProduce>,
    fetches: BTreeMap<u64, PendingFetch>,
    /// Read token -> (fetch, slot, offset the answer may serve up to: the high watermark when
    /// the read was issued).
    reads: BTreeMap<u64, (u64, usize, i64)>,
    lists: BTreeMap<u64, PendingList>,
    /// Lookup token -> (list, topic slot, partition slot, high watermark at the time).
    lookups: BTreeMap<u64, (u64, usize, usize, i64)>,
    next_key: u64,
}

impl Waiting {
    fn key(&mut self) -> u64 {
        self.next_key += 1;
        self.next_key
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let produce = self.produces.values().map(|p| p.deadline);
        let fetch = self
            .fetches
            .values()
            .filter(|f| f.parked)
            .map(|f| f.deadline);
        produce.chain(fetch).min()
    }

    pub(super) fn forget_conn(&mut self, conn: super::ConnId) {
        self.produces.retain(|_, p| p.reply.conn != conn);
        self.fetches.retain(|_, f| f.reply.conn != conn);
        self.lists.retain(|_, l| l.reply.conn != conn);
    }

    /// Fails every produce wait on a partition with `code` (answered by the next progress check).
    pub(super) fn fail_partition(&mut self, id: PartitionId, code: i16) {
        for p in self.produces.values_mut() {
            p.waits.retain(|&(pid, t, s, _, _)| {
                if pid == id {
                    let r = &mut p.response.responses[t].partition_responses[s];
                    r.error_code = code;
                    r.base_offset = -1;
                    false
                } else {
                    true
                }
            });
        }
    }
}

fn error_partition(index: i32, code: i16, message: Option<String>) -> PartitionProduceResponse {
    PartitionProduceResponse {
        index,
        error_code: code,
        base_offset: -1,
        error_message: message,
        ..Default::default()
    }
}

impl Broker {
    // ----- produce -----

    pub(super) fn on_produce(&mut self, reply: Reply, r: ProduceRequest) {
        let acks = r.acks;
        if !(-1..=1).contains(&acks) {
            let responses = r
                .topic_data
                .iter()
                .map(|t| TopicProduceResponse {
                    name: t.name.clone(),
                    partition_responses: t
                        .partition_data
                        .iter()
                        .map(|p| {
                            error_partition(
                                p.index,
                                codes::INVALID_REQUIRED_ACKS,
                                Some(format!("acks={acks}: use 0, 1 or -1")),
                            )
                        })
                        .collect(),
                })
                .collect();
            self.respond(
                reply,
                Response::Produce(ProduceResponse {
                    responses,
                    ..Default::default()
                }),
            );
            return;
        }
        let transactional = r.transactional_id.as_deref().is_some_and(|t| !t.is_empty());
        let mut response = ProduceResponse::default();
        let mut waits = Vec::new();
        for (t, topic) in r.topic_data.into_iter().enumerate() {
            let mut tr = TopicProduceResponse {
                name: topic.name.clone(),
                partition_responses: Vec::new(),
            };
            for (s, pd) in topic.partition_data.into_iter().enumerate() {
                let (resp, wait) = if transactional {
                    (
                        error_partition(
                            pd.index,
                            codes::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                            Some("transactions are not supported".into()),
                        ),
                        None,
                    )
                } else {
                    self.produce_partition(&topic.name, pd.index, pd.records)
                };
                if let Some((id, index, end)) = wait {
                    waits.push((id, t, s, index, end));
                }
                tr.partition_responses.push(resp);
            }
            response.responses.push(tr);
        }
        let timeout = Duration::from_millis(r.timeout_ms.max(0) as u64).min(self.cfg.max_wait);
        let key = self.data.key();
        self.data.produces.insert(
            key,
            PendingProduce {
                reply,
                acks,
                response,
                waits,
                deadline: self.now.mono + timeout,
            },
        );
        self.check_produce(key);
    }

    /// Appends one partition's batches. Returns the response so far and, if the answer must
    /// wait, (partition, index of the last entry, end offset).
    fn produce_partition(
        &mut self,
        topic: &str,
        index: i32,
        records: Option<Bytes>,
    ) -> (
        PartitionProduceResponse,
        Option<(PartitionId, LogIndex, i64)>,
    ) {
        let Some(id) = self.partition_id(topic, index) else {
            let code = self.not_hosted_code(topic, index);
            let message = if code == codes::UNKNOWN_TOPIC_OR_PARTITION {
                format!("{topic}-{index} does not exist")
            } else {
                format!(
                    "broker {} is not a replica of {topic}-{index}",
                    self.cfg.node_id
                )
            };
            return (error_partition(index, code, Some(message)), None);
        };
        if topic == super::group::records::OFFSETS_TOPIC {
            return (
                error_partition(
                    index,
                    codes::INVALID_TOPIC_EXCEPTION,
                    Some(format!(
                        "{topic} is internal: only group coordinators write it"
                    )),
                ),
                None,
            );
        }
        let max_message_bytes = self
            .catalogue
            .topics
            .get(topic)
            .map_or(i64::MAX, |t| t.config.max_message_bytes);
        let p = self.partitions.get(&id).expect("listed partition");
        if !p.is_serving() {
            return (
                error_partition(index, codes::NOT_LEADER_OR_FOLLOWER, None),
                None,
            );
        }
        let Some(records) = records.filter(|r| !r.is_empty()) else {
            return (
                error_partition(
                    index,
                    codes::CORRUPT_MESSAGE,
                    Some("no record batch".into()),
                ),
                None,
            );
        };
        if let Err(e) = validate(&records) {
            return (
                error_partition(index, e.kafka_error_code(), Some(e.to_string())),
                None,
            );
        }
        let headers: Vec<_> = batches(&records)
            .filter_map(Result::ok)
            .map(|b| (b.header, b.bytes.len()))
            .collect();
        for (h, size) in &headers {
            if *size as i64 > max_message_bytes {
                return (
                    error_partition(
                        index,
                        codes::MESSAGE_TOO_LARGE,
                        Some(format!(
                            "a batch of {size} bytes exceeds max.message.bytes {max_message_bytes}"
                        )),
                    ),
                    None,
                );
            }
            if h.is_control() {
                return (
                    error_partition(
                        index,
                        codes::INVALID_REQUEST,
                        Some("clients may not write control batches".into()),
                    ),
                    None,
                );
            }
            if h.is_transactional() {
                return (
                    error_partition(
                        index,
                        codes::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                        Some("transactions are not supported".into()),
                    ),
                    None,
                );
            }
        }
        let mut base_offset = None;
        let mut wait = None;
        let mut at = 0usize;
        for (h, size) in headers {
            let batch = &records[at..at + size];
            at += size;
            let p = self.partitions.get(&id).expect("listed partition");
            match p.check_sequence(&h) {
                SequenceCheck::Refuse(code) => {
                    let known = p.producers.get(&h.producer_id).map_or_else(
                        || "nothing".to_string(),
                        |s| format!("epoch {} batches {:?}", s.epoch, s.recent),
                    );
                    self.outputs
                        .push_back(super::Output::Event(super::Event::SequenceRefused {
                            topic: p.topic.clone(),
                            partition: p.index,
                            producer_id: h.producer_id,
                            epoch: h.producer_epoch,
                            sequence: h.base_sequence,
                            code,
                            known,
                        }));
                    // Earlier batches of this request were appended; report the first failure.
                    let resp = error_partition(
                        index,
                        code,
                        Some(format!(
                            "producer {} epoch {} sequence {}",
                            h.producer_id, h.producer_epoch, h.base_sequence
                        )),
                    );
                    return (resp, wait);
                }
                SequenceCheck::Duplicate {
                    base_offset: b,
                    last_offset,
                } => {
                    base_offset.get_or_insert(b);
                    wait = Some((id, LogIndex::ZERO, last_offset + 1));
                }
                SequenceCheck::Append => {
                    let epoch = p.leader_epoch();
                    let offset = p.next_offset;
                    let mut data = batch.to_vec();
                    set_base_offset(&mut data, offset).expect("validated batch");
                    set_partition_leader_epoch(&mut data, epoch).expect("validated batch");
                    let proposal = raft::ProposalId(self.token());
                    let now = self.now;
                    let p = self.partitions.get_mut(&id).expect("listed partition");
                    let raft = p.raft.as_mut().expect("a leader has a raft group");
                    let before = raft.last_index();
                    raft.handle_input(raft::Input::Propose {
                        now,
                        id: proposal,
                        data: Bytes::from(data),
                    });
                    let after = raft.last_index();
                    if after == before {
                        // Refused: leadership is being handed over (the client must find the
                        // new leader), or too many appends are pending (retry here).
                        let handing_over = raft.is_transferring();
                        self.drain_raft(id);
                        let (code, message) = if handing_over {
                            (
                                codes::NOT_LEADER_OR_FOLLOWER,
                                "leadership is moving to the preferred replica",
                            )
                        } else {
                            (codes::REQUEST_TIMED_OUT, "too many appends pending; retry")
                        };
                        return (error_partition(index, code, Some(message.into())), wait);
                    }
                    // Offsets and producer state are accounted from the log (as on followers).
                    self.drain_raft(id);
                    let last = offset + i64::from(h.last_offset_delta);
                    base_offset.get_or_insert(offset);
                    wait = Some((id, after, last + 1));
                }
            }
        }
        let p = &self.partitions[&id];
        let resp = PartitionProduceResponse {
            index,
            error_code: codes::NONE,
            base_offset: base_offset.unwrap_or(-1),
            log_start_offset: p.log_start,
            ..Default::default()
        };
        (resp, wait)
    }

    /// Drops satisfied waits of every produce on `id` and answers finished ones.
    pub(super) fn produce_progress(&mut self, id: PartitionId) {
        let keys: Vec<u64> = self
            .data
            .produces
            .iter()
            .filter(|(_, p)| p.waits.iter().any(|w| w.0 == id))
            .map(|(&k, _)| k)
            .collect();
        for k in keys {
            self.check_produce(k);
        }
    }

    pub(super) fn flush_failed_produces(&mut self) {
        let keys: Vec<u64> = self.data.produces.keys().copied().collect();
        for k in keys {
            self.check_produce(k);
        }
    }

    fn check_produce(&mut self, key: u64) {
        let Some(pending) = self.data.produces.get_mut(&key) else {
            return;
        };
        let partitions = &self.partitions;
        let acks = pending.acks;
        let ack_at_append = self.cfg.has_bug(super::BrokerBug::AckAllAtLeaderAppend);
        pending.waits.retain(|&(id, _, _, index, end)| {
            let Some(p) = partitions.get(&id) else {
                return false;
            };
            let done = match acks {
                -1 if ack_at_append => index <= p.written || p.high_watermark >= end,
                -1 => p.high_watermark >= end,
                1 => index <= p.written || p.high_watermark >= end,
                _ => true,
            };
            !done
        });
        if pending.waits.is_empty() {
            let pending = self.data.produces.remove(&key).expect("present");
            if pending.acks == 0 {
                self.finish_raw(pending.reply, None);
            } else {
                self.respond(pending.reply, Response::Produce(pending.response));
            }
        }
    }

    // ----- fetch -----

    pub(super) fn on_fetch(&mut self, reply: Reply, r: FetchRequest) {
        let wait = Duration::from_millis(r.max_wait_ms.max(0) as u64).min(self.cfg.max_wait);
        let mut response = FetchResponse::default();
        let mut slots = Vec::new();
        for (t, topic) in r.topics.iter().enumerate() {
            let mut tr = FetchableTopicResponse {
                topic: topic.topic.clone(),
                partitions: Vec::new(),
            };
            for (s, fp) in topic.partitions.iter().enumerate() {
                tr.partitions.push(PartitionData {
                    partition_index: fp.partition,
                    ..Default::default()
                });
                slots.push(FetchSlot {
                    topic: t,
                    partition: s,
                    id: self.partition_id(&topic.topic, fp.partition),
                    missing: self.not_hosted_code(&topic.topic, fp.partition),
                    reading: false,
                });
            }
            response.responses.push(tr);
        }
        let key = self.data.key();
        let last_pass = wait.is_zero() || r.min_bytes <= 0;
        self.data.fetches.insert(
            key,
            PendingFetch {
                reply,
                request: r,
                response,
                slots,
                reads: 0,
                deadline: self.now.mono + wait,
                last_pass,
                parked: false,
            },
        );
        self.fetch_pass(key);
    }

    /// Fills every slot from partition state, issuing reads where data is available.
    fn fetch_pass(&mut self, key: u64) {
        let Some(f) = self.data.fetches.get_mut(&key) else {
            return;
        };
        f.parked = false;
        let above_hw = self.cfg.has_bug(super::BrokerBug::ReadAboveHighWatermark);
        let mut jobs = Vec::new();
        for (k, slot) in f.slots.iter_mut().enumerate() {
            let fp = &f.request.topics[slot.topic].partitions[slot.partition];
            let out = &mut f.response.responses[slot.topic].partitions[slot.partition];
            // Empty, not null: clients (kafka-python) expect a records field even without data.
            out.records = Some(Bytes::new());
            let Some(p) = slot.id.and_then(|id| self.partitions.get(&id)) else {
                out.error_code = slot.missing;
                continue;
            };
            out.high_watermark = p.high_watermark;
            out.last_stable_offset = p.high_watermark;
            out.log_start_offset = p.log_start;
            out.error_code = codes::NONE;
            if !p.is_serving() {
                out.error_code = codes::NOT_LEADER_OR_FOLLOWER;
                continue;
            }
            let epoch = p.leader_epoch();
            if fp.current_leader_epoch >= 0 && fp.current_leader_epoch != epoch {
                out.error_code = if fp.current_leader_epoch > epoch {
                    codes::UNKNOWN_LEADER_EPOCH
                } else {
                    codes::FENCED_LEADER_EPOCH
                };
                continue;
            }
            let limit = if above_hw {
                p.next_offset
            } else {
                p.high_watermark
            };
            if fp.fetch_offset < p.log_start || fp.fetch_offset > limit {
                out.error_code = codes::OFFSET_OUT_OF_RANGE;
                continue;
            }
            if fp.fetch_offset == limit {
                continue;
            }
            let max_bytes = usize::try_from(fp.partition_max_bytes.max(1)).unwrap_or(1);
            slot.reading = true;
            jobs.push((
                slot.id.expect("checked"),
                k,
                fp.fetch_offset,
                max_bytes,
                limit,
            ));
        }
        f.reads = jobs.len();
        for (id, slot, from, max_bytes, limit) in jobs {
            let token = self.token();
            self.data.reads.insert(token, (key, slot, limit));
            self.outputs.push_back(super::Output::Storage {
                target: StorageTarget::Partition(id),
                job: super::StorageJob::Read {
                    token,
                    from,
                    max_bytes,
                },
            });
        }
        self.maybe_finish_fetch(key);
    }

    pub(super) fn on_read(&mut self, token: u64, result: Result<ReadResult, super::ReadError>) {
        // The answer is cut at the high watermark of when the read was issued, not of now:
        // entries below it are committed, so what the store returns there is final, while a
        // truncation queued behind this read (the replica lost leadership meanwhile) may have
        // moved the current high watermark over entries this read still returns. Found by the
        // Kafka-level simulator (kafka-swarm seed 965): a paused leader resumed, issued reads,
        // stepped down, and served its own truncated tail as committed.
        let Some((key, slot, hw)) = self.data.reads.remove(&token) else {
            return;
        };
        let Some(f) = self.data.fetches.get_mut(&key) else {
            return;
        };
        f.reads -= 1;
        let s = &mut f.slots[slot];
        s.reading = false;
        let out = &mut f.response.responses[s.topic].partitions[s.partition];
        match result {
            Ok(read) => {
                let end = committed_prefix(&read.bytes, hw);
                if end > 0 {
                    let mut bytes = read.bytes;
                    bytes.truncate(end);
                    out.records = Some(Bytes::from(bytes));
                }
            }
            Err(super::ReadError::OutOfRange) => out.error_code = codes::OFFSET_OUT_OF_RANGE,
            Err(super::ReadError::Failed(_)) => out.error_code = codes::KAFKA_STORAGE_ERROR,
        }
        self.maybe_finish_fetch(key);
    }

    fn maybe_finish_fetch(&mut self, key: u64) {
        let Some(f) = self.data.fetches.get_mut(&key) else {
            return;
        };
        if f.reads > 0 {
            return;
        }
        let parts = f
            .response
            .responses
            .iter()
            .flat_map(|t| t.partitions.iter());
        let mut bytes = 0usize;
        let mut errors = false;
        for p in parts {
            bytes += p.records.as_ref().map_or(0, Bytes::len);
            errors |= p.error_code != codes::NONE;
        }
        let enough = bytes >= usize::try_from(f.request.min_bytes.max(1)).unwrap_or(1);
        if f.last_pass || enough || errors || self.now.mono >= f.deadline {
            let mut f = self.data.fetches.remove(&key).expect("present");
            trim_to_max_bytes(&mut f.response, f.request.max_bytes);
            self.respond(f.reply, Response::Fetch(f.response));
        } else {
            f.parked = true;
        }
    }

    /// The high watermark of `id` moved: parked fetches on it take another (final) pass.
    pub(super) fn wake_fetches(&mut self, id: PartitionId) {
        let keys: Vec<u64> = self
            .data
            .fetches
            .iter()
            .filter(|(_, f)| f.parked && f.slots.iter().any(|s| s.id == Some(id)))
            .map(|(&k, _)| k)
            .collect();
        for k in keys {
            if let Some(f) = self.data.fetches.get_mut(&k) {
                f.last_pass = true;
            }
            self.fetch_pass(k);
        }
    }

    /// Answers produces and fetches whose deadline passed.
    pub(super) fn expire_waits(&mut self) {
        let now = self.now.mono;
        let produces: Vec<u64> = self
            .data
            .produces
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(&k, _)| k)
            .collect();
        for k in produces {
            let mut p = self.data.produces.remove(&k).expect("present");
            for &(_, t, s, _, _) in &p.waits {
                let r = &mut p.response.responses[t].partition_responses[s];
                r.error_code = codes::REQUEST_TIMED_OUT;
            }
            if p.acks == 0 {
                self.finish_raw(p.reply, None);
            } else {
                self.respond(p.reply, Response::Produce(p.response));
            }
        }
        let fetches: Vec<u64> = self
            .data
            .fetches
            .iter()
            .filter(|(_, f)| f.parked && f.deadline <= now)
            .map(|(&k, _)| k)
            .collect();
        for k in fetches {
            let f = self.data.fetches.remove(&k).expect("present");
            self.respond(f.reply, Response::Fetch(f.response));
        }
    }

    // ----- offsets -----

    pub(super) fn on_list_offsets(&mut self, reply: Reply, r: ListOffsetsRequest) {
        let mut response = ListOffsetsResponse::default();
        let mut lookups = Vec::new();
        for (t, topic) in r.topics.iter().enumerate() {
            let mut tr = ListOffsetsTopicResponse {
                name: topic.name.clone(),
                partitions: Vec::new(),
            };
            for (s, lp) in topic.partitions.iter().enumerate() {
                let mut out = ListOffsetsPartitionResponse {
                    partition_index: lp.partition_index,
                    ..Default::default()
                };
                match self
                    .partition_id(&topic.name, lp.partition_index)
                    .and_then(|id| self.partitions.get(&id).map(|p| (id, p)))
                {
                    None => out.error_code = self.not_hosted_code(&topic.name, lp.partition_index),
                    Some((_, p)) if !p.is_serving() => {
                        out.error_code = codes::NOT_LEADER_OR_FOLLOWER
                    }
                    Some((id, p)) => {
                        out.leader_epoch = p.leader_epoch();
                        match lp.timestamp {
                            EARLIEST => out.offset = p.log_start,
                            LATEST => out.offset = p.high_watermark,
                            ts if ts >= 0 || ts == MAX_TIMESTAMP => {
                                lookups.push((id, t, s, ts, p.high_watermark))
                            }
                            ts => {
                                out.error_code = codes::INVALID_REQUEST;
                                let _ = ts;
                            }
                        }
                    }
                }
                tr.partitions.push(out);
            }
            response.topics.push(tr);
        }
        if lookups.is_empty() {
            self.respond(reply, Response::ListOffsets(response));
            return;
        }
        let key = self.data.key();
        self.data.lists.insert(
            key,
            PendingList {
                reply,
                response,
                lookups: lookups.len(),
            },
        );
        for (id, t, s, ts, hw) in lookups {
            let token = self.token();
            self.data.lookups.insert(token, (key, t, s, hw));
            self.outputs.push_back(super::Output::Storage {
                target: StorageTarget::Partition(id),
                job: super::StorageJob::OffsetForTimestamp { token, ts },
            });
        }
    }

    pub(super) fn on_timestamp_lookup(
        &mut self,
        _id: PartitionId,
        token: u64,
        result: Result<Option<(i64, i64)>, String>,
    ) {
        let Some((key, t, s, hw)) = self.data.lookups.remove(&token) else {
            return;
        };
        let Some(l) = self.data.lists.get_mut(&key) else {
            return;
        };
        let out = &mut l.response.topics[t].partitions[s];
        match result {
            Ok(Some((offset, ts))) if offset < hw => {
                out.offset = offset;
                out.timestamp = ts;
            }
            Ok(_) => {
                out.offset = -1;
                out.timestamp = -1;
            }
            Err(_) => out.error_code = codes::KAFKA_STORAGE_ERROR,
        }
        l.lookups -= 1;
        if l.lookups == 0 {
            let l = self.data.lists.remove(&key).expect("present");
            self.respond(l.reply, Response::ListOffsets(l.response));
        }
    }

    pub(super) fn on_offset_for_leader_epoch(
        &mut self,
        reply: Reply,
        r: OffsetForLeaderEpochRequest,
    ) {
        let topics = r
            .topics
            .into_iter()
            .map(|t| OffsetForLeaderTopicResult {
                partitions: t
                    .partitions
                    .iter()
                    .map(|rp| {
                        let mut out = EpochEnd {
                            partition: rp.partition,
                            ..Default::default()
                        };
                        match self
                            .partition_id(&t.topic, rp.partition)
                            .and_then(|id| self.partitions.get(&id))
                        {
                            None => out.error_code = self.not_hosted_code(&t.topic, rp.partition),
                            Some(p) if !p.is_serving() => {
                                out.error_code = codes::NOT_LEADER_OR_FOLLOWER
                            }
                            Some(p)
                                if rp.current_leader_epoch >= 0
                                    && rp.current_leader_epoch != p.leader_epoch() =>
                            {
                                out.error_code = if rp.current_leader_epoch > p.leader_epoch() {
                                    codes::UNKNOWN_LEADER_EPOCH
                                } else {
                                    codes::FENCED_LEADER_EPOCH
                                };
                            }
                            Some(p) => {
                                let (epoch, end) = p.end_offset_for_epoch(rp.leader_epoch);
                                out.leader_epoch = epoch;
                                out.end_offset =
                                    end.min(p.high_watermark.max(if epoch == p.leader_epoch() {
                                        p.high_watermark
                                    } else {
                                        end
                                    }));
                            }
                        }
                        out
                    })
                    .collect(),
                topic: t.topic,
            })
            .collect();
        self.respond(
            reply,
            Response::OffsetForLeaderEpoch(OffsetForLeaderEpochResponse {
                topics,
                ..Default::default()
            }),
        );
    }
}

/// The length of the prefix of `bytes` made of whole batches below the high watermark.
fn committed_prefix(bytes: &[u8], hw: i64) -> usize {
    let mut end = 0;
    for b in batches(bytes) {
        match b {
            Ok(b) if b.header.last_offset() < hw => end += b.bytes.len(),
            _ => break,
        }
    }
    end
}

/// Keeps a fetch response within the request's max_bytes: whole partitions' data are dropped
/// once the total passes it, except the first (KIP-74: the first batch always goes, so a
/// consumer can make progress past a batch larger than its limit).
fn trim_to_max_bytes(response: &mut FetchResponse, max_bytes: i32) {
    let limit = usize::try_from(max_bytes.max(0)).unwrap_or(0);
    let mut total = 0usize;
    let mut first = true;
    for t in &mut response.responses {
        for p in &mut t.partitions {
            let Some(records) = p.records.as_ref().filter(|r| !r.is_empty()) else {
                continue;
            };
            if !first && total + records.len() > limit {
                p.records = Some(Bytes::new());
                continue;
            }
            total += records.len();
            first = false;
        }
    }
}
