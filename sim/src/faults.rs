//! Fault actions and fault plans: what the nemesis does, and when.
//!
//! A plan is data, a list of timed actions over the safety phase, so that a scenario is a value,
//! a proptest can generate and shrink a plan, and a failing plan can be written down as a
//! regression test. Targets such as "the current leader" are resolved when the action fires.
//!
//! **Append-only**: seeds and saved plans refer to these variants; add new ones at the end.

use crate::trace::Record;
use sluice_core::rng::DetRng;
use std::fmt;

/// Which node an action hits, resolved when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Node(u32),
    /// The leader with the highest term among running nodes (a random running node if none).
    Leader,
    /// A running node that is not the leader.
    Follower,
    /// Any running node.
    Random,
    /// A crashed node, if any.
    Crashed,
    /// The metadata group's leader (the Kafka controller); in a Raft-level run, the leader.
    Controller,
    /// The coordinator of the run's consumer group (the serving leader of its
    /// `__consumer_offsets` partition); nobody if there is none. In a Raft-level run, the
    /// leader.
    Coordinator,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// Cut every peer link of the node, both ways.
    Isolate(Target),
    /// Split the cluster: the target and `size - 1` other nodes on one side, the rest on the other.
    Split {
        target: Target,
        size: u32,
    },
    /// The node's outbound (`inbound == false`) or inbound peer links go dark: a one-way partition.
    OneWay {
        target: Target,
        inbound: bool,
    },
    /// Remove every partition and clog.
    Heal,
    Crash(Target),
    Restart(Target),
    CrashAll,
    RestartAll,
    Pause(Target),
    Resume(Target),
    /// Hold all traffic between two nodes for `ms`.
    Clog {
        a: Target,
        b: Target,
        ms: u64,
    },
    /// Set the node's monotonic clock rate deviation (ppm; -500000..=1000000).
    ClockRate {
        target: Target,
        ppm: i64,
    },
    /// Jump the node's wall clock by `ms`.
    WallJump {
        target: Target,
        ms: i64,
    },
    /// Multiply the node's disk latencies by `factor` (1 restores).
    SlowDisk {
        target: Target,
        factor: u64,
    },
    /// Change peer-link loss and duplication rates.
    NetworkRates {
        loss_ppm: u32,
        dup_ppm: u32,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimedFault {
    pub at_ms: u64,
    pub action: FaultAction,
}

impl fmt::Display for TimedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}ms {:?}", self.at_ms, self.action)
    }
}

/// How often each fault kind strikes in a generated plan; a mean interval of 0 disables it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct FaultRates {
    pub partition_every_ms: u64,
    pub partition_hold_ms: (u64, u64),
    pub crash_every_ms: u64,
    pub down_ms: (u64, u64),
    pub pause_every_ms: u64,
    pub pause_ms: (u64, u64),
    pub clog_every_ms: u64,
    pub clog_ms: (u64, u64),
    pub clock_every_ms: u64,
    pub slow_disk_every_ms: u64,
    pub slow_disk_ms: (u64, u64),
    pub crash_all_every_ms: u64,
}

fn draw(rng: &mut DetRng, (lo, hi): (u64, u64)) -> u64 {
    rng.range_inclusive(lo, hi.max(lo))
}

/// Arrival times of a Poisson-like process with mean interval `every_ms` over `[0, until_ms)`.
fn arrivals(rng: &mut DetRng, every_ms: u64, until_ms: u64) -> Vec<u64> {
    let mut out = Vec::new();
    if every_ms == 0 {
        return out;
    }
    let mut t = 0;
    loop {
        t += rng.range_inclusive(every_ms / 4, every_ms * 7 / 4).max(1);
        if t >= until_ms {
            return out;
        }
        out.push(t);
    }
}

/// Builds a timeline from rates. Every fault it starts it also ends within the safety phase
/// (the liveness phase heals whatever is left anyway).
pub fn generate(
    rng: &mut DetRng,
    rates: &FaultRates,
    nodes: u32,
    until_ms: u64,
) -> Vec<TimedFault> {
    let mut plan = Vec::new();
    let mut push = |at_ms: u64, action: FaultAction| plan.push(TimedFault { at_ms, action });
    let targets = [Target::Leader, Target::Follower, Target::Random];
    for at in arrivals(rng, rates.partition_every_ms, until_ms) {
        let target = targets[rng.index(targets.len())];
        let action = match rng.range(0, 3) {
            0 => FaultAction::Isolate(target),
            1 => FaultAction::Split {
                target,
                size: rng.range_inclusive(1, u64::from(nodes / 2).max(1)) as u32,
            },
            _ => FaultAction::OneWay {
                target,
                inbound: rng.coin(),
            },
        };
        push(at, action);
        push(at + draw(rng, rates.partition_hold_ms), FaultAction::Heal);
    }
    for at in arrivals(rng, rates.crash_every_ms, until_ms) {
        push(at, FaultAction::Crash(targets[rng.index(targets.len())]));
        push(
            at + draw(rng, rates.down_ms),
            FaultAction::Restart(Target::Crashed),
        );
    }
    for at in arrivals(rng, rates.crash_all_every_ms, until_ms) {
        push(at, FaultAction::CrashAll);
        push(at + draw(rng, rates.down_ms), FaultAction::RestartAll);
    }
    for at in arrivals(rng, rates.pause_every_ms, until_ms) {
        let node = rng.range(0, u64::from(nodes)) as u32;
        push(at, FaultAction::Pause(Target::Node(node)));
        push(
            at + draw(rng, rates.pause_ms),
            FaultAction::Resume(Target::Node(node)),
        );
    }
    for at in arrivals(rng, rates.clog_every_ms, until_ms) {
        let ms = draw(rng, rates.clog_ms);
        push(
            at,
            FaultAction::Clog {
                a: targets[rng.index(3)],
                b: Target::Random,
                ms,
            },
        );
    }
    for at in arrivals(rng, rates.clock_every_ms, until_ms) {
        let target = targets[rng.index(targets.len())];
        if rng.coin() {
            let ppm = rng.range_inclusive(0, 1_500_000) as i64 - 500_000;
            push(at, FaultAction::ClockRate { target, ppm });
        } else {
            let ms = rng.range_inclusive(0, 120_000) as i64 - 60_000;
            push(at, FaultAction::WallJump { target, ms });
        }
    }
    for at in arrivals(rng, rates.slow_disk_every_ms, until_ms) {
        let node = Target::Node(rng.range(0, u64::from(nodes)) as u32);
        push(
            at,
            FaultAction::SlowDisk {
                target: node,
                factor: rng.range_inclusive(5, 100),
            },
        );
        push(
            at + draw(rng, rates.slow_disk_ms),
            FaultAction::SlowDisk {
                target: node,
                factor: 1,
            },
        );
    }
    plan.sort_by_key(|f| f.at_ms);
    plan
}

/// What a simulation offers the one fault applier ([`apply`]): its nodes, network, trace and
/// fault randomness. The Raft-level and the Kafka-level simulations both implement it, so a
/// fault means the same thing (and leaves the same trace) in both.
pub trait FaultWorld {
    fn now(&self) -> u64;
    fn node_count(&self) -> usize;
    /// The node a target names right now, if any.
    fn resolve(&mut self, target: Target) -> Option<usize>;
    fn net(&mut self) -> &mut crate::network::Network;
    fn fault_rng(&mut self) -> &mut DetRng;
    fn record(&mut self, record: Record);
    fn crash(&mut self, i: usize);
    fn restart(&mut self, i: usize);
    fn pause(&mut self, i: usize);
    fn resume(&mut self, i: usize);
    fn set_clock_rate(&mut self, i: usize, ppm: i64);
    fn jump_wall_clock(&mut self, i: usize, ms: i64);
    fn slow_disk(&mut self, i: usize, factor: u64);
    /// Node `i` is about to be cut off, crashed or paused (a hook for failover timing).
    fn disrupting(&mut self, _i: usize) {}
}

/// Performs one fault action on a simulation.
pub fn apply(w: &mut impl FaultWorld, action: FaultAction) {
    const MS: u64 = 1_000_000;
    let n = w.node_count();
    let fault = |text: &'static str, node: usize, arg: i64| Record::Fault {
        text,
        node: node as u32 + 1,
        arg,
    };
    let now = w.now();
    match action {
        FaultAction::Isolate(t) => {
            let Some(i) = w.resolve(t) else { return };
            w.disrupting(i);
            for j in 0..n {
                w.net().set_blocked(i, j, true);
                w.net().set_blocked(j, i, true);
            }
            w.record(fault("isolate", i, 0));
        }
        FaultAction::Split { target, size } => {
            let Some(i) = w.resolve(target) else {
                return;
            };
            let mut side = vec![false; n];
            side[i] = true;
            let mut others: Vec<usize> = (0..n).filter(|&j| j != i).collect();
            for _ in 1..size.max(1) {
                if others.is_empty() {
                    break;
                }
                let k = w.fault_rng().index(others.len());
                side[others.swap_remove(k)] = true;
            }
            // The minority side loses its leaders.
            let minority = side.iter().filter(|s| **s).count() * 2 < n;
            for (j, &on) in side.iter().enumerate() {
                if on == minority {
                    w.disrupting(j);
                }
            }
            for a in 0..n {
                for b in 0..n {
                    if side[a] != side[b] {
                        w.net().set_blocked(a, b, true);
                    }
                }
            }
            w.record(fault("split", i, i64::from(size)));
        }
        FaultAction::OneWay { target, inbound } => {
            let Some(i) = w.resolve(target) else {
                return;
            };
            w.disrupting(i);
            for j in 0..n {
                if inbound {
                    w.net().set_blocked(j, i, true);
                } else {
                    w.net().set_blocked(i, j, true);
                }
            }
            let text = if inbound {
                "one-way: inbound cut"
            } else {
                "one-way: outbound cut"
            };
            w.record(fault(text, i, 0));
        }
        FaultAction::Heal => {
            w.net().heal();
            w.record(Record::Fault {
                text: "heal",
                node: 0,
                arg: 0,
            });
        }
        FaultAction::Crash(t) => {
            if let Some(i) = w.resolve(t) {
                w.disrupting(i);
                w.crash(i);
            }
        }
        FaultAction::Restart(t) => {
            if let Some(i) = w.resolve(t) {
                w.restart(i);
            }
        }
        FaultAction::CrashAll => {
            for i in 0..n {
                w.disrupting(i);
                w.crash(i);
            }
        }
        FaultAction::RestartAll => (0..n).for_each(|i| w.restart(i)),
        FaultAction::Pause(t) => {
            if let Some(i) = w.resolve(t) {
                w.disrupting(i);
                w.pause(i);
            }
        }
        FaultAction::Resume(t) => {
            if let Some(i) = w.resolve(t) {
                w.resume(i);
            }
        }
        FaultAction::Clog { a, b, ms } => {
            let (Some(i), Some(j)) = (w.resolve(a), w.resolve(b)) else {
                return;
            };
            if i != j {
                w.net().clog(i, j, now + ms * MS);
                w.record(fault("clog", i, j as i64 + 1));
            }
        }
        FaultAction::ClockRate { target, ppm } => {
            let Some(i) = w.resolve(target) else {
                return;
            };
            w.set_clock_rate(i, ppm);
            w.record(fault("clock rate ppm", i, ppm));
        }
        FaultAction::WallJump { target, ms } => {
            let Some(i) = w.resolve(target) else {
                return;
            };
            w.jump_wall_clock(i, ms);
            w.record(fault("wall clock jump ms", i, ms));
        }
        FaultAction::SlowDisk { target, factor } => {
            let Some(i) = w.resolve(target) else {
                return;
            };
            w.slow_disk(i, factor.max(1));
            w.record(fault("disk slow factor", i, factor as i64));
        }
        FaultAction::NetworkRates { loss_ppm, dup_ppm } => {
            w.net().params.loss_ppm = loss_ppm;
            w.net().params.dup_ppm = dup_ppm;
            w.record(Record::Fault {
                text: "network loss/dup ppm",
                node: 0,
                arg: i64::from(loss_ppm),
            });
        }
    }
}
