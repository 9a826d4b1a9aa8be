//! aiokafka and kafkajs against a real `sluice broker`: the asyncio Python client (which starts
//! with ApiVersions v0) produces through an idempotent producer with every codec and reads back
//! with manual assignment; kafkajs produces idempotently with gzip and checks offsets and
//! timestamp lookups. Both are installed by `.ci/setup-clients` (a missing one fails the test).

use crate::broker_proc::{file_tail, BrokerProc, CapturedChild, TempDir};
use crate::python_clients::{repo_root, venv_python};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(90);

fn run_client(name: &str, mut cmd: Command, dir: &Path, broker: &BrokerProc) {
    let log = dir.join(format!("{name}.log"));
    let mut child = CapturedChild::spawn(&mut cmd, &log);
    match child.wait_exit(WITHIN) {
        Some(s) if s.success() => println!("{}", file_tail(&log, 20)),
        status => {
            if status.is_none() {
                child.kill();
            }
            panic!(
                "{name} failed ({status:?})\n--- client output ---\n{}\n--- broker log ---\n{}",
                file_tail(&log, 200),
                broker.log_tail()
            );
        }
    }
}

#[test]
fn aiokafka_produces_and_reads_back_with_every_codec() {
    let dir = TempDir::new("aiokafka");
    let broker = BrokerProc::start(&dir.path().join("data"));
    let mut cmd = Command::new(venv_python());
    cmd.arg(repo_root().join("tests/python/aiokafka_check.py"))
        .args(["--bootstrap", &broker.bootstrap()])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1");
    run_client("aiokafka", cmd, dir.path(), &broker);
}

#[test]
fn kafkajs_produces_idempotently_and_finds_offsets_by_time() {
    let js = repo_root().join("tests/js");
    assert!(
        js.join("node_modules/kafkajs/package.json").is_file(),
        "kafkajs is not installed in {}: run `.ci/setup-clients`",
        js.display()
    );
    let dir = TempDir::new("kafkajs");
    let broker = BrokerProc::start(&dir.path().join("data"));
    let mut cmd = Command::new("node");
    cmd.arg(js.join("kafkajs_check.js")).arg(broker.bootstrap());
    run_client("kafkajs", cmd, dir.path(), &broker);
}
