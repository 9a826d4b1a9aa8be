//! Fault actions and fault plans: what the nemesis does, and when.
//!
//! A plan is data, a list of timed actions over the safety phase, so that a scenario is a value,
//! a proptest can generate and shrink a plan, and a failing plan can be written down as a
//! regression test. Targets such as "the current leader" are resolved when the action fires.
//!
//! **Append-only**: seeds and saved plans refer to these variants; add new ones at the end.

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
