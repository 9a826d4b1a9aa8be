//! `sluice-sim`: list, run and sweep the named scenarios, Raft-level and Kafka-level
//! (`kafka-*`) alike.
//!
//! Exit codes: 0 pass, 1 safety violation (or nondeterminism), 2 liveness failure or gate,
//! 3 usage error.

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use sluice_core::raft::Bug;
use sluice_scenarios::kafka::{self, KafkaScenario};
use sluice_scenarios::{all, find, Scenario};
use sluice_sim::kafka::{KafkaBug, KafkaReport, KafkaSim};
use sluice_sim::seeds::parse_seed;
use sluice_sim::{Report, Simulation, Verdict};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(
    name = "sluice-sim",
    about = "Deterministic fault-injection simulator for Sluice",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the scenarios and why each exists.
    List,
    /// Run one scenario with one seed; prints the banner, the verdict and, on failure, the trace.
    Run {
        #[arg(long)]
        scenario: String,
        /// A decimal u64, or a 40-hex git commit id.
        #[arg(long, value_parser = parse_seed)]
        seed: u64,
        /// Run twice and compare trace hashes.
        #[arg(long)]
        check_determinism: bool,
        /// Plant a known bug (for demonstrating the checkers). Raft-level: vote-twice,
        /// ack-before-sync, skip-truncation, commit-previous-term, commit-regress,
        /// append-at-end, fail-pending-on-step-down, forget-vote-on-restart. Kafka-level:
        /// read-above-hw, ack-all-at-append, serve-before-term-commit, forget-producer-state,
        /// consumer-skips-offset, consumer-rewinds, producer-reuses-sequence,
        /// not-leader-is-definite, disk-forgets-hard-state, group-commit-any-generation,
        /// group-join-not-written, group-commit-before-replicated, group-no-session-expiry,
        /// group-fetch-offset-off-by-one, group-rebalance-not-written.
        #[arg(long, value_parser = parse_bug)]
        bug: Option<Planted>,
        /// Print the last N trace records on failure.
        #[arg(long, default_value_t = 40)]
        trace_lines: usize,
    },
    /// Run scenarios over a range of seeds.
    Sweep {
        /// A scenario name, or `all`.
        #[arg(long, default_value = "all")]
        scenario: String,
        /// A half-open range `A..B`.
        #[arg(long, value_parser = parse_range)]
        seeds: (u64, u64),
        /// Parallel runs (each run is single-threaded).
        #[arg(long, default_value_t = default_jobs())]
        jobs: usize,
        /// Plant a bug; only the scenarios of its level (Raft or Kafka) run.
        #[arg(long, value_parser = parse_bug)]
        bug: Option<Planted>,
    },
}

fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("expected A..B, got {s:?}"))?;
    let a = parse_seed(a)?;
    let b = parse_seed(b)?;
    if a >= b {
        return Err(format!("empty seed range {a}..{b}"));
    }
    Ok((a, b))
}

/// A planted bug: in Raft (Raft-level scenarios) or in a broker, client or disk (Kafka-level).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Planted {
    Raft(Bug),
    Kafka(KafkaBug),
}

const RAFT_BUGS: [(&str, Bug); 8] = [
    ("vote-twice", Bug::VoteTwice),
    ("ack-before-sync", Bug::AckBeforeSync),
    ("skip-truncation", Bug::SkipTruncation),
    ("commit-previous-term", Bug::CommitPreviousTerm),
    ("commit-regress", Bug::CommitRegress),
    ("append-at-end", Bug::AppendAtEnd),
    ("fail-pending-on-step-down", Bug::FailPendingOnStepDown),
    ("forget-vote-on-restart", Bug::ForgetVoteOnRestart),
];

fn parse_bug(s: &str) -> Result<Planted, String> {
    if let Some((_, b)) = RAFT_BUGS.iter().find(|(n, _)| *n == s) {
        return Ok(Planted::Raft(*b));
    }
    KafkaBug::parse(s)
        .map(Planted::Kafka)
        .ok_or_else(|| format!("unknown bug {s:?}"))
}

fn bug_flag(bug: Option<Planted>) -> String {
    let name = match bug {
        None => return String::new(),
        Some(Planted::Raft(b)) => RAFT_BUGS
            .iter()
            .find(|(_, x)| *x == b)
            .map_or("?", |(n, _)| *n),
        Some(Planted::Kafka(b)) => b.name(),
    };
    format!(" --bug {name}")
}

fn replay_line(scenario: &str, seed: u64, bug: Option<Planted>) -> String {
    format!(
        "cargo run --release -p sluice-scenarios --bin sluice-sim -- run --scenario {scenario} --seed {seed}{}",
        bug_flag(bug)
    )
}

/// A scenario of either level.
#[derive(Clone, Copy, Debug)]
enum Pick {
    Raft(&'static Scenario),
    Kafka(&'static KafkaScenario),
}

impl Pick {
    fn name(self) -> &'static str {
        match self {
            Pick::Raft(s) => s.name,
            Pick::Kafka(s) => s.name,
        }
    }

    fn why(self) -> &'static str {
        match self {
            Pick::Raft(s) => s.why,
            Pick::Kafka(s) => s.why,
        }
    }

    /// Whether `bug` can be planted in this scenario's level.
    fn takes(self, bug: Option<Planted>) -> bool {
        matches!(
            (self, bug),
            (_, None)
                | (Pick::Raft(_), Some(Planted::Raft(_)))
                | (Pick::Kafka(_), Some(Planted::Kafka(_)))
        )
    }
}

fn every_scenario() -> Vec<Pick> {
    all()
        .iter()
        .map(Pick::Raft)
        .chain(kafka::all().iter().map(Pick::Kafka))
        .collect()
}

fn find_any(name: &str) -> Option<Pick> {
    find(name)
        .map(Pick::Raft)
        .or_else(|| kafka::find(name).map(Pick::Kafka))
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 3 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::List => {
            for s in every_scenario() {
                println!("{}\n    {}\n", s.name(), s.why());
            }
            ExitCode::SUCCESS
        }
        Command::Run {
            scenario,
            seed,
            check_determinism,
            bug,
            trace_lines,
        } => {
            let Some(s) = find_any(&scenario) else {
                eprintln!("unknown scenario {scenario:?}; `sluice-sim list` shows them");
                return ExitCode::from(3);
            };
            if !s.takes(bug) {
                eprintln!(
                    "{}{} belongs to the other level of scenarios",
                    s.name(),
                    bug_flag(bug)
                );
                return ExitCode::from(3);
            }
            run_one(s, seed, bug, check_determinism, trace_lines)
        }
        Command::Sweep {
            scenario,
            seeds,
            jobs,
            bug,
        } => {
            let scenarios: Vec<Pick> = if scenario == "all" {
                every_scenario()
                    .into_iter()
                    .filter(|s| s.takes(bug))
                    .collect()
            } else {
                match find_any(&scenario) {
                    Some(s) if s.takes(bug) => vec![s],
                    Some(s) => {
                        eprintln!(
                            "{}{} belongs to the other level of scenarios",
                            s.name(),
                            bug_flag(bug)
                        );
                        return ExitCode::from(3);
                    }
                    None => {
                        eprintln!("unknown scenario {scenario:?}; `sluice-sim list` shows them");
                        return ExitCode::from(3);
                    }
                }
            };
            sweep(&scenarios, seeds, jobs.max(1), bug)
        }
    }
}

/// One run's outcome, whatever its level.
enum Outcome {
    Raft(Report),
    Kafka(KafkaReport),
}

impl Outcome {
    fn verdict(&self) -> &Verdict {
        match self {
            Outcome::Raft(r) => &r.verdict,
            Outcome::Kafka(r) => &r.verdict,
        }
    }

    fn trace_hash(&self) -> u64 {
        match self {
            Outcome::Raft(r) => r.trace_hash,
            Outcome::Kafka(r) => r.trace_hash,
        }
    }

    fn trace_tail(&self) -> &[String] {
        match self {
            Outcome::Raft(r) => &r.trace_tail,
            Outcome::Kafka(r) => &r.trace_tail,
        }
    }

    /// (events, acknowledged operations, simulated ns).
    fn totals(&self) -> (u64, u64, u64) {
        match self {
            Outcome::Raft(r) => (r.stats.events, r.stats.acked, r.stats.sim_ns),
            Outcome::Kafka(r) => (
                r.stats.events,
                r.stats.acked_all + r.stats.acked_one,
                r.stats.sim_ns,
            ),
        }
    }

    fn same_run(&self, other: &Outcome) -> bool {
        match (self, other) {
            (Outcome::Raft(a), Outcome::Raft(b)) => {
                a.trace_hash == b.trace_hash && a.stats == b.stats
            }
            (Outcome::Kafka(a), Outcome::Kafka(b)) => {
                a.trace_hash == b.trace_hash && a.stats == b.stats
            }
            _ => false,
        }
    }
}

fn banner(s: Pick, seed: u64, bug: Option<Planted>) -> String {
    match (s, bug) {
        (Pick::Raft(s), bug) => {
            let mut cfg = s.config(seed);
            if let Some(Planted::Raft(b)) = bug {
                cfg.raft.bug = Some(b);
            }
            cfg.banner()
        }
        (Pick::Kafka(s), bug) => {
            let mut cfg = s.config(seed);
            if let Some(Planted::Kafka(b)) = bug {
                cfg.bug = Some(b);
            }
            cfg.banner()
        }
    }
}

fn execute(s: Pick, seed: u64, bug: Option<Planted>) -> Result<Outcome, String> {
    match s {
        Pick::Raft(s) => {
            let mut cfg = s.config(seed);
            if let Some(Planted::Raft(b)) = bug {
                cfg.raft.bug = Some(b);
            }
            Ok(Outcome::Raft(Simulation::new(cfg)?.run()))
        }
        Pick::Kafka(s) => {
            let mut cfg = s.config(seed);
            if let Some(Planted::Kafka(b)) = bug {
                cfg.bug = Some(b);
            }
            Ok(Outcome::Kafka(KafkaSim::new(cfg)?.run()))
        }
    }
}

fn run_one(
    s: Pick,
    seed: u64,
    bug: Option<Planted>,
    check_determinism: bool,
    trace_lines: usize,
) -> ExitCode {
    println!("=== sluice-sim: scenario {} ===", s.name());
    print!("{}", banner(s, seed, bug));
    let started = Instant::now();
    let report = match execute(s, seed, bug) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("invalid configuration: {e}");
            return ExitCode::from(3);
        }
    };
    let wall = started.elapsed().as_secs_f64();
    match &report {
        Outcome::Raft(r) => print_stats(r, wall),
        Outcome::Kafka(r) => print_kafka_stats(r, wall),
    }
    if check_determinism {
        let again = execute(s, seed, bug).expect("same config validated above");
        if !again.same_run(&report) {
            println!(
                "NONDETERMINISTIC: trace hash {:016x} then {:016x}",
                report.trace_hash(),
                again.trace_hash()
            );
            return ExitCode::from(1);
        }
        println!(
            "determinism: both runs produced trace hash {:016x}",
            report.trace_hash()
        );
    }
    println!("verdict: {}", report.verdict());
    if !report.verdict().is_pass() {
        println!("--- last {trace_lines} trace records ---");
        let tail = report.trace_tail();
        let skip = tail.len().saturating_sub(trace_lines);
        for line in &tail[skip..] {
            println!("{line}");
        }
        println!(
            "--- reproduce with ---\n{}",
            replay_line(s.name(), seed, bug)
        );
    }
    ExitCode::from(report.verdict().exit_code() as u8)
}

fn print_stats(r: &Report, wall_s: f64) {
    let st = &r.stats;
    let sim_s = st.sim_ns as f64 / 1e9;
    println!(
        "stats: events={} sim_time={:.2}s wall={:.3}s events/s={:.0} sim/wall={:.0}x acked={} ({:.0}/s wall) failed={} unknown={} leaders={} crashes={} storage_errors={} torn_tails_cut={} truncations={} dropped={} committed={} trace_hash={:016x}",
        st.events,
        sim_s,
        wall_s,
        st.events as f64 / wall_s.max(1e-9),
        sim_s / wall_s.max(1e-9),
        st.acked,
        st.acked as f64 / wall_s.max(1e-9),
        st.failed,
        st.unknown,
        st.leaders_elected,
        st.crashes,
        st.storage_errors,
        st.torn_tails_cut,
        st.truncations,
        st.messages_dropped,
        st.final_commit,
        r.trace_hash
    );
}

fn failover_text(samples: &[u64]) -> String {
    match sluice_sim::kafka::failover::summarize(samples) {
        Some((p50, max)) => format!(
            "failover: {} measured, p50={p50:.1}ms max={max:.1}ms",
            samples.len()
        ),
        None => "failover: none measured".to_string(),
    }
}

fn rebalance_text(samples: &[u64]) -> String {
    match sluice_sim::kafka::failover::summarize(samples) {
        Some((p50, max)) => format!(
            "rebalance: {} measured, p50={p50:.1}ms max={max:.1}ms",
            samples.len()
        ),
        None => "rebalance: none measured".to_string(),
    }
}

fn print_kafka_stats(r: &KafkaReport, wall_s: f64) {
    let st = &r.stats;
    let sim_s = st.sim_ns as f64 / 1e9;
    let acked = st.acked_all + st.acked_one;
    println!(
        "stats: events={} sim_time={:.2}s wall={:.3}s events/s={:.0} sim/wall={:.0}x sends={} acked_all={} acked_one={} ({:.0} acked/s wall) failed={} unknown={} polls={} records_polled={} final_records={} leaders={} crashes={} storage_errors={} torn_tails_cut={} truncations={} peer_dropped={} connection_resets={} producer_session_resets={} trace_hash={:016x}",
        st.events,
        sim_s,
        wall_s,
        st.events as f64 / wall_s.max(1e-9),
        sim_s / wall_s.max(1e-9),
        st.sends,
        st.acked_all,
        st.acked_one,
        acked as f64 / wall_s.max(1e-9),
        st.failed,
        st.unknown,
        st.polls,
        st.records_polled,
        st.final_records,
        st.leaders_elected,
        st.crashes,
        st.storage_errors,
        st.torn_tails_cut,
        st.truncations,
        st.peer_dropped,
        st.connection_resets,
        st.session_resets,
        r.trace_hash
    );
    println!(
        "{} ({} leader faults unresolved at the end)",
        failover_text(&st.failovers),
        st.failovers_unresolved
    );
    if st.group_joins > 0 {
        println!(
            "group: joins={} highest_generation={} commits={} delivered={} static_rejoins={} (same generation: {})",
            st.group_joins,
            st.group_generation,
            st.group_commits,
            st.group_delivered,
            st.static_rejoins,
            st.static_rejoins_same_generation
        );
        println!(
            "{} ({} unresolved at the end)",
            rebalance_text(&st.rebalances),
            st.rebalances_unresolved
        );
    }
}

struct Failure {
    scenario: &'static str,
    seed: u64,
    verdict: Verdict,
}

#[derive(Default)]
struct Totals {
    events: u64,
    acked: u64,
    busy_s: f64,
    sim_ns: u64,
    /// Kafka-level failover samples per scenario.
    failovers: std::collections::BTreeMap<&'static str, Vec<u64>>,
    /// Group rebalance samples per scenario (group scenarios only).
    rebalances: std::collections::BTreeMap<&'static str, Vec<u64>>,
    /// Static member restarts per group scenario: (restarts, rejoined their generation).
    static_rejoins: std::collections::BTreeMap<&'static str, (u64, u64)>,
}

fn sweep(scenarios: &[Pick], (a, b): (u64, u64), jobs: usize, bug: Option<Planted>) -> ExitCode {
    let work: Vec<(Pick, u64)> = scenarios
        .iter()
        .flat_map(|s| (a..b).map(move |seed| (*s, seed)))
        .collect();
    let bar = ProgressBar::new(work.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} runs {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::<Failure>::new());
    let totals = Mutex::new(Totals::default());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(s, seed)) = work.get(i) else { break };
                let t = Instant::now();
                let verdict = match execute(s, seed, bug) {
                    Ok(report) => {
                        let (events, acked, sim_ns) = report.totals();
                        let mut tot = totals.lock().expect("totals");
                        tot.events += events;
                        tot.acked += acked;
                        tot.busy_s += t.elapsed().as_secs_f64();
                        tot.sim_ns += sim_ns;
                        if let Outcome::Kafka(r) = &report {
                            tot.failovers
                                .entry(s.name())
                                .or_default()
                                .extend(&r.stats.failovers);
                            if r.stats.group_joins > 0 {
                                tot.rebalances
                                    .entry(s.name())
                                    .or_default()
                                    .extend(&r.stats.rebalances);
                                let st = tot.static_rejoins.entry(s.name()).or_default();
                                st.0 += r.stats.static_rejoins;
                                st.1 += r.stats.static_rejoins_same_generation;
                            }
                        }
                        report.verdict().clone()
                    }
                    Err(e) => Verdict::Gate(format!("invalid configuration: {e}")),
                };
                if !verdict.is_pass() {
                    bar.println(format!("FAIL {} seed {}: {}", s.name(), seed, verdict));
                    let mut f = failures.lock().expect("failures");
                    f.push(Failure {
                        scenario: s.name(),
                        seed,
                        verdict,
                    });
                    bar.set_message(format!("{} failed", f.len()));
                }
                bar.inc(1);
            });
        }
    });
    bar.finish();
    let wall = started.elapsed().as_secs_f64();
    let tot = totals.into_inner().expect("totals");
    let mut failures = failures.into_inner().expect("failures");
    failures.sort_by_key(|f| (f.scenario, f.seed));
    println!("=== sweep summary ===");
    println!(
        "runs={} passed={} failed={} wall={:.1}s jobs={}",
        work.len(),
        work.len() - failures.len(),
        failures.len(),
        wall,
        jobs
    );
    println!(
        "simulated events={} events/s per core={:.0} events/s total={:.0} acked ops/s per core={:.0} sim-time/wall per core={:.0}x",
        tot.events,
        tot.events as f64 / tot.busy_s.max(1e-9),
        tot.events as f64 / wall.max(1e-9),
        tot.acked as f64 / tot.busy_s.max(1e-9),
        tot.sim_ns as f64 / 1e9 / tot.busy_s.max(1e-9)
    );
    for (name, samples) in &tot.failovers {
        println!("{name}: {}", failover_text(samples));
    }
    for (name, samples) in &tot.rebalances {
        let (restarts, kept) = tot.static_rejoins.get(name).copied().unwrap_or_default();
        let statics = if restarts > 0 {
            format!(", static restarts={restarts} (same generation: {kept})")
        } else {
            String::new()
        };
        println!("{name}: {}{statics}", rebalance_text(samples));
    }
    for f in &failures {
        println!(
            "FAILED {} seed {}: {}\n  replay: {}",
            f.scenario,
            f.seed,
            f.verdict,
            replay_line(f.scenario, f.seed, bug)
        );
    }
    let code = failures
        .iter()
        .map(|f| f.verdict.exit_code())
        .max()
        .unwrap_or(0);
    ExitCode::from(code as u8)
}
