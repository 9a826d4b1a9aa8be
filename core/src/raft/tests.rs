//! Raft in a tiny in-process cluster: virtual time, a FIFO of messages the test delivers, drops
//! or duplicates by hand, and storage that completes at once. No sockets, no simulator.
//! Classic cases are insta snapshots of rendered traces; a proptest runs random schedules.

use super::*;
use crate::ids::{LogIndex, NodeId, Term};
use crate::rng::DetRng;
use crate::time::{Instant, Now};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

const MS: u64 = 1_000_000;

struct Cluster {
    nodes: Vec<Option<Raft>>,
    disks: Vec<Recovered>,
    configs: Vec<Config>,
    now: u64,
    queue: VecDeque<(NodeId, NodeId, Message)>,
    cut: BTreeSet<(u32, u32)>,
    trace: Vec<String>,
    commits: Vec<LogIndex>,
    leaders: BTreeMap<Term, NodeId>,
    seed: u64,
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
            disks: vec![Recovered::default(); n as usize],
            configs,
            now: 0,
            queue: VecDeque::new(),
            cut: BTreeSet::new(),
            trace: Vec::new(),
            commits: vec![LogIndex::ZERO; n as usize],
            leaders: BTreeMap::new(),
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
            self.disks[i].clone(),
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
        let i = n as usize - 1;
        let mut pending = VecDeque::from([input]);
        while let Some(input) = pending.pop_front() {
            let raft = self.nodes[i].as_mut().expect("node is up");
            raft.handle_input(input);
            let mut outs = Vec::new();
            while let Some(o) = raft.poll_output() {
                outs.push(o);
            }
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
                        let completion = apply_storage(&mut self.disks[i], req);
                        pending.push_back(Input::Storage {
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
            let commit = self.nodes[i].as_ref().expect("up").commit_index();
            if commit != self.commits[i] {
                self.commits[i] = commit;
                self.log(format!("  n{n} commit -> {commit:?}"));
            }
        }
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
        self.nodes[n as usize - 1] = Some(raft);
    }

    fn rendered(&self) -> String {
        self.trace.join("\n")
    }
}

/// Storage in these tests completes immediately and durably: the order of effects is what
/// matters here; the simulator owns crash-consistency.
fn apply_storage(disk: &mut Recovered, req: StorageRequest) -> StorageCompletion {
    match req {
        StorageRequest::SaveHardState(hs) => {
            disk.hard_state = hs;
            StorageCompletion::HardStateSaved(hs)
        }
        StorageRequest::Append { first, entries } => {
            assert_eq!(
                disk.entries.len() as u64 + 1,
                first.0,
                "append lands at the end"
            );
            disk.entries.extend(entries);
            StorageCompletion::Appended {
                last: LogIndex(disk.entries.len() as u64),
            }
        }
        StorageRequest::Truncate { from } => {
            disk.entries.truncate(from.0 as usize - 1);
            StorageCompletion::Truncated { from }
        }
        StorageRequest::Sync { up_to } => StorageCompletion::Synced { up_to },
    }
}

fn render(m: &Message) -> String {
    match m {
        Message::PreVote { term, last } => {
            format!("PreVote {term:?} last=({:?},{:?})", last.index, last.term)
        }
        Message::Vote { term, last } => {
            format!("Vote {term:?} last=({:?},{:?})", last.index, last.term)
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

#[test]
fn a_single_node_does_not_lead_before_its_vote_is_durable() {
    let mut raft = Raft::new(
        Config::new(id(1), vec![id(1)]),
        Recovered::default(),
        DetRng::new(5),
        Now::default(),
    )
    .expect("valid");
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
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config { cases: 256, ..Default::default() })]

    /// Any interleaving of deliveries, drops, duplicates, timers, proposals, crashes and
    /// restarts keeps one leader per term (checked inside the harness) and keeps every two
    /// nodes' committed prefixes equal.
    #[test]
    fn random_schedules_keep_committed_prefixes_equal(steps in proptest::collection::vec(step_strategy(), 1..300)) {
        let mut c = Cluster::new(3, |cfg| cfg.max_batch_entries = 2);
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
            }
            let up: Vec<&Raft> = c.nodes.iter().flatten().collect();
            for a in &up {
                for b in &up {
                    let k = a.commit_index().min(b.commit_index()).0 as usize;
                    proptest::prop_assert_eq!(&a.log().entries()[..k], &b.log().entries()[..k]);
                }
            }
        }
    }
}
