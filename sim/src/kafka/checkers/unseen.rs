//! Unseen: every record acknowledged with acks=all must have been returned by some poll by the
//! end of the liveness phase, when a final reader has read every partition to its high
//! watermark. Catches acknowledged records that are lost or never served (a high watermark
//! that stops short, a fetch path that drops records).

use super::{describe_send, HistoryChecker};
use crate::checkers::CheckerKind;
use crate::kafka::history::{FinalState, History};
use std::collections::BTreeSet;

#[derive(Debug, Default)]
pub struct Unseen;

impl HistoryChecker for Unseen {
    fn kind(&self) -> CheckerKind {
        CheckerKind::Unseen
    }

    fn finish(&mut self, h: &History, _f: &FinalState) -> Result<(), String> {
        let seen: BTreeSet<u64> = h
            .polls()
            .flat_map(|p| p.records.iter().map(|&(_, v)| v))
            .collect();
        let mut unseen = Vec::new();
        for (i, s) in h.sends.iter().enumerate() {
            if !s.is_acked_all() {
                continue;
            }
            for &v in &s.values {
                if !seen.contains(&v) {
                    unseen.push((i, v));
                }
            }
        }
        match unseen.first() {
            None => Ok(()),
            Some(&(i, v)) => Err(format!(
                "{} acknowledged acks=all record(s) were never read by any consumer; the first is v{v:#x} of {}",
                unseen.len(),
                describe_send(h, i)
            )),
        }
    }
}
