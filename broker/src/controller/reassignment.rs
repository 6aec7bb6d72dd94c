//! Partition reassignment (KIP-455): AlterPartitionReassignments starts or
//! cancels a move of a partition's replicas, and the move completes once
//! every added replica has joined the ISR.
//!
//! While a move is in flight the partition lists its target replicas first,
//! then the ones leaving (`removing`); `adding` are the targets it did not
//! have before. The original replicas are therefore `replicas \ adding`.

use std::collections::HashSet;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use super::election::find;
use super::error::{ApiError, ControllerError};
use super::leadership::can_lead;
use super::placement::check_replica_list;
use super::quorum::Controller;
use crate::metadata::records::{PartitionChangeRecord, NO_LEADER_CHANGE};
use crate::metadata::{MetadataImage, MetadataRecord, PartitionImage, TopicImage};

/// Leader id of a partition without one.
const NO_LEADER: i32 = -1;

/// One partition's outcome, in request order.
pub type ReassignmentResult = (String, i32, Result<(), ApiError>);

/// A partition with a move in flight, as ListPartitionReassignments reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OngoingReassignment {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<i32>,
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

/// What a partition's replicas and ISR become.
struct Assignment {
    replicas: Vec<i32>,
    isr: Vec<i32>,
    adding: Vec<i32>,
    removing: Vec<i32>,
}

impl Controller {
    /// AlterPartitionReassignments: for each (topic, partition, target)
    /// starts a move to `target`, or cancels the move in flight when `None`,
    /// in one commit. `timeout` bounds the wait for the writer, as Kafka's
    /// deadline bounds the wait for its controller queue.
    pub fn alter_partition_reassignments(
        &self,
        moves: Vec<(String, i32, Option<Vec<i32>>)>,
        timeout: Duration,
    ) -> Result<Vec<ReassignmentResult>, ControllerError> {
        let Some(_writer) = self.write_within(timeout) else {
            return Err(ApiError::new(
                ResponseError::RequestTimedOut,
                "the controller was busy for the whole request timeout",
            )
            .into());
        };
        let image = self.image();
        let mut seen = HashSet::new();
        let mut records = Vec::new();
        let mut results = Vec::with_capacity(moves.len());
        for (topic, partition, target) in moves {
            // Each partition is planned against the same image, so a second
            // entry for it could not see the first.
            let planned = if seen.insert((topic.clone(), partition)) {
                find(&image, &topic, partition).and_then(|(t, p)| match &target {
                    Some(target) => start(&image, t, p, target),
                    None => cancel(&image, t, p),
                })
            } else {
                Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    format!("Partition {topic}-{partition} is named more than once."),
                ))
            };
            results.push((topic, partition, planned.map(|r| records.extend(r))));
        }
        if !records.is_empty() {
            self.commit(&image, records)?;
        }
        Ok(results)
    }

    /// ListPartitionReassignments: the moves in flight, of every partition
    /// or of `partitions`; unknown or idle partitions are left out, as in Kafka.
    pub fn list_partition_reassignments(
        &self,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Vec<OngoingReassignment> {
        let image = self.image();
        let ongoing = |t: &TopicImage, p: &PartitionImage| {
            reassigning(p).then(|| OngoingReassignment {
                topic: t.name.clone(),
                partition: p.partition,
                replicas: p.replicas.clone(),
                adding: p.adding_replicas.clone(),
                removing: p.removing_replicas.clone(),
            })
        };
        match partitions {
            None => image
                .topics
                .values()
                .flat_map(|t| t.partitions.iter().filter_map(|p| ongoing(t, p)))
                .collect(),
            Some(wanted) => wanted
                .iter()
                .filter_map(|(topic, partition)| {
                    let (t, p) = find(&image, topic, *partition).ok()?;
                    ongoing(t, p)
                })
                .collect(),
        }
    }

    /// The controller duty: completes every move whose added replicas have
    /// all joined the ISR. Returns how many completed.
    pub fn complete_reassignments(&self) -> Result<usize, ControllerError> {
        self.elect_where(completion)
    }

    /// Completes the moves of `changed` partitions that their ISR change just
    /// made complete; a failure is left to the controller duty to retry.
    /// Callers hold the writer lock.
    pub(super) fn complete_after_isr_change(&self, image: &MetadataImage, changed: &[(Uuid, i32)]) {
        let records: Vec<MetadataRecord> = changed
            .iter()
            .filter_map(|(id, partition)| {
                let t = image.topic_by_id(id)?;
                let p = t.partitions.get(usize::try_from(*partition).ok()?)?;
                completion(image, t, p)
            })
            .collect();
        if records.is_empty() {
            return;
        }
        if let Err(error) = self.commit(image, records) {
            tracing::warn!(%error, "completing reassignments failed; the controller duty retries");
        }
    }
}

/// Whether a move of `p` is in flight.
pub fn reassigning(p: &PartitionImage) -> bool {
    !p.adding_replicas.is_empty() || !p.removing_replicas.is_empty()
}

fn invalid(message: String) -> ApiError {
    ApiError::new(ResponseError::InvalidReplicaAssignment, message)
}

/// The replicas `p` had before its move in flight (all of them without one).
fn original(p: &PartitionImage) -> Vec<i32> {
    without(&p.replicas, &p.adding_replicas)
}

/// `list` in its order, without the members of `other`.
fn without(list: &[i32], other: &[i32]) -> Vec<i32> {
    list.iter()
        .copied()
        .filter(|id| !other.contains(id))
        .collect()
}

/// `list` in its order, keeping only the members of `other`.
fn within(list: &[i32], other: &[i32]) -> Vec<i32> {
    list.iter()
        .copied()
        .filter(|id| other.contains(id))
        .collect()
}

/// Starts moving `p` to `target`, replacing a move in flight, and completes
/// at once when every added replica is already in the ISR (a reorder or a
/// shrink). `None` when nothing changes.
pub(super) fn start(
    image: &MetadataImage,
    topic: &TopicImage,
    p: &PartitionImage,
    target: &[i32],
) -> Result<Option<MetadataRecord>, ApiError> {
    let name = format!("{}-{}", topic.name, p.partition);
    check_replica_list(image, &format!("The target replica list of {name}"), target)?;
    let original = original(p);
    let adding = without(target, &original);
    if adding.iter().all(|id| p.isr.contains(id)) {
        let done = Assignment {
            replicas: target.to_vec(),
            isr: within(&p.isr, target),
            adding: Vec::new(),
            removing: Vec::new(),
        };
        if let Some(record) = change(image, topic.id, p, &done) {
            return Ok(record);
        }
    }
    let removing = without(&original, target);
    let replicas: Vec<i32> = target.iter().chain(&removing).copied().collect();
    let moving = Assignment {
        isr: within(&p.isr, &replicas),
        replicas,
        adding,
        removing,
    };
    change(image, topic.id, p, &moving).ok_or_else(|| {
        invalid(format!(
            "Moving {name} to {target:?} would leave it no in-sync replica that can lead."
        ))
    })
}

/// Puts `p` back on its original replicas.
pub(super) fn cancel(
    image: &MetadataImage,
    topic: &TopicImage,
    p: &PartitionImage,
) -> Result<Option<MetadataRecord>, ApiError> {
    let name = format!("{}-{}", topic.name, p.partition);
    if !reassigning(p) {
        return Err(ApiError::new(
            ResponseError::NoReassignmentInProgress,
            format!("Partition {name} has no reassignment in progress."),
        ));
    }
    let replicas = original(p);
    let back = Assignment {
        isr: within(&p.isr, &replicas),
        replicas,
        adding: Vec::new(),
        removing: Vec::new(),
    };
    // Kafka too refuses a cancel that would need an unclean election.
    change(image, topic.id, p, &back).ok_or_else(|| {
        invalid(format!(
            "Cancelling the reassignment of {name} would leave it no in-sync replica that can lead."
        ))
    })
}

/// The completion of `p`'s move, once every added replica is in the ISR and
/// a target replica in it can lead.
fn completion(
    image: &MetadataImage,
    topic: &TopicImage,
    p: &PartitionImage,
) -> Option<MetadataRecord> {
    if !reassigning(p) || !p.adding_replicas.iter().all(|id| p.isr.contains(id)) {
        return None;
    }
    let target = without(&p.replicas, &p.removing_replicas);
    let done = Assignment {
        isr: within(&p.isr, &target),
        replicas: target,
        adding: Vec::new(),
        removing: Vec::new(),
    };
    change(image, topic.id, p, &done)?
}

/// The record giving `p` the assignment `to`, with only the fields that
/// change; `Some(None)` when nothing does, `None` when the ISR would be empty
/// or its leader must go and no replica left in the ISR can lead.
fn change(
    image: &MetadataImage,
    topic_id: Uuid,
    p: &PartitionImage,
    to: &Assignment,
) -> Option<Option<MetadataRecord>> {
    if to.isr.is_empty() {
        return None;
    }
    // A leaderless partition waits for its ISR to come back, as elsewhere.
    let leader = if p.leader == NO_LEADER || to.isr.contains(&p.leader) {
        p.leader
    } else {
        to.replicas
            .iter()
            .copied()
            .find(|id| to.isr.contains(id) && can_lead(image, *id))?
    };
    let changed = |now: &Vec<i32>, next: &Vec<i32>| (now != next).then(|| next.clone());
    let record = PartitionChangeRecord {
        partition_id: p.partition,
        topic_id,
        isr: changed(&p.isr, &to.isr),
        leader: if leader == p.leader {
            NO_LEADER_CHANGE
        } else {
            leader
        },
        replicas: changed(&p.replicas, &to.replicas),
        removing_replicas: changed(&p.removing_replicas, &to.removing),
        adding_replicas: changed(&p.adding_replicas, &to.adding),
        leader_recovery_state: -1,
    };
    let unchanged = record.isr.is_none()
        && record.leader == NO_LEADER_CHANGE
        && record.replicas.is_none()
        && record.removing_replicas.is_none()
        && record.adding_replicas.is_none();
    Some((!unchanged).then_some(MetadataRecord::PartitionChange(record)))
}

#[cfg(test)]
#[path = "reassignment_tests.rs"]
mod tests;
