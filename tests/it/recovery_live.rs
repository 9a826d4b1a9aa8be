//! Crash recovery of a real `sluice broker`: a torn and a corrupted segment tail are cut off at
//! the first bad batch on restart, with a warning saying how much was dropped, and every record
//! acknowledged before the damage is still served, at its offset.

use crate::broker_proc::{run_sluice, BrokerProc, TempDir};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn sluice(bootstrap: &str, args: &[&str], stdin: &str) -> String {
    let args = [args, &["--bootstrap", bootstrap]].concat();
    let out = run_sluice(&args, stdin);
    assert!(
        out.status.success(),
        "sluice {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// The active segment of partition 0 of `topic` under `data`.
fn active_segment(data: &Path, topic: &str) -> PathBuf {
    let topics = data.join("topics");
    let dir = std::fs::read_dir(&topics)
        .expect("topics directory")
        .map(|e| e.expect("dir entry").path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{topic}-0.")))
        })
        .expect("partition directory");
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir.join("log"))
        .expect("log directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    logs.pop().expect("a segment")
}

fn consume_all(bootstrap: &str, topic: &str) -> Vec<String> {
    let out = sluice(
        bootstrap,
        &[
            "consume",
            "--topic",
            topic,
            "--print-offsets",
            "--idle-timeout-ms",
            "1500",
        ],
        "",
    );
    out.lines().map(str::to_string).collect()
}

#[test]
fn a_torn_or_corrupt_tail_is_cut_with_a_warning_and_acknowledged_records_survive() {
    let dir = TempDir::new("recovery");
    let data = dir.path().join("data");
    let mut broker = BrokerProc::start(&data);
    let b = broker.bootstrap();
    sluice(&b, &["topic", "create", "r", "--partitions", "1"], "");
    let lines: String = (0..50).map(|i| format!("k{i}:value-{i}\n")).collect();
    sluice(
        &b,
        &["produce", "--topic", "r", "--key-separator", ":"],
        &lines,
    );
    let before = consume_all(&b, "r");
    assert_eq!(before.len(), 50);
    assert_eq!(before[49], "49\tk49\tvalue-49");

    // Torn tail: half a batch header of garbage after the last acknowledged batch.
    broker.kill9();
    let seg = active_segment(&data, "r");
    let len = std::fs::metadata(&seg).unwrap().len();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&seg)
        .unwrap()
        .write_all(&[0xab; 37])
        .unwrap();
    broker.restart();
    let log = broker.wait_for_log("dropped a torn or corrupt tail", 1, WAIT);
    assert!(
        log.contains("dropped a torn or corrupt tail") && log.contains("dropped_bytes=37"),
        "no recovery warning for the torn tail:\n{log}"
    );
    assert_eq!(
        std::fs::metadata(&seg).unwrap().len(),
        len,
        "the tail was cut"
    );
    assert_eq!(consume_all(&b, "r"), before);

    // Corruption: flip a byte inside the last batch; recovery drops that batch (it was
    // acknowledged, but its bytes are gone: the log must not serve them) and keeps the rest.
    sluice(
        &b,
        &["produce", "--topic", "r", "--key-separator", ":"],
        "late:value-50\n",
    );
    broker.kill9();
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();
    broker.restart();
    let log = broker.wait_for_log("dropped a torn or corrupt tail", 2, WAIT);
    assert!(
        log.matches("dropped a torn or corrupt tail").count() >= 2,
        "no recovery warning for the corrupt batch:\n{log}"
    );
    assert_eq!(
        consume_all(&b, "r"),
        before,
        "the corrupt batch is not served"
    );
    // The log continues at the offset after the last good batch.
    sluice(
        &b,
        &["produce", "--topic", "r", "--key-separator", ":"],
        "again:value-x\n",
    );
    let after = consume_all(&b, "r");
    assert_eq!(after.last().map(String::as_str), Some("50\tagain\tvalue-x"));
    assert!(broker.terminate().success());
}
