//! Named Kafka-level scenarios: full brokers, Kafka clients, Jepsen's Kafka anomaly checkers
//! (see `sluice_sim::kafka`). Each is a value like the Raft-level ones: a name, why it exists,
//! and a function from a seed to a complete `KafkaConfig`. Knobs come from the seed's `Swarm`
//! stream and timelines from its `FaultPlan` stream, so a run is a pure function of its seed.
//!
//! Runs are kept short (a few simulated seconds) so a sweep of hundreds of seeds over every
//! scenario takes minutes. The consumer-group scenarios (`kafka-group-*`) are the exception:
//! a group lives on timeouts of seconds (a 10 s session, a 3 s heartbeat, a 3 s initial
//! rebalance delay), so they simulate 20-40 s of safety phase and give the liveness phase 40 s
//! (a crashed member must expire before the group settles).
//!
//! Group scenarios share these choices: `__consumer_offsets` has 4 partitions (not Kafka's
//! 50 or the broker's 16: each is a Raft group with heartbeats, and 4 keep runs fast while
//! still spreading groups over brokers); the initial rebalance delay is Kafka's 3 s in a third
//! of the seeds, 500 ms in a third and 0 in the rest (the default path, a short one, and the
//! no-delay path); members use kafka-python's 10 s session and 3 s heartbeat, a 20 s
//! rebalance timeout and a commit every second; producers keep writing acks=all throughout.

use sluice_core::rng::DetRng;
use sluice_sim::faults::{generate, FaultAction, FaultRates, Target, TimedFault};
use sluice_sim::kafka::{
    GroupTrigger, GroupWorkload, KafkaConfig, MemberAction, ProducerKind, RebalanceStep,
    TimedMemberAction,
};
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
        name: "kafka-group-coordinator-failover",
        why: "The broker coordinating the consumer group (the leader of its __consumer_offsets \
              partition) crashes or is isolated mid-rebalance: right after the join phase \
              completes, or while members are revoking and committing, as members join, \
              leave and restart. Hunts generations handed out before they are durable (and \
              handed out again after failover), commits acknowledged before they are \
              replicated, offsets a new coordinator forgets, and groups that never settle.",
        build: group_coordinator_failover,
    },
    KafkaScenario {
        name: "kafka-group-member-paused",
        why: "A group member freezes (a long GC pause) past its 10 s session timeout while \
              the others keep consuming; the group rebalances without it, and it resumes as a \
              zombie holding its old generation and positions, with explicit offset resets \
              and leader faults around it. Hunts zombie commits accepted from an old \
              generation, partitions owned twice, and a zombie that is never fenced.",
        build: group_member_paused,
    },
    KafkaScenario {
        name: "kafka-group-rebalance-storm",
        why: "Members join, leave and crash every few hundred milliseconds over a core of \
              steady members, with explicit offset resets, broker crashes and partitions; the \
              last member to go crashes just before the liveness phase. Hunts rebalances that \
              never complete, dead members that keep partitions, generations that go \
              backwards, and records skipped between one owner's commit and the next one's \
              fetch.",
        build: group_rebalance_storm,
    },
    KafkaScenario {
        name: "kafka-group-static-restart",
        why: "Static members (group.instance.id) crash and restart within their session \
              timeout, again and again, while partition leaders fail over: each that left a \
              settled group must take back its member slot and its assignment without a \
              rebalance (the generation must not move; the run counts it). Hunts static \
              rejoins that rebalance, lose the assignment, or leave the old incarnation \
              unfenced.",
        build: group_static_restart,
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

// ----- consumer groups -----

fn member_at(at_ms: u64, member: u32, action: MemberAction) -> TimedMemberAction {
    TimedMemberAction {
        at_ms,
        member,
        action,
    }
}

/// The shape the group scenarios share (see the module doc): the common cluster, two acks=all
/// producers (one idempotent) writing steadily, no self-assigned consumers (the group's
/// members are the consumers), and a group whose first `initial` members join in the first
/// second. Returns the config, the swarm stream, the fault-plan stream and the group-plan
/// stream.
fn group_base(seed: u64, members: u32, initial: u32) -> (KafkaConfig, DetRng, DetRng, DetRng) {
    let (mut cfg, mut s, plan) = base(seed);
    cfg.workload.producers = vec![
        ProducerKind {
            acks: -1,
            idempotent: true,
        },
        ProducerKind {
            acks: -1,
            idempotent: false,
        },
    ];
    cfg.workload.consumers = 0;
    cfg.workload.think_us = (2_000, 25_000);
    cfg.liveness_ms = 40_000;
    cfg.max_events = 20_000_000;
    let mut gp = stream(seed, Stream::GroupPlan);
    let mut g = GroupWorkload::new("sluice-sim-group");
    g.members = members;
    g.initial_rebalance_delay_ms = [3_000, 500, 0][s.index(3)];
    for slot in 0..initial.min(members) {
        let at = gp.range_inclusive(100, 1_000);
        g.actions.push(member_at(at, slot, MemberAction::Join));
    }
    cfg.group = Some(g);
    (cfg, s, plan, gp)
}

fn finish_group_plan(cfg: &mut KafkaConfig) {
    let safety = cfg.safety_ms;
    if let Some(g) = cfg.group.as_mut() {
        g.actions.retain(|a| a.at_ms < safety);
        g.actions.sort_by_key(|a| a.at_ms);
        g.triggers.retain(|t| t.after_ms < safety);
    }
    cfg.faults.retain(|f| f.at_ms < safety);
    cfg.faults.sort_by_key(|f| f.at_ms);
}

fn group_coordinator_failover(seed: u64) -> KafkaConfig {
    let (mut cfg, mut s, mut plan, mut gp) = group_base(seed, 4, 3);
    cfg.safety_ms = 40_000;
    // Slower failure detection than the other scenarios' 150 ms (Kafka's own takes seconds):
    // a coordinator cut off keeps serving until it notices, long enough for the members'
    // commits before revoking to reach it.
    let election = s.range_inclusive(500, 2_000);
    cfg.broker.election_timeout_ms = election;
    cfg.broker.raft_heartbeat_ms = election / 5;
    let g = cfg.group.as_mut().expect("a group");
    g.static_members = u32::from(s.coin());
    let mut actions = Vec::new();
    let mut triggers = Vec::new();
    let mut faults = Vec::new();
    let mut t = 5_000;
    let mut k = gp.range(0, 3);
    while t < cfg.safety_ms - 4_000 {
        // A rebalance: the fourth member comes or goes, or a dynamic member restarts (its old
        // incarnation stays in the group until its session ends: two rebalances). The
        // coordinator goes away mid-rebalance: right after the join phase (when a new member
        // joined, a generation handed out again would come with another membership), or as
        // the members learn of the rebalance and commit before revoking.
        let completing = match k % 3 {
            0 => {
                actions.push(member_at(t, 3, MemberAction::Join));
                true
            }
            1 => {
                actions.push(member_at(t, 3, MemberAction::Leave));
                false
            }
            _ => {
                let down_ms = gp.range_inclusive(200, 2_000);
                actions.push(member_at(t, 2, MemberAction::Restart { down_ms }));
                gp.coin()
            }
        };
        k += 1;
        if completing {
            triggers.push(GroupTrigger {
                after_ms: t,
                step: RebalanceStep::Completing,
                delay_us: gp.range_inclusive(0, 3_000),
                action: FaultAction::Crash(Target::Coordinator),
                then: Some((
                    gp.range_inclusive(200, 1_500),
                    FaultAction::Restart(Target::Crashed),
                )),
            });
        } else {
            triggers.push(GroupTrigger {
                after_ms: t,
                step: RebalanceStep::Revoking,
                delay_us: gp.range_inclusive(0, 1_000),
                action: FaultAction::Isolate(Target::Coordinator),
                then: Some((gp.range_inclusive(1_000, 3_000), FaultAction::Heal)),
            });
        }
        // Now and then the coordinator also dies outside any rebalance.
        if plan.range(0, 3) == 0 {
            let at_ms = t + plan.range_inclusive(2_500, 3_500);
            faults.push(at(at_ms, FaultAction::Crash(Target::Coordinator)));
            faults.push(at(
                at_ms + plan.range_inclusive(100, 1_000),
                FaultAction::Restart(Target::Crashed),
            ));
        }
        t += gp.range_inclusive(6_000, 10_000);
    }
    g.actions.extend(actions);
    g.triggers = triggers;
    cfg.faults = faults;
    finish_group_plan(&mut cfg);
    cfg
}

fn group_member_paused(seed: u64) -> KafkaConfig {
    let members = 3 + (seed % 2) as u32;
    let (mut cfg, _, mut plan, mut gp) = group_base(seed, members, members);
    let g = cfg.group.as_mut().expect("a group");
    let mut actions = Vec::new();
    // One or two pauses past the session timeout (10 s), of different members.
    let first = gp.range(0, u64::from(members)) as u32;
    let mut t = gp.range_inclusive(4_000, 7_000);
    let hold = gp.range_inclusive(12_000, 20_000);
    actions.push(member_at(t, first, MemberAction::Pause { ms: hold }));
    let mut end = t + hold;
    if gp.coin() {
        let second = (first + 1 + gp.range(0, u64::from(members - 1)) as u32) % members;
        t += gp.range_inclusive(2_000, 8_000);
        let hold = gp.range_inclusive(11_000, 16_000);
        actions.push(member_at(t, second, MemberAction::Pause { ms: hold }));
        end = end.max(t + hold);
    }
    // Explicit rewinds of the members' committed offsets.
    for _ in 0..gp.range_inclusive(1, 2) {
        let at_ms = gp.range_inclusive(5_000, end);
        let who = gp.range(0, u64::from(members)) as u32;
        actions.push(member_at(at_ms, who, MemberAction::Reset));
    }
    g.actions.extend(actions);
    // Leader faults of partition 0 (as kafka-leader-isolated and kafka-kip279), except while
    // a paused member's session runs out: a coordinator that takes over gives every member a
    // fresh session, so a fault there would keep the zombie in the group.
    let quiet: Vec<(u64, u64)> = g
        .actions
        .iter()
        .filter_map(|a| match a.action {
            MemberAction::Pause { .. } => Some((a.at_ms, a.at_ms + 14_000)),
            _ => None,
        })
        .collect();
    cfg.safety_ms = end + gp.range_inclusive(5_000, 8_000);
    episodes(&mut cfg, &mut plan, 2_000, |rng, t, p| {
        let hold = rng.range_inclusive(300, 1_500);
        if quiet.iter().any(|&(a, b)| t + hold >= a && t < b) {
            return 500;
        }
        if rng.coin() {
            p.push(at(t, FaultAction::Isolate(Target::Leader)));
            p.push(at(t + hold, FaultAction::Heal));
        } else {
            p.push(at(t, FaultAction::Crash(Target::Leader)));
            p.push(at(t + hold, FaultAction::Restart(Target::Crashed)));
        }
        hold + rng.range_inclusive(2_000, 5_000)
    });
    finish_group_plan(&mut cfg);
    cfg
}

fn group_rebalance_storm(seed: u64) -> KafkaConfig {
    let (mut cfg, _, mut plan, mut gp) = group_base(seed, 6, 2);
    cfg.safety_ms = 20_000;
    let g = cfg.group.as_mut().expect("a group");
    let mut actions = Vec::new();
    // Slots 0 and 1 stay; 2..6 come and go. The plan tracks who runs so each action means
    // something.
    let mut up = [false; 6];
    // The churn starts once the first generation formed: joins during the initial rebalance
    // delay each extend it (up to the rebalance timeout), as Kafka's do.
    let mut t = g.initial_rebalance_delay_ms + gp.range_inclusive(2_500, 3_500);
    let last = cfg.safety_ms - 6_000;
    while t < last {
        let slot = 2 + gp.range(0, 4) as usize;
        let action = if !up[slot] {
            up[slot] = true;
            MemberAction::Join
        } else {
            up[slot] = false;
            match gp.range(0, 10) {
                0..=5 => MemberAction::Leave,
                6..=8 => MemberAction::Crash,
                _ => {
                    up[slot] = true;
                    MemberAction::Reset
                }
            }
        };
        actions.push(member_at(t, slot as u32, action));
        t += gp.range_inclusive(300, 2_000);
    }
    // The last one to go: a member joins, and crashes just before the liveness phase, so the
    // group settles only once its session ends.
    let slot = (2..6).find(|&s| !up[s]).unwrap_or(5) as u32;
    if up[slot as usize] {
        actions.push(member_at(last, slot, MemberAction::Leave));
    }
    let joins = last + gp.range_inclusive(200, 1_000);
    actions.push(member_at(joins, slot, MemberAction::Join));
    let crash = cfg.safety_ms - gp.range_inclusive(1_000, 2_500);
    actions.push(member_at(crash, slot, MemberAction::Crash));
    g.actions.extend(actions);
    let rates = FaultRates {
        partition_every_ms: 4_000,
        partition_hold_ms: (200, 1_200),
        crash_every_ms: 5_000,
        down_ms: (50, 800),
        ..FaultRates::default()
    };
    cfg.faults = generate(&mut plan, &rates, cfg.brokers, cfg.safety_ms);
    finish_group_plan(&mut cfg);
    cfg
}

fn group_static_restart(seed: u64) -> KafkaConfig {
    let members = 3 + (seed % 2) as u32;
    let (mut cfg, _, mut plan, mut gp) = group_base(seed, members, members);
    cfg.safety_ms = 25_000;
    let g = cfg.group.as_mut().expect("a group");
    g.static_members = members;
    let mut actions = Vec::new();
    // Restarts within the session timeout: the last heartbeat is at most 3 s old when one
    // crashes, so 4 s down leaves the session 3 s to spare.
    let mut t = gp.range_inclusive(6_000, 7_000);
    while t < cfg.safety_ms - 2_000 {
        let who = gp.range(0, u64::from(members)) as u32;
        let down_ms = gp.range_inclusive(100, 4_000);
        actions.push(member_at(t, who, MemberAction::Restart { down_ms }));
        t += down_ms + gp.range_inclusive(1_000, 4_000);
    }
    g.actions.extend(actions);
    // Partition 0's leader and a follower fail over meanwhile (kafka-kip279's shape).
    episodes(&mut cfg, &mut plan, 3_000, |rng, t, p| {
        let down = rng.range_inclusive(100, 800);
        let victim = if rng.coin() {
            Target::Leader
        } else {
            Target::Follower
        };
        p.push(at(t, FaultAction::Crash(victim)));
        p.push(at(t + down, FaultAction::Restart(Target::Crashed)));
        down + rng.range_inclusive(1_500, 4_000)
    });
    finish_group_plan(&mut cfg);
    cfg
}
