//! A checker that has never caught anything proves nothing. For every Kafka-level checker, a
//! test plants a bug (in a broker, a simulated client or the simulated disk), enables that
//! checker alone, and requires it to report a violation within a bounded seed search, while
//! the same seed passes without the bug.
//!
//! | checker              | planted bug                                  | where   |
//! |----------------------|----------------------------------------------|---------|
//! | lost-write           | acks=all answered at the leader's append     | broker  |
//! | unseen               | acks=all answered at the leader's append     | broker  |
//! | duplicate            | followers forget idempotent producer state   | broker  |
//! | inconsistent-offsets | fetch serves above the high watermark        | broker  |
//! | hw-monotonic         | a new leader serves before its term commits  | broker  |
//! | aborted-read         | NOT_LEADER_OR_FOLLOWER taken as definite     | producer|
//! | nonmonotonic-send    | a new batch reuses the previous sequence     | producer|
//! | nonmonotonic-poll    | a consumer rewinds without a seek            | consumer|
//! | poll-skip            | a consumer skips an offset                   | consumer|
//! | leader-per-epoch     | the disk forgets hard-state renames          | disk    |
//!
//! No broker bug can make a consumer skip or rewind, or a producer reuse a sequence or
//! misread an error, so those checkers get client-side bugs; no broker bug can elect two
//! leaders in one Raft term, so `leader-per-epoch` gets a lying disk.
//!
//! The consumer-group checkers, each with a planted coordinator bug:
//!
//! | checker                     | planted bug                                          | scenario                          |
//! |-----------------------------|------------------------------------------------------|-----------------------------------|
//! | group-exclusive-ownership   | neither join nor assignment written (rebalance lost) | kafka-group-coordinator-failover  |
//! | group-generation-monotonic  | a completed join answered before it is written       | kafka-group-coordinator-failover  |
//! | group-commit-monotonic      | commits accepted from any generation (a zombie's)    | kafka-group-member-paused         |
//! | group-commit-monotonic      | commits answered before they are replicated          | kafka-group-coordinator-failover  |
//! | group-stable-after-liveness | member sessions never expire                         | kafka-group-rebalance-storm       |
//! | group-at-least-once         | OffsetFetch one past the committed offset            | kafka-group-member-paused         |
//!
//! A join answered before it is written cannot put one partition in two members' hands in one
//! generation: the assignment is written (with its generation) before anyone receives it, so
//! no coordinator can hand that generation out again afterwards. Exclusive ownership gets the
//! stronger planted bug where the assignment is not written either.

use sluice_core::broker::BrokerBug;
use sluice_scenarios::kafka::find;
use sluice_sim::checkers::{CheckerKind, CheckerSet};
use sluice_sim::kafka::{KafkaBug, KafkaConfig, KafkaSim};

/// Runs `build(seed)` with `bug` and only `checker` over `seeds`; the first seed where the
/// checker reports must pass without the bug (all checkers on).
fn caught(
    bug: KafkaBug,
    checker: CheckerKind,
    build: impl Fn(u64) -> KafkaConfig,
    seeds: std::ops::Range<u64>,
) -> u64 {
    for seed in seeds.clone() {
        let mut cfg = build(seed);
        cfg.bug = Some(bug);
        cfg.checkers = CheckerSet::only(checker);
        let r = KafkaSim::new(cfg).expect("valid").run();
        if r.verdict.checker() == Some(checker) {
            eprintln!("seed {seed}: {}", r.verdict);
            let clean = KafkaSim::new(build(seed)).expect("valid").run();
            assert!(
                clean.verdict.is_pass(),
                "seed {seed} fails even without {bug:?}: {}",
                clean.verdict
            );
            return seed;
        }
    }
    panic!("{} never caught {bug:?} in seeds {seeds:?}", checker.name());
}

fn scenario(name: &str) -> impl Fn(u64) -> KafkaConfig {
    let s = find(name).expect("scenario exists");
    move |seed| s.config(seed)
}

#[test]
fn lost_write_catches_acks_all_answered_at_the_leaders_append() {
    caught(
        KafkaBug::Broker(BrokerBug::AckAllAtLeaderAppend),
        CheckerKind::LostWrite,
        scenario("kafka-leader-isolated"),
        0..20,
    );
}

#[test]
fn unseen_catches_acks_all_answered_at_the_leaders_append() {
    caught(
        KafkaBug::Broker(BrokerBug::AckAllAtLeaderAppend),
        CheckerKind::Unseen,
        scenario("kafka-leader-isolated"),
        0..20,
    );
}

#[test]
fn duplicate_catches_followers_that_forget_producer_state() {
    caught(
        KafkaBug::Broker(BrokerBug::ForgetReplicatedProducerState),
        CheckerKind::Duplicate,
        scenario("kafka-kip279"),
        0..10,
    );
}

#[test]
fn inconsistent_offsets_catches_reads_above_the_high_watermark() {
    caught(
        KafkaBug::Broker(BrokerBug::ReadAboveHighWatermark),
        CheckerKind::InconsistentOffsets,
        scenario("kafka-leader-isolated"),
        0..10,
    );
}

#[test]
fn aborted_read_catches_not_leader_taken_as_a_definite_failure() {
    caught(
        KafkaBug::ProducerTreatsNotLeaderAsDefinite,
        CheckerKind::AbortedRead,
        scenario("kafka-kip279"),
        0..20,
    );
}

#[test]
fn nonmonotonic_send_catches_a_reused_sequence() {
    caught(
        KafkaBug::ProducerReusesSequence,
        CheckerKind::NonmonotonicSend,
        scenario("kafka-broker-flapping"),
        0..5,
    );
}

#[test]
fn nonmonotonic_poll_catches_a_consumer_that_rewinds_without_a_seek() {
    caught(
        KafkaBug::ConsumerRewindsWithoutSeek,
        CheckerKind::NonmonotonicPoll,
        scenario("kafka-broker-flapping"),
        0..5,
    );
}

#[test]
fn poll_skip_catches_a_consumer_that_skips_an_offset() {
    caught(
        KafkaBug::ConsumerSkipsOffset,
        CheckerKind::PollSkip,
        scenario("kafka-kip279"),
        0..20,
    );
}

/// A new leader that serves before its term commits exposes the high watermark it knew as a
/// follower. To see it go backwards: the old leader's outbound links die right after it
/// advanced its high watermark (so followers never learn the last advance) while consumers
/// keep reading from it; a follower takes over, and slow syncs keep its first commit (of its
/// no-op) tens of milliseconds away, a window eager consumers fall into.
fn leader_mute_slow_syncs(seed: u64) -> KafkaConfig {
    use sluice_sim::faults::{FaultAction, Target, TimedFault};
    let mut cfg = find("kafka-leader-isolated").expect("exists").config(seed);
    let mut rng = sluice_core::rng::DetRng::with_stream(seed, 101);
    let mut plan = Vec::new();
    let mut t = 400;
    while t < cfg.safety_ms {
        plan.push(TimedFault {
            at_ms: t,
            action: FaultAction::OneWay {
                target: Target::Leader,
                inbound: false,
            },
        });
        let hold = rng.range_inclusive(300, 800);
        plan.push(TimedFault {
            at_ms: t + hold,
            action: FaultAction::Heal,
        });
        t += hold + rng.range_inclusive(100, 400);
    }
    plan.retain(|f| f.at_ms < cfg.safety_ms);
    cfg.faults = plan;
    cfg.disk.sync_us_min = 10_000;
    cfg.disk.sync_us_max = 40_000;
    cfg.workload.fetch_max_wait_ms = 10;
    cfg.workload.retry_backoff_ms = 5;
    cfg.workload.consumers = 3;
    cfg
}

#[test]
fn hw_monotonic_catches_a_new_leader_serving_before_its_term_commits() {
    caught(
        KafkaBug::Broker(BrokerBug::ServeBeforeTermCommit),
        CheckerKind::HighWatermarkMonotonic,
        leader_mute_slow_syncs,
        0..40,
    );
}

/// Two leaders in one term need a voter that votes twice: it must crash and restart (losing
/// its vote to the lying disk) while two candidates are collecting votes. So: the leader of
/// partition 0 crashes, and for the next few hundred milliseconds brokers crash and restart
/// within a millisecond or two of each other, over and over.
fn elections_with_rapid_restarts(seed: u64) -> KafkaConfig {
    use sluice_sim::faults::{FaultAction, Target, TimedFault};
    let mut cfg = find("kafka-broker-flapping").expect("exists").config(seed);
    let mut rng = sluice_core::rng::DetRng::with_stream(seed, 100);
    let mut plan = Vec::new();
    let mut t = 400;
    while t < cfg.safety_ms {
        plan.push(TimedFault {
            at_ms: t,
            action: FaultAction::Crash(Target::Leader),
        });
        let mut k = t + rng.range_inclusive(5, 40);
        for _ in 0..rng.range_inclusive(10, 40) {
            plan.push(TimedFault {
                at_ms: k,
                action: FaultAction::Crash(Target::Random),
            });
            plan.push(TimedFault {
                at_ms: k + rng.range_inclusive(0, 2),
                action: FaultAction::Restart(Target::Crashed),
            });
            k += rng.range_inclusive(1, 12);
        }
        plan.push(TimedFault {
            at_ms: k + 20,
            action: FaultAction::RestartAll,
        });
        t = k + 20 + rng.range_inclusive(100, 400);
    }
    plan.retain(|f| f.at_ms < cfg.safety_ms);
    plan.sort_by_key(|f| f.at_ms);
    cfg.faults = plan;
    cfg
}

#[test]
fn leader_per_epoch_catches_a_disk_that_forgets_votes() {
    caught(
        KafkaBug::DiskForgetsHardState,
        CheckerKind::LeaderPerEpoch,
        elections_with_rapid_restarts,
        0..60,
    );
}

#[test]
fn group_exclusive_ownership_catches_a_rebalance_that_was_never_written() {
    caught(
        KafkaBug::Broker(BrokerBug::GroupRebalanceNotWritten),
        CheckerKind::GroupExclusiveOwnership,
        scenario("kafka-group-coordinator-failover"),
        0..10,
    );
}

#[test]
fn group_generation_monotonic_catches_a_join_answered_before_it_is_written() {
    caught(
        KafkaBug::Broker(BrokerBug::GroupJoinNotWritten),
        CheckerKind::GroupGenerationMonotonic,
        scenario("kafka-group-coordinator-failover"),
        0..20,
    );
}

#[test]
fn group_commit_monotonic_catches_a_zombie_commit_from_an_old_generation() {
    caught(
        KafkaBug::Broker(BrokerBug::GroupCommitFromAnyGeneration),
        CheckerKind::GroupCommitMonotonic,
        scenario("kafka-group-member-paused"),
        0..10,
    );
}

#[test]
fn group_commit_monotonic_catches_a_commit_answered_before_it_is_replicated() {
    caught(
        KafkaBug::Broker(BrokerBug::GroupCommitBeforeReplicated),
        CheckerKind::GroupCommitMonotonic,
        scenario("kafka-group-coordinator-failover"),
        0..20,
    );
}

#[test]
fn group_stable_after_liveness_catches_members_that_never_expire() {
    caught(
        KafkaBug::Broker(BrokerBug::GroupNoSessionExpiry),
        CheckerKind::GroupStableAfterLiveness,
        scenario("kafka-group-rebalance-storm"),
        0..10,
    );
}

#[test]
fn group_at_least_once_catches_an_offset_fetch_one_past_the_commit() {
    caught(
        KafkaBug::Broker(BrokerBug::GroupFetchOffsetOffByOne),
        CheckerKind::GroupAtLeastOnce,
        scenario("kafka-group-member-paused"),
        0..10,
    );
}
