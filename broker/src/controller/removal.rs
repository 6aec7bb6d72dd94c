//! The broker removal task (docs/broker-removal.md, section 4): exclude the
//! leaving brokers, move every replica they hold onto the remaining ones as
//! KIP-455 reassignments, a few at a time, and mark the task completed when
//! they hold none. The task lives in the metadata log as `removal.<id>` on
//! the cluster-default BROKER resource, so a new active controller carries on.
//!
//! Starting and cancelling arrive as IncrementalAlterConfigs SETs of that key
//! (the admin HTTP API sends them); this module checks them against the image
//! and turns them into records, the task and the exclusions in one batch.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::error::ResponseError;

use super::error::{ApiError, ControllerError};
use super::quorum::Controller;
use super::reassignment::{cancel, reassigning, start};
use crate::metadata::image::{RemovalState, RemovalTask, EXCLUDED_KEY, REMOVAL_KEY_PREFIX};
use crate::metadata::records::{ConfigRecord, BROKER_RESOURCE};
use crate::metadata::{MetadataImage, MetadataRecord};

/// A planned move: topic, partition and its target replicas.
pub type Move = (String, i32, Vec<i32>);

/// The records for a SET of `removal.<id>` to `value`: a running task starts
/// it, a cancelled one cancels it.
pub(super) fn plan_removal_update(
    image: &MetadataImage,
    key: &str,
    value: &str,
) -> Result<Vec<MetadataRecord>, ApiError> {
    let id = key.strip_prefix(REMOVAL_KEY_PREFIX).unwrap_or_default();
    if !valid_id(id) {
        return Err(invalid(format!(
            "Removal id `{id}` is not valid: 1 to 63 lowercase letters, digits or dashes, starting with a letter or digit."
        )));
    }
    let asked = RemovalTask::from_value(value).ok_or_else(|| {
        invalid(format!(
            "Value of {key} is not a removal task: expected {{\"brokers\":[...],\"state\":\"running\"|\"cancelled\"}}."
        ))
    })?;
    match asked.state {
        RemovalState::Running => start_removal(image, id, asked.brokers),
        RemovalState::Cancelled => Ok(cancel_removal(image, id)),
        RemovalState::Completed => Err(invalid(format!(
            "Removal {id} cannot be marked completed: the controller does so when its brokers hold no replica."
        ))),
    }
}

/// Removal ids as the admin API takes them.
pub fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn invalid(message: String) -> ApiError {
    ApiError::new(ResponseError::InvalidRequest, message)
}

fn start_removal(
    image: &MetadataImage,
    id: &str,
    mut brokers: Vec<i32>,
) -> Result<Vec<MetadataRecord>, ApiError> {
    brokers.sort_unstable();
    brokers.dedup();
    if brokers.is_empty() {
        return Err(invalid(format!("Removal {id} names no broker.")));
    }
    if let Some(existing) = image.removal(id) {
        let mut theirs = existing.brokers.clone();
        theirs.sort_unstable();
        if theirs == brokers {
            return Ok(Vec::new());
        }
        return Err(ApiError::new(
            ResponseError::ReassignmentInProgress,
            format!("Removal {id} already exists for brokers {theirs:?}, not {brokers:?}."),
        ));
    }
    if let Some((other, task)) = image.running_removal() {
        return Err(ApiError::new(
            ResponseError::ReassignmentInProgress,
            format!(
                "Removal {other} of brokers {:?} is still running: cancel it or wait for it to complete.",
                task.brokers
            ),
        ));
    }
    if let Some(unknown) = brokers.iter().find(|b| !image.brokers.contains_key(b)) {
        return Err(ApiError::new(
            ResponseError::BrokerIdNotRegistered,
            format!("Broker {unknown} is not registered."),
        ));
    }
    let remaining = remaining_brokers(image, &brokers).len();
    let widest = image
        .topics
        .values()
        .filter_map(|t| {
            let rf = t.partitions.iter().map(|p| p.replicas.len()).max()?;
            Some((rf, &t.name))
        })
        .filter(|(rf, _)| *rf > remaining)
        .max();
    if let Some((rf, topic)) = widest {
        return Err(ApiError::new(
            ResponseError::InvalidReplicationFactor,
            format!(
                "Removing brokers {brokers:?} would leave {remaining} brokers to take new replicas, but topic {topic} has {rf} replicas per partition."
            ),
        ));
    }
    let task = RemovalTask {
        brokers: brokers.clone(),
        state: RemovalState::Running,
        error: None,
    };
    let exclusions = brokers
        .iter()
        .filter(|b| !image.is_excluded(**b))
        .map(|b| exclusion(*b, true));
    Ok(std::iter::once(task_record(id, &task))
        .chain(exclusions)
        .collect())
}

/// Cancels the in-flight moves of the task's brokers, lifts their exclusion
/// and marks it cancelled; a task that is not running stays as it is.
fn cancel_removal(image: &MetadataImage, id: &str) -> Vec<MetadataRecord> {
    let Some(task) = image
        .removal(id)
        .filter(|t| t.state == RemovalState::Running)
    else {
        return Vec::new();
    };
    let moves = image.topics.values().flat_map(|t| {
        t.partitions
            .iter()
            .filter(|p| {
                reassigning(p)
                    && p.removing_replicas
                        .iter()
                        .chain(&p.adding_replicas)
                        .any(|r| task.brokers.contains(r))
            })
            // A move that cannot be undone cleanly (no leader left) finishes instead.
            .filter_map(|p| cancel(image, t, p).ok().flatten())
    });
    let unexcluded = task
        .brokers
        .iter()
        .filter(|b| image.is_excluded(**b))
        .map(|b| exclusion(*b, false));
    let cancelled = RemovalTask {
        state: RemovalState::Cancelled,
        error: None,
        ..task.clone()
    };
    moves
        .chain(unexcluded)
        .chain(std::iter::once(task_record(id, &cancelled)))
        .collect()
}

fn task_record(id: &str, task: &RemovalTask) -> MetadataRecord {
    MetadataRecord::Config(ConfigRecord {
        resource_type: BROKER_RESOURCE,
        resource_name: String::new(),
        name: format!("{REMOVAL_KEY_PREFIX}{id}"),
        value: Some(task.to_value()),
    })
}

fn exclusion(broker: i32, excluded: bool) -> MetadataRecord {
    MetadataRecord::Config(ConfigRecord {
        resource_type: BROKER_RESOURCE,
        resource_name: broker.to_string(),
        name: EXCLUDED_KEY.to_string(),
        value: excluded.then(|| "true".to_string()),
    })
}

/// Unfenced, not excluded brokers outside `leaving`: where replicas may go.
fn remaining_brokers(image: &MetadataImage, leaving: &[i32]) -> Vec<i32> {
    image
        .placeable_brokers()
        .map(|b| b.id)
        .filter(|id| !leaving.contains(id))
        .collect()
}

/// The next moves of a removal of `leaving`: each partition with a replica on
/// a leaving broker and no move in flight gets, in that replica's place, the
/// remaining broker with the fewest replicas (one in the leaving broker's
/// rack first), never one it already has. At most `max_moves` moves in flight
/// touch any one broker. The error says why some partition has no target.
pub fn plan_moves(
    image: &MetadataImage,
    leaving: &[i32],
    max_moves: usize,
) -> (Vec<Move>, Option<String>) {
    let remaining = remaining_brokers(image, leaving);
    let mut load: BTreeMap<i32, usize> = remaining.iter().map(|b| (*b, 0)).collect();
    let mut in_flight: HashMap<i32, usize> = HashMap::new();
    for p in image.topics.values().flat_map(|t| t.partitions.iter()) {
        for r in &p.replicas {
            if let Some(n) = load.get_mut(r) {
                *n += 1;
            }
        }
        if reassigning(p) {
            for r in p.adding_replicas.iter().chain(&p.removing_replicas) {
                *in_flight.entry(*r).or_default() += 1;
            }
        }
    }
    let rack = |id: i32| image.brokers.get(&id).and_then(|b| b.rack.clone());
    let mut moves = Vec::new();
    let mut error = None;
    for t in image.topics.values() {
        for p in &t.partitions {
            if reassigning(p) || !p.replicas.iter().any(|r| leaving.contains(r)) {
                continue;
            }
            let mut target = p.replicas.clone();
            let mut involved = Vec::new();
            for slot in 0..target.len() {
                let gone = target[slot];
                if !leaving.contains(&gone) {
                    continue;
                }
                let wanted_rack = rack(gone);
                let pick = load
                    .iter()
                    .filter(|(b, _)| !target.contains(b))
                    .min_by_key(|(b, n)| {
                        (wanted_rack.is_some() && rack(**b) != wanted_rack, **n, **b)
                    })
                    .map(|(b, _)| *b);
                let Some(pick) = pick else {
                    error = Some(format!(
                        "{}-{}: no remaining broker can take its replica on broker {gone}",
                        t.name, p.partition
                    ));
                    involved.clear();
                    break;
                };
                target[slot] = pick;
                involved.extend([gone, pick]);
            }
            if involved.is_empty()
                || involved
                    .iter()
                    .any(|b| in_flight.get(b).copied().unwrap_or(0) >= max_moves)
            {
                continue;
            }
            for b in &involved {
                *in_flight.entry(*b).or_default() += 1;
            }
            for b in target.iter().filter(|b| !p.replicas.contains(b)) {
                *load.entry(*b).or_default() += 1;
            }
            moves.push((t.name.clone(), p.partition, target));
        }
    }
    (moves, error)
}

impl Controller {
    /// The removal duty: starts the next moves of the running removal, or
    /// marks it completed once its brokers hold no replica. Returns how many
    /// moves it started.
    pub fn advance_removal(&self, max_moves: usize) -> Result<usize, ControllerError> {
        if self.image().running_removal().is_none() {
            return Ok(0);
        }
        let _writer = self.write();
        let image = self.image();
        let Some((id, task)) = image.running_removal() else {
            return Ok(0);
        };
        let holding = task.brokers.iter().any(|b| image.partitions_on(*b) > 0);
        if !holding {
            let done = RemovalTask {
                state: RemovalState::Completed,
                error: None,
                ..task.clone()
            };
            tracing::info!(removal = id, brokers = ?task.brokers, "broker removal completed");
            self.commit(&image, vec![task_record(id, &done)])?;
            return Ok(0);
        }
        let (moves, error) = plan_moves(&image, &task.brokers, max_moves);
        let mut records = Vec::new();
        for (topic, partition, target) in &moves {
            let t = &image.topics[topic];
            let p = &t.partitions[*partition as usize];
            match start(&image, t, p, target) {
                Ok(record) => records.extend(record),
                Err(e) => {
                    tracing::warn!(%topic, partition, ?target, error = %e.message, "removal move not started")
                }
            }
        }
        if error != task.error {
            let updated = RemovalTask {
                error: error.clone(),
                ..task.clone()
            };
            records.push(task_record(id, &updated));
        }
        let started = moves.len();
        if !records.is_empty() {
            self.commit(&image, records)?;
        }
        if started > 0 {
            tracing::info!(
                removal = id,
                moves = started,
                "broker removal started moves"
            );
        }
        Ok(started)
    }
}

#[cfg(test)]
#[path = "removal_tests.rs"]
mod tests;
