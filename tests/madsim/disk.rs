//! A broker's disk in a madsim run: the state-machine simulator's crash-model file system
//! (`sluice_sim::fs::SimFs`), shared between the node's storage worker and the test so that it
//! outlives the node. Appends sit in a page cache until synced; [`SharedDisk::crash`], called
//! when the test kills the node, keeps only what was synced plus a torn prefix of the rest
//! (sometimes with a flipped byte, which the engine's checksums must catch), and undoes
//! unsynced directory changes, as a power cut does.

use sluice_core::rng::DetRng;
use sluice_core::storage::{Disk, DiskError};
use sluice_sim::fs::{FsFaults, SimFs, SimFsHandle};
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub struct SharedDisk {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    fs: SimFs,
    rng: DetRng,
}

impl SharedDisk {
    /// An empty disk; `seed` drives what a crash keeps.
    pub fn new(seed: u64) -> SharedDisk {
        let mut fs = SimFs::new();
        fs.faults = FsFaults {
            io_error_ppm: 0,
            garbage_ppm: 100_000,
            torn_writes: true,
        };
        SharedDisk {
            inner: Arc::new(Mutex::new(Inner {
                fs,
                rng: DetRng::new(seed),
            })),
        }
    }

    /// A power cut (the node must be dead): unsynced writes are lost. Returns the bytes lost.
    pub fn crash(&self) -> usize {
        self.with(|h| h.fs.crash(h.rng))
    }

    fn with<T>(&self, f: impl FnOnce(&mut SimFsHandle<'_>) -> T) -> T {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Inner { fs, rng } = &mut *guard;
        f(&mut SimFsHandle { fs, rng })
    }
}

impl Disk for SharedDisk {
    fn list(&mut self, dir: &str) -> Result<Vec<String>, DiskError> {
        self.with(|d| d.list(dir))
    }
    fn len(&mut self, path: &str) -> Result<u64, DiskError> {
        self.with(|d| d.len(path))
    }
    fn read(&mut self, path: &str, pos: u64, len: usize) -> Result<Vec<u8>, DiskError> {
        self.with(|d| d.read(path, pos, len))
    }
    fn append(&mut self, path: &str, data: &[u8]) -> Result<(), DiskError> {
        self.with(|d| d.append(path, data))
    }
    fn sync(&mut self, path: &str) -> Result<(), DiskError> {
        self.with(|d| d.sync(path))
    }
    fn truncate(&mut self, path: &str, len: u64) -> Result<(), DiskError> {
        self.with(|d| d.truncate(path, len))
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        self.with(|d| d.rename(from, to))
    }
    fn remove(&mut self, path: &str) -> Result<(), DiskError> {
        self.with(|d| d.remove(path))
    }
    fn sync_dir(&mut self, dir: &str) -> Result<(), DiskError> {
        self.with(|d| d.sync_dir(dir))
    }
}
