//! One seed, many independent streams. Each consumer of randomness draws from its own stream,
//! so a change in how often one consumer draws (say, the workload) does not move any other
//! (say, the packet trace).
//!
//! **Append-only**: a stream id, once assigned, keeps its meaning forever, or old seeds would
//! stop replaying. New consumers take new ids at the end.

use sluice_core::rng::DetRng;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Network = 1,
    Disk = 2,
    Clock = 3,
    Workload = 4,
    Faults = 5,
    Swarm = 6,
    /// Seeds for each node's Raft instance, one draw per (re)start.
    Raft = 7,
    /// Scenario fault-plan generation (distinct from `Faults`, which resolves targets at run time).
    FaultPlan = 8,
    /// Consumer-group members (their draws do not move the other clients').
    Group = 9,
    /// Scenario plans of member actions and group triggers.
    GroupPlan = 10,
}

pub fn stream(seed: u64, stream: Stream) -> DetRng {
    DetRng::with_stream(seed, stream as u64)
}

/// Reads a seed as the CLI accepts it: a decimal `u64`, or a 40-hex git commit id (the first
/// 16 hex digits), so that CI can use the commit under test as its seed.
pub fn parse_seed(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if t.len() == 40 && t.chars().all(|c| c.is_ascii_hexdigit()) {
        return u64::from_str_radix(&t[..16], 16).map_err(|e| format!("bad commit id {t:?}: {e}"));
    }
    t.parse::<u64>()
        .map_err(|_| format!("seed {t:?} is neither a decimal u64 nor a 40-hex commit id"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse_from_decimal_and_commit_ids() {
        assert_eq!(parse_seed("42"), Ok(42));
        assert_eq!(
            parse_seed("00000000000000ff00000000000000000000abcd"),
            Ok(0xff)
        );
        assert!(parse_seed("-1").is_err());
        assert!(parse_seed("xyz").is_err());
        assert!(parse_seed("0000000000000000000000000000000000000g00").is_err());
    }
}
