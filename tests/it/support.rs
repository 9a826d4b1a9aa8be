//! Helpers shared by the simulator tests.

use sluice_core::raft::Bug;
use sluice_sim::checkers::CheckerSet;
use sluice_sim::{Report, SimConfig, Simulation};

pub fn scenario(name: &str) -> &'static sluice_scenarios::Scenario {
    sluice_scenarios::find(name).unwrap_or_else(|| panic!("no scenario named {name}"))
}

pub fn run(cfg: SimConfig) -> Report {
    Simulation::new(cfg)
        .expect("scenario configs are valid")
        .run()
}

pub fn run_scenario(name: &str, seed: u64) -> Report {
    run(scenario(name).config(seed))
}

pub fn with_bug(mut cfg: SimConfig, bug: Bug, checkers: CheckerSet) -> SimConfig {
    cfg.raft.bug = Some(bug);
    cfg.checkers = checkers;
    cfg
}

/// Explains a failed run well enough to replay it.
pub fn explain(name: &str, seed: u64, r: &Report) -> String {
    format!(
        "{name} seed {seed}: {}\n{}\nreplay: cargo run --release -p sluice-scenarios --bin sluice-sim -- run --scenario {name} --seed {seed}",
        r.verdict,
        r.trace_tail.join("\n")
    )
}
