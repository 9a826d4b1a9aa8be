//! A run is a pure function of its seed.

use crate::support::run_scenario;

#[test]
fn same_seed_gives_the_same_trace_hash_and_stats() {
    for name in ["swarm", "cluster-crash", "message-chaos"] {
        let a = run_scenario(name, 7);
        let b = run_scenario(name, 7);
        assert_eq!(a.trace_hash, b.trace_hash, "{name}");
        assert_eq!(a.stats, b.stats, "{name}");
        assert_eq!(a.verdict, b.verdict, "{name}");
        assert!(a.stats.events > 1_000, "{name}: the run did something");
    }
}

#[test]
fn different_seeds_give_different_runs() {
    let hashes: Vec<u64> = (0..8)
        .map(|seed| run_scenario("swarm", seed).trace_hash)
        .collect();
    let mut unique = hashes.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        hashes.len(),
        "trace hashes collide: {hashes:x?}"
    );
}
