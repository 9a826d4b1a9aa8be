//! One leader per partition epoch: across all brokers and all of time, at most one broker is
//! the Raft leader of a partition (or of the metadata group) in any one term, which Kafka
//! clients see as the leader epoch. Judged after every broker event from the brokers' Raft
//! states, not from the history. Catches double voting (a vote forgotten across a restart, a
//! disk that lost the vote it acknowledged).

use crate::checkers::CheckerKind;
use std::collections::BTreeMap;

/// The group id the metadata (controller) group is checked under.
pub const METADATA_GROUP: ([u8; 16], u32) = ([0xff; 16], u32::MAX);

#[derive(Debug, Default)]
pub struct LeaderPerEpoch {
    /// (topic id, partition) -> epoch -> leader.
    leaders: BTreeMap<([u8; 16], u32), BTreeMap<u64, u32>>,
    pub elected: u64,
}

impl LeaderPerEpoch {
    pub fn kind(&self) -> CheckerKind {
        CheckerKind::LeaderPerEpoch
    }

    /// `node` is the leader of `group` in `epoch` now.
    pub fn on_leader(
        &mut self,
        group: ([u8; 16], u32),
        epoch: u64,
        node: u32,
    ) -> Result<(), String> {
        let epochs = self.leaders.entry(group).or_default();
        match epochs.insert(epoch, node) {
            Some(other) if other != node => {
                epochs.insert(epoch, other);
                let what = if group == METADATA_GROUP {
                    "the metadata group".to_string()
                } else {
                    format!("partition {}", group.1)
                };
                Err(format!(
                    "two leaders of {what} in epoch {epoch}: n{other} and n{node}"
                ))
            }
            Some(_) => Ok(()),
            None => {
                self.elected += 1;
                Ok(())
            }
        }
    }
}
