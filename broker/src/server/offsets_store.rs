//! `__consumer_offsets` on local storage for the group coordinator: appended
//! as the partition's leader, in its leader epoch, so replication carries the
//! records to the followers like any produced batch.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::group::{OffsetsStore, OffsetsStoreError};
use crate::replication::ReplicaManager;
use crate::storage::{LogManager, TopicPartition};

use super::now_ms;
use kafka_protocol::records::Compression;

use super::record_io::{encode_batch, read_all};
use crate::controller::InternalTopic;

pub struct LocalOffsetsStore {
    logs: Arc<LogManager>,
    /// Set once the broker state exists (it is built after the coordinator).
    replicas: OnceLock<Arc<ReplicaManager>>,
}

impl LocalOffsetsStore {
    /// A store over `logs`, where log sync creates the partitions' logs from
    /// the topic's configs (compacted) like any other topic's.
    pub fn new(logs: Arc<LogManager>) -> Self {
        LocalOffsetsStore {
            logs,
            replicas: OnceLock::new(),
        }
    }

    /// Where appends learn whether this node leads a partition, and in which epoch.
    pub fn attach(&self, replicas: Arc<ReplicaManager>) {
        let _ = self.replicas.set(replicas);
    }
}

impl OffsetsStore for LocalOffsetsStore {
    fn append(
        &self,
        partition: i32,
        records: Vec<(Bytes, Option<Bytes>)>,
    ) -> Result<(), OffsetsStoreError> {
        let tp = TopicPartition::new(InternalTopic::ConsumerOffsets.name(), partition);
        // Only the leader writes; a coordinator that lost leadership is told so.
        let unavailable = OffsetsStoreError::Unavailable(partition);
        let replicas = self.replicas.get().ok_or(unavailable.clone())?;
        let hosted = replicas.partition(&tp).ok_or(unavailable.clone())?;
        let epoch = hosted.leader_epoch().ok_or(unavailable)?;
        let pairs: Vec<_> = records.into_iter().map(|(k, v)| (Some(k), v)).collect();
        let batch = encode_batch(&pairs, now_ms(), Compression::None)
            .map_err(|e| OffsetsStoreError::Storage(e.to_string()))?;
        hosted
            .log
            .append(batch, epoch, now_ms())
            .map_err(|e| OffsetsStoreError::Storage(e.to_string()))?;
        replicas.leader_appended(&hosted, epoch);
        replicas.notify_progress();
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
