//! The broker under crashes, on the simulator's faulty file system: random produces (acks 0,
//! 1 and all; plain and idempotent, with retries), storage jobs completing in random amounts,
//! and power-loss crashes (unsynced bytes lost or torn, directory operations cut short) at any
//! point. After every reboot, and at the end, every partition is read back from offset 0 and
//! checked against what was acknowledged:
//! - every record acknowledged with acks=all is there, at its acknowledged offset;
//! - offsets are dense from 0 and every record appears once (an idempotent retry is never
//!   appended twice, across restarts too);
//! - nothing is served that was never sent.
//!
//! This is the test a planted "acknowledge acks=all before the fsync" bug fails.

use bytes::Bytes;
use proptest::prelude::*;
use sluice_core::broker::{
    Broker, BrokerConfig, BrokerStorage, Input, Output, StorageJob, StorageTarget,
};
use sluice_core::protocol::messages::create_topics::{CreatableTopic, CreateTopicsRequest};
use sluice_core::protocol::messages::fetch::{FetchPartition, FetchRequest, FetchTopic};
use sluice_core::protocol::messages::init_producer_id::InitProducerIdRequest;
use sluice_core::protocol::messages::produce::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use sluice_core::protocol::record::{build_batch, read_records, BatchSpec, NewRecord};
use sluice_core::protocol::records::batches;
use sluice_core::protocol::{
    decode_response, encode_request, ApiKey, Request, RequestHeader, Response,
};
use sluice_core::rng::DetRng;
use sluice_core::time::{Instant, Now};
use sluice_sim::fs::{FsFaults, SimFs, SimFsHandle};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

const TOPIC: &str = "m";
const PARTITIONS: i32 = 2;
const DATA: &str = "data";

#[derive(Clone, Debug)]
enum Op {
    Produce {
        partition: i32,
        acks: i16,
        records: usize,
        idempotent: bool,
    },
    /// Send the last idempotent batch of a partition again (a client retry).
    Retry { partition: i32 },
    /// Perform up to this many queued storage jobs.
    Storage(usize),
    /// Let time pass (timers, expiring waits).
    Tick,
    /// Power loss: queued jobs vanish, unsynced bytes are lost or torn; then reboot.
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..PARTITIONS, prop_oneof![Just(0i16), Just(1), Just(-1)], 1usize..4, any::<bool>())
            .prop_map(|(partition, acks, records, idempotent)| Op::Produce { partition, acks, records, idempotent }),
        1 => (0..PARTITIONS).prop_map(|partition| Op::Retry { partition }),
        4 => (1usize..12).prop_map(Op::Storage),
        1 => Just(Op::Tick),
        1 => Just(Op::Crash),
    ]
}

/// A partition's next sequence number and its last idempotent batch (first sequence, values).
type Sequence = (i32, Option<(i32, Vec<String>)>);

struct Node {
    broker: Broker,
    storage: BrokerStorage,
    jobs: VecDeque<(StorageTarget, StorageJob)>,
    responses: VecDeque<Vec<u8>>,
}

struct World {
    fs: SimFs,
    rng: DetRng,
    node: Node,
    now: Now,
    correlation: i32,
    /// correlation id -> (partition, acks, values) of produces awaiting an answer.
    in_flight: BTreeMap<i32, (i32, i16, Vec<String>)>,
    /// Acknowledged with acks=all: partition -> offset -> value.
    durable: BTreeMap<i32, BTreeMap<i64, String>>,
    /// Every value ever sent.
    sent: std::collections::BTreeSet<String>,
    producer_id: i64,
    /// Next sequence and last idempotent batch per partition.
    sequences: BTreeMap<i32, Sequence>,
    next_value: u64,
    boots: u64,
}

impl World {
    fn new(seed: u64) -> World {
        let mut fs = SimFs::new();
        fs.faults = FsFaults {
            io_error_ppm: 0,
            garbage_ppm: 200_000,
            torn_writes: true,
        };
        let mut rng = DetRng::new(seed);
        let now = Now::at(Instant::from_nanos(1_000_000_000), 1_700_000_000_000);
        let node = boot(&mut fs, &mut rng, now, 0);
        let mut w = World {
            fs,
            rng,
            node,
            now,
            correlation: 0,
            in_flight: BTreeMap::new(),
            durable: BTreeMap::new(),
            sent: Default::default(),
            producer_id: -1,
            sequences: BTreeMap::new(),
            next_value: 0,
            boots: 0,
        };
        let create = Request::CreateTopics(CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: TOPIC.into(),
                num_partitions: PARTITIONS,
                replication_factor: 1,
                ..Default::default()
            }],
            timeout_ms: 1000,
            ..Default::default()
        });
        let r = w.call(5, create);
        assert!(
            matches!(r, Response::CreateTopics(ref c) if c.topics[0].error_code == 0),
            "{r:?}"
        );
        let Response::InitProducerId(p) = w.call(
            1,
            Request::InitProducerId(InitProducerIdRequest {
                transactional_id: None,
                transaction_timeout_ms: -1,
                ..Default::default()
            }),
        ) else {
            panic!("InitProducerId")
        };
        w.producer_id = p.producer_id;
        w.until_ready();
        w
    }

    fn drain(&mut self) {
        while let Some(out) = self.node.broker.poll_output() {
            match out {
                Output::Response { frame, .. } if frame.is_empty() => {} // acks=0
                Output::Response { frame, .. } => self.node.responses.push_back(frame),
                Output::Storage { target, job } => self.node.jobs.push_back((target, job)),
                Output::Close { reason, .. } => panic!("connection closed: {reason}"),
                Output::Event(_) | Output::Peer { .. } | Output::PeerAddresses(_) => {}
            }
        }
        self.collect_responses();
    }

    /// Performs up to `n` storage jobs in order.
    fn storage(&mut self, n: usize) {
        for _ in 0..n {
            let Some((target, job)) = self.node.jobs.pop_front() else {
                return;
            };
            let mut disk = SimFsHandle {
                fs: &mut self.fs,
                rng: &mut self.rng,
            };
            let done = self
                .node
                .storage
                .execute(&mut disk, target, job, self.now.wall_ms)
                .expect("no injected IO errors in this test");
            self.node.broker.handle_input(Input::Storage {
                now: self.now,
                target,
                done,
            });
            self.drain();
        }
    }

    fn settle(&mut self) {
        for _ in 0..10_000 {
            if self.node.jobs.is_empty() {
                return;
            }
            self.storage(64);
        }
        panic!("storage never settled");
    }

    fn tick(&mut self, by: Duration) {
        self.now = Now::at(self.now.mono + by, self.now.wall_ms + by.as_millis() as i64);
        self.node.broker.handle_input(Input::Timeout(self.now));
        self.drain();
    }

    fn until_ready(&mut self) {
        for _ in 0..200 {
            self.settle();
            if self.node.broker.all_partitions_ready() {
                return;
            }
            self.tick(Duration::from_millis(50));
        }
        panic!("partitions never became ready");
    }

    fn send(&mut self, version: i16, request: Request) -> i32 {
        self.correlation += 1;
        let header = RequestHeader {
            api_key: request.api_key(),
            api_version: version,
            correlation_id: self.correlation,
            client_id: Some("model".into()),
        };
        let frame = encode_request(&header, &request);
        self.node.broker.handle_input(Input::Request {
            now: self.now,
            conn: 1,
            frame: Bytes::from(frame[4..].to_vec()),
        });
        self.drain();
        self.correlation
    }

    /// Sends a request and settles storage until its answer arrives.
    fn call(&mut self, version: i16, request: Request) -> Response {
        let api = request.api_key();
        let id = self.send(version, request);
        for _ in 0..1000 {
            if let Some(pos) = self
                .node
                .responses
                .iter()
                .position(|f| correlation(f) == id)
            {
                let frame = self.node.responses.remove(pos).expect("present");
                return decode_response(api, version, &frame[4..])
                    .expect("decodes")
                    .1;
            }
            self.settle();
            self.tick(Duration::from_millis(10));
        }
        panic!("no answer to {api:?}");
    }

    fn collect_responses(&mut self) {
        let mut keep = VecDeque::new();
        while let Some(frame) = self.node.responses.pop_front() {
            let id = correlation(&frame);
            let Some((partition, acks, values)) = self.in_flight.remove(&id) else {
                keep.push_back(frame);
                continue;
            };
            let (_, Response::Produce(r)) =
                decode_response(ApiKey::Produce, 8, &frame[4..]).expect("decodes")
            else {
                panic!("not a produce response")
            };
            let p = &r.responses[0].partition_responses[0];
            if p.error_code == 0 && acks == -1 {
                let by_offset = self.durable.entry(partition).or_default();
                for (i, v) in values.into_iter().enumerate() {
                    by_offset.insert(p.base_offset + i as i64, v);
                }
            }
        }
        self.node.responses = keep;
    }

    fn produce(&mut self, partition: i32, acks: i16, values: Vec<String>, seq: Option<i32>) {
        let records: Vec<NewRecord<'_>> = values
            .iter()
            .map(|v| NewRecord {
                value: Some(v.as_bytes()),
                ..NewRecord::default()
            })
            .collect();
        let spec = match seq {
            Some(s) => BatchSpec {
                producer_id: self.producer_id,
                producer_epoch: 0,
                base_sequence: s,
                ..BatchSpec::default()
            },
            None => BatchSpec::default(),
        };
        let batch = build_batch(
            BatchSpec {
                base_timestamp: self.now.wall_ms,
                ..spec
            },
            &records,
        );
        let request = Request::Produce(ProduceRequest {
            transactional_id: None,
            acks,
            timeout_ms: 30_000,
            topic_data: vec![TopicProduceData {
                name: TOPIC.into(),
                partition_data: vec![PartitionProduceData {
                    index: partition,
                    records: Some(Bytes::from(batch)),
                }],
            }],
        });
        let id = self.correlation + 1;
        if acks != 0 {
            self.in_flight.insert(id, (partition, acks, values));
        }
        self.send(8, request);
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Produce {
                partition,
                acks,
                records,
                idempotent,
            } => {
                let values: Vec<String> = (0..records)
                    .map(|_| {
                        self.next_value += 1;
                        format!("v{}", self.next_value)
                    })
                    .collect();
                self.sent.extend(values.iter().cloned());
                if idempotent {
                    let acks = -1; // idempotence needs acks=all
                    let (next, last) = self.sequences.entry(partition).or_insert((0, None));
                    let seq = *next;
                    *next += records as i32;
                    *last = Some((seq, values.clone()));
                    self.produce(partition, acks, values, Some(seq));
                } else {
                    self.produce(partition, acks, values, None);
                }
            }
            Op::Retry { partition } => {
                if let Some((_, Some((seq, values)))) = self.sequences.get(&partition).cloned() {
                    self.produce(partition, -1, values, Some(seq));
                }
            }
            Op::Storage(n) => self.storage(n),
            Op::Tick => self.tick(Duration::from_millis(200)),
            Op::Crash => self.crash(),
        }
    }

    fn crash(&mut self) {
        self.fs.crash(&mut self.rng);
        self.in_flight.clear();
        self.boots += 1;
        self.node = boot(&mut self.fs, &mut self.rng, self.now, self.boots);
        self.until_ready();
        self.check();
        // A producer that lost its connection with batches in doubt gets a new producer id (or
        // epoch, KIP-360) and starts its sequences again, as real clients do.
        self.sequences.clear();
        let Response::InitProducerId(p) = self.call(
            1,
            Request::InitProducerId(InitProducerIdRequest {
                transactional_id: None,
                transaction_timeout_ms: -1,
                ..Default::default()
            }),
        ) else {
            panic!("InitProducerId")
        };
        assert_eq!(p.error_code, 0);
        assert!(
            p.producer_id > self.producer_id,
            "producer ids are never reused across restarts"
        );
        self.producer_id = p.producer_id;
    }

    /// Reads every partition from 0 and checks it against the model.
    fn check(&mut self) {
        for partition in 0..PARTITIONS {
            let mut offset = 0i64;
            let mut seen = BTreeMap::new();
            loop {
                let r = self.call(
                    11,
                    Request::Fetch(FetchRequest {
                        max_wait_ms: 0,
                        min_bytes: 1,
                        max_bytes: 1 << 20,
                        topics: vec![FetchTopic {
                            topic: TOPIC.into(),
                            partitions: vec![FetchPartition {
                                partition,
                                fetch_offset: offset,
                                partition_max_bytes: 1 << 20,
                                ..Default::default()
                            }],
                        }],
                        ..Default::default()
                    }),
                );
                let Response::Fetch(f) = r else { panic!() };
                let p = &f.responses[0].partitions[0];
                assert_eq!(p.error_code, 0, "fetch {partition} at {offset}");
                let bytes = p.records.clone().unwrap_or_default();
                if bytes.is_empty() {
                    assert_eq!(
                        offset, p.high_watermark,
                        "partition {partition}: read stopped before the high watermark"
                    );
                    break;
                }
                for b in batches(&bytes) {
                    let b = b.expect("served batches parse");
                    for rec in read_records(b.bytes).expect("served batches are intact") {
                        assert_eq!(
                            rec.offset, offset,
                            "partition {partition}: offsets are dense"
                        );
                        let v =
                            String::from_utf8(rec.value.expect("value").to_vec()).expect("utf-8");
                        assert!(
                            self.sent.contains(&v),
                            "partition {partition}: {v} was never sent"
                        );
                        assert!(
                            seen.insert(v.clone(), offset).is_none(),
                            "partition {partition}: {v} appears twice"
                        );
                        offset += 1;
                    }
                }
            }
            let by_offset: BTreeMap<i64, String> = seen.into_iter().map(|(v, o)| (o, v)).collect();
            for (o, v) in self.durable.get(&partition).into_iter().flatten() {
                assert_eq!(
                    by_offset.get(o),
                    Some(v),
                    "partition {partition}: acks=all record {v} at offset {o} is lost (boot {})",
                    self.boots
                );
            }
        }
    }
}

fn correlation(frame: &[u8]) -> i32 {
    i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]])
}

fn boot(fs: &mut SimFs, rng: &mut DetRng, now: Now, boots: u64) -> Node {
    let storage = BrokerStorage::new(DATA);
    let catalogue = {
        let mut disk = SimFsHandle { fs, rng };
        storage
            .load_catalogue(&mut disk)
            .expect("catalogue readable")
    };
    let broker = Broker::new(
        BrokerConfig::new(1, "127.0.0.1", 9092),
        catalogue.as_deref(),
        DetRng::new(boots + 1),
        now,
    )
    .expect("broker starts");
    Node {
        broker,
        storage,
        jobs: VecDeque::new(),
        responses: VecDeque::new(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        max_shrink_iters: 200,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x05ee_db0b),
        ..ProptestConfig::default()
    })]

    #[test]
    fn acknowledged_acks_all_records_survive_any_crash(seed in any::<u64>(), ops in proptest::collection::vec(op(), 1..80)) {
        let mut w = World::new(seed);
        for op in ops {
            w.apply(op);
        }
        w.settle();
        w.check();
        w.crash();
    }
}
