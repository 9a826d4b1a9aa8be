//! `sluice topic`, `sluice produce`, `sluice consume` and `sluice cluster status`: what a Kafka
//! user reaches for first, against any Kafka-compatible bootstrap address. Partition requests
//! go to each partition's leader (`Routed`); admin requests to the bootstrap broker.

use crate::client::{murmur2_partition, Client, Routed, DESCRIBE_LOG_DIRS_V};
use clap::{Args, Subcommand};
use sluice_core::protocol::messages::describe_log_dirs::DescribeLogDirsRequest;
use sluice_core::protocol::messages::metadata::MetadataResponse;
use sluice_core::protocol::record::{build_batch, read_records_with, BatchSpec, NewRecord};
use sluice_core::protocol::records::batches;
use sluice_core::protocol::{Request, Response};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{BufRead, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Args, Debug)]
pub struct Conn {
    /// Broker address, HOST:PORT.
    #[arg(long, short = 'b', default_value = "127.0.0.1:9092")]
    pub(crate) bootstrap: String,
}

#[derive(Subcommand, Debug)]
pub enum TopicAction {
    /// Create a topic.
    Create {
        name: String,
        #[arg(long, short = 'p', default_value_t = 1)]
        partitions: i32,
        #[arg(long, default_value_t = 1)]
        replication_factor: i16,
        /// Topic config, NAME=VALUE (retention.ms, retention.bytes, segment.bytes, segment.ms,
        /// max.message.bytes, cleanup.policy=delete); repeatable.
        #[arg(long = "config", short = 'c')]
        configs: Vec<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// List topics with their partition counts.
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Show partitions (leader, offsets) and configs of a topic.
    Describe {
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete a topic and its data.
    Delete {
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Subcommand, Debug)]
pub enum ClusterAction {
    /// Brokers (which one is the controller) and every partition's leader, leader epoch,
    /// replicas, in-sync replicas and offline replicas, as the bootstrap broker sees them.
    Status {
        /// One JSON object instead of tables.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Args, Debug)]
pub struct ProduceArgs {
    #[arg(long, short = 't')]
    topic: String,
    /// Partition to write to; by default keyed records go by key hash, others round-robin.
    #[arg(long, short = 'p')]
    partition: Option<i32>,
    /// Split each line at the first occurrence of this string into key and value.
    #[arg(long)]
    key_separator: Option<String>,
    /// 0, 1 or all.
    #[arg(long, default_value = "all")]
    acks: String,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Args, Debug)]
pub struct ConsumeArgs {
    #[arg(long, short = 't')]
    topic: String,
    #[arg(long, short = 'p', default_value_t = 0)]
    partition: i32,
    /// beginning, end, or an offset.
    #[arg(long, default_value = "beginning")]
    from: String,
    /// Stop after this many records.
    #[arg(long, short = 'n')]
    max_messages: Option<u64>,
    /// Stop when no record arrives for this long (milliseconds); by default wait for ever.
    #[arg(long)]
    idle_timeout_ms: Option<u64>,
    /// Print "offset<TAB>key<TAB>value" instead of the value alone.
    #[arg(long)]
    print_offsets: bool,
    #[command(flatten)]
    conn: Conn,
}

pub fn topic(action: TopicAction) -> Result<(), String> {
    match action {
        TopicAction::Create {
            name,
            partitions,
            replication_factor,
            configs,
            conn,
        } => {
            let configs = configs
                .iter()
                .map(|c| {
                    c.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .ok_or_else(|| format!("--config '{c}' is not NAME=VALUE"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut c = Client::connect(&conn.bootstrap, TIMEOUT)?;
            c.create_topic(&name, partitions, replication_factor, &configs)?;
            println!("created topic {name} with {partitions} partitions");
        }
        TopicAction::List { conn } => {
            let mut c = Client::connect(&conn.bootstrap, TIMEOUT)?;
            let m = c.metadata(None)?;
            let mut topics: Vec<_> = m
                .topics
                .iter()
                .map(|t| (t.name.clone().unwrap_or_default(), t.partitions.len()))
                .collect();
            topics.sort();
            for (name, n) in topics {
                println!("{name}\t{n} partitions");
            }
        }
        TopicAction::Describe { name, conn } => {
            let mut c = Routed::connect(&conn.bootstrap, TIMEOUT)?;
            let m = c.metadata(Some(vec![name.clone()]))?;
            let t = m.topics.first().ok_or("empty metadata response")?;
            crate::client::check(t.error_code, Some(&format!("topic '{name}'")))?;
            println!("topic {name}: {} partitions", t.partitions.len());
            println!("partition\tleader\tepoch\tlog_start\thigh_watermark");
            let mut parts = t.partitions.clone();
            parts.sort_by_key(|p| p.partition_index);
            for p in parts {
                let offset = |c: &mut Routed, ts| {
                    c.on_leader(&name, p.partition_index, |l| {
                        l.list_offset(&name, p.partition_index, ts)
                    })
                    .map_or("?".into(), |o| o.to_string())
                };
                let start = offset(&mut c, -2);
                let end = offset(&mut c, -1);
                println!(
                    "{}\t{}\t{}\t{start}\t{end}",
                    p.partition_index, p.leader_id, p.leader_epoch
                );
            }
            println!("configs:");
            let mut admin = Client::connect(&conn.bootstrap, TIMEOUT)?;
            for (k, v, explicit) in admin.topic_configs(&name)? {
                println!("  {k}={v}{}", if explicit { "" } else { " (default)" });
            }
        }
        TopicAction::Delete { name, conn } => {
            let mut c = Client::connect(&conn.bootstrap, TIMEOUT)?;
            c.delete_topic(&name)?;
            println!("deleted topic {name}");
        }
    }
    Ok(())
}

pub fn produce(args: ProduceArgs) -> Result<(), String> {
    let acks: i16 = match args.acks.as_str() {
        "all" | "-1" => -1,
        "1" => 1,
        "0" => 0,
        other => return Err(format!("--acks {other}: use 0, 1 or all")),
    };
    let mut c = Routed::connect(&args.conn.bootstrap, TIMEOUT)?;
    let m = c.metadata(Some(vec![args.topic.clone()]))?;
    let t = m.topics.first().ok_or("empty metadata response")?;
    crate::client::check(t.error_code, Some(&format!("topic '{}'", args.topic)))?;
    let partitions = t.partitions.len() as i32;
    if let Some(p) = args.partition {
        if !(0..partitions).contains(&p) {
            return Err(format!(
                "topic '{}' has partitions 0..{}; {p} does not exist",
                args.topic,
                partitions - 1
            ));
        }
    }
    let mut next = 0i32;
    let mut count = 0u64;
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| format!("reading standard input: {e}"))?;
        let (key, value) = match &args.key_separator {
            Some(sep) => match line.split_once(sep.as_str()) {
                Some((k, v)) => (Some(k.to_string()), v.to_string()),
                None => (None, line.clone()),
            },
            None => (None, line.clone()),
        };
        let partition = args.partition.unwrap_or_else(|| match &key {
            Some(k) => murmur2_partition(k.as_bytes(), partitions),
            None => {
                next = (next + 1) % partitions;
                next
            }
        });
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let batch = build_batch(
            BatchSpec {
                base_timestamp: now,
                ..BatchSpec::default()
            },
            &[NewRecord {
                key: key.as_deref().map(str::as_bytes),
                value: Some(value.as_bytes()),
                ..NewRecord::default()
            }],
        );
        c.on_leader(&args.topic, partition, |l| {
            l.produce(&args.topic, partition, acks, batch.clone())
        })?;
        count += 1;
    }
    eprintln!("produced {count} records to {}", args.topic);
    Ok(())
}

pub fn consume(args: ConsumeArgs) -> Result<(), String> {
    let mut c = Routed::connect(&args.conn.bootstrap, TIMEOUT)?;
    let (topic, partition) = (args.topic.as_str(), args.partition);
    let mut offset = match args.from.as_str() {
        "beginning" => c.on_leader(topic, partition, |l| l.list_offset(topic, partition, -2))?,
        "end" => c.on_leader(topic, partition, |l| l.list_offset(topic, partition, -1))?,
        n => n
            .parse()
            .map_err(|_| format!("--from {n}: use beginning, end or an offset"))?,
    };
    let mut printed = 0u64;
    let mut last_data = Instant::now();
    let out = std::io::stdout();
    let mut out = out.lock();
    loop {
        if args.max_messages.is_some_and(|n| printed >= n) {
            break;
        }
        if args
            .idle_timeout_ms
            .is_some_and(|ms| last_data.elapsed() >= Duration::from_millis(ms))
        {
            break;
        }
        let records = c.on_leader(topic, partition, |l| l.fetch(topic, partition, offset, 500))?;
        let Some(bytes) = records else { continue };
        for b in batches(&bytes) {
            let b = b.map_err(|e| format!("corrupt batch from the broker: {e}"))?;
            let next = b.header.last_offset() + 1;
            if b.header.is_control() {
                offset = next;
                continue;
            }
            let records = read_records_with(b.bytes, Some(&crate::codecs::Codecs))
                .map_err(|e| format!("batch at offset {}: {e}", b.header.base_offset))?
                .unwrap_or_default();
            for r in records {
                if r.offset < offset {
                    continue;
                }
                if args.max_messages.is_some_and(|n| printed >= n) {
                    break;
                }
                let value = r
                    .value
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                let res = if args.print_offsets {
                    let key = r
                        .key
                        .as_deref()
                        .map(String::from_utf8_lossy)
                        .unwrap_or_default();
                    writeln!(out, "{}\t{key}\t{value}", r.offset)
                } else {
                    writeln!(out, "{value}")
                };
                res.map_err(|e| format!("writing standard output: {e}"))?;
                printed += 1;
                offset = r.offset + 1;
            }
            offset = offset.max(next);
            last_data = Instant::now();
        }
        out.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}

pub fn cluster(action: ClusterAction) -> Result<(), String> {
    match action {
        ClusterAction::Status { json, conn } => {
            let mut c = Client::connect(&conn.bootstrap, TIMEOUT)?;
            let mut status = ClusterStatus::from_metadata(&c.metadata(None)?);
            status.add_lags(&mut c, &conn.bootstrap);
            print!(
                "{}",
                if json {
                    status.to_json()
                } else {
                    status.to_text()
                }
            );
        }
    }
    Ok(())
}

/// What `sluice cluster status` shows, from one Metadata response.
#[derive(Debug, PartialEq, Eq)]
struct ClusterStatus {
    cluster_id: Option<String>,
    controller: Option<i32>,
    /// Live brokers (those Metadata lists) and brokers that only appear as replicas (offline).
    brokers: Vec<BrokerRow>,
    /// Sorted by topic, then partition.
    partitions: Vec<PartitionRow>,
}

#[derive(Debug, PartialEq, Eq)]
struct BrokerRow {
    id: i32,
    /// `None` for a broker that Metadata does not list (fenced or gone).
    address: Option<String>,
    /// Whether a listed broker answered this tool (within `REACH_TIMEOUT`); `None`: not asked.
    /// A broker the controller still lists but that does not answer is cut off or stopped,
    /// and the controller has not fenced it yet (it does after its session timeout).
    reachable: Option<bool>,
}

/// How long `cluster status` waits for each broker it asks for replica lags: a broker cut
/// off by a network partition (or stopped) must not hold the report up.
const REACH_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, PartialEq, Eq)]
struct PartitionRow {
    topic: String,
    partition: i32,
    leader: Option<i32>,
    epoch: i32,
    replicas: Vec<i32>,
    in_sync: Vec<i32>,
    offline: Vec<i32>,
    /// (replica, offsets behind the high watermark) as each live replica's broker reports it
    /// (DescribeLogDirs); -1: not known yet.
    lag: Vec<(i32, i64)>,
}

impl PartitionRow {
    /// "ok" only when every replica is in sync and none is offline (a replica on a fenced
    /// broker may still look caught up to a leader that has written nothing since).
    fn status(&self) -> &'static str {
        let replicas: BTreeSet<i32> = self.replicas.iter().copied().collect();
        let in_sync: BTreeSet<i32> = self
            .in_sync
            .iter()
            .copied()
            .filter(|r| !self.offline.contains(r))
            .collect();
        if self.leader.is_none() {
            "no leader"
        } else if !replicas.is_subset(&in_sync) {
            "under-replicated"
        } else {
            "ok"
        }
    }
}

impl ClusterStatus {
    fn from_metadata(m: &MetadataResponse) -> ClusterStatus {
        let mut brokers: Vec<BrokerRow> = m
            .brokers
            .iter()
            .map(|b| BrokerRow {
                id: b.node_id,
                address: Some(format!("{}:{}", b.host, b.port)),
                reachable: None,
            })
            .collect();
        let mut partitions = Vec::new();
        for t in &m.topics {
            let topic = t.name.clone().unwrap_or_default();
            for p in &t.partitions {
                partitions.push(PartitionRow {
                    topic: topic.clone(),
                    partition: p.partition_index,
                    leader: (p.leader_id >= 0).then_some(p.leader_id),
                    epoch: p.leader_epoch,
                    replicas: p.replica_nodes.clone(),
                    in_sync: p.isr_nodes.clone(),
                    offline: p.offline_replicas.clone(),
                    lag: Vec::new(),
                });
            }
        }
        partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        let listed: BTreeSet<i32> = brokers.iter().map(|b| b.id).collect();
        let unlisted: BTreeSet<i32> = partitions
            .iter()
            .flat_map(|p| p.replicas.iter().copied())
            .filter(|r| !listed.contains(r))
            .collect();
        brokers.extend(unlisted.into_iter().map(|id| BrokerRow {
            id,
            address: None,
            reachable: None,
        }));
        brokers.sort_by_key(|b| b.id);
        ClusterStatus {
            cluster_id: m.cluster_id.clone(),
            controller: (m.controller_id >= 0).then_some(m.controller_id),
            brokers,
            partitions,
        }
    }

    /// Asks every live broker (DescribeLogDirs) how far its replicas are behind. A broker that
    /// does not answer leaves its replicas without a lag ("-").
    fn add_lags(&mut self, bootstrap_conn: &mut Client, bootstrap: &str) {
        for i in 0..self.brokers.len() {
            let Some(addr) = self.brokers[i].address.clone() else {
                continue;
            };
            let mut own;
            let client = if addr == bootstrap {
                &mut *bootstrap_conn
            } else {
                match Client::connect(&addr, REACH_TIMEOUT) {
                    Ok(c) => {
                        own = c;
                        &mut own
                    }
                    Err(_) => {
                        self.brokers[i].reachable = Some(false);
                        continue;
                    }
                }
            };
            let request = Request::DescribeLogDirs(DescribeLogDirsRequest { topics: None });
            let Ok(Response::DescribeLogDirs(r)) = client.call(DESCRIBE_LOG_DIRS_V, request) else {
                self.brokers[i].reachable = Some(false);
                continue;
            };
            self.brokers[i].reachable = Some(true);
            let id = self.brokers[i].id;
            for dir in &r.results {
                for t in &dir.topics {
                    for p in &t.partitions {
                        if let Some(row) = self
                            .partitions
                            .iter_mut()
                            .find(|row| row.topic == t.name && row.partition == p.partition_index)
                        {
                            row.lag.push((id, p.offset_lag));
                        }
                    }
                }
            }
        }
        for row in &mut self.partitions {
            row.lag.sort_unstable();
        }
    }

    fn live(&self) -> usize {
        self.brokers.iter().filter(|b| b.address.is_some()).count()
    }

    fn count(&self, status: &str) -> usize {
        self.partitions
            .iter()
            .filter(|p| p.status() == status)
            .count()
    }

    fn to_text(&self) -> String {
        let topics: BTreeSet<&str> = self.partitions.iter().map(|p| p.topic.as_str()).collect();
        let mut out = String::new();
        let opt = |v: Option<i32>| v.map_or("-".to_string(), |v| v.to_string());
        let _ = writeln!(
            out,
            "cluster id:  {}",
            self.cluster_id.as_deref().unwrap_or("-")
        );
        let _ = writeln!(out, "controller:  {}", opt(self.controller));
        let unreachable = self
            .brokers
            .iter()
            .filter(|b| b.reachable == Some(false))
            .count();
        let _ = writeln!(
            out,
            "brokers:     {} live, {} offline{}",
            self.live(),
            self.brokers.len() - self.live(),
            if unreachable > 0 {
                format!(", {unreachable} of the live not answering")
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            out,
            "partitions:  {} in {} topic{}, {} without a leader, {} under-replicated",
            self.partitions.len(),
            topics.len(),
            if topics.len() == 1 { "" } else { "s" },
            self.count("no leader"),
            self.count("under-replicated")
        );
        out.push('\n');
        let mut rows = vec![vec![
            "BROKER".to_string(),
            "ADDRESS".into(),
            "STATE".into(),
            "ROLE".into(),
        ]];
        for b in &self.brokers {
            rows.push(vec![
                b.id.to_string(),
                b.address.clone().unwrap_or_else(|| "-".into()),
                match (&b.address, b.reachable) {
                    (None, _) => "offline",
                    (Some(_), Some(false)) => "unreachable",
                    (Some(_), _) => "live",
                }
                .into(),
                if self.controller == Some(b.id) {
                    "controller"
                } else {
                    ""
                }
                .into(),
            ]);
        }
        out.push_str(&table(&rows));
        if self.partitions.is_empty() {
            out.push_str("\nno topics\n");
            return out;
        }
        out.push('\n');
        let ids = |v: &[i32]| {
            if v.is_empty() {
                "-".to_string()
            } else {
                v.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
            }
        };
        // replica:offsets behind, e.g. "1:0,2:0,3:120"; "?" when a broker does not know yet.
        let lags = |v: &[(i32, i64)]| {
            if v.is_empty() {
                "-".to_string()
            } else {
                v.iter()
                    .map(|&(r, l)| {
                        if l < 0 {
                            format!("{r}:?")
                        } else {
                            format!("{r}:{l}")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            }
        };
        let mut rows = vec![[
            "TOPIC",
            "PARTITION",
            "LEADER",
            "EPOCH",
            "REPLICAS",
            "IN-SYNC",
            "OFFLINE",
            "LAG",
            "STATUS",
        ]
        .map(String::from)
        .to_vec()];
        for p in &self.partitions {
            rows.push(vec![
                p.topic.clone(),
                p.partition.to_string(),
                opt(p.leader),
                p.epoch.to_string(),
                ids(&p.replicas),
                ids(&p.in_sync),
                ids(&p.offline),
                lags(&p.lag),
                p.status().into(),
            ]);
        }
        out.push_str(&table(&rows));
        out
    }

    fn to_json(&self) -> String {
        let brokers: Vec<serde_json::Value> = self
            .brokers
            .iter()
            .map(|b| {
                serde_json::json!({
                    "id": b.id,
                    "address": b.address,
                    "live": b.address.is_some(),
                    "reachable": b.reachable,
                    "controller": self.controller == Some(b.id),
                })
            })
            .collect();
        let partitions: Vec<serde_json::Value> = self
            .partitions
            .iter()
            .map(|p| {
                let lag: serde_json::Map<String, serde_json::Value> = p
                    .lag
                    .iter()
                    .map(|(r, l)| (r.to_string(), serde_json::json!(l)))
                    .collect();
                serde_json::json!({
                    "topic": p.topic,
                    "partition": p.partition,
                    "leader": p.leader,
                    "leader_epoch": p.epoch,
                    "replicas": p.replicas,
                    "in_sync": p.in_sync,
                    "offline": p.offline,
                    "lag": lag,
                    "status": p.status(),
                })
            })
            .collect();
        let out = serde_json::json!({
            "cluster_id": self.cluster_id,
            "controller": self.controller,
            "brokers": brokers,
            "partitions": partitions,
        });
        format!("{out}\n")
    }
}

/// Left-aligned columns two spaces apart; the last column is not padded.
pub(crate) fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            let _ = write!(line, "{cell:<w$}  ", w = widths[c]);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::protocol::messages::metadata::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };

    fn metadata() -> MetadataResponse {
        let broker = |id: i32| MetadataResponseBroker {
            node_id: id,
            host: "127.0.0.1".into(),
            port: 9090 + id,
            rack: None,
        };
        let part =
            |i: i32, leader: i32, isr: Vec<i32>, offline: Vec<i32>| MetadataResponsePartition {
                partition_index: i,
                leader_id: leader,
                leader_epoch: 4,
                replica_nodes: vec![1, 2, 3],
                isr_nodes: isr,
                offline_replicas: offline,
                ..Default::default()
            };
        MetadataResponse {
            brokers: vec![broker(2), broker(1)],
            cluster_id: Some("c1".into()),
            controller_id: 1,
            topics: vec![MetadataResponseTopic {
                name: Some("orders".into()),
                partitions: vec![
                    part(1, -1, vec![1, 2], vec![3]),
                    part(0, 1, vec![1, 2], vec![3]),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn cluster_status_prints_aligned_tables_with_offline_brokers_and_a_summary() {
        let mut status = ClusterStatus::from_metadata(&metadata());
        status.partitions[0].lag = vec![(1, 0), (2, 5), (3, -1)];
        status.brokers[0].reachable = Some(true);
        let text = status.to_text();
        let expected = "\
cluster id:  c1
controller:  1
brokers:     2 live, 1 offline
partitions:  2 in 1 topic, 1 without a leader, 1 under-replicated

BROKER  ADDRESS         STATE    ROLE
1       127.0.0.1:9091  live     controller
2       127.0.0.1:9092  live
3       -               offline

TOPIC   PARTITION  LEADER  EPOCH  REPLICAS  IN-SYNC  OFFLINE  LAG          STATUS
orders  0          1       4      1,2,3     1,2      3        1:0,2:5,3:?  under-replicated
orders  1          -       4      1,2,3     1,2      3        -            no leader
";
        assert_eq!(text, expected);
    }

    #[test]
    fn cluster_status_marks_a_listed_broker_that_does_not_answer() {
        let mut status = ClusterStatus::from_metadata(&metadata());
        status.brokers[0].reachable = Some(true);
        status.brokers[1].reachable = Some(false);
        let text = status.to_text();
        assert!(
            text.contains("brokers:     2 live, 1 offline, 1 of the live not answering\n"),
            "{text}"
        );
        assert!(
            text.contains("2       127.0.0.1:9092  unreachable\n"),
            "{text}"
        );
        assert!(
            status.to_json().contains(
                "\"id\":2,\"address\":\"127.0.0.1:9092\",\"live\":true,\"reachable\":false"
            ),
            "{}",
            status.to_json()
        );
    }

    #[test]
    fn cluster_status_json_has_every_field() {
        let json = ClusterStatus::from_metadata(&metadata()).to_json();
        assert!(
            json.starts_with("{\"cluster_id\":\"c1\",\"controller\":1,"),
            "{json}"
        );
        assert!(
            json.contains(
                "{\"id\":3,\"address\":null,\"live\":false,\"reachable\":null,\"controller\":false}"
            ),
            "{json}"
        );
        assert!(
            json.contains(
                "{\"topic\":\"orders\",\"partition\":1,\"leader\":null,\"leader_epoch\":4,\
                 \"replicas\":[1,2,3],\"in_sync\":[1,2],\"offline\":[3],\"lag\":{},\"status\":\"no leader\"}"
            ),
            "{json}"
        );
    }
}
