//! The hostile-frame suite against a live `sluice broker` over TCP: after every bad frame the
//! broker is still up and serves a normal client, and lying lengths do not make it allocate
//! what they claim (its resident memory stays flat).

use crate::broker_proc::{BrokerProc, TempDir};
use sluice_core::protocol::messages::api_versions::ApiVersionsRequest;
use sluice_core::protocol::{
    decode_response, encode_request, ApiKey, Request, RequestHeader, Response, Writer,
};
use sluice_core::rng::DetRng;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// A request header (v1: api, version, correlation id, client id) followed by `body`, with a
/// size prefix.
fn frame(api: i16, version: i16, body: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.i16(api);
    w.i16(version);
    w.i32(7);
    w.nullable_string(false, Some("hostile"));
    w.raw(body);
    let inner = w.into_inner();
    let mut out = (inner.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&inner);
    out
}

/// Sends `bytes`, then reads until the broker closes or answers (bounded). Returns what came back.
fn send_hostile(addr: &str, bytes: &[u8], close_write: bool) -> Vec<u8> {
    let mut s = connect(addr);
    // The broker may close mid-write; that is an acceptable answer.
    let _ = s.write_all(bytes);
    if close_write {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    s.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    out
}

/// A normal client: ApiVersions v3 on a fresh connection must be answered.
fn assert_serves(addr: &str, after: &str) {
    let mut s = connect(addr);
    let header = RequestHeader {
        api_key: ApiKey::ApiVersions,
        api_version: 3,
        correlation_id: 42,
        client_id: Some("probe".into()),
    };
    let req = Request::ApiVersions(ApiVersionsRequest {
        client_software_name: "probe".into(),
        client_software_version: "1".into(),
    });
    s.write_all(&encode_request(&header, &req))
        .unwrap_or_else(|e| panic!("after {after}: write failed: {e}"));
    let mut size = [0u8; 4];
    s.read_exact(&mut size)
        .unwrap_or_else(|e| panic!("after {after}: no response: {e}"));
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut body).unwrap();
    let (h, r) = decode_response(ApiKey::ApiVersions, 3, &body).unwrap();
    assert_eq!(h.correlation_id, 42);
    let Response::ApiVersions(r) = r else {
        panic!()
    };
    assert_eq!(r.error_code, 0, "after {after}");
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

#[test]
fn no_hostile_frame_stops_a_live_broker_from_serving() {
    let dir = TempDir::new("hostile");
    let mut broker = BrokerProc::start(&dir.path().join("data"));
    let addr = broker.bootstrap();
    assert_serves(&addr, "start-up");
    let rss_before = rss_kib(broker.pid());

    let mut cases: Vec<(String, Vec<u8>, bool)> = vec![
        (
            "negative length".into(),
            (-1i32).to_be_bytes().to_vec(),
            false,
        ),
        (
            "i32::MAX length".into(),
            i32::MAX.to_be_bytes().to_vec(),
            false,
        ),
        (
            "200 MiB length, 16 bytes sent".into(),
            [(200i32 << 20).to_be_bytes().as_slice(), &[0u8; 16]].concat(),
            false,
        ),
        ("zero length".into(), 0i32.to_be_bytes().to_vec(), false),
        (
            "truncated header".into(),
            [6i32.to_be_bytes().as_slice(), &[0, 3, 0]].concat(),
            true,
        ),
        ("unknown api key".into(), frame(9999, 0, &[]), false),
        (
            "unsupported produce version".into(),
            frame(0, 99, &[]),
            false,
        ),
        // Metadata v4: topics array count i32::MAX with no elements.
        (
            "array count i32::MAX".into(),
            frame(3, 4, &[0x7f, 0xff, 0xff, 0xff, 1]),
            false,
        ),
        // Metadata v9 (flexible): a compact array length varint that never ends.
        (
            "unterminated varint".into(),
            frame(3, 9, &[0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            false,
        ),
        // Produce v8 with a records blob whose batch length lies.
        (
            "records length beyond the frame".into(),
            frame(
                0,
                8,
                &[
                    0xff, 0xff, 0, 1, 0, 0, 0x75, 0x30, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0,
                    0, 0, 0x7f, 0xff, 0xff, 0xff,
                ],
            ),
            false,
        ),
        (
            "half a frame then close".into(),
            frame(18, 3, &[0; 40])[..20].to_vec(),
            true,
        ),
    ];
    let mut rng = DetRng::new(0x5eed);
    for i in 0..40 {
        let len = rng.range(0, 300) as usize;
        let mut body: Vec<u8> = (0..len).map(|_| rng.index(256) as u8).collect();
        if i % 2 == 0 && body.len() >= 4 {
            // Keep a plausible API key and version so decoding goes deeper than the header.
            body[0] = 0;
            body[1] = [0u8, 1, 2, 3, 18, 19][rng.index(6)];
            body[2] = 0;
            body[3] = rng.index(13) as u8;
        }
        let mut f = (body.len() as i32).to_be_bytes().to_vec();
        f.extend_from_slice(&body);
        cases.push((format!("random frame {i}"), f, false));
    }
    for (name, bytes, close_write) in &cases {
        send_hostile(&addr, bytes, *close_write);
        assert_serves(&addr, name);
    }

    // An ApiVersions version from the future (flexible header: a tagged-field byte follows the
    // client id, as clients send it) gets the v0 fallback answer (KIP-511).
    let reply = send_hostile(&addr, &frame(18, 99, &[0, 2, b'x', 2, b'1', 0]), false);
    assert!(
        reply.len() >= 10,
        "no fallback answer to ApiVersions v99: {reply:?}"
    );
    assert_eq!(&reply[4..8], &7i32.to_be_bytes(), "correlation id");
    assert_eq!(&reply[8..10], &35i16.to_be_bytes(), "UNSUPPORTED_VERSION");

    let rss_after = rss_kib(broker.pid());
    assert!(
        rss_after < rss_before + 64 * 1024,
        "resident memory grew from {rss_before} KiB to {rss_after} KiB under hostile lengths"
    );
    let status = broker.terminate();
    assert!(
        status.success(),
        "broker exit after hostile frames: {status}\n{}",
        broker.log_tail()
    );
}

/// A client that pipelines thousands of requests before reading any answer (the broker bounds
/// requests in flight per connection, so it pauses reading that socket rather than buffering
/// answers without bound): every answer still arrives, in request order.
#[test]
fn a_pipelining_client_that_does_not_read_gets_every_answer_in_order() {
    let dir = TempDir::new("pipeline");
    let broker = BrokerProc::start(&dir.path().join("data"));
    let mut s = connect(&broker.bootstrap());
    const N: i32 = 3000;
    let mut all = Vec::new();
    for corr in 0..N {
        let header = RequestHeader {
            api_key: ApiKey::ApiVersions,
            api_version: 0,
            correlation_id: corr,
            client_id: Some("pipeline".into()),
        };
        all.extend_from_slice(&encode_request(
            &header,
            &Request::ApiVersions(ApiVersionsRequest::default()),
        ));
    }
    // Written from another thread: the broker pushes back once 128 requests are in flight and
    // this socket's buffers fill, so a single thread would deadlock writing.
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || w.write_all(&all));
    for corr in 0..N {
        let mut size = [0u8; 4];
        s.read_exact(&mut size)
            .unwrap_or_else(|e| panic!("answer {corr}: {e}"));
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        s.read_exact(&mut body).unwrap();
        let (h, _) = decode_response(ApiKey::ApiVersions, 0, &body).unwrap();
        assert_eq!(h.correlation_id, corr, "answers in request order");
    }
    writer.join().unwrap().unwrap();
}
