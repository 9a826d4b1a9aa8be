//! Every named scenario over a fixed seed set. CI runs these seeds; longer sweeps are
//! `sluice-sim sweep` (see README).

use crate::support::{explain, run_scenario};

/// Seeds per scenario in CI: enough to cover each scenario's shapes, small enough to keep the
/// suite fast in the test profile. The release-mode sweep over 0..500 is the deeper check.
const SEEDS: std::ops::Range<u64> = 0..24;

#[test]
fn there_are_named_scenarios_with_reasons() {
    let all = sluice_scenarios::all();
    assert!(all.len() >= 9, "{} scenarios", all.len());
    for s in all {
        assert!(s.why.len() > 80, "{} needs a real why", s.name);
        assert!(
            s.name.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
            "{}",
            s.name
        );
    }
    let mut names: Vec<_> = all.iter().map(|s| s.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), all.len(), "scenario names are unique");
}

fn sweep(name: &str) {
    let mut failures = Vec::new();
    let mut acked = 0;
    for seed in SEEDS {
        let r = run_scenario(name, seed);
        acked += r.stats.acked;
        if !r.verdict.is_pass() {
            failures.push(explain(name, seed, &r));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(acked > 0, "{name}: the sweep acknowledged nothing");
}

macro_rules! scenario_tests {
    ($($test:ident => $name:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                sweep($name);
            }
        )*

        #[test]
        fn every_scenario_has_a_sweep_test() {
            let tested = [$($name),*];
            for s in sluice_scenarios::all() {
                assert!(tested.contains(&s.name), "scenario {} has no sweep test", s.name);
            }
        }
    };
}

scenario_tests! {
    leader_isolated_passes_fixed_seeds => "leader-isolated",
    split_flap_passes_fixed_seeds => "split-flap",
    leader_one_way_passes_fixed_seeds => "leader-one-way",
    leader_crash_burst_passes_fixed_seeds => "leader-crash-burst",
    cluster_crash_passes_fixed_seeds => "cluster-crash",
    last_replica_standing_passes_fixed_seeds => "last-replica-standing",
    clock_skew_passes_fixed_seeds => "clock-skew",
    rolling_restarts_passes_fixed_seeds => "rolling-restarts",
    pause_leader_passes_fixed_seeds => "pause-leader",
    message_chaos_passes_fixed_seeds => "message-chaos",
    figure_eight_passes_fixed_seeds => "figure-eight",
    vote_restart_passes_fixed_seeds => "vote-restart",
    swarm_passes_fixed_seeds => "swarm",
}

/// A scenario's config is a pure function of its seed. If this snapshot changes, old seeds no
/// longer replay the same run: change it only on purpose, and say so in the commit.
#[test]
fn scenario_banners_are_stable_for_a_seed() {
    let banners: Vec<String> = sluice_scenarios::all()
        .iter()
        .map(|s| format!("## {}\n{}", s.name, s.config(1).banner()))
        .collect();
    insta::assert_snapshot!(banners.join("\n"));
}
