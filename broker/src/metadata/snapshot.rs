//! Metadata images saved as snapshot files and loaded back from them.

use std::path::{Path, PathBuf};

use super::codec::DecodeError;
use super::image::{ApplyError, MetadataImage};
use super::records::MetadataRecord;
use crate::storage::snapshot::{SnapshotError, SnapshotId, SnapshotReader, SnapshotWriter};

/// Why a metadata snapshot could not be written or loaded.
#[derive(Debug, thiserror::Error)]
pub enum MetadataSnapshotError {
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("snapshot {path}: record at offset {offset} is undecodable: {source}")]
    Decode {
        path: PathBuf,
        offset: i64,
        source: DecodeError,
    },
    #[error("snapshot {path}: record at offset {offset} does not apply: {source}")]
    Apply {
        path: PathBuf,
        offset: i64,
        source: ApplyError,
    },
}

/// Writes `image` as the snapshot ending after its last applied offset; `epoch`
/// is the leader epoch of that offset's record. Returns the snapshot's id.
pub fn write_image_snapshot(
    dir: &Path,
    image: &MetadataImage,
    epoch: i32,
    last_contained_log_timestamp: i64,
) -> Result<SnapshotId, MetadataSnapshotError> {
    let id = SnapshotId::new(image.metadata_offset + 1, epoch);
    let mut writer = SnapshotWriter::create(dir, id, last_contained_log_timestamp)?;
    for record in image.to_records() {
        writer.append(record.encode())?;
    }
    writer.finish()?;
    Ok(id)
}

/// Loads the image snapshot `id` of `dir` holds.
pub fn read_image_snapshot(
    dir: &Path,
    id: SnapshotId,
    cluster_id: &str,
) -> Result<MetadataImage, MetadataSnapshotError> {
    image_from_snapshot(&SnapshotReader::open(dir, id)?, cluster_id)
}

/// The image a checked snapshot holds. Every record is decoded before any is
/// applied, and the image is returned only once all of them fit.
pub fn image_from_snapshot(
    snapshot: &SnapshotReader,
    cluster_id: &str,
) -> Result<MetadataImage, MetadataSnapshotError> {
    let records = snapshot
        .records()
        .iter()
        .map(|r| {
            MetadataRecord::decode(&r.value).map_err(|source| MetadataSnapshotError::Decode {
                path: snapshot.path().to_path_buf(),
                offset: r.offset,
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut image = MetadataImage::empty(cluster_id);
    for (record, raw) in records.iter().zip(snapshot.records()) {
        image
            .apply_record(record)
            .map_err(|source| MetadataSnapshotError::Apply {
                path: snapshot.path().to_path_buf(),
                offset: raw.offset,
                source,
            })?;
    }
    image.metadata_offset = snapshot.id().end_offset - 1;
    Ok(image)
}

#[cfg(test)]
mod tests;
