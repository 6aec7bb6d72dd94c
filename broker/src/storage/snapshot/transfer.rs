//! Snapshot bytes as FetchSnapshot moves them: the leader serves chunks of
//! its file; a follower appends them to `.checkpoint.part` and keeps the
//! snapshot only if the whole file checks out.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::error::io_error;
use super::files::{create_partial, sync_dir};
use super::id::FileKind;
use super::{SnapshotError, SnapshotId, SnapshotReader};

/// A complete snapshot file served by position, as the leader answers FetchSnapshot.
pub struct RawSnapshot {
    id: SnapshotId,
    path: PathBuf,
    file: File,
    size: u64,
}

impl RawSnapshot {
    pub fn open(dir: &Path, id: SnapshotId) -> Result<Self, SnapshotError> {
        let path = id.path(dir, FileKind::Complete);
        let file = File::open(&path).map_err(io_error(&path))?;
        let size = file.metadata().map_err(io_error(&path))?.len();
        Ok(RawSnapshot {
            id,
            path,
            file,
            size,
        })
    }

    pub fn id(&self) -> SnapshotId {
        self.id
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Up to `max_bytes` from `position`, which must lie inside the file.
    pub fn read_chunk(&self, position: u64, max_bytes: usize) -> Result<Bytes, SnapshotError> {
        if position >= self.size {
            return Err(SnapshotError::PositionOutOfRange {
                path: self.path.clone(),
                position,
                size: self.size,
            });
        }
        let len = (self.size - position).min(max_bytes as u64) as usize;
        let mut chunk = vec![0u8; len];
        self.file
            .read_exact_at(&mut chunk, position)
            .map_err(io_error(&self.path))?;
        Ok(Bytes::from(chunk))
    }
}

/// A snapshot arriving in chunks at increasing positions; dropped before
/// [`Self::finish`], it leaves no file.
pub struct IncomingSnapshot {
    id: SnapshotId,
    dir: PathBuf,
    part: PathBuf,
    file: File,
    received: u64,
    size: u64,
    finished: bool,
}

impl IncomingSnapshot {
    /// Starts receiving snapshot `id` of `size` bytes (FetchSnapshot's `Size`).
    pub fn create(dir: &Path, id: SnapshotId, size: u64) -> Result<Self, SnapshotError> {
        let (part, file) = create_partial(dir, id)?;
        Ok(IncomingSnapshot {
            id,
            dir: dir.to_path_buf(),
            part,
            file,
            received: 0,
            size,
            finished: false,
        })
    }

    pub fn id(&self) -> SnapshotId {
        self.id
    }

    /// Bytes received so far: the position to fetch next.
    pub fn position(&self) -> u64 {
        self.received
    }

    pub fn is_complete(&self) -> bool {
        self.received == self.size
    }

    /// Appends the chunk that starts at `position`, which must be the next byte.
    pub fn append(&mut self, position: u64, chunk: &[u8]) -> Result<(), SnapshotError> {
        if position != self.received {
            return Err(SnapshotError::UnexpectedPosition {
                path: self.part.clone(),
                position,
                expected: self.received,
            });
        }
        let received = self.received + chunk.len() as u64;
        if received > self.size {
            return Err(SnapshotError::SizeMismatch {
                path: self.part.clone(),
                received,
                size: self.size,
            });
        }
        self.file.write_all(chunk).map_err(io_error(&self.part))?;
        self.received = received;
        Ok(())
    }

    /// Checks the whole file, then syncs and renames it into place; returns
    /// its records. A damaged snapshot is removed and reported.
    pub fn finish(mut self) -> Result<SnapshotReader, SnapshotError> {
        if !self.is_complete() {
            return Err(SnapshotError::SizeMismatch {
                path: self.part.clone(),
                received: self.received,
                size: self.size,
            });
        }
        self.file.sync_all().map_err(io_error(&self.part))?;
        // On error, dropping `self` removes the part file.
        let mut reader = SnapshotReader::read_file(&self.part, self.id)?;
        let complete = self.id.path(&self.dir, FileKind::Complete);
        fs::rename(&self.part, &complete).map_err(io_error(&complete))?;
        self.finished = true;
        sync_dir(&self.dir)?;
        reader.set_path(complete);
        Ok(reader)
    }
}

impl Drop for IncomingSnapshot {
    fn drop(&mut self) {
        if !self.finished {
            // Best effort: a leftover is also removed at the next startup.
            let _ = fs::remove_file(&self.part);
        }
    }
}
