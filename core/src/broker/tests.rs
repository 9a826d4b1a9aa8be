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

struct Harness {
    broker: Broker,
    storage: BrokerStorage,
    disk: MemDisk,
    now: Now,
    /// Responses per connection, in arrival order.
    responses: BTreeMap<ConnId, VecDeque<Vec<u8>>>,
    closed: Vec<ConnId>,
    correlation: i32,
}

impl Harness {
    fn new() -> Harness {
        Harness::boot(MemDisk::default(), 1)
    }

    fn boot(mut disk: MemDisk, seed: u64) -> Harness {
        let storage = BrokerStorage::new("data");
        let catalogue = storage.load_catalogue(&mut disk).unwrap();
        let now = Now::at(Instant::from_nanos(1_000_000), 1_700_000_000_000);
        let broker = Broker::new(
            BrokerConfig::new(1, "127.0.0.1", 9092),
            catalogue.as_deref(),
            DetRng::new(seed),
            now,
        )
        .unwrap();
        let mut h = Harness {
            broker,
            storage,
            disk,
            now,
            responses: BTreeMap::new(),
            closed: Vec::new(),
            correlation: 0,
        };
        h.settle();
        h
    }

    /// Drains outputs, performing storage jobs, until nothing is left.
    fn settle(&mut self) {
        let mut jobs = VecDeque::new();
        loop {
            while let Some(out) = self.broker.poll_output() {
                match out {
                    Output::Response { conn, frame, .. } => {
                        if !frame.is_empty() {
                            self.responses.entry(conn).or_default().push_back(frame)
                        }
                    }
                    Output::Close { conn, .. } => self.closed.push(conn),
                    Output::Storage { target, job } => jobs.push_back((target, job)),
                    Output::Event(_) => {}
                }
            }
            let Some((target, job)) = jobs.pop_front() else {
                break;
            };
            let done = self
                .storage
                .execute(&mut self.disk, target, job, self.now.wall_ms)
                .unwrap();
            self.broker.handle_input(Input::Storage {
                now: self.now,
                target,
                done,
            });
        }
    }

    /// Advances virtual time to the broker's next deadline (bounded) and delivers it.
    fn advance(&mut self, max: Duration) {
        let limit = self.now.mono + max;
        let at = self
            .broker
            .poll_timeout()
            .map_or(limit, |d| d.min(limit))
            .max(self.now.mono);
        self.now = Now::at(
            at,
            self.now.wall_ms + (at.as_nanos() - self.now.mono.as_nanos()) as i64 / 1_000_000,
        );
        self.broker.handle_input(Input::Timeout(self.now));
        self.settle();
    }

    /// Runs timers until every partition has elected itself.
    fn until_ready(&mut self) {
        for _ in 0..100 {
            if self.broker.all_partitions_ready() {
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
        self.broker.handle_input(Input::Request {
            now: self.now,
            conn,
            frame: Bytes::from(frame[4..].to_vec()),
        });
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
        self.take(1, api, version).expect("an immediate response")
    }

    fn create_topic(&mut self, name: &str, partitions: i32, configs: &[(&str, &str)]) -> i16 {
        let r = self.call(
            5,
            Request::CreateTopics(CreateTopicsRequest {
                topics: vec![CreatableTopic {
                    name: name.into(),
                    num_partitions: partitions,
                    replication_factor: 1,
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
    h.broker.handle_input(Input::Request {
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

    let mut h = Harness::boot(std::mem::take(&mut h.disk), 2);
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
    let mut h = Harness::boot(std::mem::take(&mut h.disk), 3);
    h.until_ready();
    let names: Vec<&String> = h.broker.catalogue().topics.keys().collect();
    assert_eq!(names, vec!["keep"]);
    assert_eq!(
        h.broker.catalogue().topics["keep"].config.retention_ms,
        1000
    );
    assert_eq!(values(&h.fetch("keep", 2, 0)), vec![(0, "v".into())]);
    assert_eq!(
        h.produce("drop", 0, -1, batch(&["x"], 0)).0,
        codes::UNKNOWN_TOPIC_OR_PARTITION
    );
    assert!(
        !h.disk.files.keys().any(|f| f.contains("/drop-")),
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
    let mut h = Harness::boot(std::mem::take(&mut h.disk), 4);
    h.until_ready();
    assert_eq!(h.list_offset("r", 0, -2), (codes::NONE, start));
    assert_eq!(
        h.produce("r", 0, -1, batch(&["after"], 0)),
        (codes::NONE, 60)
    );
}
