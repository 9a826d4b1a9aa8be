//! Architecture invariants (ARCHITECTURE.md), checked as ordinary tests.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("readable dir")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if p.file_name()
                .is_some_and(|n| n == "target" || n == "snapshots")
            {
                continue;
            }
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// Every Rust source file of the workspace's crates and their tests.
fn all_sources() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in [
        "core/src",
        "sim/src",
        "scenarios/src",
        "scenarios/tests",
        "runtime-tokio/src",
        "tests/it",
    ] {
        rust_files(&root().join(dir), &mut files);
    }
    files
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn dependencies(manifest: &Path) -> Vec<String> {
    let doc: toml::Table = read(manifest).parse().expect("valid Cargo.toml");
    let mut deps: Vec<String> = doc
        .get("dependencies")
        .and_then(|d| d.as_table())
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default();
    deps.sort();
    deps
}

/// Code without comments, so prose may name what code may not use.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l))
}

#[test]
fn core_depends_only_on_allowed_crates() {
    let allowed = [
        "bincode",
        "bytes",
        "crc32c",
        "rand_chacha",
        "rand_core",
        "serde",
    ];
    for dep in dependencies(&root().join("core/Cargo.toml")) {
        assert!(
            allowed.contains(&dep.as_str()),
            "sluice-core may not depend on {dep}: it must stay sans-IO"
        );
    }
}

#[test]
fn core_does_no_io_reads_no_clock_and_iterates_no_hash_maps() {
    let banned = [
        "std::net",
        "std::fs",
        "std::thread",
        "std::process",
        "std::env",
        "Instant::now",
        "SystemTime",
        "thread_rng",
        "OsRng",
        "rand::random",
        "tokio",
        "HashMap",
        "HashSet",
        "unsafe ",
    ];
    let mut files = Vec::new();
    rust_files(&root().join("core/src"), &mut files);
    assert!(files.len() > 5);
    let mut hits = Vec::new();
    for f in &files {
        let text = read(f);
        for (n, line) in code_lines(&text) {
            for b in banned {
                if line.contains(b) {
                    hits.push(format!("{}:{n}: {b}: {}", f.display(), line.trim()));
                }
            }
        }
    }
    assert!(
        hits.is_empty(),
        "banned in sluice-core:\n{}",
        hits.join("\n")
    );
}

#[test]
fn dependency_direction_is_respected() {
    let r = root();
    assert!(
        !dependencies(&r.join("sim/Cargo.toml")).contains(&"sluice".to_string()),
        "sim must not depend on runtime-tokio"
    );
    assert!(
        !dependencies(&r.join("core/Cargo.toml"))
            .iter()
            .any(|d| d.starts_with("sluice")),
        "core depends on no sibling"
    );
    let runtime = dependencies(&r.join("runtime-tokio/Cargo.toml"));
    assert!(
        !runtime
            .iter()
            .any(|d| d == "sluice-sim" || d == "sluice-scenarios"),
        "the product does not ship the simulator"
    );
}

#[test]
fn core_and_sim_forbid_unsafe_code() {
    for lib in ["core/src/lib.rs", "sim/src/lib.rs", "scenarios/src/lib.rs"] {
        assert!(
            read(&root().join(lib)).contains("#![forbid(unsafe_code)]"),
            "{lib}"
        );
    }
}

#[test]
fn core_has_a_clippy_config_banning_clocks_io_and_hash_maps() {
    let text = read(&root().join("core/clippy.toml"));
    for needle in [
        "std::time::Instant::now",
        "std::time::SystemTime::now",
        "std::collections::HashMap",
        "std::thread::spawn",
    ] {
        assert!(text.contains(needle), "core/clippy.toml must ban {needle}");
    }
}

#[test]
fn every_source_file_says_what_it_owns() {
    let files = all_sources();
    let missing: Vec<String> = files
        .iter()
        .filter(|f| !read(f).trim_start().starts_with("//!"))
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a leading //! comment:\n{}",
        missing.join("\n")
    );
}

#[test]
fn no_test_is_ignored_and_no_test_sleeps_to_wait() {
    let files = all_sources();
    let needles = [concat!("#[", "ignore"), concat!("thread::", "sleep")];
    // The product's client tools back off between retries, as Kafka clients do
    // (retry.backoff.ms); that is not a test waiting for something.
    let product_backoff = root().join("runtime-tokio/src/client.rs");
    let mut hits = Vec::new();
    for f in &files {
        for (n, line) in code_lines(&read(f)) {
            for needle in needles {
                if needle.ends_with("sleep") && *f == product_backoff {
                    continue;
                }
                if line.contains(needle) {
                    hits.push(format!("{}:{n}: {}", f.display(), line.trim()));
                }
            }
        }
    }
    assert!(hits.is_empty(), "{}", hits.join("\n"));
}
