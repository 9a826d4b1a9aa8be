//! A three-broker cluster of real `sluice broker` processes on loopback, driven only through the
//! `sluice` command: the brokers find each other through `--voters`, a topic with three
//! partitions and three replicas takes records, the controller is killed with SIGKILL, the two
//! survivors elect new leaders and keep serving, and the killed broker comes back and catches
//! up until every replica is in sync again.
//!
//! Every wait polls `sluice cluster status` against a deadline; between polls the harness waits
//! for broker output (at most a short while), never a fixed sleep.

use crate::broker_proc::{
    output_text as text, run_sluice, start_voter_cluster, BrokerProc, TempDir,
};
use std::time::{Duration, Instant};

/// How long the cluster may take to form, elect, fail over or catch up.
const CONVERGE_WITHIN: Duration = Duration::from_secs(60);
/// The longest pause between two polls.
const POLL_EVERY: Duration = Duration::from_millis(100);
const TOPIC: &str = "orders";
const PARTITIONS: i32 = 3;

struct Cluster {
    /// Index i holds node id i + 1.
    brokers: Vec<BrokerProc>,
    _dir: TempDir,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = TempDir::new("cluster");
        let brokers = start_voter_cluster(dir.path(), &[]);
        Cluster { brokers, _dir: dir }
    }

    fn node(&self, id: i32) -> &BrokerProc {
        &self.brokers[(id - 1) as usize]
    }

    fn live(&self) -> Vec<&BrokerProc> {
        self.brokers.iter().filter(|b| b.is_running()).collect()
    }

    /// `sluice cluster status` as broker `via` answers it.
    fn status(&self, via: i32) -> String {
        let out = run_sluice(
            &[
                "cluster",
                "status",
                "--bootstrap",
                &self.node(via).bootstrap(),
            ],
            "",
        );
        text(&out)
    }

    /// Polls `check` (with the status `via` reports) until it holds; panics with the last
    /// status and every broker's log tail after `CONVERGE_WITHIN`.
    fn wait_for(&self, via: i32, what: &str, check: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        let deadline = started + CONVERGE_WITHIN;
        loop {
            let status = self.status(via);
            if check(&status) {
                eprintln!("{what}: after {:?}\n{status}", started.elapsed());
                return status;
            }
            let now = Instant::now();
            if now >= deadline {
                panic!(
                    "{what}: not within {CONVERGE_WITHIN:?}\nlast status from node {via}:\n\
                     {status}\n{}",
                    self.logs()
                );
            }
            self.node(via).pace(POLL_EVERY.min(deadline - now));
        }
    }

    /// Runs a `sluice` command until it succeeds (or `accept` says its failure is success
    /// enough), within `CONVERGE_WITHIN`.
    fn run_until_ok(&self, args: &[&str], stdin: &str, accept: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + CONVERGE_WITHIN;
        loop {
            let out = run_sluice(args, stdin);
            if out.status.success() || accept(&text(&out)) {
                return text(&out);
            }
            let now = Instant::now();
            if now >= deadline {
                panic!(
                    "sluice {}: still failing after {CONVERGE_WITHIN:?}:\n{}\n{}",
                    args.join(" "),
                    text(&out),
                    self.logs()
                );
            }
            self.live()[0].pace(POLL_EVERY.min(deadline - now));
        }
    }

    fn logs(&self) -> String {
        self.brokers
            .iter()
            .enumerate()
            .map(|(i, b)| format!("--- node {} log ---\n{}\n", i + 1, b.log_tail()))
            .collect()
    }

    /// Produces `values` to one partition through broker `via` (the CLI goes to the leader).
    fn produce(&self, via: i32, partition: i32, values: &[String]) {
        let mut stdin = values.join("\n");
        stdin.push('\n');
        let b = self.node(via).bootstrap();
        let p = partition.to_string();
        let out = run_sluice(
            &[
                "produce",
                "--topic",
                TOPIC,
                "--partition",
                &p,
                "--bootstrap",
                &b,
            ],
            &stdin,
        );
        assert!(
            out.status.success(),
            "produce to {TOPIC}-{partition} via node {via}: {}\n{}",
            text(&out),
            self.logs()
        );
    }

    /// Reads `n` records of one partition from the beginning through broker `via`.
    fn consume(&self, via: i32, partition: i32, n: usize) -> Vec<String> {
        let b = self.node(via).bootstrap();
        let p = partition.to_string();
        let count = n.to_string();
        let out = run_sluice(
            &[
                "consume",
                "--topic",
                TOPIC,
                "--partition",
                &p,
                "--from",
                "beginning",
                "-n",
                &count,
                "--idle-timeout-ms",
                "20000",
                "--bootstrap",
                &b,
            ],
            "",
        );
        assert!(
            out.status.success(),
            "consume {TOPIC}-{partition} via node {via}: {}\n{}",
            text(&out),
            self.logs()
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// The value of a `name:  value` summary line of `sluice cluster status`.
fn summary<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

fn values(tag: &str, partition: i32, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{tag}-p{partition}-{i}")).collect()
}

/// The partition rows of a status: (partition, leader, replicas, status).
fn partition_rows(status: &str) -> Vec<(i32, i32, String, String)> {
    status
        .lines()
        .skip_while(|l| !l.starts_with("TOPIC "))
        .skip(1)
        .filter_map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            // TOPIC PARTITION LEADER EPOCH REPLICAS IN-SYNC OFFLINE LAG STATUS (may be two
            // words)
            if cells.len() < 9 || cells[0] != TOPIC {
                return None;
            }
            Some((
                cells[1].parse().ok()?,
                cells[2].parse().unwrap_or(-1),
                cells[4].to_string(),
                cells[8..].join(" "),
            ))
        })
        .collect()
}

fn all_in_sync(status: &str) -> bool {
    summary(status, "partitions").is_some_and(|p| {
        p == format!("{PARTITIONS} in 1 topic, 0 without a leader, 0 under-replicated")
    })
}

#[test]
fn a_three_broker_cluster_survives_losing_its_controller_and_heals_when_it_returns() {
    let cluster = Cluster::start();

    // The three brokers register with an elected controller.
    let status = cluster.wait_for(1, "three live brokers and a controller", |s| {
        summary(s, "brokers") == Some("3 live, 0 offline")
            && summary(s, "controller").is_some_and(|c| c != "-")
    });
    let controller: i32 = summary(&status, "controller")
        .and_then(|c| c.parse().ok())
        .expect("a controller id");

    // A topic with a replica on every broker; a retry of a create that went through meanwhile
    // finds the topic there.
    let b1 = cluster.node(1).bootstrap();
    cluster.run_until_ok(
        &[
            "topic",
            "create",
            TOPIC,
            "--partitions",
            "3",
            "--replication-factor",
            "3",
            "--bootstrap",
            &b1,
        ],
        "",
        |out| out.contains("TOPIC_ALREADY_EXISTS"),
    );
    cluster.wait_for(2, "every partition led and fully in sync", all_in_sync);

    // Records go in through one broker and come out through another.
    for p in 0..PARTITIONS {
        cluster.produce(2, p, &values("before", p, 3));
    }
    for p in 0..PARTITIONS {
        assert_eq!(cluster.consume(3, p, 3), values("before", p, 3));
    }

    // SIGKILL the controller: the metadata group and the partitions it led both fail over.
    let mut cluster = cluster;
    cluster.brokers[(controller - 1) as usize].kill9();
    let survivors: Vec<i32> = (1..=3).filter(|&n| n != controller).collect();
    let (a, b) = (survivors[0], survivors[1]);
    let status = cluster.wait_for(
        a,
        "a new controller and a leader for every partition",
        |s| {
            summary(s, "controller").is_some_and(|c| c != "-" && c != controller.to_string())
                && summary(s, "brokers") == Some("2 live, 1 offline")
                && summary(s, "partitions").is_some_and(|p| p.contains(" 0 without a leader"))
        },
    );
    assert!(
        summary(&status, "partitions").is_some_and(|p| p.contains("3 under-replicated")),
        "every partition has lost a replica:\n{status}"
    );
    for p in 0..PARTITIONS {
        cluster.produce(a, p, &values("during", p, 2));
    }
    for p in 0..PARTITIONS {
        let mut expected = values("before", p, 3);
        expected.extend(values("during", p, 2));
        assert_eq!(cluster.consume(b, p, 5), expected, "partition {p}");
    }

    // The killed broker comes back, catches up, and every replica is in sync again. Only a
    // partition's leader measures its followers' lag, so each partition is judged by the status
    // its leader reports; and a leader hands leadership back to the preferred (first) replica
    // only once that replica has the whole log, so the restarted broker leading its preferred
    // partition again shows it caught up.
    cluster.brokers[(controller - 1) as usize].restart();
    cluster.wait_for(a, "the controller sees the restarted broker again", |s| {
        summary(s, "brokers") == Some("3 live, 0 offline")
    });
    let started = Instant::now();
    let deadline = started + CONVERGE_WITHIN;
    loop {
        let statuses: Vec<String> = (1..=3).map(|n| cluster.status(n)).collect();
        let settled = (0..PARTITIONS).all(|p| {
            statuses.iter().enumerate().any(|(i, s)| {
                partition_rows(s)
                    .iter()
                    .any(|(part, leader, replicas, status)| {
                        *part == p
                            && *leader == i as i32 + 1
                            && replicas.split(',').next() == Some(&leader.to_string())
                            && status == "ok"
                    })
            })
        });
        if settled {
            eprintln!(
                "every partition in sync with its preferred leader after {:?}",
                started.elapsed()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cluster did not heal within {CONVERGE_WITHIN:?}
{}
{}",
            statuses.join("\n"),
            cluster.logs()
        );
        cluster.node(controller).pace(POLL_EVERY);
    }
    for p in 0..PARTITIONS {
        let mut expected = values("before", p, 3);
        expected.extend(values("during", p, 2));
        assert_eq!(cluster.consume(controller, p, 5), expected, "partition {p}");
    }

    for b in &mut cluster.brokers {
        assert!(b.terminate().success(), "clean exit\n{}", b.log_tail());
    }
}
