//! Rebuilds groups and offsets from `__consumer_offsets` when the coordinator starts.

use std::collections::HashMap;

use super::classic_group::ClassicGroup;
use super::coordinator::{GroupCoordinator, Status};
use super::error::GroupError;
use super::records::{GroupMetadataValue, OffsetCommitValue, RecordKey};

impl GroupCoordinator {
    /// Replays every partition (last record per key wins, tombstones delete), restores
    /// the groups as Empty with their generation and offsets, then starts serving and
    /// starts offset retention. Members must rejoin, as after a coordinator move.
    pub async fn load(&self) -> Result<(), GroupError> {
        if self.inner.lock().status == Status::Active {
            return Ok(());
        }
        let mut latest: HashMap<RecordKey, Option<bytes::Bytes>> = HashMap::new();
        for partition in 0..self.config.offsets_topic_num_partitions {
            for (key, value) in self.store.load(partition)? {
                match RecordKey::decode(&key) {
                    Ok(key) => {
                        latest.insert(key, value);
                    }
                    // Newer record types (e.g. KIP-848 groups) are not ours to read.
                    Err(e) => {
                        tracing::warn!(partition, error = %e, "skipping __consumer_offsets record")
                    }
                }
            }
        }
        let now = self.now_ms();
        let mut groups: HashMap<String, ClassicGroup> = HashMap::new();
        for (key, value) in latest {
            let Some(value) = value else { continue };
            let group = groups
                .entry(key.group().to_string())
                .or_insert_with(|| ClassicGroup::new(key.group().to_string(), now));
            match key {
                RecordKey::OffsetCommit {
                    topic, partition, ..
                } => match OffsetCommitValue::decode(&value) {
                    Ok(offset) => {
                        group.offsets.insert((topic, partition), offset);
                    }
                    Err(e) => {
                        tracing::warn!(group = %group.id, error = %e, "skipping offset record")
                    }
                },
                RecordKey::GroupMetadata { .. } => match GroupMetadataValue::decode(&value) {
                    Ok(metadata) => restore(group, metadata, now),
                    Err(e) => {
                        tracing::warn!(group = %group.id, error = %e, "skipping group record")
                    }
                },
            }
        }
        let count = groups.len();
        {
            let mut inner = self.inner.lock();
            if inner.status == Status::ShutDown {
                return Err(GroupError::CoordinatorNotAvailable);
            }
            inner.groups = groups;
            inner.status = Status::Active;
        }
        self.start_retention_task();
        tracing::info!(groups = count, "group coordinator loaded");
        Ok(())
    }
}

fn restore(group: &mut ClassicGroup, metadata: GroupMetadataValue, now: i64) {
    group.generation = metadata.generation;
    group.protocol_type = (!metadata.protocol_type.is_empty()).then_some(metadata.protocol_type);
    // A group that had members becomes empty now; a group that was already empty
    // keeps the time it became so, which offset retention counts from.
    group.state_timestamp_ms =
        if metadata.members.is_empty() && metadata.current_state_timestamp >= 0 {
            Some(metadata.current_state_timestamp)
        } else {
            Some(now)
        };
}
