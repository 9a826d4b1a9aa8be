//! Named Kafka-level scenarios: full brokers, Kafka clients, Jepsen's Kafka anomaly checkers
//! (see `sluice_sim::kafka`). Each is a value like the Raft-level ones: a name, why it exists,
//! and a function from a seed to a complete `KafkaConfig`. Knobs come from the seed's `Swarm`
//! stream and timelines from its `FaultPlan` stream, so a run is a pure function of its seed.
//!
//! Runs are kept short (a few simulated seconds) so a sweep of hundreds of seeds over every
//! scenario takes minutes.

use sluice_core::rng::DetRng;
use sluice_sim::faults::{generate, FaultAction, FaultRates, Target, TimedFault};
use sluice_sim::kafka::{KafkaConfig, ProducerKind};
use sluice_sim::seeds::{stream, Stream};

#[derive(Clone, Copy, Debug)]
pub struct KafkaScenario {
    pub name: &'static str,
    pub why: &'static str,
    pub build: fn(u64) -> KafkaConfig,
}

impl KafkaScenario {
    pub fn config(&self, seed: u64) -> KafkaConfig {
        (self.build)(seed)
    }
}

pub fn all() -> &'static [KafkaScenario] {
    SCENARIOS
}

pub fn find(name: &str) -> Option<&'static KafkaScenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

static SCENARIOS: &[KafkaScenario] = &[
    KafkaScenario {
        name: "kafka-kip101",
        why: "KIP-101's shape: a follower restarts and truncates its log to its high watermark \
              (losing its unsynced tail), and the leader dies right after, before the follower \
              caught up. Hunts truncation that removes acknowledged records, a new leader \
              elected with a shorter log than what was acknowledged, and diverging replicas.",
        build: kip101,
    },
    KafkaScenario {
        name: "kafka-kip279",
        why: "KIP-279's shape: rapid double failover, the leader crashes and its successor \
              crashes again a few hundred milliseconds later, while producers keep writing. \
              Hunts leader epochs reused or confused across quick successions, truncation to \
              the wrong offset after two changes, and high watermarks that go backwards.",
        build: kip279,
    },
    KafkaScenario {
        name: "kafka-kip966",
        why: "KIP-966's 'last replica standing': the whole cluster loses power (unsynced tails \
              lost, torn), and only some brokers come back at first; a replica is elected from \
              what it actually synced. Hunts acks=all acknowledgements given before the fsync \
              and leaders elected with logs that silently dropped acknowledged records.",
        build: kip966,
    },
    KafkaScenario {
        name: "kafka-leader-isolated",
        why: "The leader of partition 0 is cut off from every other broker while clients keep \
              producing to it and fetching from it. Hunts a stale leader acknowledging acks=all \
              writes without its followers, consumers reading data that is then truncated, and \
              producers that never find the new leader.",
        build: leader_isolated,
    },
    KafkaScenario {
        name: "kafka-broker-flapping",
        why: "One broker crashes and restarts over and over, every few hundred milliseconds. \
              Hunts recovery bugs (producer state, leader epochs and commit points rebuilt from \
              disk), fencing and unfencing races in the controller, and clients stuck on a \
              broker that keeps disappearing.",
        build: broker_flapping,
    },
    KafkaScenario {
        name: "kafka-controller-crash",
        why: "The metadata (controller) leader crashes while the topic is being created and \
              again later. Hunts a CreateTopics that half-happens (acknowledged but not \
              committed, or applied twice), brokers that never open their replicas, and \
              producer-id blocks handed out twice.",
        build: controller_crash,
    },
    KafkaScenario {
        name: "kafka-slow-leader-disk",
        why: "The leader's disk becomes 10-100 times slower for a while (a slow fsync), \
              sometimes followed by a crash with a long unsynced tail. Hunts acknowledgements \
              that do not wait for the leader's own sync, timeouts that are taken as definite \
              failures, and failover that never happens because the leader still heartbeats.",
        build: slow_leader_disk,
    },
    KafkaScenario {
        name: "kafka-swarm",
        why: "Every fault kind at once (partitions, one-way links, clogs, loss and duplication, \
              crashes, whole-cluster power loss, pauses, clock skew and jumps, slow disks, IO \
              errors, torn writes, dropped client connections) with cluster size, voters, \
              topic shape, clients and broker knobs all drawn from the seed.",
        build: swarm,
    },
];

fn at(at_ms: u64, action: FaultAction) -> TimedFault {
    TimedFault { at_ms, action }
}

/// Repeats `step` from `start` until the safety phase ends.
fn episodes(
    cfg: &mut KafkaConfig,
    rng: &mut DetRng,
    start: u64,
    mut step: impl FnMut(&mut DetRng, u64, &mut Vec<TimedFault>) -> u64,
) {
    let mut t = start;
    let mut plan = Vec::new();
    while t < cfg.safety_ms {
        t += step(rng, t, &mut plan).max(1);
    }
    plan.retain(|f| f.at_ms < cfg.safety_ms);
    plan.sort_by_key(|f| f.at_ms);
    cfg.faults = plan;
}

/// The common shape: 3 or 5 brokers (5 with 3 voters and 2 followers of the metadata log in
/// some seeds), 3-6 partitions of replication factor 3, a mix of producers and consumers.
fn base(seed: u64) -> (KafkaConfig, DetRng, DetRng) {
    let mut s = stream(seed, Stream::Swarm);
    let brokers = if s.coin() { 3 } else { 5 };
    let mut cfg = KafkaConfig::new(seed, brokers);
    cfg.voters = if brokers == 5 && s.coin() { 3 } else { brokers };
    cfg.workload.partitions = s.range_inclusive(3, 6) as u32;
    let acks: [i16; 3] = [-1, 1, 0];
    cfg.workload.producers = vec![
        ProducerKind {
            acks: -1,
            idempotent: true,
        },
        ProducerKind {
            acks: -1,
            idempotent: s.coin(),
        },
        ProducerKind {
            acks: acks[s.index(3)],
            idempotent: false,
        },
    ];
    cfg.workload.consumers = s.range_inclusive(1, 2) as u32;
    cfg.safety_ms = 2_500;
    (cfg, s, stream(seed, Stream::FaultPlan))
}

fn kip101(seed: u64) -> KafkaConfig {
    let (mut cfg, _, mut plan) = base(seed);
    cfg.workload.think_us = (500, 5_000);
    cfg.disk.sync_us_min = 300;
    cfg.disk.sync_us_max = 3_000;
    episodes(&mut cfg, &mut plan, 400, |rng, t, p| {
        let down = rng.range_inclusive(20, 200);
        let gap = rng.range_inclusive(0, 40);
        p.push(at(t, FaultAction::Crash(Target::Follower)));
        p.push(at(t + down, FaultAction::Restart(Target::Crashed)));
        p.push(at(t + down + gap, FaultAction::Crash(Target::Leader)));
        let back = rng.range_inclusive(100, 600);
        p.push(at(
            t + down + gap + back,
            FaultAction::Restart(Target::Crashed),
        ));
        down + gap + back + rng.range_inclusive(200, 700)
    });
    cfg
}

fn kip279(seed: u64) -> KafkaConfig {
    let (mut cfg, _, mut plan) = base(seed);
    cfg.workload.think_us = (500, 5_000);
    episodes(&mut cfg, &mut plan, 400, |rng, t, p| {
        let second = rng.range_inclusive(150, 500);
        p.push(at(t, FaultAction::Crash(Target::Leader)));
        p.push(at(t + second, FaultAction::Crash(Target::Leader)));
        let back = rng.range_inclusive(20, 300);
        p.push(at(t + second + back, FaultAction::Restart(Target::Crashed)));
        p.push(at(
            t + second + back + rng.range_inclusive(50, 400),
            FaultAction::Restart(Target::Crashed),
        ));
        second + back + rng.range_inclusive(500, 1_000)
    });
    cfg
}

fn kip966(seed: u64) -> KafkaConfig {
    let (mut cfg, _, mut plan) = base(seed);
    cfg.workload.think_us = (200, 3_000);
    cfg.disk.sync_us_min = 500;
    cfg.disk.sync_us_max = 4_000;
    episodes(&mut cfg, &mut plan, 600, |rng, t, p| {
        let first = rng.range_inclusive(10, 200);
        let alone = rng.range_inclusive(300, 1_000);
        p.push(at(t, FaultAction::CrashAll));
        p.push(at(t + first, FaultAction::Restart(Target::Crashed)));
        p.push(at(t + first, FaultAction::Restart(Target::Crashed)));
        p.push(at(t + first + alone, FaultAction::RestartAll));
        first + alone + rng.range_inclusive(400, 1_000)
    });
    cfg
}

fn leader_isolated(seed: u64) -> KafkaConfig {
    let (mut cfg, _, mut plan) = base(seed);
    episodes(&mut cfg, &mut plan, 400, |rng, t, p| {
        let hold = rng.range_inclusive(300, 1_500);
        p.push(at(t, FaultAction::Isolate(Target::Leader)));
        p.push(at(t + hold, FaultAction::Heal));
        hold + rng.range_inclusive(200, 800)
    });
    cfg
}

fn broker_flapping(seed: u64) -> KafkaConfig {
    let (mut cfg, mut s, mut plan) = base(seed);
    let victim = Target::Node(s.range(0, u64::from(cfg.brokers)) as u32);
    episodes(&mut cfg, &mut plan, 300, |rng, t, p| {
        let down = rng.range_inclusive(30, 300);
        p.push(at(t, FaultAction::Crash(victim)));
        p.push(at(t + down, FaultAction::Restart(victim)));
        down + rng.range_inclusive(100, 500)
    });
    cfg
}

fn controller_crash(seed: u64) -> KafkaConfig {
    let (mut cfg, _, mut plan) = base(seed);
    let mut faults = Vec::new();
    let first = plan.range_inclusive(150, 600);
    let down = plan.range_inclusive(50, 400);
    faults.push(at(first, FaultAction::Crash(Target::Controller)));
    faults.push(at(first + down, FaultAction::Restart(Target::Crashed)));
    let second = first + down + plan.range_inclusive(300, 1_200);
    faults.push(at(second, FaultAction::Crash(Target::Controller)));
    faults.push(at(
        second + plan.range_inclusive(50, 400),
        FaultAction::Restart(Target::Crashed),
    ));
    faults.retain(|f| f.at_ms < cfg.safety_ms);
    cfg.faults = faults;
    cfg
}

fn slow_leader_disk(seed: u64) -> KafkaConfig {
    let (mut cfg, _, mut plan) = base(seed);
    episodes(&mut cfg, &mut plan, 300, |rng, t, p| {
        let hold = rng.range_inclusive(200, 1_200);
        let factor = rng.range_inclusive(10, 100);
        // Slow the disk of the node that leads now, by id, so restoring hits the same disk.
        p.push(at(
            t,
            FaultAction::SlowDisk {
                target: Target::Leader,
                factor,
            },
        ));
        if rng.range(0, 3) == 0 {
            p.push(at(
                t + rng.range_inclusive(50, hold),
                FaultAction::Crash(Target::Leader),
            ));
            p.push(at(t + hold, FaultAction::Restart(Target::Crashed)));
        }
        for n in 0..5 {
            p.push(at(
                t + hold,
                FaultAction::SlowDisk {
                    target: Target::Node(n),
                    factor: 1,
                },
            ));
        }
        hold + rng.range_inclusive(200, 800)
    });
    cfg
}

fn swarm(seed: u64) -> KafkaConfig {
    let (mut cfg, mut s, mut plan) = base(seed);
    let election = s.range_inclusive(100, 300);
    cfg.broker.election_timeout_ms = election;
    cfg.broker.raft_heartbeat_ms = (election / s.range_inclusive(3, 6)).max(1);
    cfg.broker.segment_bytes = s.range_inclusive(4_096, 64 * 1024);
    cfg.workload.replication_factor = if s.range(0, 4) == 0 { 1 } else { 3 };
    cfg.workload.consumers = s.range_inclusive(1, 3) as u32;
    cfg.workload.think_us = (0, s.range_inclusive(2_000, 20_000));
    cfg.workload.batch_records = (1, s.range_inclusive(1, 5));
    cfg.workload.max_in_flight = s.range_inclusive(1, 5) as u32;
    cfg.workload.request_timeout_ms = s.range_inclusive(300, 1_500);

    cfg.network.delay_min_us = s.range_inclusive(10, 1_000);
    cfg.network.delay_max_us = cfg.network.delay_min_us + s.range_inclusive(0, 10_000);
    cfg.network.tail_ppm = s.range_inclusive(0, 50_000) as u32;
    cfg.network.tail_max_us = s.range_inclusive(0, 100_000);
    let chaos = |s: &mut DetRng, max: u64| {
        if s.coin() {
            s.range_inclusive(0, max) as u32
        } else {
            0
        }
    };
    cfg.network.loss_ppm = chaos(&mut s, 50_000);
    cfg.network.dup_ppm = chaos(&mut s, 50_000);
    cfg.network.client_drop_ppm = chaos(&mut s, 10_000);

    cfg.disk.write_us_min = s.range_inclusive(1, 100);
    cfg.disk.write_us_max = cfg.disk.write_us_min + s.range_inclusive(0, 500);
    cfg.disk.sync_us_min = s.range_inclusive(10, 2_000);
    cfg.disk.sync_us_max = cfg.disk.sync_us_min + s.range_inclusive(0, 5_000);
    cfg.disk.torn_writes = s.range(0, 4) != 0;
    cfg.disk.garbage_ppm = s.range_inclusive(0, 1_000_000) as u32;
    cfg.disk.io_error_ppm = if s.range(0, 3) == 0 {
        s.range_inclusive(1, 500) as u32
    } else {
        0
    };

    cfg.clock.drift_ppm_max = [0, 200, 20_000, 200_000][s.index(4)];
    cfg.clock.wall_skew_ms_max = s.range_inclusive(0, 60_000) as i64;
    cfg.safety_ms = s.range_inclusive(1_500, 3_500);

    let maybe = |s: &mut DetRng, lo: u64, hi: u64| {
        if s.coin() {
            s.range_inclusive(lo, hi)
        } else {
            0
        }
    };
    let rates = FaultRates {
        partition_every_ms: maybe(&mut s, 300, 1_500),
        partition_hold_ms: (50, s.range_inclusive(100, 1_500)),
        crash_every_ms: maybe(&mut s, 300, 1_500),
        down_ms: (10, s.range_inclusive(50, 800)),
        pause_every_ms: maybe(&mut s, 400, 2_000),
        pause_ms: (10, s.range_inclusive(50, 800)),
        clog_every_ms: maybe(&mut s, 200, 1_500),
        clog_ms: (10, s.range_inclusive(20, 500)),
        clock_every_ms: maybe(&mut s, 400, 2_000),
        slow_disk_every_ms: maybe(&mut s, 400, 2_000),
        slow_disk_ms: (10, s.range_inclusive(50, 800)),
        crash_all_every_ms: if s.range(0, 5) == 0 {
            s.range_inclusive(1_000, 3_000)
        } else {
            0
        },
    };
    cfg.faults = generate(&mut plan, &rates, cfg.brokers, cfg.safety_ms);
    cfg
}
