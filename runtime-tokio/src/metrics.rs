//! Prometheus metrics: request rates and latencies per API, bytes in and out, connections,
//! partition high watermarks, fsync latency, and the traffic between brokers (per peer: frames
//! and bytes sent, frames dropped and why, whether the link is up; frames and bytes received). Served in the text exposition format at
//! `GET /metrics` on the metrics address.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabel {
    pub api: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabel {
    pub topic: String,
    pub partition: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabel {
    pub peer: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabel {
    pub peer: i32,
    /// `queue_full`, `disconnected`, `no_address` or `too_large`.
    pub reason: &'static str,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub requests: Family<ApiLabel, Counter>,
    pub latency: Family<ApiLabel, Histogram>,
    pub bytes_in: Counter,
    pub bytes_out: Counter,
    pub connections: Gauge,
    pub high_watermark: Family<PartitionLabel, Gauge>,
    pub fsync_seconds: Histogram,
    pub malformed: Counter,
    pub peer_sent_frames: Family<PeerLabel, Counter>,
    pub peer_sent_bytes: Family<PeerLabel, Counter>,
    pub peer_dropped_frames: Family<DropLabel, Counter>,
    pub peer_connected: Family<PeerLabel, Gauge>,
    pub peer_received_frames: Counter,
    pub peer_received_bytes: Counter,
    pub peer_inbound_connections: Gauge,
    pub peer_rejected: Counter,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("sluice");
        let requests = Family::<ApiLabel, Counter>::default();
        let latency = Family::<ApiLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
        });
        let bytes_in = Counter::default();
        let bytes_out = Counter::default();
        let connections = Gauge::default();
        let high_watermark = Family::<PartitionLabel, Gauge>::default();
        let fsync_seconds = Histogram::new(exponential_buckets(0.000_01, 2.0, 20));
        let malformed = Counter::default();
        registry.register("requests", "Requests answered, by API", requests.clone());
        registry.register(
            "request_latency_seconds",
            "From request read to response queued, by API",
            latency.clone(),
        );
        registry.register(
            "received_bytes",
            "Request bytes read from clients",
            bytes_in.clone(),
        );
        registry.register(
            "sent_bytes",
            "Response bytes written to clients",
            bytes_out.clone(),
        );
        registry.register(
            "connections",
            "Open client connections",
            connections.clone(),
        );
        registry.register(
            "partition_high_watermark",
            "High watermark per partition",
            high_watermark.clone(),
        );
        registry.register(
            "fsync_latency_seconds",
            "Duration of each group fsync on the storage thread",
            fsync_seconds.clone(),
        );
        registry.register(
            "malformed_requests",
            "Requests that could not be decoded (the connection is closed)",
            malformed.clone(),
        );
        let peer_sent_frames = Family::<PeerLabel, Counter>::default();
        let peer_sent_bytes = Family::<PeerLabel, Counter>::default();
        let peer_dropped_frames = Family::<DropLabel, Counter>::default();
        let peer_connected = Family::<PeerLabel, Gauge>::default();
        let peer_received_frames = Counter::default();
        let peer_received_bytes = Counter::default();
        let peer_inbound_connections = Gauge::default();
        let peer_rejected = Counter::default();
        registry.register(
            "peer_sent_frames",
            "Frames written to another broker, by destination",
            peer_sent_frames.clone(),
        );
        registry.register(
            "peer_sent_bytes",
            "Bytes written to another broker (length prefixes included), by destination",
            peer_sent_bytes.clone(),
        );
        registry.register(
            "peer_dropped_frames",
            "Frames for another broker that were dropped (the protocol retransmits), by reason",
            peer_dropped_frames.clone(),
        );
        registry.register(
            "peer_connected",
            "1 while the outbound connection to a broker is up",
            peer_connected.clone(),
        );
        registry.register(
            "peer_received_frames",
            "Frames read from other brokers",
            peer_received_frames.clone(),
        );
        registry.register(
            "peer_received_bytes",
            "Bytes read from other brokers",
            peer_received_bytes.clone(),
        );
        registry.register(
            "peer_inbound_connections",
            "Open connections other brokers made to this one",
            peer_inbound_connections.clone(),
        );
        registry.register(
            "peer_rejected_frames",
            "Frames from peers the broker could not decode (another version, or not a broker)",
            peer_rejected.clone(),
        );
        Arc::new(Metrics {
            registry,
            requests,
            latency,
            bytes_in,
            bytes_out,
            connections,
            high_watermark,
            fsync_seconds,
            malformed,
            peer_sent_frames,
            peer_sent_bytes,
            peer_dropped_frames,
            peer_connected,
            peer_received_frames,
            peer_received_bytes,
            peer_inbound_connections,
            peer_rejected,
        })
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// Serves `GET /metrics` (any other path gets 404) until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut n = 0;
            // Read the request head (bounded); the body, if any, is ignored.
            while n < buf.len() {
                match tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    sock.read(&mut buf[n..]),
                )
                .await
                {
                    Ok(Ok(0)) | Err(_) | Ok(Err(_)) => return,
                    Ok(Ok(k)) => n += k,
                }
                if buf[..n].windows(4).any(|w| w == b"\r\n\r\n")
                    || buf[..n].windows(2).any(|w| w == b"\n\n")
                {
                    break;
                }
            }
            let head = String::from_utf8_lossy(&buf[..n]);
            let path = head.split_whitespace().nth(1).unwrap_or("");
            let (status, body) = if path == "/metrics" || path.starts_with("/metrics?") {
                ("200 OK", metrics.render())
            } else {
                (
                    "404 Not Found",
                    "not found; metrics are at /metrics\n".to_string(),
                )
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(response.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}
