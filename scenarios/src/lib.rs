//! Named fault-injection scenarios. Each is a value: a name, why it exists (the bug class it
//! hunts), and a function from a seed to a complete `SimConfig` (cluster shape, workload, fault
//! plan, gates). Scenario-specific randomness comes from the seed's `Swarm` (knobs) and
//! `FaultPlan` (timeline) streams, so a scenario run is a pure function of its seed.

#![forbid(unsafe_code)]

pub mod kafka;

use sluice_core::rng::DetRng;
use sluice_sim::faults::{generate, FaultAction, FaultRates, Target, TimedFault};
use sluice_sim::seeds::{stream, Stream};
use sluice_sim::SimConfig;

#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    pub name: &'static str,
    pub why: &'static str,
    pub build: fn(u64) -> SimConfig,
}

impl Scenario {
    pub fn config(&self, seed: u64) -> SimConfig {
        (self.build)(seed)
    }
}

pub fn all() -> &'static [Scenario] {
    SCENARIOS
}

pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

static SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "leader-isolated",
        why: "The leader is cut off from every peer while clients can still reach it. Hunts stale \
              leaders that keep acknowledging writes without a quorum, missing check-quorum \
              step-down, and a new leader that forgets what the old one committed.",
        build: leader_isolated,
    },
    Scenario {
        name: "split-flap",
        why: "A minority/majority split that flips every few hundred milliseconds, faster than \
              elections settle. Hunts term confusion, votes granted twice, commit advanced on a \
              stale quorum, and livelock from endless disruptive elections.",
        build: split_flap,
    },
    Scenario {
        name: "leader-one-way",
        why: "The leader loses only its inbound or only its outbound links. Heartbeats still arrive \
              but acknowledgements do not (or the reverse), the shape that defeats naive failure \
              detectors. Hunts leaders that never step down and followers that never elect.",
        build: leader_one_way,
    },
    Scenario {
        name: "leader-crash-burst",
        why: "Clients append as fast as they can and the leader crashes mid-burst, losing its \
              unsynced tail. Hunts acknowledgements sent before fsync, in-flight window accounting \
              after failover, and proposals reported lost that were in fact committed.",
        build: leader_crash_burst,
    },
    Scenario {
        name: "cluster-crash",
        why: "Every node crashes at once and restarts, each losing a different prefix of its \
              unsynced writes (with torn tails). Hunts recovery that trusts unsynced data, votes \
              not persisted before being sent, and acknowledged appends that were never durable.",
        build: cluster_crash,
    },
    Scenario {
        name: "last-replica-standing",
        why: "The whole cluster crashes, losing unsynced tails, and only two nodes come back: one of \
              them must be elected from what it actually synced (the Kafka KIP-966 shape). Hunts \
              leaders elected with a log that silently dropped acknowledged entries.",
        build: last_replica_standing,
    },
    Scenario {
        name: "clock-skew",
        why: "Monotonic clocks run between half and twice real time per node and change rate \
              mid-run; wall clocks jump by up to a minute. Hunts timeouts computed from the wrong \
              clock, leases that assume synchronized clocks, and wall-clock dependence.",
        build: clock_skew,
    },
    Scenario {
        name: "rolling-restarts",
        why: "Nodes restart one after another, as in an upgrade, while clients keep writing. Hunts \
              recovery bugs (hard state, log tail), slow catch-up after restart, and leaders lost \
              on every step of a rolling operation.",
        build: rolling_restarts,
    },
    Scenario {
        name: "pause-leader",
        why: "The leader freezes (a GC pause or SIGSTOP) for longer than the election timeout, then \
              resumes with a stale view and a backlog of timers and messages. Hunts a resumed \
              stale leader acknowledging writes, and timers that fire in a burst.",
        build: pause_leader,
    },
    Scenario {
        name: "message-chaos",
        why: "Heavy loss, duplication, reordering, long delay tails and clogged links, no crashes. \
              Hunts duplicate appends from replayed messages, stale responses moving replication \
              state, commit index regressions, and stalls in the in-flight window.",
        build: message_chaos,
    },
    Scenario {
        name: "figure-eight",
        why: "Five nodes, one entry per append, leaders crashing and partitions isolating them \
              right after election: the shape of the Raft paper's Figure 8, where an entry from an \
              earlier term reaches a majority but is not safe to commit until an entry of the \
              current term is. Hunts commit rules that count replicas of old-term entries (rarely: about \
              one seed in several thousand exposes a planted Figure 8 bug; core's unit test is the \
              deterministic guard) and elections that churn every few hundred milliseconds.",
        build: figure_eight,
    },
    Scenario {
        name: "vote-restart",
        why: "Elections without pre-vote, where voters crash and restart within milliseconds \
              while candidates are still collecting votes. Hunts votes and terms that are not \
              durable before they are sent or that are not reloaded on restart: a voter that \
              forgets its vote votes twice in one term and two leaders follow.",
        build: vote_restart,
    },
    Scenario {
        name: "swarm",
        why: "Every fault kind at once with rates, cluster size, workload and Raft knobs all drawn \
              from the seed (swarm testing): each seed explores a different corner, and together \
              they cover combinations no hand-written scenario thought of.",
        build: swarm,
    },
];

fn base(seed: u64, nodes: u32) -> (SimConfig, DetRng, DetRng) {
    let cfg = SimConfig::new(seed, nodes);
    (
        cfg,
        stream(seed, Stream::Swarm),
        stream(seed, Stream::FaultPlan),
    )
}

fn at(at_ms: u64, action: FaultAction) -> TimedFault {
    TimedFault { at_ms, action }
}

/// Repeats `step` from `start` until the safety phase ends; `step` pushes actions starting at
/// the given time and returns how long the episode lasts.
fn episodes(
    cfg: &mut SimConfig,
    rng: &mut DetRng,
    start: u64,
    mut step: impl FnMut(&mut DetRng, u64, &mut Vec<TimedFault>) -> u64,
) {
    let mut t = start;
    let mut plan = Vec::new();
    while t < cfg.safety_ms {
        t += step(rng, t, &mut plan);
    }
    plan.retain(|f| f.at_ms < cfg.safety_ms);
    plan.sort_by_key(|f| f.at_ms);
    cfg.faults = plan;
}

fn three_or_five(rng: &mut DetRng) -> u32 {
    if rng.coin() {
        3
    } else {
        5
    }
}

fn leader_isolated(seed: u64) -> SimConfig {
    let mut swarm = stream(seed, Stream::Swarm);
    let (mut cfg, _, mut plan) = base(seed, three_or_five(&mut swarm));
    episodes(&mut cfg, &mut plan, 500, |rng, t, p| {
        let hold = rng.range_inclusive(300, 3_000);
        p.push(at(t, FaultAction::Isolate(Target::Leader)));
        p.push(at(t + hold, FaultAction::Heal));
        hold + rng.range_inclusive(200, 1_500)
    });
    cfg
}

fn split_flap(seed: u64) -> SimConfig {
    let (mut cfg, _, mut plan) = base(seed, 5);
    episodes(&mut cfg, &mut plan, 300, |rng, t, p| {
        let hold = rng.range_inclusive(50, 600);
        let target = if rng.coin() {
            Target::Leader
        } else {
            Target::Random
        };
        p.push(at(t, FaultAction::Heal));
        p.push(at(t, FaultAction::Split { target, size: 2 }));
        hold
    });
    cfg
}

fn leader_one_way(seed: u64) -> SimConfig {
    let mut swarm = stream(seed, Stream::Swarm);
    let (mut cfg, _, mut plan) = base(seed, three_or_five(&mut swarm));
    episodes(&mut cfg, &mut plan, 500, |rng, t, p| {
        let hold = rng.range_inclusive(300, 3_000);
        p.push(at(
            t,
            FaultAction::OneWay {
                target: Target::Leader,
                inbound: rng.coin(),
            },
        ));
        p.push(at(t + hold, FaultAction::Heal));
        hold + rng.range_inclusive(200, 1_500)
    });
    cfg
}

fn leader_crash_burst(seed: u64) -> SimConfig {
    let mut swarm = stream(seed, Stream::Swarm);
    let (mut cfg, _, mut plan) = base(seed, three_or_five(&mut swarm));
    cfg.workload.clients = 8;
    cfg.workload.think_us = (0, 100);
    cfg.disk.sync_us_min = 500;
    cfg.disk.sync_us_max = 5_000;
    episodes(&mut cfg, &mut plan, 700, |rng, t, p| {
        let down = rng.range_inclusive(100, 1_500);
        p.push(at(t, FaultAction::Crash(Target::Leader)));
        p.push(at(t + down, FaultAction::Restart(Target::Crashed)));
        down + rng.range_inclusive(300, 1_500)
    });
    cfg
}

fn cluster_crash(seed: u64) -> SimConfig {
    let mut swarm = stream(seed, Stream::Swarm);
    let (mut cfg, _, mut plan) = base(seed, three_or_five(&mut swarm));
    cfg.workload.clients = 6;
    cfg.workload.think_us = (0, 500);
    episodes(&mut cfg, &mut plan, 800, |rng, t, p| {
        let down = rng.range_inclusive(20, 800);
        p.push(at(t, FaultAction::CrashAll));
        p.push(at(t + down, FaultAction::RestartAll));
        down + rng.range_inclusive(500, 2_500)
    });
    cfg
}

fn last_replica_standing(seed: u64) -> SimConfig {
    let (mut cfg, _, mut plan) = base(seed, 3);
    cfg.workload.clients = 6;
    cfg.workload.think_us = (0, 200);
    cfg.disk.sync_us_min = 500;
    cfg.disk.sync_us_max = 4_000;
    episodes(&mut cfg, &mut plan, 800, |rng, t, p| {
        let first = rng.range_inclusive(10, 300);
        let alone = rng.range_inclusive(500, 2_500);
        p.push(at(t, FaultAction::CrashAll));
        p.push(at(t + first, FaultAction::Restart(Target::Crashed)));
        p.push(at(t + first, FaultAction::Restart(Target::Crashed)));
        p.push(at(t + first + alone, FaultAction::RestartAll));
        first + alone + rng.range_inclusive(300, 1_500)
    });
    cfg
}

fn clock_skew(seed: u64) -> SimConfig {
    let mut swarm = stream(seed, Stream::Swarm);
    let (mut cfg, _, mut plan) = base(seed, three_or_five(&mut swarm));
    cfg.clock.drift_ppm_max = 300_000;
    cfg.clock.wall_skew_ms_max = 60_000;
    episodes(&mut cfg, &mut plan, 300, |rng, t, p| {
        let target = if rng.coin() {
            Target::Leader
        } else {
            Target::Random
        };
        let ppm = rng.range_inclusive(0, 1_500_000) as i64 - 500_000;
        p.push(at(t, FaultAction::ClockRate { target, ppm }));
        let jump = rng.range_inclusive(0, 120_000) as i64 - 60_000;
        p.push(at(
            t + 1,
            FaultAction::WallJump {
                target: Target::Leader,
                ms: jump,
            },
        ));
        if rng.range(0, 4) == 0 {
            let hold = rng.range_inclusive(200, 1_000);
            p.push(at(t + 2, FaultAction::Isolate(Target::Leader)));
            p.push(at(t + 2 + hold, FaultAction::Heal));
        }
        rng.range_inclusive(300, 1_500)
    });
    cfg
}

fn rolling_restarts(seed: u64) -> SimConfig {
    let mut swarm = stream(seed, Stream::Swarm);
    let nodes = three_or_five(&mut swarm);
    let (mut cfg, _, mut plan) = base(seed, nodes);
    let mut next = 0u32;
    episodes(&mut cfg, &mut plan, 500, |rng, t, p| {
        let node = Target::Node(next % nodes);
        next += 1;
        let down = rng.range_inclusive(50, 800);
        p.push(at(t, FaultAction::Crash(node)));
        p.push(at(t + down, FaultAction::Restart(node)));
        down + rng.range_inclusive(200, 1_200)
    });
    cfg
}

fn pause_leader(seed: u64) -> SimConfig {
    let mut swarm = stream(seed, Stream::Swarm);
    let nodes = three_or_five(&mut swarm);
    let (mut cfg, _, mut plan) = base(seed, nodes);
    episodes(&mut cfg, &mut plan, 500, |rng, t, p| {
        // Pause by node id so the resume hits the same process after leadership moved on.
        let node = Target::Node(rng.range(0, u64::from(nodes)) as u32);
        let target = if rng.coin() { Target::Leader } else { node };
        let hold = rng.range_inclusive(100, 2_000);
        p.push(at(t, FaultAction::Pause(target)));
        for n in 0..nodes {
            p.push(at(t + hold, FaultAction::Resume(Target::Node(n))));
        }
        hold + rng.range_inclusive(200, 1_500)
    });
    cfg
}

fn message_chaos(seed: u64) -> SimConfig {
    let mut swarm = stream(seed, Stream::Swarm);
    let (mut cfg, _, mut plan) = base(seed, three_or_five(&mut swarm));
    cfg.network.loss_ppm = swarm.range_inclusive(0, 200_000) as u32;
    cfg.network.dup_ppm = swarm.range_inclusive(0, 200_000) as u32;
    cfg.network.tail_ppm = 50_000;
    cfg.network.tail_max_us = 100_000;
    cfg.network.client_drop_ppm = swarm.range_inclusive(0, 50_000) as u32;
    cfg.raft.max_inflight = swarm.range_inclusive(1, 16) as usize;
    cfg.raft.max_batch_entries = swarm.range_inclusive(1, 32) as usize;
    cfg.liveness_ms = 60_000;
    episodes(&mut cfg, &mut plan, 200, |rng, t, p| {
        let ms = rng.range_inclusive(50, 1_000);
        p.push(at(
            t,
            FaultAction::Clog {
                a: Target::Leader,
                b: Target::Random,
                ms,
            },
        ));
        rng.range_inclusive(100, 1_500)
    });
    cfg
}

fn figure_eight(seed: u64) -> SimConfig {
    let (mut cfg, mut swarm, mut plan) = base(seed, 5);
    cfg.raft.max_batch_entries = 1;
    cfg.raft.max_inflight = swarm.range_inclusive(1, 2) as usize;
    cfg.network.delay_min_us = 200;
    cfg.network.delay_max_us = swarm.range_inclusive(2_000, 20_000);
    cfg.workload.clients = 6;
    cfg.workload.think_us = (0, 300);
    episodes(&mut cfg, &mut plan, 300, |rng, t, p| {
        let life = rng.range_inclusive(5, 150);
        p.push(at(t, FaultAction::Isolate(Target::Leader)));
        p.push(at(t + life, FaultAction::Crash(Target::Leader)));
        p.push(at(t + life, FaultAction::Heal));
        p.push(at(
            t + life + rng.range_inclusive(50, 400),
            FaultAction::Restart(Target::Crashed),
        ));
        if rng.coin() {
            p.push(at(
                t + life + 1,
                FaultAction::Split {
                    target: Target::Random,
                    size: 2,
                },
            ));
            p.push(at(
                t + life + rng.range_inclusive(100, 500),
                FaultAction::Heal,
            ));
        }
        life + rng.range_inclusive(200, 800)
    });
    cfg
}

fn vote_restart(seed: u64) -> SimConfig {
    let (mut cfg, mut swarm, mut plan) = base(seed, 5);
    cfg.raft.pre_vote = false;
    cfg.raft.check_quorum = false; // so a deposed leader still votes
    cfg.raft.election_timeout_ms = swarm.range_inclusive(30, 80);
    cfg.raft.heartbeat_ms = 10;
    cfg.network.delay_min_us = 1_000;
    cfg.network.delay_max_us = swarm.range_inclusive(10_000, 30_000);
    cfg.disk.sync_us_min = 100;
    cfg.disk.sync_us_max = 2_000;
    cfg.liveness_ms = 60_000;
    episodes(&mut cfg, &mut plan, 300, |rng, t, p| {
        // The leader's outbound links die: followers elect, the old leader can still vote.
        p.push(at(
            t,
            FaultAction::OneWay {
                target: Target::Leader,
                inbound: false,
            },
        ));
        let mut k = t + rng.range_inclusive(10, 60);
        for _ in 0..rng.range_inclusive(10, 40) {
            p.push(at(k, FaultAction::Crash(Target::Random)));
            p.push(at(
                k + rng.range_inclusive(0, 2),
                FaultAction::Restart(Target::Crashed),
            ));
            k += rng.range_inclusive(1, 12);
        }
        p.push(at(k + 50, FaultAction::Heal));
        k + 50 - t + rng.range_inclusive(50, 300)
    });
    cfg
}

fn swarm(seed: u64) -> SimConfig {
    let mut s = stream(seed, Stream::Swarm);
    let nodes = [1, 3, 3, 5, 5][s.index(5)];
    let mut cfg = SimConfig::new(seed, nodes);
    let mut plan = stream(seed, Stream::FaultPlan);

    let election = s.range_inclusive(80, 500);
    cfg.raft.election_timeout_ms = election;
    cfg.raft.heartbeat_ms = (election / s.range_inclusive(3, 8)).max(1);
    cfg.raft.max_inflight = s.range_inclusive(1, 16) as usize;
    cfg.raft.max_batch_entries = s.range_inclusive(1, 128) as usize;
    cfg.raft.pre_vote = s.range(0, 4) != 0;
    cfg.raft.check_quorum = s.range(0, 4) != 0;

    cfg.network.delay_min_us = s.range_inclusive(10, 1_000);
    cfg.network.delay_max_us = cfg.network.delay_min_us + s.range_inclusive(0, 20_000);
    cfg.network.tail_ppm = s.range_inclusive(0, 50_000) as u32;
    cfg.network.tail_max_us = s.range_inclusive(0, 200_000);
    let chaos = |s: &mut DetRng, max: u64| {
        if s.coin() {
            s.range_inclusive(0, max) as u32
        } else {
            0
        }
    };
    cfg.network.loss_ppm = chaos(&mut s, 100_000);
    cfg.network.dup_ppm = chaos(&mut s, 100_000);
    cfg.network.client_drop_ppm = chaos(&mut s, 20_000);

    cfg.disk.write_us_min = s.range_inclusive(1, 100);
    cfg.disk.write_us_max = cfg.disk.write_us_min + s.range_inclusive(0, 500);
    cfg.disk.sync_us_min = s.range_inclusive(10, 2_000);
    cfg.disk.sync_us_max = cfg.disk.sync_us_min + s.range_inclusive(0, 10_000);
    cfg.disk.torn_writes = s.range(0, 4) != 0;

    cfg.clock.drift_ppm_max = [0, 200, 20_000, 300_000][s.index(4)];
    cfg.clock.wall_skew_ms_max = s.range_inclusive(0, 60_000) as i64;

    cfg.workload.clients = s.range_inclusive(1, 8) as u32;
    cfg.workload.think_us = (0, s.range_inclusive(0, 5_000));
    cfg.workload.request_timeout_ms = s.range_inclusive(200, 2_000);
    cfg.workload.payload_bytes = (0, s.range_inclusive(0, 512));

    cfg.safety_ms = s.range_inclusive(3_000, 15_000);
    cfg.liveness_ms = 60_000;

    let maybe = |s: &mut DetRng, lo: u64, hi: u64| {
        if s.coin() {
            s.range_inclusive(lo, hi)
        } else {
            0
        }
    };
    let rates = FaultRates {
        partition_every_ms: maybe(&mut s, 300, 3_000),
        partition_hold_ms: (50, s.range_inclusive(100, 3_000)),
        crash_every_ms: maybe(&mut s, 300, 3_000),
        down_ms: (10, s.range_inclusive(50, 2_000)),
        pause_every_ms: maybe(&mut s, 500, 4_000),
        pause_ms: (10, s.range_inclusive(50, 2_000)),
        clog_every_ms: maybe(&mut s, 200, 2_000),
        clog_ms: (10, s.range_inclusive(20, 1_000)),
        clock_every_ms: maybe(&mut s, 500, 4_000),
        slow_disk_every_ms: maybe(&mut s, 500, 4_000),
        slow_disk_ms: (10, s.range_inclusive(50, 2_000)),
        crash_all_every_ms: if s.range(0, 4) == 0 {
            s.range_inclusive(2_000, 6_000)
        } else {
            0
        },
    };
    cfg.faults = generate(&mut plan, &rates, nodes, cfg.safety_ms);
    // Drawn last so that adding them moved no earlier draw (old seeds keep their shape).
    cfg.disk.io_error_ppm = if s.range(0, 3) == 0 {
        s.range_inclusive(1, 2_000) as u32
    } else {
        0
    };
    cfg.disk.garbage_ppm = s.range_inclusive(0, 1_000_000) as u32;
    cfg.disk.segment_bytes = s.range_inclusive(2_048, 256 * 1024);
    cfg
}
