//! The broker driven in-process: requests encoded as a client would, storage performed on an
//! in-memory disk by the same executor the runtime uses, virtual time.

use super::*;
use crate::protocol::messages::create_topics::*;
use crate::protocol::messages::fetch::*;
use crate::protocol::messages::init_producer_id::*;
use crate::protocol::messages::list_offsets::*;
use crate::protocol::messages::metadata::*;
use crate::protocol::messages::produce::*;
use crate::protocol::record::{build_batch, read_records, BatchSpec, NewRecord};
use crate::protocol::records::batches;
use crate::protocol::{decode_response, encode_request, ApiKey, RequestHeader};
use crate::storage::mem::MemDisk;
use crate::time::Instant;

/// One broker with its disk. `broker` is `None` while the node is down.
struct Node {
    broker: Option<Broker>,
    storage: BrokerStorage,
    disk: MemDisk,
    jobs: VecDeque<(StorageTarget, StorageJob)>,
}

struct Harness {
    nodes: Vec<Node>,
    /// Client requests go to this node.
    target: usize,
    /// Nodes cut off from every peer (clients still reach them).
    isolated: Vec<usize>,
    /// One-way cuts: peer messages from the first node to the second are dropped.
    cuts: Vec<(usize, usize)>,
    /// Peer messages in flight: (to node index, bytes).
    wire: VecDeque<(usize, Vec<u8>)>,
    now: Now,
    /// Responses per connection, in arrival order.
    responses: BTreeMap<ConnId, VecDeque<Vec<u8>>>,
    closed: Vec<ConnId>,
    correlation: i32,
}

fn node_config(id: i32, voters: &[i32]) -> BrokerConfig {
    let mut cfg = BrokerConfig::new(id, "127.0.0.1", 9090 + id);
    cfg.voters = voters.to_vec();
    cfg.peer_addr = format!("127.0.0.1:{}", 9190 + id);
    cfg
}

impl Harness {
    fn new() -> Harness {
        Harness::boot(MemDisk::default(), 1)
    }

    fn boot(disk: MemDisk, seed: u64) -> Harness {
        Harness::with_nodes(vec![disk], seed)
    }

    /// A cluster of `n` brokers (ids 1..=n, all metadata voters).
    fn cluster(n: usize, seed: u64) -> Harness {
        Harness::with_nodes((0..n).map(|_| MemDisk::default()).collect(), seed)
    }

    fn with_nodes(disks: Vec<MemDisk>, seed: u64) -> Harness {
        let now = Now::at(Instant::from_nanos(1_000_000), 1_700_000_000_000);
        let mut h = Harness {
            nodes: disks
                .into_iter()
                .map(|disk| Node {
                    broker: None,
                    storage: BrokerStorage::new("data"),
                    disk,
                    jobs: VecDeque::new(),
                })
                .collect(),
            target: 0,
            isolated: Vec::new(),
            cuts: Vec::new(),
            wire: VecDeque::new(),
            now,
            responses: BTreeMap::new(),
            closed: Vec::new(),
            correlation: 0,
        };
        for i in 0..h.nodes.len() {
            h.start(i, seed);
        }
        h.settle();
        h
    }

    /// The metadata voters: every node of a cluster, at most the first three (a fourth or
    /// fifth broker follows the metadata log without voting).
    fn voters(&self) -> Vec<i32> {
        if self.nodes.len() == 1 {
            Vec::new()
        } else {
            (1..=self.nodes.len().min(3) as i32).collect()
        }
    }

    /// Starts (or restarts) node `i` from what its disk holds.
    fn start(&mut self, i: usize, seed: u64) {
        let voters = self.voters();
        let node = &mut self.nodes[i];
        node.storage = BrokerStorage::new("data");
        node.jobs.clear();
        let catalogue = node.storage.load_catalogue(&mut node.disk).unwrap();
        let broker = Broker::new(
            node_config(i as i32 + 1, &voters),
            catalogue.as_deref(),
            DetRng::new(seed * 100 + i as u64),
            self.now,
        )
        .unwrap();
        node.broker = Some(broker);
    }

    /// Stops node `i` (its in-memory disk keeps everything written: a clean crash).
    fn stop(&mut self, i: usize) {
        self.nodes[i].broker = None;
        self.nodes[i].jobs.clear();
    }

    fn broker(&self) -> &Broker {
        self.nodes[self.target]
            .broker
            .as_ref()
            .expect("target node is up")
    }

    /// Delivers one input to node `i` (if up).
    fn input(&mut self, i: usize, input: Input) {
        if let Some(b) = self.nodes[i].broker.as_mut() {
            b.handle_input(input);
        }
    }

    /// Drains outputs, performing storage jobs and delivering peer messages, until nothing is
    /// left.
    fn settle(&mut self) {
        loop {
            for i in 0..self.nodes.len() {
                let node = &mut self.nodes[i];
                let Some(b) = node.broker.as_mut() else {
                    continue;
                };
                while let Some(out) = b.poll_output() {
                    match out {
                        Output::Response { conn, frame, .. } => {
                            if !frame.is_empty() {
                                self.responses.entry(conn).or_default().push_back(frame)
                            }
                        }
                        Output::Close { conn, .. } => self.closed.push(conn),
                        Output::Storage { target, job } => node.jobs.push_back((target, job)),
                        Output::Peer { to, bytes } => {
                            let to = to as usize - 1;
                            if !self.isolated.contains(&i)
                                && !self.isolated.contains(&to)
                                && !self.cuts.contains(&(i, to))
                            {
                                self.wire.push_back((to, bytes));
                            }
                        }
                        Output::Event(_) | Output::PeerAddresses(_) => {}
                    }
                }
            }
            if let Some(i) = (0..self.nodes.len()).find(|&i| !self.nodes[i].jobs.is_empty()) {
                let node = &mut self.nodes[i];
                let (target, job) = node.jobs.pop_front().expect("non-empty");
                let done = node
                    .storage
                    .execute(&mut node.disk, target, job, self.now.wall_ms)
                    .unwrap();
                let now = self.now;
                self.input(i, Input::Storage { now, target, done });
                continue;
            }
            let Some((to, bytes)) = self.wire.pop_front() else {
                break;
            };
            let now = self.now;
            self.input(
                to,
                Input::Peer {
                    now,
                    bytes: Bytes::from(bytes),
                },
            );
        }
    }

    /// Advances virtual time to the next deadline of any node (bounded) and delivers it.
    fn advance(&mut self, max: Duration) {
        let limit = self.now.mono + max;
        let at = self
            .nodes
            .iter()
            .filter_map(|n| n.broker.as_ref().and_then(Broker::poll_timeout))
            .min()
            .map_or(limit, |d| d.min(limit))
            .max(self.now.mono);
        self.now = Now::at(
            at,
            self.now.wall_ms + (at.as_nanos() - self.now.mono.as_nanos()) as i64 / 1_000_000,
        );
        for i in 0..self.nodes.len() {
            let now = self.now;
            self.input(i, Input::Timeout(now));
        }
        self.settle();
    }

    /// Runs time forward by `d`.
    fn run_for(&mut self, d: Duration) {
        let end = self.now.mono + d;
        while self.now.mono < end {
            self.advance(end.saturating_since(self.now.mono));
        }
    }

    /// Runs timers until every partition has elected itself.
    fn until_ready(&mut self) {
        for _ in 0..1000 {
            let ready = self
                .nodes
                .iter()
                .filter_map(|n| n.broker.as_ref())
                .all(Broker::all_partitions_ready);
            if ready {
                return;
            }
            self.advance(Duration::from_millis(50));
        }
        panic!("partitions never became ready");
    }

    fn send(&mut self, conn: ConnId, version: i16, request: Request) -> i32 {
        self.correlation += 1;
        let header = RequestHeader {
            api_key: request.api_key(),
            api_version: version,
            correlation_id: self.correlation,
            client_id: Some("test".into()),
        };
        let frame = encode_request(&header, &request);
        let now = self.now;
        self.input(
            self.target,
            Input::Request {
                now,
                conn,
                frame: Bytes::from(frame[4..].to_vec()),
            },
        );
        self.settle();
        self.correlation
    }

    fn take(&mut self, conn: ConnId, api: ApiKey, version: i16) -> Option<Response> {
        let frame = self.responses.get_mut(&conn)?.pop_front()?;
        Some(decode_response(api, version, &frame[4..]).unwrap().1)
    }

    fn call(&mut self, version: i16, request: Request) -> Response {
        let api = request.api_key();
        self.send(1, version, request);
        // In a cluster an answer may wait on other brokers' timers (a forwarded change is
        // answered once this broker has applied it); a lone broker answers at once.
        for _ in 0..500 {
            if let Some(r) = self.take(1, api, version) {
                return r;
            }
            self.advance(Duration::from_millis(10));
        }
        panic!("no response within 5 s of simulated time")
    }

    fn create_topic(&mut self, name: &str, partitions: i32, configs: &[(&str, &str)]) -> i16 {
        self.create_topic_rf(name, partitions, 1, configs)
    }

    fn create_topic_rf(
        &mut self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &[(&str, &str)],
    ) -> i16 {
        let r = self.call(
            5,
            Request::CreateTopics(CreateTopicsRequest {
                topics: vec![CreatableTopic {
                    name: name.into(),
                    num_partitions: partitions,
                    replication_factor,
                    configs: configs
                        .iter()
                        .map(|(k, v)| CreatableTopicConfig {
                            name: k.to_string(),
                            value: Some(v.to_string()),
                        })
                        .collect(),
                    ..Default::default()
                }],
                timeout_ms: 1000,
                ..Default::default()
            }),
        );
        let Response::CreateTopics(r) = r else {
            panic!()
        };
        r.topics[0].error_code
    }

    fn produce(&mut self, topic: &str, partition: i32, acks: i16, batch: Vec<u8>) -> (i16, i64) {
        let r = self.call(8, produce_request(topic, partition, acks, batch));
        let Response::Produce(r) = r else { panic!() };
        let p = &r.responses[0].partition_responses[0];
        (p.error_code, p.base_offset)
    }

    fn fetch(&mut self, topic: &str, partition: i32, offset: i64) -> PartitionData {
        let r = self.call(11, fetch_request(topic, partition, offset, 0));
        let Response::Fetch(r) = r else { panic!() };
        r.responses[0].partitions[0].clone()
    }

    fn list_offset(&mut self, topic: &str, partition: i32, ts: i64) -> (i16, i64) {
        let r = self.call(
            7,
            Request::ListOffsets(ListOffsetsRequest {
                replica_id: -1,
                topics: vec![ListOffsetsTopic {
                    name: topic.into(),
                    partitions: vec![ListOffsetsPartition {
                        partition_index: partition,
                        timestamp: ts,
                        ..Default::default()
                    }],
                }],
                ..Default::default()
            }),
        );
        let Response::ListOffsets(r) = r else {
            panic!()
        };
        let p = &r.topics[0].partitions[0];
        (p.error_code, p.offset)
    }
}

fn produce_request(topic: &str, partition: i32, acks: i16, batch: Vec<u8>) -> Request {
    Request::Produce(ProduceRequest {
        transactional_id: None,
        acks,
        timeout_ms: 5000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index: partition,
                records: Some(Bytes::from(batch)),
            }],
        }],
    })
}

fn fetch_request(topic: &str, partition: i32, offset: i64, max_wait_ms: i32) -> Request {
    Request::Fetch(FetchRequest {
        max_wait_ms,
        min_bytes: 1,
        max_bytes: 1 << 20,
        topics: vec![FetchTopic {
            topic: topic.into(),
            partitions: vec![FetchPartition {
                partition,
                fetch_offset: offset,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            }],
        }],
        ..Default::default()
    })
}

/// A batch of `values` built with `spec` (timestamps, producer fields).
fn batch_with(spec: BatchSpec, values: &[&str]) -> Vec<u8> {
    let records: Vec<NewRecord<'_>> = values
        .iter()
        .map(|v| NewRecord {
            value: Some(v.as_bytes()),
            ..NewRecord::default()
        })
        .collect();
    build_batch(spec, &records)
}

fn batch(values: &[&str], ts: i64) -> Vec<u8> {
    let spec = BatchSpec {
        base_timestamp: ts,
        ..BatchSpec::default()
    };
    batch_with(spec, values)
}

fn idempotent_batch(pid: i64, epoch: i16, seq: i32, values: &[&str]) -> Vec<u8> {
    let spec = BatchSpec {
        producer_id: pid,
        producer_epoch: epoch,
        base_sequence: seq,
        ..BatchSpec::default()
    };
    batch_with(spec, values)
}

/// Every (offset, value) of the data records in a fetch result, control batches skipped.
fn values(p: &PartitionData) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    let Some(bytes) = &p.records else { return out };
    for b in batches(bytes) {
        let b = b.unwrap();
        if b.header.is_control() {
            continue;
        }
        for r in read_records(b.bytes).unwrap() {
            out.push((
                r.offset,
                String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
            ));
        }
    }
    out
}

#[test]
fn produce_then_fetch_round_trips_with_offsets_and_high_watermark() {
    let mut h = Harness::new();
    assert_eq!(h.create_topic("orders", 2, &[]), codes::NONE);
    h.until_ready();
    let t0 = h.now.wall_ms;
    let (err, base) = h.produce("orders", 1, -1, batch(&["a", "b"], t0 + 1000));
    assert_eq!((err, base), (codes::NONE, 0));
    let (err, base) = h.produce("orders", 1, 1, batch(&["c"], t0 + 2000));
    assert_eq!((err, base), (codes::NONE, 2));
    let p = h.fetch("orders", 1, 0);
    assert_eq!(p.error_code, codes::NONE);
    assert_eq!(p.high_watermark, 3);
    assert_eq!(
        values(&p),
        vec![(0, "a".into()), (1, "b".into()), (2, "c".into())]
    );
    assert_eq!(values(&h.fetch("orders", 1, 2)), vec![(2, "c".into())]);
    assert_eq!(h.list_offset("orders", 1, -2), (codes::NONE, 0));
    assert_eq!(h.list_offset("orders", 1, -1), (codes::NONE, 3));
    assert_eq!(h.list_offset("orders", 1, t0 + 1500), (codes::NONE, 2));
    assert_eq!(h.list_offset("orders", 1, t0 + 9999), (codes::NONE, -1));
    // Largest timestamp (KIP-734): a later batch with an older timestamp does not move it.
    assert_eq!(
        h.produce("orders", 1, -1, batch(&["d"], t0 + 500)),
        (codes::NONE, 3)
    );
    assert_eq!(h.list_offset("orders", 1, -3), (codes::NONE, 2));
    assert_eq!(
        h.list_offset("orders", 0, -3),
        (codes::NONE, -1),
        "an empty partition"
    );
    assert_eq!(
        h.fetch("orders", 1, 5).error_code,
        codes::OFFSET_OUT_OF_RANGE
    );
}

#[test]
fn client_mistakes_get_kafka_error_codes() {
    let mut h = Harness::new();
    assert_eq!(
        h.create_topic("t", 1, &[("max.message.bytes", "200")]),
        codes::NONE
    );
    assert_eq!(h.create_topic("t", 1, &[]), codes::TOPIC_ALREADY_EXISTS);
    assert_eq!(
        h.create_topic("bad name", 1, &[]),
        codes::INVALID_TOPIC_EXCEPTION
    );
    assert_eq!(h.create_topic("u", 0, &[]), codes::INVALID_PARTITIONS);
    assert_eq!(
        h.create_topic("u", 1, &[("cleanup.policy", "compact")]),
        codes::INVALID_CONFIG
    );
    h.until_ready();
    assert_eq!(
        h.produce("nope", 0, -1, batch(&["x"], 0)).0,
        codes::UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        h.produce("t", 5, -1, batch(&["x"], 0)).0,
        codes::UNKNOWN_TOPIC_OR_PARTITION
    );
    let big = "x".repeat(300);
    assert_eq!(
        h.produce("t", 0, -1, batch(&[&big], 0)).0,
        codes::MESSAGE_TOO_LARGE
    );
    let mut corrupt = batch(&["x"], 0);
    let n = corrupt.len();
    corrupt[n - 1] ^= 0xff;
    assert_eq!(h.produce("t", 0, -1, corrupt).0, codes::CORRUPT_MESSAGE);
    assert_eq!(
        h.produce("t", 0, 2, batch(&["x"], 0)).0,
        codes::INVALID_REQUIRED_ACKS
    );
    // Nothing of the refused batches is readable.
    assert_eq!(values(&h.fetch("t", 0, 0)), vec![]);
    // A frame that does not decode closes the connection.
    h.nodes[0]
        .broker
        .as_mut()
        .unwrap()
        .handle_input(Input::Request {
            now: h.now,
            conn: 9,
            frame: Bytes::from_static(&[0, 0, 0]),
        });
    h.settle();
    assert_eq!(h.closed, vec![9]);
}

#[test]
fn idempotent_retries_are_answered_with_the_original_offsets_even_after_restart() {
    let mut h = Harness::new();
    h.create_topic("t", 1, &[]);
    h.until_ready();
    let Response::InitProducerId(r) = h.call(
        1,
        Request::InitProducerId(InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: -1,
            ..Default::default()
        }),
    ) else {
        panic!()
    };
    assert_eq!(r.error_code, codes::NONE);
    let pid = r.producer_id;
    assert_eq!(
        h.produce("t", 0, -1, idempotent_batch(pid, 0, 0, &["a", "b"])),
        (codes::NONE, 0)
    );
    assert_eq!(
        h.produce("t", 0, -1, idempotent_batch(pid, 0, 0, &["a", "b"])),
        (codes::NONE, 0)
    );
    assert_eq!(
        h.produce("t", 0, -1, idempotent_batch(pid, 0, 5, &["z"])).0,
        codes::OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    assert_eq!(
        h.produce("t", 0, -1, idempotent_batch(pid, 0, 2, &["c"])),
        (codes::NONE, 2)
    );

    let mut h = Harness::boot(std::mem::take(&mut h.nodes[0].disk), 2);
    h.until_ready();
    // After the restart the retry still maps to its first offsets, and offsets stay dense.
    assert_eq!(
        h.produce("t", 0, -1, idempotent_batch(pid, 0, 2, &["c"])),
        (codes::NONE, 2)
    );
    assert_eq!(
        h.produce("t", 0, -1, idempotent_batch(pid, 0, 3, &["d"])),
        (codes::NONE, 3)
    );
    assert_eq!(
        values(&h.fetch("t", 0, 0)),
        vec![
            (0, "a".into()),
            (1, "b".into()),
            (2, "c".into()),
            (3, "d".into())
        ]
    );
    // A new producer id never repeats an old one.
    let Response::InitProducerId(r) = h.call(
        1,
        Request::InitProducerId(InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: -1,
            ..Default::default()
        }),
    ) else {
        panic!()
    };
    assert!(r.producer_id > pid);
}

#[test]
fn a_long_poll_fetch_answers_when_data_arrives_and_responses_stay_in_order() {
    let mut h = Harness::new();
    h.create_topic("t", 1, &[]);
    h.until_ready();
    let hw = h.list_offset("t", 0, -1).1;
    // conn 7: a fetch that must wait, then a metadata request behind it.
    h.send(7, 11, fetch_request("t", 0, hw, 10_000));
    h.send(
        7,
        9,
        Request::Metadata(MetadataRequest {
            topics: None,
            ..Default::default()
        }),
    );
    assert!(
        h.responses.get(&7).is_none_or(VecDeque::is_empty),
        "nothing may overtake the waiting fetch"
    );
    h.produce("t", 0, -1, batch(&["late"], 0));
    let Some(Response::Fetch(f)) = h.take(7, ApiKey::Fetch, 11) else {
        panic!("fetch answered")
    };
    assert_eq!(
        values(&f.responses[0].partitions[0]),
        vec![(hw, "late".into())]
    );
    assert!(matches!(
        h.take(7, ApiKey::Metadata, 9),
        Some(Response::Metadata(_))
    ));
    // With no data, the fetch answers empty at its deadline.
    h.send(7, 11, fetch_request("t", 0, hw + 1, 500));
    assert!(h.take(7, ApiKey::Fetch, 11).is_none());
    for _ in 0..20 {
        h.advance(Duration::from_millis(100));
    }
    let Some(Response::Fetch(f)) = h.take(7, ApiKey::Fetch, 11) else {
        panic!("fetch expired")
    };
    assert_eq!(values(&f.responses[0].partitions[0]), vec![]);
}

#[test]
fn topics_survive_restart_and_deleted_topics_are_gone() {
    let mut h = Harness::new();
    h.create_topic("keep", 3, &[("retention.ms", "1000")]);
    h.create_topic("drop", 1, &[]);
    h.until_ready();
    h.produce("keep", 2, -1, batch(&["v"], 0));
    let Response::DeleteTopics(d) = h.call(
        4,
        Request::DeleteTopics(
            crate::protocol::messages::delete_topics::DeleteTopicsRequest {
                topic_names: vec!["drop".into()],
                timeout_ms: 1000,
            },
        ),
    ) else {
        panic!()
    };
    assert_eq!(d.responses[0].error_code, codes::NONE);
    let mut h = Harness::boot(std::mem::take(&mut h.nodes[0].disk), 3);
    h.until_ready();
    let names: Vec<&String> = h.broker().catalogue().topics.keys().collect();
    assert_eq!(names, vec!["keep"]);
    assert_eq!(
        h.broker().catalogue().topics["keep"].config.retention_ms,
        1000
    );
    assert_eq!(values(&h.fetch("keep", 2, 0)), vec![(0, "v".into())]);
    assert_eq!(
        h.produce("drop", 0, -1, batch(&["x"], 0)).0,
        codes::UNKNOWN_TOPIC_OR_PARTITION
    );
    assert!(
        !h.nodes[0].disk.files.keys().any(|f| f.contains("/drop-")),
        "the deleted topic's files are removed"
    );
}

#[test]
fn acks_zero_gets_no_response_but_the_next_request_does() {
    let mut h = Harness::new();
    h.create_topic("t", 1, &[]);
    h.until_ready();
    h.send(3, 8, produce_request("t", 0, 0, batch(&["q"], 0)));
    h.send(
        3,
        9,
        Request::Metadata(MetadataRequest {
            topics: None,
            ..Default::default()
        }),
    );
    assert!(matches!(
        h.take(3, ApiKey::Metadata, 9),
        Some(Response::Metadata(_))
    ));
    assert!(h.take(3, ApiKey::Metadata, 9).is_none());
    assert_eq!(values(&h.fetch("t", 0, 0)), vec![(0, "q".into())]);
}

#[test]
fn retention_by_size_moves_the_log_start_and_old_offsets_go_out_of_range() {
    let mut h = Harness::new();
    h.create_topic(
        "r",
        1,
        &[("segment.bytes", "1024"), ("retention.bytes", "2048")],
    );
    h.until_ready();
    let value = "v".repeat(100);
    for _ in 0..60 {
        assert_eq!(
            h.produce("r", 0, -1, batch(&[&value], h.now.wall_ms)).0,
            codes::NONE
        );
    }
    assert_eq!(h.list_offset("r", 0, -2), (codes::NONE, 0));
    // Housekeeping runs on its interval (a minute by default).
    let until = h.now.mono + Duration::from_secs(61);
    while h.now.mono < until {
        h.advance(Duration::from_secs(1));
    }
    let (_, start) = h.list_offset("r", 0, -2);
    assert!(start > 0, "retention moved the log start");
    assert_eq!(h.list_offset("r", 0, -1), (codes::NONE, 60));
    assert_eq!(h.fetch("r", 0, 0).error_code, codes::OFFSET_OUT_OF_RANGE);
    let p = h.fetch("r", 0, start);
    assert_eq!(p.log_start_offset, start);
    assert_eq!(values(&p).first().map(|v| v.0), Some(start));
    // The log start survives a restart.
    let mut h = Harness::boot(std::mem::take(&mut h.nodes[0].disk), 4);
    h.until_ready();
    assert_eq!(h.list_offset("r", 0, -2), (codes::NONE, start));
    assert_eq!(
        h.produce("r", 0, -1, batch(&["after"], 0)),
        (codes::NONE, 60)
    );
}

// ----- clusters -----

impl Harness {
    /// Runs until the cluster has a controller every broker knows and every broker is
    /// registered.
    fn until_cluster_formed(&mut self) {
        for _ in 0..2000 {
            let up: Vec<&Broker> = self
                .nodes
                .iter()
                .filter_map(|n| n.broker.as_ref())
                .collect();
            let controller = up[0].controller();
            let formed = controller.is_some()
                && up.iter().all(|b| {
                    b.controller() == controller && b.catalogue().live_brokers().len() == up.len()
                });
            if formed {
                return;
            }
            self.advance(Duration::from_millis(20));
        }
        panic!("the cluster never formed");
    }

    /// Metadata (v12, every topic) from the target node.
    fn metadata(&mut self) -> MetadataResponse {
        let Response::Metadata(m) = self.call(
            12,
            Request::Metadata(MetadataRequest {
                topics: None,
                ..Default::default()
            }),
        ) else {
            panic!("not a Metadata response")
        };
        m
    }

    /// The node leading `topic`-`partition` and serving clients, if any.
    fn serving_leader(&self, topic: &str, partition: u32) -> Option<usize> {
        (0..self.nodes.len()).find(|&i| {
            self.nodes[i].broker.as_ref().is_some_and(|b| {
                b.partitions()
                    .any(|p| p.topic == topic && p.index == partition && p.is_serving())
            })
        })
    }

    /// Runs (bounded) until `topic`-`partition` has a serving leader; makes it the target.
    fn until_leader(&mut self, topic: &str, partition: u32) -> usize {
        for _ in 0..2000 {
            if let Some(i) = self.serving_leader(topic, partition) {
                self.target = i;
                return i;
            }
            self.advance(Duration::from_millis(10));
        }
        panic!("{topic}-{partition} never got a leader");
    }
}

#[test]
fn a_three_broker_cluster_replicates_and_keeps_acknowledged_records_across_failover() {
    let mut h = Harness::cluster(3, 7);
    h.until_cluster_formed();
    assert_eq!(h.create_topic_rf("orders", 3, 3, &[]), codes::NONE);
    h.until_ready();
    let first = h.until_leader("orders", 0);
    for (k, v) in ["a", "b", "c"].iter().enumerate() {
        let (err, base) = h.produce("orders", 0, -1, batch(&[v], 0));
        assert_eq!((err, base), (codes::NONE, k as i64));
    }
    // Every replica has the records once they are committed.
    h.run_for(Duration::from_millis(200));
    for n in &h.nodes {
        let p = n
            .broker
            .as_ref()
            .unwrap()
            .partitions()
            .find(|p| p.topic == "orders" && p.index == 0);
        assert_eq!(p.unwrap().next_offset, 3, "a replica is missing records");
    }
    // The leader dies; another replica takes over with everything acknowledged.
    h.stop(first);
    let second = h.until_leader("orders", 0);
    assert_ne!(first, second);
    let (err, base) = h.produce("orders", 0, -1, batch(&["d"], 0));
    assert_eq!((err, base), (codes::NONE, 3));
    let got: Vec<String> = values(&h.fetch("orders", 0, 0))
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(got, ["a", "b", "c", "d"]);
    // The old leader comes back as a follower and catches up.
    h.start(first, 8);
    h.run_for(Duration::from_secs(1));
    let back = h.nodes[first].broker.as_ref().unwrap();
    let p = back
        .partitions()
        .find(|p| p.topic == "orders" && p.index == 0)
        .unwrap();
    assert_eq!(p.next_offset, 4);
}

#[test]
fn followers_answer_not_leader_and_metadata_names_the_leader() {
    let mut h = Harness::cluster(3, 3);
    h.until_cluster_formed();
    assert_eq!(h.create_topic_rf("t", 1, 3, &[]), codes::NONE);
    let leader = h.until_leader("t", 0);
    let follower = (leader + 1) % 3;
    h.target = follower;
    let (err, _) = h.produce("t", 0, -1, batch(&["x"], 0));
    assert_eq!(err, codes::NOT_LEADER_OR_FOLLOWER);
    let m = h.metadata();
    assert_eq!(m.brokers.len(), 3);
    let p = &m.topics[0].partitions[0];
    assert_eq!(p.leader_id, leader as i32 + 1);
    assert_eq!(p.replica_nodes.len(), 3);
    assert!(m.controller_id >= 1);
}

/// Found by the network-namespace fault tests: a broker whose replica follows a live leader
/// answered Metadata with no leader once the controller had fenced that leader (after a
/// one-way cut between the leader and the controller), so librdkafka parked the partition
/// for seconds while the leader still had its quorum. Raft decides who leads a partition;
/// the controller's fencing hides only leaders that no local replica follows.
#[test]
fn metadata_names_a_leader_this_broker_follows_even_when_the_controller_fenced_it() {
    let mut h = Harness::cluster(3, 3);
    h.until_cluster_formed();
    assert_eq!(h.create_topic_rf("t", 1, 3, &[]), codes::NONE);
    let leader = h.until_leader("t", 0);
    let follower = (leader + 1) % 3;
    h.target = follower;
    let leader_id = leader as i32 + 1;
    let b = h.nodes[follower].broker.as_mut().unwrap();
    b.catalogue.brokers.get_mut(&leader_id).unwrap().fenced = true;
    assert_eq!(
        h.metadata().topics[0].partitions[0].leader_id,
        leader_id,
        "the followed leader"
    );
    // A broker with no replica of the partition knows its leader only from the controller's
    // table: a fenced leader there is not advertised.
    let key = *h.nodes[follower]
        .broker
        .as_ref()
        .unwrap()
        .keys
        .keys()
        .next()
        .unwrap();
    let b = h.nodes[follower].broker.as_mut().unwrap();
    b.meta.known_leaders.insert(key, (1, leader_id, Vec::new()));
    let id = b.keys.remove(&key).unwrap();
    let view = b.partition_view(&b.catalogue.topics["t"].clone(), 0);
    b.keys.insert(key, id);
    assert_eq!(view.leader, -1, "a fenced leader known only from the table");
}

/// Found by the network-namespace fault tests: within half a second of a one-way cut,
/// `sluice cluster status` showed a follower about a whole partition behind. The leader's
/// in-memory log had been compacted exactly through that follower's last match, and the
/// lag fell back to the log start. It is now counted from the first batch after the match.
#[test]
fn a_follower_cut_off_after_compaction_lags_by_what_it_missed() {
    let mut h = Harness::cluster(3, 5);
    h.until_cluster_formed();
    assert_eq!(h.create_topic_rf("t", 1, 3, &[]), codes::NONE);
    let leader = h.until_leader("t", 0);
    for v in 0..20 {
        let (err, _) = h.produce("t", 0, -1, batch(&[&v.to_string()], 0));
        assert_eq!(err, codes::NONE);
    }
    h.run_for(Duration::from_millis(200));
    let cut = (leader + 1) % 3;
    h.isolated.push(cut);
    for v in 0..5 {
        let (err, _) = h.produce("t", 0, -1, batch(&[&format!("late {v}")], 0));
        assert_eq!(err, codes::NONE);
    }
    let p = h.nodes[leader]
        .broker
        .as_ref()
        .unwrap()
        .partitions()
        .find(|p| p.topic == "t")
        .unwrap();
    let lag = p.follower_lag();
    assert!(
        lag.contains(&(cut as i32 + 1, 5)),
        "the cut-off follower missed 5 records of {}: {lag:?}",
        p.high_watermark
    );
}

/// Found by the network-namespace fault tests: the in-sync replicas depended on which broker
/// answered. The leader counted only followers with no lag; a follower counted every live
/// replica, so it called a lagging replica in sync. Followers now use the lags the leader
/// last reported to the controller for the same leadership.
#[test]
fn followers_and_the_leader_agree_that_a_lagging_replica_is_not_in_sync() {
    let mut h = Harness::cluster(3, 9);
    h.until_cluster_formed();
    assert_eq!(h.create_topic_rf("t", 1, 3, &[]), codes::NONE);
    let leader = h.until_leader("t", 0);
    let (behind, other) = ((leader + 1) % 3, (leader + 2) % 3);
    // The leader's messages to one follower are lost; that follower still reaches everyone.
    h.cuts.push((leader, behind));
    for v in 0..5 {
        let (err, _) = h.produce("t", 0, -1, batch(&[&v.to_string()], 0));
        assert_eq!(err, codes::NONE);
    }
    h.run_for(Duration::from_secs(1));
    let in_sync = |h: &mut Harness, via: usize| {
        h.target = via;
        let mut isr = h.metadata().topics[0].partitions[0].isr_nodes.clone();
        isr.sort_unstable();
        isr
    };
    let mut expected = vec![leader as i32 + 1, other as i32 + 1];
    expected.sort_unstable();
    assert_eq!(in_sync(&mut h, leader), expected, "the leader's view");
    assert_eq!(in_sync(&mut h, other), expected, "a follower's view");
}

#[test]
fn a_replication_factor_above_the_live_brokers_is_refused_clearly() {
    let mut h = Harness::cluster(3, 4);
    h.until_cluster_formed();
    let Response::CreateTopics(r) = h.call(
        5,
        Request::CreateTopics(CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: "big".into(),
                num_partitions: 1,
                replication_factor: 4,
                ..Default::default()
            }],
            timeout_ms: 1000,
            ..Default::default()
        }),
    ) else {
        panic!()
    };
    assert_eq!(r.topics[0].error_code, codes::INVALID_REPLICATION_FACTOR);
    let message = r.topics[0].error_message.clone().unwrap();
    assert!(
        message.contains("larger than the 3 live brokers"),
        "{message}"
    );
}

#[test]
fn an_idempotent_retry_after_failover_is_deduplicated_by_the_new_leader() {
    let mut h = Harness::cluster(3, 11);
    h.until_cluster_formed();
    assert_eq!(h.create_topic_rf("t", 1, 3, &[]), codes::NONE);
    let first = h.until_leader("t", 0);
    let b = idempotent_batch(4000, 0, 0, &["once"]);
    assert_eq!(h.produce("t", 0, -1, b.clone()), (codes::NONE, 0));
    h.run_for(Duration::from_millis(100));
    h.stop(first);
    h.until_leader("t", 0);
    // The producer never saw the answer and retries the same batch.
    assert_eq!(h.produce("t", 0, -1, b), (codes::NONE, 0));
    let got = values(&h.fetch("t", 0, 0));
    assert_eq!(got, [(0, "once".to_string())]);
}

#[test]
fn leadership_returns_to_the_preferred_replica_after_it_comes_back() {
    let mut h = Harness::cluster(3, 5);
    h.until_cluster_formed();
    assert_eq!(h.create_topic_rf("t", 3, 3, &[]), codes::NONE);
    h.until_ready();
    // Within a few balance intervals every partition is led by its preferred replica, so
    // leadership is spread over all three brokers.
    h.run_for(Duration::from_secs(8));
    let preferred =
        |h: &Harness, p: u32| h.broker().catalogue().topics["t"].replicas[p as usize][0];
    let mut leaders = Vec::new();
    for p in 0..3 {
        let l = h.until_leader("t", p) as i32 + 1;
        assert_eq!(
            l,
            preferred(&h, p),
            "partition {p} not led by its preferred replica"
        );
        leaders.push(l);
    }
    leaders.sort_unstable();
    assert_eq!(leaders, [1, 2, 3]);
    // Partition 0's leader dies; another takes over; when it returns, it leads again.
    let l0 = h.until_leader("t", 0);
    h.stop(l0);
    let other = h.until_leader("t", 0);
    assert_ne!(other, l0);
    h.start(l0, 6);
    h.run_for(Duration::from_secs(8));
    assert_eq!(h.until_leader("t", 0), l0);
}

/// Regression (found by the real-process chaos test: librdkafka's idempotent producer got
/// OUT_OF_ORDER_SEQUENCE_NUMBER from a new leader). A follower accounted entries from its
/// commit index on, so entries that arrived in the same append that told it they were
/// committed (a lagging follower catching up) were never accounted: no offsets, no producer
/// state. Once it led, it refused the producer's next sequence.
#[test]
fn a_follower_catching_up_in_one_append_accounts_every_entry() {
    let mut h = Harness::cluster(3, 21);
    h.until_cluster_formed();
    assert_eq!(h.create_topic_rf("t", 1, 3, &[]), codes::NONE);
    let leader = h.until_leader("t", 0);
    let lagging = (leader + 1) % 3;
    h.isolated = vec![lagging];
    for seq in 0..3 {
        let b = idempotent_batch(4000, 0, seq, &["v"]);
        assert_eq!(h.produce("t", 0, -1, b), (codes::NONE, i64::from(seq)));
    }
    h.isolated.clear();
    h.run_for(Duration::from_secs(1));
    let p = h.nodes[lagging]
        .broker
        .as_ref()
        .unwrap()
        .partitions()
        .find(|p| p.topic == "t")
        .unwrap();
    assert_eq!((p.next_offset, p.high_watermark), (3, 3));
    // The caught-up follower takes over and accepts the producer's next sequence.
    let other = 3 - leader - lagging;
    h.stop(leader);
    h.stop(other);
    h.start(other, 22);
    let new_leader = h.until_leader("t", 0);
    assert_ne!(new_leader, leader);
    let b = idempotent_batch(4000, 0, 3, &["next"]);
    assert_eq!(h.produce("t", 0, -1, b), (codes::NONE, 3));
}

/// An idempotent producer that retries each batch until it is acknowledged, while the leader
/// is stopped and the previously stopped broker restarted every few batches: every batch is
/// acknowledged once, in order, and never refused as out of order.
#[test]
fn idempotent_sequences_survive_rolling_leader_restarts() {
    let mut h = Harness::cluster(3, 31);
    h.until_cluster_formed();
    assert_eq!(h.create_topic_rf("t", 1, 3, &[]), codes::NONE);
    h.until_leader("t", 0);
    let mut down: Option<usize> = None;
    let mut offsets = Vec::new();
    for seq in 0..120 {
        let b = idempotent_batch(5000, 0, seq, &["v"]);
        let mut attempts = 0;
        loop {
            attempts += 1;
            assert!(attempts < 50, "batch {seq} never acknowledged");
            h.until_leader("t", 0);
            let (err, base) = h.produce("t", 0, -1, b.clone());
            match err {
                codes::NONE => {
                    offsets.push(base);
                    break;
                }
                codes::NOT_LEADER_OR_FOLLOWER | codes::REQUEST_TIMED_OUT => {
                    h.advance(Duration::from_millis(20))
                }
                other => panic!("batch {seq}: error {other}"),
            }
        }
        if seq % 15 == 14 {
            if let Some(d) = down.take() {
                h.start(d, 40 + seq as u64);
            }
            let l = h.until_leader("t", 0);
            h.stop(l);
            down = Some(l);
        }
    }
    assert_eq!(offsets, (0..120).collect::<Vec<i64>>());
}

#[test]
fn brokers_that_are_not_voters_follow_the_metadata_log_and_host_replicas() {
    // Five brokers, three of them metadata voters.
    let mut h = Harness::cluster(5, 41);
    h.until_cluster_formed();
    for n in &h.nodes[3..] {
        assert!(n.broker.as_ref().unwrap().metadata_raft().is_none());
    }
    // Created through a non-voter (forwarded to the controller), over all five brokers.
    h.target = 4;
    assert_eq!(h.create_topic_rf("wide", 5, 3, &[]), codes::NONE);
    h.until_ready();
    for n in &h.nodes {
        let b = n.broker.as_ref().unwrap();
        assert_eq!(b.catalogue().topics["wide"].partition_count(), 5);
    }
    let hosted = |i: usize| h.nodes[i].broker.as_ref().unwrap().partitions().count();
    assert_eq!(
        (0..5).map(hosted).sum::<usize>(),
        15,
        "5 partitions x 3 replicas"
    );
    assert!(
        hosted(3) > 0 && hosted(4) > 0,
        "non-voters host replicas too"
    );
    // Every partition works, wherever its leader is.
    for p in 0..5 {
        h.until_leader("wide", p);
        assert_eq!(
            h.produce("wide", p as i32, -1, batch(&["x"], 0)),
            (codes::NONE, 0)
        );
    }
    // A non-voter restarted with its image on disk catches up with later changes.
    h.stop(4);
    h.target = 0;
    assert_eq!(h.create_topic_rf("later", 1, 1, &[]), codes::NONE);
    h.start(4, 42);
    h.run_for(Duration::from_secs(1));
    assert!(h.nodes[4]
        .broker
        .as_ref()
        .unwrap()
        .catalogue()
        .topics
        .contains_key("later"));
}

#[test]
fn replica_lag_is_counted_in_offsets_and_reported_by_describe_log_dirs() {
    use crate::protocol::messages::describe_log_dirs::*;
    let mut h = Harness::cluster(3, 51);
    h.until_cluster_formed();
    assert_eq!(h.create_topic_rf("t", 1, 3, &[]), codes::NONE);
    let leader = h.until_leader("t", 0);
    let behind = (leader + 1) % 3;
    h.isolated = vec![behind];
    for _ in 0..3 {
        assert_eq!(h.produce("t", 0, -1, batch(&["a", "b"], 0)).0, codes::NONE);
    }
    let lag = |h: &Harness| {
        let b = h.nodes[leader].broker.as_ref().unwrap();
        b.partitions()
            .find(|p| p.topic == "t")
            .unwrap()
            .follower_lag()
    };
    let lags = lag(&h);
    assert!(lags.contains(&(behind as i32 + 1, 6)), "{lags:?}");
    assert!(lags.iter().any(|&(r, l)| r != behind as i32 + 1 && l == 0));
    h.isolated.clear();
    h.run_for(Duration::from_secs(1));
    assert!(lag(&h).iter().all(|&(_, l)| l == 0), "{:?}", lag(&h));
    // Each broker describes its own replica: its size and its lag (0 once caught up).
    for i in 0..3 {
        h.target = i;
        let Response::DescribeLogDirs(r) = h.call(
            4,
            Request::DescribeLogDirs(DescribeLogDirsRequest { topics: None }),
        ) else {
            panic!()
        };
        let p = &r.results[0].topics[0].partitions[0];
        assert_eq!(r.results[0].topics[0].name, "t");
        assert!(
            p.partition_size > 0,
            "broker {i}: size {}",
            p.partition_size
        );
        assert_eq!(p.offset_lag, 0, "broker {i}");
    }
}

mod group;
