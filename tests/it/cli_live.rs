//! The `sluice` command as a user meets it: clear errors for a second broker on the same data
//! directory, a mistyped config key and a missing topic; `topic describe` and the metrics
//! endpoint reflect what was produced.

use crate::broker_proc::{output_text as text, run_sluice as run, BrokerProc, TempDir};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn the_cli_refuses_mistakes_clearly_and_reports_what_it_did() {
    let dir = TempDir::new("cli");
    let data = dir.path().join("data");
    let mut broker = BrokerProc::start(&data);
    let b = broker.bootstrap();

    // A second broker on the same data directory stops at once.
    let data_s = data.to_string_lossy().to_string();
    let second = run(
        &[
            "broker",
            "--data-dir",
            &data_s,
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "",
        ],
        "",
    );
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    assert!(
        text(&second).contains("another sluice broker is using"),
        "{}",
        text(&second)
    );

    // A mistyped config key is named.
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "lisen = \"127.0.0.1:1\"\n").unwrap();
    let bad = run(&["broker", "--config", &cfg.to_string_lossy()], "");
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    assert!(text(&bad).contains("lisen"), "{}", text(&bad));

    // Producing to a topic that does not exist says so.
    let missing = run(&["produce", "--topic", "nope", "--bootstrap", &b], "x\n");
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing).contains("UNKNOWN_TOPIC_OR_PARTITION"),
        "{}",
        text(&missing)
    );

    // A bad topic config is refused with the reason.
    let bad_cfg = run(
        &[
            "topic",
            "create",
            "t",
            "--config",
            "cleanup.policy=compact",
            "--bootstrap",
            &b,
        ],
        "",
    );
    assert_eq!(bad_cfg.status.code(), Some(1));
    assert!(
        text(&bad_cfg).contains("INVALID_CONFIG"),
        "{}",
        text(&bad_cfg)
    );

    let ok = run(
        &[
            "topic",
            "create",
            "t",
            "--partitions",
            "2",
            "--bootstrap",
            &b,
        ],
        "",
    );
    assert!(ok.status.success(), "{}", text(&ok));
    let produced = run(
        &[
            "produce",
            "--topic",
            "t",
            "--partition",
            "1",
            "--bootstrap",
            &b,
        ],
        "a\nb\nc\n",
    );
    assert!(produced.status.success(), "{}", text(&produced));
    let described = run(&["topic", "describe", "t", "--bootstrap", &b], "");
    let d = text(&described);
    assert!(d.contains("topic t: 2 partitions"), "{d}");
    assert!(
        d.lines()
            .any(|l| l.starts_with("1\t1\t") && l.ends_with("\t0\t3")),
        "{d}"
    );

    // The metrics endpoint reports the partition's high watermark.
    let log = broker.wait_for_log("metrics at /metrics", 1, Duration::from_secs(10));
    let addr = log
        .lines()
        .find_map(|l| l.split("address=").nth(1))
        .map(|a| a.split_whitespace().next().unwrap_or("").to_string())
        .expect("the broker logs its metrics address");
    let mut s = TcpStream::connect(&addr).expect("metrics endpoint");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(
        body.contains("sluice_partition_high_watermark{topic=\"t\",partition=\"1\"} 3"),
        "{body}"
    );
    // Three records, one request each; a request refused while the new partition was still
    // electing itself is retried and counted again.
    let produces: u64 = body
        .lines()
        .find_map(|l| l.strip_prefix("sluice_requests_total{api=\"Produce\"} "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Produce counter in\n{body}"));
    assert!(produces >= 3, "{body}");
    assert!(broker.terminate().success());
}
