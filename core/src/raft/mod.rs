//! One Raft implementation for every replicated thing in Sluice: the metadata group and each
//! partition. Sans-IO: see the crate docs for the driving contract.
//!
//! Implemented: pre-vote (§9.6), check-quorum (a leader that has not heard from a majority within
//! an election timeout steps down), a vote lease (a node that heard from a live leader within the
//! minimum election timeout neither grants pre-votes nor votes, so a rejoining node cannot
//! disrupt a healthy leader), randomized election timeouts from [`DetRng`], pipelined and batched
//! append with a bounded in-flight window per follower, follower truncation on divergence with
//! a whole-term skip on rejection, commit of current-term entries only (§5.4.2), and leadership
//! transfer (thesis §3.10: the leader catches the target up, then sends `TimeoutNow`; the
//! target campaigns at once and its votes override the voters' leader lease).
//!
//! Durability: no peer message leaves while the (term, vote) it depends on is not durable, a
//! follower acknowledges only entries a completed `Sync` covers, and a leader counts itself
//! toward a majority only for entries it has synced.
//!
//! Log compaction: `Raft::compact_through` lets any node forget committed, durable entries; the
//! application's store keeps them. A leader keeps what its followers still need, except for a
//! follower more than `Config::max_lag_in_memory` entries behind the commit index: that one is
//! caught up from the store (`StorageRequest::ReadEntries`), one read outstanding at a time. A
//! follower forgets through its commit index and accepts appends that reach below its base
//! (those entries are committed, so equal by Log Matching). A store may start its recovered log
//! at a persisted commit point and hand back the uncommitted tail after it.
//!
//! Not here (yet): snapshot install (a follower that needs entries the leader's store no longer
//! has is reported once per term as `Event::FollowerNeedsSnapshot` and only heartbeated),
//! membership changes, read-index/lease reads.

mod log;
mod machine;
mod message;
mod storage;

pub use log::RaftLog;
pub use machine::Raft;
pub use message::{Append, AppendResult, Entry, EntryKind, LogPosition, Message};
pub use storage::{HardState, Recovered, StorageCompletion, StorageRequest};

use crate::ids::{LogIndex, NodeId, Term};
use crate::time::Now;
use bytes::Bytes;
use std::fmt;
use std::time::Duration;

/// Identifies a client proposal so its outcome can be routed back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProposalId(pub u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub id: NodeId,
    /// Every voter of the group, this node included. 1, 3 or 5 in practice.
    pub voters: Vec<NodeId>,
    /// Election timeouts are drawn uniformly from `[election_timeout, 2 * election_timeout)`.
    pub election_timeout: Duration,
    pub heartbeat_interval: Duration,
    /// Append messages in flight to one follower before the leader waits for acknowledgements.
    pub max_inflight: usize,
    pub max_batch_entries: usize,
    pub max_batch_bytes: usize,
    /// Proposals awaiting commit; beyond this a proposal is refused with `Busy`.
    pub max_pending_proposals: usize,
    /// A leader keeps in memory the entries a follower still needs only while that follower
    /// is at most this many entries behind the commit index; one further behind does not hold
    /// compaction back and is caught up from the store instead.
    pub max_lag_in_memory: usize,
    pub pre_vote: bool,
    pub check_quorum: bool,
    /// A deliberately planted bug, for proving that the simulator's checkers catch it.
    #[cfg(feature = "broken-variants")]
    pub bug: Option<Bug>,
}

/// Known-wrong behaviours that tests switch on to show a checker catching them.
#[cfg(feature = "broken-variants")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bug {
    /// A follower grants its vote even if it already voted for someone else in this term.
    VoteTwice,
    /// Followers acknowledge, and the leader counts itself, before the entries are synced.
    AckBeforeSync,
    /// A follower keeps its existing entry when the leader's entry at that index differs.
    SkipTruncation,
    /// The leader commits by majority even when the entry is from an earlier term (Figure 8).
    CommitPreviousTerm,
    /// A follower takes the leader's commit index even if it is lower than its own.
    CommitRegress,
    /// A follower appends an append's entries at its log end instead of at `prev + 1`.
    AppendAtEnd,
    /// A leader that steps down reports its uncommitted proposals as definitely failed.
    FailPendingOnStepDown,
    /// A restarted node forgets whom it voted for in its current term.
    ForgetVoteOnRestart,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ConfigError {
    NoVoters,
    NotAVoter(NodeId),
    DuplicateVoter(NodeId),
    ZeroDuration(&'static str),
    HeartbeatNotBelowElectionTimeout,
    ZeroLimit(&'static str),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NoVoters => write!(f, "a raft group needs at least one voter"),
            ConfigError::NotAVoter(id) => write!(f, "node {id} is not among the voters"),
            ConfigError::DuplicateVoter(id) => write!(f, "voter {id} is listed twice"),
            ConfigError::ZeroDuration(what) => write!(f, "{what} must be greater than zero"),
            ConfigError::HeartbeatNotBelowElectionTimeout => {
                write!(
                    f,
                    "heartbeat interval must be shorter than the election timeout"
                )
            }
            ConfigError::ZeroLimit(what) => write!(f, "{what} must be at least 1"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Defaults tuned for a LAN: 150 ms election timeout, 50 ms heartbeats.
    pub fn new(id: NodeId, voters: Vec<NodeId>) -> Config {
        Config {
            id,
            voters,
            election_timeout: Duration::from_millis(150),
            heartbeat_interval: Duration::from_millis(50),
            max_inflight: 8,
            max_batch_entries: 256,
            max_batch_bytes: 1 << 20,
            max_pending_proposals: 4096,
            max_lag_in_memory: 8192,
            pre_vote: true,
            check_quorum: true,
            #[cfg(feature = "broken-variants")]
            bug: None,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.voters.is_empty() {
            return Err(ConfigError::NoVoters);
        }
        let mut sorted = self.voters.clone();
        sorted.sort();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(ConfigError::DuplicateVoter(w[0]));
        }
        if !self.voters.contains(&self.id) {
            return Err(ConfigError::NotAVoter(self.id));
        }
        if self.election_timeout.is_zero() {
            return Err(ConfigError::ZeroDuration("election timeout"));
        }
        if self.heartbeat_interval.is_zero() {
            return Err(ConfigError::ZeroDuration("heartbeat interval"));
        }
        if self.heartbeat_interval >= self.election_timeout {
            return Err(ConfigError::HeartbeatNotBelowElectionTimeout);
        }
        for (what, v) in [
            ("max_inflight", self.max_inflight),
            ("max_batch_entries", self.max_batch_entries),
            ("max_batch_bytes", self.max_batch_bytes),
            ("max_pending_proposals", self.max_pending_proposals),
            ("max_lag_in_memory", self.max_lag_in_memory),
        ] {
            if v == 0 {
                return Err(ConfigError::ZeroLimit(what));
            }
        }
        Ok(())
    }

    #[cfg(feature = "broken-variants")]
    fn has_bug(&self, bug: Bug) -> bool {
        self.bug == Some(bug)
    }

    #[cfg(not(feature = "broken-variants"))]
    #[inline(always)]
    fn has_bug(&self, _bug: Bug) -> bool {
        false
    }
}

/// Without the feature the variants still exist as names so call sites compile, but
/// `Config::has_bug` is constantly false and the optimiser removes the branches.
#[cfg(not(feature = "broken-variants"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(dead_code)]
enum Bug {
    VoteTwice,
    AckBeforeSync,
    SkipTruncation,
    CommitPreviousTerm,
    CommitRegress,
    AppendAtEnd,
    FailPendingOnStepDown,
    ForgetVoteOnRestart,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A deadline from `poll_timeout` may have passed. Early calls are no-ops.
    Timeout(Now),
    Receive {
        now: Now,
        from: NodeId,
        message: Message,
    },
    /// A client asks the group to append `data`.
    Propose {
        now: Now,
        id: ProposalId,
        data: Bytes,
    },
    /// Storage finished the oldest outstanding request.
    Storage {
        now: Now,
        completion: StorageCompletion,
    },
}

impl Input {
    pub fn now(&self) -> Now {
        match self {
            Input::Timeout(now) => *now,
            Input::Receive { now, .. }
            | Input::Propose { now, .. }
            | Input::Storage { now, .. } => *now,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Deliver `message` to peer `to`; delivery may fail, be duplicated or reordered.
    Send { to: NodeId, message: Message },
    /// Perform this request and answer with one `Input::Storage`.
    Storage(StorageRequest),
    /// The outcome of a proposal, for the client that made it.
    Proposal {
        id: ProposalId,
        outcome: ProposalOutcome,
    },
    /// Something worth a log line or a trace entry; no action needed.
    Event(Event),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProposalOutcome {
    /// Committed (below the high watermark) at `index` in `term`.
    Committed { index: LogIndex, term: Term },
    /// Definitely not appended: this node is not the leader, or it is handing leadership over
    /// (`Raft::transfer_leadership`; then `leader` is `None`). `leader` is a hint.
    NotLeader { leader: Option<NodeId> },
    /// Definitely not appended: too many proposals are pending.
    Busy,
    /// Appended but leadership was lost before commit: it may or may not commit.
    Unknown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    RoleChanged {
        term: Term,
        role: Role,
        leader: Option<NodeId>,
    },
    /// Entries at and after `from` were removed because they diverged from the leader's log.
    Truncated { from: LogIndex, removed: u64 },
    /// A leader stepped down because it had not heard from a quorum.
    LostQuorum { term: Term },
    /// Follower `peer` needs entries that neither this leader's memory nor its store holds any
    /// more (retention removed them). Reported once per term; the follower is only heartbeated
    /// from then on: snapshot install is not implemented.
    FollowerNeedsSnapshot { peer: NodeId },
}

#[cfg(test)]
mod tests;
