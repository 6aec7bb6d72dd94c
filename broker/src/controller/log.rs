//! Where committed metadata records live. The single-node controller appends
//! straight to it; with KRaft, `append` becomes "replicate to a majority of
//! voters and wait for the commit", and the controller above does not change.

use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum MetadataLogError {
    #[error("metadata log I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("metadata log is corrupt at offset {offset}: {reason}")]
    Corrupt { offset: i64, reason: String },
    #[error("metadata log storage: {0}")]
    Storage(String),
}

pub trait MetadataLog: Send + Sync + 'static {
    /// Appends encoded metadata records as one batch; durable when it returns;
    /// returns the offset of the last record. Offsets follow on from the
    /// previous batch without gaps.
    fn append(&self, records: Vec<Bytes>) -> Result<i64, MetadataLogError>;
    /// Every record in the log, in order, with its offset.
    fn replay(&self) -> Result<Vec<(i64, Bytes)>, MetadataLogError>;
}

/// A log kept in memory, for tests: clones share the same records, so a new
/// controller over a clone sees what a restarted process would.
#[derive(Clone, Default)]
pub struct MemoryMetadataLog {
    records: Arc<Mutex<Vec<Bytes>>>,
}

impl MemoryMetadataLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a raw record as if some other writer had put it there.
    pub fn push_raw(&self, record: Bytes) {
        self.records.lock().push(record);
    }
}

impl MetadataLog for MemoryMetadataLog {
    fn append(&self, records: Vec<Bytes>) -> Result<i64, MetadataLogError> {
        let mut log = self.records.lock();
        log.extend(records);
        Ok(log.len() as i64 - 1)
    }

    fn replay(&self) -> Result<Vec<(i64, Bytes)>, MetadataLogError> {
        Ok(self
            .records
            .lock()
            .iter()
            .enumerate()
            .map(|(offset, record)| (offset as i64, record.clone()))
            .collect())
    }
}
