//! Snapshot ids and the file names Kafka derives from them.

use std::fmt;
use std::path::{Path, PathBuf};

pub(super) const SUFFIX: &str = ".checkpoint";
pub(super) const PARTIAL_SUFFIX: &str = ".checkpoint.part";
pub(super) const DELETED_SUFFIX: &str = ".checkpoint.deleted";

const OFFSET_WIDTH: usize = 20;
const EPOCH_WIDTH: usize = 10;

/// A snapshot holds the log up to `end_offset` (exclusive), whose last record
/// has leader epoch `epoch`. Ordered by offset, then epoch, as Kafka orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SnapshotId {
    pub end_offset: i64,
    pub epoch: i32,
}

/// Which state a snapshot file is in, from its suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FileKind {
    Complete,
    Partial,
    Deleted,
}

impl SnapshotId {
    pub fn new(end_offset: i64, epoch: i32) -> Self {
        SnapshotId { end_offset, epoch }
    }

    /// Ids with a negative part have no file name Kafka could parse.
    pub(super) fn is_valid(&self) -> bool {
        self.end_offset >= 0 && self.epoch >= 0
    }

    pub(super) fn path(&self, dir: &Path, kind: FileKind) -> PathBuf {
        let suffix = match kind {
            FileKind::Complete => SUFFIX,
            FileKind::Partial => PARTIAL_SUFFIX,
            FileKind::Deleted => DELETED_SUFFIX,
        };
        dir.join(format!("{self}{suffix}"))
    }

    /// Parses a snapshot file name; `None` for every other file of the directory.
    pub(super) fn parse(name: &str) -> Option<(SnapshotId, FileKind)> {
        // Longest suffixes first: each ends with the shorter `.checkpoint`
        // only in the complete case.
        let (stem, kind) = if let Some(stem) = name.strip_suffix(PARTIAL_SUFFIX) {
            (stem, FileKind::Partial)
        } else if let Some(stem) = name.strip_suffix(DELETED_SUFFIX) {
            (stem, FileKind::Deleted)
        } else {
            (name.strip_suffix(SUFFIX)?, FileKind::Complete)
        };
        let (offset, epoch) = stem.split_once('-')?;
        let digits = |s: &str, width| s.len() == width && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(offset, OFFSET_WIDTH) || !digits(epoch, EPOCH_WIDTH) {
            return None;
        }
        let id = SnapshotId::new(offset.parse().ok()?, epoch.parse().ok()?);
        Some((id, kind))
    }
}

impl fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:0ow$}-{:0ew$}",
            self.end_offset,
            self.epoch,
            ow = OFFSET_WIDTH,
            ew = EPOCH_WIDTH
        )
    }
}
