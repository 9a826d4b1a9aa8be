//! The storage engine's `Disk` on real files. Used only from the storage thread (blocking
//! calls), never from async tasks.
//!
//! Paths are absolute (under the data directory). Parent directories are created on first
//! append. Open files are cached so an append is one `write` call; `sync` is `fdatasync`, and
//! `sync_dir` fsyncs the directory so creates, renames and removes are durable.

use sluice_core::storage::{Disk, DiskError, DiskErrorKind};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Most files kept open at once; past this the cache is emptied (segments are few per
/// partition, so this only matters with many partitions).
const MAX_OPEN_FILES: usize = 4096;

#[derive(Debug, Default)]
pub struct FileDisk {
    open: HashMap<String, File>,
}

fn err(path: &str, e: io::Error) -> DiskError {
    let kind = if e.kind() == io::ErrorKind::NotFound {
        DiskErrorKind::NotFound
    } else {
        DiskErrorKind::Io
    };
    DiskError::new(kind, path, e.to_string())
}

impl FileDisk {
    pub fn new() -> FileDisk {
        FileDisk::default()
    }

    fn file(&mut self, path: &str, create: bool) -> Result<&File, DiskError> {
        if !self.open.contains_key(path) {
            if self.open.len() >= MAX_OPEN_FILES {
                self.open.clear();
            }
            if create {
                if let Some(parent) = Path::new(path).parent() {
                    fs::create_dir_all(parent).map_err(|e| err(path, e))?;
                }
            }
            let f = OpenOptions::new()
                .read(true)
                .append(true)
                .create(create)
                .open(path)
                .map_err(|e| err(path, e))?;
            self.open.insert(path.to_string(), f);
        }
        Ok(&self.open[path])
    }
}

impl Disk for FileDisk {
    fn list(&mut self, dir: &str) -> Result<Vec<String>, DiskError> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(err(dir, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| err(dir, e))?;
            if entry.file_type().map_err(|e| err(dir, e))?.is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    fn len(&mut self, path: &str) -> Result<u64, DiskError> {
        fs::metadata(path)
            .map(|m| m.len())
            .map_err(|e| err(path, e))
    }

    fn read(&mut self, path: &str, pos: u64, len: usize) -> Result<Vec<u8>, DiskError> {
        let f = self.file(path, false)?;
        let size = f.metadata().map_err(|e| err(path, e))?.len();
        let len = len.min(size.saturating_sub(pos) as usize);
        let mut buf = vec![0u8; len];
        f.read_exact_at(&mut buf, pos).map_err(|e| err(path, e))?;
        Ok(buf)
    }

    fn append(&mut self, path: &str, data: &[u8]) -> Result<(), DiskError> {
        let mut f = self.file(path, true)?;
        f.write_all(data).map_err(|e| err(path, e))
    }

    fn sync(&mut self, path: &str) -> Result<(), DiskError> {
        self.file(path, false)?
            .sync_data()
            .map_err(|e| err(path, e))
    }

    fn truncate(&mut self, path: &str, len: u64) -> Result<(), DiskError> {
        self.file(path, false)?
            .set_len(len)
            .map_err(|e| err(path, e))
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        self.open.remove(from);
        self.open.remove(to);
        fs::rename(from, to).map_err(|e| err(from, e))
    }

    fn remove(&mut self, path: &str) -> Result<(), DiskError> {
        self.open.remove(path);
        fs::remove_file(path).map_err(|e| err(path, e))
    }

    fn sync_dir(&mut self, dir: &str) -> Result<(), DiskError> {
        match File::open(dir) {
            Ok(d) => d.sync_all().map_err(|e| err(dir, e)),
            // A directory never created holds nothing to make durable.
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(err(dir, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_behave_as_the_disk_contract_says() {
        let root = std::env::temp_dir().join(format!("sluice-disk-{}", std::process::id()));
        let dir = format!("{}/a/b", root.display());
        let mut d = FileDisk::new();
        assert_eq!(d.list(&dir).unwrap(), Vec::<String>::new());
        let f = format!("{dir}/x");
        d.append(&f, b"hello ").unwrap();
        d.append(&f, b"world").unwrap();
        d.sync(&f).unwrap();
        d.sync_dir(&dir).unwrap();
        assert_eq!(d.len(&f).unwrap(), 11);
        assert_eq!(d.read(&f, 6, 100).unwrap(), b"world");
        d.truncate(&f, 5).unwrap();
        d.append(&f, b"!").unwrap();
        assert_eq!(d.read(&f, 0, 100).unwrap(), b"hello!");
        let g = format!("{dir}/y");
        d.rename(&f, &g).unwrap();
        assert_eq!(d.list(&dir).unwrap(), vec!["y".to_string()]);
        assert_eq!(d.read(&f, 0, 1).unwrap_err().kind, DiskErrorKind::NotFound);
        d.remove(&g).unwrap();
        assert!(d.list(&dir).unwrap().is_empty());
        fs::remove_dir_all(root).unwrap();
    }
}
