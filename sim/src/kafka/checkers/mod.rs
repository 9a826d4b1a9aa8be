//! The Kafka-level checkers: the anomaly classes Jepsen checks on Kafka, plus the high
//! watermark as consumers see it and one leader per partition epoch. One file per property.
//!
//! Each checker is fed incrementally while the run goes (a send completed, a consumer op was
//! recorded), so a violation stops the run close to its cause with a useful trace tail, and
//! once more at the end with the final state (the serving leaders' logs through their high
//! watermarks). [`check`] replays a whole history through one checker: a checker is a function
//! of the history and the final state.
//!
//! `leader-per-epoch` is the exception: it judges the brokers' Raft states after every event,
//! not the history (`LeaderPerEpoch`).

mod aborted_read;
mod duplicate;
mod hw_monotonic;
mod inconsistent_offsets;
mod leader_per_epoch;
mod lost_write;
mod nonmonotonic_poll;
mod nonmonotonic_send;
mod poll_skip;
mod unseen;

pub use aborted_read::AbortedRead;
pub use duplicate::Duplicate;
pub use hw_monotonic::HighWatermarkMonotonic;
pub use inconsistent_offsets::InconsistentOffsets;
pub use leader_per_epoch::{LeaderPerEpoch, METADATA_GROUP};
pub use lost_write::LostWrite;
pub use nonmonotonic_poll::NonmonotonicPoll;
pub use nonmonotonic_send::NonmonotonicSend;
pub use poll_skip::PollSkip;
pub use unseen::Unseen;

use super::history::{FinalState, History};
use crate::checkers::CheckerKind;

/// Every Kafka-level checker, in the order they are reported.
pub const KAFKA_CHECKERS: [CheckerKind; 10] = [
    CheckerKind::LeaderPerEpoch,
    CheckerKind::LostWrite,
    CheckerKind::Unseen,
    CheckerKind::Duplicate,
    CheckerKind::InconsistentOffsets,
    CheckerKind::AbortedRead,
    CheckerKind::NonmonotonicSend,
    CheckerKind::NonmonotonicPoll,
    CheckerKind::PollSkip,
    CheckerKind::HighWatermarkMonotonic,
];

/// A history checker. Every method returns the violation it found, if any.
pub trait HistoryChecker: std::fmt::Debug {
    fn kind(&self) -> CheckerKind;
    /// `h.sends[i]` completed.
    fn on_send(&mut self, _h: &History, _i: usize) -> Result<(), String> {
        Ok(())
    }
    /// `h.consumer_ops[i]` was recorded.
    fn on_consumer_op(&mut self, _h: &History, _i: usize) -> Result<(), String> {
        Ok(())
    }
    /// The end of the run: the history is complete and `f` is the final state.
    fn finish(&mut self, _h: &History, _f: &FinalState) -> Result<(), String> {
        Ok(())
    }
}

/// A fresh checker of `kind` (`None` for `leader-per-epoch`, which judges broker states).
pub fn new_checker(kind: CheckerKind) -> Option<Box<dyn HistoryChecker>> {
    Some(match kind {
        CheckerKind::LostWrite => Box::new(LostWrite),
        CheckerKind::Unseen => Box::new(Unseen),
        CheckerKind::Duplicate => Box::new(Duplicate),
        CheckerKind::InconsistentOffsets => Box::<InconsistentOffsets>::default(),
        CheckerKind::AbortedRead => Box::<AbortedRead>::default(),
        CheckerKind::NonmonotonicSend => Box::<NonmonotonicSend>::default(),
        CheckerKind::NonmonotonicPoll => Box::<NonmonotonicPoll>::default(),
        CheckerKind::PollSkip => Box::<PollSkip>::default(),
        CheckerKind::HighWatermarkMonotonic => Box::<HighWatermarkMonotonic>::default(),
        _ => return None,
    })
}

/// Runs one checker over a whole history (sends in completion order, then consumer ops in
/// the order they were recorded) and, if given, the final state.
pub fn check(kind: CheckerKind, h: &History, f: Option<&FinalState>) -> Result<(), String> {
    let Some(mut c) = new_checker(kind) else {
        return Ok(());
    };
    let mut done: Vec<usize> = (0..h.sends.len())
        .filter(|&i| h.sends[i].completed_at > 0)
        .collect();
    done.sort_by_key(|&i| (h.sends[i].completed_at, i));
    for i in done {
        c.on_send(h, i)?;
    }
    for i in 0..h.consumer_ops.len() {
        c.on_consumer_op(h, i)?;
    }
    match f {
        Some(f) => c.finish(h, f),
        None => Ok(()),
    }
}

/// "producer 3's send #17 (values ..)" for messages.
pub(crate) fn describe_send(h: &History, i: usize) -> String {
    let s = &h.sends[i];
    format!(
        "send #{i} of producer {} ({} acks={} seq={}) to partition {} with {} record(s) starting v{:#x}",
        s.producer,
        if s.idempotent { "idempotent" } else { "plain" },
        s.acks,
        s.sequence,
        s.partition,
        s.values.len(),
        s.values.first().copied().unwrap_or(0)
    )
}
