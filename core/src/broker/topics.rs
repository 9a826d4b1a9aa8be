//! The catalogue: the metadata image every broker holds (topics with their ids, replica
//! assignment and configs; registered brokers; the producer-id cursor), as of a metadata log
//! index. The metadata log (see `metadata`) is the source of truth; this is its applied state,
//! persisted as one checksummed state file so a broker knows the cluster at start-up.

use crate::protocol::codes;
use crate::protocol::wire::Uuid;
use crate::protocol::Reader;
use crate::storage::LogConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Kafka's limit on topic name length.
const MAX_TOPIC_NAME: usize = 249;
/// Kafka's default max.message.bytes.
pub const DEFAULT_MAX_MESSAGE_BYTES: i64 = 1_048_588;

/// Per-topic settings a client may set (Kafka's names), with their values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicConfig {
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub segment_bytes: i64,
    pub segment_ms: i64,
    pub max_message_bytes: i64,
    /// Which of the above were set explicitly (the rest are broker defaults).
    pub explicit: Vec<String>,
}

/// A config this broker knows: its Kafka name and whether it is one of ours.
pub const TOPIC_CONFIG_NAMES: [&str; 6] = [
    "cleanup.policy",
    "max.message.bytes",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.ms",
];

impl TopicConfig {
    pub fn defaults(log: &LogConfig) -> TopicConfig {
        TopicConfig {
            retention_ms: log.retention_ms.unwrap_or(-1),
            retention_bytes: log.retention_bytes.map_or(-1, |b| b as i64),
            segment_bytes: log.segment_bytes as i64,
            segment_ms: log.segment_ms,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            explicit: Vec::new(),
        }
    }

    /// Applies one `name=value` setting; an unknown name or a bad value is INVALID_CONFIG with
    /// a message saying why.
    pub fn set(&mut self, name: &str, value: Option<&str>) -> Result<(), (i16, String)> {
        let bad = |why: &str| (codes::INVALID_CONFIG, format!("{name}: {why}"));
        let value = value.ok_or_else(|| bad("a value is required"))?;
        let number = |min: i64| -> Result<i64, (i16, String)> {
            let n: i64 = value
                .trim()
                .parse()
                .map_err(|_| bad(&format!("'{value}' is not an integer")))?;
            if n < min {
                return Err(bad(&format!("{n} is below the minimum {min}")));
            }
            Ok(n)
        };
        match name {
            "cleanup.policy" => {
                if value != "delete" {
                    return Err(bad("only 'delete' is supported (log compaction is not)"));
                }
            }
            "retention.ms" => self.retention_ms = number(-1)?,
            "retention.bytes" => self.retention_bytes = number(-1)?,
            "segment.bytes" => self.segment_bytes = number(14)?,
            "segment.ms" => self.segment_ms = number(1)?,
            "max.message.bytes" => self.max_message_bytes = number(0)?,
            _ => {
                return Err((
                    codes::INVALID_CONFIG,
                    format!("unknown topic config '{name}'"),
                ))
            }
        }
        if !self.explicit.iter().any(|n| n == name) {
            self.explicit.push(name.to_string());
        }
        Ok(())
    }

    /// The value of a known config, as Kafka prints it.
    pub fn get(&self, name: &str) -> Option<String> {
        Some(match name {
            "cleanup.policy" => "delete".to_string(),
            "retention.ms" => self.retention_ms.to_string(),
            "retention.bytes" => self.retention_bytes.to_string(),
            "segment.bytes" => self.segment_bytes.to_string(),
            "segment.ms" => self.segment_ms.to_string(),
            "max.message.bytes" => self.max_message_bytes.to_string(),
            _ => return None,
        })
    }

    /// The storage engine's view of these settings.
    pub fn log_config(&self, base: &LogConfig) -> LogConfig {
        LogConfig {
            segment_bytes: self.segment_bytes as u64,
            segment_ms: self.segment_ms,
            retention_ms: (self.retention_ms >= 0).then_some(self.retention_ms),
            retention_bytes: (self.retention_bytes >= 0).then_some(self.retention_bytes as u64),
            ..base.clone()
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    /// The replicas of each partition, preferred leader first.
    pub replicas: Vec<Vec<i32>>,
    pub config: TopicConfig,
}

impl Topic {
    pub fn partition_count(&self) -> u32 {
        self.replicas.len() as u32
    }

    /// Where partition `index` keeps its files, relative to the data directory. The topic id
    /// keeps a deleted and re-created topic's files apart.
    pub fn partition_dir(&self, index: u32) -> String {
        let id: String = self.id.0.iter().map(|b| format!("{b:02x}")).collect();
        format!("topics/{}-{index}.{id}", self.name)
    }
}

/// A broker as the metadata log knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerInfo {
    /// Changes when the broker restarts.
    pub incarnation: u64,
    pub host: String,
    pub port: i32,
    pub peer_addr: String,
    /// Missed its heartbeats: not given new replicas, not listed to clients.
    pub fenced: bool,
}

/// The metadata image: everything the metadata log says, applied up to `applied`. Every broker
/// holds one and persists it (voters to restart faster, the others to know the cluster before
/// they reach the controller).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalogue {
    pub cluster_id: String,
    pub topics: BTreeMap<String, Topic>,
    pub brokers: BTreeMap<i32, BrokerInfo>,
    /// The first producer id not yet handed out.
    pub next_producer_id: i64,
    /// The last metadata log index reflected here.
    pub applied: u64,
}

/// Checks a topic name against Kafka's rules.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is empty".into());
    }
    if name == "." || name == ".." {
        return Err(format!("topic name '{name}' is not allowed"));
    }
    if name.len() > MAX_TOPIC_NAME {
        return Err(format!(
            "topic name is {} characters, the limit is {MAX_TOPIC_NAME}",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic name '{name}' contains '{c}'; legal characters are ASCII letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Marks the current catalogue file format (bincode after the marker); a file without it is
/// the single-node format of earlier versions, still read.
const FILE_MAGIC: &[u8; 4] = b"SLC2";

impl Catalogue {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = FILE_MAGIC.to_vec();
        let body = bincode::serde::encode_to_vec(self, bincode::config::standard())
            .expect("the catalogue always encodes");
        out.extend_from_slice(&body);
        out
    }

    /// Decodes a catalogue file. `node_id` owns every partition of a file written by a
    /// single-node version (which had no replica assignment).
    pub fn decode(bytes: &[u8], base: &LogConfig, node_id: i32) -> Result<Catalogue, String> {
        if let Some(body) = bytes.strip_prefix(FILE_MAGIC) {
            let cfg = bincode::config::standard().with_limit::<{ 1 << 30 }>();
            let (c, used): (Catalogue, usize) = bincode::serde::decode_from_slice(body, cfg)
                .map_err(|e| format!("catalogue: {e}"))?;
            if used != body.len() {
                return Err(format!("catalogue: {} trailing bytes", body.len() - used));
            }
            return Ok(c);
        }
        decode_single_node(bytes, base, node_id)
    }

    /// Live (unfenced) brokers, by id.
    pub fn live_brokers(&self) -> Vec<i32> {
        self.brokers
            .iter()
            .filter(|(_, b)| !b.fenced)
            .map(|(&id, _)| id)
            .collect()
    }
}

/// The catalogue file of single-node versions (format 1): topics without replica lists.
fn decode_single_node(bytes: &[u8], base: &LogConfig, node_id: i32) -> Result<Catalogue, String> {
    let mut r = Reader::new(bytes);
    let err = |e: crate::protocol::DecodeError| format!("catalogue: {e}");
    let version = r.i16().map_err(err)?;
    if version != 1 {
        return Err(format!("catalogue: unknown version {version}"));
    }
    let cluster_id = r.string(true).map_err(err)?;
    let next_producer_id = r.i64().map_err(err)?;
    let n = r.unsigned_varint().map_err(err)?;
    let mut topics = BTreeMap::new();
    for _ in 0..n {
        let name = r.string(true).map_err(err)?;
        let id = r.uuid().map_err(err)?;
        let partitions = r.u32().map_err(err)?;
        let mut config = TopicConfig::defaults(base);
        config.retention_ms = r.i64().map_err(err)?;
        config.retention_bytes = r.i64().map_err(err)?;
        config.segment_bytes = r.i64().map_err(err)?;
        config.segment_ms = r.i64().map_err(err)?;
        config.max_message_bytes = r.i64().map_err(err)?;
        let k = r.unsigned_varint().map_err(err)?;
        for _ in 0..k.min(64) {
            config.explicit.push(r.string(true).map_err(err)?);
        }
        let replicas = (0..partitions.min(100_000))
            .map(|_| vec![node_id])
            .collect();
        topics.insert(
            name.clone(),
            Topic {
                name,
                id,
                replicas,
                config,
            },
        );
    }
    r.finish().map_err(err)?;
    Ok(Catalogue {
        cluster_id,
        topics,
        next_producer_id,
        ..Catalogue::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_round_trips() {
        let log = LogConfig::default();
        let mut config = TopicConfig::defaults(&log);
        config.set("retention.ms", Some("1000")).unwrap();
        let mut c = Catalogue {
            cluster_id: "abc".into(),
            next_producer_id: 17,
            ..Catalogue::default()
        };
        c.topics.insert(
            "t".into(),
            Topic {
                name: "t".into(),
                id: Uuid([7; 16]),
                replicas: vec![vec![1, 2], vec![2, 3], vec![3, 1]],
                config,
            },
        );
        assert_eq!(Catalogue::decode(&c.encode(), &log, 1).unwrap(), c);
    }

    #[test]
    fn bad_names_and_configs_are_refused_with_a_reason() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        for bad in ["", ".", "..", "a b", "é", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad:?}");
        }
        let mut c = TopicConfig::defaults(&LogConfig::default());
        assert_eq!(
            c.set("cleanup.policy", Some("compact")).unwrap_err().0,
            codes::INVALID_CONFIG
        );
        assert_eq!(
            c.set("retention.ms", Some("soon")).unwrap_err().0,
            codes::INVALID_CONFIG
        );
        assert_eq!(
            c.set("no.such", Some("1")).unwrap_err().0,
            codes::INVALID_CONFIG
        );
        c.set("retention.bytes", Some("100")).unwrap();
        assert_eq!(
            c.log_config(&LogConfig::default()).retention_bytes,
            Some(100)
        );
    }
}
