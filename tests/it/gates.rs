//! The verdicts other than "pass" must be reachable, or a green sweep means nothing.

use crate::support::run;
use sluice_sim::faults::{FaultAction, Target, TimedFault};
use sluice_sim::{SimConfig, Verdict};

#[test]
fn a_run_that_acknowledges_nothing_fails_its_gate() {
    let mut cfg = SimConfig::new(3, 3);
    cfg.safety_ms = 2_000;
    cfg.network.client_drop_ppm = 1_000_000; // every client request is lost
    cfg.workload.liveness_acks = 0; // clients stop as soon as the liveness phase starts
    let r = run(cfg);
    assert!(matches!(r.verdict, Verdict::Gate(_)), "{}", r.verdict);
    assert_eq!(r.verdict.exit_code(), 2);
    assert_eq!(r.stats.acked, 0);
}

#[test]
fn a_cluster_that_cannot_converge_in_its_bound_fails_liveness() {
    let mut cfg = SimConfig::new(3, 3);
    cfg.safety_ms = 1_000;
    cfg.liveness_ms = 1; // no cluster elects and catches up within a millisecond of healing
    cfg.faults = vec![TimedFault {
        at_ms: 900,
        action: FaultAction::Crash(Target::Leader),
    }];
    let r = run(cfg);
    assert!(matches!(r.verdict, Verdict::Liveness(_)), "{}", r.verdict);
    assert_eq!(r.verdict.exit_code(), 2);
}

#[test]
fn invalid_simulation_configs_are_rejected_with_a_reason() {
    let mut cfg = SimConfig::new(1, 0);
    assert!(sluice_sim::Simulation::new(cfg.clone())
        .unwrap_err()
        .contains("nodes"));
    cfg.nodes = 3;
    cfg.raft.heartbeat_ms = cfg.raft.election_timeout_ms;
    assert!(sluice_sim::Simulation::new(cfg)
        .unwrap_err()
        .contains("heartbeat"));
}

#[test]
fn a_run_over_its_event_budget_fails_instead_of_hanging() {
    let mut cfg = SimConfig::new(5, 3);
    cfg.max_events = 2_000;
    let r = run(cfg);
    assert!(
        matches!(&r.verdict, Verdict::Liveness(m) if m.contains("event budget")),
        "{}",
        r.verdict
    );
}
