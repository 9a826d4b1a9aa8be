//! `sluice broker` settings: defaults, then the TOML file, then command-line flags.
//!
//! ```toml
//! listen = "127.0.0.1:9092"         # Kafka clients connect here
//! advertised_listener = "127.0.0.1:9092"  # what Metadata tells clients (default: listen)
//! data_dir = "./data"
//! metrics_listen = "127.0.0.1:9644" # Prometheus text format at /metrics; "" disables it
//! node_id = 1
//! auto_create_topics = false
//! num_partitions = 1
//! max_frame_bytes = 104857600
//! log_retention_ms = 604800000      # 7 days; -1 keeps data forever
//! log_retention_bytes = -1
//! log_segment_bytes = 1073741824
//! log_segment_ms = 604800000
//! ```

use serde::Deserialize;
use sluice_core::broker::BrokerConfig;
use sluice_core::protocol::DEFAULT_MAX_FRAME_BYTES;
use sluice_core::storage::LogConfig;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub listen: String,
    pub advertised_listener: Option<String>,
    pub data_dir: PathBuf,
    pub metrics_listen: String,
    pub node_id: i32,
    pub auto_create_topics: bool,
    pub num_partitions: u32,
    pub max_frame_bytes: usize,
    pub log_retention_ms: i64,
    pub log_retention_bytes: i64,
    pub log_segment_bytes: u64,
    pub log_segment_ms: i64,
}

impl Default for Settings {
    fn default() -> Self {
        let log = LogConfig::default();
        Settings {
            listen: "127.0.0.1:9092".into(),
            advertised_listener: None,
            data_dir: PathBuf::from("./data"),
            metrics_listen: "127.0.0.1:9644".into(),
            node_id: 1,
            auto_create_topics: false,
            num_partitions: 1,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            log_retention_ms: log.retention_ms.unwrap_or(-1),
            log_retention_bytes: -1,
            log_segment_bytes: log.segment_bytes,
            log_segment_ms: log.segment_ms,
        }
    }
}

impl Settings {
    /// Reads a TOML file; unknown keys are an error, so a typo is not silently ignored.
    pub fn from_file(path: &std::path::Path) -> Result<Settings, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, String> {
        self.listen.parse().map_err(|e| {
            format!(
                "listen address '{}': {e} (expected HOST:PORT, e.g. 127.0.0.1:9092)",
                self.listen
            )
        })
    }

    /// The broker's core settings, given the address it actually bound.
    pub fn broker_config(&self, bound: SocketAddr) -> Result<BrokerConfig, String> {
        let (host, port) = match &self.advertised_listener {
            Some(a) => {
                let (h, p) = a
                    .rsplit_once(':')
                    .ok_or_else(|| format!("advertised_listener '{a}' is not HOST:PORT"))?;
                let p: i32 = p
                    .parse()
                    .map_err(|_| format!("advertised_listener '{a}' has a bad port"))?;
                (h.to_string(), p)
            }
            // A wildcard address cannot be connected to from elsewhere; clients on this machine
            // reach it on loopback. Remote clients need --advertised-listener (the server logs
            // a warning).
            None if bound.ip().is_unspecified() => {
                ("127.0.0.1".to_string(), i32::from(bound.port()))
            }
            None => (bound.ip().to_string(), i32::from(bound.port())),
        };
        if self.node_id < 0 {
            return Err(format!("node_id {} must not be negative", self.node_id));
        }
        if self.num_partitions == 0 {
            return Err("num_partitions must be at least 1".into());
        }
        let mut cfg = BrokerConfig::new(self.node_id, &host, port);
        cfg.auto_create_topics = self.auto_create_topics;
        cfg.default_partitions = self.num_partitions;
        cfg.log = LogConfig {
            segment_bytes: self.log_segment_bytes,
            segment_ms: self.log_segment_ms,
            retention_ms: (self.log_retention_ms >= 0).then_some(self.log_retention_ms),
            retention_bytes: (self.log_retention_bytes >= 0)
                .then_some(self.log_retention_bytes as u64),
            ..LogConfig::default()
        };
        cfg.log.validate()?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_file_overrides_defaults_and_typos_are_refused() {
        let s: Settings =
            toml::from_str("listen = \"127.0.0.1:19092\"\nauto_create_topics = true\n").unwrap();
        assert_eq!(s.listen, "127.0.0.1:19092");
        assert!(s.auto_create_topics);
        assert_eq!(s.data_dir, PathBuf::from("./data"));
        let e = toml::from_str::<Settings>("lisen = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("lisen"), "{e}");
        let cfg = s.broker_config("127.0.0.1:19092".parse().unwrap()).unwrap();
        assert_eq!(cfg.advertised_port, 19092);
        assert_eq!(cfg.log.retention_ms, Some(7 * 24 * 3600 * 1000));
        let any = s.broker_config("0.0.0.0:9092".parse().unwrap()).unwrap();
        assert_eq!(
            any.advertised_host, "127.0.0.1",
            "a wildcard is never advertised"
        );
    }
}
