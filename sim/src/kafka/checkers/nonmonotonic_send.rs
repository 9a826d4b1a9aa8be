//! Nonmonotonic send: one idempotent producer's batches to one partition are acknowledged at
//! offsets that grow in the order the producer created them (it sends them in sequence order
//! and a retry keeps its sequence). Catches acknowledgements of the wrong batch (a sequence
//! reused, a duplicate matched to another batch) and reordered appends.

use super::{describe_send, HistoryChecker};
use crate::checkers::CheckerKind;
use crate::kafka::history::{History, SendOutcome};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct NonmonotonicSend {
    /// (producer, partition) -> send index -> acknowledged base offset.
    acked: BTreeMap<(u32, u32), BTreeMap<usize, i64>>,
}

impl HistoryChecker for NonmonotonicSend {
    fn kind(&self) -> CheckerKind {
        CheckerKind::NonmonotonicSend
    }

    fn on_send(&mut self, h: &History, i: usize) -> Result<(), String> {
        let s = &h.sends[i];
        let SendOutcome::Ok { base_offset, .. } = s.outcome else {
            return Ok(());
        };
        if !s.idempotent {
            return Ok(());
        }
        let acked = self.acked.entry((s.producer, s.partition)).or_default();
        if let Some((&j, &o)) = acked.range(..i).next_back() {
            if o >= base_offset {
                return Err(format!(
                    "{} was acknowledged at offset {base_offset}, at or before the offset {o} of the earlier {}",
                    describe_send(h, i),
                    describe_send(h, j)
                ));
            }
        }
        if let Some((&j, &o)) = acked.range(i + 1..).next() {
            if o <= base_offset {
                return Err(format!(
                    "{} was acknowledged at offset {base_offset}, at or after the offset {o} of the later {}",
                    describe_send(h, i),
                    describe_send(h, j)
                ));
            }
        }
        acked.insert(i, base_offset);
        Ok(())
    }
}
