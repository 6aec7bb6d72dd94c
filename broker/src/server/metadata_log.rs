//! The metadata log on local storage: `__cluster_metadata-0`, each record's
//! value one metadata record in Kafka's format. A single node is a quorum of
//! one; the KRaft work replaces the commit rule, not this storage.

use std::sync::Arc;

use anyhow::Context;

use bytes::Bytes;

use crate::controller::{MetadataLog, MetadataLogError};
use crate::metadata::MetadataLoader;
use std::path::Path;

use crate::storage::{Checkpoints, LogConfig, PartitionLog, TopicPartition};

use super::now_ms;
use kafka_protocol::records::Compression;

use super::record_io::{encode_batch, read_all};

pub const METADATA_TOPIC: &str = "__cluster_metadata";

pub struct LocalMetadataLog {
    log: Arc<PartitionLog>,
    loader: Arc<MetadataLoader>,
}

impl LocalMetadataLog {
    /// Opens `<metadata dir>/__cluster_metadata-0`, recovering a torn tail,
    /// and loads every record in it through `loader`: a single node is a
    /// quorum of one, so all it holds is committed.
    /// It is not one of the LogManager's logs: no retention or cleaning applies.
    pub fn open(
        metadata_dir: &Path,
        defaults: &LogConfig,
        loader: Arc<MetadataLoader>,
    ) -> anyhow::Result<Self> {
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
        load(&log, &loader)?;
        Ok(LocalMetadataLog {
            log: Arc::new(log),
            loader,
        })
    }

    /// Flushes and closes the log for a clean shutdown.
    pub fn close(&self) -> Result<(), crate::storage::StorageError> {
        self.log.close()
    }
}

/// Applies the whole log, one run of consecutive offsets at a time.
fn load(log: &PartitionLog, loader: &MetadataLoader) -> anyhow::Result<()> {
    let mut run: Vec<Bytes> = Vec::new();
    let mut run_start = 0;
    for (offset, _, value) in read_all(log)? {
        let value =
            value.with_context(|| format!("metadata record at offset {offset} has no value"))?;
        if !run.is_empty() && run_start + run.len() as i64 != offset {
            loader.apply_batch(run_start, &std::mem::take(&mut run))?;
        }
        if run.is_empty() {
            run_start = offset;
        }
        run.push(value);
    }
    if !run.is_empty() {
        loader.apply_batch(run_start, &run)?;
    }
    Ok(())
}

impl MetadataLog for LocalMetadataLog {
    fn append(&self, records: Vec<Bytes>, _based_on: i64) -> Result<i64, MetadataLogError> {
        fn storage(e: impl std::fmt::Display) -> MetadataLogError {
            MetadataLogError::Storage(e.to_string())
        }
        let pairs: Vec<_> = records
            .iter()
            .map(|value| (None, Some(value.clone())))
            .collect();
        let batch = encode_batch(&pairs, now_ms(), Compression::None).map_err(storage)?;
        let info = self.log.append(batch, 0, now_ms()).map_err(storage)?;
        // Committed means on disk: a single node has no replica to fall back on.
        self.log.flush().map_err(storage)?;
        self.loader.apply_batch(info.base_offset, &records)?;
        Ok(info.last_offset)
    }
}
