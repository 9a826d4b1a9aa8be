//! A simulated Kafka producer: acks 0, 1 or all; idempotent or not.
//!
//! Every producer sends one batch (one to a few records with unique values) per request to the
//! partition's leader from its metadata view, keeps at most `max_in_flight` requests per
//! partition, and refreshes metadata on NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE,
//! UNKNOWN_TOPIC_OR_PARTITION, dropped connections and timeouts.
//!
//! - Non-idempotent: a failed attempt is retried with the same records up to `max_attempts`
//!   times, so a retry may append a record twice (expected, not an anomaly). A send that gives
//!   up is "failed" only if no attempt could have been appended, else "unknown".
//! - Idempotent (acks=all): InitProducerId first; every batch carries the producer id, epoch
//!   and its sequence numbers, and a retry resends the *same* batch (same sequences), in
//!   sequence order: after an error the partition drains its in-flight requests and resends
//!   from the first unacknowledged batch, as Kafka's producer does. It retries until done. If
//!   the partition leader no longer knows the producer (UNKNOWN_PRODUCER_ID, or
//!   OUT_OF_ORDER_SEQUENCE_NUMBER on the first unacknowledged batch), the producer bumps its
//!   epoch (KIP-360) once nothing is in flight and sends every unacknowledged batch again
//!   with new sequences, as Kafka's producer does (a broker that forgot producer state thus
//!   shows up as duplicates).
//! - acks=0: fire and forget; the outcome is always unknown.

use super::client::{
    classify, Cx, ErrorClass, MetaView, Note, Requests, INIT_PRODUCER_ID_V, PRODUCE_V, TOPIC,
};
use super::config::{KafkaBug, ProducerKind};
use super::history::{encode_value, value_of, Send, SendOutcome};
use bytes::Bytes;
use sluice_core::protocol::codes;
use sluice_core::protocol::messages::init_producer_id::InitProducerIdRequest;
use sluice_core::protocol::messages::produce::*;
use sluice_core::protocol::record::{build_batch, BatchSpec, NewRecord};
use sluice_core::protocol::{Request, Response};
use std::collections::{BTreeMap, VecDeque};

const MS: u64 = 1_000_000;
const US: u64 = 1_000;
/// Unresolved batches a producer keeps per partition before it stops making new ones.
const QUEUE_MAX: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Req {
    Metadata,
    Init,
    Produce { batch: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Queued,
    InFlight,
}

#[derive(Debug)]
struct Batch {
    send: usize,
    partition: u32,
    values: Vec<u64>,
    padding: usize,
    /// First sequence (idempotent, once assigned), else -1.
    seq: i32,
    state: State,
    attempts: u32,
    /// Some attempt may have been appended.
    in_doubt: bool,
    retry_at: u64,
    /// Planted bug: reuse this sequence instead of taking the next.
    reuse_seq: Option<i32>,
}

#[derive(Debug, Default)]
struct PartQueue {
    next_seq: i32,
    /// Unresolved batches, oldest (lowest sequence) first.
    queue: VecDeque<u64>,
    in_flight: u32,
    /// After an error: send nothing until every in-flight request is back.
    draining: bool,
    /// The last batch sent the first time: (sequence, records).
    last_sent: Option<(i32, usize)>,
    /// The highest first sequence acknowledged in this epoch.
    acked_seq: Option<i32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Session {
    /// No producer id yet (or a bump is due once nothing is in flight).
    Needed,
    Requesting,
    Ready,
}

#[derive(Debug)]
pub struct Producer {
    pub id: u32,
    pub kind: ProducerKind,
    meta: MetaView,
    reqs: Requests<Req>,
    session: Session,
    producer_id: i64,
    producer_epoch: i16,
    /// Give up on tried batches and bump the epoch once nothing is in flight.
    reset_pending: bool,
    batches: BTreeMap<u64, Batch>,
    next_batch: u64,
    parts: Vec<PartQueue>,
    next_record: u64,
    next_new_at: u64,
    /// No new batches: finish what is pending.
    pub stopping: bool,
    pub acked: u64,
    /// Times the producer bumped its epoch (or took a new id) after losing its session.
    pub session_resets: u64,
}

impl Producer {
    pub fn new(id: u32, kind: ProducerKind, partitions: u32, start_at: u64) -> Producer {
        Producer {
            id,
            kind,
            meta: MetaView::new(partitions),
            reqs: Requests::new(),
            session: if kind.idempotent {
                Session::Needed
            } else {
                Session::Ready
            },
            producer_id: -1,
            producer_epoch: -1,
            reset_pending: false,
            batches: BTreeMap::new(),
            next_batch: 0,
            parts: (0..partitions).map(|_| PartQueue::default()).collect(),
            next_record: 0,
            next_new_at: start_at,
            stopping: false,
            acked: 0,
            session_resets: 0,
        }
    }

    /// Nothing left to resolve (acks=0 sends resolve when sent).
    pub fn is_idle(&self) -> bool {
        self.batches.is_empty()
    }

    pub fn pending(&self) -> usize {
        self.batches.len()
    }

    /// What is pending, for liveness failure reports.
    pub fn describe(&self) -> String {
        let batches: Vec<String> = self
            .batches
            .values()
            .take(4)
            .map(|b| {
                let part = &self.parts[b.partition as usize];
                format!(
                    "p{} seq={} {:?} attempts={} in_doubt={} (partition: in_flight={} draining={} leader={:?})",
                    b.partition,
                    b.seq,
                    b.state,
                    b.attempts,
                    b.in_doubt,
                    part.in_flight,
                    part.draining,
                    self.meta.leader(b.partition)
                )
            })
            .collect();
        format!(
            "{} pending, session {:?} id={} epoch={} reset_pending={} stopping={}: {}",
            self.batches.len(),
            self.session,
            self.producer_id,
            self.producer_epoch,
            self.reset_pending,
            self.stopping,
            batches.join("; ")
        )
    }

    pub fn on_wake(&mut self, cx: &mut Cx<'_>) {
        while let Some(node) = self.reqs.expired(cx.now) {
            cx.out.push(self.reqs.close(node));
            self.drop_connection(node, cx);
        }
        self.step(cx);
    }

    /// The next time something is due, strictly after `now` (what was due now was handled).
    pub fn next_wake(&self, now: u64) -> Option<u64> {
        let mut times = vec![self.meta.next_wake()];
        times.extend(self.reqs.next_deadline());
        if !self.stopping {
            times.push(self.next_new_at);
        }
        times.extend(
            self.batches
                .values()
                .filter(|b| b.state == State::Queued)
                .map(|b| b.retry_at),
        );
        times
            .into_iter()
            .filter(|&t| t > now && t != u64::MAX)
            .min()
    }

    fn step(&mut self, cx: &mut Cx<'_>) {
        self.meta.maybe_refresh(cx, &mut self.reqs, Req::Metadata);
        if self.kind.idempotent {
            self.maybe_init(cx);
        }
        if !self.stopping && cx.now >= self.next_new_at && self.meta.known {
            self.new_batch(cx);
            let (lo, hi) = cx.workload.think_us;
            self.next_new_at = cx.now + cx.rng.range_inclusive(lo, hi.max(lo)) * US;
        }
        if self.session == Session::Ready && !self.reset_pending {
            for p in 0..self.parts.len() as u32 {
                self.pump(p, cx);
            }
        }
    }

    fn maybe_init(&mut self, cx: &mut Cx<'_>) {
        if self.reset_pending && self.reqs.any(|k| matches!(k, Req::Produce { .. })) {
            return; // wait for every in-flight batch to come back first
        }
        if self.reset_pending {
            self.reset_pending = false;
            self.restart_sequences();
            self.session = Session::Needed;
        }
        if self.session != Session::Needed {
            return;
        }
        let node = cx.random_broker();
        let request = Request::InitProducerId(InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: -1,
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
        });
        self.reqs
            .send(cx, node, INIT_PRODUCER_ID_V, request, Req::Init, true);
        self.session = Session::Requesting;
    }

    /// After a lost session (the partition leader no longer knows this producer's sequences):
    /// as Kafka's producer does (KIP-360), every unacknowledged batch is sent again under the
    /// new epoch with new sequence numbers. A batch that was in fact appended before is then
    /// appended twice: with brokers that keep producer state, a session is never lost.
    fn restart_sequences(&mut self) {
        self.session_resets += 1;
        for part in &mut self.parts {
            part.next_seq = 0;
            part.draining = false;
            part.last_sent = None;
            part.acked_seq = None;
        }
        for b in self.batches.values_mut() {
            b.seq = -1;
            b.reuse_seq = None;
        }
    }

    fn new_batch(&mut self, cx: &mut Cx<'_>) {
        let p = cx.rng.range(0, self.parts.len() as u64) as u32;
        if self.parts[p as usize].queue.len() >= QUEUE_MAX {
            return;
        }
        let w = cx.workload;
        let mut n = cx
            .rng
            .range_inclusive(w.batch_records.0, w.batch_records.1.max(w.batch_records.0))
            as usize;
        let mut padding = cx
            .rng
            .range_inclusive(w.payload_bytes.0, w.payload_bytes.1.max(w.payload_bytes.0))
            as usize;
        if !self.kind.idempotent && cx.rng.chance_ppm(w.oversize_ppm) {
            padding = w.max_message_bytes as usize + 16;
        }
        let mut reuse_seq = None;
        if self.kind.idempotent && cx.has_bug(KafkaBug::ProducerReusesSequence) {
            if let Some((seq, records)) = self.parts[p as usize].last_sent {
                if cx.rng.range(0, 4) == 0 {
                    reuse_seq = Some(seq);
                    n = records;
                }
            }
        }
        let values: Vec<u64> = (0..n.max(1))
            .map(|_| {
                self.next_record += 1;
                value_of(self.id, self.next_record)
            })
            .collect();
        let send = cx.history.sends.len();
        cx.history.sends.push(Send {
            producer: self.id,
            partition: p,
            values: values.clone(),
            acks: self.kind.acks,
            idempotent: self.kind.idempotent,
            producer_id: -1,
            producer_epoch: -1,
            sequence: -1,
            invoked_at: cx.now,
            completed_at: 0,
            attempts: 0,
            outcome: SendOutcome::Pending,
        });
        let id = self.next_batch;
        self.next_batch += 1;
        self.batches.insert(
            id,
            Batch {
                send,
                partition: p,
                values,
                padding,
                seq: -1,
                state: State::Queued,
                attempts: 0,
                in_doubt: false,
                retry_at: cx.now,
                reuse_seq,
            },
        );
        self.parts[p as usize].queue.push_back(id);
    }

    /// Sends what may be sent on partition `p`.
    fn pump(&mut self, p: u32, cx: &mut Cx<'_>) {
        let Some((leader, _)) = self.meta.leader(p) else {
            return;
        };
        let max = cx.workload.max_in_flight;
        let part = &mut self.parts[p as usize];
        if part.draining && part.in_flight == 0 {
            part.draining = false;
        }
        if part.draining {
            return;
        }
        let ids: Vec<u64> = part.queue.iter().copied().collect();
        for id in ids {
            let b = &self.batches[&id];
            if b.state == State::InFlight {
                continue;
            }
            if b.retry_at > cx.now || self.parts[p as usize].in_flight >= max {
                if self.kind.idempotent {
                    break; // strictly in sequence order
                }
                continue;
            }
            self.send_batch(id, leader, cx);
        }
    }

    fn send_batch(&mut self, id: u64, node: u32, cx: &mut Cx<'_>) {
        let idempotent = self.kind.idempotent;
        let (pid, epoch) = (self.producer_id, self.producer_epoch);
        let b = self.batches.get_mut(&id).expect("batch");
        let part = &mut self.parts[b.partition as usize];
        if idempotent && b.seq < 0 {
            match b.reuse_seq {
                Some(seq) => b.seq = seq,
                None => {
                    b.seq = part.next_seq;
                    part.next_seq = part.next_seq.wrapping_add(b.values.len() as i32);
                }
            }
            part.last_sent = Some((b.seq, b.values.len()));
        }
        b.attempts += 1;
        let padding = vec![0u8; 0];
        let _ = padding;
        let payloads: Vec<Vec<u8>> = b
            .values
            .iter()
            .map(|&v| encode_value(v, b.padding))
            .collect();
        let records: Vec<NewRecord<'_>> = payloads
            .iter()
            .map(|v| NewRecord {
                value: Some(v),
                ..NewRecord::default()
            })
            .collect();
        let spec = if idempotent {
            BatchSpec {
                producer_id: pid,
                producer_epoch: epoch,
                base_sequence: b.seq,
                base_timestamp: 1_767_225_600_000 + (cx.now / MS) as i64,
                ..BatchSpec::default()
            }
        } else {
            BatchSpec {
                base_timestamp: 1_767_225_600_000 + (cx.now / MS) as i64,
                ..BatchSpec::default()
            }
        };
        let batch = build_batch(spec, &records);
        let s = &mut cx.history.sends[b.send];
        s.attempts = b.attempts;
        s.producer_id = if idempotent { pid } else { -1 };
        s.producer_epoch = if idempotent { epoch } else { -1 };
        s.sequence = b.seq;
        let request = Request::Produce(ProduceRequest {
            transactional_id: None,
            acks: self.kind.acks,
            timeout_ms: cx.workload.request_timeout_ms as i32,
            topic_data: vec![TopicProduceData {
                name: TOPIC.into(),
                partition_data: vec![PartitionProduceData {
                    index: b.partition as i32,
                    records: Some(Bytes::from(batch)),
                }],
            }],
        });
        let acks0 = self.kind.acks == 0;
        b.state = State::InFlight;
        part.in_flight += 1;
        self.reqs.send(
            cx,
            node,
            PRODUCE_V,
            request,
            Req::Produce { batch: id },
            !acks0,
        );
        if acks0 {
            // Fire and forget: nothing will come back.
            let b = self.batches.get_mut(&id).expect("batch");
            b.in_doubt = true;
            self.parts[b.partition as usize].in_flight -= 1;
            self.finish(id, SendOutcome::Unknown, cx);
        }
    }

    pub fn on_response(&mut self, node: u32, frame: &[u8], cx: &mut Cx<'_>) {
        let Some((req, response)) = self.reqs.on_response(node, frame) else {
            return;
        };
        match (req.kind, response) {
            (Req::Metadata, Response::Metadata(m)) => {
                let corr = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
                self.meta.on_done(corr, Some(&m), cx.now);
            }
            (Req::Init, Response::InitProducerId(r)) => {
                if r.error_code == codes::NONE && r.producer_id >= 0 {
                    self.producer_id = r.producer_id;
                    self.producer_epoch = r.producer_epoch;
                    self.session = Session::Ready;
                } else {
                    self.session = Session::Needed;
                }
            }
            (Req::Produce { batch }, Response::Produce(r)) => {
                let part = r
                    .responses
                    .first()
                    .and_then(|t| t.partition_responses.first());
                let (code, base) = part.map_or((-1, -1), |p| (p.error_code, p.base_offset));
                self.on_produce_result(batch, node, code, base, cx);
            }
            _ => {}
        }
        self.step(cx);
    }

    fn on_produce_result(&mut self, id: u64, node: u32, code: i16, base: i64, cx: &mut Cx<'_>) {
        let Some(b) = self.batches.get_mut(&id) else {
            return;
        };
        let p = b.partition;
        self.parts[p as usize].in_flight -= 1;
        b.state = State::Queued;
        if code == codes::NONE {
            self.acked += 1;
            if b.seq >= 0 {
                let part = &mut self.parts[p as usize];
                part.acked_seq = Some(part.acked_seq.map_or(b.seq, |a| a.max(b.seq)));
            }
            self.finish(
                id,
                SendOutcome::Ok {
                    base_offset: base,
                    node,
                },
                cx,
            );
            return;
        }
        cx.notes.push(Note::Trace(
            "produce error (code, partition)",
            i64::from(code),
            i64::from(p),
        ));
        let mut class = classify(code);
        if code == codes::NOT_LEADER_OR_FOLLOWER
            && cx.has_bug(KafkaBug::ProducerTreatsNotLeaderAsDefinite)
        {
            class = ErrorClass::Fatal;
        }
        if matches!(
            code,
            codes::NOT_LEADER_OR_FOLLOWER
                | codes::LEADER_NOT_AVAILABLE
                | codes::UNKNOWN_TOPIC_OR_PARTITION
                | codes::FENCED_LEADER_EPOCH
                | codes::UNKNOWN_LEADER_EPOCH
                | codes::KAFKA_STORAGE_ERROR
        ) {
            self.meta.invalidate(Some(p));
        }
        if self.kind.idempotent {
            // As Kafka's producer: a sequence error on a batch behind another unacknowledged
            // one is a race (the earlier one was refused or is being retried, say by a leader
            // that began serving in between) and is retried; on the first unacknowledged
            // batch it means the leader lost this producer's state.
            if code == codes::OUT_OF_ORDER_SEQUENCE_NUMBER
                && b.seq >= 0
                && self.parts[p as usize].acked_seq.is_some_and(|a| a > b.seq)
            {
                // The leader acknowledged a later sequence of this epoch, which it accepts
                // only after this one: this batch is in the log and only its answer was lost
                // (a leader that appended it went away). Its retry is now too old for the
                // leader's duplicate window. Resending it under a new epoch would append it
                // twice; it is done, at an offset the producer cannot know.
                cx.notes.push(Note::Trace(
                    "sequence behind an acknowledged one (partition, seq)",
                    i64::from(p),
                    i64::from(b.seq),
                ));
                self.finish(id, SendOutcome::Unknown, cx);
                return;
            }
            let first = self.parts[p as usize].queue.front() == Some(&id);
            let lost_session = code == codes::INVALID_PRODUCER_EPOCH
                || (first
                    && (code == codes::UNKNOWN_PRODUCER_ID
                        || code == codes::OUT_OF_ORDER_SEQUENCE_NUMBER));
            if class == ErrorClass::RetryInDoubt {
                b.in_doubt = true;
            }
            if lost_session {
                cx.notes.push(Note::Trace(
                    "session lost (code, partition)",
                    i64::from(code),
                    i64::from(p),
                ));
                self.reset_pending = true;
            }
            if class == ErrorClass::Fatal {
                let outcome = if b.in_doubt {
                    SendOutcome::Unknown
                } else {
                    SendOutcome::Failed { code }
                };
                self.finish(id, outcome, cx);
                // Later batches' sequences now have a gap: start a new epoch.
                self.reset_pending = true;
                return;
            }
            b.retry_at = cx.now + cx.workload.retry_backoff_ms * MS;
            self.parts[p as usize].draining = true;
            return;
        }
        match class {
            ErrorClass::Fatal => {
                let outcome = if b.in_doubt {
                    SendOutcome::Unknown
                } else {
                    SendOutcome::Failed { code }
                };
                self.finish(id, outcome, cx);
            }
            ErrorClass::RetryNotAppended | ErrorClass::RetryInDoubt => {
                if class == ErrorClass::RetryInDoubt {
                    b.in_doubt = true;
                }
                self.retry_or_give_up(id, code, cx);
            }
        }
    }

    fn retry_or_give_up(&mut self, id: u64, code: i16, cx: &mut Cx<'_>) {
        let b = self.batches.get_mut(&id).expect("batch");
        if b.attempts < cx.workload.max_attempts {
            b.retry_at = cx.now + cx.workload.retry_backoff_ms * MS;
            return;
        }
        let outcome = if b.in_doubt {
            SendOutcome::Unknown
        } else {
            SendOutcome::Failed { code }
        };
        self.finish(id, outcome, cx);
    }

    fn finish(&mut self, id: u64, outcome: SendOutcome, cx: &mut Cx<'_>) {
        let b = self.batches.remove(&id).expect("batch");
        let part = &mut self.parts[b.partition as usize];
        part.queue.retain(|&q| q != id);
        let s = &mut cx.history.sends[b.send];
        s.outcome = outcome;
        s.completed_at = cx.now;
        cx.notes.push(Note::SendDone(b.send));
    }

    /// The connection to `node` dropped (or timed out): every request on it may or may not
    /// have been handled.
    pub fn on_reset(&mut self, node: u32, cx: &mut Cx<'_>) {
        self.drop_connection(node, cx);
        self.step(cx);
    }

    fn drop_connection(&mut self, node: u32, cx: &mut Cx<'_>) {
        for (corr, r) in self.reqs.drop_node(node) {
            self.request_lost(corr, r.kind, true, cx);
        }
    }

    /// A request never left: the broker was down when the client tried to connect.
    pub fn on_refused(&mut self, _node: u32, corr: i32, cx: &mut Cx<'_>) {
        if let Some(r) = self.reqs.take(corr) {
            self.request_lost(corr, r.kind, false, cx);
        }
        self.step(cx);
    }

    fn request_lost(&mut self, corr: i32, kind: Req, in_doubt: bool, cx: &mut Cx<'_>) {
        match kind {
            Req::Metadata => {
                self.meta.on_done(corr, None, cx.now);
                self.meta.wanted = true;
            }
            Req::Init => self.session = Session::Needed,
            Req::Produce { batch } => {
                let Some(b) = self.batches.get_mut(&batch) else {
                    return;
                };
                let p = b.partition;
                self.parts[p as usize].in_flight -= 1;
                b.state = State::Queued;
                b.in_doubt |= in_doubt;
                self.meta.invalidate(Some(p));
                if self.kind.idempotent {
                    b.retry_at = cx.now + cx.workload.retry_backoff_ms * MS;
                    self.parts[p as usize].draining = true;
                } else {
                    let code = if in_doubt {
                        codes::REQUEST_TIMED_OUT
                    } else {
                        codes::NONE
                    };
                    self.retry_or_give_up(batch, code, cx);
                }
            }
        }
    }
}
