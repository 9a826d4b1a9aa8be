//! The Kafka-level checkers: the anomaly classes Jepsen checks on Kafka, plus the high
//! watermark as consumers see it, one leader per partition epoch, and the consumer-group
//! properties (`group_*`: exclusive ownership, generations, committed offsets, stability after
//! the liveness phase, at-least-once delivery). One file per property.
//!
//! Each checker is fed incrementally while the run goes (a send completed, a consumer op or a
//! group op was recorded), so a violation stops the run close to its cause with a useful trace tail, and
//! once more at the end with the final state (the serving leaders' logs through their high
//! watermarks). [`check`] replays a whole history through one checker: a checker is a function
//! of the history and the final state.
//!
//! `leader-per-epoch` is the exception: it judges the brokers' Raft states after every event,
//! not the history (`LeaderPerEpoch`).

mod aborted_read;
mod duplicate;
mod group_at_least_once;
mod group_commit_monotonic;
mod group_exclusive_ownership;
mod group_generation_monotonic;
mod group_stable_after_liveness;
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
pub use group_at_least_once::GroupAtLeastOnce;
pub use group_commit_monotonic::GroupCommitMonotonic;
pub use group_exclusive_ownership::GroupExclusiveOwnership;
pub use group_generation_monotonic::GroupGenerationMonotonic;
pub use group_stable_after_liveness::GroupStableAfterLiveness;
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
pub const KAFKA_CHECKERS: [CheckerKind; 15] = [
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
    CheckerKind::GroupExclusiveOwnership,
    CheckerKind::GroupGenerationMonotonic,
    CheckerKind::GroupCommitMonotonic,
    CheckerKind::GroupStableAfterLiveness,
    CheckerKind::GroupAtLeastOnce,
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
    /// `h.group_ops[i]` was recorded.
    fn on_group_op(&mut self, _h: &History, _i: usize) -> Result<(), String> {
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
        CheckerKind::GroupExclusiveOwnership => Box::<GroupExclusiveOwnership>::default(),
        CheckerKind::GroupGenerationMonotonic => Box::<GroupGenerationMonotonic>::default(),
        CheckerKind::GroupCommitMonotonic => Box::<GroupCommitMonotonic>::default(),
        CheckerKind::GroupStableAfterLiveness => Box::new(GroupStableAfterLiveness),
        CheckerKind::GroupAtLeastOnce => Box::new(GroupAtLeastOnce),
        _ => return None,
    })
}

/// Runs one checker over a whole history (sends in completion order, then consumer ops and
/// group ops in the order they were recorded) and, if given, the final state.
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
    for i in 0..h.group_ops.len() {
        c.on_group_op(h, i)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::history::{ConsumerOp, FinalPartition, Poll, Send, SendOutcome};

    /// Values of producer 1 (the producer lives in a value's top bits).
    const V: u64 = 1 << 40;

    fn send(producer: u32, values: &[u64], outcome: SendOutcome, at: u64) -> Send {
        Send {
            producer,
            partition: 0,
            values: values.to_vec(),
            acks: -1,
            idempotent: true,
            producer_id: 7,
            producer_epoch: 0,
            sequence: 0,
            invoked_at: at,
            completed_at: at + 1,
            attempts: 1,
            outcome,
        }
    }

    fn poll(consumer: u32, epoch: i32, hw: i64, records: &[(i64, u64)], at: u64) -> ConsumerOp {
        ConsumerOp::Poll(Poll {
            consumer,
            partition: 0,
            node: 1,
            epoch,
            at,
            from: records.first().map_or(hw, |r| r.0),
            high_watermark: hw,
            records: records.to_vec(),
        })
    }

    fn seek(consumer: u32, offset: i64) -> ConsumerOp {
        ConsumerOp::Seek {
            consumer,
            partition: 0,
            offset,
            at: 0,
        }
    }

    fn log(values: &[u64]) -> FinalState {
        FinalState {
            partitions: vec![FinalPartition {
                leader: 1,
                high_watermark: values.len() as i64,
                log_start: 0,
                values: values.iter().map(|&v| Some(v)).collect(),
            }],
            group: None,
        }
    }

    fn ok(base_offset: i64) -> SendOutcome {
        SendOutcome::Ok {
            base_offset,
            node: 1,
        }
    }

    /// A history where everything went right: every checker passes it.
    fn clean() -> (History, FinalState) {
        let h = History {
            sends: vec![
                send(1, &[V + 10, V + 11], ok(0), 1),
                send(1, &[V + 12], ok(2), 5),
            ],
            consumer_ops: vec![
                seek(9, 0),
                poll(9, 1, 2, &[(0, V + 10), (1, V + 11)], 3),
                poll(9, 1, 3, &[(2, V + 12)], 7),
            ],
            group_ops: Vec::new(),
        };
        (h, log(&[V + 10, V + 11, V + 12]))
    }

    #[test]
    fn a_clean_history_passes_every_checker() {
        let (h, f) = clean();
        for kind in KAFKA_CHECKERS {
            assert_eq!(check(kind, &h, Some(&f)), Ok(()), "{}", kind.name());
        }
    }

    #[test]
    fn each_checker_names_the_anomaly_it_owns() {
        let (h, f) = clean();
        let fails = |kind, h: &History, f: &FinalState| check(kind, h, Some(f)).is_err();
        // An acknowledged record replaced in the final log.
        assert!(fails(
            CheckerKind::LostWrite,
            &h,
            &log(&[V + 10, V + 11, V + 99])
        ));
        // An acknowledged record nobody read.
        let mut unseen = h.clone();
        unseen.consumer_ops.pop();
        assert!(fails(CheckerKind::Unseen, &unseen, &f));
        // An idempotent producer's record twice in the log.
        assert!(fails(
            CheckerKind::Duplicate,
            &h,
            &log(&[V + 10, V + 11, V + 12, V + 11])
        ));
        // One offset read with two values.
        let mut two = h.clone();
        two.consumer_ops.push(poll(8, 1, 3, &[(2, V + 13)], 9));
        assert!(fails(CheckerKind::InconsistentOffsets, &two, &f));
        // A definitely failed send that is visible.
        let mut aborted = h.clone();
        aborted.sends[1].outcome = SendOutcome::Failed { code: 10 };
        assert!(fails(CheckerKind::AbortedRead, &aborted, &f));
        // A later batch acknowledged at an earlier offset.
        let mut back = h.clone();
        back.sends[1].outcome = ok(0);
        assert!(fails(CheckerKind::NonmonotonicSend, &back, &f));
        // A consumer going back without a seek; with a seek it may.
        let mut rewind = h.clone();
        rewind.consumer_ops.push(poll(9, 1, 3, &[(1, V + 11)], 9));
        assert!(fails(CheckerKind::NonmonotonicPoll, &rewind, &f));
        rewind.consumer_ops.insert(3, seek(9, 1));
        assert!(!fails(CheckerKind::NonmonotonicPoll, &rewind, &f));
        // A consumer jumping over an offset the final log holds.
        let mut skip = h.clone();
        skip.consumer_ops[2] = poll(9, 1, 4, &[(3, V + 13)], 7);
        assert!(fails(
            CheckerKind::PollSkip,
            &skip,
            &log(&[V + 10, V + 11, V + 12, V + 13])
        ));
    }

    #[test]
    fn the_high_watermark_may_lag_at_a_stale_leader_but_not_go_back_at_a_new_one() {
        let base = |ops: Vec<ConsumerOp>| History {
            sends: Vec::new(),
            consumer_ops: ops,
            group_ops: Vec::new(),
        };
        let f = log(&[]);
        let hw = CheckerKind::HighWatermarkMonotonic;
        // A deposed leader (epoch 1) still answering another consumer with its old view: fine.
        let stale = base(vec![poll(1, 2, 10, &[], 1), poll(2, 1, 8, &[], 2)]);
        assert_eq!(check(hw, &stale, Some(&f)), Ok(()));
        // A new leader (epoch 3) exposing less than epoch 2 did, to anyone: a violation.
        let back = base(vec![poll(1, 2, 10, &[], 1), poll(2, 3, 8, &[], 2)]);
        assert!(check(hw, &back, Some(&f)).is_err());
        // One consumer seeing one leader's high watermark go down.
        let down = base(vec![poll(1, 2, 10, &[], 1), poll(1, 2, 9, &[], 2)]);
        assert!(check(hw, &down, Some(&f)).is_err());
    }

    #[test]
    fn two_leaders_in_one_epoch_are_caught_and_one_leader_twice_is_not() {
        let mut c = LeaderPerEpoch::default();
        let g = ([1; 16], 0);
        assert_eq!(c.on_leader(g, 3, 1), Ok(()));
        assert_eq!(c.on_leader(g, 3, 1), Ok(()));
        assert_eq!(c.on_leader(g, 4, 2), Ok(()));
        assert!(c.on_leader(g, 3, 2).is_err());
        assert_eq!(c.on_leader(([2; 16], 0), 3, 2), Ok(()));
        assert_eq!(c.elected, 3);
    }
    // ----- group checkers over hand-written histories -----

    use crate::kafka::history::{CoordinatorView, GroupOp, GroupView, LiveMember};

    fn joined(member: u32, id: &str, generation: i32, leader: &str, all: &[&str]) -> GroupOp {
        GroupOp::Joined {
            member,
            member_id: id.into(),
            instance: None,
            generation,
            leader: leader.into(),
            members: all.iter().map(|m| (m.to_string(), None)).collect(),
            at: 0,
        }
    }

    fn assigned(id: &str, instance: Option<&str>, generation: i32, ps: &[u32]) -> GroupOp {
        GroupOp::Assigned {
            member: 1,
            member_id: id.into(),
            instance: instance.map(Into::into),
            generation,
            partitions: ps.to_vec(),
            at: 0,
        }
    }

    fn committed(offset: i64, invoked_at: u64, at: u64) -> GroupOp {
        GroupOp::Committed {
            member: 1,
            member_id: "a".into(),
            generation: 1,
            partition: 0,
            offset,
            reset: false,
            invoked_at,
            at,
        }
    }

    fn fetched(offset: i64, invoked_at: u64, at: u64) -> GroupOp {
        GroupOp::Fetched {
            member: 2,
            partition: 0,
            offset,
            invoked_at,
            at,
        }
    }

    fn ops(group_ops: Vec<GroupOp>) -> History {
        History {
            group_ops,
            ..History::default()
        }
    }

    #[test]
    fn a_partition_owned_twice_in_one_generation_is_caught_but_a_static_restart_is_not() {
        let c = CheckerKind::GroupExclusiveOwnership;
        let moved = ops(vec![
            assigned("a", None, 1, &[0, 1]),
            assigned("b", None, 2, &[1]),
        ]);
        assert_eq!(check(c, &moved, None), Ok(()), "another generation");
        let twice = ops(vec![
            assigned("a", None, 1, &[0, 1]),
            assigned("b", None, 1, &[1]),
        ]);
        assert!(check(c, &twice, None).is_err());
        // A static member's new incarnation takes its old place in the same generation.
        let restart = ops(vec![
            assigned("a-1", Some("static-0"), 1, &[0]),
            assigned("a-2", Some("static-0"), 1, &[0]),
        ]);
        assert_eq!(check(c, &restart, None), Ok(()));
    }

    #[test]
    fn generations_may_repeat_for_a_member_but_not_go_back_or_change_membership() {
        let c = CheckerKind::GroupGenerationMonotonic;
        let fine = ops(vec![
            joined(1, "a", 1, "a", &["a", "b"]),
            joined(2, "b", 1, "a", &[]),
            // A follower rejoining a Stable group is told the same generation again.
            joined(2, "b", 1, "a", &[]),
            joined(1, "a", 2, "a", &["a"]),
        ]);
        assert_eq!(check(c, &fine, None), Ok(()));
        let back = ops(vec![
            joined(2, "b", 2, "a", &[]),
            joined(2, "b", 1, "a", &[]),
        ]);
        assert!(check(c, &back, None).is_err(), "a lower generation");
        let twice = ops(vec![
            joined(1, "a", 3, "a", &["a", "b"]),
            joined(1, "a", 3, "a", &["a", "c"]),
        ]);
        assert!(check(c, &twice, None).is_err(), "two memberships");
        let leaders = ops(vec![
            joined(1, "a", 3, "a", &["a", "b"]),
            joined(2, "b", 3, "b", &["a", "b"]),
        ]);
        assert!(check(c, &leaders, None).is_err(), "two leaders");
        let stranger = ops(vec![
            joined(1, "a", 3, "a", &["a", "b"]),
            joined(3, "c", 3, "a", &[]),
        ]);
        assert!(check(c, &stranger, None).is_err(), "a member not listed");
    }

    #[test]
    fn a_committed_offset_may_not_go_back_after_it_was_seen_unless_reset() {
        let c = CheckerKind::GroupCommitMonotonic;
        // The fetch overlaps the commit: it may have read before the commit took effect.
        let overlap = ops(vec![committed(10, 0, 5), fetched(4, 3, 6)]);
        assert_eq!(check(c, &overlap, None), Ok(()));
        let back = ops(vec![committed(10, 0, 5), fetched(4, 7, 8)]);
        assert!(check(c, &back, None).is_err());
        let lost = ops(vec![committed(10, 0, 5), fetched(-1, 7, 8)]);
        assert!(
            check(c, &lost, None).is_err(),
            "nothing committed after a commit"
        );
        let reset = GroupOp::Reset {
            member: 1,
            member_id: "a".into(),
            partition: 0,
            offset: 2,
            explicit: true,
            at: 6,
        };
        let mut rewound = ops(vec![committed(10, 0, 5), reset.clone(), committed(2, 7, 8)]);
        rewound.group_ops.push(fetched(2, 9, 10));
        assert_eq!(check(c, &rewound, None), Ok(()));
        // After the reset's commit, the new floor holds.
        rewound.group_ops.push(fetched(1, 11, 12));
        assert!(check(c, &rewound, None).is_err());
    }

    fn view(state: &str, members: &[&str], live: &[(&str, Option<&[u32]>)]) -> FinalState {
        FinalState {
            partitions: Vec::new(),
            group: Some(GroupView {
                group: "g".into(),
                partitions: 2,
                coordinator: Some(CoordinatorView {
                    node: 1,
                    state: state.into(),
                    generation: 4,
                    members: members.iter().map(|m| m.to_string()).collect(),
                }),
                live: live
                    .iter()
                    .enumerate()
                    .map(|(i, (id, ps))| LiveMember {
                        member: i as u32,
                        member_id: id.to_string(),
                        generation: 4,
                        partitions: ps.map(<[u32]>::to_vec),
                    })
                    .collect(),
                committed: None,
            }),
        }
    }

    #[test]
    fn a_group_is_settled_only_stable_with_exactly_its_live_members_covering_every_partition() {
        let c = CheckerKind::GroupStableAfterLiveness;
        let h = History::default();
        let ok = view(
            "Stable",
            &["a", "b"],
            &[("a", Some(&[0])), ("b", Some(&[1]))],
        );
        assert_eq!(check(c, &h, Some(&ok)), Ok(()));
        let dead = view(
            "Stable",
            &["a", "b", "x"],
            &[("a", Some(&[0])), ("b", Some(&[1]))],
        );
        assert!(check(c, &h, Some(&dead)).is_err(), "a dead member stays");
        let rebalancing = view("PreparingRebalance", &["a"], &[("a", Some(&[0, 1]))]);
        assert!(check(c, &h, Some(&rebalancing)).is_err());
        let orphan = view(
            "Stable",
            &["a", "b"],
            &[("a", Some(&[0])), ("b", Some(&[]))],
        );
        assert!(
            check(c, &h, Some(&orphan)).is_err(),
            "partition 1 has no owner"
        );
        let unassigned = view("Stable", &["a"], &[("a", None)]);
        assert!(check(c, &h, Some(&unassigned)).is_err());
    }

    #[test]
    fn every_acknowledged_record_below_the_committed_offset_was_delivered() {
        let c = CheckerKind::GroupAtLeastOnce;
        let (mut h, mut f) = clean();
        let delivered = |offsets: &[i64]| GroupOp::Delivered {
            member: 1,
            member_id: "a".into(),
            generation: 1,
            partition: 0,
            offsets: offsets.to_vec(),
            at: 0,
        };
        f.group = view("Stable", &[], &[]).group;
        f.group.as_mut().expect("a group").committed = Some(vec![2]);
        h.group_ops = vec![delivered(&[0, 1])];
        assert_eq!(check(c, &h, Some(&f)), Ok(()));
        // Committed past offset 2, which nobody delivered.
        f.group.as_mut().expect("a group").committed = Some(vec![3]);
        assert!(check(c, &h, Some(&f)).is_err());
        h.group_ops.push(delivered(&[2]));
        assert_eq!(check(c, &h, Some(&f)), Ok(()));
    }
}
