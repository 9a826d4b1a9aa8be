//! Inconsistent offsets: an offset of a partition holds one record forever. Two polls (by any
//! consumers, at any times) that return different records at one offset, or a poll that
//! returned a record the final log does not hold at that offset, are a violation. Catches
//! reads above the high watermark (of records later truncated) and logs that diverge below it.

use super::HistoryChecker;
use crate::checkers::CheckerKind;
use crate::kafka::history::{ConsumerOp, FinalState, History};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct InconsistentOffsets {
    /// (partition, offset) -> (value, consumer, time).
    read: BTreeMap<(u32, i64), (u64, u32, u64)>,
}

impl HistoryChecker for InconsistentOffsets {
    fn kind(&self) -> CheckerKind {
        CheckerKind::InconsistentOffsets
    }

    fn on_consumer_op(&mut self, h: &History, i: usize) -> Result<(), String> {
        let ConsumerOp::Poll(p) = &h.consumer_ops[i] else {
            return Ok(());
        };
        for &(offset, v) in &p.records {
            let (old, c, at) = *self
                .read
                .entry((p.partition, offset))
                .or_insert((v, p.consumer, p.at));
            if old != v {
                return Err(format!(
                    "partition {} offset {offset}: consumer {c} read v{old:#x} at {:.3}ms, consumer {} read v{v:#x} at {:.3}ms (from n{}, epoch {})",
                    p.partition,
                    at as f64 / 1e6,
                    p.consumer,
                    p.at as f64 / 1e6,
                    p.node,
                    p.epoch
                ));
            }
        }
        Ok(())
    }

    fn finish(&mut self, _h: &History, f: &FinalState) -> Result<(), String> {
        for (&(p, offset), &(v, c, at)) in &self.read {
            let Some(log) = f.partitions.get(p as usize) else {
                continue;
            };
            match log.value_at(offset) {
                Some(Some(x)) if x == v => {}
                found => {
                    return Err(format!(
                        "partition {p} offset {offset}: consumer {c} read v{v:#x} at {:.3}ms, but the final log has {}",
                        at as f64 / 1e6,
                        match found {
                            Some(Some(x)) => format!("v{x:#x} there"),
                            Some(None) => "a foreign record there".into(),
                            None => format!("no such offset (it ends at {})", log.high_watermark),
                        }
                    ))
                }
            }
        }
        Ok(())
    }
}
