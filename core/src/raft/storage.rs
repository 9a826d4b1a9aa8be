//! What Raft asks of storage, and what storage answers. The driver performs each request and
//! answers it with exactly one completion, in request order.
//!
//! Durability semantics a driver must provide:
//! - `SaveHardState` is atomic and durable when completed (write, fsync, rename, fsync dir).
//! - `Append` and `Truncate` are durable only once a later `Sync` has completed; a crash may
//!   keep any prefix of the unsynced requests (the last one possibly torn), never a later one
//!   without an earlier one.
//! - `Sync` makes every earlier `Append` and `Truncate` durable.
//! - `ReadEntries` reads the log as every earlier request left it (unsynced writes included);
//!   it changes nothing. A leader uses it to catch up a follower from entries it no longer
//!   holds in memory.

use super::message::{Entry, LogPosition};
use crate::ids::{LogIndex, NodeId, Term};

/// The votes-and-terms state that must survive a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct HardState {
    pub term: Term,
    pub voted_for: Option<NodeId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageRequest {
    SaveHardState(HardState),
    /// Write `entries` so that the first one lands at `first`. Everything before `first` is
    /// already in the log; nothing at or after `first` is (a `Truncate` came first if needed).
    Append {
        first: LogIndex,
        entries: Vec<Entry>,
    },
    /// Remove every entry at or after `from`.
    Truncate {
        from: LogIndex,
    },
    /// Make every earlier write durable; `up_to` is the last index at the time of the request.
    Sync {
        up_to: LogIndex,
    },
    /// Read entries from `from` on for follower `peer`: at least one if the store holds any,
    /// at most `max_entries`, and past the first at most `max_bytes` of entry data.
    ReadEntries {
        peer: NodeId,
        from: LogIndex,
        max_entries: usize,
        max_bytes: usize,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageCompletion {
    HardStateSaved(HardState),
    Appended {
        last: LogIndex,
    },
    Truncated {
        from: LogIndex,
    },
    Synced {
        up_to: LogIndex,
    },
    /// The answer to `ReadEntries`. `prev` is the position of entry `from - 1` (index 0 has
    /// term 0), or `None` if the store no longer holds it or entry `from` (retention removed
    /// them); `entries` are exactly as they were appended.
    EntriesRead {
        peer: NodeId,
        from: LogIndex,
        prev: Option<LogPosition>,
        entries: Vec<Entry>,
    },
}

/// What a node finds on its disk when it starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    pub hard_state: HardState,
    /// Entries up to here are committed and compacted: not held in memory (see
    /// [`super::RaftLog`]). Zero for a store that loads its whole log; a persisted commit point
    /// for a store that loads only the entries after it.
    pub base: LogPosition,
    /// The entries after `base`, committed or not.
    pub entries: Vec<Entry>,
}
