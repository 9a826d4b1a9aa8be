//! `sluice broker` settings: defaults, then the TOML file, then command-line flags, and their
//! validation (a bad value stops the broker before it binds anything, with a message naming
//! the setting).
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
//! # Cluster (leave `voters` out, or empty, for a single broker that is its own controller):
//! peer_listen = "127.0.0.1:9093"    # other brokers connect here (default: this node's
//!                                   # entry in `voters`, else 127.0.0.1:9093)
//! advertised_peer = "127.0.0.1:9093" # what other brokers are told (default: peer_listen)
//! voters = ["1=127.0.0.1:9191", "2=127.0.0.1:9192", "3=127.0.0.1:9193"]
//! default_replication_factor = 1
//! # Consumer groups (Kafka's names; the offsets topic settings apply when it is created):
//! offsets_topic_num_partitions = 16
//! offsets_topic_replication_factor = 3   # capped by the brokers of the cluster
//! offsets_topic_segment_bytes = 16777216
//! group_initial_rebalance_delay_ms = 3000
//! group_min_session_timeout_ms = 6000
//! group_max_session_timeout_ms = 1800000
//! ```
//!
//! Not here: anything the broker decides (assignment, leadership); this only turns settings
//! into a `BrokerConfig` and the addresses the driver binds.

use serde::Deserialize;
use sluice_core::broker::BrokerConfig;
use sluice_core::protocol::DEFAULT_MAX_FRAME_BYTES;
use sluice_core::storage::LogConfig;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where brokers listen for each other when nothing says otherwise.
pub const DEFAULT_PEER_LISTEN: &str = "127.0.0.1:9093";

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
    /// `None`: this node's entry in `voters` if it has one, else [`DEFAULT_PEER_LISTEN`].
    pub peer_listen: Option<String>,
    pub advertised_peer: Option<String>,
    /// The metadata voters as `ID=HOST:PORT` (their peer addresses); empty: a single broker.
    pub voters: Vec<String>,
    pub default_replication_factor: u16,
    pub offsets_topic_num_partitions: u32,
    pub offsets_topic_replication_factor: u16,
    pub offsets_topic_segment_bytes: u64,
    pub group_initial_rebalance_delay_ms: u64,
    pub group_min_session_timeout_ms: u64,
    pub group_max_session_timeout_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        let log = LogConfig::default();
        // The core's defaults, so that the file and the flags only say what differs.
        let core = BrokerConfig::new(1, "127.0.0.1", 9092);
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
            peer_listen: None,
            advertised_peer: None,
            voters: Vec::new(),
            default_replication_factor: 1,
            offsets_topic_num_partitions: core.offsets_topic_partitions,
            offsets_topic_replication_factor: core.offsets_topic_replication_factor,
            offsets_topic_segment_bytes: core.offsets_segment_bytes,
            group_initial_rebalance_delay_ms: millis(core.group_initial_rebalance_delay),
            group_min_session_timeout_ms: millis(core.group_min_session_timeout),
            group_max_session_timeout_ms: millis(core.group_max_session_timeout),
        }
    }
}

/// The metadata voters by node id, with the peer address each is reached at.
pub type Voters = BTreeMap<i32, String>;

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

    /// Parses and checks `voters`: `ID=HOST:PORT`, ids unique and not negative.
    pub fn voters(&self) -> Result<Voters, String> {
        let mut out = Voters::new();
        for entry in &self.voters {
            let (id, addr) = entry.split_once('=').ok_or_else(|| {
                format!("voter '{entry}' is not ID=HOST:PORT (e.g. 1=127.0.0.1:9093)")
            })?;
            let id: i32 = id
                .trim()
                .parse()
                .map_err(|_| format!("voter '{entry}': '{id}' is not a node id"))?;
            if id < 0 {
                return Err(format!("voter '{entry}': node ids must not be negative"));
            }
            let addr = addr.trim();
            check_host_port(addr).map_err(|e| format!("voter '{entry}': {e}"))?;
            if out.insert(id, addr.to_string()).is_some() {
                return Err(format!("voter {id} is listed twice in the voters"));
            }
        }
        Ok(out)
    }

    /// The address to bind for other brokers.
    pub fn peer_listen(&self) -> Result<String, String> {
        let addr = match &self.peer_listen {
            Some(a) => a.clone(),
            None => self
                .voters()?
                .remove(&self.node_id)
                .unwrap_or_else(|| DEFAULT_PEER_LISTEN.to_string()),
        };
        check_host_port(&addr).map_err(|e| format!("peer listen address '{addr}': {e}"))?;
        Ok(addr)
    }

    /// What other brokers are told to connect to, given the peer address actually bound.
    pub fn advertised_peer(&self, bound: SocketAddr) -> Result<String, String> {
        match &self.advertised_peer {
            Some(a) => {
                check_host_port(a).map_err(|e| format!("advertised peer address '{a}': {e}"))?;
                Ok(a.clone())
            }
            None => Ok(advertisable(bound).to_string()),
        }
    }

    /// The broker's core settings, given the client and peer addresses it actually bound.
    pub fn broker_config(
        &self,
        bound: SocketAddr,
        peer_bound: SocketAddr,
    ) -> Result<BrokerConfig, String> {
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
            None => {
                let a = advertisable(bound);
                (a.ip().to_string(), i32::from(a.port()))
            }
        };
        self.validate()?;
        let voters = self.voters()?;
        let mut cfg = BrokerConfig::new(self.node_id, &host, port);
        cfg.auto_create_topics = self.auto_create_topics;
        cfg.default_partitions = self.num_partitions;
        cfg.voters = voters.keys().copied().collect();
        cfg.peer_addr = self.advertised_peer(peer_bound)?;
        cfg.default_replication_factor = self.default_replication_factor;
        cfg.offsets_topic_partitions = self.offsets_topic_num_partitions;
        cfg.offsets_topic_replication_factor = self.offsets_topic_replication_factor;
        cfg.offsets_segment_bytes = self.offsets_topic_segment_bytes;
        cfg.group_initial_rebalance_delay =
            Duration::from_millis(self.group_initial_rebalance_delay_ms);
        cfg.group_min_session_timeout = Duration::from_millis(self.group_min_session_timeout_ms);
        cfg.group_max_session_timeout = Duration::from_millis(self.group_max_session_timeout_ms);
        cfg.log_dir = std::fs::canonicalize(&self.data_dir)
            .unwrap_or_else(|_| self.data_dir.clone())
            .display()
            .to_string();
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

    /// Checks what can be checked before binding anything.
    pub fn validate(&self) -> Result<(), String> {
        if self.node_id < 0 {
            return Err(format!("node_id {} must not be negative", self.node_id));
        }
        if self.num_partitions == 0 {
            return Err("num_partitions must be at least 1".into());
        }
        if self.default_replication_factor == 0 {
            return Err("default_replication_factor must be at least 1".into());
        }
        self.validate_groups()?;
        self.listen_addr()?;
        self.voters()?;
        self.peer_listen()?;
        if let Some(a) = &self.advertised_peer {
            check_host_port(a).map_err(|e| format!("advertised peer address '{a}': {e}"))?;
        }
        Ok(())
    }

    /// The consumer-group settings. Checked at start-up, as a bad value would otherwise only
    /// show when the first group arrives.
    fn validate_groups(&self) -> Result<(), String> {
        if self.offsets_topic_num_partitions == 0 {
            return Err("offsets_topic_num_partitions must be at least 1".into());
        }
        if self.offsets_topic_replication_factor == 0 {
            return Err("offsets_topic_replication_factor must be at least 1".into());
        }
        if !(1024..=(1 << 31)).contains(&self.offsets_topic_segment_bytes) {
            return Err(format!(
                "offsets_topic_segment_bytes must be between 1 KiB and 2 GiB, got {}",
                self.offsets_topic_segment_bytes
            ));
        }
        if self.group_min_session_timeout_ms > self.group_max_session_timeout_ms {
            return Err(format!(
                "group_min_session_timeout_ms ({}) is above group_max_session_timeout_ms ({}): \
                 no member could join",
                self.group_min_session_timeout_ms, self.group_max_session_timeout_ms
            ));
        }
        Ok(())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A wildcard address cannot be connected to from elsewhere; on this machine it is reached on
/// loopback. Remote clients and brokers need an advertised address (the server warns).
fn advertisable(bound: SocketAddr) -> SocketAddr {
    if bound.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], bound.port()))
    } else {
        bound
    }
}

/// `HOST:PORT` with a non-empty host (a name or an address; `[v6]` in brackets) and a port.
/// Names are not resolved here: a peer's name may not resolve until that peer is up.
fn check_host_port(addr: &str) -> Result<(), String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or("expected HOST:PORT, e.g. 127.0.0.1:9093")?;
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("'{host}' is not a host name or address"));
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err("write an IPv6 address in brackets, e.g. [::1]:9093".into());
    }
    port.parse::<u16>()
        .map_err(|_| format!("'{port}' is not a port number"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

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
        let cfg = s
            .broker_config(addr("127.0.0.1:19092"), addr("127.0.0.1:9093"))
            .unwrap();
        assert_eq!(cfg.advertised_port, 19092);
        assert_eq!(cfg.log.retention_ms, Some(7 * 24 * 3600 * 1000));
        assert!(cfg.voters.is_empty(), "no voters: a single broker");
        assert_eq!(cfg.peer_addr, "127.0.0.1:9093");
        let any = s
            .broker_config(addr("0.0.0.0:9092"), addr("0.0.0.0:9093"))
            .unwrap();
        assert_eq!(
            any.advertised_host, "127.0.0.1",
            "a wildcard is never advertised"
        );
        assert_eq!(any.peer_addr, "127.0.0.1:9093", "nor for peers");
    }

    #[test]
    fn voters_come_from_the_file_and_a_voter_listens_where_the_voters_say() {
        let s: Settings = toml::from_str(
            "node_id = 2\nvoters = [\"1=127.0.0.1:9191\", \"2=127.0.0.1:9192\", \"3=h3:9193\"]\n\
             default_replication_factor = 3\n",
        )
        .unwrap();
        let v = s.voters().unwrap();
        assert_eq!(v.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(v[&3], "h3:9193");
        assert_eq!(s.peer_listen().unwrap(), "127.0.0.1:9192");
        let cfg = s
            .broker_config(addr("127.0.0.1:9092"), addr("127.0.0.1:9192"))
            .unwrap();
        assert_eq!(cfg.voters, vec![1, 2, 3]);
        assert_eq!(cfg.default_replication_factor, 3);
        let s = Settings { node_id: 4, ..s };
        assert_eq!(s.peer_listen().unwrap(), DEFAULT_PEER_LISTEN);
    }

    #[test]
    fn group_settings_default_to_kafkas_and_reach_the_broker_config() {
        let defaults = Settings::default()
            .broker_config(addr("127.0.0.1:9092"), addr("127.0.0.1:9093"))
            .unwrap();
        assert_eq!(defaults.offsets_topic_partitions, 16);
        assert_eq!(defaults.offsets_topic_replication_factor, 3);
        assert_eq!(
            defaults.group_initial_rebalance_delay,
            Duration::from_secs(3)
        );
        assert_eq!(defaults.group_min_session_timeout, Duration::from_secs(6));
        assert_eq!(
            defaults.group_max_session_timeout,
            Duration::from_secs(1800)
        );
        let s: Settings = toml::from_str(
            "offsets_topic_num_partitions = 4\noffsets_topic_replication_factor = 1\n\
             offsets_topic_segment_bytes = 1048576\ngroup_initial_rebalance_delay_ms = 0\n\
             group_min_session_timeout_ms = 1000\ngroup_max_session_timeout_ms = 60000\n",
        )
        .unwrap();
        let cfg = s
            .broker_config(addr("127.0.0.1:9092"), addr("127.0.0.1:9093"))
            .unwrap();
        assert_eq!(cfg.offsets_topic_partitions, 4);
        assert_eq!(cfg.offsets_topic_replication_factor, 1);
        assert_eq!(cfg.offsets_segment_bytes, 1 << 20);
        assert_eq!(cfg.group_initial_rebalance_delay, Duration::ZERO);
        assert_eq!(cfg.group_min_session_timeout, Duration::from_secs(1));
        assert_eq!(cfg.group_max_session_timeout, Duration::from_secs(60));
        let typo = toml::from_str::<Settings>("group_initial_rebalance_delay = 0\n")
            .unwrap_err()
            .to_string();
        assert!(typo.contains("group_initial_rebalance_delay"), "{typo}");
    }

    #[test]
    fn bad_voters_are_refused_with_the_reason() {
        let err = |voters: &[&str]| {
            Settings {
                voters: voters.iter().map(|v| v.to_string()).collect(),
                ..Settings::default()
            }
            .validate()
            .unwrap_err()
        };
        assert!(err(&["1=a:1", "1=b:2"]).contains("listed twice"));
        assert!(err(&["-1=a:1"]).contains("must not be negative"));
        assert!(err(&["x=a:1"]).contains("not a node id"));
        assert!(err(&["1a:1"]).contains("not ID=HOST:PORT"));
        assert!(err(&["1=a"]).contains("HOST:PORT"));
        assert!(err(&["1=a:99999"]).contains("not a port"));
        assert!(err(&["1=:9093"]).contains("not a host"));
        assert!(err(&["1=::1:9093"]).contains("brackets"));
        let ok = Settings {
            voters: vec!["1=[::1]:9093".into()],
            ..Settings::default()
        };
        assert!(ok.validate().is_ok());
        let groups = |toml: &str| {
            toml::from_str::<Settings>(toml)
                .unwrap()
                .validate()
                .unwrap_err()
        };
        assert!(groups("offsets_topic_num_partitions = 0").contains("offsets_topic_num_partitions"));
        assert!(groups("offsets_topic_replication_factor = 0")
            .contains("offsets_topic_replication_factor"));
        assert!(groups("offsets_topic_segment_bytes = 10").contains("1 KiB"));
        assert!(groups(
            "group_min_session_timeout_ms = 10000\ngroup_max_session_timeout_ms = 9000"
        )
        .contains("no member could join"));
        let zero_rf = Settings {
            default_replication_factor: 0,
            ..Settings::default()
        };
        assert!(zero_rf.validate().unwrap_err().contains("replication"));
    }
}
