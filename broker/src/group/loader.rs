//! Rebuilds groups and offsets from `__consumer_offsets` when the coordinator starts,
//! or when this node starts leading some of its partitions.

use std::collections::{HashMap, HashSet};

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
        let all: Vec<i32> = (0..self.config.offsets_topic_num_partitions).collect();
        let groups = self.replay(&all)?;
        let count = groups.len();
        self.activate(Some(groups), None)?;
        tracing::info!(groups = count, "group coordinator loaded");
        Ok(())
    }

    /// Serves no partition until [`Self::serve_partitions`]: for a node among
    /// several, which coordinates the groups of the partitions it leads.
    pub fn serve_led_partitions_only(&self) -> Result<(), GroupError> {
        self.activate(None, Some(HashSet::new()))
    }

    /// This node now leads `partitions`: their groups are replayed from the
    /// store and served from here on.
    pub fn serve_partitions(&self, partitions: &[i32]) -> Result<(), GroupError> {
        let groups = self.replay(partitions)?;
        let mut inner = self.inner.lock();
        inner.check_active()?;
        let count = groups.len();
        inner.groups.extend(groups);
        if let Some(owned) = &mut inner.owned {
            owned.extend(partitions);
        }
        tracing::info!(
            ?partitions,
            groups = count,
            "coordinating the groups of __consumer_offsets partitions led here"
        );
        Ok(())
    }

    /// Whether the groups of `partition` are served here now.
    pub fn serves_partition(&self, partition: i32) -> bool {
        let inner = self.inner.lock();
        inner.check_active().is_ok() && inner.serves(partition)
    }

    /// The metadata says this node leads `partitions`, whose groups are not
    /// served yet (the replica has not taken the role, or they are loading).
    pub fn expect_partitions(&self, partitions: HashSet<i32>) {
        self.inner.lock().loading = partitions;
    }

    /// This node no longer leads `partitions`: their groups are dropped, and
    /// members waiting on them are told to find the new coordinator.
    pub fn release_partitions(&self, partitions: &[i32]) {
        let mut inner = self.inner.lock();
        let Some(owned) = &mut inner.owned else {
            return;
        };
        for p in partitions {
            owned.remove(p);
        }
        let leaving: Vec<String> = inner
            .groups
            .keys()
            .filter(|id| partitions.contains(&self.partition_of(id)))
            .cloned()
            .collect();
        for id in &leaving {
            if let Some(mut group) = inner.groups.remove(id) {
                for member in group.members.values_mut() {
                    member.reply_join(Err(GroupError::NotCoordinator));
                    member.reply_sync(Err(GroupError::NotCoordinator));
                }
            }
        }
        tracing::info!(
            ?partitions,
            groups = leaving.len(),
            "no longer coordinating these partitions' groups"
        );
    }

    /// Starts serving with `groups` and `owned`, and starts offset retention.
    fn activate(
        &self,
        groups: Option<HashMap<String, ClassicGroup>>,
        owned: Option<HashSet<i32>>,
    ) -> Result<(), GroupError> {
        {
            let mut inner = self.inner.lock();
            if inner.status == Status::ShutDown {
                return Err(GroupError::CoordinatorNotAvailable);
            }
            inner.groups = groups.unwrap_or_default();
            inner.owned = owned;
            inner.status = Status::Active;
        }
        self.start_retention_task();
        Ok(())
    }

    /// The groups that `partitions` of `__consumer_offsets` hold.
    fn replay(&self, partitions: &[i32]) -> Result<HashMap<String, ClassicGroup>, GroupError> {
        let mut latest: HashMap<RecordKey, Option<bytes::Bytes>> = HashMap::new();
        for &partition in partitions {
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
        Ok(groups)
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
