//! A plain in-memory `Disk` for unit tests: every write is immediately durable, no faults.
//! The simulator has the faulty one (lost unsynced writes, torn writes, bit flips, errors).

use super::disk::{Disk, DiskError, DiskErrorKind};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub(crate) struct MemDisk {
    pub files: BTreeMap<String, Vec<u8>>,
}

impl MemDisk {
    fn file(&mut self, path: &str) -> Result<&mut Vec<u8>, DiskError> {
        self.files
            .get_mut(path)
            .ok_or_else(|| DiskError::not_found(path))
    }
}

impl Disk for MemDisk {
    fn list(&mut self, dir: &str) -> Result<Vec<String>, DiskError> {
        Ok(super::disk::names_in_dir(self.files.keys(), dir))
    }
    fn len(&mut self, path: &str) -> Result<u64, DiskError> {
        Ok(self.file(path)?.len() as u64)
    }
    fn read(&mut self, path: &str, pos: u64, len: usize) -> Result<Vec<u8>, DiskError> {
        let f = self.file(path)?;
        let start = (pos as usize).min(f.len());
        let end = start.saturating_add(len).min(f.len());
        Ok(f[start..end].to_vec())
    }
    fn append(&mut self, path: &str, data: &[u8]) -> Result<(), DiskError> {
        self.files
            .entry(path.to_string())
            .or_default()
            .extend_from_slice(data);
        Ok(())
    }
    fn sync(&mut self, path: &str) -> Result<(), DiskError> {
        self.file(path).map(|_| ())
    }
    fn truncate(&mut self, path: &str, len: u64) -> Result<(), DiskError> {
        self.file(path)?.truncate(len as usize);
        Ok(())
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        let data = self
            .files
            .remove(from)
            .ok_or_else(|| DiskError::not_found(from))?;
        self.files.insert(to.to_string(), data);
        Ok(())
    }
    fn remove(&mut self, path: &str) -> Result<(), DiskError> {
        self.files
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| DiskError::new(DiskErrorKind::NotFound, path, "no such file"))
    }
    fn sync_dir(&mut self, _dir: &str) -> Result<(), DiskError> {
        Ok(())
    }
}
