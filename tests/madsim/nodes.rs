//! A cluster of real brokers (`sluice::server::serve_on`) on madsim nodes, and the faults the
//! tests inject: kill (the node's tasks vanish and its disk loses unsynced writes) and restart
//! (recovery from that disk), pause and resume (a stopped process), and clogged links (packets
//! between two nodes, one way or both, stop flowing).
//!
//! Broker `n` (1-based, its Kafka node id) is at 10.0.0.n: clients on port 9092, peers on 9093.
//! Each runs on a clock of its own: wall time up to ±5 s off and a monotonic clock up to ±2%
//! fast or slow, drawn from the seed.

use crate::disk::SharedDisk;
use madsim::runtime::{Handle, NodeHandle};
use madsim::task::NodeId;
use sluice::config::Settings;
use sluice::server::{serve_on, Clock, Node};
use sluice_core::rng::DetRng;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

pub const KAFKA_PORT: u16 = 9092;
pub const PEER_PORT: u16 = 9093;

pub fn broker_ip(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, n as u8))
}

pub fn broker_addr(n: u32) -> SocketAddr {
    SocketAddr::new(broker_ip(n), KAFKA_PORT)
}

/// The address of the node that runs the clients.
pub fn client_ip() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1))
}

#[derive(Debug)]
pub struct Broker {
    pub id: u32,
    pub node: NodeId,
    pub disk: SharedDisk,
    pub up: bool,
    pub paused: bool,
    pub wall_offset_ms: i64,
    pub rate_ppm: i64,
}

#[derive(Debug)]
pub struct Cluster {
    handle: Handle,
    pub brokers: Vec<Broker>,
    /// Links clogged by the test, (from, to) as madsim node handles' indexes into `brokers`
    /// (`None`: the clients' node).
    clogged: Vec<(Option<usize>, Option<usize>)>,
    client_node: Option<NodeId>,
    pub kills: u32,
    pub bytes_lost: usize,
}

/// The settings a broker of an `n`-broker cluster runs with.
pub fn settings(id: u32, n: u32) -> Settings {
    Settings {
        node_id: id as i32,
        listen: broker_addr(id).to_string(),
        peer_listen: Some(SocketAddr::new(broker_ip(id), PEER_PORT).to_string()),
        metrics_listen: String::new(),
        voters: (1..=n)
            .map(|v| format!("{v}={}", SocketAddr::new(broker_ip(v), PEER_PORT)))
            .collect(),
        data_dir: PathBuf::from(format!("/broker-{id}")),
        default_replication_factor: n.min(3) as u16,
        offsets_topic_num_partitions: 4,
        group_initial_rebalance_delay_ms: 0,
        ..Settings::default()
    }
}

impl Cluster {
    /// Starts `n` brokers, each on its own madsim node, disk and clock.
    pub fn start(n: u32, rng: &mut DetRng) -> Cluster {
        let handle = Handle::current();
        let brokers = (1..=n)
            .map(|id| {
                let disk = SharedDisk::new(rng.next_u64());
                let wall_offset_ms = rng.range(0, 10_001) as i64 - 5_000;
                let rate_ppm = rng.range(0, 40_001) as i64 - 20_000;
                let seed = rng.next_u64();
                let settings = settings(id, n);
                let node_disk = disk.clone();
                let node = handle
                    .create_node()
                    .name(format!("broker-{id}"))
                    .ip(broker_ip(id))
                    .init(move || {
                        let node = Node {
                            disk: node_disk.clone(),
                            data_dir: format!("/broker-{id}"),
                            clock: Clock::skewed(wall_offset_ms, rate_ppm),
                            seed,
                        };
                        let settings = settings.clone();
                        async move {
                            if let Err(e) = serve_on(settings, node).await {
                                panic!("broker {id} stopped with an error: {e}");
                            }
                        }
                    })
                    .build()
                    .id();
                Broker {
                    id,
                    node,
                    disk,
                    up: true,
                    paused: false,
                    wall_offset_ms,
                    rate_ppm,
                }
            })
            .collect();
        Cluster {
            handle,
            brokers,
            clogged: Vec::new(),
            client_node: None,
            kills: 0,
            bytes_lost: 0,
        }
    }

    /// Creates the node the clients run on (once).
    pub fn client_node(&mut self) -> NodeHandle {
        assert!(self.client_node.is_none(), "one client node");
        let node = self
            .handle
            .create_node()
            .name("clients")
            .ip(client_ip())
            .build();
        self.client_node = Some(node.id());
        node
    }

    /// A one-line description of each broker's clock, for the test's banner.
    pub fn describe_clocks(&self) -> String {
        self.brokers
            .iter()
            .map(|b| {
                format!(
                    "broker {}: wall {:+} ms, rate {:+} ppm",
                    b.id, b.wall_offset_ms, b.rate_ppm
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Kills broker index `i` (its tasks and sockets vanish) and cuts its disk's power.
    pub fn kill(&mut self, i: usize) {
        let b = &mut self.brokers[i];
        self.handle.kill(b.node);
        self.bytes_lost += b.disk.crash();
        b.up = false;
        b.paused = false;
        self.kills += 1;
    }

    /// Starts broker index `i` again on what its disk kept (it must have been killed).
    pub fn restart(&mut self, i: usize) {
        let b = &mut self.brokers[i];
        assert!(!b.up, "restart a killed broker only");
        self.handle.restart(b.node);
        b.up = true;
    }

    pub fn pause(&mut self, i: usize) {
        let b = &mut self.brokers[i];
        self.handle.pause(b.node);
        b.paused = true;
    }

    pub fn resume(&mut self, i: usize) {
        let b = &mut self.brokers[i];
        self.handle.resume(b.node);
        b.paused = false;
    }

    fn node_id(&self, i: Option<usize>) -> NodeId {
        match i {
            Some(i) => self.brokers[i].node,
            None => self.client_node.expect("the client node exists"),
        }
    }

    /// Packets from `from` to `to` (broker indexes; `None`: the clients) stop flowing.
    pub fn clog(&mut self, from: Option<usize>, to: Option<usize>) {
        let net = madsim::net::NetSim::current();
        net.clog_link(self.node_id(from), self.node_id(to));
        self.clogged.push((from, to));
    }

    /// Every fault healed: links unclogged, paused brokers resumed, killed ones restarted.
    pub fn heal(&mut self) {
        self.unclog_all();
        for i in 0..self.brokers.len() {
            if self.brokers[i].paused {
                self.resume(i);
            }
            if !self.brokers[i].up {
                self.restart(i);
            }
        }
    }

    pub fn unclog_all(&mut self) {
        let net = madsim::net::NetSim::current();
        for (from, to) in std::mem::take(&mut self.clogged) {
            net.unclog_link(self.node_id(from), self.node_id(to));
        }
    }

    pub fn clogged_links(&self) -> usize {
        self.clogged.len()
    }
}
