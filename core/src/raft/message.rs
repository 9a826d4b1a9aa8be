//! Raft messages between peers and the log entries they carry. Plain data: the drivers move
//! them; encoding for the wire belongs to the runtime's envelope, not here.

use crate::ids::{LogIndex, Term};
use bytes::Bytes;

/// What an entry means to the Raft layer. Only `Normal` entries carry client data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EntryKind {
    /// Appended by a new leader so that it can commit entries of earlier terms (Raft §5.4.2).
    Noop,
    /// Client data, opaque to Raft.
    Normal,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub term: Term,
    pub kind: EntryKind,
    pub data: Bytes,
}

impl Entry {
    pub fn normal(term: Term, data: Bytes) -> Entry {
        Entry {
            term,
            kind: EntryKind::Normal,
            data,
        }
    }

    pub fn noop(term: Term) -> Entry {
        Entry {
            term,
            kind: EntryKind::Noop,
            data: Bytes::new(),
        }
    }
}

/// An index together with the term of the entry at that index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct LogPosition {
    pub index: LogIndex,
    pub term: Term,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Message {
    /// "Would you vote for me in `term`?" Sent without changing the sender's own term (§9.6).
    PreVote {
        term: Term,
        last: LogPosition,
    },
    /// `term` is the proposed term when granted, the responder's own term when refused.
    PreVoteResponse {
        term: Term,
        granted: bool,
    },
    /// `transfer`: sent by a candidate its leader told to take over (`TimeoutNow`), so voters
    /// disregard their leader lease for it (Raft thesis §3.10).
    Vote {
        term: Term,
        last: LogPosition,
        transfer: bool,
    },
    VoteResponse {
        term: Term,
        granted: bool,
    },
    Append(Append),
    AppendResponse {
        term: Term,
        result: AppendResult,
    },
    /// Leadership transfer: the leader of `term` tells a caught-up follower to start an
    /// election at once, without pre-vote.
    TimeoutNow {
        term: Term,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Append {
    pub term: Term,
    pub prev: LogPosition,
    pub entries: Vec<Entry>,
    pub leader_commit: LogIndex,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AppendResult {
    /// Entries up to `match_index` are durable on the follower and equal to the leader's.
    Accepted { match_index: LogIndex },
    /// The entry at `prev_index` did not match; the leader should retry from `next_hint`.
    Rejected {
        prev_index: LogIndex,
        next_hint: LogIndex,
    },
}

impl Message {
    pub fn term(&self) -> Term {
        match self {
            Message::PreVote { term, .. }
            | Message::PreVoteResponse { term, .. }
            | Message::Vote { term, .. }
            | Message::VoteResponse { term, .. }
            | Message::AppendResponse { term, .. }
            | Message::TimeoutNow { term } => *term,
            Message::Append(a) => a.term,
        }
    }

    /// A short name for traces.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::PreVote { .. } => "PreVote",
            Message::PreVoteResponse { .. } => "PreVoteResp",
            Message::Vote { .. } => "Vote",
            Message::VoteResponse { .. } => "VoteResp",
            Message::Append(a) if a.entries.is_empty() => "Heartbeat",
            Message::Append(_) => "Append",
            Message::AppendResponse { .. } => "AppendResp",
            Message::TimeoutNow { .. } => "TimeoutNow",
        }
    }
}
