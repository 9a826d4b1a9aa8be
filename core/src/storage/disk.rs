//! The `Disk` trait: the only way the storage engine touches storage.
//!
//! Paths are `/`-separated and relative to the data directory the implementation was opened
//! on. Contract an implementation must honour:
//! - `append` creates the file (and its directory) if missing; appended bytes are durable only
//!   after `sync` on that file returns.
//! - `read` returns at most `len` bytes starting at `pos`; fewer at the end of the file.
//! - `rename` atomically replaces `to`; the rename itself is durable after `sync_dir` on the
//!   directory containing `to`.
//! - Errors are values, never panics.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskErrorKind {
    NotFound,
    /// The device refused or failed the operation.
    Io,
    /// A path the engine cannot use (absolute, `..`, empty).
    InvalidPath,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskError {
    pub kind: DiskErrorKind,
    pub path: String,
    pub detail: String,
}

impl DiskError {
    pub fn new(kind: DiskErrorKind, path: &str, detail: impl Into<String>) -> DiskError {
        DiskError {
            kind,
            path: path.to_string(),
            detail: detail.into(),
        }
    }

    pub fn not_found(path: &str) -> DiskError {
        DiskError::new(DiskErrorKind::NotFound, path, "no such file")
    }
}

impl fmt::Display for DiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} on {}: {}", self.kind, self.path, self.detail)
    }
}

impl std::error::Error for DiskError {}

pub trait Disk {
    /// Names (not paths) of the files directly in `dir`; empty if `dir` does not exist.
    fn list(&mut self, dir: &str) -> Result<Vec<String>, DiskError>;
    fn len(&mut self, path: &str) -> Result<u64, DiskError>;
    fn read(&mut self, path: &str, pos: u64, len: usize) -> Result<Vec<u8>, DiskError>;
    fn append(&mut self, path: &str, data: &[u8]) -> Result<(), DiskError>;
    fn sync(&mut self, path: &str) -> Result<(), DiskError>;
    fn truncate(&mut self, path: &str, len: u64) -> Result<(), DiskError>;
    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError>;
    fn remove(&mut self, path: &str) -> Result<(), DiskError>;
    fn sync_dir(&mut self, dir: &str) -> Result<(), DiskError>;
}

/// The names of the paths directly inside `dir` (not in its subdirectories): the `list`
/// semantics for any `Disk` that keeps a flat map of paths.
pub fn names_in_dir<'a>(paths: impl Iterator<Item = &'a String>, dir: &str) -> Vec<String> {
    let prefix = format!("{dir}/");
    paths
        .filter_map(|k| k.strip_prefix(&prefix))
        .filter(|rest| !rest.contains('/'))
        .map(str::to_string)
        .collect()
}

/// The directory part of a path (`""` for a top-level file).
pub(crate) fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}
