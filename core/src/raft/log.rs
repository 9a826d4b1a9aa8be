//! The in-memory view of a Raft log: the entries this node holds, written or not. What is
//! durable is tracked by `Raft` from storage completions; this type knows nothing of disks.
//!
//! The log may start after index 1: entries up to `base` have been compacted away (they are
//! committed, and still on disk where the application's store keeps them), and only the base's
//! position is remembered, so memory is bounded by the uncompacted tail, not by the log.

use super::message::{Entry, LogPosition};
use crate::ids::{LogIndex, Term};
use std::collections::VecDeque;

#[derive(Debug, Default, Clone)]
pub struct RaftLog {
    /// The last compacted entry (index 0, term 0 when nothing was compacted).
    base: LogPosition,
    /// Entry `base.index + 1 + k` lives at `entries[k]`.
    entries: VecDeque<Entry>,
}

impl RaftLog {
    pub fn from_entries(entries: Vec<Entry>) -> RaftLog {
        RaftLog::with_base(LogPosition::default(), entries)
    }

    /// A log whose entries up to `base` are compacted and `entries` follow it.
    pub fn with_base(base: LogPosition, entries: Vec<Entry>) -> RaftLog {
        RaftLog {
            base,
            entries: entries.into(),
        }
    }

    /// The last compacted position; entries at or below it are no longer held.
    pub fn base(&self) -> LogPosition {
        self.base
    }

    pub fn last_index(&self) -> LogIndex {
        LogIndex(self.base.index.0 + self.entries.len() as u64)
    }

    pub fn last_position(&self) -> LogPosition {
        LogPosition {
            index: self.last_index(),
            term: self.last_term(),
        }
    }

    pub fn last_term(&self) -> Term {
        self.entries.back().map_or(self.base.term, |e| e.term)
    }

    /// The term at `index`; index 0 has term 0; the base has its own term; `None` beyond the
    /// end and below the base.
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == LogIndex::ZERO {
            return Some(Term::ZERO);
        }
        if index == self.base.index {
            return Some(self.base.term);
        }
        self.entry(index).map(|e| e.term)
    }

    fn slot(&self, index: LogIndex) -> Option<usize> {
        let k = index.0.checked_sub(self.base.index.0 + 1)?;
        usize::try_from(k).ok()
    }

    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        self.slot(index).and_then(|k| self.entries.get(k))
    }

    /// Entries from `from` on, at most `max_entries` of them and, past the first, at most
    /// `max_bytes` of payload. Compacted entries are not returned: the slice starts at the
    /// first held entry at or after `from`.
    pub fn slice(&self, from: LogIndex, max_entries: usize, max_bytes: usize) -> Vec<Entry> {
        let start = self.slot(from.max(self.base.index.next())).unwrap_or(0);
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
        self.entries.push_back(entry);
        self.last_index()
    }

    /// Removes every entry at or after `from`.
    ///
    /// # Panics
    ///
    /// If `from` is at or below the base: compacted entries are committed and never truncated.
    pub fn truncate_from(&mut self, from: LogIndex) {
        assert!(
            from > self.base.index,
            "truncating compacted entries: from {from:?}, base {:?}",
            self.base.index
        );
        let keep = (from.0 - self.base.index.0 - 1) as usize;
        self.entries.truncate(keep);
    }

    /// Forgets every entry up to `index` (clamped to the held range), keeping its position.
    pub fn compact_through(&mut self, index: LogIndex) {
        let index = index.min(self.last_index());
        while self.base.index < index {
            let e = self.entries.pop_front().expect("held entries up to last");
            self.base = LogPosition {
                index: self.base.index.next(),
                term: e.term,
            };
        }
    }

    /// The first index of the run of entries with the same term as the entry at `index`,
    /// looking no further back than `floor` (nor the base). Used to skip a whole divergent term
    /// per round trip.
    pub fn first_index_of_term_run(&self, index: LogIndex, floor: LogIndex) -> LogIndex {
        let Some(term) = self.term_at(index) else {
            return index;
        };
        let floor = floor.max(self.base.index.next());
        let mut i = index;
        while i > floor && i.0 > 1 && self.term_at(i.prev()) == Some(term) {
            i = i.prev();
        }
        i
    }

    /// The entries held (after the base).
    pub fn entries(&self) -> Vec<Entry> {
        self.entries.iter().cloned().collect()
    }
}
