//! The client side of the `sluice` command: a small blocking Kafka client on the core codec,
//! enough for `sluice topic`, `sluice produce`, `sluice consume`, `sluice cluster` and
//! `sluice group` against any Kafka-compatible broker. One request at a time, with a timeout on every call.
//!
//! `Client` talks to one broker. `Routed` sends a partition's requests to its leader, learning
//! leaders from Metadata and following them when they move (as every Kafka client does); the
//! admin requests go to the bootstrap broker, which forwards them to the controller.

use bytes::Bytes;
use sluice_core::protocol::messages::create_topics::*;
use sluice_core::protocol::messages::delete_groups::*;
use sluice_core::protocol::messages::delete_topics::*;
use sluice_core::protocol::messages::describe_configs::*;
use sluice_core::protocol::messages::describe_groups::*;
use sluice_core::protocol::messages::fetch::*;
use sluice_core::protocol::messages::find_coordinator::*;
use sluice_core::protocol::messages::list_groups::*;
use sluice_core::protocol::messages::list_offsets::*;
use sluice_core::protocol::messages::metadata::*;
use sluice_core::protocol::messages::offset_commit::*;
use sluice_core::protocol::messages::offset_fetch::*;
use sluice_core::protocol::messages::produce::*;
use sluice_core::protocol::{decode_response, encode_request, Request, RequestHeader, Response};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

#[derive(Debug)]
pub struct Client {
    sock: TcpStream,
    correlation: i32,
    /// A send or receive failed: the connection is unusable (a half-read response would be
    /// taken for the next one).
    broken: bool,
}

/// The versions this tool speaks (all within what Sluice and Kafka 2.x+ brokers support).
const METADATA_V: i16 = 9;
const CREATE_TOPICS_V: i16 = 5;
const DELETE_TOPICS_V: i16 = 4;
const DESCRIBE_CONFIGS_V: i16 = 2;
const PRODUCE_V: i16 = 8;
const FETCH_V: i16 = 11;
const LIST_OFFSETS_V: i16 = 5;
pub const DESCRIBE_LOG_DIRS_V: i16 = 4;
/// The group APIs at versions Kafka 2.6 and later serve.
const FIND_COORDINATOR_V: i16 = 3;
const DESCRIBE_GROUPS_V: i16 = 5;
const LIST_GROUPS_V: i16 = 4;
const OFFSET_FETCH_V: i16 = 7;
const OFFSET_COMMIT_V: i16 = 7;
const DELETE_GROUPS_V: i16 = 2;

impl Client {
    pub fn connect(bootstrap: &str, timeout: Duration) -> Result<Client, String> {
        let addr = bootstrap
            .to_socket_addrs()
            .map_err(|e| format!("bootstrap address '{bootstrap}': {e}"))?
            .next()
            .ok_or_else(|| format!("bootstrap address '{bootstrap}' resolves to nothing"))?;
        let sock = TcpStream::connect_timeout(&addr, timeout).map_err(|e| {
            format!("cannot connect to {bootstrap}: {e} (is `sluice broker` running?)")
        })?;
        sock.set_read_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        sock.set_write_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        let _ = sock.set_nodelay(true);
        Ok(Client {
            sock,
            correlation: 0,
            broken: false,
        })
    }

    /// Whether the connection failed and must be replaced.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    pub fn call(&mut self, version: i16, request: Request) -> Result<Response, String> {
        if self.broken {
            return Err(format!(
                "{}: the connection failed earlier",
                request.api_key().name()
            ));
        }
        let result = self.exchange(version, request);
        if result.is_err() {
            self.broken = true;
        }
        result
    }

    fn exchange(&mut self, version: i16, request: Request) -> Result<Response, String> {
        self.correlation += 1;
        let api = request.api_key();
        let header = RequestHeader {
            api_key: api,
            api_version: version,
            correlation_id: self.correlation,
            client_id: Some("sluice-cli".into()),
        };
        self.sock
            .write_all(&encode_request(&header, &request))
            .map_err(|e| format!("{}: send failed: {e}", api.name()))?;
        let mut size = [0u8; 4];
        self.sock
            .read_exact(&mut size)
            .map_err(|e| format!("{}: no response: {e}", api.name()))?;
        let size = i32::from_be_bytes(size);
        if !(0..=256 << 20).contains(&size) {
            return Err(format!(
                "{}: response size {size} is not plausible",
                api.name()
            ));
        }
        let mut frame = vec![0u8; size as usize];
        self.sock
            .read_exact(&mut frame)
            .map_err(|e| format!("{}: truncated response: {e}", api.name()))?;
        let (h, body) =
            decode_response(api, version, &frame).map_err(|e| format!("{}: {e}", api.name()))?;
        if h.correlation_id != self.correlation {
            return Err(format!(
                "{}: response for request {}, expected {}",
                api.name(),
                h.correlation_id,
                self.correlation
            ));
        }
        Ok(body)
    }

    pub fn metadata(&mut self, topics: Option<Vec<String>>) -> Result<MetadataResponse, String> {
        let r = self.call(
            METADATA_V,
            Request::Metadata(MetadataRequest {
                topics: topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| MetadataRequestTopic {
                            name: Some(t),
                            ..Default::default()
                        })
                        .collect()
                }),
                allow_auto_topic_creation: false,
                ..Default::default()
            }),
        )?;
        match r {
            Response::Metadata(m) => Ok(m),
            _ => Err("unexpected response to Metadata".into()),
        }
    }

    pub fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        replication: i16,
        configs: &[(String, String)],
    ) -> Result<(), String> {
        let r = self.call(
            CREATE_TOPICS_V,
            Request::CreateTopics(CreateTopicsRequest {
                topics: vec![CreatableTopic {
                    name: name.into(),
                    num_partitions: partitions,
                    replication_factor: replication,
                    configs: configs
                        .iter()
                        .map(|(k, v)| CreatableTopicConfig {
                            name: k.clone(),
                            value: Some(v.clone()),
                        })
                        .collect(),
                    ..Default::default()
                }],
                timeout_ms: 30_000,
                ..Default::default()
            }),
        )?;
        let Response::CreateTopics(r) = r else {
            return Err("unexpected response".into());
        };
        let t = &r.topics[0];
        check(t.error_code, t.error_message.as_deref())
    }

    pub fn delete_topic(&mut self, name: &str) -> Result<(), String> {
        let r = self.call(
            DELETE_TOPICS_V,
            Request::DeleteTopics(DeleteTopicsRequest {
                topic_names: vec![name.into()],
                timeout_ms: 30_000,
            }),
        )?;
        let Response::DeleteTopics(r) = r else {
            return Err("unexpected response".into());
        };
        check(
            r.responses[0].error_code,
            r.responses[0].error_message.as_deref(),
        )
    }

    pub fn topic_configs(&mut self, name: &str) -> Result<Vec<(String, String, bool)>, String> {
        let r = self.call(
            DESCRIBE_CONFIGS_V,
            Request::DescribeConfigs(DescribeConfigsRequest {
                resources: vec![DescribeConfigsResource {
                    resource_type: 2,
                    resource_name: name.into(),
                    configuration_keys: None,
                }],
                ..Default::default()
            }),
        )?;
        let Response::DescribeConfigs(r) = r else {
            return Err("unexpected response".into());
        };
        let res = &r.results[0];
        check(res.error_code, res.error_message.as_deref())?;
        Ok(res
            .configs
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    c.value.clone().unwrap_or_default(),
                    c.config_source == 1,
                )
            })
            .collect())
    }

    /// The offset for `timestamp` (-2 earliest, -1 latest) of one partition.
    pub fn list_offset(
        &mut self,
        topic: &str,
        partition: i32,
        timestamp: i64,
    ) -> Result<i64, String> {
        let r = self.call(
            LIST_OFFSETS_V,
            Request::ListOffsets(ListOffsetsRequest {
                replica_id: -1,
                topics: vec![ListOffsetsTopic {
                    name: topic.into(),
                    partitions: vec![ListOffsetsPartition {
                        partition_index: partition,
                        timestamp,
                        ..Default::default()
                    }],
                }],
                ..Default::default()
            }),
        )?;
        let Response::ListOffsets(r) = r else {
            return Err("unexpected response".into());
        };
        let p = &r.topics[0].partitions[0];
        check(p.error_code, None)?;
        Ok(p.offset)
    }

    /// Produces one uncompressed batch; returns its base offset.
    pub fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        acks: i16,
        batch: Vec<u8>,
    ) -> Result<i64, String> {
        let r = self.call(
            PRODUCE_V,
            Request::Produce(ProduceRequest {
                transactional_id: None,
                acks,
                timeout_ms: 30_000,
                topic_data: vec![TopicProduceData {
                    name: topic.into(),
                    partition_data: vec![PartitionProduceData {
                        index: partition,
                        records: Some(Bytes::from(batch)),
                    }],
                }],
            }),
        )?;
        let Response::Produce(r) = r else {
            return Err("unexpected response".into());
        };
        let p = &r.responses[0].partition_responses[0];
        check(p.error_code, p.error_message.as_deref())?;
        Ok(p.base_offset)
    }

    /// Fetches from one partition: the records bytes (empty or absent when there is nothing new).
    pub fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_wait_ms: i32,
    ) -> Result<Option<Bytes>, String> {
        let r = self.call(
            FETCH_V,
            Request::Fetch(FetchRequest {
                max_wait_ms,
                min_bytes: 1,
                max_bytes: 16 << 20,
                topics: vec![FetchTopic {
                    topic: topic.into(),
                    partitions: vec![FetchPartition {
                        partition,
                        fetch_offset: offset,
                        partition_max_bytes: 4 << 20,
                        ..Default::default()
                    }],
                }],
                ..Default::default()
            }),
        )?;
        let Response::Fetch(r) = r else {
            return Err("unexpected response".into());
        };
        check(r.error_code, None)?;
        let p = &r.responses[0].partitions[0];
        check(p.error_code, None)?;
        Ok(p.records.clone())
    }

    /// The coordinator of consumer group `group`: (node id, "host:port").
    pub fn find_coordinator(&mut self, group: &str) -> Result<(i32, String), String> {
        let r = self.call(
            FIND_COORDINATOR_V,
            Request::FindCoordinator(FindCoordinatorRequest {
                key: group.into(),
                key_type: 0,
                ..Default::default()
            }),
        )?;
        let Response::FindCoordinator(r) = r else {
            return Err("unexpected response".into());
        };
        check(r.error_code, r.error_message.as_deref())?;
        Ok((r.node_id, format!("{}:{}", r.host, r.port)))
    }

    /// DescribeGroups for one group (asked of its coordinator).
    pub fn describe_group(&mut self, group: &str) -> Result<DescribedGroup, String> {
        let r = self.call(
            DESCRIBE_GROUPS_V,
            Request::DescribeGroups(DescribeGroupsRequest {
                groups: vec![group.into()],
                include_authorized_operations: false,
            }),
        )?;
        let Response::DescribeGroups(r) = r else {
            return Err("unexpected response".into());
        };
        let g = r
            .groups
            .into_iter()
            .find(|g| g.group_id == group)
            .ok_or("DescribeGroups answered without the group")?;
        check(g.error_code, None)?;
        Ok(g)
    }

    /// The groups this broker coordinates, and the response's error code (a broker still
    /// loading some groups answers COORDINATOR_LOAD_IN_PROGRESS with what it has).
    pub fn list_groups(&mut self) -> Result<(i16, Vec<ListedGroup>), String> {
        let r = self.call(
            LIST_GROUPS_V,
            Request::ListGroups(ListGroupsRequest::default()),
        )?;
        let Response::ListGroups(r) = r else {
            return Err("unexpected response".into());
        };
        Ok((r.error_code, r.groups))
    }

    /// Every offset the group committed (asked of its coordinator): (topic, partition, offset).
    pub fn committed_offsets(&mut self, group: &str) -> Result<Vec<(String, i32, i64)>, String> {
        let r = self.call(
            OFFSET_FETCH_V,
            Request::OffsetFetch(OffsetFetchRequest {
                group_id: group.into(),
                topics: None,
                ..Default::default()
            }),
        )?;
        let Response::OffsetFetch(r) = r else {
            return Err("unexpected response".into());
        };
        check(r.error_code, None)?;
        let mut out = Vec::new();
        for t in r.topics {
            for p in t.partitions {
                check(p.error_code, None)?;
                if p.committed_offset >= 0 {
                    out.push((t.name.clone(), p.partition_index, p.committed_offset));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Commits `offsets` (partition, offset) of `topic` for the group outside any generation,
    /// as admin tools do: Kafka takes it only while the group has no members.
    pub fn commit_offsets(
        &mut self,
        group: &str,
        topic: &str,
        offsets: &[(i32, i64)],
    ) -> Result<(), String> {
        let r = self.call(
            OFFSET_COMMIT_V,
            Request::OffsetCommit(OffsetCommitRequest {
                group_id: group.into(),
                generation_id_or_member_epoch: -1,
                member_id: String::new(),
                group_instance_id: None,
                topics: vec![OffsetCommitRequestTopic {
                    name: topic.into(),
                    partitions: offsets
                        .iter()
                        .map(
                            |&(partition_index, committed_offset)| OffsetCommitRequestPartition {
                                partition_index,
                                committed_offset,
                                ..Default::default()
                            },
                        )
                        .collect(),
                }],
                ..Default::default()
            }),
        )?;
        let Response::OffsetCommit(r) = r else {
            return Err("unexpected response".into());
        };
        for t in &r.topics {
            for p in &t.partitions {
                check(p.error_code, None)
                    .map_err(|e| format!("{e} for {}-{}", t.name, p.partition_index))?;
            }
        }
        Ok(())
    }

    /// Deletes an empty group and its committed offsets (asked of its coordinator).
    pub fn delete_group(&mut self, group: &str) -> Result<(), String> {
        let r = self.call(
            DELETE_GROUPS_V,
            Request::DeleteGroups(DeleteGroupsRequest {
                groups_names: vec![group.into()],
            }),
        )?;
        let Response::DeleteGroups(r) = r else {
            return Err("unexpected response".into());
        };
        let res = r
            .results
            .iter()
            .find(|g| g.group_id == group)
            .ok_or("DeleteGroups answered without the group")?;
        check(res.error_code, None)
    }
}

/// Errors a client should retry: leadership is moving or the broker is still starting.
const RETRIABLE: [&str; 6] = [
    "LEADER_NOT_AVAILABLE",
    "NOT_LEADER_OR_FOLLOWER",
    "REQUEST_TIMED_OUT",
    "KAFKA_STORAGE_ERROR",
    "FENCED_LEADER_EPOCH",
    "UNKNOWN_LEADER_EPOCH",
];

fn retriable(e: &str) -> bool {
    RETRIABLE.iter().any(|r| e.starts_with(r))
}

/// How long the tools keep retrying a retriable error, and the pause between tries.
pub const RETRY_FOR: Duration = Duration::from_secs(15);
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// The pause before a retry (Kafka clients' retry.backoff.ms).
pub fn backoff() {
    std::thread::sleep(RETRY_BACKOFF);
}

/// Turns a Kafka error code into a readable error.
pub fn check(code: i16, message: Option<&str>) -> Result<(), String> {
    if code == 0 {
        return Ok(());
    }
    let name = match code {
        1 => "OFFSET_OUT_OF_RANGE",
        2 => "CORRUPT_MESSAGE",
        3 => "UNKNOWN_TOPIC_OR_PARTITION",
        5 => "LEADER_NOT_AVAILABLE",
        6 => "NOT_LEADER_OR_FOLLOWER",
        7 => "REQUEST_TIMED_OUT",
        10 => "MESSAGE_TOO_LARGE",
        12 => "OFFSET_METADATA_TOO_LARGE",
        14 => "COORDINATOR_LOAD_IN_PROGRESS",
        15 => "COORDINATOR_NOT_AVAILABLE",
        16 => "NOT_COORDINATOR",
        17 => "INVALID_TOPIC_EXCEPTION",
        22 => "ILLEGAL_GENERATION",
        24 => "INVALID_GROUP_ID",
        25 => "UNKNOWN_MEMBER_ID",
        27 => "REBALANCE_IN_PROGRESS",
        35 => "UNSUPPORTED_VERSION",
        36 => "TOPIC_ALREADY_EXISTS",
        37 => "INVALID_PARTITIONS",
        38 => "INVALID_REPLICATION_FACTOR",
        40 => "INVALID_CONFIG",
        42 => "INVALID_REQUEST",
        56 => "KAFKA_STORAGE_ERROR",
        68 => "NON_EMPTY_GROUP",
        69 => "GROUP_ID_NOT_FOUND",
        74 => "FENCED_LEADER_EPOCH",
        75 => "UNKNOWN_LEADER_EPOCH",
        82 => "FENCED_INSTANCE_ID",
        88 => "UNSTABLE_OFFSET_COMMIT",
        _ => "ERROR",
    };
    Err(match message {
        Some(m) if !m.is_empty() => format!("{name} ({code}): {m}"),
        _ => format!("{name} ({code})"),
    })
}

/// Sends each partition's requests to that partition's leader.
///
/// Leaders and broker addresses come from Metadata, asked of the bootstrap broker first and of
/// the other known brokers when it does not answer. A retriable error, a partition without a
/// leader or a lost connection refreshes the metadata and tries again, for up to
/// `RETRY_FOR`. A request whose connection broke after it was sent may have taken effect; a
/// retried produce can then write its batch twice (this tool's producer is not idempotent).
#[derive(Debug)]
pub struct Routed {
    bootstrap: String,
    timeout: Duration,
    /// Broker id -> "host:port", from the last metadata.
    brokers: BTreeMap<i32, String>,
    /// (topic, partition) -> leader id, from the last metadata (-1: none).
    leaders: BTreeMap<(String, i32), i32>,
    /// Open connections by address.
    conns: BTreeMap<String, Client>,
}

impl Routed {
    /// Connects to the bootstrap broker (failing early with a clear message if it is not
    /// there).
    pub fn connect(bootstrap: &str, timeout: Duration) -> Result<Routed, String> {
        let first = Client::connect(bootstrap, timeout)?;
        Ok(Routed {
            bootstrap: bootstrap.to_string(),
            timeout,
            brokers: BTreeMap::new(),
            leaders: BTreeMap::new(),
            conns: BTreeMap::from([(bootstrap.to_string(), first)]),
        })
    }

    /// The connection to `addr`, opened if needed.
    fn conn(&mut self, addr: &str) -> Result<&mut Client, String> {
        if self.conns.get(addr).is_some_and(Client::is_broken) {
            self.conns.remove(addr);
        }
        if !self.conns.contains_key(addr) {
            let c = Client::connect(addr, self.timeout)?;
            self.conns.insert(addr.to_string(), c);
        }
        Ok(self.conns.get_mut(addr).expect("just inserted"))
    }

    /// Metadata for `topics` (all topics: `None`), from the bootstrap broker or, failing
    /// that, any broker the last answer listed. Remembers brokers and leaders.
    pub fn metadata(&mut self, topics: Option<Vec<String>>) -> Result<MetadataResponse, String> {
        let mut candidates = vec![self.bootstrap.clone()];
        candidates.extend(
            self.brokers
                .values()
                .filter(|a| **a != self.bootstrap)
                .cloned(),
        );
        let mut last = String::new();
        for addr in candidates {
            match self.conn(&addr).and_then(|c| c.metadata(topics.clone())) {
                Ok(m) => {
                    self.learn(&m);
                    return Ok(m);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn learn(&mut self, m: &MetadataResponse) {
        self.brokers = m
            .brokers
            .iter()
            .map(|b| (b.node_id, format!("{}:{}", b.host, b.port)))
            .collect();
        for t in &m.topics {
            let Some(name) = &t.name else { continue };
            for p in &t.partitions {
                self.leaders
                    .insert((name.clone(), p.partition_index), p.leader_id);
            }
        }
    }

    /// The connection to the leader of `topic`/`partition`, as the last metadata says.
    fn leader(&mut self, topic: &str, partition: i32) -> Result<&mut Client, String> {
        let key = (topic.to_string(), partition);
        if !self.leaders.contains_key(&key) {
            self.metadata(Some(vec![topic.to_string()]))?;
        }
        let leader = self.leaders.get(&key).copied().unwrap_or(-1);
        let Some(addr) = self.brokers.get(&leader).cloned() else {
            return Err(format!(
                "LEADER_NOT_AVAILABLE: {topic}-{partition} has no leader right now"
            ));
        };
        self.conn(&addr).map_err(|e| {
            format!("LEADER_NOT_AVAILABLE: leader {leader} of {topic}-{partition}: {e}")
        })
    }

    /// Runs `op` against the partition's leader, following leadership moves and retrying
    /// retriable errors and lost connections for up to `RETRY_FOR`.
    pub fn on_leader<T>(
        &mut self,
        topic: &str,
        partition: i32,
        mut op: impl FnMut(&mut Client) -> Result<T, String>,
    ) -> Result<T, String> {
        let deadline = std::time::Instant::now() + RETRY_FOR;
        loop {
            let (result, broke) = match self.leader(topic, partition) {
                Ok(c) => {
                    let r = op(c);
                    let broke = c.is_broken();
                    (r, broke)
                }
                Err(e) => (Err(e), false),
            };
            match result {
                Err(e) if (broke || retriable(&e)) && std::time::Instant::now() < deadline => {
                    backoff();
                    // Stale leaders go; a failed refresh is retried on the next round.
                    self.leaders.remove(&(topic.to_string(), partition));
                    let _ = self.metadata(Some(vec![topic.to_string()]));
                }
                other => return other,
            }
        }
    }
}

/// Kafka's default partitioner for keyed records: murmur2 of the key, made positive, modulo
/// the partition count (so `sluice produce` places keys where Java and librdkafka's
/// murmur2_random partitioner do).
pub fn murmur2_partition(key: &[u8], partitions: i32) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const SEED: u32 = 0x9747_b28c;
    let len = key.len();
    let mut h = SEED ^ len as u32;
    let chunks = key.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= u32::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    ((h & 0x7fff_ffff) % partitions.max(1) as u32) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafkas_reference_values() {
        // Kafka's Utils.murmur2 test vectors, as positive partition hashes modulo a large prime.
        let h = |s: &str| murmur2_partition(s.as_bytes(), i32::MAX);
        assert_eq!(
            h("21"),
            (-973932308i32 as u32 & 0x7fff_ffff) as i32 % i32::MAX
        );
        assert_eq!(
            h("foobar"),
            (-790332482i32 as u32 & 0x7fff_ffff) as i32 % i32::MAX
        );
        assert_eq!(
            h("a-little-bit-long-string"),
            (-985981536i32 as u32 & 0x7fff_ffff) as i32 % i32::MAX
        );
        assert_eq!(
            h("a-little-bit-longer-string"),
            (-1486304829i32 as u32 & 0x7fff_ffff) as i32 % i32::MAX
        );
        assert_eq!(
            h("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            (-58897971i32 as u32 & 0x7fff_ffff) as i32 % i32::MAX
        );
    }
}
