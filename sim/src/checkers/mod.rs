//! Checkers: each file owns one property and is fed by the simulator after every event that can
//! affect it, and once more at the end of the run. A violation stops the run.
//!
//! The simulator keeps one canonical committed log (the first committed entry any node reports
//! at each index); most checkers compare against it, which keeps per-event work proportional to
//! what changed rather than to the size of the logs.

mod acknowledged_durable;
mod commit_monotonic;
mod committed_prefix;
mod definite_failures;
mod election_safety;
mod no_duplicates;

pub use acknowledged_durable::AcknowledgedDurable;
pub use commit_monotonic::CommitMonotonic;
pub use committed_prefix::CommittedPrefix;
pub use definite_failures::DefiniteFailures;
pub use election_safety::ElectionSafety;
pub use no_duplicates::NoDuplicates;

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CheckerKind {
    ElectionSafety,
    CommittedPrefix,
    CommitMonotonic,
    AcknowledgedDurable,
    NoDuplicates,
    DefiniteFailures,
    // Kafka-level checkers (`kafka::checkers`), over client histories and broker states.
    LostWrite,
    Unseen,
    Duplicate,
    InconsistentOffsets,
    AbortedRead,
    NonmonotonicSend,
    NonmonotonicPoll,
    PollSkip,
    HighWatermarkMonotonic,
    LeaderPerEpoch,
    // Consumer-group checkers (`kafka::checkers::group_*`), over members' histories and the
    // coordinator's final view.
    GroupExclusiveOwnership,
    GroupGenerationMonotonic,
    GroupCommitMonotonic,
    GroupStableAfterLiveness,
    GroupAtLeastOnce,
}

impl CheckerKind {
    /// The Raft-level checkers (the Kafka-level ones are `kafka::checkers::KAFKA_CHECKERS`).
    pub const ALL: [CheckerKind; 6] = [
        CheckerKind::ElectionSafety,
        CheckerKind::CommittedPrefix,
        CheckerKind::CommitMonotonic,
        CheckerKind::AcknowledgedDurable,
        CheckerKind::NoDuplicates,
        CheckerKind::DefiniteFailures,
    ];

    pub fn name(self) -> &'static str {
        // Names are what tests and the CLI match on; keep them stable.
        match self {
            CheckerKind::ElectionSafety => "election-safety",
            CheckerKind::CommittedPrefix => "committed-prefix",
            CheckerKind::CommitMonotonic => "commit-monotonic",
            CheckerKind::AcknowledgedDurable => "acknowledged-durable",
            CheckerKind::NoDuplicates => "no-duplicates",
            CheckerKind::DefiniteFailures => "definite-failures",
            CheckerKind::LostWrite => "lost-write",
            CheckerKind::Unseen => "unseen",
            CheckerKind::Duplicate => "duplicate",
            CheckerKind::InconsistentOffsets => "inconsistent-offsets",
            CheckerKind::AbortedRead => "aborted-read",
            CheckerKind::NonmonotonicSend => "nonmonotonic-send",
            CheckerKind::NonmonotonicPoll => "nonmonotonic-poll",
            CheckerKind::PollSkip => "poll-skip",
            CheckerKind::HighWatermarkMonotonic => "hw-monotonic",
            CheckerKind::LeaderPerEpoch => "leader-per-epoch",
            CheckerKind::GroupExclusiveOwnership => "group-exclusive-ownership",
            CheckerKind::GroupGenerationMonotonic => "group-generation-monotonic",
            CheckerKind::GroupCommitMonotonic => "group-commit-monotonic",
            CheckerKind::GroupStableAfterLiveness => "group-stable-after-liveness",
            CheckerKind::GroupAtLeastOnce => "group-at-least-once",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub checker: CheckerKind,
    pub at_ns: u64,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}] at {:.3}ms: {}",
            self.checker.name(),
            self.at_ns as f64 / 1e6,
            self.detail
        )
    }
}

/// Which checkers are on. All of them by default (the Raft-level ones for a Raft-level run); the broken-variant tests switch on one at a
/// time to prove that checker, alone, catches its bug.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckerSet(pub Vec<CheckerKind>);

impl Default for CheckerSet {
    fn default() -> Self {
        CheckerSet(CheckerKind::ALL.to_vec())
    }
}

impl CheckerSet {
    pub fn only(kind: CheckerKind) -> CheckerSet {
        CheckerSet(vec![kind])
    }

    pub fn contains(&self, kind: CheckerKind) -> bool {
        self.0.contains(&kind)
    }
}
