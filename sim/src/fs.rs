//! A simulated file system implementing `sluice_core::storage::Disk`, with the fault model of
//! real disks under crashes. The storage engine runs on it unchanged.
//!
//! Fault model:
//! - Data: appended bytes sit in a volatile page cache until `sync` on that file. A crash keeps
//!   the durable bytes plus a random prefix of the unsynced appends (a torn write, cut at any
//!   byte); a kept unsynced byte may be garbage (a torn sector), which the engine's checksums
//!   must catch. An unsynced truncation is either kept or undone.
//! - Names: creating, renaming and removing files are directory operations, durable once
//!   `sync_dir` on their directory returns. A crash keeps a random prefix (in issue order) of
//!   the unsynced ones, as a journaling file system may: an unlink may survive while the file
//!   created after it does not, and a file whose data was synced but whose directory entry was
//!   not may disappear.
//! - Errors: with configured probabilities a write or sync fails with an IO error (the node
//!   must stop: the driver crashes it, and it recovers on restart).
//!
//! Not modelled: corruption of synced data at rest (Raft, like Kafka, assumes durable storage
//! does not silently lose acknowledged data; surviving that needs protocol-aware recovery),
//! misdirected writes, and read errors.

use sluice_core::rng::DetRng;
use sluice_core::storage::{names_in_dir, Disk, DiskError, DiskErrorKind};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default)]
struct Inode {
    /// What survives a crash.
    durable: Vec<u8>,
    /// What reads see.
    current: Vec<u8>,
    /// `current[..common] == durable[..common]`.
    common: usize,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FsFaults {
    /// Probability, in parts per million, that an append or a sync fails.
    pub io_error_ppm: u32,
    /// Probability that a torn unsynced tail kept by a crash carries a garbage byte.
    pub garbage_ppm: u32,
    /// Whether a crash may keep a prefix of unsynced bytes at all.
    pub torn_writes: bool,
}

#[derive(Clone, Debug)]
enum DirOp {
    Link { name: String, id: usize },
    Unlink { name: String },
}

impl DirOp {
    fn name(&self) -> &str {
        match self {
            DirOp::Link { name, .. } | DirOp::Unlink { name } => name,
        }
    }

    /// Applies the operation; returns the inode a link replaced.
    fn apply(&self, names: &mut BTreeMap<String, usize>) -> Option<usize> {
        match self {
            DirOp::Link { name, id } => names.insert(name.clone(), *id),
            DirOp::Unlink { name } => {
                names.remove(name);
                None
            }
        }
    }
}

#[derive(Debug, Default)]
pub struct SimFs {
    inodes: Vec<Inode>,
    names: BTreeMap<String, usize>,
    durable_names: BTreeMap<String, usize>,
    /// Directory operations not yet made durable by a `sync_dir`, in issue order.
    pending_dir_ops: Vec<DirOp>,
    pub faults: FsFaults,
    pub io_errors: u64,
    /// A planted disk bug (checker tests only): a crash undoes every durable replacement, since
    /// the previous crash, of the files whose names end with this suffix, as a disk that
    /// acknowledges directory syncs it never performed would.
    pub lying_suffix: Option<&'static str>,
    /// For `lying_suffix`: the inode each such name durably pointed to at the previous crash.
    superseded: BTreeMap<String, usize>,
}

fn dir_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

impl SimFs {
    pub fn new() -> SimFs {
        SimFs::default()
    }

    fn inode(&mut self, path: &str) -> Result<&mut Inode, DiskError> {
        let id = *self
            .names
            .get(path)
            .ok_or_else(|| DiskError::not_found(path))?;
        Ok(&mut self.inodes[id])
    }

    fn maybe_fail(&mut self, rng: &mut DetRng, path: &str, op: &str) -> Result<(), DiskError> {
        if rng.chance_ppm(self.faults.io_error_ppm) {
            self.io_errors += 1;
            return Err(DiskError::new(
                DiskErrorKind::Io,
                path,
                format!("injected {op} error"),
            ));
        }
        Ok(())
    }

    /// Bytes in the volatile page cache not yet synced, over all files.
    pub fn unsynced_bytes(&self) -> usize {
        self.names
            .values()
            .map(|&i| self.inodes[i].current.len() - self.inodes[i].common)
            .sum()
    }

    /// A power cut: the page cache and unsynced directory changes are lost, except that a
    /// random prefix of each file's unsynced appends may have reached the disk. Returns how
    /// many unsynced bytes were lost.
    pub fn crash(&mut self, rng: &mut DetRng) -> usize {
        let mut lost = 0;
        let faults = self.faults;
        for inode in &mut self.inodes {
            let unsynced = inode.current.len() - inode.common;
            let truncated_unsynced = inode.common < inode.durable.len();
            if truncated_unsynced && rng.coin() {
                // The truncation never reached the disk.
                lost += unsynced;
                inode.current = inode.durable.clone();
            } else {
                let keep = if faults.torn_writes {
                    rng.range_inclusive(0, unsynced as u64) as usize
                } else {
                    0
                };
                lost += unsynced - keep;
                inode.current.truncate(inode.common + keep);
                if keep > 0 && rng.chance_ppm(faults.garbage_ppm) {
                    let at = inode.common + rng.index(keep);
                    inode.current[at] ^= 1 << rng.range(0, 8);
                }
            }
            inode.durable = inode.current.clone();
            inode.common = inode.current.len();
        }
        let keep = rng.range_inclusive(0, self.pending_dir_ops.len() as u64) as usize;
        for op in self.pending_dir_ops.drain(..).take(keep) {
            op.apply(&mut self.durable_names);
        }
        for (name, id) in std::mem::take(&mut self.superseded) {
            self.durable_names.insert(name, id);
        }
        self.names = self.durable_names.clone();
        lost
    }
}

/// The simulator threads its disk RNG through every call; `SimFsHandle` pairs them so the
/// storage engine sees a plain `Disk`.
#[derive(Debug)]
pub struct SimFsHandle<'a> {
    pub fs: &'a mut SimFs,
    pub rng: &'a mut DetRng,
}

impl Disk for SimFsHandle<'_> {
    fn list(&mut self, dir: &str) -> Result<Vec<String>, DiskError> {
        Ok(names_in_dir(self.fs.names.keys(), dir))
    }

    fn len(&mut self, path: &str) -> Result<u64, DiskError> {
        Ok(self.fs.inode(path)?.current.len() as u64)
    }

    fn read(&mut self, path: &str, pos: u64, len: usize) -> Result<Vec<u8>, DiskError> {
        let f = &self.fs.inode(path)?.current;
        let start = (pos as usize).min(f.len());
        let end = start.saturating_add(len).min(f.len());
        Ok(f[start..end].to_vec())
    }

    fn append(&mut self, path: &str, data: &[u8]) -> Result<(), DiskError> {
        self.fs.maybe_fail(self.rng, path, "write")?;
        let id = match self.fs.names.get(path) {
            Some(&id) => id,
            None => {
                self.fs.inodes.push(Inode::default());
                let id = self.fs.inodes.len() - 1;
                self.fs.names.insert(path.to_string(), id);
                self.fs.pending_dir_ops.push(DirOp::Link {
                    name: path.to_string(),
                    id,
                });
                id
            }
        };
        self.fs.inodes[id].current.extend_from_slice(data);
        Ok(())
    }

    fn sync(&mut self, path: &str) -> Result<(), DiskError> {
        self.fs.maybe_fail(self.rng, path, "fsync")?;
        let inode = self.fs.inode(path)?;
        let common = inode.common;
        inode.durable.truncate(common);
        let tail = inode.current[common..].to_vec();
        inode.durable.extend_from_slice(&tail);
        inode.common = inode.current.len();
        Ok(())
    }

    fn truncate(&mut self, path: &str, len: u64) -> Result<(), DiskError> {
        let inode = self.fs.inode(path)?;
        let len = len as usize;
        if len < inode.current.len() {
            inode.current.truncate(len);
            inode.common = inode.common.min(len);
        }
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        let id = self
            .fs
            .names
            .remove(from)
            .ok_or_else(|| DiskError::not_found(from))?;
        self.fs.names.insert(to.to_string(), id);
        self.fs.pending_dir_ops.push(DirOp::Link {
            name: to.to_string(),
            id,
        });
        self.fs.pending_dir_ops.push(DirOp::Unlink {
            name: from.to_string(),
        });
        Ok(())
    }

    fn remove(&mut self, path: &str) -> Result<(), DiskError> {
        self.fs
            .names
            .remove(path)
            .ok_or_else(|| DiskError::not_found(path))?;
        self.fs.pending_dir_ops.push(DirOp::Unlink {
            name: path.to_string(),
        });
        Ok(())
    }

    fn sync_dir(&mut self, dir: &str) -> Result<(), DiskError> {
        self.fs.maybe_fail(self.rng, dir, "directory fsync")?;
        let (synced, pending): (Vec<DirOp>, Vec<DirOp>) =
            std::mem::take(&mut self.fs.pending_dir_ops)
                .into_iter()
                .partition(|op| dir_of(op.name()) == dir);
        for op in &synced {
            let replaced = op.apply(&mut self.fs.durable_names);
            if let (Some(suffix), Some(old)) = (self.fs.lying_suffix, replaced) {
                if op.name().ends_with(suffix) {
                    self.fs
                        .superseded
                        .entry(op.name().to_string())
                        .or_insert(old);
                }
            }
        }
        self.fs.pending_dir_ops = pending;
        Ok(())
    }
}
