//! The snapshots of a directory: listing, deleting, and cleaning up what a
//! crash left behind.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use super::error::io_error;
use super::id::FileKind;
use super::{SnapshotError, SnapshotId};

/// Makes renames and removals in `dir` durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), SnapshotError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

/// Creates `dir` if needed and the empty `.checkpoint.part` file of snapshot
/// `id`, unless that snapshot is already complete.
pub(super) fn create_partial(dir: &Path, id: SnapshotId) -> Result<(PathBuf, File), SnapshotError> {
    if !id.is_valid() {
        return Err(SnapshotError::InvalidId(id));
    }
    let complete = id.path(dir, FileKind::Complete);
    if complete.exists() {
        return Err(SnapshotError::AlreadyExists(complete));
    }
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    let part = id.path(dir, FileKind::Partial);
    let file = File::create(&part).map_err(io_error(&part))?;
    Ok((part, file))
}

/// Every snapshot file of `dir` with its id and state; a missing directory has none.
fn scan(dir: &Path) -> Result<Vec<(SnapshotId, FileKind, PathBuf)>, SnapshotError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(dir)(e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_error(dir))?;
        if let Some((id, kind)) = entry.file_name().to_str().and_then(SnapshotId::parse) {
            found.push((id, kind, entry.path()));
        }
    }
    Ok(found)
}

/// The complete snapshots of `dir`, oldest first.
pub fn list_snapshots(dir: &Path) -> Result<Vec<SnapshotId>, SnapshotError> {
    let mut ids: Vec<SnapshotId> = scan(dir)?
        .into_iter()
        .filter(|(_, kind, _)| *kind == FileKind::Complete)
        .map(|(id, _, _)| id)
        .collect();
    ids.sort();
    Ok(ids)
}

/// The newest complete snapshot of `dir`.
pub fn latest_snapshot(dir: &Path) -> Result<Option<SnapshotId>, SnapshotError> {
    Ok(list_snapshots(dir)?.pop())
}

/// Deletes snapshot `id`: renamed to `.checkpoint.deleted` first, so that a
/// crash midway never leaves a snapshot that looks usable, then removed.
pub fn delete_snapshot(dir: &Path, id: SnapshotId) -> Result<(), SnapshotError> {
    let complete = id.path(dir, FileKind::Complete);
    let deleted = id.path(dir, FileKind::Deleted);
    fs::rename(&complete, &deleted).map_err(io_error(&complete))?;
    sync_dir(dir)?;
    fs::remove_file(&deleted).map_err(io_error(&deleted))
}

/// Deletes every complete snapshot older than `id`; returns the ids deleted.
pub fn delete_before(dir: &Path, id: SnapshotId) -> Result<Vec<SnapshotId>, SnapshotError> {
    let older: Vec<SnapshotId> = list_snapshots(dir)?
        .into_iter()
        .filter(|old| *old < id)
        .collect();
    for old in &older {
        delete_snapshot(dir, *old)?;
    }
    Ok(older)
}

/// Removes the `.checkpoint.part` and `.checkpoint.deleted` files a crash left;
/// run at startup, before anything writes snapshots. Returns how many.
pub fn clean_up_partial(dir: &Path) -> Result<usize, SnapshotError> {
    let mut removed = 0;
    for (_, kind, path) in scan(dir)? {
        if kind != FileKind::Complete {
            fs::remove_file(&path).map_err(io_error(&path))?;
            removed += 1;
        }
    }
    if removed > 0 {
        sync_dir(dir)?;
    }
    Ok(removed)
}
