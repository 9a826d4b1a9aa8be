//! `sluice-bench`: drives any Kafka bootstrap address with a real client (librdkafka through the
//! `rdkafka` crate) and reports throughput, produce latency percentiles and, optionally, the
//! broker's CPU time. A measuring tool, not a test: CI builds it but never runs it.
//!
//! ```text
//! sluice-bench produce|consume|both --bootstrap 127.0.0.1:9092 --topic bench --records 1000000 \
//!     --record-size 100 --partitions 1 --acks all --linger-ms 5 --batch-size 1000000 \
//!     --compression none [--create-topic] [--rate 50000] [--broker-pid PID] [--json]
//! ```
//!
//! - Produce: unkeyed records of `--record-size` bytes (a fixed pseudo-random payload, so
//!   compression has realistic work). Throughput is records over the time from the first send to
//!   the last delivery report. Latency is per record, from send to delivery report; with `--rate`
//!   the producer is paced (open loop) and latency counts from each record's scheduled send time,
//!   so a broker that falls behind the rate is charged for the queueing it causes.
//! - Consume: one consumer assigned every partition from the beginning (no group, no commits),
//!   until `--records` records have arrived.
//! - Broker CPU (`--broker-pid`): utime + stime from `/proc/PID/stat` (fields 14 and 15, in clock
//!   ticks) before and after each phase, divided by CLK_TCK, taken as 100 (the value on every
//!   Linux x86-64 and arm64 kernel build in common use; `getconf CLK_TCK` shows it), reported as
//!   CPU seconds and CPU seconds per million records. The bench's own CPU time is reported the
//!   same way (`/proc/self/stat`), since client and broker share the machine.
//!
//! One table line per phase; `--json` prints one JSON object per phase instead.

use std::future::Future;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientContext;

/// Clock ticks per second for `/proc/PID/stat` times (see the module docs).
const CLK_TCK: f64 = 100.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    Produce,
    Consume,
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Acks {
    #[value(name = "0")]
    Zero,
    #[value(name = "1")]
    One,
    #[value(name = "all")]
    All,
}

impl Acks {
    fn as_config(self) -> &'static str {
        match self {
            Acks::Zero => "0",
            Acks::One => "1",
            Acks::All => "all",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    fn as_config(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Benchmark a Kafka-compatible broker with librdkafka.
#[derive(Debug, Parser)]
#[command(name = "sluice-bench", version)]
struct Args {
    /// What to run: produce, consume, or produce then consume.
    mode: Mode,
    /// Bootstrap address, HOST:PORT.
    #[arg(long)]
    bootstrap: String,
    /// Topic to use.
    #[arg(long, default_value = "sluice-bench")]
    topic: String,
    /// Records per phase.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Value size in bytes (records are unkeyed).
    #[arg(long, default_value_t = 100)]
    record_size: usize,
    /// Partitions, for --create-topic.
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// Replication factor, for --create-topic.
    #[arg(long, default_value_t = 1)]
    replication_factor: i32,
    /// Producer acks.
    #[arg(long, value_enum, default_value = "all")]
    acks: Acks,
    /// Producer linger.ms.
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    /// Producer batch.size in bytes (librdkafka's per-partition batch limit).
    #[arg(long, default_value_t = 1_000_000)]
    batch_size: u64,
    /// Producer compression codec.
    #[arg(long, value_enum, default_value = "none")]
    compression: Compression,
    /// Enable the idempotent producer (needs acks=all).
    #[arg(long)]
    idempotence: bool,
    /// Create the topic first (an existing topic is fine).
    #[arg(long)]
    create_topic: bool,
    /// Produce at this fixed rate (records/s) instead of as fast as possible.
    #[arg(long)]
    rate: Option<u64>,
    /// Broker process id, to report its CPU time per phase.
    #[arg(long)]
    broker_pid: Option<u32>,
    /// Give up on a phase after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout_s: u64,
    /// Print one JSON object per phase instead of a table.
    #[arg(long)]
    json: bool,
}

/// One phase's measurements.
#[derive(Debug)]
struct Report {
    phase: &'static str,
    records: u64,
    bytes: u64,
    secs: f64,
    /// Produce latency in microseconds: p50, p99, p99.9, max.
    latency_us: Option<[u64; 4]>,
    errors: u64,
    broker_cpu_s: Option<f64>,
    client_cpu_s: Option<f64>,
}

impl Report {
    fn rate(&self) -> f64 {
        per_sec(self.records as f64, self.secs)
    }

    fn mb_per_s(&self) -> f64 {
        per_sec(self.bytes as f64 / 1e6, self.secs)
    }

    fn per_million(&self, cpu: Option<f64>) -> Option<f64> {
        cpu.filter(|_| self.records > 0)
            .map(|c| c / (self.records as f64 / 1e6))
    }
}

fn per_sec(amount: f64, secs: f64) -> f64 {
    if secs > 0.0 {
        amount / secs
    } else {
        0.0
    }
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x:.decimals$}"))
}

fn header() -> String {
    format!(
        "{:<18} {:>10} {:>8} {:>11} {:>8} {:>9} {:>9} {:>9} {:>7} {:>10} {:>10}",
        "phase",
        "records",
        "secs",
        "rec/s",
        "MB/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "errors",
        "brk cpu/M",
        "cli cpu/M"
    )
}

fn table_line(r: &Report) -> String {
    let ms = |i: usize| r.latency_us.map(|l| l[i] as f64 / 1000.0);
    format!(
        "{:<18} {:>10} {:>8.2} {:>11.0} {:>8.2} {:>9} {:>9} {:>9} {:>7} {:>10} {:>10}",
        r.phase,
        r.records,
        r.secs,
        r.rate(),
        r.mb_per_s(),
        opt(ms(0), 2),
        opt(ms(1), 2),
        opt(ms(2), 2),
        r.errors,
        opt(r.per_million(r.broker_cpu_s), 2),
        opt(r.per_million(r.client_cpu_s), 2),
    )
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_num(v: Option<f64>) -> String {
    v.map_or_else(|| "null".to_string(), |x| format!("{x:.4}"))
}

fn json_line(r: &Report, args: &Args) -> String {
    let lat = |i: usize| r.latency_us.map(|l| l[i] as f64 / 1000.0);
    format!(
        concat!(
            "{{\"phase\":{},\"bootstrap\":{},\"topic\":{},\"acks\":\"{}\",\"compression\":\"{}\",",
            "\"record_size\":{},\"rate_target\":{},\"records\":{},\"bytes\":{},\"secs\":{:.4},",
            "\"records_per_s\":{:.1},\"mb_per_s\":{:.3},\"p50_ms\":{},\"p99_ms\":{},",
            "\"p999_ms\":{},\"max_ms\":{},\"errors\":{},\"broker_cpu_s\":{},",
            "\"broker_cpu_s_per_million\":{},\"client_cpu_s\":{},\"client_cpu_s_per_million\":{}}}"
        ),
        json_str(r.phase),
        json_str(&args.bootstrap),
        json_str(&args.topic),
        args.acks.as_config(),
        args.compression.as_config(),
        args.record_size,
        args.rate
            .map_or_else(|| "null".to_string(), |x| x.to_string()),
        r.records,
        r.bytes,
        r.secs,
        r.rate(),
        r.mb_per_s(),
        json_num(lat(0)),
        json_num(lat(1)),
        json_num(lat(2)),
        json_num(lat(3)),
        r.errors,
        json_num(r.broker_cpu_s),
        json_num(r.per_million(r.broker_cpu_s)),
        json_num(r.client_cpu_s),
        json_num(r.per_million(r.client_cpu_s)),
    )
}

/// utime + stime of a process, in seconds, from `/proc/.../stat`.
fn cpu_seconds(stat_path: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(stat_path).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces; fields after the last
    // ')' start at field 3 (state). utime and stime are fields 14 and 15.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / CLK_TCK)
}

/// CPU meters for the broker (if given) and this process.
struct CpuMeter {
    broker: Option<std::path::PathBuf>,
    start: (Option<f64>, Option<f64>),
}

impl CpuMeter {
    fn start(broker_pid: Option<u32>) -> CpuMeter {
        let broker = broker_pid.map(|p| Path::new("/proc").join(p.to_string()).join("stat"));
        let start = (
            broker.as_deref().and_then(cpu_seconds),
            cpu_seconds(Path::new("/proc/self/stat")),
        );
        CpuMeter { broker, start }
    }

    /// (broker, client) CPU seconds since `start`.
    fn stop(&self) -> (Option<f64>, Option<f64>) {
        let b = self.broker.as_deref().and_then(cpu_seconds);
        let c = cpu_seconds(Path::new("/proc/self/stat"));
        (
            b.zip(self.start.0).map(|(e, s)| e - s),
            c.zip(self.start.1).map(|(e, s)| e - s),
        )
    }
}

struct Unparker(std::thread::Thread);

impl Wake for Unparker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Drives a future on this thread, giving up after `limit`.
fn block_on<F: Future>(fut: F, limit: Duration) -> Option<F::Output> {
    let deadline = Instant::now() + limit;
    let waker = Waker::from(Arc::new(Unparker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return Some(out);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::park_timeout(deadline - now);
    }
}

fn create_topic(args: &Args) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .create()
        .map_err(|e| format!("admin client: {e}"))?;
    let opts = AdminOptions::new()
        .request_timeout(Some(Duration::from_secs(10)))
        .operation_timeout(Some(Duration::from_secs(10)));
    let topic = NewTopic::new(
        &args.topic,
        args.partitions,
        TopicReplication::Fixed(args.replication_factor),
    );
    let results = block_on(
        admin.create_topics(std::slice::from_ref(&topic), &opts),
        Duration::from_secs(30),
    )
    .ok_or("CreateTopics timed out")?
    .map_err(|e| format!("CreateTopics: {e}"))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => return Err(format!("CreateTopics {t}: {code}")),
        }
    }
    // Wait (bounded) until the topic's partitions show up in metadata.
    let consumer = consumer(args)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if partitions_of(&consumer, &args.topic).is_ok_and(|p| !p.is_empty()) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("topic {} never appeared in metadata", args.topic));
        }
        // Paces the metadata polling; the deadline bounds the wait.
        consumer.poll(Duration::from_millis(100));
    }
}

fn partitions_of(consumer: &BaseConsumer, topic: &str) -> Result<Vec<i32>, String> {
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(|e| format!("metadata: {e}"))?;
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| format!("topic {topic} not in metadata"))?;
    if let Some(err) = t.error() {
        return Err(format!("topic {topic}: {err:?}"));
    }
    Ok(t.partitions().iter().map(|p| p.id()).collect())
}

/// Delivery-report sink: latency histogram and counts. Each record's opaque is its send time
/// in nanoseconds since `origin`.
struct Deliveries {
    origin: Instant,
    state: Mutex<DeliveryState>,
}

struct DeliveryState {
    latency_us: Histogram<u64>,
    delivered: u64,
    errors: u64,
    first_error: Option<String>,
    last: Option<Instant>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_ns: usize) {
        let now = Instant::now();
        let sent = self.origin + Duration::from_nanos(sent_ns as u64);
        let us = now.saturating_duration_since(sent).as_micros();
        let mut s = self.state.lock().expect("delivery state");
        s.last = Some(now);
        match result {
            Ok(_) => {
                s.delivered += 1;
                s.latency_us
                    .saturating_record(u64::try_from(us).unwrap_or(u64::MAX));
            }
            Err((e, _)) => {
                s.errors += 1;
                if s.first_error.is_none() {
                    s.first_error = Some(e.to_string());
                }
            }
        }
    }
}

/// A payload that compresses about as well as typical text-ish data: a xorshift stream over a
/// 32-letter alphabet.
fn payload(size: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'A' + (x % 32) as u8
        })
        .collect()
}

fn run_produce(args: &Args) -> Result<Report, String> {
    let origin = Instant::now();
    let ctx = Deliveries {
        origin,
        state: Mutex::new(DeliveryState {
            latency_us: Histogram::new_with_bounds(1, 600_000_000, 3)
                .map_err(|e| format!("histogram: {e}"))?,
            delivered: 0,
            errors: 0,
            first_error: None,
            last: None,
        }),
    };
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &args.bootstrap)
        .set("acks", args.acks.as_config())
        .set("linger.ms", args.linger_ms.to_string())
        .set("batch.size", args.batch_size.to_string())
        .set("compression.type", args.compression.as_config())
        .set("enable.idempotence", args.idempotence.to_string())
        .set("queue.buffering.max.messages", "1000000")
        .set("message.timeout.ms", (args.timeout_s * 1000).to_string());
    let producer: BaseProducer<Deliveries> = cfg
        .create_with_context(ctx)
        .map_err(|e| format!("producer: {e}"))?;
    // Connect and learn the topic's leaders before the clock starts.
    producer
        .client()
        .fetch_metadata(Some(&args.topic), Duration::from_secs(10))
        .map_err(|e| format!("metadata: {e}"))?;

    let value = payload(args.record_size);
    let deadline = Instant::now() + Duration::from_secs(args.timeout_s);
    let cpu = CpuMeter::start(args.broker_pid);
    let start = Instant::now();
    let mut sent: u64 = 0;
    while sent < args.records {
        if Instant::now() >= deadline {
            return Err(format!("produce timed out after {sent} records"));
        }
        // With a rate, the schedule says when record `sent` is due; send everything due, then
        // serve delivery reports until the next one is due.
        let scheduled = match args.rate {
            Some(rate) => {
                let due = start + Duration::from_secs_f64(sent as f64 / rate as f64);
                let now = Instant::now();
                if due > now {
                    // librdkafka waits in whole milliseconds (less would spin): records that
                    // fall due meanwhile go out in a burst, stamped with their scheduled times.
                    producer.poll((due - now).max(Duration::from_millis(1)));
                    continue;
                }
                due
            }
            None => Instant::now(),
        };
        let stamp = scheduled.duration_since(origin).as_nanos() as usize;
        let mut record: BaseRecord<'_, (), [u8], usize> =
            BaseRecord::with_opaque_to(&args.topic, stamp).payload(value.as_slice());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    if Instant::now() >= deadline {
                        return Err("producer queue stayed full".to_string());
                    }
                    record = back;
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(format!("send: {e}")),
            }
        }
        sent += 1;
        if sent.is_multiple_of(1024) {
            producer.poll(Duration::ZERO);
        }
    }
    let remaining = deadline.saturating_duration_since(Instant::now());
    producer
        .flush(remaining)
        .map_err(|e| format!("flush: {e}"))?;
    let (broker_cpu_s, client_cpu_s) = cpu.stop();
    let s = producer.context().state.lock().expect("delivery state");
    if let Some(e) = &s.first_error {
        eprintln!("sluice-bench: {} delivery errors, first: {e}", s.errors);
    }
    let end = s.last.unwrap_or_else(Instant::now);
    let h = &s.latency_us;
    Ok(Report {
        phase: if args.rate.is_some() {
            "produce@rate"
        } else {
            "produce"
        },
        records: s.delivered,
        bytes: s.delivered * args.record_size as u64,
        secs: end.duration_since(start).as_secs_f64(),
        latency_us: (s.delivered > 0).then(|| {
            [
                h.value_at_quantile(0.50),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
                h.max(),
            ]
        }),
        errors: s.errors,
        broker_cpu_s,
        client_cpu_s,
    })
}

fn consumer(args: &Args) -> Result<BaseConsumer, String> {
    ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        // librdkafka's assign() needs a group id; nothing joins or commits.
        .set("group.id", "sluice-bench")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // librdkafka stops fetching once its local queue holds queued.min.messages (100k by
        // default) and then waits fetch.queue.backoff.ms (1 s) before the next fetch; with
        // small records a fast broker fills that queue in milliseconds, and the backoff, not
        // the broker, sets the pace. Same settings for every broker measured.
        .set("queued.min.messages", "1000000")
        .set("fetch.queue.backoff.ms", "10")
        .create()
        .map_err(|e| format!("consumer: {e}"))
}

fn run_consume(args: &Args) -> Result<Report, String> {
    let consumer = consumer(args)?;
    let partitions = partitions_of(&consumer, &args.topic)?;
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition_offset(&args.topic, *p, Offset::Beginning)
            .map_err(|e| format!("assign list: {e}"))?;
    }
    let deadline = Instant::now() + Duration::from_secs(args.timeout_s);
    let cpu = CpuMeter::start(args.broker_pid);
    let start = Instant::now();
    consumer.assign(&tpl).map_err(|e| format!("assign: {e}"))?;
    let mut records = 0u64;
    let mut bytes = 0u64;
    let mut errors = 0u64;
    while records < args.records {
        if Instant::now() >= deadline {
            return Err(format!(
                "consume timed out after {records} of {} records",
                args.records
            ));
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => {
                records += 1;
                bytes += m.payload_len() as u64;
            }
            Some(Err(e)) => {
                errors += 1;
                if errors == 1 {
                    eprintln!("sluice-bench: consume error: {e}");
                }
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let (broker_cpu_s, client_cpu_s) = cpu.stop();
    Ok(Report {
        phase: "consume",
        records,
        bytes,
        secs,
        latency_us: None,
        errors,
        broker_cpu_s,
        client_cpu_s,
    })
}

fn run(args: &Args) -> Result<Vec<Report>, String> {
    if args.create_topic {
        create_topic(args)?;
    }
    let mut reports = Vec::new();
    let mut emit = |r: Report| {
        if args.json {
            println!("{}", json_line(&r, args));
        } else {
            println!("{}", table_line(&r));
        }
        reports.push(r);
    };
    if !args.json {
        println!("{}", header());
    }
    if matches!(args.mode, Mode::Produce | Mode::Both) {
        emit(run_produce(args)?);
    }
    if matches!(args.mode, Mode::Consume | Mode::Both) {
        emit(run_consume(args)?);
    }
    Ok(reports)
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.rate == Some(0) {
        eprintln!("sluice-bench: --rate must be positive");
        return ExitCode::from(2);
    }
    match run(&args) {
        Ok(reports) if reports.iter().all(|r| r.errors == 0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("sluice-bench: {e}");
            ExitCode::from(1)
        }
    }
}
