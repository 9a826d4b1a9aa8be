//! `sluice broker`: the Tokio driver around the core broker state machine.
//!
//! - One task owns the `Broker`. Connection tasks hand it request frames over a bounded
//!   channel (back-pressure on readers) and receive response frames on a per-connection channel.
//! - Other brokers' frames arrive through `peers` on their own bounded channel, which the owner
//!   task serves before client requests (a busy client load must not starve Raft heartbeats);
//!   `Output::Peer` goes to the destination's outbound queue without waiting.
//! - One storage thread performs storage jobs on the node's `Disk` (real files), in order. It
//!   drains every queued job before syncing, and syncs each target (a partition, the metadata log) once for all the
//!   Sync requests in that drain (group commit): acks=all waits for an fsync, but concurrent
//!   producers share it. Completions that come before the drain's first Sync are sent before
//!   the fsync, so acks=1 (written to the OS, as in Kafka) does not wait for the disk.
//! - Timers: the owner task sleeps until `poll_timeout`.
//! - SIGTERM or Ctrl-C: stop accepting, sync every partition, exit 0. A storage error stops the
//!   broker (fail-stop): the disk state is then whatever recovery will find.
//!
//! This file makes no Kafka or Raft decisions: it moves bytes, runs timers and performs
//! storage jobs.
//!
//! [`run`] is the product: real files, the host's clocks, SIGTERM. [`serve_on`] is the same
//! broker on whatever [`Node`] it is given; the madsim tests (`tests/madsim`) give it a
//! simulated disk that loses unsynced writes when the node is killed and a skewed clock, and
//! run it under `--cfg madsim`, where the storage thread becomes a task (madsim runs one
//! thread) and every socket, timer and task is simulated.

use crate::config::Settings;
#[cfg(not(madsim))]
use crate::disk::FileDisk;
use crate::metrics::{self, ApiLabel, Metrics, PartitionLabel};
use crate::peers::{self, Peers};
use bytes::{Bytes, BytesMut};
use sluice_core::broker::{
    Broker, ConnId, Event, Input, Output, StorageDone, StorageJob, StorageTarget,
};
use sluice_core::protocol::{next_frame, ApiKey, FrameStatus};
use sluice_core::raft::StorageRequest;
use sluice_core::rng::DetRng;
use sluice_core::storage::{Disk, StoreError};
use sluice_core::time::{Instant as CoreInstant, Now};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tracing::{debug, error, info, warn};

/// Requests queued for the broker task before readers wait.
const REQUEST_QUEUE: usize = 4096;
/// Requests one connection may have in flight (read, not yet answered); Kafka clients keep
/// five or fewer.
const MAX_IN_FLIGHT_PER_CONNECTION: usize = 128;
/// Jobs one storage drain takes before it syncs.
const MAX_DRAIN: usize = 4096;

/// The clock the core sees: monotonic nanoseconds since start, and wall milliseconds.
///
/// The product runs on the host's clocks ([`Clock::system`]). A skewed clock
/// ([`Clock::skewed`]) models a node whose wall clock is off and whose monotonic clock runs
/// fast or slow, as the madsim tests' nodes do (madsim has one global clock).
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: Instant,
    wall_offset_ms: i64,
    /// Parts per million the monotonic clock gains (negative: loses) on the host's.
    rate_ppm: i64,
}

const PPM: i128 = 1_000_000;

impl Clock {
    /// The host's clocks, from now.
    pub fn system() -> Clock {
        Clock::skewed(0, 0)
    }

    /// Wall time `wall_offset_ms` off the host's; monotonic time running `rate_ppm` parts per
    /// million fast (negative: slow), clamped to ±50%.
    pub fn skewed(wall_offset_ms: i64, rate_ppm: i64) -> Clock {
        Clock {
            origin: Instant::now(),
            wall_offset_ms,
            rate_ppm: rate_ppm.clamp(-500_000, 500_000),
        }
    }

    fn now(&self) -> Now {
        let elapsed = self.origin.elapsed().as_nanos() as i128;
        let mono = elapsed * (PPM + i128::from(self.rate_ppm)) / PPM;
        let mono = CoreInstant::from_nanos(u64::try_from(mono).unwrap_or(u64::MAX));
        let wall_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
            + self.wall_offset_ms;
        Now::at(mono, wall_ms)
    }

    /// The host instant at which this clock reads `at` (rounded up, so a timer never fires
    /// before its deadline on this clock).
    fn std_instant(&self, at: CoreInstant) -> Instant {
        let rate = PPM + i128::from(self.rate_ppm);
        let host = (i128::from(at.as_nanos()) * PPM + rate - 1) / rate;
        self.origin + Duration::from_nanos(u64::try_from(host).unwrap_or(u64::MAX))
    }

    fn wall_ms(&self) -> i64 {
        self.now().wall_ms
    }
}

enum ToBroker {
    Connected {
        conn: ConnId,
        peer: std::net::SocketAddr,
        writer: mpsc::UnboundedSender<Vec<u8>>,
        stop: oneshot::Sender<()>,
    },
    Request {
        conn: ConnId,
        frame: Bytes,
    },
    Disconnected {
        conn: ConnId,
    },
}

enum FromStorage {
    Done {
        target: StorageTarget,
        done: StorageDone,
    },
    Failed(String),
}

struct ConnHandle {
    writer: mpsc::UnboundedSender<Vec<u8>>,
    stop: Option<oneshot::Sender<()>>,
}

/// What a broker runs on besides its settings.
#[derive(Debug)]
pub struct Node<D> {
    /// The disk its storage lives on; `data_dir` is an absolute path on it.
    pub disk: D,
    pub data_dir: String,
    pub clock: Clock,
    /// Seeds the broker's randomness (election timeouts).
    pub seed: u64,
}

/// Runs the broker until SIGTERM or Ctrl-C.
#[cfg(not(madsim))]
pub fn run(settings: Settings) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("sluice")
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(serve(settings))
}

/// The product: real files under the data directory (locked against a second broker), the
/// host's clocks.
#[cfg(not(madsim))]
async fn serve(settings: Settings) -> Result<(), String> {
    std::fs::create_dir_all(&settings.data_dir).map_err(|e| {
        format!(
            "cannot create data directory {}: {e}",
            settings.data_dir.display()
        )
    })?;
    let data_dir = std::fs::canonicalize(&settings.data_dir)
        .map_err(|e| format!("data directory {}: {e}", settings.data_dir.display()))?;
    // One broker per data directory: a second one would interleave writes to the same files.
    let lock_path = data_dir.join(".lock");
    let lock = std::fs::File::create(&lock_path)
        .map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
    lock.try_lock().map_err(|_| {
        format!(
            "another sluice broker is using {} (it holds {})",
            data_dir.display(),
            lock_path.display()
        )
    })?;
    let node = Node {
        disk: FileDisk::new(),
        data_dir: data_dir.to_string_lossy().into_owned(),
        clock: Clock::system(),
        seed: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    };
    let result = serve_on(settings, node).await;
    drop(lock);
    result
}

/// Runs a broker on `node` until the stop signal (SIGTERM or Ctrl-C; under madsim, the
/// simulated Ctrl-C) or a storage failure.
pub async fn serve_on<D: Disk + Send + 'static>(
    settings: Settings,
    node: Node<D>,
) -> Result<(), String> {
    let Node {
        mut disk,
        data_dir,
        clock,
        seed,
    } = node;
    let listener = TcpListener::bind(settings.listen_addr()?)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let peer_listen = settings.peer_listen()?;
    let peer_listener = TcpListener::bind(&peer_listen).await.map_err(|e| {
        format!(
            "cannot listen for peers on {peer_listen}: {e} (set --peer-listen HOST:PORT; a \
                 broker without --voters can use 127.0.0.1:0)"
        )
    })?;
    let peer_bound = peer_listener.local_addr().map_err(|e| e.to_string())?;
    let cfg = settings.broker_config(bound, peer_bound)?;
    let voters = settings.voters()?;
    if bound.ip().is_unspecified() && settings.advertised_listener.is_none() {
        warn!(
            listen = %bound,
            "listening on all interfaces but advertising 127.0.0.1:{}; set --advertised-listener HOST:PORT for clients on other machines",
            bound.port()
        );
    }
    if peer_bound.ip().is_unspecified() && settings.advertised_peer.is_none() {
        warn!(
            peer_listen = %peer_bound,
            "listening for peers on all interfaces but advertising {}; set --advertised-peer HOST:PORT for brokers on other machines",
            cfg.peer_addr
        );
    }
    if let Some(mine) = voters.get(&cfg.node_id) {
        if *mine != cfg.peer_addr {
            warn!(
                node_id = cfg.node_id,
                voters = %mine,
                advertised_peer = %cfg.peer_addr,
                "--voters lists this broker at another address than the one it advertises to peers"
            );
        }
    }
    let metrics = Metrics::new();
    if !settings.metrics_listen.is_empty() {
        let m = TcpListener::bind(&settings.metrics_listen)
            .await
            .map_err(|e| {
                format!(
                    "cannot listen for metrics on {}: {e}",
                    settings.metrics_listen
                )
            })?;
        info!(address = %m.local_addr().map_err(|e| e.to_string())?, "metrics at /metrics");
        tokio::spawn(metrics::serve(m, metrics.clone()));
    }

    let storage = sluice_core::broker::BrokerStorage::new(&data_dir)
        .with_decompressor(Box::new(crate::codecs::Codecs));
    let catalogue = storage
        .load_catalogue(&mut disk)
        .map_err(|e| format!("cannot read the catalogue in {data_dir}: {e}"))?;
    let mut broker = Broker::new(cfg, catalogue.as_deref(), DetRng::new(seed), clock.now())
        .map_err(|e| format!("cannot start the broker: {e}"))?;
    let voter_list = if voters.is_empty() {
        "none: a single broker".to_string()
    } else {
        voters
            .iter()
            .map(|(id, a)| format!("{id}={a}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    info!(
        node_id = broker.config().node_id,
        listen = %bound,
        peer_listen = %peer_bound,
        advertised_peer = %broker.config().peer_addr,
        voters = %voter_list,
        data_dir = %data_dir,
        topics = broker.catalogue().topics.len(),
        cluster_id = %broker.catalogue().cluster_id,
        seed,
        "sluice broker starting"
    );

    let (peer_tx, mut from_peers) = mpsc::channel::<Bytes>(peers::INBOUND_QUEUE);
    let peer_acceptor = tokio::spawn(peers::accept(peer_listener, peer_tx, metrics.clone()));
    let mut peers = Peers::new(broker.config().node_id, voters, metrics.clone());

    let (jobs_tx, jobs_rx) = mpsc::unbounded_channel::<(StorageTarget, StorageJob)>();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<FromStorage>();
    let worker = StorageWorker {
        storage,
        disk,
        done: done_tx,
        clock,
        metrics: metrics.clone(),
    };
    let storage_thread = spawn_storage(worker, jobs_rx)?;

    let (to_broker, mut from_conns) = mpsc::channel::<ToBroker>(REQUEST_QUEUE);
    let max_frame = settings.max_frame_bytes;
    let accept_metrics = metrics.clone();
    let acceptor = tokio::spawn(async move {
        let mut next_conn: ConnId = 1;
        loop {
            let (sock, peer) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let conn = next_conn;
            next_conn += 1;
            debug!(conn, %peer, "connection opened");
            let _ = sock.set_nodelay(true);
            tokio::spawn(connection(
                conn,
                peer,
                sock,
                to_broker.clone(),
                max_frame,
                accept_metrics.clone(),
            ));
        }
    });

    let mut conns: HashMap<ConnId, ConnHandle> = HashMap::new();
    let mut outputs = Vec::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let mut result = Ok(());
    drain(&mut broker, &mut outputs);
    route(
        &mut outputs,
        &mut conns,
        &mut peers,
        &jobs_tx,
        &metrics,
        &clock,
    );
    loop {
        let deadline = broker.poll_timeout().map(|d| clock.std_instant(d));
        // Under madsim, tokio's Instant is std's and the conversion is the identity.
        #[cfg_attr(madsim, allow(clippy::useless_conversion))]
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = &mut shutdown => {
                info!("shutting down: syncing partitions");
                break;
            }
            msg = done_rx.recv() => match msg {
                Some(FromStorage::Done { target, done }) => {
                    broker.handle_input(Input::Storage { now: clock.now(), target, done });
                }
                Some(FromStorage::Failed(e)) => {
                    error!(error = %e, "storage failed; stopping (restart recovers from disk)");
                    result = Err(format!("storage failed: {e}"));
                    break;
                }
                None => {
                    result = Err("the storage thread stopped".into());
                    break;
                }
            },
            Some(bytes) = from_peers.recv() => {
                broker.handle_input(Input::Peer { now: clock.now(), bytes });
            }
            msg = from_conns.recv() => match msg {
                Some(ToBroker::Connected { conn, peer, writer, stop }) => {
                    metrics.connections.inc();
                    conns.insert(conn, ConnHandle { writer, stop: Some(stop) });
                    let host = peer.ip().to_string();
                    broker.handle_input(Input::Connected { now: clock.now(), conn, host });
                }
                Some(ToBroker::Request { conn, frame }) => {
                    if conns.contains_key(&conn) {
                        broker.handle_input(Input::Request { now: clock.now(), conn, frame });
                    }
                }
                Some(ToBroker::Disconnected { conn }) => {
                    if conns.remove(&conn).is_some() {
                        metrics.connections.dec();
                    }
                    broker.handle_input(Input::Disconnected { now: clock.now(), conn });
                }
                None => break,
            },
            _ = sleep => broker.handle_input(Input::Timeout(clock.now())),
        }
        drain(&mut broker, &mut outputs);
        route(
            &mut outputs,
            &mut conns,
            &mut peers,
            &jobs_tx,
            &metrics,
            &clock,
        );
    }
    acceptor.abort();
    peer_acceptor.abort();
    drop(peers);
    drop(conns);
    drop(jobs_tx);
    // The storage thread finishes the queued jobs, syncs everything and stops.
    storage_thread.join().await?;
    if result.is_ok() {
        info!("stopped cleanly");
    }
    result
}

fn drain(broker: &mut Broker, outputs: &mut Vec<Output>) {
    while let Some(o) = broker.poll_output() {
        outputs.push(o);
    }
}

fn route(
    outputs: &mut Vec<Output>,
    conns: &mut HashMap<ConnId, ConnHandle>,
    peers: &mut Peers,
    jobs: &mpsc::UnboundedSender<(StorageTarget, StorageJob)>,
    metrics: &Metrics,
    clock: &Clock,
) {
    let now = clock.now().mono;
    for out in outputs.drain(..) {
        match out {
            Output::Response {
                conn,
                frame,
                api_key,
                received,
            } => {
                let api = ApiKey::from_i16(api_key)
                    .map_or("unknown", ApiKey::name)
                    .to_string();
                let label = ApiLabel { api };
                metrics.requests.get_or_create(&label).inc();
                metrics
                    .latency
                    .get_or_create(&label)
                    .observe(now.saturating_since(received).as_secs_f64());
                metrics.bytes_out.inc_by(frame.len() as u64);
                if let Some(c) = conns.get(&conn) {
                    let _ = c.writer.send(frame);
                }
            }
            Output::Close { conn, reason } => {
                warn!(conn, %reason, "closing connection");
                if let Some(mut c) = conns.remove(&conn) {
                    metrics.connections.dec();
                    if let Some(stop) = c.stop.take() {
                        let _ = stop.send(());
                    }
                }
            }
            Output::Storage { target, job } => {
                // The receiver lives until this task drops the sender.
                let _ = jobs.send((target, job));
            }
            Output::Peer { to, bytes } => peers.send(to, bytes),
            Output::PeerAddresses(addresses) => peers.set_addresses(addresses),
            Output::Event(e) => log_event(e, metrics),
        }
    }
}

fn log_event(e: Event, metrics: &Metrics) {
    match e {
        Event::TopicCreated { topic, partitions } => info!(%topic, partitions, "topic created"),
        Event::TopicDeleted { topic } => info!(%topic, "topic deleted"),
        Event::PartitionOpened {
            topic,
            partition,
            recovery,
            dropped_bytes,
        } => {
            if dropped_bytes > 0 {
                warn!(%topic, partition, dropped_bytes, %recovery, "partition recovered: dropped a torn or corrupt tail");
            } else {
                info!(%topic, partition, %recovery, "partition opened");
            }
        }
        Event::LeaderElected {
            topic,
            partition,
            epoch,
        } => {
            info!(%topic, partition, epoch, "this broker leads the partition")
        }
        Event::LeaderLost {
            topic,
            partition,
            epoch,
            leader,
        } => match leader {
            Some(leader) => info!(
                %topic,
                partition,
                epoch,
                new_leader = leader,
                "this broker no longer leads the partition"
            ),
            None => info!(
                %topic,
                partition,
                epoch,
                "this broker no longer leads the partition (no leader known yet)"
            ),
        },
        Event::ElectionStarted {
            topic,
            partition,
            epoch,
        } => info!(
            %topic,
            partition,
            epoch,
            "no leader heard from; this broker stands for election"
        ),
        Event::FollowingLeader {
            topic,
            partition,
            epoch,
            leader,
        } => info!(%topic, partition, epoch, leader, "following the partition's leader"),
        Event::Truncated {
            topic,
            partition,
            from_offset,
            entries,
        } => info!(
            %topic,
            partition,
            from_offset,
            entries,
            "removed an uncommitted tail to match the leader"
        ),
        Event::ControllerChanged { term, leader } => match leader {
            Some(leader) => info!(term, controller = leader, "controller elected"),
            None => info!(term, "metadata election under way; no controller yet"),
        },
        Event::MetadataError { reason } => warn!(%reason, "metadata error"),
        Event::PeerRejected { reason } => {
            metrics.peer_rejected.inc();
            warn!(%reason, "refused a message from a peer");
        }
        Event::HighWatermark {
            topic,
            partition,
            offset,
        } => {
            metrics
                .high_watermark
                .get_or_create(&PartitionLabel { topic, partition })
                .set(offset);
        }
        Event::LogStartMoved {
            topic,
            partition,
            offset,
        } => {
            info!(%topic, partition, offset, "retention removed old segments")
        }
        Event::SequenceRefused {
            topic,
            partition,
            producer_id,
            epoch,
            sequence,
            code,
            known,
        } => warn!(
            %topic,
            partition,
            producer_id,
            epoch,
            sequence,
            code,
            %known,
            "refused an idempotent batch"
        ),
        Event::GroupsLoaded { partition, groups } => {
            info!(
                partition,
                groups, "coordinating the groups of a __consumer_offsets partition"
            )
        }
        Event::GroupsUnloaded { partition, groups } => info!(
            partition,
            groups, "no longer coordinating a __consumer_offsets partition's groups"
        ),
        Event::GroupStable {
            group,
            generation,
            members,
        } => info!(%group, generation, members, "group rebalanced"),
        Event::GroupMemberExpired { group, member } => {
            info!(%group, %member, "group member's session expired")
        }
        Event::Malformed { conn, reason } => {
            metrics.malformed.inc();
            warn!(conn, %reason, "malformed request");
        }
    }
}

/// Reads frames from one connection and writes its responses, until either side closes.
async fn connection(
    conn: ConnId,
    peer: std::net::SocketAddr,
    sock: TcpStream,
    to_broker: mpsc::Sender<ToBroker>,
    max_frame: usize,
    metrics: Arc<Metrics>,
) {
    let (mut rd, wr) = tokio::io::split(sock);
    let (writer, mut responses) = mpsc::unbounded_channel::<Vec<u8>>();
    let (stop_tx, mut stop_rx) = oneshot::channel();
    if to_broker
        .send(ToBroker::Connected {
            conn,
            peer,
            writer,
            stop: stop_tx,
        })
        .await
        .is_err()
    {
        return;
    }
    // Requests in flight on this connection: the reader takes a permit per request, the
    // writer gives it back once the answer is written (or known to be empty). A client that
    // pipelines without reading its responses is stopped here instead of growing the broker's
    // memory.
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT_PER_CONNECTION));
    let released = in_flight.clone();
    let write_task = tokio::spawn(async move {
        let mut wr = BufWriter::with_capacity(64 * 1024, wr);
        while let Some(frame) = responses.recv().await {
            if wr.write_all(&frame).await.is_err() {
                return;
            }
            let mut finished = 1;
            // Coalesce whatever else is ready into the same flush.
            while let Ok(frame) = responses.try_recv() {
                if wr.write_all(&frame).await.is_err() {
                    return;
                }
                finished += 1;
            }
            if wr.flush().await.is_err() {
                return;
            }
            released.add_permits(finished);
        }
        let _ = wr.shutdown().await;
    });
    let mut buf = BytesMut::with_capacity(64 * 1024);
    'read: loop {
        let n = tokio::select! {
            biased;
            _ = &mut stop_rx => break 'read,
            r = rd.read_buf(&mut buf) => match r {
                Ok(0) | Err(_) => break 'read,
                Ok(n) => n,
            },
        };
        metrics.bytes_in.inc_by(n as u64);
        loop {
            match next_frame(&buf, max_frame) {
                Ok(FrameStatus::Complete { consumed, .. }) => {
                    let permit = tokio::select! {
                        biased;
                        _ = &mut stop_rx => break 'read,
                        p = in_flight.acquire() => p,
                    };
                    match permit {
                        Ok(p) => p.forget(),
                        Err(_) => break 'read,
                    }
                    let mut frame = buf.split_to(consumed);
                    let body = frame.split_off(4).freeze();
                    if to_broker
                        .send(ToBroker::Request { conn, frame: body })
                        .await
                        .is_err()
                    {
                        break 'read;
                    }
                }
                Ok(FrameStatus::Incomplete { .. }) => break,
                Err(e) => {
                    metrics.malformed.inc();
                    warn!(conn, error = %e, "bad frame; closing connection");
                    break 'read;
                }
            }
        }
    }
    let _ = to_broker.send(ToBroker::Disconnected { conn }).await;
    // The broker drops the writer on Disconnected; the write task then flushes and ends.
    let _ = write_task.await;
    debug!(conn, "connection closed");
}

/// The storage thread's state: performs jobs in order, with one fsync per target per drain.
struct StorageWorker<D> {
    storage: sluice_core::broker::BrokerStorage,
    disk: D,
    done: mpsc::UnboundedSender<FromStorage>,
    clock: Clock,
    metrics: Arc<Metrics>,
}

/// The storage worker failed (and said so on `done`): it stops without a final sync.
struct StorageFailed;

/// A completed job, or a Sync request waiting for its target's sync.
enum Slot {
    Done(StorageTarget, StorageDone),
    Synced(StorageTarget, sluice_core::ids::LogIndex),
}

/// A drain whose writes are done and whose syncs are not.
struct Unsynced {
    /// Each target to sync once for all of its Sync requests in the drain.
    targets: Vec<StorageTarget>,
    /// The completions from the drain's first Sync on, sent once the syncs are done.
    slots: Vec<Slot>,
}

impl<D: Disk> StorageWorker<D> {
    /// A drain's first half: `first` and whatever is queued behind it (up to `MAX_DRAIN`) are
    /// performed, except the syncs; completions before the first Sync are sent.
    fn write(
        &mut self,
        first: (StorageTarget, StorageJob),
        jobs: &mut mpsc::UnboundedReceiver<(StorageTarget, StorageJob)>,
    ) -> Result<Unsynced, StorageFailed> {
        let mut batch = vec![first];
        while batch.len() < MAX_DRAIN {
            match jobs.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let mut slots = Vec::with_capacity(batch.len());
        let mut targets: Vec<StorageTarget> = Vec::new();
        for (target, job) in batch {
            if let StorageJob::Raft(StorageRequest::Sync { up_to }) = job {
                if !targets.contains(&target) {
                    targets.push(target);
                }
                slots.push(Slot::Synced(target, up_to));
                continue;
            }
            let d = self.execute(target, job)?;
            slots.push(Slot::Done(target, d));
        }
        // Completions before the first Sync do not depend on the fsync: send them now, so an
        // acks=1 answer (the batch is written to the OS) does not wait for the disk.
        let first_sync = slots
            .iter()
            .position(|s| matches!(s, Slot::Synced(..)))
            .unwrap_or(slots.len());
        let rest = slots.split_off(first_sync);
        self.send(slots);
        Ok(Unsynced {
            targets,
            slots: rest,
        })
    }

    /// A drain's second half: one sync per target, then the remaining completions.
    fn sync(&mut self, drain: Unsynced) -> Result<(), StorageFailed> {
        for target in drain.targets {
            let started = Instant::now();
            let job = StorageJob::Raft(StorageRequest::Sync {
                up_to: sluice_core::ids::LogIndex::ZERO,
            });
            self.execute(target, job)?;
            self.metrics
                .fsync_seconds
                .observe(started.elapsed().as_secs_f64());
        }
        self.send(drain.slots);
        Ok(())
    }

    fn send(&self, slots: Vec<Slot>) {
        for slot in slots {
            let (target, done) = match slot {
                Slot::Done(t, d) => (t, d),
                Slot::Synced(t, up_to) => (
                    t,
                    StorageDone::Raft(sluice_core::raft::StorageCompletion::Synced { up_to }),
                ),
            };
            if self.done.send(FromStorage::Done { target, done }).is_err() {
                return;
            }
        }
    }

    fn execute(
        &mut self,
        target: StorageTarget,
        job: StorageJob,
    ) -> Result<StorageDone, StorageFailed> {
        let wall_ms = self.clock.wall_ms();
        self.storage
            .execute(&mut self.disk, target, job, wall_ms)
            .map_err(|e: StoreError| {
                let _ = self.done.send(FromStorage::Failed(e.to_string()));
                StorageFailed
            })
    }

    /// The job queue closed (the broker is stopping): make everything durable.
    fn finish(&mut self) {
        if let Err(e) = self.storage.sync_all(&mut self.disk) {
            error!(error = %e, "final sync failed");
        }
    }
}

/// The running storage worker.
struct StorageHandle {
    #[cfg(not(madsim))]
    thread: std::thread::JoinHandle<()>,
    #[cfg(madsim)]
    task: tokio::task::JoinHandle<()>,
}

/// Production: a thread of its own, since storage calls block.
#[cfg(not(madsim))]
fn spawn_storage<D: Disk + Send + 'static>(
    mut worker: StorageWorker<D>,
    mut jobs: mpsc::UnboundedReceiver<(StorageTarget, StorageJob)>,
) -> Result<StorageHandle, String> {
    let thread = std::thread::Builder::new()
        .name("sluice-storage".into())
        .spawn(move || {
            while let Some(first) = jobs.blocking_recv() {
                let synced = worker
                    .write(first, &mut jobs)
                    .and_then(|drain| worker.sync(drain));
                if synced.is_err() {
                    return;
                }
            }
            worker.finish();
        })
        .map_err(|e| format!("cannot start the storage thread: {e}"))?;
    Ok(StorageHandle { thread })
}

/// Simulated disk times: a drain's writes, and its syncs. A node killed during the sync
/// loses what the drain wrote, as a process killed in `fdatasync` may.
#[cfg(madsim)]
const SIM_WRITE_TIME: Duration = Duration::from_micros(100);
#[cfg(madsim)]
const SIM_SYNC_TIME: Duration = Duration::from_millis(1);

/// Under madsim: a task on the node (madsim runs one thread; the simulated disk does not
/// block), which dies with the node when it is killed.
#[cfg(madsim)]
fn spawn_storage<D: Disk + Send + 'static>(
    mut worker: StorageWorker<D>,
    mut jobs: mpsc::UnboundedReceiver<(StorageTarget, StorageJob)>,
) -> Result<StorageHandle, String> {
    let task = tokio::spawn(async move {
        while let Some(first) = jobs.recv().await {
            tokio::time::sleep(SIM_WRITE_TIME).await;
            let Ok(drain) = worker.write(first, &mut jobs) else {
                return;
            };
            if !drain.targets.is_empty() {
                tokio::time::sleep(SIM_SYNC_TIME).await;
            }
            if worker.sync(drain).is_err() {
                return;
            }
        }
        worker.finish();
    });
    Ok(StorageHandle { task })
}

impl StorageHandle {
    /// Waits for the worker to finish the queued jobs and stop.
    async fn join(self) -> Result<(), String> {
        #[cfg(not(madsim))]
        let joined = {
            let thread = self.thread;
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .map_err(|e| e.to_string())?
                .map_err(|_| ())
        };
        #[cfg(madsim)]
        let joined = self.task.await.map_err(|_| ());
        joined.map_err(|()| "the storage thread panicked".to_string())
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(all(unix, not(madsim)))]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(any(not(unix), madsim))]
    {
        let _ = ctrl_c.await;
    }
}
