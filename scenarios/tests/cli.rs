//! The `sluice-sim` command as a user runs it: output and exit codes (0 pass, 1 safety,
//! 2 liveness, 3 usage). Lives beside the binary because only this package can name it.

use std::process::{Command, Output};

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice-sim"))
        .args(args)
        .output()
        .expect("sluice-sim runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn list_names_every_scenario_with_its_reason() {
    let o = sim(&["list"]);
    assert_eq!(o.status.code(), Some(0));
    for s in sluice_scenarios::all() {
        assert!(text(&o).contains(s.name), "{}", s.name);
    }
}

#[test]
fn run_prints_the_banner_and_passes() {
    let o = sim(&[
        "run",
        "--scenario",
        "leader-isolated",
        "--seed",
        "1",
        "--check-determinism",
    ]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("seed=1 nodes="), "{out}");
    assert!(out.contains("faults:"), "{out}");
    assert!(
        out.contains("determinism: both runs produced trace hash"),
        "{out}"
    );
    assert!(out.contains("verdict: PASS"), "{out}");
}

#[test]
fn a_safety_violation_exits_1_with_the_trace_and_a_replay_line() {
    let o = sim(&[
        "run",
        "--scenario",
        "cluster-crash",
        "--seed",
        "0",
        "--bug",
        "ack-before-sync",
    ]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("SAFETY VIOLATION"), "{out}");
    assert!(out.contains("trace records"), "{out}");
    assert!(
        out.contains("sluice-sim -- run --scenario cluster-crash --seed 0 --bug ack-before-sync"),
        "{out}"
    );
}

#[test]
fn usage_errors_exit_3() {
    for args in [
        vec!["run", "--scenario", "no-such-scenario", "--seed", "1"],
        vec!["run", "--scenario", "swarm", "--seed", "minus-one"],
        vec!["sweep", "--seeds", "5..5"],
        vec!["frobnicate"],
    ] {
        let o = sim(&args);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", text(&o));
    }
}

#[test]
fn a_commit_id_is_a_seed() {
    let o = sim(&[
        "run",
        "--scenario",
        "split-flap",
        "--seed",
        "000000000000002a0123456789abcdef01234567",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("seed=42 "));
}

#[test]
fn sweep_prints_a_summary_with_events_per_second() {
    let o = sim(&[
        "sweep",
        "--scenario",
        "split-flap",
        "--seeds",
        "0..3",
        "--jobs",
        "2",
    ]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("runs=3 passed=3 failed=0"), "{out}");
    assert!(out.contains("events/s per core="), "{out}");
}

#[test]
fn list_names_every_kafka_scenario() {
    let o = sim(&["list"]);
    for s in sluice_scenarios::kafka::all() {
        assert!(text(&o).contains(s.name), "{}", s.name);
    }
}

#[test]
fn a_kafka_run_prints_its_banner_failover_and_a_stable_hash() {
    let o = sim(&[
        "run",
        "--scenario",
        "kafka-kip279",
        "--seed",
        "1",
        "--check-determinism",
    ]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("seed=1 brokers="), "{out}");
    assert!(
        out.contains("checkers: leader-per-epoch,lost-write"),
        "{out}"
    );
    assert!(out.contains("failover: "), "{out}");
    assert!(out.contains("p50="), "{out}");
    assert!(
        out.contains("determinism: both runs produced trace hash"),
        "{out}"
    );
    assert!(out.contains("verdict: PASS"), "{out}");
}

#[test]
fn a_planted_broker_bug_exits_1_with_a_replay_line_naming_it() {
    let o = sim(&[
        "run",
        "--scenario",
        "kafka-leader-isolated",
        "--seed",
        "1",
        "--bug",
        "ack-all-at-append",
    ]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("SAFETY VIOLATION ["), "{out}");
    assert!(
        out.contains("run --scenario kafka-leader-isolated --seed 1 --bug ack-all-at-append"),
        "{out}"
    );
}

#[test]
fn a_bug_of_the_other_level_is_a_usage_error() {
    let o = sim(&[
        "run",
        "--scenario",
        "kafka-swarm",
        "--seed",
        "1",
        "--bug",
        "vote-twice",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
}

#[test]
fn a_kafka_sweep_reports_failover_per_scenario() {
    let o = sim(&[
        "sweep",
        "--scenario",
        "kafka-kip101",
        "--seeds",
        "0..3",
        "--jobs",
        "2",
    ]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("runs=3 passed=3 failed=0"), "{out}");
    assert!(out.contains("kafka-kip101: failover: "), "{out}");
}

#[test]
fn a_group_run_prints_the_group_and_its_rebalance_time() {
    let o = sim(&[
        "run",
        "--scenario",
        "kafka-group-static-restart",
        "--seed",
        "1",
    ]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("group: id=sluice-sim-group members="), "{out}");
    assert!(out.contains("group: joins="), "{out}");
    assert!(out.contains("rebalance: ") && out.contains("p50="), "{out}");
    assert!(out.contains("verdict: PASS"), "{out}");
}

#[test]
fn a_planted_group_bug_exits_1_naming_a_group_checker() {
    let o = sim(&[
        "run",
        "--scenario",
        "kafka-group-member-paused",
        "--seed",
        "0",
        "--bug",
        "group-fetch-offset-off-by-one",
    ]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("SAFETY VIOLATION [group-"), "{out}");
    assert!(
        out.contains(
            "run --scenario kafka-group-member-paused --seed 0 --bug group-fetch-offset-off-by-one"
        ),
        "{out}"
    );
}

#[test]
fn a_group_sweep_reports_rebalance_time_per_scenario() {
    let o = sim(&[
        "sweep",
        "--scenario",
        "kafka-group-static-restart",
        "--seeds",
        "0..2",
        "--jobs",
        "2",
    ]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("runs=2 passed=2 failed=0"), "{out}");
    assert!(
        out.contains("kafka-group-static-restart: rebalance: "),
        "{out}"
    );
}
