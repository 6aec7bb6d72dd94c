//! Writes a snapshot: header batch, bounded data batches, footer batch, then
//! fsync and an atomic rename from `.checkpoint.part` to `.checkpoint`.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use kafka_protocol::records::Compression;

use super::error::io_error;
use super::files::{create_partial, sync_dir};
use super::id::FileKind;
use super::{SnapshotError, SnapshotId, MAX_BATCH_BYTES};
use crate::storage::batch::{self, BatchFrame, HEADER_LEN};
use crate::storage::control_records::{self as control, SNAPSHOT_FOOTER, SNAPSHOT_HEADER};
use crate::storage::log::now_ms;

/// Default bound of a data batch; small enough to keep the writer's buffer modest.
const DEFAULT_BATCH_BYTES: usize = 1 << 20;
/// Most bytes a record adds besides its value: length, attributes, timestamp
/// and offset deltas, key and value lengths, header count, all varints.
const RECORD_OVERHEAD: usize = 5 + 1 + 10 + 5 + 1 + 5 + 1;

type KeyValue = (Option<Bytes>, Option<Bytes>);

/// A snapshot being written; dropped before [`Self::finish`], it leaves no file.
pub struct SnapshotWriter {
    id: SnapshotId,
    dir: PathBuf,
    part: PathBuf,
    file: BufWriter<File>,
    pending: Vec<KeyValue>,
    pending_bytes: usize,
    max_batch_bytes: usize,
    next_offset: i64,
    size: u64,
    finished: bool,
}

impl SnapshotWriter {
    /// Starts snapshot `id` in `dir` with its header; `last_contained_log_timestamp`
    /// is the append time of the last record it covers.
    pub fn create(
        dir: &Path,
        id: SnapshotId,
        last_contained_log_timestamp: i64,
    ) -> Result<Self, SnapshotError> {
        let (part, file) = create_partial(dir, id)?;
        let mut writer = SnapshotWriter {
            id,
            dir: dir.to_path_buf(),
            part,
            file: BufWriter::new(file),
            pending: Vec::new(),
            pending_bytes: 0,
            max_batch_bytes: DEFAULT_BATCH_BYTES,
            next_offset: 0,
            size: 0,
            finished: false,
        };
        let header = control::header_value(last_contained_log_timestamp);
        writer.write_batch(&[(Some(control::key(SNAPSHOT_HEADER)), Some(header))], true)?;
        Ok(writer)
    }

    /// Bounds data batches to `bytes` (at most [`MAX_BATCH_BYTES`]); a record
    /// larger than the bound gets a batch of its own.
    pub fn with_max_batch_bytes(mut self, bytes: usize) -> Self {
        self.max_batch_bytes = bytes.min(MAX_BATCH_BYTES);
        self
    }

    pub fn id(&self) -> SnapshotId {
        self.id
    }

    /// Adds one record value, writing out a batch when the bound is reached.
    pub fn append(&mut self, value: Bytes) -> Result<(), SnapshotError> {
        let size = value.len() + RECORD_OVERHEAD;
        if HEADER_LEN + size > MAX_BATCH_BYTES {
            return Err(SnapshotError::RecordTooLarge(value.len()));
        }
        if !self.pending.is_empty() && HEADER_LEN + self.pending_bytes + size > self.max_batch_bytes
        {
            self.flush_pending()?;
        }
        self.pending.push((None, Some(value)));
        self.pending_bytes += size;
        Ok(())
    }

    /// Writes the footer, syncs and renames the file into place; returns its size.
    pub fn finish(mut self) -> Result<u64, SnapshotError> {
        self.flush_pending()?;
        let footer = control::footer_value();
        self.write_batch(&[(Some(control::key(SNAPSHOT_FOOTER)), Some(footer))], true)?;
        let part = self.part.clone();
        self.file.flush().map_err(io_error(&part))?;
        self.file.get_ref().sync_all().map_err(io_error(&part))?;
        let complete = self.id.path(&self.dir, FileKind::Complete);
        fs::rename(&part, &complete).map_err(io_error(&complete))?;
        self.finished = true;
        sync_dir(&self.dir)?;
        Ok(self.size)
    }

    fn flush_pending(&mut self) -> Result<(), SnapshotError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let records = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        self.write_batch(&records, false)
    }

    fn write_batch(&mut self, records: &[KeyValue], control: bool) -> Result<(), SnapshotError> {
        let frame = BatchFrame {
            base_offset: self.next_offset,
            // Kafka stamps every batch of a snapshot with the snapshot's epoch.
            leader_epoch: self.id.epoch,
            control,
            timestamp: now_ms(),
            compression: Compression::None,
        };
        let bytes =
            batch::encode(records, frame).map_err(|e| SnapshotError::Encode(format!("{e:#}")))?;
        self.file.write_all(&bytes).map_err(io_error(&self.part))?;
        self.next_offset += records.len() as i64;
        self.size += bytes.len() as u64;
        Ok(())
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        if !self.finished {
            // Best effort: a leftover is also removed at the next startup.
            let _ = fs::remove_file(&self.part);
        }
    }
}
