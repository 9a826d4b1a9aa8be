//! The cluster under a real client while leaders die: three `sluice broker` processes, a topic
//! with 6 partitions and replication factor 3, one librdkafka idempotent `acks=all` producer
//! sending in rounds while, between rounds, the current leader of some partition is SIGKILLed
//! and (a round later) restarted. Afterwards:
//!
//! - every acknowledged record is in the log exactly once, at the offset its delivery report
//!   gave, and each partition holds the producer's records in send order (idempotence);
//! - the cluster converges: one leader per partition and every replica in sync (Metadata ISR);
//! - the time from each kill to the first acknowledged write to a partition that the killed
//!   broker led is measured and printed (failover time, as the client sees it).
//!
//! Every wait is a poll with a deadline.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::broker_proc::{start_voter_cluster, BrokerProc, TempDir};
use crate::rdkafka_client::{admin, admin_options, block_on, Reports};

const TOPIC: &str = "chaos";
const PARTITIONS: i32 = 6;
const ROUNDS: usize = 6;
const PER_ROUND: usize = 600;
const OP_TIMEOUT: Duration = Duration::from_secs(60);

fn bootstrap(brokers: &[BrokerProc]) -> String {
    brokers
        .iter()
        .map(BrokerProc::bootstrap)
        .collect::<Vec<_>>()
        .join(",")
}

fn metadata_client(bootstrap: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "sluice-chaos-metadata")
        .create()
        .expect("metadata client")
}

/// (leader, replicas, isr) per partition, from one metadata request.
fn partition_states(client: &BaseConsumer) -> Option<BTreeMap<i32, (i32, usize, usize)>> {
    let md = client
        .fetch_metadata(Some(TOPIC), Duration::from_secs(5))
        .ok()?;
    let t = md.topics().iter().find(|t| t.name() == TOPIC)?;
    Some(
        t.partitions()
            .iter()
            .map(|p| (p.id(), (p.leader(), p.replicas().len(), p.isr().len())))
            .collect(),
    )
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

fn dump_logs(brokers: &[BrokerProc]) {
    for (i, b) in brokers.iter().enumerate() {
        eprintln!("--- broker {} log tail:\n{}", i + 1, b.log_tail());
    }
}

#[test]
fn acks_all_records_survive_repeated_leader_kills_exactly_once_and_in_order() {
    let tmp = TempDir::new("cluster-chaos");
    let mut brokers = start_voter_cluster(tmp.path(), &[]);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&mut brokers)));
    if let Err(panic) = result {
        dump_logs(&brokers);
        std::panic::resume_unwind(panic);
    }
}

fn run(brokers: &mut [BrokerProc]) {
    let boot = bootstrap(brokers);
    let meta = metadata_client(&boot);
    wait_for("three brokers in metadata", OP_TIMEOUT, || {
        meta.fetch_metadata(None, Duration::from_secs(2))
            .is_ok_and(|m| m.brokers().len() == 3)
    });
    wait_for("topic creation", OP_TIMEOUT, || {
        let r = block_on(
            admin(&boot).create_topics(
                &[NewTopic::new(TOPIC, PARTITIONS, TopicReplication::Fixed(3))],
                &admin_options(),
            ),
            OP_TIMEOUT,
        );
        matches!(
            r.as_deref(),
            Ok([Ok(_)]) | Ok([Err((_, RDKafkaErrorCode::TopicAlreadyExists))])
        )
    });
    wait_for("every partition led", OP_TIMEOUT, || {
        partition_states(&meta).is_some_and(|s| {
            s.len() == PARTITIONS as usize && s.values().all(|&(l, r, _)| l >= 1 && r == 3)
        })
    });

    let producer: BaseProducer<Reports> = ClientConfig::new()
        .set("bootstrap.servers", &boot)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "120000")
        .set("topic.metadata.refresh.interval.ms", "1000")
        .set("retry.backoff.ms", "50")
        .set("retry.backoff.max.ms", "200")
        .create_with_context(Reports::default())
        .expect("producer");

    // sent[i] = (partition, value, when sent)
    let mut sent: Vec<(i32, String)> = Vec::new();
    let mut delivered: BTreeMap<usize, (i32, i64, Instant)> = BTreeMap::new();
    let mut failed = Vec::new();
    let mut kills: Vec<(usize, Instant, Vec<i32>)> = Vec::new();
    let mut down: Option<usize> = None;
    for round in 0..ROUNDS {
        for i in 0..PER_ROUND {
            let partition = (i % PARTITIONS as usize) as i32;
            let value = format!("r{round}-{i}");
            let index = sent.len();
            sent.push((partition, value.clone()));
            let mut record: BaseRecord<'_, [u8], [u8], Box<usize>> =
                BaseRecord::with_opaque_to(TOPIC, Box::new(index))
                    .partition(partition)
                    .payload(value.as_bytes());
            let deadline = Instant::now() + OP_TIMEOUT;
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        assert!(Instant::now() < deadline, "producer queue stayed full");
                        record = back;
                        producer.poll(Duration::from_millis(20));
                    }
                    Err((e, _)) => panic!(
                        "send failed locally: {e}; fatal error: {:?}",
                        producer.client().fatal_error()
                    ),
                }
            }
            producer.poll(Duration::ZERO);
            collect(&producer, &mut delivered, &mut failed);
        }
        // Let part of the round land, then change the cluster.
        let settle = Instant::now() + Duration::from_millis(300);
        while Instant::now() < settle {
            producer.poll(Duration::from_millis(20));
        }
        collect(&producer, &mut delivered, &mut failed);
        if let Some(k) = down.take() {
            brokers[k].restart();
        } else if round + 1 < ROUNDS {
            // Kill the current leader of partition `round`.
            let target = (round % PARTITIONS as usize) as i32;
            let mut states = BTreeMap::new();
            wait_for("a leader to kill", OP_TIMEOUT, || {
                producer.poll(Duration::from_millis(20));
                states = partition_states(&meta).unwrap_or_default();
                states.get(&target).is_some_and(|s| s.0 >= 1)
            });
            let leader = states[&target].0;
            let led: Vec<i32> = states
                .iter()
                .filter(|(_, s)| s.0 == leader)
                .map(|(&p, _)| p)
                .collect();
            let k = (leader - 1) as usize;
            brokers[k].kill9();
            kills.push((k, Instant::now(), led));
            down = Some(k);
        }
    }
    if let Some(k) = down.take() {
        brokers[k].restart();
    }
    producer
        .flush(OP_TIMEOUT)
        .expect("flush within the timeout");
    collect(&producer, &mut delivered, &mut failed);
    assert!(failed.is_empty(), "deliveries failed: {failed:?}");
    assert_eq!(
        delivered.len(),
        sent.len(),
        "every record has a delivery report"
    );

    // Convergence: a leader for every partition and every replica in sync.
    wait_for("all replicas in sync", OP_TIMEOUT, || {
        partition_states(&meta).is_some_and(|s| s.values().all(|&(l, r, isr)| l >= 1 && isr == r))
    });

    // Read everything back by assignment and compare with the delivery reports.
    let log = read_all(&boot, &delivered);
    for (index, (partition, value)) in sent.iter().enumerate() {
        let (p, offset, _) = delivered[&index];
        assert_eq!(p, *partition);
        assert_eq!(
            log.get(&(p, offset)),
            Some(value),
            "acknowledged record {value} missing at {p}/{offset}"
        );
    }
    let mut seen = BTreeMap::new();
    for ((p, offset), value) in &log {
        if let Some(first) = seen.insert(value.clone(), (*p, *offset)) {
            panic!(
                "{value} is in the log twice: {first:?} and {:?}",
                (p, offset)
            );
        }
    }
    // Send order is log order within each partition.
    for p in 0..PARTITIONS {
        let offsets: Vec<i64> = (0..sent.len())
            .filter(|&i| sent[i].0 == p)
            .map(|i| delivered[&i].1)
            .collect();
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "partition {p}: acknowledged offsets out of send order"
        );
    }
    // Failover as the client saw it: from a kill to the first acknowledged write (sent after
    // the kill) to a partition the killed broker led.
    let mut failovers = Vec::new();
    for (k, at, led) in &kills {
        let first_ack = delivered
            .values()
            .filter(|(p, _, when)| led.contains(p) && *when > *at)
            .map(|(_, _, when)| *when)
            .min()
            .expect("writes after the kill");
        failovers.push((*k + 1, first_ack.duration_since(*at)));
    }
    eprintln!(
        "cluster chaos: {} records, {} leader kills; failover (kill -> first ack on a partition \
         it led): {:?}",
        sent.len(),
        kills.len(),
        failovers
    );
}

fn collect(
    producer: &BaseProducer<Reports>,
    delivered: &mut BTreeMap<usize, (i32, i64, Instant)>,
    failed: &mut Vec<(usize, String)>,
) {
    let now = Instant::now();
    for (index, outcome) in std::mem::take(&mut *producer.context().0.lock().expect("reports")) {
        match outcome {
            Ok((p, offset)) => {
                assert!(
                    delivered.insert(index, (p, offset, now)).is_none(),
                    "two delivery reports for record {index}"
                );
            }
            Err(e) => failed.push((index, e.to_string())),
        }
    }
}

/// Every record of the topic, by (partition, offset), read to each partition's end.
fn read_all(
    bootstrap: &str,
    delivered: &BTreeMap<usize, (i32, i64, Instant)>,
) -> BTreeMap<(i32, i64), String> {
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    for (p, offset, _) in delivered.values() {
        let e = ends.entry(*p).or_default();
        *e = (*e).max(offset + 1);
    }
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "sluice-chaos-read")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .set("check.crcs", "true")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(TOPIC, p, Offset::Beginning)
            .expect("add partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut log = BTreeMap::new();
    let mut next: BTreeMap<i32, i64> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    let deadline = Instant::now() + OP_TIMEOUT;
    while (0..PARTITIONS).any(|p| next[&p] < ends.get(&p).copied().unwrap_or(0)) {
        assert!(
            Instant::now() < deadline,
            "read timed out at {next:?}, ends {ends:?}"
        );
        match consumer.poll(Duration::from_millis(200)) {
            None | Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => eprintln!("consumer error (retried): {e}"),
            Some(Ok(m)) => {
                let value = String::from_utf8(m.payload().expect("value").to_vec()).expect("utf8");
                assert!(
                    m.offset() >= next[&m.partition()],
                    "offset went backwards in partition {}",
                    m.partition()
                );
                next.insert(m.partition(), m.offset() + 1);
                log.insert((m.partition(), m.offset()), value);
            }
        }
    }
    log
}
