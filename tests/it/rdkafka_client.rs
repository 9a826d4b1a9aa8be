//! A real Kafka client (librdkafka, through the `rdkafka` crate's synchronous API: no async
//! runtime) against a real `sluice broker` process on loopback.
//!
//! - `acknowledged_records_survive_kill9`: a 4-partition topic made with the admin client; one
//!   idempotent `acks=all` producer per codec (gzip, snappy, lz4, zstd) sends keyed and unkeyed
//!   records with explicit timestamps and headers; every delivery report is recorded. Everything
//!   is read back by manual assignment (no consumer group) and checked per partition: dense
//!   offsets, order, content. Watermarks and timestamp lookups are checked. Then the broker is
//!   SIGKILLed and restarted: every acknowledged record is still at its offset, exactly once,
//!   and a new producer's records continue the offsets.
//! - `producing_to_a_missing_topic_fails`: auto-creation is off, so the delivery fails with
//!   "unknown topic or partition".
//! - `deleted_topic_leaves_the_metadata`.
//!
//! librdkafka only compresses with lz4 when the broker advertises FindCoordinator (it keys its
//! "LZ4" feature on that API); otherwise its lz4 producer silently sends uncompressed batches.
//! Timestamp lookups are queried at the first timestamp of each producer's phase, where the
//! answer is the first offset of a batch, so a broker that indexes whole batches answers exactly.
//!
//! Every wait is a poll with a deadline.

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientContext;

use crate::broker_proc::{BrokerProc, TempDir};

/// Partitions of the main test's topic.
const PARTITIONS: i32 = 4;
/// One idempotent producer per codec, in this order.
const CODECS: [&str; 4] = ["gzip", "snappy", "lz4", "zstd"];
/// Records each producer sends.
const PER_PRODUCER: usize = 300;
/// Timestamps of producer `k` start at `base + k * PHASE_MS` (records are 1 ms apart).
const PHASE_MS: i64 = 100_000;
/// Bound on any single client operation (admin call, flush, consume to the end).
const OP_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Small utilities: a bounded `block_on` for the admin client's futures, and failure context.

struct Unparker(std::thread::Thread);

impl Wake for Unparker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Drives a future on this thread; panics if it is not ready within `limit`.
pub(crate) fn block_on<F: Future>(fut: F, limit: Duration) -> F::Output {
    let deadline = Instant::now() + limit;
    let waker = Waker::from(Arc::new(Unparker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        let now = Instant::now();
        assert!(now < deadline, "admin operation not done within {limit:?}");
        std::thread::park_timeout(deadline - now);
    }
}

/// Runs `check`; if it panics, prints the broker's log tail first, then lets the panic go on.
fn with_broker_log<T>(broker: &BrokerProc, check: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(check)) {
        Ok(v) => v,
        Err(panic) => {
            eprintln!("broker log tail:\n{}", broker.log_tail());
            resume_unwind(panic)
        }
    }
}

fn wall_ms() -> i64 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis();
    i64::try_from(ms).expect("milliseconds fit i64")
}

// ---------------------------------------------------------------------------------------------
// Clients.

pub(crate) fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client")
}

pub(crate) fn admin_options() -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(Duration::from_secs(10)))
        .operation_timeout(Some(Duration::from_secs(10)))
}

fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let results = block_on(
        admin(bootstrap).create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &admin_options(),
        ),
        OP_TIMEOUT,
    )
    .expect("CreateTopics request");
    assert_eq!(results, vec![Ok(topic.to_string())], "CreateTopics {topic}");
    let consumer = consumer(bootstrap);
    wait_for(
        &format!("{topic} in metadata with {partitions} partitions"),
        || matches!(partition_count(&consumer, topic), Ok(Some(n)) if n == partitions),
    );
}

/// Partition count of `topic` in a full (all topics) metadata response, `None` if it is not
/// listed. A failed request is an error, never "not listed".
fn partition_count(consumer: &BaseConsumer, topic: &str) -> Result<Option<i32>, KafkaError> {
    let md = consumer.fetch_metadata(None, Duration::from_secs(5))?;
    Ok(md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| i32::try_from(t.partitions().len()).expect("partition count fits i32")))
}

/// Polls `done` until it holds; panics after `OP_TIMEOUT`.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + OP_TIMEOUT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        // Paces the polling (nothing unparks this thread); the deadline above bounds the wait.
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

/// A consumer for manual assignment only: no group, no commits.
fn consumer(bootstrap: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        // librdkafka's assign() needs a group id; nothing joins the group or commits.
        .set("group.id", "sluice-rdkafka-test")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .set("check.crcs", "true")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("consumer")
}

/// What a delivery report said about one record, by the record's index in the send log.
pub(crate) type Outcome = (usize, Result<(i32, i64), KafkaError>);

/// Collects delivery reports.
#[derive(Default)]
pub(crate) struct Reports(pub(crate) Mutex<Vec<Outcome>>);

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = Box<usize>;

    fn delivery(&self, result: &DeliveryResult<'_>, index: Box<usize>) {
        let outcome = match result {
            Ok(m) => Ok((m.partition(), m.offset())),
            Err((e, _)) => Err(e.clone()),
        };
        self.0.lock().expect("reports lock").push((*index, outcome));
    }
}

fn producer(bootstrap: &str, codec: &str, extra: &[(&str, &str)]) -> BaseProducer<Reports> {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", codec)
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000");
    for (k, v) in extra {
        cfg.set(*k, *v);
    }
    cfg.create_with_context(Reports::default())
        .expect("producer")
}

/// One record as sent.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rec {
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    timestamp: i64,
    header: Option<Vec<u8>>,
}

/// Record `i` of producer `phase`: two in three keyed (keyed ones carry a header), values of
/// varying length with a compressible tail.
fn make_record(phase: usize, i: usize, base_ts: i64) -> Rec {
    let keyed = !i.is_multiple_of(3);
    let mut value = format!("p{phase}-r{i}-").into_bytes();
    let tail = (i * 37) % 400;
    value.extend((0..tail).map(|j| b'a' + u8::try_from((i + j) % 26).expect("small")));
    Rec {
        key: keyed.then(|| format!("key-{}", i % 11).into_bytes()),
        value,
        timestamp: base_ts
            + i64::try_from(phase).expect("small") * PHASE_MS
            + i64::try_from(i).expect("small"),
        header: keyed.then(|| format!("h{phase}.{i}").into_bytes()),
    }
}

/// Sends `recs` (whose send-log indexes start at `first_index`) and flushes; returns the delivery
/// reports. Panics if the flush does not finish in time.
fn produce(
    producer: &BaseProducer<Reports>,
    topic: &str,
    recs: &[Rec],
    first_index: usize,
) -> Vec<Outcome> {
    let deadline = Instant::now() + OP_TIMEOUT;
    for (n, r) in recs.iter().enumerate() {
        let mut record: BaseRecord<'_, [u8], [u8], Box<usize>> =
            BaseRecord::with_opaque_to(topic, Box::new(first_index + n))
                .payload(r.value.as_slice())
                .timestamp(r.timestamp);
        if let Some(k) = &r.key {
            record = record.key(k.as_slice());
        }
        if let Some(h) = &r.header {
            record = record.headers(OwnedHeaders::new().insert(Header {
                key: "h",
                value: Some(h.as_slice()),
            }));
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    assert!(Instant::now() < deadline, "producer queue stayed full");
                    record = back;
                    producer.poll(Duration::from_millis(20));
                }
                Err((e, _)) => panic!("send failed locally: {e}"),
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(OP_TIMEOUT)
        .expect("flush within the timeout");
    std::mem::take(&mut *producer.context().0.lock().expect("reports lock"))
}

/// Reads every partition of `topic` from offset 0 until each has reported end-of-partition at or
/// past `ends[p]`. Panics on a repeated or out-of-order offset, or on a timeout.
fn consume_all(
    bootstrap: &str,
    topic: &str,
    ends: &BTreeMap<i32, i64>,
) -> BTreeMap<(i32, i64), Rec> {
    let consumer = consumer(bootstrap);
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("add partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut got = BTreeMap::new();
    let mut next: BTreeMap<i32, i64> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    let mut at_end: BTreeMap<i32, bool> = (0..PARTITIONS).map(|p| (p, false)).collect();
    let deadline = Instant::now() + OP_TIMEOUT;
    while at_end.values().any(|e| !e) {
        assert!(
            Instant::now() < deadline,
            "consume timed out; next offsets {next:?}, wanted ends {ends:?}"
        );
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                let want = ends.get(&p).copied().unwrap_or(0);
                if next[&p] >= want {
                    at_end.insert(p, true);
                }
            }
            Some(Err(e)) => panic!("consume error: {e}"),
            Some(Ok(m)) => {
                let p = m.partition();
                let o = m.offset();
                assert_eq!(
                    o, next[&p],
                    "partition {p}: offset {o} where {} was next (order, density)",
                    next[&p]
                );
                next.insert(p, o + 1);
                let header = m.headers().and_then(|hs| {
                    (0..hs.count())
                        .map(|i| hs.get(i))
                        .find(|h| h.key == "h")
                        .and_then(|h| h.value.map(<[u8]>::to_vec))
                });
                let rec = Rec {
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().unwrap_or_default().to_vec(),
                    timestamp: m.timestamp().to_millis().unwrap_or(-1),
                    header,
                };
                assert!(got.insert((p, o), rec).is_none());
                at_end.insert(p, false);
            }
        }
    }
    got
}

// ---------------------------------------------------------------------------------------------
// The checks, reusable against any bootstrap address.

/// The send log and what the broker acknowledged.
#[derive(Debug, Default)]
struct Ledger {
    sent: Vec<Rec>,
    /// For each record in `sent`, the phase (producer) that sent it.
    phase: Vec<usize>,
    /// (partition, offset) -> index in `sent`.
    acked: BTreeMap<(i32, i64), usize>,
}

impl Ledger {
    /// Next offset per partition (one past the last acknowledged offset).
    fn ends(&self) -> BTreeMap<i32, i64> {
        let mut ends: BTreeMap<i32, i64> = (0..PARTITIONS).map(|p| (p, 0)).collect();
        for &(p, o) in self.acked.keys() {
            let e = ends.entry(p).or_insert(0);
            *e = (*e).max(o + 1);
        }
        ends
    }

    /// Produces one phase with a fresh idempotent producer and records its reports; every
    /// record must be acknowledged, and each partition's offsets must follow send order.
    fn produce_phase(
        &mut self,
        bootstrap: &str,
        topic: &str,
        phase: usize,
        codec: &str,
        base_ts: i64,
        n: usize,
    ) {
        let recs: Vec<Rec> = (0..n).map(|i| make_record(phase, i, base_ts)).collect();
        let first = self.sent.len();
        self.sent.extend(recs.iter().cloned());
        self.phase.extend(std::iter::repeat_n(phase, n));
        let p = producer(bootstrap, codec, &[]);
        let mut reports = produce(&p, topic, &recs, first);
        assert_eq!(reports.len(), n, "{codec}: one delivery report per record");
        reports.sort_by_key(|(i, _)| *i);
        let mut last: BTreeMap<i32, i64> = BTreeMap::new();
        for (i, outcome) in reports {
            let (part, off) = outcome.unwrap_or_else(|e| panic!("{codec}: record {i} failed: {e}"));
            assert!((0..PARTITIONS).contains(&part), "partition {part}");
            if let Some(prev) = last.insert(part, off) {
                assert!(
                    off > prev,
                    "{codec}: partition {part}: offset {off} after {prev}"
                );
            }
            assert!(
                self.acked.insert((part, off), i).is_none(),
                "two records acknowledged at ({part}, {off})"
            );
        }
    }

    /// Offsets in every partition are dense from 0; everything read back is exactly what was
    /// acknowledged, once, with its key, value, timestamp and header.
    fn check_read_back(&self, got: &BTreeMap<(i32, i64), Rec>) {
        for (p, end) in self.ends() {
            let count = self.acked.keys().filter(|(q, _)| *q == p).count();
            assert_eq!(
                i64::try_from(count).expect("fits"),
                end,
                "partition {p}: acknowledged offsets are not dense"
            );
        }
        let missing: Vec<_> = self.acked.keys().filter(|k| !got.contains_key(k)).collect();
        assert!(
            missing.is_empty(),
            "acknowledged but not read back: {missing:?}"
        );
        let extra: Vec<_> = got.keys().filter(|k| !self.acked.contains_key(k)).collect();
        assert!(
            extra.is_empty(),
            "read back but never acknowledged: {extra:?}"
        );
        for (k, &i) in &self.acked {
            assert_eq!(got[k], self.sent[i], "record at {k:?}");
        }
    }

    /// Watermarks are (0, end) for every partition.
    fn check_watermarks(&self, bootstrap: &str, topic: &str) {
        let consumer = consumer(bootstrap);
        for (p, end) in self.ends() {
            let wm = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .expect("watermarks");
            assert_eq!(wm, (0, end), "partition {p} watermarks");
        }
    }

    /// Timestamp lookups: before everything -> 0; the first timestamp of each phase -> the
    /// partition's first offset from that phase (or the end if the phase wrote nothing there and
    /// no later phase did either); past everything -> the end marker.
    fn check_offsets_for_times(&self, bootstrap: &str, topic: &str, base_ts: i64, phases: usize) {
        let consumer = consumer(bootstrap);
        let mut queries = vec![(base_ts - 1, 0usize)];
        for k in 1..phases {
            queries.push((base_ts + i64::try_from(k).expect("small") * PHASE_MS, k));
        }
        let past_all = base_ts + i64::try_from(phases).expect("small") * PHASE_MS;
        queries.push((past_all, phases));
        for (ts, from_phase) in queries {
            let mut tpl = TopicPartitionList::new();
            for p in 0..PARTITIONS {
                tpl.add_partition_offset(topic, p, Offset::Offset(ts))
                    .expect("add partition");
            }
            let answer = consumer
                .offsets_for_times(tpl, Duration::from_secs(10))
                .expect("offsets_for_times");
            for p in 0..PARTITIONS {
                let expected = self
                    .acked
                    .iter()
                    .filter(|((q, _), &i)| *q == p && self.phase[i] >= from_phase)
                    .map(|((_, o), _)| *o)
                    .min()
                    .map_or(Offset::End, Offset::Offset);
                let elem = answer
                    .find_partition(topic, p)
                    .expect("partition in answer");
                assert!(
                    elem.error().is_ok(),
                    "offsets_for_times({ts}) partition {p}: {:?}",
                    elem.error()
                );
                assert_eq!(
                    elem.offset(),
                    expected,
                    "offsets_for_times({ts}) partition {p} (phase {from_phase} starts there)"
                );
            }
        }
    }
}

/// Creates `topic`, produces every codec's phase, reads back, checks watermarks and timestamp
/// lookups. Returns the ledger and the base timestamp.
fn produce_and_verify(bootstrap: &str, topic: &str) -> (Ledger, i64) {
    create_topic(bootstrap, topic, PARTITIONS);
    // Ten minutes in the past: phases then stay behind the broker's clock.
    let base_ts = wall_ms() - 600_000;
    let mut ledger = Ledger::default();
    for (phase, codec) in CODECS.iter().enumerate() {
        ledger.produce_phase(bootstrap, topic, phase, codec, base_ts, PER_PRODUCER);
    }
    assert!(
        ledger.ends().values().all(|&e| e > 0),
        "every partition got records: {:?}",
        ledger.ends()
    );
    ledger.check_read_back(&consume_all(bootstrap, topic, &ledger.ends()));
    ledger.check_watermarks(bootstrap, topic);
    ledger.check_offsets_for_times(bootstrap, topic, base_ts, CODECS.len());
    (ledger, base_ts)
}

/// After a restart: everything acknowledged is still there, then a new producer's records
/// continue each partition's offsets.
fn verify_after_restart(bootstrap: &str, topic: &str, ledger: &mut Ledger, base_ts: i64) {
    let ends_before = ledger.ends();
    ledger.check_read_back(&consume_all(bootstrap, topic, &ends_before));
    ledger.check_watermarks(bootstrap, topic);
    ledger.check_offsets_for_times(bootstrap, topic, base_ts, CODECS.len());
    let phase = CODECS.len();
    ledger.produce_phase(bootstrap, topic, phase, "gzip", base_ts, 100);
    for (&(p, o), &i) in &ledger.acked {
        if ledger.phase[i] == phase {
            assert!(
                o >= ends_before[&p],
                "new record at ({p}, {o}) below the old end"
            );
        }
    }
    ledger.check_read_back(&consume_all(bootstrap, topic, &ledger.ends()));
}

/// Produces one record and returns its delivery outcome.
fn produce_one(bootstrap: &str, topic: &str) -> Result<(i32, i64), KafkaError> {
    let p = producer(
        bootstrap,
        "none",
        &[
            ("message.timeout.ms", "15000"),
            ("topic.metadata.propagation.max.ms", "1000"),
        ],
    );
    let rec = make_record(0, 1, wall_ms());
    let mut reports = produce(&p, topic, std::slice::from_ref(&rec), 0);
    assert_eq!(reports.len(), 1);
    reports.pop().expect("one report").1
}

fn missing_topic_is_refused(bootstrap: &str) {
    let outcome = produce_one(bootstrap, "no-such-topic");
    match outcome {
        Err(KafkaError::MessageProduction(
            RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic,
        )) => {}
        other => panic!("produce to a missing topic: expected unknown topic, got {other:?}"),
    }
    let consumer = consumer(bootstrap);
    assert_eq!(
        partition_count(&consumer, "no-such-topic").expect("metadata for all topics"),
        None,
        "the topic was not auto-created"
    );
}

fn delete_topic_round_trip(bootstrap: &str) {
    let topic = "doomed";
    create_topic(bootstrap, topic, 2);
    produce_one(bootstrap, topic).expect("produce before delete");
    let results = block_on(
        admin(bootstrap).delete_topics(&[topic], &admin_options()),
        OP_TIMEOUT,
    )
    .expect("DeleteTopics request");
    assert_eq!(results, vec![Ok(topic.to_string())], "DeleteTopics");
    let consumer = consumer(bootstrap);
    wait_for("deleted topic to leave the metadata", || {
        matches!(partition_count(&consumer, topic), Ok(None))
    });
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[test]
fn acknowledged_records_survive_kill9() {
    let dir = TempDir::new("rdkafka-kill9");
    let mut broker = BrokerProc::start(&dir.path().join("data"));
    let topic = "events";
    let bootstrap = broker.bootstrap();
    let (mut ledger, base_ts) = with_broker_log(&broker, || produce_and_verify(&bootstrap, topic));
    broker.kill9();
    broker.restart();
    let bootstrap = broker.bootstrap();
    with_broker_log(&broker, || {
        verify_after_restart(&bootstrap, topic, &mut ledger, base_ts);
    });
}

#[test]
fn producing_to_a_missing_topic_fails() {
    let dir = TempDir::new("rdkafka-missing");
    let broker = BrokerProc::start(&dir.path().join("data"));
    with_broker_log(&broker, || missing_topic_is_refused(&broker.bootstrap()));
}

#[test]
fn deleted_topic_leaves_the_metadata() {
    let dir = TempDir::new("rdkafka-delete");
    let broker = BrokerProc::start(&dir.path().join("data"));
    with_broker_log(&broker, || delete_topic_round_trip(&broker.bootstrap()));
}
