//! The Kafka-level scenarios as a suite: each passes a fixed seed set, runs are pure functions
//! of their seed, banners are pinned, and the verdicts other than "pass" are reachable.

use sluice_scenarios::kafka::{all, find};
use sluice_sim::kafka::{KafkaConfig, KafkaReport, KafkaSim, ProducerKind};
use sluice_sim::Verdict;

/// Seeds per scenario here; `sluice-sim sweep --seeds 0..500` is the deeper check.
const SEEDS: std::ops::Range<u64> = 0..6;

fn run(cfg: KafkaConfig) -> KafkaReport {
    KafkaSim::new(cfg).expect("valid config").run()
}

fn explain(name: &str, seed: u64, r: &KafkaReport) -> String {
    format!(
        "{name} seed {seed}: {}\n  replay: cargo run --release -p sluice-scenarios --bin sluice-sim -- run --scenario {name} --seed {seed}\n{}",
        r.verdict,
        r.trace_tail[r.trace_tail.len().saturating_sub(30)..].join("\n")
    )
}

#[test]
fn kafka_scenarios_have_names_and_reasons() {
    assert!(all().len() >= 12);
    for s in all() {
        assert!(s.name.starts_with("kafka-"), "{}", s.name);
        assert!(s.why.len() > 80, "{} needs a real why", s.name);
        assert!(
            sluice_scenarios::find(s.name).is_none(),
            "{} collides with a Raft-level scenario",
            s.name
        );
    }
    let mut names: Vec<_> = all().iter().map(|s| s.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), all().len(), "names are unique");
}

#[test]
fn every_kafka_scenario_passes_its_fixed_seeds_and_does_work() {
    let mut failures = Vec::new();
    for s in all() {
        let (mut acked, mut polled) = (0, 0);
        for seed in SEEDS {
            let r = run(s.config(seed));
            acked += r.stats.acked_all;
            polled += r.stats.records_polled;
            if !r.verdict.is_pass() {
                failures.push(explain(s.name, seed, &r));
            }
        }
        assert!(acked > 0 && polled > 0, "{}: the seeds did nothing", s.name);
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn fault_scenarios_measure_failover() {
    for name in ["kafka-kip279", "kafka-leader-isolated", "kafka-kip966"] {
        let s = find(name).expect("exists");
        let samples: usize = SEEDS
            .map(|seed| run(s.config(seed)).stats.failovers.len())
            .sum();
        assert!(samples > 0, "{name}: no failover measured");
    }
}

/// Every group scenario measures rebalance time, and a static member that restarts within
/// its session timeout, from a settled group, takes its place back in the generation it left:
/// the generation does not move. (One that restarts while a rebalance is pending joins the
/// next generation, as Kafka's do.)
#[test]
fn group_scenarios_measure_rebalances_and_static_restarts_keep_the_generation() {
    for s in all().iter().filter(|s| s.name.starts_with("kafka-group-")) {
        let mut samples = 0;
        for seed in SEEDS {
            let r = run(s.config(seed));
            samples += r.stats.rebalances.len();
            assert!(
                r.stats.group_commits > 0,
                "{} seed {seed}: no commit",
                s.name
            );
            if s.name == "kafka-group-static-restart" {
                assert!(
                    r.stats.static_rejoins > 0,
                    "{} seed {seed}: no static member restarted",
                    s.name
                );
                assert_eq!(
                    r.stats.static_rejoins_same_generation, r.stats.static_rejoins,
                    "{} seed {seed}: a static restart moved the generation",
                    s.name
                );
            }
        }
        assert!(samples > 0, "{}: no rebalance measured", s.name);
    }
}

#[test]
fn same_seed_gives_the_same_run_and_different_seeds_do_not() {
    for name in [
        "kafka-swarm",
        "kafka-kip966",
        "kafka-group-coordinator-failover",
    ] {
        let s = find(name).expect("exists");
        let a = run(s.config(7));
        let b = run(s.config(7));
        assert_eq!(a.trace_hash, b.trace_hash, "{name}");
        assert_eq!(a.stats, b.stats, "{name}");
        assert_eq!(a.verdict, b.verdict, "{name}");
        assert!(a.stats.events > 1_000, "{name}: the run did something");
    }
    let s = find("kafka-swarm").expect("exists");
    let mut hashes: Vec<u64> = (0..6).map(|seed| run(s.config(seed)).trace_hash).collect();
    hashes.sort_unstable();
    hashes.dedup();
    assert_eq!(hashes.len(), 6, "trace hashes collide");
}

/// A scenario's config is a pure function of its seed: if this changes, old seeds replay a
/// different run. Change it only on purpose.
#[test]
fn kafka_scenario_banners_are_stable_for_a_seed() {
    let banners: Vec<String> = all()
        .iter()
        .map(|s| format!("## {}\n{}", s.name, s.config(1).banner()))
        .collect();
    insta::assert_snapshot!(banners.join("\n"));
}

#[test]
fn a_run_that_acknowledges_nothing_fails_its_gate() {
    let mut cfg = KafkaConfig::new(3, 3);
    cfg.safety_ms = 500;
    cfg.workload.producers = vec![ProducerKind {
        acks: 0,
        idempotent: false,
    }];
    let r = run(cfg);
    assert!(matches!(r.verdict, Verdict::Gate(_)), "{}", r.verdict);
    assert_eq!(r.verdict.exit_code(), 2);
}

#[test]
fn a_cluster_that_cannot_converge_in_its_bound_fails_liveness() {
    let mut cfg = KafkaConfig::new(3, 3);
    cfg.safety_ms = 500;
    cfg.liveness_ms = 1;
    let r = run(cfg);
    assert!(matches!(r.verdict, Verdict::Liveness(_)), "{}", r.verdict);
    assert_eq!(r.verdict.exit_code(), 2);
}

#[test]
fn a_run_over_its_event_budget_fails_instead_of_hanging() {
    let mut cfg = KafkaConfig::new(5, 3);
    cfg.max_events = 2_000;
    let r = run(cfg);
    assert!(
        matches!(&r.verdict, Verdict::Liveness(m) if m.contains("event budget")),
        "{}",
        r.verdict
    );
}

#[test]
fn invalid_kafka_configs_are_rejected_with_a_reason() {
    let mut cfg = KafkaConfig::new(1, 3);
    cfg.workload.replication_factor = 4;
    assert!(KafkaSim::new(cfg)
        .unwrap_err()
        .contains("replication factor"));
    let mut cfg = KafkaConfig::new(1, 5);
    cfg.voters = 6;
    assert!(KafkaSim::new(cfg).unwrap_err().contains("voters"));
    let mut cfg = KafkaConfig::new(1, 3);
    cfg.checkers =
        sluice_sim::checkers::CheckerSet::only(sluice_sim::checkers::CheckerKind::ElectionSafety);
    assert!(KafkaSim::new(cfg).unwrap_err().contains("Kafka-level"));
}
