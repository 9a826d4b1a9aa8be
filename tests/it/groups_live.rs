//! Consumer groups on a three-broker cluster of real `sluice broker` processes, driven by real
//! clients: confluent-kafka members that take over a SIGKILLed member's partitions, a group
//! that keeps consuming while its coordinator is SIGKILLed and restarted, kafka-python resuming
//! from its commits, two groups on one topic, and kcat's balanced consumer observed through
//! `sluice group list|describe|reset-offsets|delete`.
//!
//! Clients are separate processes (tests/python/group_check.py, kcat), so a member can be
//! killed like a crashed application. Each writes what it consumed and committed to a file
//! before it commits, so every acknowledged record can be checked against what the group
//! consumed (at least once: duplicates allowed, nothing missed). The harness observes the
//! group through `sluice group describe --json`, polling against deadlines, never sleeping;
//! every observation also checks that no committed offset went backwards.
//!
//! The brokers run with `--group-initial-rebalance-delay-ms 500` (Kafka's default is 3 s) and
//! the consumers with session.timeout.ms=6000 (the broker's minimum) to keep the tests short.
//! `SLUICE_GROUP_SESSION_TIMEOUT_MS=45000` runs the member-kill test with librdkafka's default
//! session timeout instead, to measure the rebalance time a default client sees (not in CI).

use crate::broker_proc::{
    file_tail, output_text as text, run_sluice, start_voter_cluster, BrokerProc, CapturedChild,
    TempDir,
};
use crate::python_clients::{repo_root, venv_python};
use json::{Json, Read};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// How long the cluster may take to form, a group to settle, or a backlog to drain.
const CONVERGE_WITHIN: Duration = Duration::from_secs(60);
/// The longest pause between two polls.
const POLL_EVERY: Duration = Duration::from_millis(100);
/// A client process's own deadline (its `--timeout`); the harness allows 30 s more.
const CLIENT_TIMEOUT_S: u64 = 120;
const TOPIC: &str = "orders";

/// Three brokers, all metadata voters, each with its own ports and data directory.
struct Cluster {
    /// Index i holds node id i + 1.
    brokers: Vec<BrokerProc>,
    dir: TempDir,
}

impl Cluster {
    fn start(label: &str, extra: &[&str]) -> Cluster {
        let dir = TempDir::new(label);
        let mut flags = vec!["--group-initial-rebalance-delay-ms", "500"];
        flags.extend_from_slice(extra);
        let brokers = start_voter_cluster(dir.path(), &flags);
        Cluster { brokers, dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn node(&mut self, id: i32) -> &mut BrokerProc {
        &mut self.brokers[(id - 1) as usize]
    }

    /// A running broker, for the CLI and for pacing polls.
    fn live(&self) -> &BrokerProc {
        self.brokers
            .iter()
            .find(|b| b.is_running())
            .expect("a running broker")
    }

    /// Every broker's address: clients find the cluster through whichever is up.
    fn bootstrap_all(&self) -> String {
        self.brokers
            .iter()
            .map(BrokerProc::bootstrap)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `sluice ARGS --bootstrap <a running broker>`.
    fn sluice(&self, args: &[&str]) -> Output {
        let b = self.live().bootstrap();
        let mut all = args.to_vec();
        all.extend(["--bootstrap", &b]);
        run_sluice(&all, "")
    }

    fn logs(&self) -> String {
        self.brokers
            .iter()
            .enumerate()
            .map(|(i, b)| format!("--- node {} log ---\n{}\n", i + 1, b.log_tail()))
            .collect()
    }

    /// Polls `check` until it returns `Some`, pausing between polls; panics after `within`
    /// with the last failure `check` reported and the brokers' logs.
    fn wait<T>(
        &self,
        what: &str,
        within: Duration,
        mut check: impl FnMut() -> Result<T, String>,
    ) -> T {
        let deadline = Instant::now() + within;
        loop {
            let last = match check() {
                Ok(v) => return v,
                Err(e) => e,
            };
            let now = Instant::now();
            if now >= deadline {
                panic!(
                    "{what}: not within {within:?}; last: {last}\n{}",
                    self.logs()
                );
            }
            self.live().pace(POLL_EVERY.min(deadline - now));
        }
    }

    /// Creates the topic once every broker has registered (until then the replication factor
    /// is larger than the live brokers).
    fn create_topic(&self, partitions: u32, replication: u32) {
        let (p, rf) = (partitions.to_string(), replication.to_string());
        self.wait("topic creation", CONVERGE_WITHIN, || {
            let out = self.sluice(&[
                "topic",
                "create",
                TOPIC,
                "--partitions",
                &p,
                "--replication-factor",
                &rf,
            ]);
            if out.status.success() {
                Ok(())
            } else {
                Err(text(&out))
            }
        });
    }

    /// The group as `sluice group describe --json` shows it, asked of a running broker.
    fn describe(&self, group: &str) -> Result<GroupView, String> {
        let out = self.sluice(&["group", "describe", group, "--json"]);
        if !out.status.success() {
            return Err(text(&out));
        }
        let json = json::parse(&String::from_utf8_lossy(&out.stdout))?;
        GroupView::from_json(&json)
    }
}

/// What `sluice group describe --json` says about a group and its offsets on `TOPIC`.
#[derive(Debug, Clone)]
struct GroupView {
    state: String,
    /// The assignor the members agreed on (while Stable).
    protocol: String,
    coordinator: i64,
    /// (member id, client id, assigned partitions of `TOPIC`).
    members: Vec<(String, String, Vec<i32>)>,
    committed: BTreeMap<i32, i64>,
    log_end: BTreeMap<i32, i64>,
}

impl GroupView {
    fn from_json(j: &Json) -> Result<GroupView, String> {
        let mut members = Vec::new();
        for m in j.at("members").arr() {
            let mut parts = Vec::new();
            for a in m.at("assignment").arr() {
                if a.at("topic").str() == TOPIC {
                    parts.extend(a.at("partitions").arr().iter().map(|p| p.int() as i32));
                }
            }
            parts.sort_unstable();
            let client = m.at("client_id").str().to_string();
            members.push((m.at("member_id").str().to_string(), client, parts));
        }
        let (mut committed, mut log_end) = (BTreeMap::new(), BTreeMap::new());
        for o in j.at("offsets").arr() {
            if o.at("topic").str() != TOPIC {
                continue;
            }
            let p = o.at("partition").int() as i32;
            if let Some(c) = o.at("committed").as_i64() {
                committed.insert(p, c);
            }
            if let Some(e) = o.at("log_end").as_i64() {
                log_end.insert(p, e);
            }
        }
        Ok(GroupView {
            state: j.at("state").str().to_string(),
            protocol: j.at("protocol").str().to_string(),
            coordinator: j.at("coordinator").at("id").int(),
            members,
            committed,
            log_end,
        })
    }

    /// Stable with exactly these client ids as members, and every partition assigned to one
    /// of them exactly once.
    fn settled(&self, clients: &[&str], partitions: i32) -> Result<(), String> {
        let mut have: Vec<&str> = self.members.iter().map(|m| m.1.as_str()).collect();
        have.sort_unstable();
        let mut want = clients.to_vec();
        want.sort_unstable();
        let mut assigned: Vec<i32> = self.members.iter().flat_map(|m| m.2.clone()).collect();
        assigned.sort_unstable();
        if self.state == "Stable" && have == want && assigned == (0..partitions).collect::<Vec<_>>()
        {
            Ok(())
        } else {
            Err(format!("not settled on {want:?}: {self:?}"))
        }
    }

    /// The partitions a client id's member owns.
    fn owned_by(&self, client: &str) -> Vec<i32> {
        self.members
            .iter()
            .filter(|m| m.1 == client)
            .flat_map(|m| m.2.clone())
            .collect()
    }
}

/// Committed offsets as the harness has seen them: none may ever go backwards.
#[derive(Default)]
struct CommitWatch {
    highest: BTreeMap<i32, i64>,
    observations: usize,
}

impl CommitWatch {
    fn observe(&mut self, v: &GroupView) {
        self.observations += 1;
        for (&p, &c) in &v.committed {
            let prev = self.highest.entry(p).or_insert(c);
            assert!(
                c >= *prev,
                "the committed offset of {TOPIC}-{p} went backwards from {prev} to {c} \
                 (observation {}): {v:?}",
                self.observations
            );
            *prev = c;
        }
    }
}

/// A client process whose output goes to `<dir>/<name>.log`.
struct ClientProc {
    name: String,
    child: CapturedChild,
    log: PathBuf,
}

impl ClientProc {
    fn spawn(name: &str, mut cmd: Command, dir: &Path) -> ClientProc {
        let log = dir.join(format!("{name}.log"));
        let child = CapturedChild::spawn(&mut cmd, &log);
        ClientProc {
            name: name.into(),
            child,
            log,
        }
    }

    /// Waits for a clean exit (bounded); panics with its output and the brokers' logs.
    fn finish(mut self, cluster: &Cluster) {
        let within = Duration::from_secs(CLIENT_TIMEOUT_S + 30);
        match self.child.wait_exit(within) {
            Some(s) if s.success() => {}
            status => {
                if status.is_none() {
                    self.child.kill();
                }
                panic!(
                    "{} failed ({status:?})\n--- its output ---\n{}\n{}",
                    self.name,
                    file_tail(&self.log, 100),
                    cluster.logs()
                );
            }
        }
    }
}

/// `group_check.py MODE --bootstrap <all brokers> --topic TOPIC --out <dir>/<name>.out ...`.
fn group_check(cluster: &Cluster, name: &str, mode: &str, args: &[&str]) -> ClientProc {
    let mut cmd = Command::new(venv_python());
    cmd.arg(repo_root().join("tests/python/group_check.py"))
        .arg(mode)
        .args(["--bootstrap", &cluster.bootstrap_all(), "--topic", TOPIC])
        .arg("--out")
        .arg(cluster.path(&format!("{name}.out")))
        .args(["--timeout", &CLIENT_TIMEOUT_S.to_string()])
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1");
    ClientProc::spawn(name, cmd, cluster.dir.path())
}

/// A confluent-kafka member of `group` with client id `name`, stopping when `stop` exists.
fn member(cluster: &Cluster, name: &str, group: &str, stop: &Path, session_ms: u64) -> ClientProc {
    member_with(cluster, name, group, stop, session_ms, "range")
}

fn member_with(
    cluster: &Cluster,
    name: &str,
    group: &str,
    stop: &Path,
    session_ms: u64,
    assignor: &str,
) -> ClientProc {
    let stop = stop.to_string_lossy().to_string();
    let session = session_ms.to_string();
    group_check(
        cluster,
        name,
        "consume",
        &[
            "--group",
            group,
            "--client-id",
            name,
            "--stop",
            &stop,
            "--session-timeout-ms",
            &session,
            "--assignor",
            assignor,
        ],
    )
}

/// One line of a client's out file (see tests/python/group_check.py).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    Record(i32, i64, String),
    Assigned(Vec<i32>),
    Committed(i32, i64),
}

fn read_out(cluster: &Cluster, name: &str) -> Vec<Line> {
    let path = cluster.path(&format!("{name}.out"));
    let body = std::fs::read_to_string(&path).unwrap_or_default();
    body.lines()
        // A SIGKILL can cut the last line short; it was never followed by a commit.
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let num = |i: usize| f.get(i).and_then(|s| s.parse::<i64>().ok());
            match f[0] {
                "R" if f.len() == 4 => {
                    Some(Line::Record(num(1)? as i32, num(2)?, f[3].to_string()))
                }
                "A" => Some(Line::Assigned(
                    f.get(1)
                        .unwrap_or(&"")
                        .split(',')
                        .filter_map(|p| p.parse().ok())
                        .collect(),
                )),
                "C" => Some(Line::Committed(num(1)? as i32, num(2)?)),
                _ => None,
            }
        })
        .collect()
}

/// (partition, offset) -> value of the records in `lines`.
fn records(lines: &[Line]) -> BTreeMap<(i32, i64), String> {
    lines
        .iter()
        .filter_map(|l| match l {
            Line::Record(p, o, v) => Some(((*p, *o), v.clone())),
            _ => None,
        })
        .collect()
}

/// Every acknowledged record was consumed by one of `consumers`, with its value. Returns
/// (distinct records consumed, duplicate deliveries).
fn check_every_acknowledged_record_consumed(
    acked: &BTreeMap<(i32, i64), String>,
    consumers: &[Vec<Line>],
    label: &str,
) -> (usize, usize) {
    let mut seen: BTreeMap<(i32, i64), String> = BTreeMap::new();
    let mut deliveries = 0;
    for lines in consumers {
        for l in lines {
            if let Line::Record(p, o, v) = l {
                deliveries += 1;
                if let Some(prev) = seen.insert((*p, *o), v.clone()) {
                    assert_eq!(&prev, v, "{label}: two values at {TOPIC}-{p}@{o}");
                }
            }
        }
    }
    let missed: Vec<_> = acked
        .iter()
        .filter(|(k, v)| seen.get(k) != Some(v))
        .take(10)
        .collect();
    assert!(
        missed.is_empty(),
        "{label}: acknowledged records not consumed (or with another value), first ones: \
         {missed:?} (consumed {} distinct of {} acknowledged)",
        seen.len(),
        acked.len()
    );
    (seen.len(), deliveries - seen.len())
}

/// The offset after each partition's last acknowledged record.
fn ends(acked: &BTreeMap<(i32, i64), String>) -> BTreeMap<i32, i64> {
    let mut out = BTreeMap::new();
    for &(p, o) in acked.keys() {
        let e = out.entry(p).or_insert(0);
        *e = (*e).max(o + 1);
    }
    out
}

/// Waits until the group has committed exactly the log end of every partition, and the log
/// end is the end of the acknowledged records (the group consumed all of them).
fn wait_drained(
    cluster: &Cluster,
    group: &str,
    end: &BTreeMap<i32, i64>,
    watch: &mut CommitWatch,
) -> GroupView {
    cluster.wait(
        &format!("group {group} committing the log end"),
        CONVERGE_WITHIN,
        || {
            let v = cluster.describe(group)?;
            watch.observe(&v);
            if &v.committed == end && &v.log_end == end {
                Ok(v)
            } else {
                Err(format!("want committed = log end = {end:?}: {v:?}"))
            }
        },
    )
}

fn session_timeout_ms() -> u64 {
    std::env::var("SLUICE_GROUP_SESSION_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6000)
}

#[test]
fn confluent_members_take_over_a_sigkilled_members_partitions_from_its_commits() {
    let session_ms = session_timeout_ms();
    let cluster = Cluster::start("grp-member-kill", &[]);
    cluster.create_topic(6, 3);
    let (stop_producer, stop_members) = (cluster.path("stop-producer"), cluster.path("stop"));
    let sp = stop_producer.to_string_lossy().to_string();
    let producer = group_check(
        &cluster,
        "producer",
        "produce",
        &["--partitions", "6", "--rate", "200", "--stop", &sp],
    );
    let mut members: BTreeMap<&str, ClientProc> = ["c1", "c2", "c3"]
        .into_iter()
        .map(|c| (c, member(&cluster, c, "billing", &stop_members, session_ms)))
        .collect();
    let mut watch = CommitWatch::default();

    // All three members own two partitions each and have each committed on their own
    // partitions since (commits from an earlier generation do not count).
    let mut baseline = cluster.wait("three members settled", CONVERGE_WITHIN, || {
        let v = cluster.describe("billing")?;
        watch.observe(&v);
        v.settled(&["c1", "c2", "c3"], 6)?;
        Ok(v)
    });
    let before = cluster.wait("every member committing", CONVERGE_WITHIN, || {
        let v = cluster.describe("billing")?;
        watch.observe(&v);
        v.settled(&["c1", "c2", "c3"], 6)?;
        if ["c1", "c2", "c3"]
            .iter()
            .any(|c| v.owned_by(c) != baseline.owned_by(c))
        {
            baseline = v.clone();
            return Err("the group rebalanced again".into());
        }
        let moved = (0..6).all(|p| v.committed.get(&p) > baseline.committed.get(&p));
        if moved {
            Ok(v)
        } else {
            Err(format!(
                "not every partition committed since {baseline:?}: {v:?}"
            ))
        }
    });
    let victim_partitions = before.owned_by("c1");
    assert_eq!(victim_partitions.len(), 2, "{before:?}");

    // SIGKILL c1: no LeaveGroup, so the coordinator notices only when its session expires.
    let killed_at = Instant::now();
    members.remove("c1").expect("c1").child.kill();
    let within = Duration::from_millis(session_ms) + CONVERGE_WITHIN;
    let after = cluster.wait("the survivors own every partition", within, || {
        let v = cluster.describe("billing")?;
        watch.observe(&v);
        v.settled(&["c2", "c3"], 6)?;
        Ok(v)
    });
    let rebalance = killed_at.elapsed();
    println!(
        "rebalance after SIGKILL of a member (session.timeout.ms={session_ms}): {:.2} s, from \
         the kill to the group Stable with all 6 partitions on the 2 survivors",
        rebalance.as_secs_f64()
    );
    // The victim's last sign of life (a heartbeat, at most one interval before the kill, or a
    // commit) starts its session: no rebalance may complete before it can have expired.
    let heartbeat = Duration::from_millis(session_ms.min(9000) / 3);
    assert!(
        rebalance >= Duration::from_millis(session_ms) - heartbeat,
        "the group rebalanced before the killed member's session could expire: {rebalance:?}"
    );

    // The survivors make progress on the victim's partitions, then the backlog drains.
    cluster.wait(
        "commits on the victim's partitions",
        CONVERGE_WITHIN,
        || {
            let v = cluster.describe("billing")?;
            watch.observe(&v);
            let moved = victim_partitions
                .iter()
                .all(|p| v.committed.get(p) > after.committed.get(p));
            if moved {
                Ok(())
            } else {
                Err(format!("no new commits on {victim_partitions:?}: {v:?}"))
            }
        },
    );
    std::fs::write(&stop_producer, b"").expect("writing the stop file");
    producer.finish(&cluster);
    let acked = records(&read_out(&cluster, "producer"));
    assert!(acked.len() >= 1000, "only {} acknowledged", acked.len());
    wait_drained(&cluster, "billing", &ends(&acked), &mut watch);
    std::fs::write(&stop_members, b"").expect("writing the stop file");
    for (_, m) in members {
        m.finish(&cluster);
    }

    let outs: BTreeMap<&str, Vec<Line>> = ["c1", "c2", "c3"]
        .into_iter()
        .map(|c| (c, read_out(&cluster, c)))
        .collect();
    let all: Vec<Vec<Line>> = outs.values().cloned().collect();
    let (distinct, duplicates) = check_every_acknowledged_record_consumed(&acked, &all, "billing");
    // Each taken-over partition resumed where the victim's commits left it, not at the start.
    for &p in &victim_partitions {
        let victim_commit = outs["c1"]
            .iter()
            .filter_map(|l| match l {
                Line::Committed(q, o) if *q == p => Some(*o),
                _ => None,
            })
            .max()
            .unwrap_or_else(|| panic!("c1 logged no commit on {TOPIC}-{p}"));
        let (owner, resumed) = ["c2", "c3"]
            .into_iter()
            .find_map(|c| first_record_after_last_assignment(&outs[c], p).map(|o| (c, o)))
            .unwrap_or_else(|| panic!("no survivor consumed {TOPIC}-{p} after the rebalance"));
        assert!(
            resumed >= victim_commit,
            "{owner} resumed {TOPIC}-{p} at {resumed}, before c1's last commit {victim_commit}"
        );
        println!("{TOPIC}-{p}: c1 last committed {victim_commit}, {owner} resumed at {resumed}");
    }
    println!(
        "{} records acknowledged, {distinct} consumed, {duplicates} duplicate deliveries, {} \
         commit observations",
        acked.len(),
        watch.observations
    );
}

/// The first offset of partition `p` consumed after the last assignment that included `p`.
fn first_record_after_last_assignment(lines: &[Line], p: i32) -> Option<i64> {
    let start = lines
        .iter()
        .rposition(|l| matches!(l, Line::Assigned(ps) if ps.contains(&p)))?;
    lines[start..].iter().find_map(|l| match l {
        Line::Record(q, o, _) if *q == p => Some(*o),
        _ => None,
    })
}

#[test]
fn a_group_keeps_consuming_and_its_commits_survive_a_sigkilled_coordinator() {
    let mut cluster = Cluster::start("grp-coordinator-kill", &[]);
    cluster.create_topic(6, 3);
    let (stop_producer, stop_members) = (cluster.path("stop-producer"), cluster.path("stop"));
    let sp = stop_producer.to_string_lossy().to_string();
    let producer = group_check(
        &cluster,
        "producer",
        "produce",
        &["--partitions", "6", "--rate", "200", "--stop", &sp],
    );
    let members: Vec<ClientProc> = ["c1", "c2"]
        .into_iter()
        .map(|c| member(&cluster, c, "audit", &stop_members, 6000))
        .collect();
    let mut watch = CommitWatch::default();
    let progress = |cluster: &Cluster, watch: &mut CommitWatch, past: &GroupView, what: &str| {
        cluster.wait(what, CONVERGE_WITHIN, || {
            let v = cluster.describe("audit")?;
            watch.observe(&v);
            v.settled(&["c1", "c2"], 6)?;
            let moved = (0..6).all(|p| v.committed.get(&p) > past.committed.get(&p));
            if moved {
                Ok(v)
            } else {
                Err(format!(
                    "no new commit on every partition since {past:?}: {v:?}"
                ))
            }
        })
    };
    let empty = GroupView {
        state: String::new(),
        protocol: String::new(),
        coordinator: -1,
        members: Vec::new(),
        committed: BTreeMap::new(),
        log_end: BTreeMap::new(),
    };
    let before = progress(&cluster, &mut watch, &empty, "two members committing");

    let coordinator = before.coordinator as i32;
    let killed_at = Instant::now();
    cluster.node(coordinator).kill9();
    let failed_over = cluster.wait("another coordinator", CONVERGE_WITHIN, || {
        let v = cluster.describe("audit")?;
        watch.observe(&v);
        if v.coordinator == i64::from(coordinator) {
            return Err(format!("still coordinated by the killed broker: {v:?}"));
        }
        v.settled(&["c1", "c2"], 6)?;
        Ok(v)
    });
    println!(
        "coordinator {coordinator} SIGKILLed: broker {} coordinates the Stable group after \
         {:.2} s",
        failed_over.coordinator,
        killed_at.elapsed().as_secs_f64()
    );
    for p in 0..6 {
        assert!(
            failed_over.committed.get(&p) >= before.committed.get(&p),
            "{TOPIC}-{p}: the new coordinator lost commits: {before:?} then {failed_over:?}"
        );
    }
    let during = progress(
        &cluster,
        &mut watch,
        &failed_over,
        "commits through the new coordinator",
    );
    println!(
        "consumption went on: every partition committed past its offset at the kill {:.2} s \
         after it",
        killed_at.elapsed().as_secs_f64()
    );

    cluster.node(coordinator).restart();
    progress(
        &cluster,
        &mut watch,
        &during,
        "commits after the old coordinator's restart",
    );
    std::fs::write(&stop_producer, b"").expect("writing the stop file");
    producer.finish(&cluster);
    let acked = records(&read_out(&cluster, "producer"));
    wait_drained(&cluster, "audit", &ends(&acked), &mut watch);
    std::fs::write(&stop_members, b"").expect("writing the stop file");
    for m in members {
        m.finish(&cluster);
    }
    let all = vec![read_out(&cluster, "c1"), read_out(&cluster, "c2")];
    for (name, lines) in ["c1", "c2"].iter().zip(&all) {
        check_own_commits_monotonic(name, lines);
    }
    let (distinct, duplicates) = check_every_acknowledged_record_consumed(&acked, &all, "audit");
    println!(
        "{} records acknowledged, {distinct} consumed, {duplicates} duplicate deliveries, {} \
         commit observations",
        acked.len(),
        watch.observations
    );
}

/// A member's own acknowledged commits never go backwards on a partition it keeps.
fn check_own_commits_monotonic(name: &str, lines: &[Line]) {
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    for l in lines {
        match l {
            Line::Assigned(_) => last.clear(),
            Line::Committed(p, o) => {
                let prev = last.insert(*p, *o).unwrap_or(*o);
                assert!(
                    *o >= prev,
                    "{name}: commit on {TOPIC}-{p} went from {prev} to {o}"
                );
            }
            Line::Record(..) => {}
        }
    }
}

#[test]
fn kafka_python_resumes_from_its_committed_offsets_after_a_restart() {
    let cluster = Cluster::start("grp-kafka-python", &[]);
    cluster.create_topic(3, 3);
    group_check(
        &cluster,
        "producer",
        "produce",
        &["--partitions", "3", "--count", "300", "--rate", "1000"],
    )
    .finish(&cluster);
    let acked = records(&read_out(&cluster, "producer"));
    assert_eq!(acked.len(), 300);

    let kp = |name: &str, expect: &str| {
        group_check(
            &cluster,
            name,
            "kp-consume",
            &["--group", "ledger", "--client-id", name, "--expect", expect],
        )
        .finish(&cluster);
        read_out(&cluster, name)
    };
    let first = kp("kp-first", "120");
    let committed: BTreeMap<i32, i64> = first
        .iter()
        .filter_map(|l| match l {
            Line::Committed(p, o) => Some((*p, *o)),
            _ => None,
        })
        .collect();
    assert_eq!(records(&first).len(), 120);
    let v = cluster.describe("ledger").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v.state, "Empty", "kafka-python left the group: {v:?}");
    assert_eq!(
        v.committed, committed,
        "the coordinator holds what was committed"
    );

    let second = kp("kp-second", "180");
    for p in 0..3 {
        let resumed = second.iter().find_map(|l| match l {
            Line::Record(q, o, _) if *q == p => Some(*o),
            _ => None,
        });
        let from = committed.get(&p).copied().unwrap_or(0);
        if from < 100 {
            assert_eq!(
                resumed,
                Some(from),
                "{TOPIC}-{p}: the restarted consumer did not resume at the commit"
            );
        }
    }
    let both = vec![first, second];
    let (distinct, duplicates) = check_every_acknowledged_record_consumed(&acked, &both, "ledger");
    assert_eq!(
        (distinct, duplicates),
        (300, 0),
        "exact resume, no re-reads"
    );
    let mut watch = CommitWatch::default();
    wait_drained(&cluster, "ledger", &ends(&acked), &mut watch);
}

#[test]
fn two_groups_on_one_topic_each_receive_every_record() {
    // Both groups consume while the records are produced.
    let cluster = Cluster::start("grp-two-groups", &[]);
    cluster.create_topic(4, 3);
    let stop = cluster.path("stop");
    // One group with librdkafka's incremental (cooperative-sticky) assignor, one eager.
    let members = [
        member_with(
            &cluster,
            "east-1",
            "east",
            &stop,
            6000,
            "cooperative-sticky",
        ),
        member_with(
            &cluster,
            "east-2",
            "east",
            &stop,
            6000,
            "cooperative-sticky",
        ),
        member(&cluster, "west-1", "west", &stop, 6000),
    ];
    let layout: [(&str, &[&str], &str); 2] = [
        ("east", &["east-1", "east-2"], "cooperative-sticky"),
        ("west", &["west-1"], "range"),
    ];
    for (group, clients, assignor) in layout {
        let v = cluster.wait(&format!("group {group} settled"), CONVERGE_WITHIN, || {
            let v = cluster.describe(group)?;
            v.settled(clients, 4)?;
            Ok(v)
        });
        assert_eq!(v.protocol, assignor, "{v:?}");
    }
    group_check(
        &cluster,
        "producer",
        "produce",
        &["--partitions", "4", "--count", "800", "--rate", "400"],
    )
    .finish(&cluster);
    let acked = records(&read_out(&cluster, "producer"));
    let end = ends(&acked);
    for (group, clients, _) in layout {
        let mut watch = CommitWatch::default();
        let v = wait_drained(&cluster, group, &end, &mut watch);
        v.settled(clients, 4).unwrap_or_else(|e| panic!("{e}"));
    }
    std::fs::write(&stop, b"").expect("writing the stop file");
    for m in members {
        m.finish(&cluster);
    }
    let east = vec![read_out(&cluster, "east-1"), read_out(&cluster, "east-2")];
    let west = vec![read_out(&cluster, "west-1")];
    check_every_acknowledged_record_consumed(&acked, &east, "east");
    check_every_acknowledged_record_consumed(&acked, &west, "west");
    let list = cluster.sluice(&["group", "list"]);
    assert!(list.status.success(), "{}", text(&list));
    let names: BTreeSet<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["east".to_string(), "west".to_string()])
    );
}

#[test]
fn sluice_group_tools_follow_kcats_balanced_consumer_on_a_live_cluster() {
    // The offsets-topic flags reach the broker: 4 partitions with 2 replicas each.
    let cluster = Cluster::start(
        "grp-kcat",
        &[
            "--offsets-topic-partitions",
            "4",
            "--offsets-topic-replication-factor",
            "2",
        ],
    );
    cluster.create_topic(3, 3);
    let values: Vec<String> = (0..300).map(|i| format!("v{i}")).collect();
    for p in 0..3 {
        let mine: Vec<&str> = values[p * 100..(p + 1) * 100]
            .iter()
            .map(String::as_str)
            .collect();
        let b = cluster.live().bootstrap();
        let part = p.to_string();
        let out = run_sluice(
            &["produce", "-t", TOPIC, "-p", &part, "--bootstrap", &b],
            &(mine.join("\n") + "\n"),
        );
        assert!(out.status.success(), "{}", text(&out));
    }
    let mut cmd = Command::new("kcat");
    cmd.args(["-b", &cluster.bootstrap_all(), "-G", "kgroup", "-q", "-u"])
        .args(["-X", "auto.offset.reset=earliest"])
        .args(["-X", "auto.commit.interval.ms=200"])
        .args(["-X", "session.timeout.ms=6000"])
        .args(["-f", "%p\t%o\t%s\n", TOPIC]);
    let kcat = ClientProc::spawn("kcat", cmd, cluster.dir.path());

    let mut watch = CommitWatch::default();
    let end = BTreeMap::from([(0, 100), (1, 100), (2, 100)]);
    let v = cluster.wait("kcat consuming everything", CONVERGE_WITHIN, || {
        let v = cluster.describe("kgroup")?;
        watch.observe(&v);
        v.settled(&["rdkafka"], 3)?;
        if v.committed == end && v.log_end == end {
            Ok(v)
        } else {
            Err(format!("not drained: {v:?}"))
        }
    });
    let consumed: BTreeSet<String> = std::fs::read_to_string(&kcat.log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.splitn(3, '\t').nth(2).map(str::to_string))
        .collect();
    assert_eq!(consumed, values.iter().cloned().collect::<BTreeSet<_>>());

    // list: one row, coordinated where FindCoordinator (describe) says.
    let list = cluster.sluice(&["group", "list"]);
    let row = format!("kgroup  consumer  Stable  {}", v.coordinator);
    assert!(text(&list).contains(&row), "{}", text(&list));
    let json = cluster.sluice(&["group", "list", "--json"]);
    let entry = format!(
        "{{\"group\":\"kgroup\",\"protocol_type\":\"consumer\",\"state\":\"Stable\",\
         \"coordinator\":{}}}",
        v.coordinator
    );
    assert!(text(&json).contains(&entry), "{}", text(&json));
    // describe (text): a member with kcat's client id owning all three partitions, no lag.
    let described = text(&cluster.sluice(&["group", "describe", "kgroup"]));
    assert!(described.contains("state:        Stable"), "{described}");
    assert!(
        described.contains("protocol:     consumer (range)"),
        "{described}"
    );
    assert!(described.contains("orders:0,1,2"), "{described}");
    for p in 0..3 {
        let row = format!("{TOPIC}  {p}          100             100             0    ");
        assert!(described.contains(&row), "no row {row:?} in\n{described}");
    }
    // Members present: reset and delete are refused with the reason.
    let reset = cluster.sluice(&[
        "group",
        "reset-offsets",
        "kgroup",
        "-t",
        TOPIC,
        "--to-earliest",
    ]);
    assert_eq!(reset.status.code(), Some(1), "{}", text(&reset));
    assert!(
        text(&reset).contains("is Stable with 1 member"),
        "{}",
        text(&reset)
    );
    let delete = cluster.sluice(&["group", "delete", "kgroup"]);
    assert_eq!(delete.status.code(), Some(1), "{}", text(&delete));
    assert!(
        text(&delete).contains("still has members"),
        "{}",
        text(&delete)
    );

    // kcat leaves the group on SIGTERM.
    let pid = kcat.child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
    kcat.finish(&cluster);
    cluster.wait("kgroup empty", CONVERGE_WITHIN, || {
        let v = cluster.describe("kgroup")?;
        watch.observe(&v);
        if v.state == "Empty" && v.members.is_empty() {
            Ok(())
        } else {
            Err(format!("{v:?}"))
        }
    });

    // Without members the offsets can be moved, back to the start or to an offset.
    let reset = cluster.sluice(&[
        "group",
        "reset-offsets",
        "kgroup",
        "-t",
        TOPIC,
        "--to-earliest",
    ]);
    assert!(reset.status.success(), "{}", text(&reset));
    assert!(
        text(&reset).contains(&format!("{TOPIC}  0          100         0")),
        "{}",
        text(&reset)
    );
    let to = cluster.sluice(&[
        "group",
        "reset-offsets",
        "kgroup",
        "-t",
        TOPIC,
        "-p",
        "1",
        "--to-offset",
        "40",
    ]);
    assert!(to.status.success(), "{}", text(&to));
    let v = cluster.describe("kgroup").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v.committed, BTreeMap::from([(0, 0), (1, 40), (2, 0)]));
    let described = text(&cluster.sluice(&["group", "describe", "kgroup"]));
    assert!(
        described.contains(&format!(
            "{TOPIC}  1          40              100             60"
        )),
        "{described}"
    );

    // Bad input gets clear errors.
    for (args, says) in [
        (vec!["group", "describe", ""], "the group id is empty"),
        (
            vec!["group", "describe", "nobody"],
            "group 'nobody' does not exist",
        ),
        (
            vec![
                "group",
                "reset-offsets",
                "kgroup",
                "-t",
                "nope",
                "--to-latest",
            ],
            "UNKNOWN_TOPIC_OR_PARTITION",
        ),
        (
            vec![
                "group",
                "reset-offsets",
                "kgroup",
                "-t",
                TOPIC,
                "-p",
                "7",
                "--to-latest",
            ],
            "partition 7 does not exist",
        ),
    ] {
        let out = cluster.sluice(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(says), "{args:?}: {}", text(&out));
    }

    let delete = cluster.sluice(&["group", "delete", "kgroup"]);
    assert!(delete.status.success(), "{}", text(&delete));
    let list = cluster.sluice(&["group", "list"]);
    assert!(!text(&list).contains("kgroup"), "{}", text(&list));
    let again = cluster.sluice(&["group", "delete", "kgroup"]);
    assert!(
        text(&again).contains("group 'kgroup' does not exist"),
        "{}",
        text(&again)
    );

    // __consumer_offsets was created with the flags' partitions and replicas.
    let status = cluster.sluice(&["cluster", "status", "--json"]);
    let status = json::parse(&String::from_utf8_lossy(&status.stdout)).expect("status JSON");
    let offsets: Vec<&Json> = status
        .at("partitions")
        .arr()
        .iter()
        .filter(|p| p.at("topic").str() == "__consumer_offsets")
        .collect();
    assert_eq!(offsets.len(), 4, "{status:?}");
    assert!(
        offsets.iter().all(|p| p.at("replicas").arr().len() == 2),
        "{offsets:?}"
    );
}

/// Reading `sluice ... --json` output with serde_json. The accessors return null, empty or a
/// sentinel for what is absent, so a shape mismatch shows as a failed comparison with the
/// whole value in the message.
mod json {
    pub use serde_json::Value as Json;

    pub fn parse(s: &str) -> Result<Json, String> {
        serde_json::from_str(s).map_err(|e| format!("not JSON ({e}): {s}"))
    }

    pub trait Read {
        fn at(&self, key: &str) -> &Json;
        fn arr(&self) -> &[Json];
        fn str(&self) -> &str;
        fn int(&self) -> i64;
    }

    impl Read for Json {
        fn at(&self, key: &str) -> &Json {
            &self[key]
        }

        fn arr(&self) -> &[Json] {
            self.as_array().map_or(&[], Vec::as_slice)
        }

        fn str(&self) -> &str {
            self.as_str().unwrap_or("")
        }

        fn int(&self) -> i64 {
            self.as_i64().unwrap_or(i64::MIN)
        }
    }
}
