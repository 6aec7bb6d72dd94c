//! Where the coordinator keeps `__consumer_offsets`: a trait, so this module does not
//! depend on the log implementation, and an in-memory store for tests.

use std::collections::HashMap;

use bytes::Bytes;
use parking_lot::Mutex;

use super::error::OffsetsStoreError;

/// One record of `__consumer_offsets`: key and value, `None` being a tombstone.
pub type OffsetsRecord = (Bytes, Option<Bytes>);

pub trait OffsetsStore: Send + Sync + 'static {
    /// Appends key/value records (value None = tombstone) to one partition of __consumer_offsets; durable when it returns.
    fn append(&self, partition: i32, records: Vec<OffsetsRecord>) -> Result<(), OffsetsStoreError>;
    /// Every record of the partition, in log order.
    fn load(&self, partition: i32) -> Result<Vec<OffsetsRecord>, OffsetsStoreError>;
}

/// Keeps every appended record in memory, in order; for tests and `broker dev`.
#[derive(Debug, Default)]
pub struct MemoryOffsetsStore {
    partitions: Mutex<HashMap<i32, Vec<OffsetsRecord>>>,
}

impl MemoryOffsetsStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of everything appended to `partition`.
    pub fn records(&self, partition: i32) -> Vec<OffsetsRecord> {
        self.partitions
            .lock()
            .get(&partition)
            .cloned()
            .unwrap_or_default()
    }
}

impl OffsetsStore for MemoryOffsetsStore {
    fn append(&self, partition: i32, records: Vec<OffsetsRecord>) -> Result<(), OffsetsStoreError> {
        self.partitions
            .lock()
            .entry(partition)
            .or_default()
            .extend(records);
        Ok(())
    }

    fn load(&self, partition: i32) -> Result<Vec<OffsetsRecord>, OffsetsStoreError> {
        Ok(self.records(partition))
    }
}
