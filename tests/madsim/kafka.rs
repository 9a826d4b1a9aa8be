//! The state-machine simulator's Kafka clients (`sluice_sim::kafka`: the admin that creates
//! the topic, idempotent and plain producers, consumers that assign partitions themselves)
//! driven over madsim's simulated TCP against real brokers, one connection per client and
//! broker, reconnecting as real clients do. They record the same history as in the simulator,
//! and the simulator's Kafka checkers judge it: lost and unseen writes, duplicates,
//! inconsistent offsets, nonmonotonic sends and polls, poll skips, high watermarks.
//!
//! A run has phases, as the simulator's do: faults (the test injects them) until `heal_at`;
//! then every producer must get new acknowledgements, the producers stop and drain, and a
//! final reader reads every partition up to its high watermark. That read is the final
//! state the checkers compare the history with.

use crate::nodes::broker_addr;
use sluice_core::rng::DetRng;
use sluice_sim::checkers::CheckerKind;
use sluice_sim::kafka::checkers::{check, KAFKA_CHECKERS};
use sluice_sim::kafka::client::{Admin, ClientOut, Cx, Note};
use sluice_sim::kafka::consumer::Consumer;
use sluice_sim::kafka::history::{FinalPartition, FinalState, History};
use sluice_sim::kafka::producer::Producer;
use sluice_sim::kafka::KafkaWorkload;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long a connect may take before the requests queued on it count as refused.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// The driver re-checks its phase at least this often.
const CHECK_EVERY: Duration = Duration::from_millis(100);
/// Largest response frame accepted.
const MAX_FRAME: usize = 64 << 20;

#[derive(Debug)]
enum Machine {
    Admin(Admin),
    Producer(Producer),
    Consumer(Consumer),
}

impl Machine {
    fn on_wake(&mut self, cx: &mut Cx<'_>) {
        match self {
            Machine::Admin(a) => a.on_wake(cx),
            Machine::Producer(p) => p.on_wake(cx),
            Machine::Consumer(c) => c.on_wake(cx),
        }
    }
    fn on_response(&mut self, node: u32, frame: &[u8], cx: &mut Cx<'_>) {
        match self {
            Machine::Admin(a) => a.on_response(node, frame, cx),
            Machine::Producer(p) => p.on_response(node, frame, cx),
            Machine::Consumer(c) => c.on_response(node, frame, cx),
        }
    }
    fn on_reset(&mut self, node: u32, cx: &mut Cx<'_>) {
        match self {
            Machine::Admin(a) => a.on_reset(node, cx),
            Machine::Producer(p) => p.on_reset(node, cx),
            Machine::Consumer(c) => c.on_reset(node, cx),
        }
    }
    fn on_refused(&mut self, node: u32, corr: i32, cx: &mut Cx<'_>) {
        match self {
            Machine::Admin(a) => a.on_refused(node, corr, cx),
            Machine::Producer(p) => p.on_refused(node, corr, cx),
            Machine::Consumer(c) => c.on_refused(node, corr, cx),
        }
    }
    fn next_wake(&self, now: u64) -> Option<u64> {
        match self {
            Machine::Admin(a) => a.next_wake(now),
            Machine::Producer(p) => p.next_wake(now),
            Machine::Consumer(c) => c.next_wake(now),
        }
    }
}

/// What a connection task reports to the driver.
#[derive(Debug)]
enum Net {
    /// A response frame (size prefix included).
    Response {
        client: usize,
        node: u32,
        conn: u64,
        frame: Vec<u8>,
    },
    /// The connection broke (or closed).
    Reset { client: usize, node: u32, conn: u64 },
    /// The connection could not be opened: request `corr` never left.
    Refused {
        client: usize,
        node: u32,
        conn: u64,
        corr: i32,
    },
}

#[derive(Debug)]
struct Conn {
    id: u64,
    frames: mpsc::UnboundedSender<(i32, Vec<u8>)>,
    task: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug)]
enum Phase {
    Faults,
    /// Each producer needs `liveness_acks` acknowledgements past its mark.
    Producing {
        marks: Vec<u64>,
    },
    Draining,
    Reading {
        reader: usize,
    },
}

/// What a finished run hands the test.
#[derive(Debug)]
pub struct Outcome {
    pub history: History,
    pub final_state: FinalState,
    /// Connections opened (a client reconnects after every drop).
    pub connections: u64,
    /// Sends acknowledged with acks=all before the faults were healed.
    pub acked_all_during_faults: usize,
}

impl Outcome {
    /// Every Kafka-level history checker that applies (no groups here; `leader-per-epoch`
    /// needs the brokers' Raft states, which only the state-machine simulator sees).
    pub fn violations(&self) -> Vec<String> {
        KAFKA_CHECKERS
            .iter()
            .filter(|k| {
                !matches!(k, CheckerKind::LeaderPerEpoch) && !k.name().starts_with("group-")
            })
            .filter_map(|&k| {
                check(k, &self.history, Some(&self.final_state))
                    .err()
                    .map(|e| format!("{}: {e}", k.name()))
            })
            .collect()
    }
}

#[derive(Debug)]
pub struct Clients {
    machines: Vec<Machine>,
    wake: Vec<Option<u64>>,
    history: History,
    rng: DetRng,
    workload: KafkaWorkload,
    brokers: u32,
    start: Instant,
    conns: BTreeMap<(usize, u32), Conn>,
    next_conn: u64,
    events_tx: mpsc::UnboundedSender<Net>,
    events: mpsc::UnboundedReceiver<Net>,
    phase: Phase,
    acked_all_during_faults: usize,
}

impl Clients {
    /// An admin (creates the topic), one producer per `workload.producers` entry and
    /// `workload.consumers` consumers, each consumer reading its share of the partitions plus
    /// one more, so that several consumers' reads of a partition can be compared.
    pub fn new(workload: KafkaWorkload, brokers: u32, seed: u64) -> Clients {
        let mut rng = DetRng::new(seed);
        let mut machines = vec![Machine::Admin(Admin::new())];
        for kind in &workload.producers {
            let id = machines.len() as u32;
            machines.push(Machine::Producer(Producer::new(
                id,
                *kind,
                workload.partitions,
                rng.range(0, 50_000_000),
            )));
        }
        for c in 0..workload.consumers {
            let id = machines.len() as u32;
            let mut assigned: Vec<u32> = (0..workload.partitions)
                .filter(|p| p % workload.consumers == c)
                .collect();
            let extra = rng.range(0, u64::from(workload.partitions)) as u32;
            if !assigned.contains(&extra) {
                assigned.push(extra);
            }
            assigned.sort_unstable();
            machines.push(Machine::Consumer(Consumer::new(
                id,
                workload.partitions,
                assigned,
                rng.range(0, 50_000_000),
                false,
            )));
        }
        let (events_tx, events) = mpsc::unbounded_channel();
        Clients {
            wake: vec![Some(0); machines.len()],
            machines,
            history: History::default(),
            rng,
            workload,
            brokers,
            start: Instant::now(),
            conns: BTreeMap::new(),
            next_conn: 0,
            events_tx,
            events,
            phase: Phase::Faults,
            acked_all_during_faults: 0,
        }
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Runs the clients until the final read, or fails with what did not finish within
    /// `liveness` of `heal_after` (both from now).
    pub async fn run(
        mut self,
        heal_after: Duration,
        liveness: Duration,
    ) -> Result<Outcome, String> {
        self.start = Instant::now();
        let heal_at = heal_after.as_nanos() as u64;
        let deadline = heal_at + liveness.as_nanos() as u64;
        loop {
            let now = self.now();
            if let Some(outcome) = self.phase_step(now, heal_at) {
                return Ok(outcome);
            }
            if now > deadline {
                return Err(format!(
                    "{:?} did not finish within {liveness:?} of healing: {}",
                    self.phase,
                    self.describe()
                ));
            }
            let next = self
                .wake
                .iter()
                .flatten()
                .copied()
                .min()
                .unwrap_or(u64::MAX)
                .min(now + CHECK_EVERY.as_nanos() as u64);
            let at = self.start + Duration::from_nanos(next);
            tokio::select! {
                biased;
                ev = self.events.recv() => {
                    let ev = ev.expect("the driver holds a sender");
                    self.on_net(ev);
                }
                _ = tokio::time::sleep_until(at) => {}
            }
            self.wake_due();
        }
    }

    fn phase_step(&mut self, now: u64, heal_at: u64) -> Option<Outcome> {
        match &self.phase {
            Phase::Faults => {
                if now >= heal_at {
                    self.acked_all_during_faults = self.history.acked_all();
                    let marks = self.producers().map(|p| p.acked).collect();
                    self.phase = Phase::Producing { marks };
                }
            }
            Phase::Producing { marks } => {
                let need = self.workload.liveness_acks;
                let admin_done = matches!(&self.machines[0], Machine::Admin(a) if a.done);
                let enough = self
                    .producers()
                    .zip(marks)
                    .all(|(p, &mark)| p.acked >= mark + need);
                if admin_done && enough {
                    for m in &mut self.machines {
                        if let Machine::Producer(p) = m {
                            p.stopping = true;
                        }
                    }
                    self.phase = Phase::Draining;
                }
            }
            Phase::Draining => {
                if self.producers().all(Producer::is_idle) {
                    let reader = self.machines.len();
                    let all = (0..self.workload.partitions).collect();
                    self.machines.push(Machine::Consumer(Consumer::new(
                        reader as u32,
                        self.workload.partitions,
                        all,
                        now,
                        true,
                    )));
                    self.wake.push(Some(now));
                    self.phase = Phase::Reading { reader };
                }
            }
            Phase::Reading { reader } => {
                let reader = *reader;
                if matches!(&self.machines[reader], Machine::Consumer(c) if c.caught_up()) {
                    return Some(self.outcome(reader));
                }
            }
        }
        None
    }

    fn producers(&self) -> impl Iterator<Item = &Producer> {
        self.machines.iter().filter_map(|m| match m {
            Machine::Producer(p) => Some(p),
            _ => None,
        })
    }

    fn describe(&self) -> String {
        let mut parts: Vec<String> = self.producers().map(Producer::describe).collect();
        parts.push(format!(
            "{} sends, {} acked with acks=all, {} polls",
            self.history.sends.len(),
            self.history.acked_all(),
            self.history.polls().count()
        ));
        parts.join("; ")
    }

    /// The final state: what the final reader read, per partition, up to the high watermark
    /// it last saw.
    fn outcome(&mut self, reader: usize) -> Outcome {
        let n = self.workload.partitions as usize;
        let mut parts = vec![FinalPartition::default(); n];
        for p in self
            .history
            .polls()
            .filter(|p| p.consumer as usize == reader)
        {
            let f = &mut parts[p.partition as usize];
            f.high_watermark = f.high_watermark.max(p.high_watermark);
            f.leader = p.node;
            for &(offset, value) in &p.records {
                let i = offset as usize;
                if f.values.len() <= i {
                    f.values.resize(i + 1, None);
                }
                f.values[i] = Some(value);
            }
        }
        for f in &mut parts {
            f.values.resize(f.high_watermark as usize, None);
        }
        self.conns.clear();
        Outcome {
            history: std::mem::take(&mut self.history),
            final_state: FinalState {
                partitions: parts,
                group: None,
            },
            connections: self.next_conn,
            acked_all_during_faults: self.acked_all_during_faults,
        }
    }

    fn wake_due(&mut self) {
        let now = self.now();
        for i in 0..self.machines.len() {
            if self.wake[i].is_some_and(|w| w <= now) {
                self.wake[i] = None;
                self.input(i, |m, cx| m.on_wake(cx));
            }
        }
    }

    fn on_net(&mut self, ev: Net) {
        match ev {
            Net::Response {
                client,
                node,
                conn,
                frame,
            } => {
                if self.is_current(client, node, conn) {
                    self.input(client, |m, cx| m.on_response(node, &frame, cx));
                }
            }
            Net::Reset { client, node, conn } => {
                if self.is_current(client, node, conn) {
                    self.conns.remove(&(client, node));
                    self.input(client, |m, cx| m.on_reset(node, cx));
                }
            }
            Net::Refused {
                client,
                node,
                conn,
                corr,
            } => {
                if self.is_current(client, node, conn) {
                    self.conns.remove(&(client, node));
                }
                // Each refused request is reported, even after its connection was dropped.
                self.input(client, |m, cx| m.on_refused(node, corr, cx));
            }
        }
    }

    fn is_current(&self, client: usize, node: u32, conn: u64) -> bool {
        self.conns
            .get(&(client, node))
            .is_some_and(|c| c.id == conn)
    }

    /// Hands one input to client `i`, carries out what it asked for and reschedules it.
    fn input(&mut self, i: usize, f: impl FnOnce(&mut Machine, &mut Cx<'_>)) {
        let now = self.now();
        let mut out = Vec::new();
        let mut notes: Vec<Note> = Vec::new();
        {
            let mut cx = Cx {
                now,
                rng: &mut self.rng,
                history: &mut self.history,
                out: &mut out,
                notes: &mut notes,
                brokers: self.brokers,
                workload: &self.workload,
                bug: None,
            };
            f(&mut self.machines[i], &mut cx);
        }
        for o in out {
            match o {
                ClientOut::Send {
                    node, corr, frame, ..
                } => self.send(i, node, corr, frame),
                ClientOut::Close { node, .. } => {
                    self.conns.remove(&(i, node));
                }
            }
        }
        self.wake[i] = self.machines[i].next_wake(now);
    }

    fn send(&mut self, client: usize, node: u32, corr: i32, frame: Vec<u8>) {
        if !self.conns.contains_key(&(client, node)) {
            let id = self.next_conn;
            self.next_conn += 1;
            let (frames, rx) = mpsc::unbounded_channel();
            let task = tokio::spawn(connection(
                broker_addr(node),
                client,
                node,
                id,
                rx,
                self.events_tx.clone(),
            ));
            self.conns.insert((client, node), Conn { id, frames, task });
        }
        let c = &self.conns[&(client, node)];
        if c.frames.send((corr, frame)).is_err() {
            // The connection task ended; the request never left.
            let conn = c.id;
            let _ = self.events_tx.send(Net::Refused {
                client,
                node,
                conn,
                corr,
            });
        }
    }
}

/// One client connection: connect, then write queued frames in order and report every
/// response frame, until either side breaks.
async fn connection(
    addr: SocketAddr,
    client: usize,
    node: u32,
    conn: u64,
    mut frames: mpsc::UnboundedReceiver<(i32, Vec<u8>)>,
    events: mpsc::UnboundedSender<Net>,
) {
    let sock = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        _ => {
            // Until the driver drops this connection, whatever it queues never leaves.
            while let Some((corr, _)) = frames.recv().await {
                let _ = events.send(Net::Refused {
                    client,
                    node,
                    conn,
                    corr,
                });
            }
            return;
        }
    };
    let (mut rd, mut wr) = tokio::io::split(sock);
    let responses = events.clone();
    let reader = async move {
        loop {
            let mut head = [0u8; 4];
            if let Err(e) = rd.read_exact(&mut head).await {
                break e;
            }
            let len = u32::from_be_bytes(head) as usize;
            if len > MAX_FRAME {
                break std::io::Error::other(format!("a {len}-byte response frame"));
            }
            let mut frame = vec![0u8; 4 + len];
            frame[..4].copy_from_slice(&head);
            if let Err(e) = rd.read_exact(&mut frame[4..]).await {
                break e;
            }
            let _ = responses.send(Net::Response {
                client,
                node,
                conn,
                frame,
            });
        }
    };
    let writer = async move {
        while let Some((_, frame)) = frames.recv().await {
            wr.write_all(&frame).await?;
            wr.flush().await?;
        }
        Ok::<(), std::io::Error>(())
    };
    tokio::select! {
        biased;
        _ = reader => {}
        _ = writer => {}
    }
    let _ = events.send(Net::Reset { client, node, conn });
}
