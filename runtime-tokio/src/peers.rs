//! The transport between brokers: frames of bytes the core produced (`Output::Peer`) carried to
//! the broker they are for, and frames other brokers sent handed to the broker task (which
//! turns each into `Input::Peer`).
//!
//! - Framing: a u32 big-endian length, then that many bytes; at most [`MAX_PEER_FRAME`]. A bad
//!   length closes that connection (with a warning); nothing is allocated by a length a peer
//!   wrote, only by bytes that actually arrived.
//! - Direction: each broker writes on connections it opened and reads on connections it
//!   accepted, so a connection carries frames one way only and two brokers never race to
//!   decide which of two connections to keep.
//! - Outbound: one task per destination broker, with a bounded queue (frames and bytes). When
//!   the queue is full the newest frame is dropped and counted: the protocol tolerates loss
//!   (Raft retransmits, heartbeats repeat), and order is kept for what is sent. The task
//!   connects to the address book's address for its broker, reconnects with capped
//!   exponential backoff, writes every queued frame before one flush, and discards what was
//!   queued while the broker could not be reached (stale by the time it is back).
//! - Address book: voters' addresses from `--voters`; every other broker's from the metadata
//!   log (`Output::PeerAddresses`).
//!
//! Not here: what the bytes mean (the core encodes and decodes envelopes, including the sender
//! id and version), retries, and any notion of which broker is alive.
//!
//! Every `select!` is `biased;` so a madsim build can replay it.

use crate::config::Voters;
use crate::metrics::{DropLabel, Metrics, PeerLabel};
use bytes::{Buf, Bytes, BytesMut};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

/// The largest frame either side accepts (the core's envelope limit).
pub const MAX_PEER_FRAME: usize = sluice_core::broker::peer::MAX_ENVELOPE_BYTES;
/// Frames queued for one destination before new ones are dropped.
const QUEUE_FRAMES: usize = 4096;
/// Bytes queued for one destination before new frames are dropped.
const QUEUE_BYTES: usize = 64 << 20;
/// Frames from all peers waiting for the broker task before readers wait (TCP back-pressure).
pub const INBOUND_QUEUE: usize = 1024;
/// Connections other brokers (or anyone) may hold open to this one.
const MAX_INBOUND_CONNECTIONS: usize = 256;
/// Reconnect backoff: doubles from the first value up to the cap.
const BACKOFF_FIRST: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A write batch that cannot be flushed in this long means the peer stopped reading (or the
/// path is dead): reconnect.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames written before one flush, at most (so one flush never holds up the queue for long).
const MAX_BATCH_FRAMES: usize = 1024;
/// Read buffer growth step; the buffer grows only as bytes arrive.
const READ_CHUNK: usize = 64 * 1024;

// ----- inbound -----

/// Accepts connections from other brokers and forwards every frame read on them to `frames`,
/// until the task is dropped.
pub async fn accept(listener: TcpListener, frames: mpsc::Sender<Bytes>, metrics: Arc<Metrics>) {
    let slots = Arc::new(Semaphore::new(MAX_INBOUND_CONNECTIONS));
    loop {
        let (sock, from) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: pause rather than spin.
                warn!(error = %e, "peer accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            warn!(%from, limit = MAX_INBOUND_CONNECTIONS, "too many peer connections; refusing one");
            continue;
        };
        debug!(%from, "peer connected");
        let _ = sock.set_nodelay(true);
        let frames = frames.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            metrics.peer_inbound_connections.inc();
            match read_frames(sock, &frames, &metrics).await {
                Ok(()) => debug!(%from, "peer connection closed"),
                Err(e) => warn!(%from, error = %e, "closing peer connection"),
            }
            metrics.peer_inbound_connections.dec();
            drop(slot);
        });
    }
}

/// Reads frames until the peer closes (`Ok`) or sends something that is not a frame (`Err`).
async fn read_frames<R: AsyncRead + Unpin>(
    mut sock: R,
    frames: &mpsc::Sender<Bytes>,
    metrics: &Metrics,
) -> Result<(), String> {
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        while let Some(frame) = next_frame(&mut buf)? {
            metrics.peer_received_frames.inc();
            if frames.send(frame).await.is_err() {
                return Ok(()); // the broker is stopping
            }
        }
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        match sock.read_buf(&mut buf).await {
            Ok(0) if buf.is_empty() => return Ok(()),
            Ok(0) => return Err(format!("closed inside a frame ({} bytes read)", buf.len())),
            Ok(n) => {
                metrics.peer_received_bytes.inc_by(n as u64);
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Takes one complete frame off the front of `buf`, if there is one.
fn next_frame(buf: &mut BytesMut) -> Result<Option<Bytes>, String> {
    let Some(head) = buf.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if len > MAX_PEER_FRAME {
        return Err(format!(
            "frame of {len} bytes is over the {MAX_PEER_FRAME}-byte limit"
        ));
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(len).freeze()))
}

// ----- outbound -----

/// The outbound side, owned by the broker task: one link per destination broker.
#[derive(Debug)]
pub struct Peers {
    me: i32,
    voters: Voters,
    /// Peer addresses from the metadata log.
    book: BTreeMap<i32, String>,
    links: BTreeMap<i32, Link>,
    /// Destinations already warned about (no address, or an address that disagrees with
    /// `--voters`), so a missing address is one log line, not one per message.
    warned: BTreeSet<i32>,
    metrics: Arc<Metrics>,
}

#[derive(Debug)]
struct Link {
    addr: watch::Sender<String>,
    queue: mpsc::Sender<Vec<u8>>,
    queued_bytes: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Peers {
    pub fn new(me: i32, voters: Voters, metrics: Arc<Metrics>) -> Peers {
        Peers {
            me,
            voters,
            book: BTreeMap::new(),
            links: BTreeMap::new(),
            warned: BTreeSet::new(),
            metrics,
        }
    }

    /// Queues one frame for broker `to`; drops it (counted) if it cannot be queued.
    pub fn send(&mut self, to: i32, bytes: Vec<u8>) {
        if to == self.me {
            // The core ignores its own envelopes; nothing to deliver.
            return;
        }
        if bytes.len() > MAX_PEER_FRAME {
            warn!(
                peer = to,
                bytes = bytes.len(),
                "peer frame over the limit; dropped"
            );
            return self.dropped(to, "too_large");
        }
        let Some(link) = self.link(to) else {
            if self.warned.insert(to) {
                warn!(
                    peer = to,
                    "no address for broker {to} (not in --voters, not yet in the metadata); \
                     dropping its messages until one is known"
                );
            }
            return self.dropped(to, "no_address");
        };
        let len = bytes.len();
        let queued = link.queued_bytes.fetch_add(len, Ordering::Relaxed);
        let sent = queued + len <= QUEUE_BYTES && link.queue.try_send(bytes).is_ok();
        if !sent {
            link.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            self.dropped(to, "queue_full");
        }
    }

    /// Replaces the addresses learned from the metadata log, moving or closing links whose
    /// address changed or disappeared.
    pub fn set_addresses(&mut self, addresses: Vec<(i32, String)>) {
        self.book = addresses
            .into_iter()
            .filter(|(id, _)| *id != self.me)
            .collect();
        for (id, addr) in &self.book {
            if let Some(v) = self.voters.get(id) {
                if v != addr && self.warned.insert(*id) {
                    warn!(
                        peer = id,
                        voters = %v,
                        registered = %addr,
                        "broker {id} registered a peer address that differs from --voters; \
                         using the --voters address"
                    );
                }
            }
        }
        let ids: Vec<i32> = self.links.keys().copied().collect();
        for id in ids {
            match self.address(id) {
                Some(addr) => {
                    let addr = addr.to_string();
                    self.links[&id].addr.send_if_modified(|current| {
                        let moved = *current != addr;
                        if moved {
                            info!(peer = id, from = %current, to = %addr, "broker moved");
                            *current = addr;
                        }
                        moved
                    });
                }
                None => {
                    self.links.remove(&id);
                }
            }
        }
    }

    fn address(&self, id: i32) -> Option<&str> {
        self.voters
            .get(&id)
            .or_else(|| self.book.get(&id))
            .map(String::as_str)
    }

    /// The link to `to`, started on first use if its address is known.
    fn link(&mut self, to: i32) -> Option<&Link> {
        if !self.links.contains_key(&to) {
            let addr = self.address(to)?.to_string();
            let (addr_tx, addr_rx) = watch::channel(addr);
            let (queue, rx) = mpsc::channel(QUEUE_FRAMES);
            let queued_bytes = Arc::new(AtomicUsize::new(0));
            let task = tokio::spawn(run_link(
                to,
                addr_rx,
                rx,
                queued_bytes.clone(),
                self.metrics.clone(),
            ));
            self.links.insert(
                to,
                Link {
                    addr: addr_tx,
                    queue,
                    queued_bytes,
                    task,
                },
            );
        }
        self.links.get(&to)
    }

    fn dropped(&self, peer: i32, reason: &'static str) {
        self.metrics
            .peer_dropped_frames
            .get_or_create(&DropLabel { peer, reason })
            .inc();
    }
}

/// Why a connection's writer stopped.
enum End {
    /// The link was closed: stop the task.
    Stop,
    /// The broker moved to another address: connect there.
    Moved,
    /// The connection broke.
    Lost(String),
}

/// One destination: connect, write, reconnect, until the link is dropped.
async fn run_link(
    to: i32,
    mut addr: watch::Receiver<String>,
    mut queue: mpsc::Receiver<Vec<u8>>,
    queued_bytes: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
) {
    let label = PeerLabel { peer: to };
    let mut backoff = BACKOFF_FIRST;
    let mut failures = 0u64;
    loop {
        let target = addr.borrow_and_update().clone();
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&target)).await;
        let sock = match connected {
            Ok(Ok(sock)) => Some(sock),
            Ok(Err(e)) => {
                failures += 1;
                unreachable(to, &target, &e.to_string(), failures);
                None
            }
            Err(_) => {
                failures += 1;
                unreachable(to, &target, "connect timed out", failures);
                None
            }
        };
        if let Some(sock) = sock {
            let _ = sock.set_nodelay(true);
            if failures > 0 {
                info!(peer = to, addr = %target, attempts = failures + 1, "connected to broker");
            } else {
                debug!(peer = to, addr = %target, "connected to broker");
            }
            failures = 0;
            metrics.peer_connected.get_or_create(&label).set(1);
            let mut delivered = false;
            let end = write_frames(
                sock,
                &mut queue,
                &mut addr,
                &queued_bytes,
                &label,
                &metrics,
                &mut delivered,
            )
            .await;
            metrics.peer_connected.get_or_create(&label).set(0);
            if delivered {
                // Only a connection that carried frames resets the backoff: a peer that
                // accepts and closes at once is retried no faster than one that refuses.
                backoff = BACKOFF_FIRST;
            }
            match end {
                End::Stop => return,
                End::Moved => {
                    debug!(peer = to, "reconnecting to the broker's new address");
                    continue;
                }
                End::Lost(why) => {
                    info!(peer = to, addr = %target, reason = %why, "connection to broker lost")
                }
            }
        } else {
            // What was queued meanwhile is stale by the time the broker is back: Raft and
            // the heartbeats resend what still matters.
            discard(&mut queue, &queued_bytes, to, &metrics);
        }
        tokio::select! {
            biased;
            changed = addr.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Logs an unreachable broker once per outage at INFO (a broker being down is normal in a
/// cluster), then at DEBUG.
fn unreachable(to: i32, addr: &str, error: &str, failures: u64) {
    if failures == 1 {
        info!(peer = to, %addr, %error, "cannot reach broker; retrying with backoff");
    } else {
        debug!(peer = to, %addr, %error, failures, "cannot reach broker");
    }
}

fn discard(
    queue: &mut mpsc::Receiver<Vec<u8>>,
    queued_bytes: &AtomicUsize,
    peer: i32,
    metrics: &Metrics,
) {
    let mut n = 0u64;
    while let Ok(f) = queue.try_recv() {
        queued_bytes.fetch_sub(f.len(), Ordering::Relaxed);
        n += 1;
    }
    if n > 0 {
        metrics
            .peer_dropped_frames
            .get_or_create(&DropLabel {
                peer,
                reason: "disconnected",
            })
            .inc_by(n);
    }
}

/// Writes queued frames to one connection, in order, batching whatever is queued into one
/// flush, until the link closes, the address changes or the connection breaks. Sets
/// `delivered` once a batch has been flushed.
async fn write_frames(
    sock: TcpStream,
    queue: &mut mpsc::Receiver<Vec<u8>>,
    addr: &mut watch::Receiver<String>,
    queued_bytes: &AtomicUsize,
    label: &PeerLabel,
    metrics: &Metrics,
    delivered: &mut bool,
) -> End {
    // `split`, not `into_split`: the madsim port has only the former.
    let (mut rd, wr) = tokio::io::split(sock);
    let mut wr = BufWriter::with_capacity(256 * 1024, wr);
    // The peer never writes on this connection; reading only notices it closing (a restart),
    // so the next frames go to a fresh connection instead of into a dead one.
    let mut scratch = [0u8; 256];
    loop {
        let first = tokio::select! {
            biased;
            f = queue.recv() => match f {
                Some(f) => f,
                None => return End::Stop,
            },
            changed = addr.changed() => return match changed {
                Ok(()) => End::Moved,
                Err(_) => End::Stop,
            },
            r = rd.read(&mut scratch) => match r {
                Ok(0) => return End::Lost("closed by the peer".into()),
                Ok(_) => continue,
                Err(e) => return End::Lost(e.to_string()),
            },
        };
        let batch = async {
            let mut frames = 0u64;
            let mut bytes = 0u64;
            let mut next = Some(first);
            while let Some(f) = next.take() {
                queued_bytes.fetch_sub(f.len(), Ordering::Relaxed);
                bytes += write_frame(&mut wr, &f).await? as u64;
                frames += 1;
                if frames < MAX_BATCH_FRAMES as u64 {
                    next = queue.try_recv().ok();
                }
            }
            wr.flush().await?;
            Ok::<_, std::io::Error>((frames, bytes))
        };
        match tokio::time::timeout(WRITE_TIMEOUT, batch).await {
            Ok(Ok((frames, bytes))) => {
                *delivered = true;
                metrics.peer_sent_frames.get_or_create(label).inc_by(frames);
                metrics.peer_sent_bytes.get_or_create(label).inc_by(bytes);
            }
            Ok(Err(e)) => return End::Lost(e.to_string()),
            Err(_) => return End::Lost(format!("no progress writing for {WRITE_TIMEOUT:?}")),
        }
    }
}

/// Writes one length-prefixed frame; returns the bytes written.
async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, frame: &[u8]) -> std::io::Result<usize> {
    let len = u32::try_from(frame.len()).expect("frames are checked against the limit");
    w.write_all(&len.to_be_bytes()).await?;
    w.write_all(frame).await?;
    Ok(4 + frame.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(parts: &[&[u8]]) -> BytesMut {
        let mut b = BytesMut::new();
        for p in parts {
            b.extend_from_slice(&(p.len() as u32).to_be_bytes());
            b.extend_from_slice(p);
        }
        b
    }

    #[test]
    fn frames_come_off_the_buffer_whole_and_in_order() {
        let mut b = framed(&[b"one", b"", b"three"]);
        b.extend_from_slice(&[0, 0, 0, 9, b'x']);
        assert_eq!(next_frame(&mut b).unwrap().unwrap(), &b"one"[..]);
        assert_eq!(next_frame(&mut b).unwrap().unwrap(), &b""[..]);
        assert_eq!(next_frame(&mut b).unwrap().unwrap(), &b"three"[..]);
        assert_eq!(next_frame(&mut b).unwrap(), None, "a partial frame waits");
        assert_eq!(b.len(), 5);
    }

    #[test]
    fn a_length_over_the_limit_is_refused_before_anything_is_allocated() {
        let mut b = BytesMut::from(&((MAX_PEER_FRAME as u32) + 1).to_be_bytes()[..]);
        let e = next_frame(&mut b).unwrap_err();
        assert!(e.contains("limit"), "{e}");
        assert!(b.capacity() < 1024);
    }

    #[tokio::test]
    async fn a_stream_split_anywhere_yields_the_same_frames() {
        let payloads: Vec<Vec<u8>> = (0..50).map(|i| vec![i as u8; i * 37]).collect();
        let mut bytes = Vec::new();
        for p in &payloads {
            write_frame(&mut bytes, p).await.unwrap();
        }
        let (mut client, server) = tokio::io::duplex(64);
        let metrics = Metrics::new();
        let (tx, mut rx) = mpsc::channel(100);
        let reader = tokio::spawn(async move { read_frames(server, &tx, &metrics).await });
        // Written in odd-sized pieces through a 64-byte pipe.
        for chunk in bytes.chunks(13) {
            client.write_all(chunk).await.unwrap();
        }
        drop(client);
        assert_eq!(reader.await.unwrap(), Ok(()));
        for p in &payloads {
            assert_eq!(rx.recv().await.unwrap(), &p[..]);
        }
        assert!(rx.recv().await.is_none());
    }

    #[tokio::test]
    async fn a_connection_that_ends_inside_a_frame_is_an_error() {
        let (mut client, server) = tokio::io::duplex(64);
        let metrics = Metrics::new();
        let (tx, _rx) = mpsc::channel(100);
        client.write_all(&[0, 0, 0, 10, 1, 2]).await.unwrap();
        drop(client);
        let e = read_frames(server, &tx, &metrics).await.unwrap_err();
        assert!(e.contains("inside a frame"), "{e}");
    }

    #[tokio::test]
    async fn frames_reach_another_listener_in_order_and_unknown_peers_are_counted() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let metrics = Metrics::new();
        let (tx, mut rx) = mpsc::channel(INBOUND_QUEUE);
        let acceptor = tokio::spawn(accept(listener, tx, metrics.clone()));
        let mut peers = Peers::new(1, Voters::from([(2, addr)]), metrics.clone());
        for i in 0..100u32 {
            peers.send(2, i.to_be_bytes().to_vec());
        }
        peers.send(1, b"to myself".to_vec());
        peers.send(7, b"nowhere".to_vec());
        for i in 0..100u32 {
            let f = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("frames arrive within the deadline")
                .unwrap();
            assert_eq!(f, &i.to_be_bytes()[..]);
        }
        let rendered = metrics.render();
        assert!(
            rendered
                .contains("sluice_peer_dropped_frames_total{peer=\"7\",reason=\"no_address\"} 1"),
            "{rendered}"
        );
        assert!(
            rendered.contains("sluice_peer_received_frames_total 100"),
            "{rendered}"
        );
        // The metadata now names broker 7.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr7 = listener.local_addr().unwrap().to_string();
        let (tx7, mut rx7) = mpsc::channel(INBOUND_QUEUE);
        let acceptor7 = tokio::spawn(accept(listener, tx7, metrics.clone()));
        peers.set_addresses(vec![(7, addr7), (1, "ignored:1".into())]);
        peers.send(7, b"somewhere".to_vec());
        let f = tokio::time::timeout(Duration::from_secs(10), rx7.recv())
            .await
            .expect("a frame for a newly known broker arrives")
            .unwrap();
        assert_eq!(f, &b"somewhere"[..]);
        acceptor.abort();
        acceptor7.abort();
    }
}
