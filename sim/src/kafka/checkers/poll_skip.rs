//! Poll skip: a consumer's consecutive polls of a partition (no seek in between) return every
//! record in between: a gap between the last offset it read and the next one is a violation
//! if the final log holds any offset in the gap. Catches fetches that start past the requested
//! position and clients that move their position past records they never read.

use super::HistoryChecker;
use crate::checkers::CheckerKind;
use crate::kafka::history::{ConsumerOp, FinalState, History};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct PollSkip {
    /// (consumer, partition) -> the next offset it should read.
    next: BTreeMap<(u32, u32), i64>,
    /// (consumer, partition, first skipped, next read, time).
    gaps: Vec<(u32, u32, i64, i64, u64)>,
}

impl HistoryChecker for PollSkip {
    fn kind(&self) -> CheckerKind {
        CheckerKind::PollSkip
    }

    fn on_consumer_op(&mut self, h: &History, i: usize) -> Result<(), String> {
        match &h.consumer_ops[i] {
            ConsumerOp::Seek {
                consumer,
                partition,
                offset,
                ..
            } => {
                self.next.insert((*consumer, *partition), *offset);
            }
            ConsumerOp::Poll(p) => {
                let key = (p.consumer, p.partition);
                for &(o, _) in &p.records {
                    let expected = *self.next.get(&key).unwrap_or(&o);
                    if o > expected {
                        self.gaps.push((p.consumer, p.partition, expected, o, p.at));
                    }
                    self.next.insert(key, o + 1);
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self, _h: &History, f: &FinalState) -> Result<(), String> {
        for &(c, p, from, to, at) in &self.gaps {
            let Some(log) = f.partitions.get(p as usize) else {
                continue;
            };
            if let Some(o) = (from..to).find(|&o| log.value_at(o).is_some()) {
                return Err(format!(
                    "consumer {c} skipped partition {p} offsets {from}..{to} at {:.3}ms (no seek), but the final log holds offset {o}",
                    at as f64 / 1e6
                ));
            }
        }
        Ok(())
    }
}
