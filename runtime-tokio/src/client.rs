//! The client side of the `sluice` command: a small blocking Kafka client on the core codec,
//! enough for `sluice topic`, `sluice produce` and `sluice consume` against any Kafka-compatible
//! broker. One request at a time, with a timeout on every call.

use bytes::Bytes;
use sluice_core::protocol::messages::create_topics::*;
use sluice_core::protocol::messages::delete_topics::*;
use sluice_core::protocol::messages::describe_configs::*;
use sluice_core::protocol::messages::fetch::*;
use sluice_core::protocol::messages::list_offsets::*;
use sluice_core::protocol::messages::metadata::*;
use sluice_core::protocol::messages::produce::*;
use sluice_core::protocol::{decode_response, encode_request, Request, RequestHeader, Response};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

pub struct Client {
    sock: TcpStream,
    correlation: i32,
}

/// The versions this tool speaks (all within what Sluice and Kafka 2.x+ brokers support).
const METADATA_V: i16 = 9;
const CREATE_TOPICS_V: i16 = 5;
const DELETE_TOPICS_V: i16 = 4;
const DESCRIBE_CONFIGS_V: i16 = 2;
const PRODUCE_V: i16 = 8;
const FETCH_V: i16 = 11;
const LIST_OFFSETS_V: i16 = 5;

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
        })
    }

    pub fn call(&mut self, version: i16, request: Request) -> Result<Response, String> {
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
}

/// Errors a client should retry: leadership is moving or the broker is still starting.
const RETRIABLE: [&str; 3] = [
    "LEADER_NOT_AVAILABLE",
    "NOT_LEADER_OR_FOLLOWER",
    "REQUEST_TIMED_OUT",
];
/// How long the tools keep retrying a retriable error, and the pause between tries.
const RETRY_FOR: Duration = Duration::from_secs(15);
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// Runs `op` until it succeeds, fails with a non-retriable error, or `RETRY_FOR` has passed
/// (Kafka clients do the same with retries and retry.backoff.ms).
pub fn with_retries<T>(mut op: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    let deadline = std::time::Instant::now() + RETRY_FOR;
    loop {
        match op() {
            Err(e)
                if RETRIABLE.iter().any(|r| e.starts_with(r))
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(RETRY_BACKOFF);
            }
            other => return other,
        }
    }
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
        17 => "INVALID_TOPIC_EXCEPTION",
        36 => "TOPIC_ALREADY_EXISTS",
        37 => "INVALID_PARTITIONS",
        38 => "INVALID_REPLICATION_FACTOR",
        40 => "INVALID_CONFIG",
        42 => "INVALID_REQUEST",
        _ => "ERROR",
    };
    Err(match message {
        Some(m) if !m.is_empty() => format!("{name} ({code}): {m}"),
        _ => format!("{name} ({code})"),
    })
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
