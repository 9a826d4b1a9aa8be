//! The Raft state machine itself. Inputs in, outputs out; see `mod.rs` for the contract and the
//! list of what is implemented.
//!
//! Catch-up from the store: when a follower needs entries at or below the compacted base, the
//! leader asks storage for them (`ReadEntries`, one outstanding per follower) and sends them
//! when the completion arrives, if it still leads in the same term and the follower still needs
//! them. Heartbeats that would be anchored below the base are anchored at index 0 instead (see
//! `send_empty`).

use super::log::RaftLog;
use super::message::{Append, AppendResult, Entry, LogPosition, Message};
use super::storage::{HardState, Recovered, StorageCompletion, StorageRequest};
use super::{Bug, Config, ConfigError, Event, Input, Output, ProposalId, ProposalOutcome, Role};
use crate::ids::{LogIndex, NodeId, Term};
use crate::rng::DetRng;
use crate::time::{Instant, Now};
use bytes::Bytes;
use std::collections::VecDeque;

/// How the leader is currently replicating to one follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReplicationState {
    /// Searching for the last matching index: one append at a time.
    Probe,
    /// Streaming: up to `max_inflight` appends outstanding.
    Replicate,
}

#[derive(Clone, Debug)]
struct Progress {
    id: NodeId,
    state: ReplicationState,
    next: LogIndex,
    matched: LogIndex,
    /// Last index of each append in flight, ascending.
    inflight: VecDeque<LogIndex>,
    probe_sent: bool,
    /// Heard from since the last quorum check.
    active: bool,
    /// Heartbeat ticks in a row with appends in flight and no advance of `matched`. Heartbeat
    /// responses do not count as progress: a lost append would otherwise stall the window for
    /// ever while the follower answers every heartbeat.
    stalled_ticks: u32,
    matched_at_tick: LogIndex,
    /// The `from` of this follower's outstanding `ReadEntries`.
    reading: Option<LogIndex>,
    /// A `from` the store could not serve: no further reads while the follower needs it.
    unavailable: Option<LogIndex>,
    /// `Event::FollowerNeedsSnapshot` was emitted (once per term: progress lives one term).
    snapshot_reported: bool,
}

impl Progress {
    fn new(id: NodeId, next: LogIndex) -> Progress {
        Progress {
            id,
            state: ReplicationState::Probe,
            next,
            matched: LogIndex::ZERO,
            inflight: VecDeque::new(),
            probe_sent: false,
            active: false,
            stalled_ticks: 0,
            matched_at_tick: LogIndex::ZERO,
            reading: None,
            unavailable: None,
            snapshot_reported: false,
        }
    }

    fn window_full(&self, max_inflight: usize) -> bool {
        match self.state {
            ReplicationState::Probe => self.probe_sent,
            ReplicationState::Replicate => self.inflight.len() >= max_inflight,
        }
    }

    fn become_probe(&mut self) {
        self.state = ReplicationState::Probe;
        self.next = self.matched.next();
        self.inflight.clear();
        self.probe_sent = false;
    }
}

/// Heartbeat ticks without progress before a replicating follower is assumed to have lost an
/// append and drops back to probing.
const STALL_TICKS: u32 = 2;

/// A leadership transfer in progress (leader side).
#[derive(Clone, Copy, Debug)]
struct Transfer {
    to: NodeId,
    /// Abandoned at this time: one election timeout after it began.
    deadline: Instant,
}

#[derive(Debug)]
pub struct Raft {
    cfg: Config,
    role: Role,
    term: Term,
    voted_for: Option<NodeId>,
    leader: Option<NodeId>,
    log: RaftLog,
    commit: LogIndex,
    /// Entries up to here are on disk, as far as completed syncs prove.
    durable: LogIndex,
    /// The `up_to` of each outstanding sync, lowered by any truncation issued after it.
    pending_syncs: VecDeque<LogIndex>,
    /// The term in which each outstanding `ReadEntries` was issued, in request order, so a
    /// completion from an earlier term (or incarnation of leadership) is recognised and dropped.
    reads: VecDeque<Term>,
    transfer: Option<Transfer>,
    hard_state_saved: HardState,
    hard_state_requested: HardState,
    /// Peer messages held until `hard_state_requested` is durable.
    gated: Vec<(NodeId, Message)>,
    /// Follower side: the highest index known to match the current leader's log this term.
    verified: LogIndex,
    /// Follower side: an acknowledgement is owed once `durable` catches up with `verified`.
    ack_owed: Option<NodeId>,
    /// Follower side: the last match index acknowledged this term.
    acked_match: LogIndex,
    votes: Vec<NodeId>,
    election_deadline: Option<Instant>,
    heartbeat_deadline: Option<Instant>,
    quorum_deadline: Option<Instant>,
    last_leader_contact: Option<Instant>,
    progress: Vec<Progress>,
    proposals: VecDeque<(LogIndex, ProposalId)>,
    outputs: VecDeque<Output>,
    rng: DetRng,
    now: Now,
}

impl Raft {
    /// Starts (or restarts) a node from what it found on disk.
    pub fn new(
        cfg: Config,
        recovered: Recovered,
        rng: DetRng,
        now: Now,
    ) -> Result<Raft, ConfigError> {
        cfg.validate()?;
        let mut recovered = recovered;
        if cfg.has_bug(Bug::ForgetVoteOnRestart) {
            recovered.hard_state.voted_for = None;
        }
        let log = RaftLog::with_base(recovered.base, recovered.entries);
        let durable = log.last_index();
        // Compacted entries were committed before they were compacted.
        let commit = recovered.base.index;
        let mut raft = Raft {
            role: Role::Follower,
            term: recovered.hard_state.term,
            voted_for: recovered.hard_state.voted_for,
            leader: None,
            log,
            commit,
            durable,
            pending_syncs: VecDeque::new(),
            reads: VecDeque::new(),
            transfer: None,
            hard_state_saved: recovered.hard_state,
            hard_state_requested: recovered.hard_state,
            gated: Vec::new(),
            verified: LogIndex::ZERO,
            ack_owed: None,
            acked_match: LogIndex::ZERO,
            votes: Vec::new(),
            election_deadline: None,
            heartbeat_deadline: None,
            quorum_deadline: None,
            last_leader_contact: None,
            progress: Vec::new(),
            proposals: VecDeque::new(),
            outputs: VecDeque::new(),
            rng,
            now,
            cfg,
        };
        raft.reset_election_timer();
        Ok(raft)
    }

    // ----- getters -----

    pub fn id(&self) -> NodeId {
        self.cfg.id
    }
    pub fn config(&self) -> &Config {
        &self.cfg
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn term(&self) -> Term {
        self.term
    }
    pub fn voted_for(&self) -> Option<NodeId> {
        self.voted_for
    }
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
    /// The highest index known to be committed (the high watermark of a partition).
    pub fn commit_index(&self) -> LogIndex {
        self.commit
    }
    pub fn last_index(&self) -> LogIndex {
        self.log.last_index()
    }
    pub fn durable_index(&self) -> LogIndex {
        self.durable
    }
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        self.log.entry(index)
    }
    pub fn log(&self) -> &RaftLog {
        &self.log
    }
    pub fn pending_proposals(&self) -> usize {
        self.proposals.len()
    }
    /// On a leader, the highest index known to match on follower `peer`; `None` on other
    /// roles and for ids that are not peers (this node included).
    pub fn matched(&self, peer: NodeId) -> Option<LogIndex> {
        self.progress
            .iter()
            .find(|p| p.id == peer)
            .map(|p| p.matched)
    }
    /// Whether this leader is handing leadership over (see [`Raft::transfer_leadership`]).
    pub fn is_transferring(&self) -> bool {
        self.transfer.is_some()
    }

    // ----- commands -----

    /// A single voter has no one to wait for: it starts its election now instead of after a
    /// randomized timeout. Multi-voter groups ignore this (their timeouts break ties).
    pub fn campaign_if_alone(&mut self) {
        if self.cfg.voters.len() == 1 && self.role != Role::Leader {
            self.start_election(false);
            self.invariants();
        }
    }

    /// Starts campaigning now instead of after a randomized election timeout (with pre-vote
    /// when configured): a new partition's preferred replica, so leadership starts where the
    /// assignment wants it instead of moving there later. A leader ignores it.
    pub fn campaign_now(&mut self) {
        if self.role == Role::Leader {
            return;
        }
        if self.cfg.pre_vote {
            self.start_pre_vote();
        } else {
            self.start_election(false);
        }
        self.invariants();
    }

    /// Lets the log forget entries through `index`, once the application no longer needs them
    /// in memory (they are in its store). Clamped to committed entries this node has synced
    /// (committed, so never truncated; synced, so a restart finds them where the base says) and,
    /// on a leader, to what every follower already holds, so catching up stays in memory. The
    /// exception is a follower more than `max_lag_in_memory` entries behind the commit index:
    /// holding everything it lacks could cost unbounded memory, so it is caught up from the
    /// store instead (`StorageRequest::ReadEntries`).
    pub fn compact_through(&mut self, index: LogIndex) {
        let mut safe = index.min(self.commit).min(self.durable);
        if self.role == Role::Leader {
            let lag = self.cfg.max_lag_in_memory as u64;
            for p in &self.progress {
                if self.commit.0.saturating_sub(p.matched.0) <= lag {
                    safe = safe.min(p.matched);
                }
            }
        }
        self.log.compact_through(safe);
        self.invariants();
    }

    /// Hands leadership to voter `to` (preferred-leader balancing): once `to` has matched this
    /// leader's last index, it is told to campaign at once (`Message::TimeoutNow`). Until then,
    /// for at most one election timeout, new proposals are refused with `NotLeader { leader:
    /// None }`, so the target can catch up with a log that stops growing and clients retry
    /// against the new leader. After the timeout the transfer is abandoned and this node leads
    /// as before. Ignored unless this node leads and `to` is another voter; a second call
    /// replaces the first.
    pub fn transfer_leadership(&mut self, to: NodeId) {
        let Some(i) = self.progress.iter().position(|p| p.id == to) else {
            return;
        };
        self.transfer = Some(Transfer {
            to,
            deadline: self.now.mono + self.cfg.election_timeout,
        });
        self.maybe_send_timeout_now(i);
        self.send_append(i, false);
        self.invariants();
    }

    // ----- driving contract -----

    pub fn handle_input(&mut self, input: Input) {
        let now = input.now();
        // Monotonic time never goes backwards within an incarnation; a driver that violates
        // this is buggy, but a stale `now` must not rewind our deadlines either.
        if now.mono >= self.now.mono {
            self.now = now;
        }
        match input {
            Input::Timeout(_) => self.on_timeout(),
            Input::Receive { from, message, .. } => self.on_message(from, message),
            Input::Propose { id, data, .. } => self.on_propose(id, data),
            Input::Storage { completion, .. } => self.on_storage(completion),
        }
        self.invariants();
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.election_deadline,
            self.heartbeat_deadline,
            self.quorum_deadline,
            self.transfer.map(|t| t.deadline),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Cheap structural assertions, run after every input.
    pub fn invariants(&self) {
        let last = self.log.last_index();
        assert!(
            self.commit <= last,
            "commit {:?} beyond last {:?}",
            self.commit,
            last
        );
        assert!(
            self.durable <= last,
            "durable {:?} beyond last {:?}",
            self.durable,
            last
        );
        assert!(self.hard_state_saved.term <= self.term);
        assert!(
            self.log.base().index <= self.commit,
            "compacted {:?} beyond commit {:?}",
            self.log.base().index,
            self.commit
        );
        match self.role {
            Role::Leader => {
                assert_eq!(self.leader, Some(self.cfg.id));
                assert_eq!(self.voted_for, Some(self.cfg.id));
                assert_eq!(self.progress.len(), self.cfg.voters.len() - 1);
            }
            _ => {
                assert!(self.progress.is_empty());
                assert!(self.proposals.is_empty());
                assert!(self.transfer.is_none());
            }
        }
        if let (Some(first), Some(last_p)) = (self.proposals.front(), self.proposals.back()) {
            assert!(first.0 <= last_p.0);
            assert!(first.0 > self.commit);
        }
    }

    // ----- inputs -----

    fn on_timeout(&mut self) {
        let now = self.now.mono;
        if self.role == Role::Leader {
            if self.transfer.is_some_and(|t| t.deadline <= now) {
                // The target did not take over in time: lead on, and accept proposals again.
                self.transfer = None;
            }
            if self.heartbeat_deadline.is_some_and(|d| d <= now) {
                self.heartbeat_deadline = Some(now + self.cfg.heartbeat_interval);
                self.on_heartbeat_tick();
            }
            if self.quorum_deadline.is_some_and(|d| d <= now) {
                self.quorum_deadline = Some(now + self.cfg.election_timeout);
                self.on_quorum_check();
            }
        } else if self.election_deadline.is_some_and(|d| d <= now) {
            if self.role == Role::Candidate && self.has_quorum(self.votes.len()) {
                // Elected, but its own vote is still on its way to disk (a busy storage
                // thread, say at start-up with many partitions): another election would only
                // bump the term and save again. It leads once the save completes.
                self.reset_election_timer();
                return;
            }
            if self.cfg.pre_vote {
                self.start_pre_vote();
            } else {
                self.start_election(false);
            }
        }
    }

    fn on_message(&mut self, from: NodeId, message: Message) {
        if from == self.cfg.id || !self.cfg.voters.contains(&from) {
            return; // Not a member of this group: ignore rather than trust.
        }
        match message {
            Message::PreVote { term, last } => self.on_pre_vote(from, term, last),
            Message::PreVoteResponse { term, granted } => {
                self.on_pre_vote_response(from, term, granted)
            }
            Message::Vote {
                term,
                last,
                transfer,
            } => self.on_vote(from, term, last, transfer),
            Message::VoteResponse { term, granted } => self.on_vote_response(from, term, granted),
            Message::Append(append) => self.on_append(from, append),
            Message::AppendResponse { term, result } => self.on_append_response(from, term, result),
            Message::TimeoutNow { term } => self.on_timeout_now(from, term),
        }
    }

    fn on_propose(&mut self, id: ProposalId, data: Bytes) {
        if self.role != Role::Leader || self.transfer.is_some() {
            // While handing over, the leader is about to change: say so (no hint, the new
            // leader is not known yet) rather than grow the log the target must catch up with.
            let leader = if self.transfer.is_some() {
                None
            } else {
                self.leader
            };
            let outcome = ProposalOutcome::NotLeader { leader };
            self.outputs.push_back(Output::Proposal { id, outcome });
            return;
        }
        if self.proposals.len() >= self.cfg.max_pending_proposals {
            self.outputs.push_back(Output::Proposal {
                id,
                outcome: ProposalOutcome::Busy,
            });
            return;
        }
        let index = self.append_local(Entry::normal(self.term, data));
        self.proposals.push_back((index, id));
        for i in 0..self.progress.len() {
            self.send_append(i, false);
        }
        self.maybe_advance_commit();
    }

    fn on_storage(&mut self, completion: StorageCompletion) {
        match completion {
            StorageCompletion::HardStateSaved(hs) => {
                self.hard_state_saved = hs;
                if hs == self.hard_state_requested {
                    for (to, message) in std::mem::take(&mut self.gated) {
                        self.outputs.push_back(Output::Send { to, message });
                    }
                    self.maybe_win_election();
                }
            }
            StorageCompletion::Appended { .. } | StorageCompletion::Truncated { .. } => {}
            StorageCompletion::EntriesRead {
                peer,
                from,
                prev,
                entries,
            } => self.on_entries_read(peer, from, prev, entries),
            StorageCompletion::Synced { .. } => {
                let up_to = self
                    .pending_syncs
                    .pop_front()
                    .expect("sync completion without a request");
                if up_to > self.durable {
                    self.durable = up_to;
                    self.flush_ack(true);
                    if self.role == Role::Leader {
                        self.maybe_advance_commit();
                    }
                }
            }
        }
    }

    // ----- elections -----

    fn start_pre_vote(&mut self) {
        self.role = Role::PreCandidate;
        self.leader = None;
        self.votes.clear();
        self.votes.push(self.cfg.id);
        self.reset_election_timer();
        self.emit_role();
        if self.has_quorum(self.votes.len()) {
            self.start_election(false);
            return;
        }
        let last = self.log.last_position();
        let term = self.term.next();
        for to in self.peers() {
            self.send(to, Message::PreVote { term, last });
        }
    }

    /// `transfer`: this election was asked for by the leader (`TimeoutNow`), so the votes it
    /// requests say so and voters set their leader lease aside.
    fn start_election(&mut self, transfer: bool) {
        self.term = self.term.next();
        self.voted_for = Some(self.cfg.id);
        self.role = Role::Candidate;
        self.leader = None;
        self.votes.clear();
        self.votes.push(self.cfg.id);
        self.clear_follower_state();
        self.persist_hard_state();
        self.reset_election_timer();
        self.emit_role();
        let last = self.log.last_position();
        let term = self.term;
        for to in self.peers() {
            self.send(
                to,
                Message::Vote {
                    term,
                    last,
                    transfer,
                },
            );
        }
        self.maybe_win_election();
    }

    /// Within the minimum election timeout of hearing from a live leader (or while leading with
    /// check-quorum on), a node neither grants pre-votes nor votes (Raft thesis §4.2.3).
    fn in_leader_lease(&self) -> bool {
        match self.role {
            Role::Leader => self.cfg.check_quorum,
            _ => {
                self.leader.is_some()
                    && self.last_leader_contact.is_some_and(|t| {
                        self.now.mono.saturating_since(t) < self.cfg.election_timeout
                    })
            }
        }
    }

    fn log_is_up_to_date(&self, last: LogPosition) -> bool {
        let mine = self.log.last_position();
        last.term > mine.term || (last.term == mine.term && last.index >= mine.index)
    }

    fn on_pre_vote(&mut self, from: NodeId, term: Term, last: LogPosition) {
        let granted = term > self.term && self.log_is_up_to_date(last) && !self.in_leader_lease();
        let term = if granted { term } else { self.term };
        self.send(from, Message::PreVoteResponse { term, granted });
    }

    fn on_pre_vote_response(&mut self, from: NodeId, term: Term, granted: bool) {
        if !granted && term > self.term {
            self.become_follower(term, None);
            return;
        }
        if self.role != Role::PreCandidate || !granted || term != self.term.next() {
            return;
        }
        if !self.votes.contains(&from) {
            self.votes.push(from);
        }
        if self.has_quorum(self.votes.len()) {
            self.start_election(false);
        }
    }

    fn on_vote(&mut self, from: NodeId, term: Term, last: LogPosition, transfer: bool) {
        if term < self.term {
            self.send(
                from,
                Message::VoteResponse {
                    term: self.term,
                    granted: false,
                },
            );
            return;
        }
        if term > self.term {
            // Ignore a disruptive candidate; it will learn of the leader. A transfer candidate
            // is not disruptive: the leader itself asked it to campaign (thesis §3.10).
            if self.in_leader_lease() && !transfer {
                return;
            }
            self.become_follower(term, None);
        }
        let free = self.voted_for.is_none() || self.voted_for == Some(from);
        let free = free || (self.role == Role::Follower && self.cfg.has_bug(Bug::VoteTwice));
        let granted = free && self.log_is_up_to_date(last);
        if granted {
            self.voted_for = Some(from);
            self.persist_hard_state();
            self.reset_election_timer();
        }
        self.send(
            from,
            Message::VoteResponse {
                term: self.term,
                granted,
            },
        );
    }

    fn on_vote_response(&mut self, from: NodeId, term: Term, granted: bool) {
        if term > self.term {
            self.become_follower(term, None);
            return;
        }
        if self.role != Role::Candidate || term != self.term || !granted {
            return;
        }
        if !self.votes.contains(&from) {
            self.votes.push(from);
        }
        self.maybe_win_election();
    }

    /// The current leader hands over: campaign now, skipping pre-vote (the leader vouched for
    /// this node's log) and the remaining election timeout.
    fn on_timeout_now(&mut self, from: NodeId, term: Term) {
        if term == self.term && self.role == Role::Follower && self.leader == Some(from) {
            self.start_election(true);
        }
    }

    /// A candidate wins once a quorum voted for it and its own vote is durable.
    fn maybe_win_election(&mut self) {
        if self.role == Role::Candidate
            && self.has_quorum(self.votes.len())
            && self.hard_state_saved == self.hard_state_requested
        {
            self.become_leader();
        }
    }

    fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.leader = Some(self.cfg.id);
        self.election_deadline = None;
        let next = self.log.last_index().next();
        self.progress = self.peers().map(|id| Progress::new(id, next)).collect();
        // A single voter has no one to heartbeat and is its own quorum: no timers at all, so
        // thousands of single-voter partitions cost nothing while idle.
        let alone = self.progress.is_empty();
        self.heartbeat_deadline = (!alone).then(|| self.now.mono + self.cfg.heartbeat_interval);
        self.quorum_deadline = (!alone).then(|| self.now.mono + self.cfg.election_timeout);
        self.emit_role();
        self.append_local(Entry::noop(self.term));
        for i in 0..self.progress.len() {
            self.send_append(i, true);
        }
        self.maybe_advance_commit();
    }

    fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        let changed = term != self.term || self.role != Role::Follower || leader != self.leader;
        if term > self.term {
            self.term = term;
            self.voted_for = None;
            self.persist_hard_state();
            self.clear_follower_state();
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.votes.clear();
        self.progress.clear();
        self.transfer = None;
        self.heartbeat_deadline = None;
        self.quorum_deadline = None;
        // Appended but not committed: a later leader may still commit them.
        let outcome = if self.cfg.has_bug(Bug::FailPendingOnStepDown) {
            ProposalOutcome::NotLeader { leader }
        } else {
            ProposalOutcome::Unknown
        };
        for (_, id) in std::mem::take(&mut self.proposals) {
            self.outputs.push_back(Output::Proposal { id, outcome });
        }
        if self.election_deadline.is_none() {
            self.reset_election_timer();
        }
        if changed {
            self.emit_role();
        }
    }

    fn clear_follower_state(&mut self) {
        self.verified = LogIndex::ZERO;
        self.ack_owed = None;
        self.acked_match = LogIndex::ZERO;
    }

    // ----- replication, follower side -----

    fn on_append(&mut self, from: NodeId, append: Append) {
        if append.term < self.term {
            let result = AppendResult::Rejected {
                prev_index: append.prev.index,
                next_hint: self.log.last_index().next(),
            };
            self.send(
                from,
                Message::AppendResponse {
                    term: self.term,
                    result,
                },
            );
            return;
        }
        if append.term > self.term || self.role != Role::Follower || self.leader != Some(from) {
            self.become_follower(append.term, Some(from));
        }
        self.last_leader_contact = Some(self.now.mono);
        self.reset_election_timer();

        let append = self.skip_compacted(append);
        let prev = append.prev;
        if prev.index < self.log.base().index {
            // Entirely at or below our base: committed here, equal by Log Matching.
            self.accept(from, append);
            return;
        }
        match self.log.term_at(prev.index) {
            None => {
                let next_hint = self.log.last_index().next();
                self.reject(from, prev.index, next_hint);
            }
            Some(t) if t != prev.term => {
                let next_hint = self
                    .log
                    .first_index_of_term_run(prev.index, self.commit.next());
                self.reject(from, prev.index, next_hint);
            }
            Some(_) => self.accept(from, append),
        }
    }

    /// Drops the entries of `append` at or below our compacted base, re-anchoring it at the last
    /// one dropped. Those entries are committed here, so the leader's entries at the same
    /// indexes are equal (Log Matching, Leader Completeness); what remains is checked as usual,
    /// and the match reported still covers the whole append (`prev + count`). An append that
    /// stays below the base keeps a `prev` below it and carries no entries.
    fn skip_compacted(&self, mut append: Append) -> Append {
        let base = self.log.base().index;
        let below = base.0.saturating_sub(append.prev.index.0);
        let skip = usize::try_from(below)
            .unwrap_or(usize::MAX)
            .min(append.entries.len());
        if skip == 0 {
            return append;
        }
        let term = append.entries[skip - 1].term;
        append.entries.drain(..skip);
        append.prev = LogPosition {
            index: LogIndex(append.prev.index.0 + skip as u64),
            term,
        };
        append
    }

    fn reject(&mut self, to: NodeId, prev_index: LogIndex, next_hint: LogIndex) {
        let result = AppendResult::Rejected {
            prev_index,
            next_hint,
        };
        self.send(
            to,
            Message::AppendResponse {
                term: self.term,
                result,
            },
        );
    }

    fn accept(&mut self, from: NodeId, append: Append) {
        let prev = append.prev.index;
        let count = append.entries.len() as u64;
        let mut new_entries = Vec::new();
        if self.cfg.has_bug(Bug::AppendAtEnd) {
            new_entries = append.entries;
        } else {
            for (i, entry) in append.entries.into_iter().enumerate() {
                let index = LogIndex(prev.0 + 1 + i as u64);
                if !new_entries.is_empty() {
                    new_entries.push(entry);
                    continue;
                }
                match self.log.term_at(index) {
                    Some(t) if t == entry.term || self.cfg.has_bug(Bug::SkipTruncation) => {}
                    Some(_) => {
                        self.truncate_local(index);
                        new_entries.push(entry);
                    }
                    None => new_entries.push(entry),
                }
            }
        }
        if !new_entries.is_empty() {
            let first = self.log.last_index().next();
            for entry in &new_entries {
                self.log.push(entry.clone());
            }
            self.request_append(first, new_entries);
        }
        let verified = LogIndex(prev.0 + count);
        self.verified = self.verified.max(verified);
        let leader_commit = append.leader_commit.min(verified);
        if self.cfg.has_bug(Bug::CommitRegress) {
            self.commit = leader_commit.min(self.log.last_index());
        } else if leader_commit > self.commit {
            self.commit = leader_commit;
        }
        self.ack_owed = Some(from);
        self.flush_ack(false);
    }

    /// Acknowledges to the leader what is both durable and verified, if an ack is owed. An
    /// append whose entries are not yet durable is answered when its sync completes (one ack,
    /// not two); a sync completion acknowledges partial progress too, so a follower under
    /// constant load, whose durable index always trails, still lets the leader commit.
    fn flush_ack(&mut self, on_sync: bool) {
        let Some(leader) = self.ack_owed else { return };
        if self.role != Role::Follower || self.leader != Some(leader) {
            self.ack_owed = None;
            return;
        }
        let durable = if self.cfg.has_bug(Bug::AckBeforeSync) {
            self.log.last_index()
        } else {
            self.durable
        };
        let match_index = durable.min(self.verified);
        let complete = match_index >= self.verified;
        let progress = on_sync && match_index > self.acked_match;
        if !(complete || progress) {
            return;
        }
        if complete {
            self.ack_owed = None;
        }
        self.acked_match = self.acked_match.max(match_index);
        let result = AppendResult::Accepted { match_index };
        self.send(
            leader,
            Message::AppendResponse {
                term: self.term,
                result,
            },
        );
    }

    // ----- replication, leader side -----

    fn on_append_response(&mut self, from: NodeId, term: Term, result: AppendResult) {
        if term > self.term {
            self.become_follower(term, None);
            return;
        }
        if self.role != Role::Leader || term != self.term {
            return;
        }
        let Some(i) = self.progress.iter().position(|p| p.id == from) else {
            return;
        };
        let p = &mut self.progress[i];
        p.active = true;
        match result {
            AppendResult::Accepted { match_index } => {
                if match_index > self.log.last_index() {
                    return; // Not something we sent: ignore rather than trust.
                }
                // Only a match at or past the probe point answers the probe; a lower one (the
                // answer to a keepalive, see `send_empty`) must not send `next` back there.
                let answers_probe = match_index >= p.next.prev();
                if match_index > p.matched {
                    p.matched = match_index;
                }
                if p.next <= p.matched {
                    p.next = p.matched.next();
                }
                while p.inflight.front().is_some_and(|last| *last <= p.matched) {
                    p.inflight.pop_front();
                }
                if p.state == ReplicationState::Probe && answers_probe {
                    p.state = ReplicationState::Replicate;
                    p.inflight.clear();
                    p.next = p.matched.next();
                    p.probe_sent = false;
                }
                self.maybe_advance_commit();
                self.maybe_send_timeout_now(i);
                self.send_append(i, false);
            }
            AppendResult::Rejected {
                prev_index,
                next_hint,
            } => {
                let stale = match p.state {
                    ReplicationState::Replicate => prev_index < p.matched,
                    ReplicationState::Probe => prev_index.next() != p.next,
                };
                if stale || prev_index < p.matched {
                    return;
                }
                p.become_probe();
                p.next = next_hint.min(prev_index).max(p.matched.next());
                self.send_append(i, false);
            }
        }
    }

    fn on_heartbeat_tick(&mut self) {
        for i in 0..self.progress.len() {
            let p = &mut self.progress[i];
            if p.inflight.is_empty() || p.matched > p.matched_at_tick {
                p.stalled_ticks = 0;
            } else {
                p.stalled_ticks += 1;
            }
            p.matched_at_tick = p.matched;
            if p.state == ReplicationState::Replicate && p.stalled_ticks >= STALL_TICKS {
                p.become_probe();
                p.stalled_ticks = 0;
            }
            p.probe_sent = false;
            self.send_append(i, true);
        }
    }

    fn on_quorum_check(&mut self) {
        if !self.cfg.check_quorum {
            return;
        }
        let active = 1 + self.progress.iter().filter(|p| p.active).count();
        for p in &mut self.progress {
            p.active = false;
        }
        if !self.has_quorum(active) {
            let term = self.term;
            self.outputs
                .push_back(Output::Event(Event::LostQuorum { term }));
            self.become_follower(term, None);
        }
    }

    /// Sends what the window allows to follower `i`; `heartbeat` forces a message even if
    /// there is nothing new, to carry the commit index and keep the follower's timer quiet.
    /// Entries the log has compacted are read from the store first (`read_for`).
    fn send_append(&mut self, i: usize, heartbeat: bool) {
        let p = &self.progress[i];
        let window_full = p.window_full(self.cfg.max_inflight);
        if !window_full && p.next <= self.log.last_index() {
            if p.next > self.log.base().index {
                let from = p.next;
                let prev = self.position(from.prev());
                let entries =
                    self.log
                        .slice(from, self.cfg.max_batch_entries, self.cfg.max_batch_bytes);
                self.send_entries(i, prev, entries);
                return;
            }
            self.read_for(i);
            if heartbeat {
                self.send_empty(i);
            }
            return;
        }
        if heartbeat || (p.state == ReplicationState::Probe && !p.probe_sent) {
            self.send_empty(i);
        }
    }

    /// Sends `entries`, which follow `prev`, to follower `i` and accounts for them in its
    /// window: one probe at a time, or up to `max_inflight` appends while replicating.
    fn send_entries(&mut self, i: usize, prev: LogPosition, entries: Vec<Entry>) {
        let p = &mut self.progress[i];
        let sent_last = LogIndex(prev.index.0 + entries.len() as u64);
        match p.state {
            ReplicationState::Probe => p.probe_sent = true,
            ReplicationState::Replicate => {
                p.inflight.push_back(sent_last);
                p.next = sent_last.next();
            }
        }
        let to = p.id;
        let append = Append {
            term: self.term,
            prev,
            entries,
            leader_commit: self.commit,
        };
        self.send(to, Message::Append(append));
    }

    /// An append without entries. Replicating followers get it anchored at what they have
    /// acknowledged, so it cannot be rejected merely because appends are still in flight;
    /// probing ones at the probe point, which makes it the probe.
    ///
    /// When that anchor is below the compacted base its term is forgotten. The message is then
    /// anchored at index 0, which every log matches (a compacted one too): a keepalive that
    /// resets the follower's election timer and carries the commit index (the follower takes it
    /// only up to what it has verified this term, so nothing unverified commits) but probes
    /// nothing, so it leaves the window alone. Its answer reports a match below the probe point,
    /// which `on_append_response` does not take as the probe's answer. The entries the follower
    /// needs come from the store meanwhile.
    fn send_empty(&mut self, i: usize) {
        let p = &mut self.progress[i];
        let anchor = match p.state {
            ReplicationState::Replicate => p.matched,
            ReplicationState::Probe => p.next.prev(),
        };
        let prev = match self.log.term_at(anchor) {
            Some(term) => {
                if p.state == ReplicationState::Probe {
                    p.probe_sent = true;
                }
                LogPosition {
                    index: anchor,
                    term,
                }
            }
            None => LogPosition::default(),
        };
        let to = p.id;
        let append = Append {
            term: self.term,
            prev,
            entries: Vec::new(),
            leader_commit: self.commit,
        };
        self.send(to, Message::Append(append));
    }

    /// Asks the store for the entries follower `i` needs from its `next` on (compacted from
    /// memory), unless a read is outstanding or the store already said it cannot serve them.
    fn read_for(&mut self, i: usize) {
        let p = &mut self.progress[i];
        if p.reading.is_some() || p.unavailable == Some(p.next) {
            return;
        }
        p.reading = Some(p.next);
        let req = StorageRequest::ReadEntries {
            peer: p.id,
            from: p.next,
            max_entries: self.cfg.max_batch_entries,
            max_bytes: self.cfg.max_batch_bytes,
        };
        self.reads.push_back(self.term);
        self.outputs.push_back(Output::Storage(req));
    }

    /// Entries read for a follower: sent if this node still leads in the term it asked in and
    /// the follower still needs them, with the same window accounting as `send_append`.
    fn on_entries_read(
        &mut self,
        peer: NodeId,
        from: LogIndex,
        prev: Option<LogPosition>,
        entries: Vec<Entry>,
    ) {
        let term = self
            .reads
            .pop_front()
            .expect("read completion without a request");
        if self.role != Role::Leader || term != self.term {
            return; // Asked for in an earlier term: that progress is gone.
        }
        let Some(i) = self.progress.iter().position(|p| p.id == peer) else {
            return;
        };
        let max_inflight = self.cfg.max_inflight;
        let p = &mut self.progress[i];
        if p.reading != Some(from) {
            return;
        }
        p.reading = None;
        let prev = match prev {
            Some(prev) if prev.index.next() == from && !entries.is_empty() => prev,
            _ => {
                // The store no longer holds what the follower needs: only a snapshot could
                // help it. Keep heartbeating; do not ask again while it needs the same entry.
                p.unavailable = Some(from);
                self.report_needs_snapshot(i);
                return;
            }
        };
        if p.next != from || p.window_full(max_inflight) {
            // It moved on (an answer or a stall changed `next`) or has no room now: start over
            // from where it is; a full window resumes when acknowledgements arrive.
            self.send_append(i, false);
            return;
        }
        self.send_entries(i, prev, entries);
        self.send_append(i, false); // keep the stream going
    }

    fn report_needs_snapshot(&mut self, i: usize) {
        let p = &mut self.progress[i];
        if !p.snapshot_reported {
            p.snapshot_reported = true;
            let peer = p.id;
            self.outputs
                .push_back(Output::Event(Event::FollowerNeedsSnapshot { peer }));
        }
    }

    /// Completes a pending transfer once its target, follower `i`, holds this leader's whole
    /// log. Sent again on each acknowledgement while the transfer is pending, in case the
    /// previous one was lost; the target ignores it once it has moved to a later term.
    fn maybe_send_timeout_now(&mut self, i: usize) {
        let p = &self.progress[i];
        if self.transfer.is_some_and(|t| t.to == p.id) && p.matched == self.log.last_index() {
            let to = p.id;
            self.send(to, Message::TimeoutNow { term: self.term });
        }
    }

    fn maybe_advance_commit(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let own = if self.cfg.has_bug(Bug::AckBeforeSync) {
            self.log.last_index()
        } else {
            self.durable
        };
        let mut matched: Vec<LogIndex> = self.progress.iter().map(|p| p.matched).collect();
        matched.push(own);
        matched.sort_unstable_by(|a, b| b.cmp(a));
        let quorum_index = matched[self.quorum_size() - 1];
        if quorum_index <= self.commit {
            return;
        }
        let current_term = self.log.term_at(quorum_index) == Some(self.term);
        if !current_term && !self.cfg.has_bug(Bug::CommitPreviousTerm) {
            return;
        }
        self.commit = quorum_index;
        while let Some(&(index, id)) = self.proposals.front() {
            if index > self.commit {
                break;
            }
            self.proposals.pop_front();
            let term = self.log.term_at(index).expect("committed entry exists");
            let outcome = ProposalOutcome::Committed { index, term };
            self.outputs.push_back(Output::Proposal { id, outcome });
        }
    }

    // ----- local log and storage -----

    fn append_local(&mut self, entry: Entry) -> LogIndex {
        let index = self.log.push(entry.clone());
        self.request_append(index, vec![entry]);
        index
    }

    fn request_append(&mut self, first: LogIndex, entries: Vec<Entry>) {
        self.outputs
            .push_back(Output::Storage(StorageRequest::Append { first, entries }));
        let up_to = self.log.last_index();
        self.pending_syncs.push_back(up_to);
        self.outputs
            .push_back(Output::Storage(StorageRequest::Sync { up_to }));
    }

    fn truncate_local(&mut self, from: LogIndex) {
        assert!(
            from > self.commit,
            "truncating committed entry {from:?} (commit {:?})",
            self.commit
        );
        let removed = self.log.last_index().0 + 1 - from.0;
        self.log.truncate_from(from);
        let keep = from.prev();
        self.durable = self.durable.min(keep);
        for s in &mut self.pending_syncs {
            *s = (*s).min(keep);
        }
        self.outputs
            .push_back(Output::Storage(StorageRequest::Truncate { from }));
        self.outputs
            .push_back(Output::Event(Event::Truncated { from, removed }));
    }

    fn persist_hard_state(&mut self) {
        let hs = HardState {
            term: self.term,
            voted_for: self.voted_for,
        };
        if hs != self.hard_state_requested {
            self.hard_state_requested = hs;
            self.outputs
                .push_back(Output::Storage(StorageRequest::SaveHardState(hs)));
        }
    }

    // ----- helpers -----

    /// The position of `index`, which must be held or be the base.
    fn position(&self, index: LogIndex) -> LogPosition {
        let term = self
            .log
            .term_at(index)
            .expect("leader holds every index from its base on");
        LogPosition { index, term }
    }

    /// Every peer message goes through here: held while the hard state is not durable.
    fn send(&mut self, to: NodeId, message: Message) {
        if self.hard_state_saved == self.hard_state_requested {
            self.outputs.push_back(Output::Send { to, message });
        } else {
            self.gated.push((to, message));
        }
    }

    fn peers(&self) -> impl Iterator<Item = NodeId> + use<> {
        let me = self.cfg.id;
        self.cfg
            .voters
            .clone()
            .into_iter()
            .filter(move |v| *v != me)
    }

    fn quorum_size(&self) -> usize {
        self.cfg.voters.len() / 2 + 1
    }

    fn has_quorum(&self, n: usize) -> bool {
        n >= self.quorum_size()
    }

    fn reset_election_timer(&mut self) {
        let base = self.cfg.election_timeout.as_nanos() as u64;
        let jitter = self.rng.range(0, base.max(1));
        self.election_deadline = Some(Instant(self.now.mono.0.saturating_add(base + jitter)));
    }

    fn emit_role(&mut self) {
        let event = Event::RoleChanged {
            term: self.term,
            role: self.role,
            leader: self.leader,
        };
        self.outputs.push_back(Output::Event(event));
    }
}
