//! Nonmonotonic poll: a consumer sees a partition's offsets strictly increase from one record
//! to the next, within a poll and across polls, unless it seeked in between. Catches fetches
//! that return records before the requested position and clients that rewind silently.

use super::HistoryChecker;
use crate::checkers::CheckerKind;
use crate::kafka::history::{ConsumerOp, History};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct NonmonotonicPoll {
    /// (consumer, partition) -> last offset seen since the last seek.
    last: BTreeMap<(u32, u32), i64>,
}

impl HistoryChecker for NonmonotonicPoll {
    fn kind(&self) -> CheckerKind {
        CheckerKind::NonmonotonicPoll
    }

    fn on_consumer_op(&mut self, h: &History, i: usize) -> Result<(), String> {
        match &h.consumer_ops[i] {
            ConsumerOp::Seek {
                consumer,
                partition,
                ..
            } => {
                self.last.remove(&(*consumer, *partition));
            }
            ConsumerOp::Poll(p) => {
                for &(o, v) in &p.records {
                    let key = (p.consumer, p.partition);
                    if let Some(&prev) = self.last.get(&key) {
                        if o <= prev {
                            return Err(format!(
                                "consumer {} read partition {} offset {o} (v{v:#x}) at {:.3}ms after offset {prev}, without a seek",
                                p.consumer,
                                p.partition,
                                p.at as f64 / 1e6
                            ));
                        }
                    }
                    self.last.insert(key, o);
                }
            }
        }
        Ok(())
    }
}
