use std::io;
use std::path::PathBuf;

use super::SnapshotId;

/// Why a snapshot could not be written, read or received.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The bytes are not a whole, intact snapshot; nothing of it may be used.
    #[error("snapshot {path} is corrupt at byte {position}: {reason}")]
    Corrupt {
        path: PathBuf,
        position: u64,
        reason: String,
    },
    #[error("snapshot id {0:?} has a negative offset or epoch")]
    InvalidId(SnapshotId),
    #[error("snapshot {0} already exists")]
    AlreadyExists(PathBuf),
    #[error("cannot encode a snapshot batch: {0}")]
    Encode(String),
    #[error("a record of {0} bytes does not fit in a snapshot batch")]
    RecordTooLarge(usize),
    /// Kafka's POSITION_OUT_OF_RANGE for FetchSnapshot.
    #[error("position {position} is outside snapshot {path} of {size} bytes")]
    PositionOutOfRange {
        path: PathBuf,
        position: u64,
        size: u64,
    },
    #[error("chunk at position {position} does not continue {path}, which has {expected} bytes")]
    UnexpectedPosition {
        path: PathBuf,
        position: u64,
        expected: u64,
    },
    #[error("snapshot {path} has {received} of its {size} bytes")]
    SizeMismatch {
        path: PathBuf,
        received: u64,
        size: u64,
    },
}

/// Attaches the file to an I/O error.
pub(super) fn io_error(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> SnapshotError {
    let path = path.into();
    move |source| SnapshotError::Io { path, source }
}
