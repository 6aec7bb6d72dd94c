//! The metadata log on local storage: `__cluster_metadata-0`, each record's
//! value one metadata record in Kafka's format. A single node is a quorum of
//! one; the KRaft work replaces the commit rule, not this storage.

use std::sync::Arc;

use bytes::Bytes;

use crate::controller::{MetadataLog, MetadataLogError};
use std::path::Path;

use crate::storage::{Checkpoints, LogConfig, PartitionLog, TopicPartition};

use super::now_ms;
use kafka_protocol::records::Compression;

use super::record_io::{encode_batch, read_all};

pub const METADATA_TOPIC: &str = "__cluster_metadata";

pub struct LocalMetadataLog {
    log: Arc<PartitionLog>,
}

impl LocalMetadataLog {
    /// Opens `<metadata dir>/__cluster_metadata-0`, recovering a torn tail.
    /// It is not one of the LogManager's logs: no retention or cleaning applies.
    pub fn open(
        metadata_dir: &Path,
        defaults: &LogConfig,
    ) -> Result<Self, crate::storage::StorageError> {
        let config = LogConfig {
            // Metadata is the source of truth: never expired, never compacted.
            retention_ms: -1,
            retention_bytes: -1,
            cleanup_policy: crate::config::CleanupPolicy {
                delete: true,
                compact: false,
            },
            ..defaults.clone()
        };
        let tp = TopicPartition::new(METADATA_TOPIC, 0);
        let dir = metadata_dir.join(tp.dir_name());
        std::fs::create_dir_all(&dir)?;
        let log = PartitionLog::open(&dir, tp, config, Checkpoints::default(), now_ms())?;
        Ok(LocalMetadataLog { log: Arc::new(log) })
    }

    /// Flushes and closes the log for a clean shutdown.
    pub fn close(&self) -> Result<(), crate::storage::StorageError> {
        self.log.close()
    }
}

impl MetadataLog for LocalMetadataLog {
    fn append(&self, records: Vec<Bytes>) -> Result<i64, MetadataLogError> {
        let pairs: Vec<_> = records
            .into_iter()
            .map(|value| (None, Some(value)))
            .collect();
        let batch = encode_batch(&pairs, now_ms(), Compression::None)
            .map_err(|e| MetadataLogError::Storage(e.to_string()))?;
        let info = self
            .log
            .append(batch, 0, now_ms())
            .map_err(|e| MetadataLogError::Storage(e.to_string()))?;
        // Committed means on disk: a single node has no replica to fall back on.
        self.log
            .flush()
            .map_err(|e| MetadataLogError::Storage(e.to_string()))?;
        Ok(info.last_offset)
    }

    fn replay(&self) -> Result<Vec<(i64, Bytes)>, MetadataLogError> {
        let records = read_all(&self.log).map_err(|e| MetadataLogError::Storage(e.to_string()))?;
        records
            .into_iter()
            .map(|(offset, _, value)| {
                value
                    .map(|v| (offset, v))
                    .ok_or_else(|| MetadataLogError::Corrupt {
                        offset,
                        reason: "metadata record without a value".into(),
                    })
            })
            .collect()
    }
}
