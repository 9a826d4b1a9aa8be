//! `sluice-sim`: list, run and sweep the named scenarios.
//!
//! Exit codes: 0 pass, 1 safety violation (or nondeterminism), 2 liveness failure or gate,
//! 3 usage error.

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use sluice_core::raft::Bug;
use sluice_scenarios::{all, find, Scenario};
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
        /// Plant a known bug (for demonstrating the checkers): vote-twice, ack-before-sync,
        /// skip-truncation, commit-previous-term, commit-regress, append-at-end,
        /// fail-pending-on-step-down, forget-vote-on-restart.
        #[arg(long, value_parser = parse_bug)]
        bug: Option<Bug>,
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
        #[arg(long, value_parser = parse_bug)]
        bug: Option<Bug>,
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

fn parse_bug(s: &str) -> Result<Bug, String> {
    Ok(match s {
        "vote-twice" => Bug::VoteTwice,
        "ack-before-sync" => Bug::AckBeforeSync,
        "skip-truncation" => Bug::SkipTruncation,
        "commit-previous-term" => Bug::CommitPreviousTerm,
        "commit-regress" => Bug::CommitRegress,
        "append-at-end" => Bug::AppendAtEnd,
        "fail-pending-on-step-down" => Bug::FailPendingOnStepDown,
        "forget-vote-on-restart" => Bug::ForgetVoteOnRestart,
        _ => return Err(format!("unknown bug {s:?}")),
    })
}

fn bug_flag(bug: Option<Bug>) -> String {
    let name = match bug {
        None => return String::new(),
        Some(Bug::VoteTwice) => "vote-twice",
        Some(Bug::AckBeforeSync) => "ack-before-sync",
        Some(Bug::SkipTruncation) => "skip-truncation",
        Some(Bug::CommitPreviousTerm) => "commit-previous-term",
        Some(Bug::CommitRegress) => "commit-regress",
        Some(Bug::AppendAtEnd) => "append-at-end",
        Some(Bug::FailPendingOnStepDown) => "fail-pending-on-step-down",
        Some(Bug::ForgetVoteOnRestart) => "forget-vote-on-restart",
    };
    format!(" --bug {name}")
}

fn replay_line(scenario: &str, seed: u64, bug: Option<Bug>) -> String {
    format!(
        "cargo run --release -p sluice-scenarios --bin sluice-sim -- run --scenario {scenario} --seed {seed}{}",
        bug_flag(bug)
    )
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
            for s in all() {
                println!("{}\n    {}\n", s.name, s.why);
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
            let Some(s) = find(&scenario) else {
                eprintln!("unknown scenario {scenario:?}; `sluice-sim list` shows them");
                return ExitCode::from(3);
            };
            run_one(s, seed, bug, check_determinism, trace_lines)
        }
        Command::Sweep {
            scenario,
            seeds,
            jobs,
            bug,
        } => {
            let scenarios: Vec<&Scenario> = if scenario == "all" {
                all().iter().collect()
            } else {
                match find(&scenario) {
                    Some(s) => vec![s],
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

fn execute(s: &Scenario, seed: u64, bug: Option<Bug>) -> Result<Report, String> {
    let mut cfg = s.config(seed);
    if bug.is_some() {
        cfg.raft.bug = bug;
    }
    Ok(Simulation::new(cfg)?.run())
}

fn run_one(
    s: &Scenario,
    seed: u64,
    bug: Option<Bug>,
    check_determinism: bool,
    trace_lines: usize,
) -> ExitCode {
    let mut cfg = s.config(seed);
    if bug.is_some() {
        cfg.raft.bug = bug;
    }
    println!("=== sluice-sim: scenario {} ===", s.name);
    print!("{}", cfg.banner());
    let started = Instant::now();
    let report = match execute(s, seed, bug) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("invalid configuration: {e}");
            return ExitCode::from(3);
        }
    };
    let wall = started.elapsed().as_secs_f64();
    print_stats(&report, wall);
    if check_determinism {
        let again = execute(s, seed, bug).expect("same config validated above");
        if again.trace_hash != report.trace_hash || again.stats != report.stats {
            println!(
                "NONDETERMINISTIC: trace hash {:016x} then {:016x}",
                report.trace_hash, again.trace_hash
            );
            return ExitCode::from(1);
        }
        println!(
            "determinism: both runs produced trace hash {:016x}",
            report.trace_hash
        );
    }
    println!("verdict: {}", report.verdict);
    if !report.verdict.is_pass() {
        println!("--- last {trace_lines} trace records ---");
        let skip = report.trace_tail.len().saturating_sub(trace_lines);
        for line in &report.trace_tail[skip..] {
            println!("{line}");
        }
        println!("--- reproduce with ---\n{}", replay_line(s.name, seed, bug));
    }
    ExitCode::from(report.verdict.exit_code() as u8)
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

struct Failure {
    scenario: &'static str,
    seed: u64,
    verdict: Verdict,
}

fn sweep(scenarios: &[&Scenario], (a, b): (u64, u64), jobs: usize, bug: Option<Bug>) -> ExitCode {
    let work: Vec<(&Scenario, u64)> = scenarios
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
    let totals = Mutex::new((0u64, 0u64, 0f64, 0u64)); // events, acked, busy seconds, sim ns
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(s, seed)) = work.get(i) else { break };
                let t = Instant::now();
                let verdict = match execute(s, seed, bug) {
                    Ok(report) => {
                        let mut tot = totals.lock().expect("totals");
                        tot.0 += report.stats.events;
                        tot.1 += report.stats.acked;
                        tot.2 += t.elapsed().as_secs_f64();
                        tot.3 += report.stats.sim_ns;
                        report.verdict
                    }
                    Err(e) => Verdict::Gate(format!("invalid configuration: {e}")),
                };
                if !verdict.is_pass() {
                    bar.println(format!("FAIL {} seed {}: {}", s.name, seed, verdict));
                    let mut f = failures.lock().expect("failures");
                    f.push(Failure {
                        scenario: s.name,
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
    let (events, acked, busy, sim_ns) = *totals.lock().expect("totals");
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
        events,
        events as f64 / busy.max(1e-9),
        events as f64 / wall.max(1e-9),
        acked as f64 / busy.max(1e-9),
        sim_ns as f64 / 1e9 / busy.max(1e-9)
    );
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
