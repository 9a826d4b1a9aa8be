//! Aborted read: a send the producer was told definitely failed (refused before anything was
//! appended) is never visible, neither to a consumer nor in the final log. Catches errors
//! reported for records that were in fact appended, and clients that take an ambiguous error
//! for a definite one.

use super::{describe_send, HistoryChecker};
use crate::checkers::CheckerKind;
use crate::kafka::history::{ConsumerOp, FinalState, History, SendOutcome};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct AbortedRead {
    /// value -> the send that definitely failed.
    failed: BTreeMap<u64, usize>,
    /// value -> (consumer, partition, offset) of its first read.
    read: BTreeMap<u64, (u32, u32, i64)>,
}

impl HistoryChecker for AbortedRead {
    fn kind(&self) -> CheckerKind {
        CheckerKind::AbortedRead
    }

    fn on_send(&mut self, h: &History, i: usize) -> Result<(), String> {
        let s = &h.sends[i];
        let SendOutcome::Failed { code } = s.outcome else {
            return Ok(());
        };
        for &v in &s.values {
            self.failed.insert(v, i);
            if let Some(&(c, p, o)) = self.read.get(&v) {
                return Err(format!(
                    "{} was reported as definitely failed (error {code}), but consumer {c} read v{v:#x} at partition {p} offset {o}",
                    describe_send(h, i)
                ));
            }
        }
        Ok(())
    }

    fn on_consumer_op(&mut self, h: &History, i: usize) -> Result<(), String> {
        let ConsumerOp::Poll(p) = &h.consumer_ops[i] else {
            return Ok(());
        };
        for &(o, v) in &p.records {
            self.read.entry(v).or_insert((p.consumer, p.partition, o));
            if let Some(&s) = self.failed.get(&v) {
                return Err(format!(
                    "consumer {} read v{v:#x} at partition {} offset {o}, but {} definitely failed",
                    p.consumer,
                    p.partition,
                    describe_send(h, s)
                ));
            }
        }
        Ok(())
    }

    fn finish(&mut self, h: &History, f: &FinalState) -> Result<(), String> {
        for (p, log) in f.partitions.iter().enumerate() {
            for (k, v) in log.values.iter().enumerate() {
                if let Some(&s) = v.and_then(|v| self.failed.get(&v)) {
                    return Err(format!(
                        "{} definitely failed, but the final log holds it at partition {p} offset {}",
                        describe_send(h, s),
                        log.log_start + k as i64
                    ));
                }
            }
        }
        Ok(())
    }
}
