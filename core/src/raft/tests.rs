//! Raft in a tiny in-process cluster: virtual time, a FIFO of messages the test delivers, drops
//! or duplicates by hand, and storage that completes at once. No sockets, no simulator.
//! Classic cases are insta snapshots of rendered traces; a proptest runs random schedules.
//!
//! Each node's storage is a [`MemStore`] modelled on `PartitionStore` with peers: it answers
//! `ReadEntries`, persists the commit point (a restart starts its log there, the entries after
//! it come back as an uncommitted tail), and can drop entries below that point as retention
//! would. Tests compact the in-memory logs with `Cluster::compact`.

use super::*;
use crate::ids::{LogIndex, NodeId, Term};
use crate::rng::DetRng;
use crate::time::{Instant, Now};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

const MS: u64 = 1_000_000;

struct Cluster {
    nodes: Vec<Option<Raft>>,
    disks: Vec<MemStore>,
    configs: Vec<Config>,
    now: u64,
    queue: VecDeque<(NodeId, NodeId, Message)>,
    cut: BTreeSet<(u32, u32)>,
    trace: Vec<String>,
    commits: Vec<LogIndex>,
    leaders: BTreeMap<Term, NodeId>,
    /// Every entry any node has seen committed, by index: a second, different one is a bug.
    committed: BTreeMap<LogIndex, Entry>,
    seed: u64,
}

/// One node's disk: storage completes at once and durably (the order of effects is what matters
/// here; the simulator owns crash consistency).
#[derive(Clone, Debug, Default)]
struct MemStore {
    hard_state: HardState,
    /// The last entry retention removed; `entries` follow it.
    base: LogPosition,
    entries: Vec<Entry>,
    /// The persisted commit point, saved after every input (all writes are durable at once).
    commit: LogIndex,
}

impl MemStore {
    fn last_index(&self) -> LogIndex {
        LogIndex(self.base.index.0 + self.entries.len() as u64)
    }

    fn position(&self, index: LogIndex) -> Option<LogPosition> {
        if index == self.base.index {
            return Some(self.base);
        }
        let k = index.0.checked_sub(self.base.index.0 + 1)?;
        let e = self.entries.get(k as usize)?;
        Some(LogPosition {
            index,
            term: e.term,
        })
    }

    /// What a restart finds: the log starts at the commit point.
    fn recovered(&self) -> Recovered {
        let base = self.commit.max(self.base.index);
        let skip = (base.0 - self.base.index.0) as usize;
        Recovered {
            hard_state: self.hard_state,
            base: self.position(base).expect("commit point on disk"),
            entries: self.entries[skip..].to_vec(),
        }
    }

    /// Retention: drops entries through `index`, never past the persisted commit point.
    fn retain_after(&mut self, index: LogIndex) {
        let index = index.min(self.commit);
        if index > self.base.index {
            let base = self.position(index).expect("held");
            self.entries.drain(..(index.0 - self.base.index.0) as usize);
            self.base = base;
        }
    }

    fn apply(&mut self, req: StorageRequest) -> StorageCompletion {
        match req {
            StorageRequest::SaveHardState(hs) => {
                self.hard_state = hs;
                StorageCompletion::HardStateSaved(hs)
            }
            StorageRequest::Append { first, entries } => {
                assert_eq!(self.last_index().next(), first, "append lands at the end");
                self.entries.extend(entries);
                StorageCompletion::Appended {
                    last: self.last_index(),
                }
            }
            StorageRequest::Truncate { from } => {
                assert!(
                    from > self.commit,
                    "truncating {from:?}, at or below the commit point {:?}",
                    self.commit
                );
                self.entries
                    .truncate((from.0 - self.base.index.0 - 1) as usize);
                StorageCompletion::Truncated { from }
            }
            StorageRequest::Sync { up_to } => StorageCompletion::Synced { up_to },
            StorageRequest::ReadEntries {
                peer,
                from,
                max_entries,
                max_bytes,
            } => {
                let (prev, entries) = self.read(from, max_entries, max_bytes);
                StorageCompletion::EntriesRead {
                    peer,
                    from,
                    prev,
                    entries,
                }
            }
        }
    }

    fn read(
        &self,
        from: LogIndex,
        max_entries: usize,
        max_bytes: usize,
    ) -> (Option<LogPosition>, Vec<Entry>) {
        let prev = self.position(from.prev());
        if prev.is_none() || from <= self.base.index {
            return (None, Vec::new());
        }
        let mut bytes = 0;
        let mut out = Vec::new();
        let start = (from.0 - self.base.index.0 - 1) as usize;
        for e in self.entries.iter().skip(start).take(max_entries) {
            bytes += e.data.len();
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(e.clone());
        }
        (prev, out)
    }
}

fn id(i: u32) -> NodeId {
    NodeId(i)
}

impl Cluster {
    fn new(n: u32, tweak: impl Fn(&mut Config)) -> Cluster {
        let voters: Vec<NodeId> = (1..=n).map(id).collect();
        let configs: Vec<Config> = voters
            .iter()
            .map(|&v| {
                let mut c = Config::new(v, voters.clone());
                tweak(&mut c);
                c
            })
            .collect();
        let mut cluster = Cluster {
            nodes: Vec::new(),
            disks: vec![MemStore::default(); n as usize],
            configs,
            now: 0,
            queue: VecDeque::new(),
            cut: BTreeSet::new(),
            trace: Vec::new(),
            commits: vec![LogIndex::ZERO; n as usize],
            leaders: BTreeMap::new(),
            committed: BTreeMap::new(),
            seed: 1,
        };
        for i in 0..n as usize {
            let raft = cluster.boot(i);
            cluster.nodes.push(Some(raft));
        }
        cluster
    }

    fn boot(&mut self, i: usize) -> Raft {
        self.seed += 1;
        let now = self.now();
        Raft::new(
            self.configs[i].clone(),
            self.disks[i].recovered(),
            DetRng::new(self.seed),
            now,
        )
        .expect("valid config")
    }

    fn now(&self) -> Now {
        Now::at(Instant(self.now), 0)
    }

    fn raft(&self, n: u32) -> &Raft {
        self.nodes[n as usize - 1].as_ref().expect("node is up")
    }

    fn log(&mut self, line: String) {
        self.trace.push(line);
    }

    /// Feeds one input and everything it causes locally (storage completes at once).
    fn input(&mut self, n: u32, input: Input) {
        self.act(n, |raft| raft.handle_input(input));
    }

    /// Runs `f` on node `n` (an input or a command), then everything it causes locally.
    fn act(&mut self, n: u32, f: impl FnOnce(&mut Raft)) {
        let i = n as usize - 1;
        f(self.nodes[i].as_mut().expect("node is up"));
        let mut pending = self.route_outputs(n);
        while let Some(input) = pending.pop_front() {
            let raft = self.nodes[i].as_mut().expect("node is up");
            raft.handle_input(input);
            pending.extend(self.route_outputs(n));
        }
    }

    /// Routes node `n`'s outputs: messages to the queue, storage to its disk (the completions
    /// are returned, to be fed back in order), the rest to the trace.
    fn route_outputs(&mut self, n: u32) -> VecDeque<Input> {
        let i = n as usize - 1;
        let raft = self.nodes[i].as_mut().expect("node is up");
        let outs: Vec<Output> = std::iter::from_fn(|| raft.poll_output()).collect();
        let mut completions = VecDeque::new();
        for o in outs {
            match o {
                Output::Send { to, message } => {
                    if self.cut.contains(&(n, to.0)) {
                        self.log(format!(
                            "  n{n}->n{} {} (dropped: cut)",
                            to.0,
                            render(&message)
                        ));
                    } else {
                        self.queue.push_back((id(n), to, message));
                    }
                }
                Output::Storage(req) => {
                    if let StorageRequest::ReadEntries { peer, from, .. } = &req {
                        self.log(format!("  n{n} reads entries from {from:?} for {peer}"));
                    }
                    let completion = self.disks[i].apply(req);
                    completions.push_back(Input::Storage {
                        now: self.now(),
                        completion,
                    });
                }
                Output::Proposal { id: pid, outcome } => {
                    self.log(format!("  n{n} proposal p{} -> {outcome:?}", pid.0));
                }
                Output::Event(Event::RoleChanged { term, role, leader }) => {
                    self.log(format!(
                        "  n{n} becomes {role:?} in {term:?} (leader {leader:?})"
                    ));
                    if role == Role::Leader {
                        let prev = self.leaders.insert(term, id(n));
                        assert!(
                            prev.is_none() || prev == Some(id(n)),
                            "two leaders in {term:?}"
                        );
                    }
                }
                Output::Event(e) => self.log(format!("  n{n} {e:?}")),
            }
        }
        self.note_commit(n);
        completions
    }

    /// Traces a moved commit index, checks the newly committed entries against what any node
    /// committed before, and persists the commit point.
    fn note_commit(&mut self, n: u32) {
        let i = n as usize - 1;
        let raft = self.nodes[i].as_ref().expect("up");
        let commit = raft.commit_index();
        if commit == self.commits[i] {
            return;
        }
        for index in self.commits[i].0 + 1..=commit.0 {
            let entry = raft
                .entry(LogIndex(index))
                .expect("newly committed entries are held");
            let known = self
                .committed
                .entry(LogIndex(index))
                .or_insert(entry.clone());
            assert_eq!(known, entry, "n{n} committed a different entry at i{index}");
        }
        self.commits[i] = commit;
        self.disks[i].commit = self.disks[i].commit.max(commit);
        self.log(format!("  n{n} commit -> {commit:?}"));
    }

    /// Lets node `n` forget its log through `index` (clamped by Raft).
    fn compact(&mut self, n: u32, index: LogIndex) {
        self.log(format!("-- n{n} compacts through {index:?}"));
        self.act(n, |raft| raft.compact_through(index));
    }

    fn transfer(&mut self, from: u32, to: u32) {
        self.log(format!("-- n{from} transfers leadership to n{to}"));
        self.act(from, |raft| raft.transfer_leadership(id(to)));
    }

    /// Advances time to node `n`'s next deadline and fires its timer.
    fn fire_timer(&mut self, n: u32) {
        let deadline = self
            .raft(n)
            .poll_timeout()
            .expect("a running node always has a timer");
        self.now = self.now.max(deadline.0);
        self.log(format!("n{n} timer fires at {:?}", Instant(self.now)));
        self.input(n, Input::Timeout(self.now()));
    }

    /// Fires node `n`'s timers until it is no longer leader (bounded).
    fn fire_until_stepped_down(&mut self, n: u32) {
        for _ in 0..20 {
            if self.raft(n).role() != Role::Leader {
                return;
            }
            self.fire_timer(n);
        }
        panic!("n{n} never stepped down");
    }

    fn advance_ms(&mut self, ms: u64) {
        self.now += ms * MS;
    }

    fn propose(&mut self, n: u32, p: u64) {
        self.log(format!("client proposes p{p} to n{n}"));
        let input = Input::Propose {
            now: self.now(),
            id: ProposalId(p),
            data: bytes::Bytes::from(vec![p as u8]),
        };
        self.input(n, input);
    }

    /// Delivers queued messages in FIFO order until none are left (bounded).
    fn deliver_all(&mut self) {
        for _ in 0..10_000 {
            let Some((from, to, message)) = self.queue.pop_front() else {
                return;
            };
            self.deliver(from, to, message);
        }
        panic!("message storm: queue did not drain");
    }

    fn deliver(&mut self, from: NodeId, to: NodeId, message: Message) {
        if self.cut.contains(&(from.0, to.0)) {
            self.log(format!(
                "  {from}->{to} {} (dropped: cut)",
                render(&message)
            ));
            return;
        }
        if self.nodes[to.0 as usize - 1].is_none() {
            self.log(format!(
                "  {from}->{to} {} (dropped: down)",
                render(&message)
            ));
            return;
        }
        self.log(format!("{from}->{to} {}", render(&message)));
        self.input(
            to.0,
            Input::Receive {
                now: self.now(),
                from,
                message,
            },
        );
    }

    /// Delivers the first queued message from `from` to `to`, leaving the rest in order.
    fn deliver_one(&mut self, from: u32, to: u32) {
        let k = self
            .queue
            .iter()
            .position(|(f, t, _)| f.0 == from && t.0 == to)
            .unwrap_or_else(|| panic!("no message from n{from} to n{to} queued"));
        let (f, t, m) = self.queue.remove(k).expect("in range");
        self.deliver(f, t, m);
    }

    fn isolate(&mut self, n: u32) {
        self.log(format!("-- isolate n{n}"));
        for m in 1..=self.nodes.len() as u32 {
            if m != n {
                self.cut.insert((n, m));
                self.cut.insert((m, n));
            }
        }
    }

    fn heal(&mut self) {
        self.log("-- heal".to_string());
        self.cut.clear();
    }

    fn crash(&mut self, n: u32) {
        self.log(format!("-- crash n{n}"));
        self.nodes[n as usize - 1] = None;
        self.commits[n as usize - 1] = LogIndex::ZERO;
    }

    fn restart(&mut self, n: u32) {
        self.log(format!("-- restart n{n}"));
        let raft = self.boot(n as usize - 1);
        // Everything up to the recovered commit point was checked when it first committed.
        self.commits[n as usize - 1] = raft.commit_index();
        self.nodes[n as usize - 1] = Some(raft);
    }

    /// Every two running nodes hold equal entries wherever both hold them up to both commits.
    fn committed_prefixes_agree(&self) -> Result<(), String> {
        let up: Vec<&Raft> = self.nodes.iter().flatten().collect();
        for a in &up {
            for b in &up {
                let from = a.log().base().index.max(b.log().base().index).next();
                let to = a.commit_index().min(b.commit_index());
                for index in from.0..=to.0 {
                    let (x, y) = (a.entry(LogIndex(index)), b.entry(LogIndex(index)));
                    if x != y {
                        return Err(format!(
                            "{} and {} differ at i{index}: {x:?} vs {y:?}",
                            a.id(),
                            b.id()
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn rendered(&self) -> String {
        self.trace.join("\n")
    }
}

fn render(m: &Message) -> String {
    match m {
        Message::PreVote { term, last } => {
            format!("PreVote {term:?} last=({:?},{:?})", last.index, last.term)
        }
        Message::Vote {
            term,
            last,
            transfer,
        } => {
            let why = if *transfer { " (transfer)" } else { "" };
            format!("Vote {term:?} last=({:?},{:?}){why}", last.index, last.term)
        }
        Message::PreVoteResponse { term, granted } => {
            format!("PreVoteResp {term:?} granted={granted}")
        }
        Message::VoteResponse { term, granted } => format!("VoteResp {term:?} granted={granted}"),
        Message::Append(a) => {
            let entries: Vec<String> = a
                .entries
                .iter()
                .map(|e| match e.kind {
                    EntryKind::Noop => format!("noop@{:?}", e.term),
                    EntryKind::Normal => format!("p{}@{:?}", e.data[0], e.term),
                })
                .collect();
            format!(
                "Append {:?} prev=({:?},{:?}) [{}] commit={:?}",
                a.term,
                a.prev.index,
                a.prev.term,
                entries.join(" "),
                a.leader_commit
            )
        }
        Message::AppendResponse { term, result } => format!("AppendResp {term:?} {result:?}"),
        Message::TimeoutNow { term } => format!("TimeoutNow {term:?}"),
    }
}

/// Three nodes, n1 elected in term 1 with every log at the noop.
fn three_with_leader(tweak: impl Fn(&mut Config)) -> Cluster {
    let mut c = Cluster::new(3, tweak);
    c.fire_timer(1);
    c.deliver_all();
    assert_eq!(c.raft(1).role(), Role::Leader);
    c
}

#[test]
fn election_three_nodes_elect_one_leader_and_commit_a_proposal() {
    let mut c = three_with_leader(|_| {});
    c.propose(1, 7);
    c.deliver_all();
    c.advance_ms(50);
    c.fire_timer(1); // heartbeat carries the commit index to followers
    c.deliver_all();
    for n in 1..=3 {
        assert_eq!(c.raft(n).commit_index(), LogIndex(2), "n{n}");
    }
    insta::assert_snapshot!(c.rendered());
}

#[test]
fn split_vote_resolves_in_a_later_term() {
    let mut c = Cluster::new(3, |cfg| cfg.pre_vote = false);
    c.crash(3);
    c.fire_timer(1);
    c.fire_timer(2);
    c.deliver_all(); // each already voted for itself: nobody wins term 1
    assert_ne!(c.raft(1).role(), Role::Leader);
    assert_ne!(c.raft(2).role(), Role::Leader);
    c.fire_timer(1);
    c.deliver_all();
    assert_eq!(c.raft(1).role(), Role::Leader);
    assert_eq!(c.raft(1).term(), Term(2));
    insta::assert_snapshot!(c.rendered());
}

#[test]
fn stale_leader_steps_down_and_loses_its_uncommitted_tail() {
    let mut c = three_with_leader(|_| {});
    c.isolate(1);
    c.propose(1, 9); // appended by n1 alone: never committed
    c.deliver_all();
    c.advance_ms(400);
    c.fire_until_stepped_down(1); // quorum check: nobody answered
    assert_eq!(c.raft(1).role(), Role::Follower);
    c.fire_timer(2);
    c.deliver_all();
    assert_eq!(c.raft(2).role(), Role::Leader);
    c.propose(2, 5);
    c.deliver_all();
    c.heal();
    c.advance_ms(50);
    c.fire_timer(2);
    c.deliver_all();
    assert_eq!(c.raft(1).leader(), Some(id(2)));
    assert_eq!(c.raft(1).log().entries(), c.raft(2).log().entries());
    insta::assert_snapshot!(c.rendered());
}

#[test]
fn divergent_follower_is_truncated_to_the_new_leaders_log() {
    let mut c = three_with_leader(|cfg| cfg.check_quorum = false);
    c.isolate(1);
    c.propose(1, 1);
    c.propose(1, 2);
    c.propose(1, 3);
    c.deliver_all();
    c.advance_ms(400);
    c.fire_timer(2);
    c.deliver_all();
    c.propose(2, 4);
    c.deliver_all();
    c.heal();
    c.advance_ms(50);
    c.fire_timer(2);
    c.deliver_all();
    assert_eq!(c.raft(1).log().entries(), c.raft(2).log().entries());
    assert!(
        c.trace.iter().any(|l| l.contains("Truncated")),
        "n1 must truncate its divergent tail"
    );
    insta::assert_snapshot!(c.rendered());
}

/// Builds the state where n1 leads term 3 holding an uncommitted term-1 entry at i2 that n3
/// lacks, with one entry per append so the old entry and the new noop travel separately.
fn previous_term_entry_setup(tweak: impl Fn(&mut Config) + Copy) -> Cluster {
    let mut c = three_with_leader(move |cfg| {
        cfg.max_batch_entries = 1;
        tweak(cfg);
    });
    c.crash(2);
    c.isolate(1);
    c.propose(1, 8); // i2 in term 1, on n1 only
    c.advance_ms(400);
    c.fire_until_stepped_down(1); // n1 loses its quorum
    c.heal();
    c.fire_timer(3); // n3 asks for pre-votes; n1 refuses (n3 lacks i2)
    c.deliver_all();
    c.fire_timer(1); // n1 pre-votes for term 2, n3 grants, n1 wins term 2
    c.deliver_all();
    c
}

#[test]
fn previous_term_entries_commit_only_through_a_current_term_entry() {
    let c = previous_term_entry_setup(|_| {});
    let leader_term = c.raft(1).term();
    assert_eq!(c.raft(1).role(), Role::Leader);
    // n3 has acknowledged the old entry i2 (a majority with n1) but not yet the new noop.
    assert_eq!(c.raft(1).log().term_at(LogIndex(2)), Some(Term(1)));
    assert_eq!(c.raft(1).log().term_at(LogIndex(3)), Some(leader_term));
    assert_eq!(
        c.raft(1).commit_index(),
        LogIndex(3),
        "the old entry commits with the new noop"
    );
    let before_noop_ack = c
        .trace
        .iter()
        .position(|l| l.contains("n3->n1 AppendResp") && l.contains("match_index: i2"))
        .expect("n3 acknowledges i2 on its own");
    let commit_line = c
        .trace
        .iter()
        .position(|l| l.contains("n1 commit -> i3"))
        .expect("n1 commits i3");
    assert!(commit_line > before_noop_ack);
    assert!(
        !c.trace.iter().any(|l| l.contains("n1 commit -> i2")),
        "i2 must not commit alone"
    );
    insta::assert_snapshot!(c.rendered());
}

#[cfg(feature = "broken-variants")]
#[test]
fn commit_previous_term_bug_commits_the_old_entry_alone() {
    let c = previous_term_entry_setup(|cfg| cfg.bug = Some(Bug::CommitPreviousTerm));
    assert!(
        c.trace.iter().any(|l| l.contains("n1 commit -> i2")),
        "the planted bug shows in the trace"
    );
}

#[test]
fn votes_are_not_sent_before_the_vote_is_durable() {
    let voters = vec![id(1), id(2)];
    let mut raft = Raft::new(
        Config::new(id(2), voters),
        Recovered::default(),
        DetRng::new(3),
        Now::default(),
    )
    .expect("valid");
    let last = LogPosition::default();
    raft.handle_input(Input::Receive {
        now: Now::default(),
        from: id(1),
        message: Message::Vote {
            term: Term(1),
            last,
            transfer: false,
        },
    });
    let outs: Vec<Output> = std::iter::from_fn(|| raft.poll_output()).collect();
    assert!(outs
        .iter()
        .any(|o| matches!(o, Output::Storage(StorageRequest::SaveHardState(_)))));
    assert!(
        !outs.iter().any(|o| matches!(o, Output::Send { .. })),
        "vote left before it was durable: {outs:?}"
    );
    let hs = HardState {
        term: Term(1),
        voted_for: Some(id(1)),
    };
    raft.handle_input(Input::Storage {
        now: Now::default(),
        completion: StorageCompletion::HardStateSaved(hs),
    });
    let outs: Vec<Output> = std::iter::from_fn(|| raft.poll_output()).collect();
    let granted = Message::VoteResponse {
        term: Term(1),
        granted: true,
    };
    assert_eq!(
        outs,
        vec![Output::Send {
            to: id(1),
            message: granted
        }]
    );
}

#[test]
fn follower_acknowledges_only_synced_entries() {
    let voters = vec![id(1), id(2)];
    let mut raft = Raft::new(
        Config::new(id(2), voters),
        Recovered::default(),
        DetRng::new(3),
        Now::default(),
    )
    .expect("valid");
    let append = Append {
        term: Term(1),
        prev: LogPosition::default(),
        entries: vec![Entry::noop(Term(1))],
        leader_commit: LogIndex::ZERO,
    };
    raft.handle_input(Input::Receive {
        now: Now::default(),
        from: id(1),
        message: Message::Append(append),
    });
    let outs: Vec<Output> = std::iter::from_fn(|| raft.poll_output()).collect();
    let acks: Vec<&Output> = outs
        .iter()
        .filter(|o| matches!(o, Output::Send { .. }))
        .collect();
    // The term change must be durable first; nothing is sent yet.
    assert!(acks.is_empty(), "{acks:?}");
    let hs = HardState {
        term: Term(1),
        voted_for: None,
    };
    let now = Now::default();
    raft.handle_input(Input::Storage {
        now,
        completion: StorageCompletion::HardStateSaved(hs),
    });
    assert_eq!(
        raft.poll_output(),
        None,
        "the entry is written but not synced: no ack yet"
    );
    raft.handle_input(Input::Storage {
        now,
        completion: StorageCompletion::Appended { last: LogIndex(1) },
    });
    assert_eq!(raft.poll_output(), None);
    raft.handle_input(Input::Storage {
        now,
        completion: StorageCompletion::Synced { up_to: LogIndex(1) },
    });
    let one = AppendResult::Accepted {
        match_index: LogIndex(1),
    };
    let expected = Output::Send {
        to: id(1),
        message: Message::AppendResponse {
            term: Term(1),
            result: one,
        },
    };
    assert_eq!(raft.poll_output(), Some(expected));
}

#[test]
fn a_restarted_voter_remembers_its_vote_for_the_term() {
    let mut c = Cluster::new(3, |cfg| cfg.pre_vote = false);
    c.fire_timer(1); // n1: candidate in term 1
    c.deliver_one(1, 2); // n2 votes for n1 (durably)
    c.crash(2);
    c.restart(2);
    assert_eq!(c.raft(2).term(), Term(1));
    assert_eq!(c.raft(2).voted_for(), Some(id(1)));
    c.fire_timer(3); // n3: candidate in term 1 too
    c.deliver_one(3, 2); // n2 already voted in term 1: must refuse
    let refused = c.queue.iter().any(|(f, t, m)| {
        f.0 == 2
            && t.0 == 3
            && *m
                == Message::VoteResponse {
                    term: Term(1),
                    granted: false,
                }
    });
    assert!(refused, "{}", c.rendered());
    c.deliver_all();
    assert!(c.leaders.len() <= 1);
}

/// A fresh one-voter group (node 1), nothing on disk.
fn single_voter() -> Raft {
    Raft::new(
        Config::new(id(1), vec![id(1)]),
        Recovered::default(),
        DetRng::new(5),
        Now::default(),
    )
    .expect("valid")
}

#[test]
fn a_single_node_does_not_lead_before_its_vote_is_durable() {
    let mut raft = single_voter();
    let deadline = raft.poll_timeout().expect("election timer");
    raft.handle_input(Input::Timeout(Now::at(deadline, 0)));
    let outs: Vec<Output> = std::iter::from_fn(|| raft.poll_output()).collect();
    assert_ne!(
        raft.role(),
        Role::Leader,
        "led before its own vote was durable: {outs:?}"
    );
    let hs = HardState {
        term: Term(1),
        voted_for: Some(id(1)),
    };
    raft.handle_input(Input::Storage {
        now: Now::at(deadline, 0),
        completion: StorageCompletion::HardStateSaved(hs),
    });
    assert_eq!(raft.role(), Role::Leader);
}

/// Seen by the real-process tests (issue 5): a lone broker restarted with many partitions
/// led one of them only after two elections. Its storage thread was busy opening the other
/// partitions, the election timed out while its vote waited to be saved, and it stood again
/// in a new term. A candidate that already has its quorum now waits for its save instead.
#[test]
fn a_single_node_waits_for_its_slow_vote_save_instead_of_standing_again() {
    let mut raft = single_voter();
    let deadline = raft.poll_timeout().expect("election timer");
    raft.handle_input(Input::Timeout(Now::at(deadline, 0)));
    while raft.poll_output().is_some() {}
    // The save takes longer than several election timeouts.
    for _ in 0..3 {
        let deadline = raft.poll_timeout().expect("a timer while campaigning");
        raft.handle_input(Input::Timeout(Now::at(deadline, 0)));
        let outs: Vec<Output> = std::iter::from_fn(|| raft.poll_output()).collect();
        assert!(
            outs.iter()
                .all(|o| !matches!(o, Output::Storage(StorageRequest::SaveHardState(_)))),
            "stood for election again while its vote was being saved: {outs:?}"
        );
    }
    assert_eq!(raft.term(), Term(1));
    let hs = HardState {
        term: Term(1),
        voted_for: Some(id(1)),
    };
    let now = Now::at(raft.poll_timeout().expect("timer"), 0);
    raft.handle_input(Input::Storage {
        now,
        completion: StorageCompletion::HardStateSaved(hs),
    });
    assert_eq!(raft.role(), Role::Leader);
}

#[test]
fn invalid_configs_are_rejected_with_a_reason() {
    let mut c = Config::new(id(4), vec![id(1), id(2)]);
    assert_eq!(c.validate(), Err(ConfigError::NotAVoter(id(4))));
    c = Config::new(id(1), vec![id(1), id(1)]);
    assert_eq!(c.validate(), Err(ConfigError::DuplicateVoter(id(1))));
    c = Config::new(id(1), vec![id(1)]);
    c.heartbeat_interval = c.election_timeout;
    assert_eq!(
        c.validate(),
        Err(ConfigError::HeartbeatNotBelowElectionTimeout)
    );
    c = Config::new(id(1), vec![]);
    assert_eq!(c.validate(), Err(ConfigError::NoVoters));
}

#[test]
fn single_voter_group_elects_itself_and_commits_alone() {
    let mut c = Cluster::new(1, |_| {});
    c.fire_timer(1);
    assert_eq!(c.raft(1).role(), Role::Leader);
    c.propose(1, 3);
    assert_eq!(c.raft(1).commit_index(), LogIndex(2));
}

// ----- compaction and catch-up from the store -----

/// Proposes `count` entries on leader `n` one by one, delivering everything after each.
fn propose_many(c: &mut Cluster, n: u32, first: u64, count: u64) {
    for p in first..first + count {
        c.propose(n, p);
        c.deliver_all();
    }
}

/// Heartbeats from leader `n` (each after one heartbeat interval) until `done` holds.
fn heartbeat_until(c: &mut Cluster, n: u32, done: impl Fn(&Cluster) -> bool) {
    for _ in 0..50 {
        if done(c) {
            return;
        }
        c.advance_ms(50);
        c.fire_timer(n);
        c.deliver_all();
    }
    panic!("never happened:\n{}", c.rendered());
}

#[test]
fn compaction_keeps_what_followers_within_the_lag_limit_still_need() {
    let mut c = three_with_leader(|cfg| cfg.max_lag_in_memory = 4);
    c.isolate(3);
    propose_many(&mut c, 1, 1, 3); // i2..i4, n3 still at i1
    let commit = c.raft(1).commit_index();
    assert_eq!(commit, LogIndex(4));
    c.compact(1, commit);
    assert_eq!(
        c.raft(1).log().base().index,
        LogIndex(1),
        "n3 is 3 behind, within the limit: its entries stay"
    );
    propose_many(&mut c, 1, 4, 3); // commit i7: n3 is now 6 behind
    c.compact(1, LogIndex(100));
    assert_eq!(c.raft(1).log().base().index, LogIndex(7));
    // A follower forgets through its own commit index only.
    let n2_commit = c.raft(2).commit_index();
    assert!(
        n2_commit < LogIndex(7),
        "n2 learns i7 committed with the next append"
    );
    c.compact(2, LogIndex(100));
    assert_eq!(c.raft(2).log().base().index, n2_commit);
    assert_eq!(c.raft(1).matched(id(2)), Some(LogIndex(7)));
    assert_eq!(c.raft(1).matched(id(3)), Some(LogIndex(1)));
    assert_eq!(
        c.raft(1).matched(id(1)),
        None,
        "only peers have a match index"
    );
    assert_eq!(c.raft(2).matched(id(1)), None, "followers track no matches");
}

/// n3 misses 40 entries that n1 and n2 commit and compact, then comes back.
fn partitioned_follower_behind_compacted_leaders() -> Cluster {
    let mut c = three_with_leader(|cfg| {
        cfg.max_lag_in_memory = 4;
        cfg.max_batch_entries = 8;
    });
    c.isolate(3);
    propose_many(&mut c, 1, 1, 40);
    heartbeat_until(&mut c, 1, |c| c.raft(2).commit_index() == LogIndex(41));
    c.compact(1, LogIndex(41));
    c.compact(2, LogIndex(41));
    assert_eq!(c.raft(1).log().base().index, LogIndex(41));
    assert_eq!(c.raft(2).log().base().index, LogIndex(41));
    assert_eq!(c.raft(3).last_index(), LogIndex(1));
    c
}

#[test]
fn a_follower_behind_the_compacted_base_is_caught_up_from_the_store() {
    let mut c = partitioned_follower_behind_compacted_leaders();
    c.heal();
    heartbeat_until(&mut c, 1, |c| c.raft(3).commit_index() == LogIndex(41));
    assert!(
        c.trace
            .iter()
            .any(|l| l.contains("n1 reads entries from i2 for n3")),
        "{}",
        c.rendered()
    );
    // n3 now holds exactly what n1 appended (n1's store keeps every entry).
    assert_eq!(c.raft(3).log().entries(), c.disks[0].entries);
    assert_eq!(c.raft(3).log().entries(), c.disks[1].entries);
    assert_eq!(c.raft(1).matched(id(3)), Some(LogIndex(41)));
    c.committed_prefixes_agree().expect("logs agree");
    // Replication continues from memory.
    c.propose(1, 99);
    c.deliver_all();
    assert_eq!(c.raft(3).last_index(), LogIndex(42));
}

#[test]
fn a_follower_behind_retention_is_reported_once_and_kept_quiet() {
    let mut c = partitioned_follower_behind_compacted_leaders();
    c.disks[0].retain_after(LogIndex(41)); // n1's store no longer has what n3 needs
    c.heal();
    for _ in 0..6 {
        c.advance_ms(50);
        c.fire_timer(1);
        c.deliver_all();
    }
    let reports = c
        .trace
        .iter()
        .filter(|l| l.contains("FollowerNeedsSnapshot { peer: n3 }"))
        .count();
    assert_eq!(reports, 1, "{}", c.rendered());
    // Heartbeats keep n3 following (no election) without giving it anything unverified.
    assert_eq!(c.raft(1).role(), Role::Leader);
    assert_eq!(c.raft(3).leader(), Some(id(1)));
    assert_eq!(c.raft(3).commit_index(), LogIndex::ZERO);
    assert_eq!(c.raft(3).last_index(), LogIndex(1));
}

#[test]
fn a_restart_recovers_from_the_commit_point_and_the_new_leader_truncates_the_tail() {
    let mut c = three_with_leader(|_| {});
    propose_many(&mut c, 1, 1, 2);
    heartbeat_until(&mut c, 1, |c| c.raft(2).commit_index() == LogIndex(3));
    c.isolate(1);
    c.propose(1, 3); // i4 and i5 on n1 alone: never committed
    c.propose(1, 4);
    c.crash(1);
    c.restart(1);
    assert_eq!(
        c.raft(1).log().base(),
        LogPosition {
            index: LogIndex(3),
            term: Term(1)
        },
        "the log starts at the commit point"
    );
    assert_eq!(c.raft(1).commit_index(), LogIndex(3));
    assert_eq!(
        c.raft(1).last_index(),
        LogIndex(5),
        "with the uncommitted tail"
    );
    c.advance_ms(400); // n2's and n3's leases on n1 run out
    c.fire_timer(2);
    c.deliver_all();
    assert_eq!(c.raft(2).role(), Role::Leader);
    c.propose(2, 5);
    c.deliver_all();
    c.heal();
    heartbeat_until(&mut c, 2, |c| {
        c.raft(1).commit_index() == c.raft(2).commit_index()
            && c.raft(1).last_index() == c.raft(2).last_index()
    });
    assert!(
        c.trace.iter().any(|l| l.contains("n1 Truncated")),
        "{}",
        c.rendered()
    );
    assert_eq!(
        c.raft(1).log().entries()[..],
        c.raft(2).log().entries()[3..]
    );
    c.committed_prefixes_agree().expect("logs agree");
    insta::assert_snapshot!(c.rendered());
}

#[test]
fn leadership_transfer_hands_over_to_a_lagging_target() {
    let mut c = three_with_leader(|_| {});
    let start = c.now;
    c.propose(1, 1); // n3 does not have it yet: the append is still queued
    c.transfer(1, 3);
    assert!(c.raft(1).is_transferring());
    c.propose(1, 2); // refused: the log must stop growing for the target to catch up
    assert!(c
        .trace
        .iter()
        .any(|l| l.contains("n1 proposal p2 -> NotLeader { leader: None }")));
    c.deliver_all();
    assert_eq!(c.raft(3).role(), Role::Leader);
    assert_eq!(c.raft(3).term(), Term(2));
    assert_eq!(c.raft(1).role(), Role::Follower);
    assert_eq!(c.raft(1).leader(), Some(id(3)));
    assert!(!c.raft(1).is_transferring());
    let timeout = c.raft(1).config().election_timeout.as_nanos() as u64;
    assert!(c.now - start < timeout, "within one election timeout");
    // p1 was appended before the transfer: the new leader commits it.
    c.propose(3, 3);
    c.deliver_all();
    heartbeat_until(&mut c, 3, |c| c.raft(1).commit_index() == LogIndex(4));
    insta::assert_snapshot!(c.rendered());
}

#[test]
fn a_transfer_to_an_unreachable_target_is_abandoned_after_an_election_timeout() {
    let mut c = three_with_leader(|_| {});
    c.isolate(3);
    let start = c.now;
    c.transfer(1, 3);
    c.propose(1, 1);
    for _ in 0..10 {
        if !c.raft(1).is_transferring() {
            break;
        }
        c.fire_timer(1);
        c.deliver_all();
    }
    assert!(!c.raft(1).is_transferring());
    let timeout = c.raft(1).config().election_timeout.as_nanos() as u64;
    assert_eq!(c.now - start, timeout, "abandoned at the deadline");
    assert_eq!(c.raft(1).role(), Role::Leader);
    c.propose(1, 2); // accepted again, and committed with n2
    c.deliver_all();
    assert_eq!(c.raft(1).commit_index(), LogIndex(2));
    assert!(c
        .trace
        .iter()
        .any(|l| l.contains("n1 proposal p1 -> NotLeader { leader: None }")));
}

#[test]
fn a_transfer_vote_overrides_the_voters_leader_lease() {
    let mut c = three_with_leader(|_| {});
    // n3 heard from n1 just now: it ignores a vote request for term 2 from n2, unless n2 was
    // told to campaign by n1 (the leader side of this is in the transfer test above).
    let last = c.raft(2).log().last_position();
    for (n, transfer) in [(3, false), (3, true)] {
        c.act(n, |raft| {
            raft.handle_input(Input::Receive {
                now: Now::at(Instant(0), 0),
                from: id(2),
                message: Message::Vote {
                    term: Term(2),
                    last,
                    transfer,
                },
            })
        });
        let granted = c.raft(n).voted_for() == Some(id(2));
        assert_eq!(granted, transfer, "transfer={transfer}");
    }
}

/// A follower alone, answered by in-memory storage at once: the outputs other than storage.
fn drive(raft: &mut Raft, disk: &mut MemStore, input: Input) -> Vec<Output> {
    let mut pending = VecDeque::from([input]);
    let mut outs = Vec::new();
    while let Some(input) = pending.pop_front() {
        raft.handle_input(input);
        while let Some(o) = raft.poll_output() {
            match o {
                Output::Storage(req) => pending.push_back(Input::Storage {
                    now: Now::default(),
                    completion: disk.apply(req),
                }),
                other => outs.push(other),
            }
        }
    }
    outs
}

/// A follower restarted from a commit point at i5 with i6, i7 (all term 1) after it.
fn follower_with_base_at_5() -> (Raft, MemStore) {
    let entry = |p: u8| Entry::normal(Term(1), bytes::Bytes::from(vec![p]));
    let disk = MemStore {
        hard_state: HardState {
            term: Term(1),
            voted_for: None,
        },
        entries: (1..=7).map(entry).collect(),
        commit: LogIndex(5),
        ..MemStore::default()
    };
    let cfg = Config::new(id(2), vec![id(1), id(2), id(3)]);
    let raft = Raft::new(cfg, disk.recovered(), DetRng::new(9), Now::default()).expect("valid");
    assert_eq!(raft.log().base().index, LogIndex(5));
    (raft, disk)
}

fn append_from_n1(prev: (u64, u64), terms: &[u64], commit: u64) -> Input {
    let entries = terms
        .iter()
        .enumerate()
        .map(|(k, &t)| {
            Entry::normal(
                Term(t),
                bytes::Bytes::from(vec![prev.0 as u8 + 1 + k as u8]),
            )
        })
        .collect();
    Input::Receive {
        now: Now::default(),
        from: id(1),
        message: Message::Append(Append {
            term: Term(1),
            prev: LogPosition {
                index: LogIndex(prev.0),
                term: Term(prev.1),
            },
            entries,
            leader_commit: LogIndex(commit),
        }),
    }
}

fn accepted(outs: &[Output]) -> Vec<LogIndex> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send {
                message:
                    Message::AppendResponse {
                        result: AppendResult::Accepted { match_index },
                        ..
                    },
                ..
            } => Some(*match_index),
            _ => None,
        })
        .collect()
}

#[test]
fn an_append_partly_below_the_followers_base_applies_only_what_follows_it() {
    let (mut raft, mut disk) = follower_with_base_at_5();
    // i3..i8: i3..i5 are compacted here (skipped), i6 and i7 match, i8 is new.
    let outs = drive(&mut raft, &mut disk, append_from_n1((2, 1), &[1; 6], 8));
    assert_eq!(accepted(&outs), vec![LogIndex(8)]);
    assert_eq!(raft.last_index(), LogIndex(8));
    assert_eq!(raft.commit_index(), LogIndex(8));
    assert_eq!(disk.entries.len(), 8);
    // A term-2 entry at i7 (after a compacted i5 and a matching i6) replaces the tail.
    let (mut raft, mut disk) = follower_with_base_at_5();
    let mut input = append_from_n1((4, 1), &[1, 1, 2], 5);
    if let Input::Receive {
        message: Message::Append(a),
        ..
    } = &mut input
    {
        a.term = Term(2);
    }
    let outs = drive(&mut raft, &mut disk, input);
    assert!(outs.iter().any(|o| matches!(
        o,
        Output::Event(Event::Truncated {
            from: LogIndex(7),
            removed: 1
        })
    )));
    assert_eq!(accepted(&outs), vec![LogIndex(7)]);
    assert_eq!(raft.log().term_at(LogIndex(7)), Some(Term(2)));
}

#[test]
fn an_append_entirely_below_the_followers_base_is_accepted() {
    let (mut raft, mut disk) = follower_with_base_at_5();
    let outs = drive(&mut raft, &mut disk, append_from_n1((1, 1), &[1, 1], 3));
    assert_eq!(
        accepted(&outs),
        vec![LogIndex(3)],
        "verified up to prev + count"
    );
    assert_eq!(raft.last_index(), LogIndex(7), "nothing changed");
    assert_eq!(raft.commit_index(), LogIndex(5));
    // A heartbeat anchored below the base (or at index 0, a leader's keepalive) too.
    let outs = drive(&mut raft, &mut disk, append_from_n1((0, 0), &[], 7));
    assert_eq!(accepted(&outs), vec![LogIndex(3)]);
    assert_eq!(
        raft.commit_index(),
        LogIndex(5),
        "the commit index moves only up to what was verified"
    );
}

// ----- random schedules -----

#[derive(Clone, Debug)]
enum Step {
    Deliver(usize),
    Drop(usize),
    Duplicate(usize),
    Timer(u32),
    Propose(u32),
    Crash(u32),
    Restart(u32),
    Advance(u64),
    /// Node `n` compacts its in-memory log through its commit index.
    Compact(u32),
    /// Retention on node `n`'s disk removes everything up to its commit point.
    Retain(u32),
    /// Delivers every queued message and what they cause, so that schedules get far enough
    /// for leaders to compact past lagging followers.
    DeliverAll,
}

fn step_strategy() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        6 => any::<usize>().prop_map(Step::Deliver),
        1 => any::<usize>().prop_map(Step::Drop),
        1 => any::<usize>().prop_map(Step::Duplicate),
        2 => (1u32..=3).prop_map(Step::Timer),
        2 => (1u32..=3).prop_map(Step::Propose),
        1 => (1u32..=3).prop_map(Step::Crash),
        1 => (1u32..=3).prop_map(Step::Restart),
        1 => (1u64..300).prop_map(Step::Advance),
        1 => (1u32..=3).prop_map(Step::Compact),
        1 => (1u32..=3).prop_map(Step::Retain),
        1 => Just(Step::DeliverAll),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config { cases: 256, ..Default::default() })]

    /// Any interleaving of deliveries, drops, duplicates, timers, proposals, crashes,
    /// restarts (from the persisted commit point), compactions and retention keeps one leader
    /// per term and one entry per committed index (both checked inside the harness, as is that
    /// nothing at or below a commit point is truncated) and keeps every two nodes' committed
    /// prefixes equal. A small `max_lag_in_memory` makes leaders compact past lagging followers,
    /// so they are caught up from the store.
    #[test]
    fn random_schedules_keep_committed_prefixes_equal(steps in proptest::collection::vec(step_strategy(), 1..300)) {
        let mut c = Cluster::new(3, |cfg| {
            cfg.max_batch_entries = 2;
            cfg.max_lag_in_memory = 2;
        });
        let mut p = 0u64;
        for step in steps {
            match step {
                Step::Deliver(k) | Step::Drop(k) | Step::Duplicate(k) if c.queue.is_empty() => { let _ = k; }
                Step::Deliver(k) => {
                    let (f, t, m) = c.queue.remove(k % c.queue.len()).expect("in range");
                    c.deliver(f, t, m);
                }
                Step::Drop(k) => { c.queue.remove(k % c.queue.len()); }
                Step::Duplicate(k) => {
                    let m = c.queue[k % c.queue.len()].clone();
                    c.queue.push_back(m);
                }
                Step::Timer(n) => if c.nodes[n as usize - 1].is_some() { c.fire_timer(n) },
                Step::Propose(n) => if c.nodes[n as usize - 1].is_some() { p += 1; c.propose(n, p % 250) },
                Step::Crash(n) => if c.nodes[n as usize - 1].is_some() { c.crash(n) },
                Step::Restart(n) => if c.nodes[n as usize - 1].is_none() { c.restart(n) },
                Step::Advance(ms) => c.advance_ms(ms),
                Step::Compact(n) => if c.nodes[n as usize - 1].is_some() {
                    let commit = c.raft(n).commit_index();
                    c.compact(n, commit)
                },
                Step::DeliverAll => c.deliver_all(),
                Step::Retain(n) => {
                    let disk = &mut c.disks[n as usize - 1];
                    disk.retain_after(disk.commit);
                }
            }
            if let Err(e) = c.committed_prefixes_agree() {
                return Err(proptest::test_runner::TestCaseError::fail(e));
            }
        }
    }
}
