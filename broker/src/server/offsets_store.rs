//! `__consumer_offsets` on local storage for the group coordinator.

use std::sync::Arc;

use bytes::Bytes;

use crate::config::CleanupPolicy;
use crate::group::{OffsetsStore, OffsetsStoreError};
use crate::storage::{LogConfig, LogManager, TopicPartition};

use super::now_ms;
use kafka_protocol::records::Compression;

use super::record_io::{encode_batch, read_all};
use crate::controller::InternalTopic;

pub struct LocalOffsetsStore {
    logs: Arc<LogManager>,
    config: LogConfig,
}

impl LocalOffsetsStore {
    pub fn new(logs: Arc<LogManager>, defaults: &LogConfig) -> Self {
        LocalOffsetsStore {
            logs,
            config: LogConfig {
                cleanup_policy: CleanupPolicy {
                    delete: false,
                    compact: true,
                },
                segment_bytes: 100 * 1024 * 1024,
                ..defaults.clone()
            },
        }
    }
}

impl OffsetsStore for LocalOffsetsStore {
    fn append(
        &self,
        partition: i32,
        records: Vec<(Bytes, Option<Bytes>)>,
    ) -> Result<(), OffsetsStoreError> {
        let tp = TopicPartition::new(InternalTopic::ConsumerOffsets.name(), partition);
        let log = self
            .logs
            .get_or_create(&tp, self.config.clone())
            .map_err(|e| OffsetsStoreError::Storage(e.to_string()))?;
        let pairs: Vec<_> = records.into_iter().map(|(k, v)| (Some(k), v)).collect();
        let batch = encode_batch(&pairs, now_ms(), Compression::None)
            .map_err(|e| OffsetsStoreError::Storage(e.to_string()))?;
        log.append(batch, 0, now_ms())
            .map_err(|e| OffsetsStoreError::Storage(e.to_string()))?;
        Ok(())
    }

    fn load(&self, partition: i32) -> Result<Vec<(Bytes, Option<Bytes>)>, OffsetsStoreError> {
        let Some(log) = self.logs.get(&TopicPartition::new(
            InternalTopic::ConsumerOffsets.name(),
            partition,
        )) else {
            return Ok(Vec::new());
        };
        let records = read_all(&log).map_err(|e| OffsetsStoreError::Storage(e.to_string()))?;
        Ok(records
            .into_iter()
            .filter_map(|(_, key, value)| key.map(|k| (k, value)))
            .collect())
    }
}
