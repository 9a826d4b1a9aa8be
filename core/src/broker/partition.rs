//! One partition as the broker sees it: its Raft group (a single voter for now), the mapping
//! from Raft entries to Kafka offsets, the high watermark, leader epochs, and the idempotent
//! producers' sequence state.
//!
//! Offsets: a normal entry is one batch the broker stamped with its base offset before
//! proposing; a no-op entry (appended by Raft on election) takes no offset. The broker mirrors
//! the partition store's rule here so it knows every entry's offsets without asking storage.

use crate::ids::LogIndex;
use crate::protocol::codes;
use crate::protocol::records::BatchHeader;
use crate::raft::{EntryKind, Raft};
use std::collections::{BTreeMap, VecDeque};

/// Batches per producer whose sequence ranges are remembered for duplicate detection (Kafka
/// allows five in flight per connection, so five suffice).
const PRODUCER_BATCHES_KEPT: usize = 5;

#[derive(Clone, Debug, Default)]
pub struct ProducerState {
    pub epoch: i16,
    /// (first sequence, last sequence, base offset, last offset) of recent batches, oldest first.
    pub recent: VecDeque<(i32, i32, i64, i64)>,
}

/// What the sequence check decided for one idempotent batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Not idempotent, or the next batch in order.
    Append,
    /// A retry of a batch already appended at these offsets.
    Duplicate { base_offset: i64, last_offset: i64 },
    /// Refused with this Kafka error code.
    Refuse(i16),
}

#[derive(Debug)]
pub struct Partition {
    pub topic: String,
    pub index: u32,
    /// `None` until the store has opened.
    pub raft: Option<Raft>,
    pub log_start: i64,
    /// The next offset to assign (the log end offset, uncommitted entries included).
    pub next_offset: i64,
    /// The high watermark: every offset below it is committed.
    pub high_watermark: i64,
    /// Raft entries above the commit index: (index, offset after the entry).
    pub uncommitted: VecDeque<(LogIndex, i64)>,
    /// The last entry index the store has written (acks=1 answers from here).
    pub written: LogIndex,
    /// (leader epoch, first offset of that epoch), ascending.
    pub epochs: Vec<(i32, i64)>,
    pub producers: BTreeMap<i64, ProducerState>,
}

impl Partition {
    pub fn new(topic: &str, index: u32) -> Partition {
        Partition {
            topic: topic.to_string(),
            index,
            raft: None,
            log_start: 0,
            next_offset: 0,
            high_watermark: 0,
            uncommitted: VecDeque::new(),
            written: LogIndex::ZERO,
            epochs: Vec::new(),
            producers: BTreeMap::new(),
        }
    }

    /// Remembers an idempotent batch stored at `base_offset` (appended now, or found on disk
    /// at start-up); other batches are ignored.
    pub fn remember_batch(&mut self, h: &BatchHeader, base_offset: i64) {
        if !h.is_idempotent() {
            return;
        }
        let last_seq = seq_add(h.base_sequence, h.last_offset_delta);
        let last_offset = base_offset + i64::from(h.last_offset_delta);
        let state = self.producers.entry(h.producer_id).or_default();
        if h.producer_epoch != state.epoch {
            state.epoch = h.producer_epoch;
            state.recent.clear();
        }
        state
            .recent
            .push_back((h.base_sequence, last_seq, base_offset, last_offset));
        while state.recent.len() > PRODUCER_BATCHES_KEPT {
            state.recent.pop_front();
        }
    }

    pub fn note_epoch(&mut self, epoch: i32, offset: i64) {
        if self.epochs.last().is_none_or(|&(e, _)| e < epoch) {
            self.epochs.push((epoch, offset));
        }
    }

    pub fn is_leader(&self) -> bool {
        self.raft
            .as_ref()
            .is_some_and(|r| r.role() == crate::raft::Role::Leader)
    }

    pub fn leader_epoch(&self) -> i32 {
        self.raft
            .as_ref()
            .map_or(-1, |r| i32::try_from(r.term().0).unwrap_or(i32::MAX))
    }

    /// Accounts for entries Raft appended since the last call (no-ops on election; proposals
    /// are accounted by `record_proposal` first, so anything new here is a no-op).
    pub fn sync_with_raft(&mut self) {
        let Some(raft) = &self.raft else { return };
        let known = self.known_last();
        let last = raft.last_index();
        let mut i = known.next();
        let mut added = Vec::new();
        while i <= last {
            let e = raft
                .entry(i)
                .expect("uncompacted entry above the commit index");
            debug_assert_eq!(e.kind, EntryKind::Noop, "proposals are accounted when made");
            let term = i32::try_from(e.term.0).unwrap_or(i32::MAX);
            added.push((i, term));
            i = i.next();
        }
        for (i, term) in added {
            // A no-op takes no offset (see the partition store).
            self.note_epoch(term, self.next_offset);
            self.uncommitted.push_back((i, self.next_offset));
        }
    }

    /// The index of the last entry this partition has accounted for.
    fn known_last(&self) -> LogIndex {
        self.uncommitted
            .back()
            .map(|&(i, _)| i)
            .or_else(|| self.raft.as_ref().map(|r| r.commit_index()))
            .unwrap_or(LogIndex::ZERO)
    }

    /// Records a proposal Raft accepted at `index` covering offsets up to `last_offset`.
    pub fn record_proposal(
        &mut self,
        index: LogIndex,
        epoch: i32,
        base_offset: i64,
        last_offset: i64,
    ) {
        self.note_epoch(epoch, base_offset);
        self.next_offset = last_offset + 1;
        self.uncommitted.push_back((index, self.next_offset));
    }

    /// Moves the high watermark up to Raft's commit index. Returns whether it moved.
    pub fn advance_high_watermark(&mut self) -> bool {
        let Some(raft) = &mut self.raft else {
            return false;
        };
        let commit = raft.commit_index();
        let mut moved = false;
        while let Some(&(i, end)) = self.uncommitted.front() {
            if i > commit {
                break;
            }
            self.uncommitted.pop_front();
            self.high_watermark = end;
            moved = true;
        }
        if moved {
            raft.compact_through(commit);
        }
        moved
    }

    /// The sequence check for a batch about to be appended (Kafka's idempotent producer rules).
    pub fn check_sequence(&self, h: &BatchHeader) -> SequenceCheck {
        if h.producer_id < 0 || h.base_sequence < 0 {
            return SequenceCheck::Append;
        }
        let last_seq = seq_add(h.base_sequence, h.last_offset_delta);
        let Some(state) = self.producers.get(&h.producer_id) else {
            return if h.base_sequence == 0 {
                SequenceCheck::Append
            } else {
                SequenceCheck::Refuse(codes::UNKNOWN_PRODUCER_ID)
            };
        };
        if h.producer_epoch < state.epoch {
            return SequenceCheck::Refuse(codes::INVALID_PRODUCER_EPOCH);
        }
        if h.producer_epoch > state.epoch {
            return if h.base_sequence == 0 {
                SequenceCheck::Append
            } else {
                SequenceCheck::Refuse(codes::OUT_OF_ORDER_SEQUENCE_NUMBER)
            };
        }
        if let Some(&(_, _, base, last)) = state
            .recent
            .iter()
            .find(|&&(first, l, _, _)| first == h.base_sequence && l == last_seq)
        {
            return SequenceCheck::Duplicate {
                base_offset: base,
                last_offset: last,
            };
        }
        match state.recent.back() {
            Some(&(_, prev_last, _, _)) if seq_add(prev_last, 1) == h.base_sequence => {
                SequenceCheck::Append
            }
            None if h.base_sequence == 0 => SequenceCheck::Append,
            _ => SequenceCheck::Refuse(codes::OUT_OF_ORDER_SEQUENCE_NUMBER),
        }
    }

    /// The end offset of `epoch` (OffsetForLeaderEpoch): the largest epoch at most `epoch`
    /// and the first offset of the next one (or the log end).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        let k = self.epochs.partition_point(|&(e, _)| e <= epoch);
        if k == 0 {
            return (-1, -1);
        }
        let end = self
            .epochs
            .get(k)
            .map_or(self.next_offset, |&(_, start)| start);
        (self.epochs[k - 1].0, end)
    }
}

/// Sequence numbers wrap from i32::MAX to 0.
fn seq_add(seq: i32, n: i32) -> i32 {
    ((i64::from(seq) + i64::from(n)) % (i64::from(i32::MAX) + 1)) as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::record::{build_batch, BatchSpec, NewRecord};
    use crate::protocol::records::parse_header;

    fn header(pid: i64, epoch: i16, seq: i32, records: usize) -> BatchHeader {
        let recs: Vec<NewRecord<'_>> = (0..records).map(|_| NewRecord::default()).collect();
        let b = build_batch(
            BatchSpec {
                producer_id: pid,
                producer_epoch: epoch,
                base_sequence: seq,
                ..BatchSpec::default()
            },
            &recs,
        );
        parse_header(&b).unwrap()
    }

    #[test]
    fn sequences_must_follow_and_retries_are_recognised() {
        let mut p = Partition::new("t", 0);
        assert_eq!(
            p.check_sequence(&header(7, 0, 3, 1)),
            SequenceCheck::Refuse(codes::UNKNOWN_PRODUCER_ID)
        );
        assert_eq!(p.check_sequence(&header(7, 0, 0, 2)), SequenceCheck::Append);
        p.remember_batch(&header(7, 0, 0, 2), 10);
        assert_eq!(
            p.check_sequence(&header(7, 0, 0, 2)),
            SequenceCheck::Duplicate {
                base_offset: 10,
                last_offset: 11
            }
        );
        assert_eq!(p.check_sequence(&header(7, 0, 2, 1)), SequenceCheck::Append);
        assert_eq!(
            p.check_sequence(&header(7, 0, 3, 1)),
            SequenceCheck::Refuse(codes::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        assert_eq!(p.check_sequence(&header(7, 1, 0, 1)), SequenceCheck::Append);
        p.remember_batch(&header(7, 1, 0, 1), 12);
        assert_eq!(
            p.check_sequence(&header(7, 0, 2, 1)),
            SequenceCheck::Refuse(codes::INVALID_PRODUCER_EPOCH)
        );
        assert_eq!(seq_add(i32::MAX, 1), 0);
    }

    #[test]
    fn epochs_answer_offset_for_leader_epoch() {
        let mut p = Partition::new("t", 0);
        p.note_epoch(1, 0);
        p.note_epoch(3, 10);
        p.next_offset = 15;
        assert_eq!(p.end_offset_for_epoch(0), (-1, -1));
        assert_eq!(p.end_offset_for_epoch(1), (1, 10));
        assert_eq!(p.end_offset_for_epoch(2), (1, 10));
        assert_eq!(p.end_offset_for_epoch(3), (3, 15));
        assert_eq!(p.end_offset_for_epoch(9), (3, 15));
    }
}
