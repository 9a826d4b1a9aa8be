//! The in-memory view of a Raft log: the entries this node holds, written or not. What is
//! durable is tracked by `Raft` from storage completions; this type knows nothing of disks.

use super::message::{Entry, LogPosition};
use crate::ids::{LogIndex, Term};

#[derive(Debug, Default, Clone)]
pub struct RaftLog {
    /// Entry `i` (1-based) lives at `entries[i - 1]`.
    entries: Vec<Entry>,
}

impl RaftLog {
    pub fn from_entries(entries: Vec<Entry>) -> RaftLog {
        RaftLog { entries }
    }

    pub fn last_index(&self) -> LogIndex {
        LogIndex(self.entries.len() as u64)
    }

    pub fn last_position(&self) -> LogPosition {
        LogPosition {
            index: self.last_index(),
            term: self.last_term(),
        }
    }

    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(Term::ZERO, |e| e.term)
    }

    /// The term at `index`; index 0 has term 0; `None` beyond the end.
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == LogIndex::ZERO {
            return Some(Term::ZERO);
        }
        self.entry(index).map(|e| e.term)
    }

    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        let i = usize::try_from(index.0).ok()?;
        i.checked_sub(1).and_then(|i| self.entries.get(i))
    }

    /// Entries from `from` on, at most `max_entries` of them and, past the first, at most
    /// `max_bytes` of payload.
    pub fn slice(&self, from: LogIndex, max_entries: usize, max_bytes: usize) -> Vec<Entry> {
        let start = (from.0.max(1) - 1) as usize;
        let mut bytes = 0usize;
        let mut out = Vec::new();
        for e in self.entries.iter().skip(start).take(max_entries) {
            bytes += e.data.len();
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(e.clone());
        }
        out
    }

    pub fn push(&mut self, entry: Entry) -> LogIndex {
        self.entries.push(entry);
        self.last_index()
    }

    /// Removes every entry at or after `from`.
    pub fn truncate_from(&mut self, from: LogIndex) {
        let keep = from.0.saturating_sub(1) as usize;
        self.entries.truncate(keep);
    }

    /// The first index of the run of entries with the same term as the entry at `index`,
    /// looking no further back than `floor`. Used to skip a whole divergent term per round trip.
    pub fn first_index_of_term_run(&self, index: LogIndex, floor: LogIndex) -> LogIndex {
        let Some(term) = self.term_at(index) else {
            return index;
        };
        let mut i = index;
        while i > floor && i.0 > 1 && self.term_at(i.prev()) == Some(term) {
            i = i.prev();
        }
        i
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
}
