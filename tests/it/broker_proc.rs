//! Real `sluice broker` processes for the real-process tests (Python and rdkafka clients).
//!
//! `BrokerProc` spawns the built `sluice` binary on a free loopback port with its own data
//! directory, captures its stderr and stdout to a log file next to that directory, and waits
//! until the port accepts connections. It can SIGKILL the broker and restart it on the same port
//! and data directory (the crash-recovery tests), or SIGTERM it and report how it exited.
//!
//! Every wait is bounded by a deadline. Between polls the harness does not sleep: it waits on
//! the child's output pipes (a line of log or the pipe closing at exit wakes it at once), with a
//! short timeout so that it re-checks the port and the process regularly. std only: no libc, so
//! SIGTERM goes through the `kill` command and SIGKILL through `Child::kill`.
//!
//! A cluster is one `BrokerProc` per node: `BrokerSpec` carries the ports chosen up front (every
//! broker must know the voters' peer addresses before any starts) and extra flags such as
//! `--node-id` and `--voters`. Every broker gets its own peer port, so brokers of different
//! tests never meet.
//!
//! Not here: any Kafka client logic; the tests bring their own clients.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a broker may take to accept connections after it is spawned.
const READY_WITHIN: Duration = Duration::from_secs(30);
/// How long a broker may take to exit after SIGTERM.
const TERMINATE_WITHIN: Duration = Duration::from_secs(20);
/// How often a wait re-checks the port or the process when the child prints nothing.
const POLL_EVERY: Duration = Duration::from_millis(50);
/// Lines of broker log shown in a failure message.
const TAIL_LINES: usize = 80;

/// The `sluice` binary under test: `$SLUICE_BIN`, else the one built in the same target
/// profile directory as this test executable (`target/<profile>/deps/it-HASH` ->
/// `target/<profile>/sluice`).
pub fn sluice_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SLUICE_BIN") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "SLUICE_BIN={} is not a file; unset it or point it at a built `sluice` binary",
            p.display()
        );
        return p;
    }
    let exe = std::env::current_exe().expect("path of the running test executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps/");
    let bin = profile_dir.join(format!("sluice{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "no `sluice` binary at {}: run `cargo build -p sluice` (same profile and target dir as \
         the tests), or set SLUICE_BIN",
        bin.display()
    );
    bin
}

/// Runs the `sluice` command with `args`, feeding it `stdin`, and returns how it ended.
pub fn run_sluice(args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(sluice_bin())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running sluice");
    std::io::Write::write_all(
        &mut child.stdin.take().expect("piped stdin"),
        stdin.as_bytes(),
    )
    .expect("writing stdin");
    child.wait_with_output().expect("sluice exits")
}

/// A fresh, uniquely named directory under the system temp dir (process id and a counter). It
/// is removed on drop unless the thread is panicking, so a failed test leaves its data and logs
/// for inspection (the failure message names the path).
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("sluice-{label}-{}-{n}", std::process::id()));
        // A leftover of an earlier run with the same pid would mix old data into this test.
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .unwrap_or_else(|e| panic!("removing stale {}: {e}", path.display()));
        }
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {} for inspection", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A child process whose stdout and stderr are appended to a log file by pump threads. Each
/// chunk of output, and each pipe's end, is also signalled on `events`, which is what waits
/// block on instead of sleeping.
#[derive(Debug)]
pub struct CapturedChild {
    child: Child,
    events: Receiver<()>,
    pumps: Vec<JoinHandle<()>>,
}

impl CapturedChild {
    /// Spawns `cmd` with stdin closed and both output streams appended to `log`.
    pub fn spawn(cmd: &mut Command, log: &Path) -> CapturedChild {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
        let (tx, events) = mpsc::channel();
        let out = child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>);
        let err = child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>);
        let pumps = [out, err]
            .into_iter()
            .flatten()
            .map(|pipe| pump(pipe, open_append(log), tx.clone()))
            .collect();
        CapturedChild {
            child,
            events,
            pumps,
        }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait on a child we own")
    }

    /// Waits until the next output chunk, the end of the output, or `at_most`, whichever comes
    /// first. Once both pipes are closed the process is exiting, and `exited` will say so
    /// within moments; until it does this only yields the thread.
    pub fn pace(&self, at_most: Duration) {
        match self.events.recv_timeout(at_most) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => std::thread::yield_now(),
        }
    }

    /// Waits for the process to exit, at most `within`; `None` if it is still running.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.exited() {
                self.join_pumps();
                return Some(status);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            self.pace(POLL_EVERY.min(deadline - now));
        }
    }

    /// SIGKILL (if still running) and reap.
    pub fn kill(&mut self) -> ExitStatus {
        if self.exited().is_none() {
            // Fails only if the process exited in between; the wait below reaps it either way.
            let _ = self.child.kill();
        }
        let status = self.child.wait().expect("wait on a killed child");
        self.join_pumps();
        status
    }

    fn join_pumps(&mut self) {
        // The pipes reach end-of-file when the process (and anything that inherited them) exits.
        for p in self.pumps.drain(..) {
            let _ = p.join();
        }
    }
}

impl Drop for CapturedChild {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn open_append(log: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap_or_else(|e| panic!("opening log {}: {e}", log.display()))
}

fn pump(mut pipe: Box<dyn Read + Send>, mut log: File, tx: Sender<()>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let _ = log.write_all(&buf[..n]);
                    let _ = tx.send(());
                }
            }
        }
        // Dropping `tx` here tells a waiter the output ended.
    })
}

/// The last `lines` lines of a text file (empty if it does not exist).
pub fn file_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// How to start a broker: its client and peer ports on `host` (127.0.0.1 unless a test says
/// otherwise), flags to add, and an optional command prefix it runs under.
#[derive(Clone, Debug)]
pub struct BrokerSpec {
    pub port: u16,
    pub peer_port: u16,
    pub args: Vec<String>,
    /// The address both listeners bind and clients and peers use.
    pub host: Ipv4Addr,
    /// A command that runs the broker, e.g. `ip netns exec NS` (tests/it/netns_faults.rs); the
    /// binary and its arguments are appended. It must exec the broker, so that the child's pid
    /// is the broker's (signals reach it). With a prefix the harness may not be able to reach
    /// `host` itself, so the broker counts as ready when its log says it is listening (it logs
    /// "sluice broker starting" after binding both listeners) instead of when a connect works.
    pub prefix: Vec<String>,
}

impl BrokerSpec {
    /// Free loopback ports and no extra flags.
    pub fn free() -> BrokerSpec {
        let ports = free_loopback_ports(2);
        BrokerSpec {
            port: ports[0],
            peer_port: ports[1],
            args: Vec::new(),
            host: Ipv4Addr::LOCALHOST,
            prefix: Vec::new(),
        }
    }
}

/// The line a broker logs once both of its listeners are bound.
const STARTED_LINE: &str = "sluice broker starting";

/// One `sluice broker` process on 127.0.0.1 (or `BrokerSpec::host`), restartable on the same ports
/// and data directory.
#[derive(Debug)]
pub struct BrokerProc {
    proc: Option<CapturedChild>,
    spec: BrokerSpec,
    data_dir: PathBuf,
    log: PathBuf,
}

impl BrokerProc {
    /// Starts a broker over `data_dir` (created if missing) on a free loopback port and waits
    /// until it accepts connections. Its log goes to `<data_dir>.broker.log`, beside the data
    /// directory (in the test's temp dir when `data_dir` is a child of one).
    pub fn start(data_dir: &Path) -> BrokerProc {
        BrokerProc::start_with(data_dir, BrokerSpec::free())
    }

    /// As `start`, on the ports and with the extra flags of `spec`.
    pub fn start_with(data_dir: &Path, spec: BrokerSpec) -> BrokerProc {
        std::fs::create_dir_all(data_dir)
            .unwrap_or_else(|e| panic!("creating {}: {e}", data_dir.display()));
        let name = data_dir
            .file_name()
            .expect("data dir has a final component")
            .to_string_lossy();
        let log = data_dir.with_file_name(format!("{name}.broker.log"));
        let mut broker = BrokerProc {
            proc: None,
            spec,
            data_dir: data_dir.to_path_buf(),
            log,
        };
        broker.spawn_and_wait_ready();
        broker
    }

    /// The bootstrap address for clients, `HOST:PORT` (`127.0.0.1:PORT` by default).
    pub fn bootstrap(&self) -> String {
        format!("{}:{}", self.spec.host, self.spec.port)
    }

    /// Where other brokers reach this one, `HOST:PEER_PORT` (`127.0.0.1:PEER_PORT` by default).
    pub fn peer_addr(&self) -> String {
        format!("{}:{}", self.spec.host, self.spec.peer_port)
    }

    /// Whether the broker process is running (not killed or terminated by the harness).
    pub fn is_running(&self) -> bool {
        self.proc.is_some()
    }

    /// Waits until the broker prints something or `at_most` passes, whichever comes first: the
    /// pause between two polls of a condition, woken early by the broker's own progress.
    pub fn pace(&self, at_most: Duration) {
        match &self.proc {
            Some(p) => p.pace(at_most),
            None => std::thread::yield_now(),
        }
    }

    /// The running broker's process id.
    pub fn pid(&self) -> u32 {
        self.proc.as_ref().expect("a running broker").id()
    }

    /// SIGKILL: the broker gets no chance to flush or sync anything.
    pub fn kill9(&mut self) {
        let mut p = self.proc.take().expect("kill9 on a running broker");
        p.kill();
        self.note(&format!("killed pid {} with SIGKILL", p.id()));
    }

    /// Starts the broker again on the same port and data directory and waits until it accepts
    /// connections.
    pub fn restart(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
        self.spawn_and_wait_ready();
    }

    /// SIGTERM, then waits (bounded) for the broker to exit and returns how it exited. Panics
    /// with the log tail if it does not exit in time (and SIGKILLs it).
    pub fn terminate(&mut self) -> ExitStatus {
        let mut p = self.proc.take().expect("terminate on a running broker");
        let pid = p.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("running `kill -TERM`");
        assert!(sent.success(), "`kill -TERM {pid}` failed: {sent}");
        match p.wait_exit(TERMINATE_WITHIN) {
            Some(status) => {
                self.note(&format!("pid {pid} exited after SIGTERM: {status}"));
                status
            }
            None => {
                p.kill();
                panic!(
                    "broker pid {pid} did not exit within {TERMINATE_WITHIN:?} of SIGTERM; \
                     killed it\n{}",
                    self.describe()
                );
            }
        }
    }

    /// Waits (bounded by `within`) until the log holds `needle` at least `count` times, woken by
    /// the broker's output rather than sleeping. Returns the log tail either way.
    pub fn wait_for_log(&self, needle: &str, count: usize, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if log.matches(needle).count() >= count || Instant::now() >= deadline {
                return self.log_tail();
            }
            match &self.proc {
                Some(p) => p.pace(deadline.saturating_duration_since(Instant::now())),
                None => return self.log_tail(),
            }
        }
    }

    /// The last lines of the broker's log (all its runs, in order).
    pub fn log_tail(&self) -> String {
        file_tail(&self.log, TAIL_LINES)
    }

    fn spawn_and_wait_ready(&mut self) {
        let bin = sluice_bin();
        let addr = SocketAddr::from((self.spec.host, self.spec.port));
        let peer = self.peer_addr();
        let prefix = if self.spec.prefix.is_empty() {
            String::new()
        } else {
            format!("{} ", self.spec.prefix.join(" "))
        };
        self.note(&format!(
            "starting {prefix}{} broker --data-dir {} --listen {addr} --peer-listen {peer} {}",
            bin.display(),
            self.data_dir.display(),
            self.spec.args.join(" ")
        ));
        // With a prefix, readiness is one more start-up line in the log than before the spawn.
        let started_before = self.started_lines();
        let mut cmd = match self.spec.prefix.split_first() {
            None => Command::new(&bin),
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(&bin);
                c
            }
        };
        cmd.arg("broker")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--peer-listen")
            .arg(&peer)
            // Tests run brokers side by side: an ephemeral metrics port avoids clashes.
            .arg("--metrics-listen")
            .arg("127.0.0.1:0")
            .args(&self.spec.args)
            .env("RUST_BACKTRACE", "1");
        let mut p = CapturedChild::spawn(&mut cmd, &self.log);
        let started = Instant::now();
        let deadline = started + READY_WITHIN;
        loop {
            let ready = if self.spec.prefix.is_empty() {
                TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
            } else {
                self.started_lines() > started_before
            };
            if ready {
                self.note(&format!(
                    "accepting on {addr} after {:?}",
                    started.elapsed()
                ));
                self.proc = Some(p);
                return;
            }
            if let Some(status) = p.exited() {
                p.join_pumps();
                panic!(
                    "broker exited before accepting connections on {addr}: {status}\n{}",
                    self.describe()
                );
            }
            let now = Instant::now();
            if now >= deadline {
                p.kill();
                panic!(
                    "broker did not accept connections on {addr} within {READY_WITHIN:?}\n{}",
                    self.describe()
                );
            }
            p.pace(POLL_EVERY.min(deadline - now));
        }
    }

    /// How many times the log says a broker started listening (all runs).
    fn started_lines(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .matches(STARTED_LINE)
            .count()
    }

    /// Harness notes go into the broker log too, so the log reads as one story.
    fn note(&self, what: &str) {
        let _ = writeln!(open_append(&self.log), "[broker_proc] {what}");
    }

    fn describe(&self) -> String {
        format!(
            "--- broker log {} (last {TAIL_LINES} lines) ---\n{}\n--- end of broker log ---",
            self.log.display(),
            self.log_tail()
        )
    }
}

impl Drop for BrokerProc {
    fn drop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
        if std::thread::panicking() {
            eprintln!("broker log kept at {}", self.log.display());
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// Starts three brokers on free loopback ports that know each other as the metadata voters
/// (node ids 1 to 3, data in `<dir>/node<id>`), each with `extra` flags too. Index i holds node
/// id i + 1.
pub fn start_voter_cluster(dir: &Path, extra: &[&str]) -> Vec<BrokerProc> {
    let specs: Vec<BrokerSpec> = (0..3).map(|_| BrokerSpec::free()).collect();
    let voters = specs
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{}=127.0.0.1:{}", i + 1, s.peer_port))
        .collect::<Vec<_>>()
        .join(",");
    specs
        .into_iter()
        .enumerate()
        .map(|(i, mut spec)| {
            spec.args = vec![
                "--node-id".into(),
                (i + 1).to_string(),
                "--voters".into(),
                voters.clone(),
            ];
            spec.args.extend(extra.iter().map(|a| a.to_string()));
            BrokerProc::start_with(&dir.join(format!("node{}", i + 1)), spec)
        })
        .collect()
}

/// A finished command's stdout and stderr, as text.
pub fn output_text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `n` distinct ports that were free a moment ago: bind port 0 `n` times (holding every
/// listener until all are bound, so no port comes back twice), read the ports, close the
/// listeners. Another process could take one before the broker binds; on loopback in a test run
/// that is rare, and the broker then fails to start with a clear log line.
pub fn free_loopback_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("bound address").port())
        .collect()
}
