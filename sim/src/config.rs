//! Everything a run depends on besides the seed's streams: cluster shape, Raft knobs, fault
//! models, workload, fault plan, phase lengths and gates. A scenario is a function from a seed
//! to one of these; the banner prints all of it.

use crate::checkers::CheckerSet;
use crate::disk::DiskParams;
use crate::faults::TimedFault;
use crate::network::NetworkParams;
use sluice_core::ids::NodeId;
use sluice_core::raft::{Bug, Config};
use std::fmt::Write as _;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftKnobs {
    pub election_timeout_ms: u64,
    pub heartbeat_ms: u64,
    pub max_inflight: usize,
    pub max_batch_entries: usize,
    pub pre_vote: bool,
    pub check_quorum: bool,
    pub bug: Option<Bug>,
}

impl Default for RaftKnobs {
    fn default() -> Self {
        RaftKnobs {
            election_timeout_ms: 150,
            heartbeat_ms: 50,
            max_inflight: 8,
            max_batch_entries: 64,
            pre_vote: true,
            check_quorum: true,
            bug: None,
        }
    }
}

impl RaftKnobs {
    pub fn config(&self, id: NodeId, voters: Vec<NodeId>) -> Config {
        let mut c = Config::new(id, voters);
        c.election_timeout = Duration::from_millis(self.election_timeout_ms);
        c.heartbeat_interval = Duration::from_millis(self.heartbeat_ms);
        c.max_inflight = self.max_inflight;
        c.max_batch_entries = self.max_batch_entries;
        c.pre_vote = self.pre_vote;
        c.check_quorum = self.check_quorum;
        c.bug = self.bug;
        c
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClockParams {
    /// Initial monotonic rate deviation per node, drawn in `[-max, max]` ppm.
    pub drift_ppm_max: i64,
    /// Initial wall-clock skew per node, drawn in `[-max, max]` ms.
    pub wall_skew_ms_max: i64,
}

impl Default for ClockParams {
    fn default() -> Self {
        ClockParams {
            drift_ppm_max: 200,
            wall_skew_ms_max: 500,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadParams {
    pub clients: u32,
    pub think_us: (u64, u64),
    pub request_timeout_ms: u64,
    pub payload_bytes: (u64, u64),
    /// Acknowledged appends required in the liveness phase before clients stop.
    pub liveness_acks: u64,
}

impl Default for WorkloadParams {
    fn default() -> Self {
        WorkloadParams {
            clients: 4,
            think_us: (0, 2_000),
            request_timeout_ms: 1_000,
            payload_bytes: (0, 64),
            liveness_acks: 10,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    pub seed: u64,
    pub nodes: u32,
    pub raft: RaftKnobs,
    pub network: NetworkParams,
    pub disk: DiskParams,
    pub clock: ClockParams,
    pub workload: WorkloadParams,
    pub faults: Vec<TimedFault>,
    pub safety_ms: u64,
    /// The liveness phase must converge within this much simulated time.
    pub liveness_ms: u64,
    /// Gate: a run with fewer acknowledged appends than this fails.
    pub min_acked: u64,
    /// A run that processes more events than this is a livelock (a message storm that never
    /// lets simulated time advance) and fails as a liveness failure instead of hanging.
    pub max_events: u64,
    pub checkers: CheckerSet,
}

impl SimConfig {
    pub fn new(seed: u64, nodes: u32) -> SimConfig {
        SimConfig {
            seed,
            nodes,
            raft: RaftKnobs::default(),
            network: NetworkParams::default(),
            disk: DiskParams::default(),
            clock: ClockParams::default(),
            workload: WorkloadParams::default(),
            faults: Vec::new(),
            safety_ms: 10_000,
            liveness_ms: 30_000,
            min_acked: 1,
            max_events: 20_000_000,
            checkers: CheckerSet::default(),
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(1..=9).contains(&self.nodes) {
            return Err(format!("nodes must be 1..=9, got {}", self.nodes));
        }
        if self.workload.clients == 0 {
            return Err("at least one client is needed".into());
        }
        let voters: Vec<NodeId> = (1..=self.nodes).map(NodeId).collect();
        self.raft
            .config(NodeId(1), voters)
            .validate()
            .map_err(|e| e.to_string())
    }

    /// Every parameter of the run, one per line, for the banner.
    pub fn banner(&self) -> String {
        let mut s = String::new();
        let r = &self.raft;
        let n = &self.network;
        let d = &self.disk;
        let w = &self.workload;
        let _ = writeln!(
            s,
            "seed={} nodes={} safety_ms={} liveness_ms={} min_acked={}",
            self.seed, self.nodes, self.safety_ms, self.liveness_ms, self.min_acked
        );
        let _ = writeln!(
            s,
            "raft: election_timeout_ms={} heartbeat_ms={} max_inflight={} max_batch_entries={} pre_vote={} check_quorum={} bug={:?}",
            r.election_timeout_ms, r.heartbeat_ms, r.max_inflight, r.max_batch_entries, r.pre_vote, r.check_quorum, r.bug
        );
        let _ = writeln!(
            s,
            "network: delay_us={}..{} tail_ppm={} tail_max_us={} loss_ppm={} dup_ppm={} client_drop_ppm={}",
            n.delay_min_us, n.delay_max_us, n.tail_ppm, n.tail_max_us, n.loss_ppm, n.dup_ppm, n.client_drop_ppm
        );
        let _ = writeln!(
            s,
            "disk: write_us={}..{} sync_us={}..{} torn_writes={} garbage_ppm={} io_error_ppm={} segment_bytes={}",
            d.write_us_min,
            d.write_us_max,
            d.sync_us_min,
            d.sync_us_max,
            d.torn_writes,
            d.garbage_ppm,
            d.io_error_ppm,
            d.segment_bytes
        );
        let _ = writeln!(
            s,
            "clock: drift_ppm_max={} wall_skew_ms_max={}",
            self.clock.drift_ppm_max, self.clock.wall_skew_ms_max
        );
        let _ = writeln!(
            s,
            "workload: clients={} think_us={}..{} request_timeout_ms={} payload_bytes={}..{} liveness_acks={}",
            w.clients, w.think_us.0, w.think_us.1, w.request_timeout_ms, w.payload_bytes.0, w.payload_bytes.1, w.liveness_acks
        );
        let names: Vec<&str> = self.checkers.0.iter().map(|c| c.name()).collect();
        let _ = writeln!(s, "checkers: {}", names.join(","));
        let _ = writeln!(s, "faults: {} actions", self.faults.len());
        for f in self.faults.iter().take(40) {
            let _ = writeln!(s, "  {f}");
        }
        if self.faults.len() > 40 {
            let _ = writeln!(s, "  ... and {} more", self.faults.len() - 40);
        }
        s
    }
}
