//! Where the controller's records are committed. `append` returns once the
//! batch is committed (on a single node: on disk; with KRaft: replicated to a
//! majority of voters); the committed records then reach the image through the
//! [`MetadataLoader`], never through the controller itself.

use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::metadata::{LoadError, MetadataLoader, MetadataPublisher};

#[derive(Debug, thiserror::Error)]
pub enum MetadataLogError {
    #[error("metadata log I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("metadata log storage: {0}")]
    Storage(String),
    #[error(transparent)]
    Load(#[from] LoadError),
    /// This node is not the active controller, or became it so recently that
    /// its image does not hold every committed record yet.
    #[error("this node is not the active controller")]
    NotController,
    #[error("the metadata write was not committed in time")]
    Timeout,
}

pub trait MetadataLog: Send + Sync + 'static {
    /// Appends encoded metadata records as one batch, validated against the
    /// image at offset `based_on`; returns the offset of the last record once
    /// the batch is committed. Refuses with `NotController` when `based_on`
    /// may miss committed records (leadership changed since).
    fn append(&self, records: Vec<Bytes>, based_on: i64) -> Result<i64, MetadataLogError>;
}

/// A log kept in memory, for tests: a quorum of one that commits and applies
/// on append. Clones share the records and the image.
#[derive(Clone)]
pub struct MemoryMetadataLog {
    records: Arc<Mutex<Vec<Bytes>>>,
    loader: Arc<MetadataLoader>,
}

impl Default for MemoryMetadataLog {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryMetadataLog {
    pub fn new() -> Self {
        MemoryMetadataLog {
            records: Arc::default(),
            loader: Arc::new(MetadataLoader::new("cluster-1")),
        }
    }

    pub fn publisher(&self) -> Arc<MetadataPublisher> {
        self.loader.publisher().clone()
    }

    /// An active controller over this log, as a test's single-node cluster:
    /// with the broker role, this node is registered and unfenced too.
    #[cfg(test)]
    pub fn open_controller(&self, config: &crate::config::BrokerConfig) -> Arc<super::Controller> {
        let controller = super::Controller::open(config, self.publisher(), Arc::new(self.clone()))
            .expect("opening an in-memory controller");
        controller
            .activate()
            .expect("bootstrapping an in-memory controller");
        if config.roles.broker && !controller.image().brokers.contains_key(&config.node_id) {
            super::lifecycle_tests::unfenced(&controller, config.node_id, 0);
        }
        controller
    }

    /// How many records were committed, for tests that check a no-op wrote nothing.
    pub fn record_count(&self) -> usize {
        self.records.lock().len()
    }

    /// Commits a raw record as if some other writer had put it there.
    pub fn push_raw(&self, record: Bytes) -> Result<i64, MetadataLogError> {
        self.append(vec![record], i64::MAX)
    }
}

impl MetadataLog for MemoryMetadataLog {
    fn append(&self, records: Vec<Bytes>, _based_on: i64) -> Result<i64, MetadataLogError> {
        let mut log = self.records.lock();
        let base = log.len() as i64;
        self.loader.apply_batch(base, &records)?;
        log.extend(records);
        Ok(log.len() as i64 - 1)
    }
}
