//! `sluice topic`, `sluice produce` and `sluice consume`: what a Kafka user reaches for first,
//! against any Kafka-compatible bootstrap address.

use crate::client::{murmur2_partition, with_retries, Client};
use clap::{Args, Subcommand};
use sluice_core::protocol::record::{build_batch, read_records_with, BatchSpec, NewRecord};
use sluice_core::protocol::records::batches;
use std::io::{BufRead, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Args, Debug)]
pub struct Conn {
    /// Broker address, HOST:PORT.
    #[arg(long, short = 'b', default_value = "127.0.0.1:9092")]
    bootstrap: String,
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
            let mut c = Client::connect(&conn.bootstrap, TIMEOUT)?;
            let m = c.metadata(Some(vec![name.clone()]))?;
            let t = m.topics.first().ok_or("empty metadata response")?;
            crate::client::check(t.error_code, Some(&format!("topic '{name}'")))?;
            println!("topic {name}: {} partitions", t.partitions.len());
            println!("partition\tleader\tepoch\tlog_start\thigh_watermark");
            let mut parts = t.partitions.clone();
            parts.sort_by_key(|p| p.partition_index);
            for p in parts {
                let start = c
                    .list_offset(&name, p.partition_index, -2)
                    .map_or("?".into(), |o| o.to_string());
                let end = c
                    .list_offset(&name, p.partition_index, -1)
                    .map_or("?".into(), |o| o.to_string());
                println!(
                    "{}\t{}\t{}\t{start}\t{end}",
                    p.partition_index, p.leader_id, p.leader_epoch
                );
            }
            println!("configs:");
            for (k, v, explicit) in c.topic_configs(&name)? {
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
    let mut c = Client::connect(&args.conn.bootstrap, TIMEOUT)?;
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
        with_retries(|| c.produce(&args.topic, partition, acks, batch.clone()))?;
        count += 1;
    }
    eprintln!("produced {count} records to {}", args.topic);
    Ok(())
}

pub fn consume(args: ConsumeArgs) -> Result<(), String> {
    let mut c = Client::connect(&args.conn.bootstrap, TIMEOUT)?;
    let mut offset = match args.from.as_str() {
        "beginning" => with_retries(|| c.list_offset(&args.topic, args.partition, -2))?,
        "end" => with_retries(|| c.list_offset(&args.topic, args.partition, -1))?,
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
        let records = with_retries(|| c.fetch(&args.topic, args.partition, offset, 500))?;
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
