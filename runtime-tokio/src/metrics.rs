//! Prometheus metrics: request rates and latencies per API, bytes in and out, connections,
//! partition high watermarks, and fsync latency. Served in the text exposition format at
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
