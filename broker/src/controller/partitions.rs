//! CreatePartitions: grow a topic's partition count.

use std::collections::HashMap;

use kafka_protocol::error::ResponseError;

use super::error::{ApiError, ControllerError};
use super::placement::{place, validate_assignments};
use super::quorum::Controller;
use super::topics::{partition_records, too_many_partitions, MAX_PARTITIONS_PER_REQUEST};
use crate::metadata::{MetadataImage, MetadataRecord};

/// A CreatePartitions item: grow `topic` to `count` partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPartitions {
    pub topic: String,
    pub count: i32,
    /// Replicas of each new partition, in order; `None` places them.
    pub assignments: Option<Vec<Vec<i32>>>,
}

impl Controller {
    /// Adds partitions to each valid topic in one batch; results in request order.
    pub fn create_partitions(
        &self,
        requests: Vec<NewPartitions>,
        validate_only: bool,
    ) -> Result<Vec<Result<(), ApiError>>, ControllerError> {
        let _writer = self.write();
        let image = self.image();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for request in &requests {
            *counts.entry(request.topic.as_str()).or_default() += 1;
        }
        let mut records = Vec::new();
        let mut results = Vec::with_capacity(requests.len());
        for request in &requests {
            let planned = if counts[request.topic.as_str()] > 1 {
                Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    format!("Duplicate topic name `{}` in the request.", request.topic),
                ))
            } else {
                plan(&image, request)
            };
            results.push(planned.map(|new_records| records.extend(new_records)));
        }
        if !validate_only && !records.is_empty() {
            self.commit(&image, records)?;
        }
        Ok(results)
    }
}

fn plan(image: &MetadataImage, request: &NewPartitions) -> Result<Vec<MetadataRecord>, ApiError> {
    let name = &request.topic;
    let topic = image.topic(name).ok_or_else(|| {
        ApiError::new(
            ResponseError::UnknownTopicOrPartition,
            format!("Topic '{name}' does not exist."),
        )
    })?;
    let current = topic.partitions.len();
    let target = usize::try_from(request.count).unwrap_or(0);
    if target == current {
        return Err(ApiError::new(
            ResponseError::InvalidPartitions,
            format!("Topic already has {current} partition(s)."),
        ));
    }
    if target < current {
        return Err(ApiError::new(
            ResponseError::InvalidPartitions,
            format!(
                "Topic currently has {current} partition(s), which is higher than the requested {}.",
                request.count
            ),
        ));
    }
    let added = target - current;
    if added > MAX_PARTITIONS_PER_REQUEST {
        return Err(too_many_partitions(added));
    }
    let replicas = match &request.assignments {
        Some(assignments) => {
            if assignments.len() != added {
                return Err(ApiError::new(
                    ResponseError::InvalidReplicaAssignment,
                    format!(
                        "Attempted to add {added} additional partition(s), but {} assignment(s) were given.",
                        assignments.len()
                    ),
                ));
            }
            validate_assignments(image, current, assignments)?;
            assignments.clone()
        }
        None => {
            let replication_factor = topic.partitions.first().map_or(1, |p| p.replicas.len());
            place(image, added, replication_factor as i16, current)?
        }
    };
    Ok(partition_records(image, topic.id, current, &replicas))
}
