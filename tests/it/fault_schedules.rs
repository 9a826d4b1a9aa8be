//! Property tests over fault timelines: a plan is a `Vec` of timed actions, so when a property
//! fails, proptest shrinks it towards the fewest, simplest actions that still fail.

use crate::support::run;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestError, TestRunner};
use sluice_core::raft::Bug;
use sluice_sim::faults::{FaultAction, Target, TimedFault};
use sluice_sim::SimConfig;

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        Just(Target::Leader),
        Just(Target::Follower),
        Just(Target::Random),
        (0u32..3).prop_map(Target::Node),
    ]
}

fn action() -> impl Strategy<Value = FaultAction> {
    prop_oneof![
        Just(FaultAction::Heal),
        target().prop_map(FaultAction::Isolate),
        (target(), any::<bool>())
            .prop_map(|(target, inbound)| FaultAction::OneWay { target, inbound }),
        target().prop_map(FaultAction::Crash),
        Just(FaultAction::Restart(Target::Crashed)),
        Just(FaultAction::CrashAll),
        Just(FaultAction::RestartAll),
        target().prop_map(FaultAction::Pause),
        (0u32..3).prop_map(|n| FaultAction::Resume(Target::Node(n))),
        (target(), -500_000i64..1_000_000)
            .prop_map(|(target, ppm)| FaultAction::ClockRate { target, ppm }),
    ]
}

fn plan() -> impl Strategy<Value = Vec<TimedFault>> {
    proptest::collection::vec((0u64..3_000, action()), 0..12).prop_map(|mut v| {
        v.sort_by_key(|(at, _)| *at);
        v.into_iter()
            .map(|(at_ms, action)| TimedFault { at_ms, action })
            .collect()
    })
}

fn config(faults: Vec<TimedFault>, bug: Option<Bug>) -> SimConfig {
    let mut cfg = SimConfig::new(11, 3);
    cfg.safety_ms = 3_000;
    cfg.workload.clients = 4;
    cfg.workload.think_us = (0, 300);
    cfg.faults = faults;
    cfg.raft.bug = bug;
    cfg
}

proptest! {
    #![proptest_config(Config { cases: 48, failure_persistence: None, max_shrink_iters: 2_000, ..Config::default() })]

    #[test]
    fn any_fault_timeline_keeps_raft_safe_and_live(faults in plan()) {
        let r = run(config(faults, None));
        prop_assert!(r.verdict.is_pass(), "{}\n{}", r.verdict, r.trace_tail.join("\n"));
    }
}

/// With acknowledgements sent before fsync, proptest finds a failing timeline and shrinks it to
/// a handful of actions, which is the point of making fault plans data. The proptest seed is
/// fixed and shrinking bounded, so this test takes the same (short) time on every run: with a
/// random seed an unlucky first failure took five minutes to shrink.
#[test]
fn shrinking_finds_a_minimal_fault_timeline_for_a_planted_bug() {
    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(7),
        max_shrink_iters: 150,
        ..Config::default()
    });
    let result = runner.run(&plan(), |faults| {
        let r = run(config(faults, Some(Bug::AckBeforeSync)));
        prop_assert!(r.verdict.is_pass(), "{}", r.verdict);
        Ok(())
    });
    match result {
        Err(TestError::Fail(reason, minimal)) => {
            assert!(
                minimal.len() <= 4,
                "shrunk timeline should be tiny, got {} actions: {minimal:?} ({reason})",
                minimal.len()
            );
            assert!(
                minimal
                    .iter()
                    .any(|f| matches!(f.action, FaultAction::Crash(_) | FaultAction::CrashAll)),
                "losing unsynced acknowledged writes needs a crash: {minimal:?}"
            );
        }
        other => panic!("the planted bug was not found: {other:?}"),
    }
}
