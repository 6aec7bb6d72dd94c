//! AlterPartition (KIP-497): a partition leader's ISR change, validated as
//! Kafka's ReplicationControlManager does and committed as a
//! PartitionChangeRecord.

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use super::error::{ApiError, ControllerError};
use super::quorum::Controller;
use crate::metadata::records::{PartitionChangeRecord, NO_LEADER_CHANGE};
use crate::metadata::{MetadataImage, MetadataRecord, PartitionImage};

/// Leader recovery states (KIP-704).
const RECOVERED: i8 = 0;
const RECOVERING: i8 = 1;

/// One partition's requested change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrChange {
    pub topic_id: Uuid,
    pub partition: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// (broker id, broker epoch; -1 skips the epoch check).
    pub new_isr: Vec<(i32, i64)>,
    pub leader_recovery_state: i8,
}

/// The partition's state after the change, as the response reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedPartition {
    pub leader: i32,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
    pub leader_recovery_state: i8,
    pub partition_epoch: i32,
}

impl CommittedPartition {
    fn of(p: &PartitionImage) -> Self {
        CommittedPartition {
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            isr: p.isr.clone(),
            leader_recovery_state: p.leader_recovery_state,
            partition_epoch: p.partition_epoch,
        }
    }
}

impl Controller {
    /// Applies the changes of broker `broker_id` (in `broker_epoch`) that
    /// pass validation, in one commit; answers each in request order. A
    /// stale broker epoch fails the whole request (STALE_BROKER_EPOCH).
    pub fn alter_partition(
        &self,
        broker_id: i32,
        broker_epoch: i64,
        changes: &[IsrChange],
    ) -> Result<Vec<Result<CommittedPartition, ResponseError>>, ControllerError> {
        let _writer = self.write();
        let image = self.image();
        let registered = image.brokers.get(&broker_id).map(|b| b.epoch);
        if registered.is_none() || (broker_epoch != -1 && registered != Some(broker_epoch)) {
            return Err(ApiError::new(
                ResponseError::StaleBrokerEpoch,
                format!("broker {broker_id} is not registered in epoch {broker_epoch}"),
            )
            .into());
        }
        let checked: Vec<Result<Option<MetadataRecord>, ResponseError>> = changes
            .iter()
            .map(|c| validate(&image, broker_id, c))
            .collect();
        let records: Vec<MetadataRecord> = checked
            .iter()
            .filter_map(|c| c.as_ref().ok().cloned().flatten())
            .collect();
        let committed = if records.is_empty() {
            image
        } else {
            let committed = self.commit(&image, records)?;
            let changed: Vec<(Uuid, i32)> = changes
                .iter()
                .zip(&checked)
                .filter(|(_, c)| matches!(c, Ok(Some(_))))
                .map(|(c, _)| (c.topic_id, c.partition))
                .collect();
            self.complete_after_isr_change(&committed, &changed);
            committed
        };
        Ok(changes
            .iter()
            .zip(checked)
            .map(|(change, checked)| {
                checked?;
                partition(&committed, change.topic_id, change.partition)
                    .map(CommittedPartition::of)
                    .ok_or(ResponseError::UnknownTopicOrPartition)
            })
            .collect())
    }
}

fn partition(image: &MetadataImage, topic_id: Uuid, partition: i32) -> Option<&PartitionImage> {
    let topic = image.topic_by_id(&topic_id)?;
    usize::try_from(partition)
        .ok()
        .and_then(|i| topic.partitions.get(i))
}

/// Kafka's checks, in its order; the record for a valid change (none when
/// nothing changes).
fn validate(
    image: &MetadataImage,
    broker_id: i32,
    change: &IsrChange,
) -> Result<Option<MetadataRecord>, ResponseError> {
    if image.topic_by_id(&change.topic_id).is_none() {
        return Err(ResponseError::UnknownTopicId);
    }
    let p = partition(image, change.topic_id, change.partition)
        .ok_or(ResponseError::UnknownTopicOrPartition)?;
    // Epochs newer than ours: this controller is behind, the leader should
    // find the current one.
    if change.leader_epoch > p.leader_epoch || change.partition_epoch > p.partition_epoch {
        return Err(ResponseError::NotController);
    }
    if broker_id != p.leader {
        return Err(ResponseError::InvalidRequest);
    }
    if change.leader_epoch < p.leader_epoch {
        return Err(ResponseError::FencedLeaderEpoch);
    }
    if change.partition_epoch < p.partition_epoch {
        return Err(ResponseError::InvalidUpdateVersion);
    }
    let isr: Vec<i32> = change.new_isr.iter().map(|(id, _)| *id).collect();
    let duplicates = isr.iter().enumerate().any(|(i, id)| isr[..i].contains(id));
    if duplicates || isr.iter().any(|id| !p.replicas.contains(id)) || !isr.contains(&p.leader) {
        return Err(ResponseError::InvalidRequest);
    }
    let recovery = change.leader_recovery_state;
    let valid_recovery = match recovery {
        RECOVERED => true,
        // Only a lone leader recovers, and a recovered partition never goes back.
        RECOVERING => isr.len() == 1 && p.leader_recovery_state == RECOVERING,
        _ => false,
    };
    if !valid_recovery {
        return Err(ResponseError::InvalidRequest);
    }
    let ineligible = change.new_isr.iter().any(|(id, epoch)| {
        image
            .brokers
            .get(id)
            .is_none_or(|b| !b.is_active() || (*epoch != -1 && *epoch != b.epoch))
    });
    if ineligible {
        return Err(ResponseError::IneligibleReplica);
    }
    if isr == p.isr && recovery == p.leader_recovery_state {
        return Ok(None);
    }
    Ok(Some(MetadataRecord::PartitionChange(
        PartitionChangeRecord {
            partition_id: change.partition,
            topic_id: change.topic_id,
            isr: Some(isr),
            leader: NO_LEADER_CHANGE,
            replicas: None,
            removing_replicas: None,
            adding_replicas: None,
            leader_recovery_state: if recovery == p.leader_recovery_state {
                -1
            } else {
                recovery
            },
        },
    )))
}

#[cfg(test)]
#[path = "alter_partition_tests.rs"]
mod tests;
