//! One partition as the broker sees it: its Raft group over the replicas, the mapping
//! from Raft entries to Kafka offsets, the high watermark, leader epochs, and the idempotent
//! producers' sequence state.
//!
//! Offsets: a normal entry is one batch the broker stamped with its base offset before
//! proposing; a no-op entry (appended by Raft on election) takes no offset. The broker mirrors
//! the partition store's rule here so it knows every entry's offsets without asking storage.

use super::peer::PartitionKey;
use crate::ids::{LogIndex, NodeId};
use crate::protocol::codes;
use crate::protocol::records::{parse_header, BatchHeader};
use crate::raft::{EntryKind, Raft, Recovered};
use crate::storage::PartitionRecovery;
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
    pub key: PartitionKey,
    /// The replicas (Raft voters), preferred leader first.
    pub replicas: Vec<i32>,
    /// `None` until the store has opened.
    pub raft: Option<Raft>,
    pub log_start: i64,
    /// The next offset to assign (the log end offset, uncommitted entries included).
    pub next_offset: i64,
    /// The high watermark: every offset below it is committed.
    pub high_watermark: i64,
    /// Raft entries above the commit index, in order.
    pub uncommitted: VecDeque<Uncommitted>,
    /// The last entry index the store has written (acks=1 answers from here).
    pub written: LogIndex,
    /// (leader epoch, first offset of that epoch), ascending.
    pub epochs: Vec<(i32, i64)>,
    /// Idempotent producers as of the log end (uncommitted batches included): what the next
    /// batch is checked against.
    pub producers: BTreeMap<i64, ProducerState>,
    /// The same as of the high watermark, to roll back to when uncommitted entries are
    /// truncated.
    committed_producers: BTreeMap<i64, ProducerState>,
    /// Whether this broker led the partition at the last role change.
    pub was_leader: bool,
    /// The commit index last persisted as the store's commit point.
    saved_commit: LogIndex,
    /// The last Raft entry accounted here (offsets, epochs, producers).
    accounted: LogIndex,
    /// Bytes of the partition's segment files: from the store at open and after retention,
    /// kept up to date in between from the entries appended and truncated.
    pub size_bytes: u64,
    /// Keep each committed batch in `committed_batches` for the broker to apply (the
    /// `__consumer_offsets` partitions, whose records are the group coordinator's state).
    pub keep_committed: bool,
    /// (base offset, batch) of entries committed since the broker last took them.
    pub committed_batches: Vec<(i64, bytes::Bytes)>,
    /// Planted bugs (see `BrokerBug`); always false outside checker tests.
    pub serve_before_term_commit: bool,
    pub forget_replicated_producers: bool,
}

/// An entry above the commit index.
#[derive(Clone, Copy, Debug)]
pub struct Uncommitted {
    pub index: LogIndex,
    /// Bytes the entry takes in the segment files.
    pub bytes: u64,
    /// The offset after the entry (a no-op takes none).
    pub end: i64,
    /// The batch's header and base offset, for idempotent batches.
    pub idempotent: Option<(BatchHeader, i64)>,
}

/// Commits between persisted commit points: a restart reloads at most this many entries (plus
/// what was in flight) as an uncommitted tail.
const COMMIT_SAVE_EVERY: u64 = 512;

impl Partition {
    pub fn new(topic: &str, index: u32, key: PartitionKey, replicas: Vec<i32>) -> Partition {
        Partition {
            topic: topic.to_string(),
            index,
            key,
            replicas,
            raft: None,
            log_start: 0,
            next_offset: 0,
            high_watermark: 0,
            uncommitted: VecDeque::new(),
            written: LogIndex::ZERO,
            epochs: Vec::new(),
            producers: BTreeMap::new(),
            committed_producers: BTreeMap::new(),
            was_leader: false,
            saved_commit: LogIndex::ZERO,
            accounted: LogIndex::ZERO,
            size_bytes: 0,
            keep_committed: false,
            committed_batches: Vec::new(),
            serve_before_term_commit: false,
            forget_replicated_producers: false,
        }
    }

    /// Takes what the store recovered: offsets, epochs, and the producer state of the
    /// committed part of the log (`batches`: the idempotent batch headers on disk). The tail
    /// above the recovered commit point is accounted once Raft starts (`sync_with_raft`).
    /// Returns what Raft starts from.
    pub fn open(&mut self, recovery: PartitionRecovery, batches: &[BatchHeader]) -> Recovered {
        let tail_start = recovery
            .raft
            .entries
            .iter()
            .filter(|e| e.kind == EntryKind::Normal)
            .find_map(|e| parse_header(&e.data).ok())
            .map_or(recovery.next_offset, |h| h.base_offset);
        for h in batches.iter().filter(|h| h.base_offset < tail_start) {
            remember(&mut self.committed_producers, h, h.base_offset);
        }
        self.producers = self.committed_producers.clone();
        for &(epoch, offset) in &recovery.epochs {
            if offset <= tail_start {
                self.note_epoch(epoch, offset);
            }
        }
        self.log_start = recovery.log_start;
        self.next_offset = tail_start;
        self.high_watermark = tail_start;
        self.written = LogIndex(recovery.raft.base.index.0 + recovery.raft.entries.len() as u64);
        self.saved_commit = recovery.raft.base.index;
        self.accounted = recovery.raft.base.index;
        // The recovered tail is accounted again by `sync_with_raft`.
        let tail: u64 = recovery.raft.entries.iter().map(entry_bytes).sum();
        self.size_bytes = recovery.size_bytes.saturating_sub(tail);
        recovery.raft
    }

    /// Remembers an idempotent batch stored at `base_offset`; other batches are ignored.
    pub fn remember_batch(&mut self, h: &BatchHeader, base_offset: i64) {
        remember(&mut self.producers, h, base_offset);
    }

    pub fn note_epoch(&mut self, epoch: i32, offset: i64) {
        if self.epochs.last().is_none_or(|&(e, _)| e < epoch) {
            self.epochs.push((epoch, offset));
        }
    }

    /// Whether this broker's replica is the Raft leader.
    pub fn is_leader(&self) -> bool {
        self.raft
            .as_ref()
            .is_some_and(|r| r.role() == crate::raft::Role::Leader)
    }

    /// Whether this broker may serve clients as the partition leader: it leads, and an entry
    /// of its own term is committed, so its high watermark covers everything any earlier
    /// leader acknowledged (a new leader's high watermark would otherwise start lower than
    /// what consumers already saw).
    pub fn is_serving(&self) -> bool {
        self.raft.as_ref().is_some_and(|r| {
            r.role() == crate::raft::Role::Leader
                && (self.serve_before_term_commit
                    || r.log().term_at(r.commit_index()) == Some(r.term()))
        })
    }

    pub fn leader_epoch(&self) -> i32 {
        self.raft
            .as_ref()
            .map_or(-1, |r| i32::try_from(r.term().0).unwrap_or(i32::MAX))
    }

    /// Accounts for entries Raft appended since the last call: proposals made here, no-ops of
    /// new leaders, and entries a follower received. Normal entries are batches stamped with
    /// their base offset; a no-op takes no offset.
    pub fn sync_with_raft(&mut self) {
        let Some(raft) = &self.raft else { return };
        let last = raft.last_index();
        let leading = raft.role() == crate::raft::Role::Leader;
        // Not derived from the commit index: a follower may receive entries and learn they
        // are committed in the same append, before they are accounted here.
        let mut i = self.accounted.next();
        let mut added = Vec::new();
        while i <= last {
            let e = raft
                .entry(i)
                .expect("uncompacted entry above the commit index");
            let term = i32::try_from(e.term.0).unwrap_or(i32::MAX);
            let header = match e.kind {
                EntryKind::Noop => None,
                // A batch that does not parse cannot come from a leader (it validated it);
                // account it as taking no offsets rather than trust it.
                EntryKind::Normal => parse_header(&e.data).ok(),
            };
            added.push((i, term, header, entry_bytes(e)));
            i = i.next();
        }
        for (index, term, header, bytes) in added {
            self.size_bytes += bytes;
            let start = header.map_or(self.next_offset, |h| h.base_offset);
            self.note_epoch(term, start);
            let mut idempotent = None;
            if let Some(h) = header {
                self.next_offset = h.last_offset() + 1;
                if h.is_idempotent() && (leading || !self.forget_replicated_producers) {
                    self.remember_batch(&h, h.base_offset);
                    idempotent = Some((h, h.base_offset));
                }
            }
            self.uncommitted.push_back(Uncommitted {
                index,
                bytes,
                end: self.next_offset,
                idempotent,
            });
            self.accounted = index;
        }
    }

    /// Rolls the bookkeeping back to before entry `from` (Raft truncated it and everything
    /// after). Returns the new log end offset.
    pub fn truncate_from(&mut self, from: LogIndex) -> i64 {
        let removed: u64 = self
            .uncommitted
            .iter()
            .filter(|u| u.index >= from)
            .map(|u| u.bytes)
            .sum();
        self.size_bytes = self.size_bytes.saturating_sub(removed);
        self.uncommitted.retain(|u| u.index < from);
        self.accounted = self.accounted.min(from.prev());
        self.next_offset = self
            .uncommitted
            .back()
            .map_or(self.high_watermark, |u| u.end);
        let kept_term = self
            .raft
            .as_ref()
            .and_then(|r| r.log().term_at(from.prev()))
            .map_or(0, |t| i32::try_from(t.0).unwrap_or(i32::MAX));
        self.epochs.retain(|&(e, _)| e <= kept_term);
        self.producers = self.committed_producers.clone();
        let kept: Vec<(BatchHeader, i64)> = self
            .uncommitted
            .iter()
            .filter_map(|u| u.idempotent)
            .collect();
        for (h, base) in kept {
            remember(&mut self.producers, &h, base);
        }
        self.written = self.written.min(from.prev());
        self.next_offset
    }

    /// (base offset, batch) of the entries above the high watermark, in order.
    pub fn uncommitted_batches(&self) -> Vec<(i64, bytes::Bytes)> {
        let Some(raft) = &self.raft else {
            return Vec::new();
        };
        self.uncommitted
            .iter()
            .filter_map(|u| raft.entry(u.index))
            .filter(|e| e.kind == EntryKind::Normal)
            .filter_map(|e| {
                parse_header(&e.data)
                    .ok()
                    .map(|h| (h.base_offset, e.data.clone()))
            })
            .collect()
    }

    /// Moves the high watermark up to Raft's commit index. Returns whether it moved.
    pub fn advance_high_watermark(&mut self) -> bool {
        let Some(raft) = &mut self.raft else {
            return false;
        };
        let commit = raft.commit_index();
        let mut moved = false;
        while let Some(&u) = self.uncommitted.front() {
            if u.index > commit {
                break;
            }
            self.uncommitted.pop_front();
            if self.keep_committed {
                if let Some(e) = raft.entry(u.index).filter(|e| e.kind == EntryKind::Normal) {
                    if let Ok(h) = parse_header(&e.data) {
                        self.committed_batches.push((h.base_offset, e.data.clone()));
                    }
                }
            }
            self.high_watermark = u.end;
            if let Some((h, base)) = u.idempotent {
                remember(&mut self.committed_producers, &h, base);
            }
            moved = true;
        }
        if moved {
            raft.compact_through(commit);
        }
        moved
    }

    /// The commit index to persist as the store's commit point, when it has moved far enough
    /// (replicated partitions only: a single voter's whole log is committed).
    pub fn commit_to_save(&mut self) -> Option<LogIndex> {
        let raft = self.raft.as_ref()?;
        if self.replicas.len() < 2 {
            return None;
        }
        let commit = raft.commit_index();
        (commit.0 >= self.saved_commit.0 + COMMIT_SAVE_EVERY).then(|| {
            self.saved_commit = commit;
            commit
        })
    }

    /// (replica, committed offsets it lacks) for each follower, on the leader: 0 means the
    /// follower holds everything below the high watermark (it is in sync). A follower whose
    /// last matched entry this leader no longer holds in memory is counted from the oldest
    /// batch it does hold (a lower bound).
    pub fn follower_lag(&self) -> Vec<(i32, i64)> {
        let Some(raft) = &self.raft else {
            return Vec::new();
        };
        let me = raft.id().0 as i32;
        let commit = raft.commit_index();
        self.replicas
            .iter()
            .filter(|&&r| r != me)
            .map(|&r| {
                let matched = raft.matched(NodeId(r as u32)).unwrap_or(LogIndex::ZERO);
                if matched >= commit {
                    return (r, 0);
                }
                // The offset after the follower's last batch: walk back over no-ops.
                let mut i = matched;
                let mut end = None;
                while i > raft.log().base().index {
                    match raft.entry(i) {
                        Some(e) if e.kind == EntryKind::Normal => {
                            end = parse_header(&e.data).ok().map(|h| h.last_offset() + 1);
                            break;
                        }
                        Some(_) => i = i.prev(),
                        None => break,
                    }
                }
                // At or below the in-memory log's base (compacted through the slowest
                // follower): the follower's end is where the next batch after `matched`
                // starts; only no-ops after it: it has every offset.
                let end = end.unwrap_or_else(|| {
                    if matched < raft.log().base().index {
                        // Far behind, past what the log keeps in memory: not known exactly.
                        return self.log_start;
                    }
                    let mut i = matched.next();
                    while i <= commit {
                        match raft.entry(i) {
                            Some(e) if e.kind == EntryKind::Normal => {
                                return parse_header(&e.data)
                                    .map_or(self.log_start, |h| h.base_offset);
                            }
                            Some(_) => i = i.next(),
                            None => break,
                        }
                    }
                    self.high_watermark
                });
                let end = end.min(self.high_watermark);
                (r, (self.high_watermark - end).max(1))
            })
            .collect()
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

/// Bytes an entry takes in a segment file: its batch and the 4-byte trailer (a no-op takes
/// none: it lives in the epochs file).
fn entry_bytes(e: &crate::raft::Entry) -> u64 {
    match e.kind {
        EntryKind::Noop => 0,
        EntryKind::Normal => e.data.len() as u64 + 4,
    }
}

/// Remembers an idempotent batch in a producer-state map.
fn remember(producers: &mut BTreeMap<i64, ProducerState>, h: &BatchHeader, base_offset: i64) {
    if !h.is_idempotent() {
        return;
    }
    let last_seq = seq_add(h.base_sequence, h.last_offset_delta);
    let last_offset = base_offset + i64::from(h.last_offset_delta);
    let state = producers.entry(h.producer_id).or_default();
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
        let mut p = Partition::new(
            "t",
            0,
            PartitionKey {
                topic_id: [0; 16],
                partition: 0,
            },
            vec![1],
        );
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
        let mut p = Partition::new(
            "t",
            0,
            PartitionKey {
                topic_id: [0; 16],
                partition: 0,
            },
            vec![1],
        );
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
