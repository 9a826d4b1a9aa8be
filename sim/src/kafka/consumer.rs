//! A simulated Kafka consumer that assigns itself partitions (no group) and polls them from
//! their leaders.
//!
//! It keeps one fetch in flight per broker, for the assigned partitions that broker leads in its
//! metadata view, naming the leader epoch it believes (KIP-320), so a deposed leader refuses
//! instead of serving a stale view. Records before the position (a fetch returns whole batches)
//! are dropped; the position moves past the last record returned. On NOT_LEADER_OR_FOLLOWER,
//! epoch errors, UNKNOWN_TOPIC_OR_PARTITION, dropped connections and timeouts it refreshes
//! metadata; after repeated OFFSET_OUT_OF_RANGE it resets to the log start (a recorded seek,
//! as auto.offset.reset=earliest does).
//!
//! A final reader is a consumer of every partition started in the liveness phase; it is done
//! once it has read each partition up to the high watermark.

use super::client::{fetch_request, fetched_records, Cx, MetaView, Note, Requests, FETCH_V, TOPIC};
use super::config::KafkaBug;
use super::history::{ConsumerOp, Poll};
use sluice_core::protocol::codes;
use sluice_core::protocol::messages::fetch::*;
use sluice_core::protocol::Response;
use std::collections::BTreeMap;

const MS: u64 = 1_000_000;
/// Consecutive OFFSET_OUT_OF_RANGE answers before the consumer resets to the log start.
const OUT_OF_RANGE_RESET: u32 = 4;

/// One partition of a fetch in flight: (partition, position, leader epoch named).
type Asked = (u32, i64, i32);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Req {
    Metadata,
    Fetch,
}

#[derive(Debug)]
struct Assigned {
    position: i64,
    /// Where the last fetch that returned records started (for the planted rewind bug).
    last_from: i64,
    out_of_range: u32,
    retry_at: u64,
    /// The high watermark of the last answer, if the position had reached it.
    caught_up: bool,
}

#[derive(Debug)]
pub struct Consumer {
    pub id: u32,
    meta: MetaView,
    reqs: Requests<Req>,
    assigned: BTreeMap<u32, Assigned>,
    /// node -> (correlation id, what the fetch asked for).
    fetching: BTreeMap<u32, (i32, Vec<Asked>)>,
    pub final_reader: bool,
    pub stopped: bool,
    start_at: u64,
    seeks_recorded: bool,
    pub polls: u64,
}

impl Consumer {
    pub fn new(
        id: u32,
        partitions: u32,
        assigned: Vec<u32>,
        start_at: u64,
        final_reader: bool,
    ) -> Consumer {
        Consumer {
            id,
            meta: MetaView::new(partitions),
            reqs: Requests::new(),
            assigned: assigned
                .into_iter()
                .map(|p| {
                    (
                        p,
                        Assigned {
                            position: 0,
                            last_from: 0,
                            out_of_range: 0,
                            retry_at: 0,
                            caught_up: false,
                        },
                    )
                })
                .collect(),
            fetching: BTreeMap::new(),
            final_reader,
            stopped: false,
            start_at,
            seeks_recorded: false,
            polls: 0,
        }
    }

    /// Every assigned partition read up to the high watermark its leader last reported.
    pub fn caught_up(&self) -> bool {
        self.assigned.values().all(|a| a.caught_up)
    }

    pub fn partitions(&self) -> impl Iterator<Item = (u32, i64)> + '_ {
        self.assigned.iter().map(|(&p, a)| (p, a.position))
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
        if self.stopped {
            return None;
        }
        let mut times = vec![self.start_at, self.meta.next_wake()];
        times.extend(self.reqs.next_deadline());
        for (p, a) in &self.assigned {
            if let Some((node, _)) = self.meta.leader(*p) {
                if !self.fetching.contains_key(&node) {
                    times.push(a.retry_at);
                }
            }
        }
        times
            .into_iter()
            .filter(|&t| t > now && t != u64::MAX)
            .min()
    }

    fn step(&mut self, cx: &mut Cx<'_>) {
        if self.stopped || cx.now < self.start_at {
            return;
        }
        if !self.seeks_recorded {
            self.seeks_recorded = true;
            let ps: Vec<u32> = self.assigned.keys().copied().collect();
            for p in ps {
                self.record_seek(p, 0, cx);
            }
        }
        self.meta.maybe_refresh(cx, &mut self.reqs, Req::Metadata);
        // Group the assigned partitions by the leader the metadata names.
        let mut by_node: BTreeMap<u32, Vec<Asked>> = BTreeMap::new();
        for (&p, a) in &self.assigned {
            let Some((node, epoch)) = self.meta.leader(p) else {
                continue;
            };
            if a.retry_at > cx.now || self.fetching.contains_key(&node) {
                continue;
            }
            by_node
                .entry(node)
                .or_default()
                .push((p, a.position, epoch));
        }
        for (node, parts) in by_node {
            let request = fetch_request(&parts, cx.workload.fetch_max_wait_ms);
            let corr = self.reqs.send(cx, node, FETCH_V, request, Req::Fetch, true);
            self.fetching.insert(node, (corr, parts));
        }
    }

    fn record_seek(&mut self, p: u32, offset: i64, cx: &mut Cx<'_>) {
        if let Some(a) = self.assigned.get_mut(&p) {
            a.position = offset;
            a.caught_up = false;
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

    pub fn on_response(&mut self, node: u32, frame: &[u8], cx: &mut Cx<'_>) {
        let Some((req, response)) = self.reqs.on_response(node, frame) else {
            return;
        };
        let corr = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        match (req.kind, response) {
            (Req::Metadata, Response::Metadata(m)) => {
                self.meta.on_done(corr, Some(&m), cx.now);
                if cx.has_bug(KafkaBug::ConsumerRewindsWithoutSeek) {
                    for a in self.assigned.values_mut() {
                        a.position = a.last_from;
                    }
                }
            }
            (Req::Fetch, Response::Fetch(f)) => {
                let asked = match self.fetching.get(&node) {
                    Some((c, parts)) if *c == corr => parts.clone(),
                    _ => Vec::new(),
                };
                self.fetching.remove(&node);
                if !self.stopped {
                    self.on_fetch(node, &asked, f, cx);
                }
            }
            _ => {}
        }
        self.step(cx);
    }

    fn on_fetch(
        &mut self,
        node: u32,
        asked: &[(u32, i64, i32)],
        f: FetchResponse,
        cx: &mut Cx<'_>,
    ) {
        let backoff = cx.workload.retry_backoff_ms * MS;
        for t in f.responses.iter().filter(|t| t.topic == TOPIC) {
            for pd in &t.partitions {
                let p = pd.partition_index as u32;
                let Some(&(_, from, epoch)) = asked.iter().find(|(q, _, _)| *q == p) else {
                    continue;
                };
                let Some(a) = self.assigned.get_mut(&p) else {
                    continue;
                };
                if a.position != from {
                    continue; // the position moved meanwhile (a seek)
                }
                match pd.error_code {
                    codes::NONE => {
                        a.out_of_range = 0;
                        let records = fetched_records(pd, from);
                        if let Some(&(last, _)) = records.last() {
                            a.last_from = from;
                            a.position = last + 1;
                            if cx.has_bug(KafkaBug::ConsumerSkipsOffset)
                                && pd.high_watermark > last + 2
                                && cx.rng.range(0, 8) == 0
                            {
                                a.position = last + 2;
                            }
                        }
                        a.caught_up = a.position >= pd.high_watermark;
                        self.polls += 1;
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
                        a.out_of_range += 1;
                        a.retry_at = cx.now + backoff;
                        self.meta.invalidate(Some(p));
                        if a.out_of_range >= OUT_OF_RANGE_RESET {
                            let start = pd.log_start_offset.max(0);
                            self.assigned.get_mut(&p).expect("assigned").out_of_range = 0;
                            self.record_seek(p, start, cx);
                        }
                    }
                    _ => {
                        a.retry_at = cx.now + backoff;
                        self.meta.invalidate(Some(p));
                    }
                }
            }
        }
    }

    pub fn on_reset(&mut self, node: u32, cx: &mut Cx<'_>) {
        self.drop_connection(node, cx);
        self.step(cx);
    }

    fn drop_connection(&mut self, node: u32, cx: &mut Cx<'_>) {
        for (corr, r) in self.reqs.drop_node(node) {
            match r.kind {
                Req::Metadata => {
                    self.meta.on_done(corr, None, cx.now);
                    self.meta.wanted = true;
                }
                Req::Fetch => {
                    if let Some((_, parts)) = self.fetching.remove(&node) {
                        for (p, _, _) in parts {
                            self.meta.invalidate(Some(p));
                        }
                    }
                }
            }
        }
    }

    pub fn on_refused(&mut self, node: u32, corr: i32, cx: &mut Cx<'_>) {
        if let Some(r) = self.reqs.take(corr) {
            match r.kind {
                Req::Metadata => self.meta.on_done(corr, None, cx.now),
                Req::Fetch => {
                    if let Some((_, parts)) = self.fetching.remove(&node) {
                        for (p, _, _) in parts {
                            self.meta.invalidate(Some(p));
                        }
                    }
                }
            }
            self.meta.wanted = true;
        }
        self.step(cx);
    }
}
