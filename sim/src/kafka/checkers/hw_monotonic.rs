//! High watermark monotonic, as consumers see it: only answers without an error count (the
//! broker answers a fetch only while it is the serving leader of the epoch the consumer
//! named). Within one leader epoch a consumer never sees the high watermark go down; and a
//! later epoch's leader never reports a high watermark below one an earlier epoch's leader
//! reported, whoever asked and whenever: everything an earlier leader exposed was committed,
//! and a new leader serves only once an entry of its own term commits after all of it.
//! Catches new leaders that serve before their high watermark caught up (KIP-101, KIP-279).

use super::HistoryChecker;
use crate::checkers::CheckerKind;
use crate::kafka::history::{ConsumerOp, History};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct HighWatermarkMonotonic {
    /// partition -> epoch -> (lowest, highest) high watermark seen, with who saw the highest.
    epochs: BTreeMap<u32, BTreeMap<i32, (i64, i64)>>,
    /// (consumer, partition) -> (epoch, high watermark) of its last answer.
    last: BTreeMap<(u32, u32), (i32, i64)>,
}

impl HistoryChecker for HighWatermarkMonotonic {
    fn kind(&self) -> CheckerKind {
        CheckerKind::HighWatermarkMonotonic
    }

    fn on_consumer_op(&mut self, h: &History, i: usize) -> Result<(), String> {
        let ConsumerOp::Poll(p) = &h.consumer_ops[i] else {
            return Ok(());
        };
        let (e, hw) = (p.epoch, p.high_watermark);
        let at = p.at as f64 / 1e6;
        if let Some(&(le, lhw)) = self.last.get(&(p.consumer, p.partition)) {
            if le <= e && hw < lhw {
                return Err(format!(
                    "consumer {} saw partition {}'s high watermark go from {lhw} (epoch {le}) down to {hw} (epoch {e}, n{}) at {at:.3}ms",
                    p.consumer, p.partition, p.node
                ));
            }
        }
        if e >= 0 {
            let epochs = self.epochs.entry(p.partition).or_default();
            if let Some((&oe, &(_, ohw))) = epochs.range(..e).rfind(|(_, r)| r.1 > hw) {
                return Err(format!(
                    "partition {}: n{} served high watermark {hw} in epoch {e} at {at:.3}ms, below the {ohw} served in the earlier epoch {oe}",
                    p.partition, p.node
                ));
            }
            if let Some((&oe, &(olo, _))) = epochs.range(e + 1..).find(|(_, r)| r.0 < hw) {
                return Err(format!(
                    "partition {}: the later epoch {oe} served high watermark {olo}, below the {hw} n{} served in epoch {e} at {at:.3}ms",
                    p.partition, p.node
                ));
            }
            let r = epochs.entry(e).or_insert((hw, hw));
            r.0 = r.0.min(hw);
            r.1 = r.1.max(hw);
        }
        self.last.insert((p.consumer, p.partition), (e, hw));
        Ok(())
    }
}
