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
