//! Real network faults between real processes: three `sluice broker` processes, each in its own
//! Linux network namespace, and real Kafka clients (confluent-kafka, tests/python/netns_clients.py)
//! in a fourth, while the harness cuts links with iptables and stops and kills brokers. Then it
//! checks the history for the Kafka-level simulator's anomaly classes.
//!
//! **Needs root, `ip` (iproute2) and `iptables`.** Run just these tests with
//! `cargo build -p sluice && sudo -E cargo test -p sluice-tests netns_faults` (CI runs as root;
//! `.ci/setup-clients` installs iptables and the Python clients). Without root they fail with a
//! message saying so: they never pass silently.
//!
//! ## Topology
//!
//! Per test run (names carry the test process's pid and a counter, so parallel tests and
//! leftovers of earlier runs never collide):
//!
//! ```text
//!   sluice-nf-<pid>-<n>-sw      a Linux bridge br0 (no address)
//!     ├─ veth ── sluice-nf-<pid>-<n>-b1   eth0 10.213.S.11/24   broker 1 (:9092 clients, :9093 peers)
//!     ├─ veth ── sluice-nf-<pid>-<n>-b2   eth0 10.213.S.12/24   broker 2
//!     ├─ veth ── sluice-nf-<pid>-<n>-b3   eth0 10.213.S.13/24   broker 3
//!     └─ veth ── sluice-nf-<pid>-<n>-cl   eth0 10.213.S.100/24  producer, 3 group members, tools
//! ```
//!
//! S is run-specific; the /24 exists only inside these namespaces. Every link is made from
//! inside the switch namespace (`ip -n SW link add ... peer ... netns NS`), so nothing is added
//! to the root namespace: no interface, address or route, and no namespace has a default route.
//! Brokers run as `ip netns exec NS sluice broker ...` (which execs, so the child's pid is the
//! broker's: checked at start through /proc), every client and `sluice` tool command as
//! `ip netns exec CLIENT_NS ...`.
//!
//! ## Faults
//!
//! iptables rules inside a broker's namespace (nft backend is fine): full isolation of a broker
//! (`INPUT -i eth0` and `OUTPUT -o eth0` dropped: no peer and no client reaches it), a cut
//! between two brokers (both directions dropped on one side), a one-way cut (A's packets to B
//! dropped at B's INPUT, B's packets to A flow: TCP between them soon stalls, but what B already
//! sent keeps arriving at A), and random packet loss (`-m statistic --mode random --probability
//! P -j DROP` on both directions of a broker's link); then SIGSTOP/SIGCONT of a partition leader
//! and of the controller, and SIGKILL + restart of a partition leader and of the group's
//! coordinator. `tc netem` does not exist on the kernels this runs on ("Specified qdisc kind is
//! unknown"), so there is no delay or reordering fault; loss is iptables' statistic match.
//!
//! Each test has a fixed schedule; the seed only picks the targets (which partition's leader,
//! which other broker). It is printed first; `SLUICE_NETNS_SEED=N` replays a run's choices.
//! After each fault the harness heals everything and waits until every partition acknowledges
//! new records and the cluster has converged again, so each fault starts from a healthy
//! cluster. Per fault it prints what `sluice cluster status` showed during it (asking each
//! reachable broker in turn: their views differ under a partition), the time to the first
//! acknowledgement of a record sent after the fault began on a partition the target led, the
//! longest stretch without an acknowledgement per partition, and the time from the heal until
//! every partition acknowledged a record sent after it. `SLUICE_NETNS_CLIENT_DEBUG=metadata,topic`
//! (any librdkafka debug contexts) puts librdkafka's debug log in each client's `.log`; a failed
//! run keeps its directory (histories, client and broker logs) and names it.
//!
//! ## What is checked afterwards
//!
//! Once healed and converged (every partition led and in sync, no replica lag), the whole topic
//! is read back and the histories (every acknowledged delivery, every failure, every record each
//! member polled, every assignment) are checked by `check_history`:
//!
//! - `lost`: an acknowledged record is not in the final log at the offset it was acknowledged at
//!   (librdkafka acknowledges a record implicitly, without an offset, when a later batch of the
//!   idempotent producer was acknowledged while it was being retried: such a record must be in
//!   its partition at some offset);
//! - `duplicated`: a value at two offsets, or acknowledged twice (the producer is idempotent);
//! - `reordered`: within a partition the producer's values are not in send order;
//! - `inconsistent-offset`: one offset seen with two values (acks, polls, read-back);
//! - `read-then-gone`: a member polled a record the final log does not hold;
//! - `nonmonotonic-poll` / `poll-skip`: within one member's uninterrupted ownership of a
//!   partition (from an assignment to the next assignment, revocation or loss; a member may
//!   legitimately restart from the committed offset after a rebalance), the offsets it polls go
//!   back or jump over one (offsets are dense: no transactions, no compaction);
//! - `poll-unowned`: a member polled a partition it was not assigned;
//! - `unconsumed`: the group never polled an acknowledged record (at least once);
//! - `log-hole`, `foreign-value`, `wrong-partition`, `producer-failure`, `producer-fatal`.
//!
//! Progress is asserted too: records are acknowledged during every fault, and every partition
//! acknowledges new records after every heal. Each anomaly class is shown to fire on a planted
//! history by `checker_catches_each_anomaly_class` (no root needed).
//!
//! ## Clean-up
//!
//! `Harness` owns the clients, then the brokers, then the namespaces: its drop (also during a
//! panic) kills the clients and brokers, kills anything left inside the namespaces, and deletes
//! them, which removes their veths. On start the harness deletes namespaces with its prefix
//! whose owning pid no longer exists (a run that was SIGKILLed), leaving those of live runs.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::broker_proc::{file_tail, sluice_bin, BrokerProc, BrokerSpec, CapturedChild, TempDir};
use crate::python_clients::{repo_root, venv_python};

/// Every namespace this harness creates starts with this, then `<pid>-<n>-<role>`.
const PREFIX: &str = "sluice-nf-";
const TOPIC: &str = "netns";
const PARTITIONS: i32 = 4;
const GROUP: &str = "netns-group";
const MEMBERS: [&str; 3] = ["m1", "m2", "m3"];
const CLIENT_PORT: u16 = 9092;
const PEER_PORT: u16 = 9093;
/// Records per second the producer sends.
const RATE: u32 = 150;
/// The members' session timeout (the brokers allow down to 1 s).
const SESSION_MS: u64 = 6000;
/// A client process's own deadline; the harness's waits end well before it.
const CLIENT_TIMEOUT_S: u64 = 240;
/// Formation, convergence, draining: the longest the harness waits for one of them.
const CONVERGE_WITHIN: Duration = Duration::from_secs(60);
/// After a heal, every partition must acknowledge a new record within this.
const RECOVER_WITHIN: Duration = Duration::from_secs(45);
/// One `sluice` tool command in the client namespace.
const TOOL_WITHIN: Duration = Duration::from_secs(5);
/// The pause between two polls of a condition.
const POLL_EVERY: Duration = Duration::from_millis(100);

// ------------------------------------------------------------------------------------------
// The tests
// ------------------------------------------------------------------------------------------

#[test]
fn isolation_cuts_one_way_cuts_and_packet_loss_lose_no_acknowledged_record() {
    run_test("net", |h, rng, faults| {
        // 1. Isolate the leader of a partition: no peer and no client reaches it.
        let p = rng.below(PARTITIONS as u64) as i32;
        let target = h.leader_of(p);
        h.fault(
            faults,
            &format!("isolate broker {target} (leader of p{p})"),
            target,
            Duration::from_secs(8),
            |h| h.net.isolate(target),
        );
        // 2. Cut the controller from one other broker, both ways.
        let controller = h.controller();
        let other = h.other_broker(rng, &[controller]);
        h.fault(
            faults,
            &format!("cut controller {controller} <-> broker {other}"),
            controller,
            Duration::from_secs(6),
            |h| h.net.cut(controller, other),
        );
        // 3. One way: a leader's packets to another broker are dropped, the reverse flows.
        let p = rng.below(PARTITIONS as u64) as i32;
        let from = h.leader_of(p);
        let to = h.other_broker(rng, &[from]);
        h.fault(
            faults,
            &format!("one-way cut: broker {from} (leader of p{p}) -> broker {to} dropped"),
            from,
            Duration::from_secs(6),
            |h| h.net.one_way(from, to),
        );
        // 4. Random loss on both directions of a leader's link.
        let p = rng.below(PARTITIONS as u64) as i32;
        let lossy = h.leader_of(p);
        h.fault(
            faults,
            &format!("25% packet loss each way on broker {lossy} (leader of p{p})"),
            lossy,
            Duration::from_secs(8),
            |h| h.net.loss(lossy, 0.25),
        );
        // 5. Isolate the group's coordinator for longer than the members' session.
        let coordinator = h.coordinator();
        h.fault(
            faults,
            &format!("isolate group coordinator {coordinator}"),
            coordinator,
            Duration::from_millis(SESSION_MS + 2000),
            |h| h.net.isolate(coordinator),
        );
    });
}

#[test]
fn sigstop_and_sigkill_of_leaders_controller_and_coordinator_lose_no_acknowledged_record() {
    run_test("proc", |h, rng, faults| {
        // 1. SIGSTOP a partition leader (its sockets stay open; it just stops answering).
        let p = rng.below(PARTITIONS as u64) as i32;
        let target = h.leader_of(p);
        h.fault(
            faults,
            &format!("SIGSTOP broker {target} (leader of p{p})"),
            target,
            Duration::from_secs(7),
            |h| h.signal(target, "STOP"),
        );
        // 2. SIGSTOP the controller.
        let controller = h.controller();
        h.fault(
            faults,
            &format!("SIGSTOP controller {controller}"),
            controller,
            Duration::from_secs(6),
            |h| h.signal(controller, "STOP"),
        );
        // 3. SIGKILL a partition leader; restart it later on the same data.
        let p = rng.below(PARTITIONS as u64) as i32;
        let target = h.leader_of(p);
        h.fault(
            faults,
            &format!("SIGKILL broker {target} (leader of p{p}), restart"),
            target,
            Duration::from_secs(5),
            |h| h.broker(target).kill9(),
        );
        // 4. SIGKILL the group's coordinator; restart it later.
        let coordinator = h.coordinator();
        h.fault(
            faults,
            &format!("SIGKILL group coordinator {coordinator}, restart"),
            coordinator,
            Duration::from_secs(4),
            |h| h.broker(coordinator).kill9(),
        );
    });
}

/// Starts the namespaces, brokers and clients, runs `schedule` (which calls `Harness::fault`
/// for each fault), then heals, converges, reads back and checks.
fn run_test(label: &str, schedule: impl FnOnce(&mut Harness, &mut Rng, &mut Vec<Fault>)) {
    require_root_and_tools();
    let seed = std::env::var("SLUICE_NETNS_SEED")
        .ok()
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("SLUICE_NETNS_SEED={s} is not a number"))
        })
        .unwrap_or_else(|| now_ms() % 1_000_000);
    println!("[{label}] seed {seed} (replay the same targets with SLUICE_NETNS_SEED={seed})");
    let started = Instant::now();
    let mut h = Harness::start(label);
    println!(
        "[{label}] namespaces {}*, subnet {}.0/24, brokers up after {:.1} s",
        h.net.base,
        h.net.subnet_prefix(),
        started.elapsed().as_secs_f64()
    );
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut rng = Rng(seed);
        run(&mut h, label, |h, faults| schedule(h, &mut rng, faults));
    }));
    if let Err(panic) = result {
        h.dump();
        std::panic::resume_unwind(panic);
    }
    println!(
        "[{label}] passed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn run(h: &mut Harness, label: &str, schedule: impl FnOnce(&mut Harness, &mut Vec<Fault>)) {
    h.create_topic();
    h.start_clients();
    let warm = Instant::now();
    h.wait(
        "acknowledged records on every partition",
        CONVERGE_WITHIN,
        |h| {
            let prod = h.producer_history();
            let got: BTreeSet<i32> = prod.acks.iter().map(|a| a.p).collect();
            if got.len() == PARTITIONS as usize {
                Ok(())
            } else {
                Err(format!("acknowledged on partitions {got:?}"))
            }
        },
    );
    h.wait("every member assigned", CONVERGE_WITHIN, |h| {
        let owned = h.current_assignments();
        let all: Vec<i32> = owned.values().flatten().copied().collect();
        let distinct: BTreeSet<i32> = all.iter().copied().collect();
        if owned.values().all(|ps| !ps.is_empty())
            && all.len() == PARTITIONS as usize
            && distinct.len() == PARTITIONS as usize
        {
            Ok(())
        } else {
            Err(format!("assignments {owned:?}"))
        }
    });
    println!(
        "[{label}] producing and the group assigned after {:.1} s",
        warm.elapsed().as_secs_f64()
    );

    let mut faults = Vec::new();
    schedule(h, &mut faults);
    h.heal_all();

    // Wind down: stop producing, let the cluster converge, read everything back, let the group
    // drain, stop it.
    std::fs::write(h.path("stop-producer"), b"").expect("writing the stop file");
    h.finish_client("producer");
    let prod = h.producer_history();
    let status = h.wait(
        "every partition led, in sync, without lag",
        CONVERGE_WITHIN,
        |h| {
            let s = h.status(&[])?;
            if s.converged() {
                Ok(s)
            } else {
                Err(s.summary())
            }
        },
    );
    println!("[{label}] converged: {}", status.summary());
    h.start_client("read", "read", &[]);
    h.finish_client("read");
    let acked: BTreeSet<&str> = prod.acks.iter().map(|a| a.value.as_str()).collect();
    h.wait(
        "the group polling every acknowledged record",
        CONVERGE_WITHIN,
        |h| {
            let members = h.member_histories();
            let polled: BTreeSet<&str> = members
                .iter()
                .flat_map(|(_, ev)| ev.iter())
                .filter_map(|e| match e {
                    MemberEvent::Record { value, .. } => Some(value.as_str()),
                    _ => None,
                })
                .collect();
            let missing = acked.difference(&polled).count();
            if missing == 0 {
                Ok(())
            } else {
                Err(format!("{missing} acknowledged records not polled yet"))
            }
        },
    );
    std::fs::write(h.path("stop-members"), b"").expect("writing the stop file");
    for m in MEMBERS {
        h.finish_client(m);
    }

    let members = h.member_histories();
    let read = ReadBack::parse(&h.path("read.tsv"));
    let anomalies = check_history(PARTITIONS, &prod, &members, &read);
    report_faults(label, &prod, &faults);
    let rebalances: Vec<String> = members
        .iter()
        .map(|(m, ev)| {
            let n = ev
                .iter()
                .filter(|e| matches!(e, MemberEvent::Assigned(..)))
                .count();
            format!("{m}: {n} assignments")
        })
        .collect();
    let polled: usize = members
        .iter()
        .map(|(_, ev)| {
            ev.iter()
                .filter(|e| matches!(e, MemberEvent::Record { .. }))
                .count()
        })
        .sum();
    println!(
        "[{label}] {} sent, {} acknowledged ({} implicitly: no offset), {} failed, {} client \
         errors; final log {} records; {polled} polls by the group ({})",
        prod.sent(),
        prod.acks.len(),
        prod.acks.iter().filter(|a| a.o.is_none()).count(),
        prod.failures.len(),
        prod.errors.len(),
        read.records.len(),
        rebalances.join(", ")
    );
    for e in prod.errors.iter().take(5) {
        println!("[{label}]   producer client error: {e}");
    }
    for m in MEMBERS {
        let lines = complete_lines(&h.path(&format!("{m}.tsv")));
        for l in lines.iter().filter(|l| l.starts_with("E\t")).take(3) {
            println!("[{label}]   {m} client error: {}", &l[2..]);
        }
    }
    assert!(
        anomalies.is_empty(),
        "[{label}] the history has anomalies:\n{}",
        anomalies.report()
    );
    // Progress: acknowledgements during every fault and on every partition after every heal.
    for f in &faults {
        let during = prod
            .acks
            .iter()
            .filter(|a| a.acked >= f.start && a.acked < f.healed)
            .count();
        assert!(
            during > 0,
            "[{label}] no record acknowledged during '{}'",
            f.name
        );
        assert!(
            f.recovered.is_some(),
            "[{label}] no progress on every partition after '{}' healed",
            f.name
        );
    }
}

// ------------------------------------------------------------------------------------------
// Root, tools, commands
// ------------------------------------------------------------------------------------------

const HOW_TO_RUN: &str = "the network-namespace fault tests (tests/it/netns_faults.rs) create \
     network namespaces, veth pairs and iptables rules, so they need root, `ip` (iproute2) and \
     `iptables`: run them as root, e.g. `cargo build -p sluice && sudo -E cargo test -p \
     sluice-tests netns_faults` (CI runs as root; `.ci/setup-clients` installs iptables)";

/// Fails (never skips) unless the process is root and `ip` and `iptables` run.
fn require_root_and_tools() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?")
        .to_string();
    assert!(
        euid == "0",
        "not running as root (effective uid {euid}): {HOW_TO_RUN}"
    );
    for (tool, arg) in [("ip", "-V"), ("iptables", "--version")] {
        let ok = Command::new(tool)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "`{tool} {arg}` does not run: {HOW_TO_RUN}");
    }
}

/// Runs `cmd`, killing it after `within`; the output if it ran to the end.
fn run_bounded(mut cmd: Command, within: Duration) -> Result<Output, String> {
    let what = format!("{cmd:?}");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawning {what}: {e}"))?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(within) {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => {
            // Still running (its waiter has not returned), so the pid is still this child's.
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            let _ = rx.recv_timeout(Duration::from_secs(5));
            Err(format!("{what} did not finish within {within:?}"))
        }
    }
}

/// Runs a short administrative command (`ip`, `iptables`); panics with its output if it fails.
fn must(args: &[&str]) -> String {
    let mut cmd = Command::new(args[0]);
    cmd.args(&args[1..]);
    match run_bounded(cmd, Duration::from_secs(20)) {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => panic!(
            "`{}` failed ({}): {}{}",
            args.join(" "),
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("`{}`: {e}", args.join(" ")),
    }
}

/// As `must`, but only reports a failure (clean-up goes on with the next step).
fn try_run(args: &[&str]) -> Option<String> {
    let mut cmd = Command::new(args[0]);
    cmd.args(&args[1..]);
    match run_bounded(cmd, Duration::from_secs(20)) {
        Ok(o) if o.status.success() => Some(String::from_utf8_lossy(&o.stdout).into_owned()),
        Ok(o) => {
            eprintln!(
                "netns clean-up: `{}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&o.stderr).trim()
            );
            None
        }
        Err(e) => {
            eprintln!("netns clean-up: {e}");
            None
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

/// SplitMix64: the fault targets' only randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

// ------------------------------------------------------------------------------------------
// The network
// ------------------------------------------------------------------------------------------

/// The namespaces of one run: a switch, three brokers, the clients. Dropping it kills whatever
/// still runs inside them and deletes them.
struct Net {
    /// `sluice-nf-<pid>-<n>-`: every namespace name of this run starts with it.
    base: String,
    /// Short and unique per run: the prefix of the switch-side interface names.
    tag: String,
    /// The third octet of 10.213.S.0/24.
    subnet: u8,
    /// Every namespace created so far (deleted on drop), the switch first.
    created: Vec<String>,
}

const ROLES: [&str; 4] = ["b1", "b2", "b3", "cl"];

impl Net {
    fn create() -> Net {
        delete_stale_namespaces();
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = u64::from(std::process::id());
        let mut net = Net {
            base: format!("{PREFIX}{pid}-{n}-"),
            tag: format!("n{pid}x{n}"),
            subnet: ((pid * 7 + n * 13) % 200 + 20) as u8,
            created: Vec::new(),
        };
        let switch = net.ns("sw");
        must(&["ip", "netns", "add", &switch]);
        net.created.push(switch.clone());
        must(&["ip", "-n", &switch, "link", "add", "br0", "type", "bridge"]);
        must(&["ip", "-n", &switch, "link", "set", "br0", "up"]);
        for role in ROLES {
            let ns = net.ns(role);
            must(&["ip", "netns", "add", &ns]);
            net.created.push(ns.clone());
            let port = format!("{}{role}", net.tag);
            assert!(port.len() <= 15, "interface name {port} is too long");
            must(&[
                "ip", "-n", &switch, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ]);
            must(&[
                "ip", "-n", &switch, "link", "set", &port, "master", "br0", "up",
            ]);
            let addr = format!("{}/24", net.ip(role));
            must(&["ip", "-n", &ns, "addr", "add", &addr, "dev", "eth0"]);
            must(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
            must(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        }
        net
    }

    fn ns(&self, role: &str) -> String {
        format!("{}{role}", self.base)
    }

    fn subnet_prefix(&self) -> String {
        format!("10.213.{}", self.subnet)
    }

    fn ip(&self, role: &str) -> Ipv4Addr {
        let host = match role {
            "b1" => 11,
            "b2" => 12,
            "b3" => 13,
            "cl" => 100,
            _ => panic!("no role {role}"),
        };
        Ipv4Addr::new(10, 213, self.subnet, host)
    }

    fn broker_ns(&self, id: i32) -> String {
        self.ns(&format!("b{id}"))
    }

    fn broker_ip(&self, id: i32) -> String {
        self.ip(&format!("b{id}")).to_string()
    }

    /// `ip netns exec <the clients' namespace>` followed by `program`.
    fn in_clients(&self, program: &Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns("cl")]).arg(program);
        cmd
    }

    fn iptables(&self, broker: i32, rule: &[&str]) {
        let ns = self.broker_ns(broker);
        let mut args = vec!["ip", "netns", "exec", &ns, "iptables", "-w"];
        args.extend_from_slice(rule);
        must(&args);
    }

    /// Nothing reaches broker `b` and nothing leaves it (peers and clients alike).
    fn isolate(&self, b: i32) {
        self.iptables(b, &["-A", "INPUT", "-i", "eth0", "-j", "DROP"]);
        self.iptables(b, &["-A", "OUTPUT", "-o", "eth0", "-j", "DROP"]);
    }

    /// No packet between brokers `a` and `b`, either way (dropped on `a`'s side).
    fn cut(&self, a: i32, b: i32) {
        let ip = self.broker_ip(b);
        self.iptables(a, &["-A", "INPUT", "-s", &ip, "-j", "DROP"]);
        self.iptables(a, &["-A", "OUTPUT", "-d", &ip, "-j", "DROP"]);
    }

    /// `from`'s packets to `to` are dropped (at `to`'s INPUT); `to`'s packets to `from` flow.
    fn one_way(&self, from: i32, to: i32) {
        let ip = self.broker_ip(from);
        self.iptables(to, &["-A", "INPUT", "-s", &ip, "-j", "DROP"]);
    }

    /// Each packet in or out of broker `b` is dropped with probability `p`.
    fn loss(&self, b: i32, p: f64) {
        let p = format!("{p}");
        for (chain, dir) in [("INPUT", "-i"), ("OUTPUT", "-o")] {
            self.iptables(
                b,
                &[
                    "-A",
                    chain,
                    dir,
                    "eth0",
                    "-m",
                    "statistic",
                    "--mode",
                    "random",
                    "--probability",
                    &p,
                    "-j",
                    "DROP",
                ],
            );
        }
    }

    /// Removes every rule in every broker's namespace.
    fn heal(&self) {
        for b in 1..=3 {
            self.iptables(b, &["-F"]);
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.created.iter().rev() {
            kill_everything_in(ns);
            try_run(&["ip", "netns", "del", ns]);
        }
    }
}

/// SIGKILLs every process in namespace `ns`.
fn kill_everything_in(ns: &str) {
    if let Some(pids) = try_run(&["ip", "netns", "pids", ns]) {
        for pid in pids.split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }
}

/// Deletes namespaces with this harness's prefix whose owning test process is gone (a run that
/// was killed before its clean-up ran); those of running tests stay.
fn delete_stale_namespaces() {
    let Some(list) = try_run(&["ip", "netns", "list"]) else {
        return;
    };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        eprintln!("netns: deleting {name}, left by pid {pid}, which no longer runs");
        kill_everything_in(name);
        try_run(&["ip", "netns", "del", name]);
    }
}

// ------------------------------------------------------------------------------------------
// The harness: brokers and clients in the namespaces
// ------------------------------------------------------------------------------------------

/// A fault as it happened: wall-clock times (ms), the broker it targeted and the partitions
/// that broker led when it began.
struct Fault {
    name: String,
    target: i32,
    led: Vec<i32>,
    start: u64,
    healed: u64,
    /// Heal -> every partition acknowledged a record sent after the heal.
    recovered: Option<Duration>,
    /// What `sluice cluster status` showed while the fault was on.
    seen: Vec<String>,
}

/// A client process in the clients' namespace; its output goes to `<name>.log`, what it
/// observed to `<name>.tsv`.
struct ClientProc {
    child: CapturedChild,
    log: PathBuf,
}

/// Field order is drop order: clients, then brokers, then the namespaces, then the directory.
struct Harness {
    /// Which test: the prefix of its output lines (tests run side by side).
    label: String,
    clients: BTreeMap<String, ClientProc>,
    /// Index i holds node id i + 1.
    brokers: Vec<BrokerProc>,
    /// Brokers the schedule SIGSTOPped and has not continued yet.
    stopped: BTreeSet<i32>,
    net: Net,
    dir: TempDir,
}

impl Harness {
    fn start(label: &str) -> Harness {
        let dir = TempDir::new(&format!("netns-{label}"));
        let net = Net::create();
        let voters = (1..=3)
            .map(|i| format!("{i}={}:{PEER_PORT}", net.broker_ip(i)))
            .collect::<Vec<_>>()
            .join(",");
        let mut h = Harness {
            label: label.to_string(),
            clients: BTreeMap::new(),
            brokers: Vec::new(),
            stopped: BTreeSet::new(),
            net,
            dir,
        };
        for id in 1..=3 {
            let spec = BrokerSpec {
                port: CLIENT_PORT,
                peer_port: PEER_PORT,
                args: [
                    "--node-id",
                    &id.to_string(),
                    "--voters",
                    &voters,
                    "--group-initial-rebalance-delay-ms",
                    "500",
                    "--group-min-session-timeout-ms",
                    "1000",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect(),
                host: h.net.ip(&format!("b{id}")),
                prefix: ["ip", "netns", "exec", &h.net.broker_ns(id)]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            };
            let broker = BrokerProc::start_with(&h.dir.path().join(format!("node{id}")), spec);
            h.brokers.push(broker);
            h.check_runs_in_its_namespace(id);
        }
        h
    }

    /// `ip netns exec` execs: the child's pid is the broker itself, in the broker's namespace.
    fn check_runs_in_its_namespace(&self, id: i32) {
        let pid = self.brokers[(id - 1) as usize].pid();
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let netns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/net")).ok();
        let own = netns("self");
        let its = netns(&pid.to_string());
        assert_eq!(comm.trim(), "sluice", "pid {pid} is not the broker");
        assert!(
            its.is_some() && its != own,
            "broker {id} (pid {pid}) is not in its own network namespace: {its:?}"
        );
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn broker(&mut self, id: i32) -> &mut BrokerProc {
        &mut self.brokers[(id - 1) as usize]
    }

    fn bootstrap_all(&self) -> String {
        (1..=3)
            .map(|i| format!("{}:{CLIENT_PORT}", self.net.broker_ip(i)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `sluice ARGS --bootstrap <broker id>:9092` in the clients' namespace; stdout.
    fn sluice(&self, via: i32, args: &[&str]) -> Result<String, String> {
        let mut cmd = self.net.in_clients(&sluice_bin());
        let boot = format!("{}:{CLIENT_PORT}", self.net.broker_ip(via));
        cmd.args(args).args(["--bootstrap", &boot]);
        let out = run_bounded(cmd, TOOL_WITHIN)?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "sluice {} via {via}: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Brokers worth asking: running, not stopped, not in `avoid`.
    fn askable(&self, avoid: &[i32]) -> Vec<i32> {
        (1..=3)
            .filter(|id| {
                !avoid.contains(id)
                    && !self.stopped.contains(id)
                    && self.brokers[(id - 1) as usize].is_running()
            })
            .collect()
    }

    /// `sluice cluster status --json` from the first broker (not in `avoid`) that answers.
    fn status(&self, avoid: &[i32]) -> Result<Status, String> {
        let mut errors = Vec::new();
        for via in self.askable(avoid) {
            match self
                .sluice(via, &["cluster", "status", "--json"])
                .and_then(|s| Status::parse(via, &s))
            {
                Ok(s) => return Ok(s),
                Err(e) => errors.push(e),
            }
        }
        Err(format!("no broker answered cluster status: {errors:?}"))
    }

    fn leader_of(&self, p: i32) -> i32 {
        self.wait(&format!("a leader of p{p}"), CONVERGE_WITHIN, |h| {
            let s = h.status(&[])?;
            s.partitions
                .get(&p)
                .and_then(|row| row.leader)
                .ok_or_else(|| s.summary())
        })
    }

    fn controller(&self) -> i32 {
        self.wait("a controller", CONVERGE_WITHIN, |h| {
            let s = h.status(&[])?;
            s.controller.ok_or_else(|| s.summary())
        })
    }

    fn coordinator(&self) -> i32 {
        self.wait("the group's coordinator", CONVERGE_WITHIN, |h| {
            let mut errors = Vec::new();
            for via in h.askable(&[]) {
                let out = match h.sluice(via, &["group", "describe", GROUP, "--json"]) {
                    Ok(o) => o,
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                };
                let json: serde_json::Value = match serde_json::from_str(&out) {
                    Ok(j) => j,
                    Err(e) => {
                        errors.push(format!("not JSON ({e}): {out}"));
                        continue;
                    }
                };
                if let Some(id) = json["coordinator"]["id"].as_i64().filter(|&i| i >= 1) {
                    return Ok(id as i32);
                }
                errors.push(format!("no coordinator in {out}"));
            }
            Err(format!("{errors:?}"))
        })
    }

    fn other_broker(&self, rng: &mut Rng, not: &[i32]) -> i32 {
        let others: Vec<i32> = (1..=3).filter(|b| !not.contains(b)).collect();
        others[rng.below(others.len() as u64) as usize]
    }

    /// SIGSTOP or SIGCONT one broker.
    fn signal(&mut self, id: i32, sig: &str) {
        let pid = self.brokers[(id - 1) as usize].pid().to_string();
        must(&["kill", &format!("-{sig}"), &pid]);
        if sig == "STOP" {
            self.stopped.insert(id);
        } else {
            self.stopped.remove(&id);
        }
    }

    /// Undoes every fault: rules flushed, stopped brokers continued, killed ones restarted.
    fn heal_all(&mut self) {
        self.net.heal();
        for id in std::mem::take(&mut self.stopped) {
            self.signal(id, "CONT");
        }
        for id in 1..=3 {
            if !self.broker(id).is_running() {
                self.broker(id).restart();
            }
        }
    }

    /// Injects a fault with `inject`, keeps it for `hold` (printing what `sluice cluster status`
    /// shows meanwhile), heals everything, and waits until every partition acknowledges a
    /// record sent after the heal.
    fn fault(
        &mut self,
        faults: &mut Vec<Fault>,
        name: &str,
        target: i32,
        hold: Duration,
        inject: impl FnOnce(&mut Harness),
    ) {
        let led = self
            .status(&[])
            .map(|s| s.led_by(target))
            .unwrap_or_default();
        inject(self);
        // From here on the fault is in place (iptables rules added, signal delivered).
        let start = now_ms();
        let began = Instant::now();
        println!("[{}] fault: {name} (it led {led:?})", self.label);
        // What `sluice cluster status` shows meanwhile, asking each reachable broker in turn
        // (their views differ under a partition).
        let mut seen = Vec::new();
        let until = began + hold;
        let mut next_look = began + Duration::from_millis(500);
        let mut turn = 0;
        while Instant::now() < until {
            if Instant::now() >= next_look {
                let asked_at = began.elapsed().as_secs_f64();
                let vias = self.askable(&[target]);
                let line = match vias.get(turn % vias.len().max(1)) {
                    Some(&via) => match self
                        .sluice(via, &["cluster", "status", "--json"])
                        .and_then(|s| Status::parse(via, &s))
                    {
                        Ok(s) => s.summary(),
                        Err(e) => format!("(via {via}) no status: {}", first_line(&e)),
                    },
                    None => "no broker to ask".to_string(),
                };
                turn += 1;
                let line = format!(
                    "+{asked_at:.1}s..+{:.1}s {line}",
                    began.elapsed().as_secs_f64()
                );
                println!("[{}]   status {line}", self.label);
                seen.push(line);
                next_look = Instant::now() + Duration::from_millis(1000);
            }
            let left = until.saturating_duration_since(Instant::now());
            std::thread::park_timeout(POLL_EVERY.min(left));
        }
        self.heal_all();
        let healed = now_ms();
        let heal_at = Instant::now();
        let recovered = self.try_wait(RECOVER_WITHIN, |h| {
            let prod = h.producer_history();
            let after: BTreeSet<i32> = prod
                .acks
                .iter()
                .filter(|a| a.sent >= healed)
                .map(|a| a.p)
                .collect();
            if after.len() == PARTITIONS as usize {
                Ok(())
            } else {
                Err(format!(
                    "since the heal only partitions {after:?} acknowledged"
                ))
            }
        });
        let recovered = recovered.ok().map(|()| heal_at.elapsed());
        // The next fault starts from a converged cluster, so its timings are its own.
        let status = self.wait(
            &format!("convergence after '{name}'"),
            CONVERGE_WITHIN,
            |h| {
                let s = h.status(&[])?;
                if s.converged() {
                    Ok(s)
                } else {
                    Err(s.summary())
                }
            },
        );
        println!(
            "[{}]   healed after {:.1} s; every partition acknowledging again after {}; converged \
             after {:.1} s: {}",
            self.label,
            (healed - start) as f64 / 1000.0,
            recovered.map_or("(not within the limit)".to_string(), |d| format!(
                "{:.2} s",
                d.as_secs_f64()
            )),
            heal_at.elapsed().as_secs_f64(),
            status.summary()
        );
        // A broker that is stopped or cut off from the clients shows in `sluice cluster
        // status` at once, from every other broker: as unreachable, and as offline once the
        // controller fences it. (The tool once waited 30 s on such a broker, so no view came
        // back within the bound, and then showed it live.) A view that missed the bound on a
        // loaded machine is not judged; at least one must come back.
        if name.starts_with("SIGSTOP") || name.starts_with("isolate") {
            let shown = |v: &String| {
                v.contains(&format!("{target}:OFFLINE"))
                    || v.contains(&format!("{target}:UNREACHABLE"))
            };
            let answered: Vec<&String> = seen.iter().filter(|v| !v.contains("no status")).collect();
            let wrong: Vec<&&String> = answered.iter().filter(|v| !shown(v)).collect();
            assert!(
                !answered.is_empty() && wrong.is_empty(),
                "[{}] during '{name}', cluster status did not show broker {target} as unreachable \
                 or offline: {seen:#?}",
                self.label
            );
        }
        faults.push(Fault {
            name: name.to_string(),
            target,
            led,
            start,
            healed,
            recovered,
            seen,
        });
    }

    fn create_topic(&self) {
        let (p, rf) = (PARTITIONS.to_string(), "3");
        self.wait("topic creation", CONVERGE_WITHIN, |h| {
            let args = [
                "topic",
                "create",
                TOPIC,
                "--partitions",
                &p,
                "--replication-factor",
                rf,
            ];
            h.sluice(1, &args).map(|_| ())
        });
        self.wait("every partition led", CONVERGE_WITHIN, |h| {
            let s = h.status(&[])?;
            if (0..PARTITIONS).all(|p| s.partitions.get(&p).is_some_and(|r| r.leader.is_some())) {
                Ok(())
            } else {
                Err(s.summary())
            }
        });
    }

    fn start_clients(&mut self) {
        let stop = self.path("stop-producer").to_string_lossy().into_owned();
        self.start_client(
            "producer",
            "produce",
            &[
                "--partitions",
                &PARTITIONS.to_string(),
                "--rate",
                &RATE.to_string(),
                "--stop",
                &stop,
            ],
        );
        let stop = self.path("stop-members").to_string_lossy().into_owned();
        for m in MEMBERS {
            self.start_client(
                m,
                "consume",
                &[
                    "--group",
                    GROUP,
                    "--client-id",
                    m,
                    "--session-timeout-ms",
                    &SESSION_MS.to_string(),
                    "--stop",
                    &stop,
                ],
            );
        }
    }

    /// `netns_clients.py MODE` in the clients' namespace, writing `<name>.tsv`.
    fn start_client(&mut self, name: &str, mode: &str, args: &[&str]) {
        let mut cmd = self.net.in_clients(&venv_python());
        cmd.arg(repo_root().join("tests/python/netns_clients.py"))
            .arg(mode)
            .args(["--bootstrap", &self.bootstrap_all(), "--topic", TOPIC])
            .args(["--partitions", &PARTITIONS.to_string()])
            .arg("--out")
            .arg(self.path(&format!("{name}.tsv")))
            .args(["--timeout", &CLIENT_TIMEOUT_S.to_string()])
            .args(args)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1");
        let log = self.path(&format!("{name}.log"));
        let child = CapturedChild::spawn(&mut cmd, &log);
        self.clients
            .insert(name.to_string(), ClientProc { child, log });
    }

    /// Waits for a client to exit successfully (bounded); panics with its output otherwise.
    fn finish_client(&mut self, name: &str) {
        let mut c = self.clients.remove(name).expect("a started client");
        match c.child.wait_exit(CONVERGE_WITHIN) {
            Some(s) if s.success() => {}
            status => {
                if status.is_none() {
                    c.child.kill();
                }
                panic!(
                    "client {name} failed ({status:?})\n--- its output ---\n{}",
                    file_tail(&c.log, 60)
                );
            }
        }
    }

    fn producer_history(&self) -> ProducerHistory {
        ProducerHistory::parse(&self.path("producer.tsv"))
    }

    fn member_histories(&self) -> Vec<(String, Vec<MemberEvent>)> {
        MEMBERS
            .iter()
            .map(|m| {
                let path = self.path(&format!("{m}.tsv"));
                (m.to_string(), parse_member(&complete_lines(&path)))
            })
            .collect()
    }

    /// Each member's current assignment as its history tells.
    fn current_assignments(&self) -> BTreeMap<String, Vec<i32>> {
        self.member_histories()
            .into_iter()
            .map(|(m, ev)| {
                let mut owned = Vec::new();
                for e in ev {
                    match e {
                        MemberEvent::Assigned(ps, _) => owned = ps,
                        MemberEvent::Revoked(..) | MemberEvent::Lost(..) => owned.clear(),
                        _ => {}
                    }
                }
                (m, owned)
            })
            .collect()
    }

    /// Polls `check` until it returns `Ok` or `within` passes.
    fn try_wait<T>(
        &self,
        within: Duration,
        mut check: impl FnMut(&Harness) -> Result<T, String>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + within;
        loop {
            let last = match check(self) {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(last);
            }
            std::thread::park_timeout(POLL_EVERY.min(deadline - now));
        }
    }

    /// As `try_wait`, panicking with the last failure when `within` passes.
    fn wait<T>(
        &self,
        what: &str,
        within: Duration,
        check: impl FnMut(&Harness) -> Result<T, String>,
    ) -> T {
        self.try_wait(within, check)
            .unwrap_or_else(|last| panic!("{what}: not within {within:?}; last: {last}"))
    }

    /// Broker and client log tails, for a failure.
    fn dump(&self) {
        for (i, b) in self.brokers.iter().enumerate() {
            eprintln!("--- broker {} log tail ---\n{}", i + 1, b.log_tail());
        }
        for (name, c) in &self.clients {
            eprintln!(
                "--- client {name} output tail ---\n{}",
                file_tail(&c.log, 30)
            );
        }
        eprintln!("histories kept in {}", self.dir.path().display());
    }
}

/// `sluice cluster status --json`, the parts the harness uses.
#[derive(Debug)]
struct Status {
    via: i32,
    controller: Option<i32>,
    /// (id, live)
    brokers: Vec<(i32, bool)>,
    /// Brokers the metadata lists as live but that did not answer the tool.
    unreachable: Vec<i32>,
    partitions: BTreeMap<i32, PartitionRow>,
}

#[derive(Debug)]
struct PartitionRow {
    leader: Option<i32>,
    epoch: i64,
    in_sync: Vec<i32>,
    offline: Vec<i32>,
    /// Replica -> lag behind the high watermark as the leader reports it (-1: unknown).
    lag: BTreeMap<String, i64>,
    status: String,
}

impl Status {
    fn parse(via: i32, text: &str) -> Result<Status, String> {
        let j: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON ({e}): {text}"))?;
        let ints = |v: &serde_json::Value| -> Vec<i32> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_i64())
                        .map(|x| x as i32)
                        .collect()
                })
                .unwrap_or_default()
        };
        let brokers = j["brokers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|b| (b["id"].as_i64().unwrap_or(-1) as i32, b["live"] == true))
                    .collect()
            })
            .unwrap_or_default();
        let unreachable = j["brokers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|b| b["reachable"] == false)
                    .map(|b| b["id"].as_i64().unwrap_or(-1) as i32)
                    .collect()
            })
            .unwrap_or_default();
        let mut partitions = BTreeMap::new();
        for p in j["partitions"].as_array().map_or(&[][..], Vec::as_slice) {
            if p["topic"] != TOPIC {
                continue;
            }
            let lag = p["lag"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.as_i64().unwrap_or(-1)))
                        .collect()
                })
                .unwrap_or_default();
            partitions.insert(
                p["partition"].as_i64().unwrap_or(-1) as i32,
                PartitionRow {
                    leader: p["leader"].as_i64().map(|l| l as i32),
                    epoch: p["leader_epoch"].as_i64().unwrap_or(-1),
                    in_sync: ints(&p["in_sync"]),
                    offline: ints(&p["offline"]),
                    lag,
                    status: p["status"].as_str().unwrap_or("?").to_string(),
                },
            );
        }
        Ok(Status {
            via,
            controller: j["controller"].as_i64().map(|c| c as i32),
            brokers,
            unreachable,
            partitions,
        })
    }

    fn led_by(&self, broker: i32) -> Vec<i32> {
        self.partitions
            .iter()
            .filter(|(_, r)| r.leader == Some(broker))
            .map(|(&p, _)| p)
            .collect()
    }

    /// Three live brokers, every partition led, every replica in sync with no lag.
    fn converged(&self) -> bool {
        self.brokers.len() == 3
            && self.brokers.iter().all(|b| b.1)
            && self.unreachable.is_empty()
            && self.partitions.len() == PARTITIONS as usize
            && self.partitions.values().all(|r| {
                r.leader.is_some()
                    && r.status == "ok"
                    && r.in_sync.len() == 3
                    && r.offline.is_empty()
                    && r.lag.len() == 3
                    && r.lag.values().all(|&l| l == 0)
            })
    }

    fn summary(&self) -> String {
        let brokers: Vec<String> = self
            .brokers
            .iter()
            .map(|(id, live)| {
                let state = match (*live, self.unreachable.contains(id)) {
                    (false, _) => "OFFLINE",
                    (true, true) => "UNREACHABLE",
                    (true, false) => "live",
                };
                format!("{id}:{state}")
            })
            .collect();
        let parts: Vec<String> = self
            .partitions
            .iter()
            .map(|(p, r)| {
                let lag: Vec<String> = r.lag.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!(
                    "p{p} leader {} e{} isr {:?} lag [{}] {}",
                    r.leader.map_or("-".to_string(), |l| l.to_string()),
                    r.epoch,
                    r.in_sync,
                    lag.join(","),
                    r.status
                )
            })
            .collect();
        format!(
            "(via {}) controller {}, brokers [{}]; {}",
            self.via,
            self.controller.map_or("-".to_string(), |c| c.to_string()),
            brokers.join(" "),
            parts.join("; ")
        )
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// Prints, per fault, the time to the first acknowledgement of a record sent after it began on
/// a partition its target led, the acknowledgements during it, and the recovery after the heal.
fn report_faults(label: &str, prod: &ProducerHistory, faults: &[Fault]) {
    println!("[{label}] fault timings");
    for f in faults {
        let first = prod
            .acks
            .iter()
            .filter(|a| f.led.contains(&a.p) && a.sent >= f.start)
            .map(|a| a.acked)
            .min();
        let during = prod
            .acks
            .iter()
            .filter(|a| a.acked >= f.start && a.acked < f.healed)
            .count();
        let first = match first {
            _ if f.led.is_empty() => "it led no partition".to_string(),
            Some(t) if t < f.healed => format!(
                "first ack on a partition it led {:.2} s after the fault began",
                (t - f.start) as f64 / 1000.0
            ),
            Some(t) => format!(
                "first ack on a partition it led {:.2} s after the fault began (after the heal)",
                (t - f.start) as f64 / 1000.0
            ),
            None => "no ack on a partition it led".to_string(),
        };
        // Per partition, the longest time without an acknowledgement from the fault's start
        // to its heal (a partition that made no progress at all shows the whole window).
        let gaps: Vec<String> = (0..PARTITIONS)
            .map(|p| {
                let mut times: Vec<u64> = prod
                    .acks
                    .iter()
                    .filter(|a| a.p == p && a.acked >= f.start && a.acked < f.healed)
                    .map(|a| a.acked)
                    .collect();
                times.sort_unstable();
                let mut prev = f.start;
                let mut longest = 0;
                for t in times.into_iter().chain([f.healed]) {
                    longest = longest.max(t - prev);
                    prev = t;
                }
                format!("p{p} {:.1}", longest as f64 / 1000.0)
            })
            .collect();
        println!(
            "[{label}]   {} [target {}, led {:?}]: {during} acks during it; {first}; longest \
             stretch without an ack (s): {}; every partition acknowledging {} after the heal",
            f.name,
            f.target,
            f.led,
            gaps.join(", "),
            f.recovered
                .map_or("-".to_string(), |d| format!("{:.2} s", d.as_secs_f64()))
        );
        let offline: BTreeSet<i32> = (1..=3)
            .filter(|b| f.seen.iter().any(|s| s.contains(&format!("{b}:OFFLINE"))))
            .collect();
        let leaderless = f.seen.iter().filter(|s| s.contains("no leader")).count();
        let unanswered = f.seen.iter().filter(|s| s.contains("no status")).count();
        println!(
            "[{label}]     cluster status while it was on: brokers shown offline {offline:?}; {leaderless} \
             of {} views had a partition without a leader; {unanswered} asks unanswered within \
             {TOOL_WITHIN:?}",
            f.seen.len()
        );
    }
}

// ------------------------------------------------------------------------------------------
// Histories
// ------------------------------------------------------------------------------------------

/// The lines of a file that end in a newline (the last may still be being written).
fn complete_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |i| &text[..=i]);
    complete.lines().map(str::to_string).collect()
}

#[derive(Debug, Clone)]
struct Ack {
    p: i32,
    /// None when librdkafka acknowledged the record implicitly (see netns_clients.py).
    o: Option<i64>,
    value: String,
    sent: u64,
    acked: u64,
}

#[derive(Debug, Default, Clone)]
struct ProducerHistory {
    acks: Vec<Ack>,
    /// (value, error)
    failures: Vec<(String, String)>,
    errors: Vec<String>,
    fatal: Vec<String>,
    /// (sent, acknowledged, failed, unresolved), once the producer finished.
    totals: Option<[u64; 4]>,
}

impl ProducerHistory {
    fn parse(path: &Path) -> ProducerHistory {
        let mut h = ProducerHistory::default();
        for line in complete_lines(path) {
            let f: Vec<&str> = line.split('\t').collect();
            let num = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok());
            match (f[0], f.len()) {
                ("A", 6) => h.acks.push(Ack {
                    p: f[1].parse().unwrap_or(-1),
                    o: f[2].parse().ok().filter(|&o: &i64| o >= 0),
                    value: f[3].to_string(),
                    sent: num(4).unwrap_or(0),
                    acked: num(5).unwrap_or(0),
                }),
                ("F", _) => h.failures.push((
                    f.get(1).unwrap_or(&"").to_string(),
                    f.get(2).unwrap_or(&"").to_string(),
                )),
                ("E", _) => h.errors.push(f[1..].join(" ")),
                ("X", _) => h.fatal.push(f[1..].join(" ")),
                ("N", 5) => {
                    h.totals = Some([
                        num(1).unwrap_or(0),
                        num(2).unwrap_or(0),
                        num(3).unwrap_or(0),
                        num(4).unwrap_or(0),
                    ])
                }
                _ => {}
            }
        }
        h
    }

    /// How many records the producer sent (its total, else one past the highest value seen).
    fn sent(&self) -> u64 {
        self.totals.map(|t| t[0]).unwrap_or_else(|| {
            self.acks
                .iter()
                .filter_map(|a| a.value.parse::<u64>().ok())
                .max()
                .map_or(0, |m| m + 1)
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum MemberEvent {
    Assigned(Vec<i32>, u64),
    Revoked(Vec<i32>, u64),
    Lost(Vec<i32>, u64),
    Record {
        p: i32,
        o: i64,
        value: String,
        at: u64,
    },
    Committed(i32, i64),
}

fn parse_member(lines: &[String]) -> Vec<MemberEvent> {
    let parts = |s: &str| -> Vec<i32> { s.split(',').filter_map(|p| p.parse().ok()).collect() };
    lines
        .iter()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let at = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
            Some(match (f[0], f.len()) {
                ("A", 3) => MemberEvent::Assigned(parts(f[1]), at(2)),
                ("V", 3) => MemberEvent::Revoked(parts(f[1]), at(2)),
                ("L", 3) => MemberEvent::Lost(parts(f[1]), at(2)),
                ("R", 5) => MemberEvent::Record {
                    p: f[1].parse().ok()?,
                    o: f[2].parse().ok()?,
                    value: f[3].to_string(),
                    at: at(4),
                },
                ("C", 4) => MemberEvent::Committed(f[1].parse().ok()?, f[2].parse().ok()?),
                _ => return None,
            })
        })
        .collect()
}

/// The topic as the final read saw it.
#[derive(Debug, Default, Clone)]
struct ReadBack {
    /// Partition -> high watermark when the read began.
    hw: BTreeMap<i32, i64>,
    /// (partition, offset, value) in the order read.
    records: Vec<(i32, i64, String)>,
}

impl ReadBack {
    fn parse(path: &Path) -> ReadBack {
        let mut r = ReadBack::default();
        for line in complete_lines(path) {
            let f: Vec<&str> = line.split('\t').collect();
            match (f[0], f.len()) {
                ("H", 3) => {
                    if let (Ok(p), Ok(hw)) = (f[1].parse(), f[2].parse()) {
                        r.hw.insert(p, hw);
                    }
                }
                ("R", 5) => {
                    if let (Ok(p), Ok(o)) = (f[1].parse(), f[2].parse()) {
                        r.records.push((p, o, f[3].to_string()));
                    }
                }
                _ => {}
            }
        }
        r
    }
}

// ------------------------------------------------------------------------------------------
// The checker
// ------------------------------------------------------------------------------------------

/// Anomalies by class: a count and the first few examples.
#[derive(Default, Debug)]
struct Anomalies(BTreeMap<&'static str, (usize, Vec<String>)>);

impl Anomalies {
    fn add(&mut self, class: &'static str, example: String) {
        let e = self.0.entry(class).or_default();
        e.0 += 1;
        if e.1.len() < 5 {
            e.1.push(example);
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn has(&self, class: &str) -> bool {
        self.0.contains_key(class)
    }

    fn report(&self) -> String {
        self.0
            .iter()
            .map(|(class, (n, examples))| {
                format!("  {class}: {n}, e.g.\n      {}", examples.join("\n      "))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Checks a run's history (see the module docs for the classes). Values are the producer's
/// sequence numbers; value v was sent to partition v % `partitions`, after every smaller value.
fn check_history(
    partitions: i32,
    prod: &ProducerHistory,
    members: &[(String, Vec<MemberEvent>)],
    read: &ReadBack,
) -> Anomalies {
    let mut found = Anomalies::default();
    let sent = prod.sent();
    let seq_of = |v: &str| v.parse::<u64>().ok().filter(|&s| s < sent);

    for (value, error) in &prod.failures {
        found.add("producer-failure", format!("value {value}: {error}"));
    }
    for e in &prod.fatal {
        found.add("producer-fatal", e.clone());
    }

    // The final log, and whether the read covered 0..hw of every partition.
    let mut log: BTreeMap<(i32, i64), String> = BTreeMap::new();
    for (p, o, v) in &read.records {
        if let Some(prev) = log.insert((*p, *o), v.clone()) {
            if &prev != v {
                found.add(
                    "inconsistent-offset",
                    format!("read-back p{p}@{o}: {prev} and {v}"),
                );
            }
        }
    }
    for p in 0..partitions {
        let hw = read.hw.get(&p).copied().unwrap_or(-1);
        if hw < 0 {
            found.add(
                "log-hole",
                format!("p{p}: no high watermark in the read-back"),
            );
            continue;
        }
        let present = log.range((p, 0)..(p, hw)).count() as i64;
        if present != hw {
            let first = (0..hw).find(|o| !log.contains_key(&(p, *o)));
            found.add(
                "log-hole",
                format!("p{p}: {present} of {hw} offsets read, first missing {first:?}"),
            );
        }
    }

    // Every value in the log: sent by this producer, in its partition, once, in send order.
    let mut at: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
    let mut last_seq: BTreeMap<i32, (u64, i64)> = BTreeMap::new();
    for ((p, o), v) in &log {
        at.entry(v.as_str()).or_default().push((*p, *o));
        let Some(seq) = seq_of(v) else {
            found.add("foreign-value", format!("p{p}@{o}: {v:?} was never sent"));
            continue;
        };
        if seq % partitions as u64 != *p as u64 {
            found.add(
                "wrong-partition",
                format!(
                    "p{p}@{o}: value {v} was sent to p{}",
                    seq % partitions as u64
                ),
            );
        }
        if let Some((prev, prev_o)) = last_seq.insert(*p, (seq, *o)) {
            if seq <= prev {
                found.add(
                    "reordered",
                    format!("p{p}: {prev} at {prev_o}, then {seq} at {o}"),
                );
            }
        }
    }
    for (v, places) in &at {
        if places.len() > 1 {
            found.add("duplicated", format!("value {v} at {places:?}"));
        }
    }

    // Acknowledged records: in the log where the ack said (anywhere in their partition when
    // the offset is unknown), acknowledged once, acknowledged offsets in send order.
    let mut observed: BTreeMap<(i32, i64), BTreeSet<String>> = BTreeMap::new();
    let mut acked_values: BTreeMap<&str, (i32, Option<i64>)> = BTreeMap::new();
    let mut acks_by_partition: BTreeMap<i32, Vec<(u64, i64)>> = BTreeMap::new();
    for a in &prod.acks {
        if let Some(o) = a.o {
            observed
                .entry((a.p, o))
                .or_default()
                .insert(a.value.clone());
        }
        if let Some(prev) = acked_values.insert(a.value.as_str(), (a.p, a.o)) {
            found.add(
                "duplicated",
                format!(
                    "value {} acknowledged twice: {prev:?} and {:?}",
                    a.value,
                    (a.p, a.o)
                ),
            );
        }
        match seq_of(&a.value) {
            Some(seq) => {
                if seq % partitions as u64 != a.p as u64 {
                    found.add(
                        "wrong-partition",
                        format!("value {} acknowledged in p{}", a.value, a.p),
                    );
                }
                if let Some(o) = a.o {
                    acks_by_partition.entry(a.p).or_default().push((seq, o));
                }
            }
            None => found.add("foreign-value", format!("acknowledged {:?}", a.value)),
        }
        let places = at.get(a.value.as_str());
        match a.o {
            Some(o) => match log.get(&(a.p, o)) {
                Some(v) if *v == a.value => {}
                other => found.add(
                    "lost",
                    format!(
                        "value {} acknowledged at p{}@{o}; the log has {other:?} there and the \
                         value at {places:?}",
                        a.value, a.p
                    ),
                ),
            },
            None => {
                if !places.is_some_and(|ps| ps.iter().any(|&(p, _)| p == a.p)) {
                    found.add(
                        "lost",
                        format!(
                            "value {} acknowledged (offset unknown) in p{}; the log has it at \
                             {places:?}",
                            a.value, a.p
                        ),
                    );
                }
            }
        }
    }
    for (p, acks) in &mut acks_by_partition {
        acks.sort_unstable();
        for w in acks.windows(2) {
            if w[1].1 <= w[0].1 {
                found.add(
                    "reordered",
                    format!(
                        "p{p}: value {} acknowledged at {}, later value {} at {}",
                        w[0].0, w[0].1, w[1].0, w[1].1
                    ),
                );
            }
        }
    }

    // What the members polled: consistent with the log, monotonic and gap-free within an
    // uninterrupted ownership, and together covering every acknowledged record.
    let mut polled_values: BTreeSet<&str> = BTreeSet::new();
    for (m, events) in members {
        // Partition -> the last offset polled in the current ownership (None: none yet).
        let mut owned: BTreeMap<i32, Option<i64>> = BTreeMap::new();
        for e in events {
            match e {
                MemberEvent::Assigned(ps, _) => {
                    owned = ps.iter().map(|&p| (p, None)).collect();
                }
                MemberEvent::Revoked(ps, _) | MemberEvent::Lost(ps, _) => {
                    for p in ps {
                        owned.remove(p);
                    }
                }
                MemberEvent::Committed(..) => {}
                MemberEvent::Record { p, o, value, at } => {
                    polled_values.insert(value.as_str());
                    observed.entry((*p, *o)).or_default().insert(value.clone());
                    match log.get(&(*p, *o)) {
                        Some(v) if v == value => {}
                        Some(_) => {} // an inconsistent offset, reported below
                        None => found.add(
                            "read-then-gone",
                            format!("{m} polled {value} at p{p}@{o} (at {at}); not in the log"),
                        ),
                    }
                    match owned.get_mut(p) {
                        None => found.add(
                            "poll-unowned",
                            format!("{m} polled p{p}@{o} (at {at}) without owning p{p}"),
                        ),
                        Some(last) => {
                            if let Some(prev) = *last {
                                if *o <= prev {
                                    found.add(
                                        "nonmonotonic-poll",
                                        format!("{m} polled p{p}@{prev}, then p{p}@{o} (at {at})"),
                                    );
                                } else if *o > prev + 1 {
                                    found.add(
                                        "poll-skip",
                                        format!(
                                            "{m} polled p{p}@{prev}, then p{p}@{o} (at {at}), \
                                             skipping {}",
                                            o - prev - 1
                                        ),
                                    );
                                }
                            }
                            *last = Some(*o);
                        }
                    }
                }
            }
        }
    }
    for ((p, o), v) in &log {
        observed.entry((*p, *o)).or_default().insert(v.clone());
    }
    for ((p, o), values) in &observed {
        if values.len() > 1 {
            found.add(
                "inconsistent-offset",
                format!("p{p}@{o} seen as {values:?}"),
            );
        }
    }
    for a in &prod.acks {
        if !polled_values.contains(a.value.as_str()) {
            found.add(
                "unconsumed",
                format!(
                    "value {} (acknowledged in p{} at {:?}) never polled by the group",
                    a.value, a.p, a.o
                ),
            );
        }
    }
    found
}

/// A planted history per anomaly class: the clean one passes, each mutation is caught.
#[test]
fn checker_catches_each_anomaly_class() {
    // Two partitions, values 0..8: even ones in p0, odd ones in p1, all acknowledged.
    let clean_prod = || ProducerHistory {
        acks: (0..8)
            .map(|v: u64| Ack {
                p: (v % 2) as i32,
                o: Some((v / 2) as i64),
                value: v.to_string(),
                sent: 1000 + v,
                acked: 2000 + v,
            })
            .collect(),
        totals: Some([8, 8, 0, 0]),
        ..ProducerHistory::default()
    };
    let clean_read = || ReadBack {
        hw: BTreeMap::from([(0, 4), (1, 4)]),
        records: (0..8)
            .map(|v: u64| ((v % 2) as i32, (v / 2) as i64, v.to_string()))
            .collect(),
    };
    let rec = |p: i32, o: i64| MemberEvent::Record {
        p,
        o,
        value: (o * 2 + i64::from(p)).to_string(),
        at: 0,
    };
    let clean_members = || {
        vec![
            (
                "m1".to_string(),
                vec![
                    MemberEvent::Assigned(vec![0], 0),
                    rec(0, 0),
                    rec(0, 1),
                    MemberEvent::Revoked(vec![0], 0),
                    // After a rebalance a member may start again from an earlier commit.
                    MemberEvent::Assigned(vec![0], 0),
                    rec(0, 1),
                    rec(0, 2),
                    rec(0, 3),
                    MemberEvent::Committed(0, 4),
                ],
            ),
            (
                "m2".to_string(),
                vec![
                    MemberEvent::Assigned(vec![1], 0),
                    rec(1, 0),
                    rec(1, 1),
                    rec(1, 2),
                    rec(1, 3),
                ],
            ),
        ]
    };
    let check = |prod: &ProducerHistory,
                 members: &[(String, Vec<MemberEvent>)],
                 read: &ReadBack| { check_history(2, prod, members, read) };
    let clean = check(&clean_prod(), &clean_members(), &clean_read());
    assert!(clean.is_empty(), "{}", clean.report());
    // An acknowledgement without an offset (implicit) is fine if the value is in its partition.
    let mut implicit = clean_prod();
    implicit.acks[3].o = None;
    let found = check(&implicit, &clean_members(), &clean_read());
    assert!(found.is_empty(), "{}", found.report());

    let expect = |class: &str, found: Anomalies| {
        assert!(found.has(class), "{class} not caught: {}", found.report());
    };
    // lost: an acknowledged record missing from the log (here: the read-back drops p1@2).
    let mut read = clean_read();
    read.records.retain(|r| (r.0, r.1) != (1, 2));
    read.hw.insert(1, 4);
    expect("lost", check(&clean_prod(), &clean_members(), &read));
    // lost, at another offset than acknowledged.
    let mut prod = clean_prod();
    prod.acks[2].o = Some(3);
    expect("lost", check(&prod, &clean_members(), &clean_read()));
    // lost, with an unknown offset: the value is nowhere in its partition.
    let mut read = clean_read();
    read.records.retain(|r| (r.0, r.1) != (1, 1));
    expect("lost", check(&implicit, &clean_members(), &read));
    // duplicated: a value at two offsets.
    let mut read = clean_read();
    read.records.push((0, 4, "6".into()));
    read.hw.insert(0, 5);
    expect("duplicated", check(&clean_prod(), &clean_members(), &read));
    // reordered: two values swapped in the log (and in the acks).
    let mut read = clean_read();
    read.records[0].2 = "2".into();
    read.records[2].2 = "0".into();
    let mut prod = clean_prod();
    prod.acks[0].o = Some(1);
    prod.acks[2].o = Some(0);
    expect("reordered", check(&prod, &clean_members(), &read));
    // inconsistent-offset: a member polled another value at an offset.
    let mut members = clean_members();
    members[1].1[1] = MemberEvent::Record {
        p: 1,
        o: 0,
        value: "3".into(),
        at: 0,
    };
    expect(
        "inconsistent-offset",
        check(&clean_prod(), &members, &clean_read()),
    );
    // read-then-gone: a member polled beyond the final log.
    let mut members = clean_members();
    members[1].1.push(rec(1, 4));
    expect(
        "read-then-gone",
        check(&clean_prod(), &members, &clean_read()),
    );
    // nonmonotonic-poll and poll-skip within one ownership.
    let mut members = clean_members();
    members[1].1.push(rec(1, 2));
    expect(
        "nonmonotonic-poll",
        check(&clean_prod(), &members, &clean_read()),
    );
    let mut members = clean_members();
    members[1].1.remove(3);
    expect("poll-skip", check(&clean_prod(), &members, &clean_read()));
    // poll-unowned: a record after the partition was revoked.
    let mut members = clean_members();
    members[0].1.insert(4, rec(0, 1));
    expect(
        "poll-unowned",
        check(&clean_prod(), &members, &clean_read()),
    );
    // unconsumed: an acknowledged record nobody polled (and no skip: the member stopped).
    let mut members = clean_members();
    members[1].1.pop();
    expect("unconsumed", check(&clean_prod(), &members, &clean_read()));
    // log-hole, foreign-value, wrong-partition, producer failures.
    let mut read = clean_read();
    read.hw.insert(1, 5);
    expect("log-hole", check(&clean_prod(), &clean_members(), &read));
    let mut read = clean_read();
    read.records.push((0, 4, "junk".into()));
    read.hw.insert(0, 5);
    expect(
        "foreign-value",
        check(&clean_prod(), &clean_members(), &read),
    );
    let mut prod = clean_prod();
    prod.acks[1].p = 0;
    expect(
        "wrong-partition",
        check(&prod, &clean_members(), &clean_read()),
    );
    let mut prod = clean_prod();
    prod.failures
        .push(("8".into(), "Local: Message timed out".into()));
    prod.fatal.push("fatal idempotent producer error".into());
    let found = check(&prod, &clean_members(), &clean_read());
    expect("producer-failure", found);
    expect(
        "producer-fatal",
        check(&prod, &clean_members(), &clean_read()),
    );
}
