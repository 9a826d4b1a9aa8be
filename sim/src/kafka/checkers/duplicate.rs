//! Duplicate: a record of an idempotent producer appears at most once in its partition's log.
//! Catches retries appended twice (producer state lost on failover or restart, a sequence
//! check that misses a retry). Duplicates of non-idempotent producers are expected (their
//! retries may append twice) and are not flagged.

use super::HistoryChecker;
use crate::checkers::CheckerKind;
use crate::kafka::history::{producer_of, FinalState, History};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Default)]
pub struct Duplicate;

impl HistoryChecker for Duplicate {
    fn kind(&self) -> CheckerKind {
        CheckerKind::Duplicate
    }

    fn finish(&mut self, h: &History, f: &FinalState) -> Result<(), String> {
        let idempotent: BTreeSet<u32> = h
            .sends
            .iter()
            .filter(|s| s.idempotent)
            .map(|s| s.producer)
            .collect();
        for (p, log) in f.partitions.iter().enumerate() {
            let mut at: BTreeMap<u64, i64> = BTreeMap::new();
            for (k, v) in log.values.iter().enumerate() {
                let Some(v) = *v else { continue };
                if !idempotent.contains(&producer_of(v)) {
                    continue;
                }
                let offset = log.log_start + k as i64;
                if let Some(first) = at.insert(v, offset) {
                    return Err(format!(
                        "partition {p}: v{v:#x} of idempotent producer {} is in the log twice, at offsets {first} and {offset}",
                        producer_of(v)
                    ));
                }
            }
        }
        Ok(())
    }
}
