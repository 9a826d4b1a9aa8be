//! Lost write: a record acknowledged with acks=all must be in the final log, at exactly the
//! offset it was acknowledged at. Catches acknowledgements sent before the record was
//! replicated to a quorum (and durable there), and logs truncated below the high watermark.

use super::{describe_send, HistoryChecker};
use crate::checkers::CheckerKind;
use crate::kafka::history::{FinalState, History, SendOutcome};

#[derive(Debug, Default)]
pub struct LostWrite;

impl HistoryChecker for LostWrite {
    fn kind(&self) -> CheckerKind {
        CheckerKind::LostWrite
    }

    fn finish(&mut self, h: &History, f: &FinalState) -> Result<(), String> {
        for (i, s) in h.sends.iter().enumerate() {
            let SendOutcome::Ok { base_offset, node } = s.outcome else {
                continue;
            };
            if s.acks != -1 {
                continue;
            }
            let Some(log) = f.partitions.get(s.partition as usize) else {
                continue;
            };
            for (k, &v) in s.values.iter().enumerate() {
                let offset = base_offset + k as i64;
                match log.value_at(offset) {
                    Some(Some(found)) if found == v => {}
                    Some(found) => {
                        return Err(format!(
                            "{}: acknowledged by n{node} at offset {base_offset}, but the final log has {} at offset {offset} instead of v{v:#x}",
                            describe_send(h, i),
                            found.map_or("a foreign record".to_string(), |x| format!("v{x:#x}"))
                        ))
                    }
                    None => {
                        return Err(format!(
                            "{}: acknowledged by n{node} at offset {base_offset}, but the final log (n{}) ends at {} and offset {offset} is gone",
                            describe_send(h, i),
                            log.leader,
                            log.high_watermark
                        ))
                    }
                }
            }
        }
        Ok(())
    }
}
