//! Real Python Kafka clients (confluent-kafka, kafka-python) against a real `sluice broker`.
//!
//! Each test starts a broker, runs `tests/python/client_check.py --phase produce` (create a
//! topic, produce compressed keyed and unkeyed records with idempotent acks=all producers, read
//! them back, check ListOffsets; every acknowledged record goes to a JSON-lines file), SIGKILLs
//! the broker, restarts it on the same data directory, runs `--phase verify` (every
//! acknowledged record is still at its offset, nothing else is there, appends continue the
//! log), then SIGTERMs the broker and expects a clean exit.
//!
//! The clients live in a virtualenv made by `.ci/setup-clients` (`$SLUICE_VENV`, else `.venv`
//! in the repository root). A missing venv fails the test rather than skipping it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::broker_proc::{file_tail, BrokerProc, CapturedChild, TempDir};

/// The script's own deadline, passed as `--timeout`.
const SCRIPT_TIMEOUT_S: u64 = 60;
/// The harness's bound on one script run: its deadline plus interpreter and client start-up.
const SCRIPT_WITHIN: Duration = Duration::from_secs(SCRIPT_TIMEOUT_S + 30);

pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the repository root")
        .to_path_buf()
}

pub(crate) fn venv_python() -> PathBuf {
    let venv = std::env::var_os("SLUICE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"));
    let python = venv.join("bin").join("python");
    assert!(
        python.is_file(),
        "no Python client venv at {} (looked for {}): run `.ci/setup-clients` (as root; it \
         installs the Kafka client packages into .venv), or set SLUICE_VENV",
        venv.display(),
        python.display()
    );
    python
}

/// Runs one phase of the client script; panics with its output and the broker log on failure.
fn run_phase(broker: &BrokerProc, dir: &Path, client: &str, phase: &str, state: &Path) {
    let script = repo_root().join("tests/python/client_check.py");
    let log = dir.join(format!("{client}-{phase}.log"));
    let mut cmd = Command::new(venv_python());
    cmd.arg(&script)
        .args(["--client", client, "--phase", phase])
        .arg("--bootstrap")
        .arg(broker.bootstrap())
        .arg("--state")
        .arg(state)
        .arg("--timeout")
        .arg(SCRIPT_TIMEOUT_S.to_string())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1");
    let started = Instant::now();
    let mut child = CapturedChild::spawn(&mut cmd, &log);
    let status = child.wait_exit(SCRIPT_WITHIN);
    let elapsed = started.elapsed();
    let output = || file_tail(&log, 200);
    match status {
        Some(s) if s.success() => {
            println!("{client} {phase}: ok in {elapsed:?}\n{}", output());
        }
        Some(s) => panic!(
            "{client} {phase} failed ({s}) after {elapsed:?}\n--- script output ---\n{}\n\
             --- broker log ---\n{}",
            output(),
            broker.log_tail()
        ),
        None => {
            child.kill();
            panic!(
                "{client} {phase} still running after {SCRIPT_WITHIN:?}; killed it\n\
                 --- script output ---\n{}\n--- broker log ---\n{}",
                output(),
                broker.log_tail()
            );
        }
    }
}

fn acknowledged_records_survive_sigkill(client: &str) {
    let dir = TempDir::new(&format!("py-{client}"));
    let mut broker = BrokerProc::start(&dir.path().join("data"));
    let state = dir.path().join("acknowledged.jsonl");
    run_phase(&broker, dir.path(), client, "produce", &state);
    broker.kill9();
    broker.restart();
    run_phase(&broker, dir.path(), client, "verify", &state);
    let status = broker.terminate();
    assert!(
        status.success(),
        "broker exited with {status} on SIGTERM, want 0\n{}",
        broker.log_tail()
    );
}

#[test]
fn confluent_kafka_records_acknowledged_before_sigkill_are_all_read_back() {
    acknowledged_records_survive_sigkill("confluent");
}

#[test]
fn kafka_python_records_acknowledged_before_sigkill_are_all_read_back() {
    acknowledged_records_survive_sigkill("kafka-python");
}
