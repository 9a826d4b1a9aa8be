//! Small state files written atomically (write a temporary file, sync it, rename it over the
//! old one, sync the directory) and read back with a checksum, so a crash leaves either the old
//! or the new content, never a mix, and a torn or bit-flipped file is detected, not trusted.
//!
//! Format: `SLST` magic, u32 length, payload, u32 CRC32C of the payload (all big-endian).

use super::disk::{parent, Disk, DiskError, DiskErrorKind};
use std::fmt;

const MAGIC: &[u8; 4] = b"SLST";

#[derive(Debug, PartialEq, Eq)]
pub enum StateFileError {
    Disk(DiskError),
    /// The file exists but is not a valid state file (torn, truncated or corrupted).
    Corrupt {
        path: String,
        detail: String,
    },
}

impl fmt::Display for StateFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateFileError::Disk(e) => write!(f, "{e}"),
            StateFileError::Corrupt { path, detail } => {
                write!(f, "corrupt state file {path}: {detail}")
            }
        }
    }
}

impl std::error::Error for StateFileError {}

impl From<DiskError> for StateFileError {
    fn from(e: DiskError) -> Self {
        StateFileError::Disk(e)
    }
}

pub fn write_state_file(disk: &mut dyn Disk, path: &str, payload: &[u8]) -> Result<(), DiskError> {
    let tmp = format!("{path}.tmp");
    match disk.remove(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind == DiskErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut bytes = Vec::with_capacity(payload.len() + 12);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    disk.append(&tmp, &bytes)?;
    disk.sync(&tmp)?;
    disk.rename(&tmp, path)?;
    disk.sync_dir(parent(path))
}

/// `Ok(None)` if the file does not exist.
pub fn read_state_file(disk: &mut dyn Disk, path: &str) -> Result<Option<Vec<u8>>, StateFileError> {
    let len = match disk.len(path) {
        Ok(len) => len,
        Err(e) if e.kind == DiskErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let corrupt = |detail: String| StateFileError::Corrupt {
        path: path.to_string(),
        detail,
    };
    if len < 12 {
        return Err(corrupt(format!(
            "{len} bytes is shorter than a state file header"
        )));
    }
    let bytes = disk.read(path, 0, len as usize)?;
    if &bytes[..4] != MAGIC {
        return Err(corrupt("bad magic".into()));
    }
    let declared = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    if declared + 12 != bytes.len() {
        return Err(corrupt(format!(
            "declares {declared} payload bytes, file has {}",
            bytes.len() - 12
        )));
    }
    let payload = &bytes[8..8 + declared];
    let stored = u32::from_be_bytes([
        bytes[8 + declared],
        bytes[9 + declared],
        bytes[10 + declared],
        bytes[11 + declared],
    ]);
    let computed = crc32c::crc32c(payload);
    if stored != computed {
        return Err(corrupt(format!("crc {stored:08x} != {computed:08x}")));
    }
    Ok(Some(payload.to_vec()))
}
