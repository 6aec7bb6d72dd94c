//! OffsetCommit, OffsetFetch, OffsetDelete and offset retention.

use std::collections::hash_map::Entry;

use super::classic_group::ClassicGroup;
use super::coordinator::GroupCoordinator;
use super::error::GroupError;
use super::rebalance::session;
use super::records::{OffsetCommitValue, RecordKey};
use super::state::GroupState;
use super::store::OffsetsRecord;
use super::types::{FetchedOffset, OffsetCommitParams, PartitionResult};

/// Topics and partitions asked for; `None` means every committed offset.
pub type OffsetFetchTopics = Option<Vec<(String, Vec<i32>)>>;

impl GroupCoordinator {
    /// Commits offsets. Members commit with their generation; a standalone client
    /// (generation -1, no member id) may commit only while the group is Empty.
    pub fn commit_offsets(
        &self,
        params: OffsetCommitParams,
    ) -> Result<Vec<PartitionResult>, GroupError> {
        let mut inner = self.inner.lock();
        inner.check_serves(self.partition_of(&params.group_id))?;
        let now_ms = self.now_ms();
        let group = match inner.groups.entry(params.group_id.clone()) {
            Entry::Occupied(entry) => entry.into_mut(),
            // A client that only stores offsets here; the group exists from now on.
            Entry::Vacant(entry) if params.generation_id < 0 => {
                entry.insert(ClassicGroup::new(params.group_id.clone(), now_ms))
            }
            // A commit for a generation of a group we do not know is stale.
            Entry::Vacant(_) => return Err(GroupError::IllegalGeneration),
        };
        validate_commit(group, &params)?;
        // A commit counts as a heartbeat: the consumer is evidently alive.
        if let Some(member) = group.members.get_mut(&params.member_id) {
            member.session_deadline =
                tokio::time::Instant::now() + session(member.session_timeout_ms);
        }

        let expire = (params.retention_time_ms >= 0)
            .then(|| now_ms.saturating_add(params.retention_time_ms));
        let mut results = Vec::with_capacity(params.offsets.len());
        let mut accepted = Vec::new();
        let mut records: Vec<OffsetsRecord> = Vec::new();
        for entry in params.offsets {
            let metadata = entry.metadata.unwrap_or_default();
            let error = (metadata.len() > self.config.offset_metadata_max_bytes)
                .then_some(GroupError::OffsetMetadataTooLarge);
            if error.is_none() {
                let key = RecordKey::OffsetCommit {
                    group: params.group_id.clone(),
                    topic: entry.topic.clone(),
                    partition: entry.partition,
                };
                let value = OffsetCommitValue {
                    offset: entry.offset,
                    leader_epoch: entry.leader_epoch,
                    metadata,
                    commit_timestamp: now_ms,
                    expire_timestamp: expire,
                };
                records.push((key.encode(), Some(value.encode())));
                accepted.push(((entry.topic.clone(), entry.partition), value));
            }
            results.push(PartitionResult {
                topic: entry.topic,
                partition: entry.partition,
                error,
            });
        }
        if !records.is_empty() {
            if let Err(e) = self.append(&params.group_id, records) {
                for result in results.iter_mut().filter(|r| r.error.is_none()) {
                    result.error = Some(e.clone());
                }
                return Ok(results);
            }
        }
        group.offsets.extend(accepted);
        Ok(results)
    }

    /// Committed offsets of one group; partitions without a commit come back as -1.
    /// `require_stable` waits for no pending transactional commits, and this
    /// coordinator has none, so it needs no special handling.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        topics: OffsetFetchTopics,
        _require_stable: bool,
    ) -> Result<Vec<FetchedOffset>, GroupError> {
        let inner = self.inner.lock();
        inner.check_serves(self.partition_of(group_id))?;
        let group = inner.groups.get(group_id);
        let lookup = |topic: &str, partition: i32| {
            let committed = group.and_then(|g| g.offsets.get(&(topic.to_string(), partition)));
            fetched(topic, partition, committed)
        };
        Ok(match topics {
            Some(topics) => topics
                .iter()
                .flat_map(|(topic, partitions)| partitions.iter().map(|p| lookup(topic, *p)))
                .collect(),
            None => group
                .map(|g| {
                    g.offsets
                        .iter()
                        .map(|((topic, partition), value)| fetched(topic, *partition, Some(value)))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// OffsetDelete: allowed for an Empty group, and for topics a consumer group does
    /// not subscribe to.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: Vec<(String, i32)>,
    ) -> Result<Vec<PartitionResult>, GroupError> {
        let mut inner = self.inner.lock();
        inner.check_serves(self.partition_of(group_id))?;
        let group = inner
            .groups
            .get(group_id)
            .ok_or(GroupError::GroupIdNotFound)?;
        let consumer_group = group.protocol_type.as_deref()
            == Some(super::consumer_protocol::CONSUMER_PROTOCOL_TYPE);
        let (deletable, subscribed): (Vec<_>, Vec<_>) = match group.state {
            GroupState::Dead => return Err(GroupError::GroupIdNotFound),
            GroupState::Empty => (partitions, Vec::new()),
            _ if consumer_group => partitions
                .into_iter()
                .partition(|(topic, _)| !group.is_subscribed_to(topic)),
            _ => return Err(GroupError::NonEmptyGroup),
        };
        let existing: Vec<(String, i32)> = deletable
            .iter()
            .filter(|key| group.offsets.contains_key(*key))
            .cloned()
            .collect();
        let stored = if existing.is_empty() {
            Ok(false)
        } else {
            self.remove_offsets_and_maybe_group(&mut inner, group_id, &existing)
        };
        let deletable_error = stored.err();
        let result = |(topic, partition): (String, i32), error| PartitionResult {
            topic,
            partition,
            error,
        };
        Ok(deletable
            .into_iter()
            .map(|key| result(key, deletable_error.clone()))
            .chain(
                subscribed
                    .into_iter()
                    .map(|key| result(key, Some(GroupError::GroupSubscribedToTopic))),
            )
            .collect())
    }

    /// One pass of offset retention: deletes expired offsets (as tombstones) and
    /// groups left Empty without offsets.
    pub fn expire_offsets(&self) {
        let now = self.now_ms();
        let mut inner = self.inner.lock();
        if inner.check_active().is_err() {
            return;
        }
        let mut work: Vec<(String, Vec<(String, i32)>)> = Vec::new();
        for group in inner.groups.values() {
            if !inner.serves(self.partition_of(&group.id)) {
                continue;
            }
            let expired = group.expired_offsets(now, self.config.offsets_retention_ms);
            let dead_already = group.state == GroupState::Empty && group.offsets.is_empty();
            if !expired.is_empty() || dead_already {
                work.push((group.id.clone(), expired));
            }
        }
        for (group_id, expired) in work {
            match self.remove_offsets_and_maybe_group(&mut inner, &group_id, &expired) {
                Ok(_) => {
                    tracing::debug!(group = %group_id, expired = expired.len(), "offsets expired")
                }
                Err(e) => {
                    tracing::warn!(group = %group_id, error = %e, "offset expiry not written; retried next pass")
                }
            }
        }
    }
}

/// Kafka's validateOffsetCommit.
fn validate_commit(group: &ClassicGroup, params: &OffsetCommitParams) -> Result<(), GroupError> {
    if group.state == GroupState::Dead {
        return Err(GroupError::CoordinatorNotAvailable);
    }
    let as_member = params.generation_id >= 0
        || !params.member_id.is_empty()
        || params.group_instance_id.is_some();
    if as_member {
        if group.is_static_member_fenced(params.group_instance_id.as_deref(), &params.member_id) {
            return Err(GroupError::FencedInstanceId);
        }
        if !group.members.contains_key(&params.member_id) {
            return Err(GroupError::UnknownMemberId);
        }
        // Checked before the state, as Kafka does: a commit sent with the previous
        // generation while the member's JoinGroup was parked is stale once the join is done.
        if params.generation_id != group.generation {
            return Err(GroupError::IllegalGeneration);
        }
        if group.state == GroupState::CompletingRebalance {
            // The member has the new generation from its JoinGroup response but not its
            // assignment yet; it retries once SyncGroup is done.
            return Err(GroupError::RebalanceInProgress);
        }
    } else if group.state != GroupState::Empty {
        // Only members may commit for a group that has members.
        return Err(GroupError::UnknownMemberId);
    }
    Ok(())
}

fn fetched(topic: &str, partition: i32, committed: Option<&OffsetCommitValue>) -> FetchedOffset {
    FetchedOffset {
        topic: topic.to_string(),
        partition,
        offset: committed.map_or(-1, |c| c.offset),
        leader_epoch: committed.map_or(-1, |c| c.leader_epoch),
        metadata: committed.map(|c| c.metadata.clone()).unwrap_or_default(),
    }
}
