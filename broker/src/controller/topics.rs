//! CreateTopics: validation, placement and the records of new topics.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use super::error::{ApiError, ControllerError};
use super::names::{collision_key, validate_topic_name, InternalTopic};
use super::placement::{isr_and_leader, place, validate_assignments};
use super::quorum::Controller;
use crate::metadata::records::{ConfigRecord, PartitionRecord, TopicRecord, TOPIC_RESOURCE};
use crate::metadata::{MetadataImage, MetadataRecord, TopicImage};

/// Most partitions one request may create in a topic, so a typo cannot
/// produce millions of records (Kafka's bound is per request too).
pub const MAX_PARTITIONS_PER_REQUEST: usize = 10_000;

/// A topic to create, as CreateTopics describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTopic {
    pub name: String,
    /// -1: `num.partitions`. Must be -1 with manual assignments.
    pub num_partitions: i32,
    /// -1: `default.replication.factor`. Must be -1 with manual assignments.
    pub replication_factor: i16,
    /// Manual placement: (partition id, replicas), partition ids 0..n in any order.
    pub assignments: Vec<(i32, Vec<i32>)>,
    /// Config overrides; a null value is an error, as in Kafka.
    pub configs: Vec<(String, Option<String>)>,
}

impl NewTopic {
    /// A topic with the broker's defaults, as auto-creation makes them.
    pub fn with_defaults(name: impl Into<String>) -> Self {
        NewTopic {
            name: name.into(),
            num_partitions: -1,
            replication_factor: -1,
            assignments: Vec::new(),
            configs: Vec::new(),
        }
    }
}

/// What was (or, for validate_only, would be) created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTopic {
    pub name: String,
    /// Nil when only validated.
    pub topic_id: Uuid,
    pub num_partitions: i32,
    pub replication_factor: i16,
    /// The overrides the topic got.
    pub configs: BTreeMap<String, String>,
}

impl Controller {
    /// Creates the valid topics in one batch; results are in request order.
    pub fn create_topics(
        &self,
        topics: Vec<NewTopic>,
        validate_only: bool,
    ) -> Result<Vec<Result<CreatedTopic, ApiError>>, ControllerError> {
        let _writer = self.write();
        let image = self.image();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for topic in &topics {
            *counts.entry(topic.name.as_str()).or_default() += 1;
        }
        // Collision keys of existing topics and of those accepted so far.
        let mut taken: HashMap<String, String> = image
            .topics
            .keys()
            .map(|name| (collision_key(name), name.clone()))
            .collect();
        let mut records = Vec::new();
        let mut results = Vec::with_capacity(topics.len());
        for topic in &topics {
            let planned = if counts[topic.name.as_str()] > 1 {
                Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    format!("Duplicate topic name `{}` in the request.", topic.name),
                ))
            } else {
                self.plan_topic(&image, topic, &taken, validate_only)
            };
            results.push(planned.map(|(created, topic_records)| {
                taken.insert(collision_key(&created.name), created.name.clone());
                records.extend(topic_records);
                created
            }));
        }
        if !validate_only && !records.is_empty() {
            self.commit(&image, records)?;
            for created in results.iter().flatten() {
                tracing::info!(topic = %created.name, id = %created.topic_id, partitions = created.num_partitions, "topic created");
            }
        }
        Ok(results)
    }

    /// The topic `which`, created with its standard settings if missing.
    /// How an internal topic is created: its partitions, replication and configs.
    pub fn internal_topic(&self, which: InternalTopic) -> NewTopic {
        let live = self.image().placeable_brokers().count();
        match which {
            InternalTopic::ConsumerOffsets => NewTopic {
                name: which.name().into(),
                num_partitions: self.config().offsets_topic_num_partitions,
                // As configured, or Kafka's default of 3 capped to what exists. A
                // configured factor the cluster cannot hold yet fails, as in Kafka,
                // and FindCoordinator answers COORDINATOR_NOT_AVAILABLE until it can.
                replication_factor: self
                    .config()
                    .offsets_topic_replication_factor
                    .unwrap_or(live.clamp(1, 3) as i16),
                assignments: Vec::new(),
                configs: vec![
                    ("cleanup.policy".into(), Some("compact".into())),
                    ("segment.bytes".into(), Some("104857600".into())),
                ],
            },
        }
    }

    pub fn ensure_internal_topic(
        &self,
        which: InternalTopic,
    ) -> Result<Arc<TopicImage>, ControllerError> {
        let name = which.name();
        if let Some(topic) = self.image().topic(name) {
            return Ok(topic.clone());
        }
        match self
            .create_topics(vec![self.internal_topic(which)], false)?
            .pop()
        {
            Some(Err(e)) if e.error != ResponseError::TopicAlreadyExists => Err(e.into()),
            _ => self.image().topic(name).cloned().ok_or_else(|| {
                ApiError::new(
                    ResponseError::UnknownServerError,
                    format!("internal topic {name} was not created"),
                )
                .into()
            }),
        }
    }

    fn plan_topic(
        &self,
        image: &MetadataImage,
        topic: &NewTopic,
        taken: &HashMap<String, String>,
        validate_only: bool,
    ) -> Result<(CreatedTopic, Vec<MetadataRecord>), ApiError> {
        let name = &topic.name;
        validate_topic_name(name)?;
        if image.topic(name).is_some() {
            return Err(ApiError::new(
                ResponseError::TopicAlreadyExists,
                format!("Topic '{name}' already exists."),
            ));
        }
        if let Some(other) = taken.get(&collision_key(name)) {
            return Err(ApiError::new(
                ResponseError::InvalidTopicException,
                format!("Topic '{name}' collides with existing topic '{other}': '.' and '_' are interchangeable in metric names."),
            ));
        }
        let configs = self.validate_new_configs(&topic.configs)?;
        let replicas = self.replica_lists(image, topic)?;
        let topic_id = if validate_only {
            Uuid::nil()
        } else {
            Uuid::new_v4()
        };
        let mut records = vec![MetadataRecord::Topic(TopicRecord {
            name: name.clone(),
            topic_id,
        })];
        records.extend(configs.iter().map(|(key, value)| {
            MetadataRecord::Config(ConfigRecord {
                resource_type: TOPIC_RESOURCE,
                resource_name: name.clone(),
                name: key.clone(),
                value: Some(value.clone()),
            })
        }));
        records.extend(partition_records(image, topic_id, 0, &replicas));
        let created = CreatedTopic {
            name: name.clone(),
            topic_id,
            num_partitions: replicas.len() as i32,
            replication_factor: replicas.first().map_or(0, Vec::len) as i16,
            configs,
        };
        Ok((created, records))
    }

    /// Overrides of a new topic, checked against the topic config rules.
    fn validate_new_configs(
        &self,
        configs: &[(String, Option<String>)],
    ) -> Result<BTreeMap<String, String>, ApiError> {
        let mut overrides = BTreeMap::new();
        for (key, value) in configs {
            let Some(value) = value else {
                return Err(ApiError::new(
                    ResponseError::InvalidConfig,
                    format!("Null value not supported for topic config `{key}`."),
                ));
            };
            overrides.insert(key.clone(), value.clone());
        }
        self.log_defaults()
            .with_overrides(&overrides)
            .map_err(|e| ApiError::new(ResponseError::InvalidConfig, e.to_string()))?;
        Ok(overrides)
    }

    /// Replica lists of a new topic: its manual assignment, or placement.
    fn replica_lists(
        &self,
        image: &MetadataImage,
        topic: &NewTopic,
    ) -> Result<Vec<Vec<i32>>, ApiError> {
        if !topic.assignments.is_empty() {
            if topic.num_partitions != -1 || topic.replication_factor != -1 {
                return Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    "Both numPartitions or replicationFactor and replicasAssignments were set. \
                     Both cannot be used at the same time.",
                ));
            }
            return manual_replica_lists(image, &topic.assignments);
        }
        let partitions = match topic.num_partitions {
            -1 => self.config().num_partitions,
            n => n,
        };
        let replication_factor = match topic.replication_factor {
            -1 => self.config().default_replication_factor,
            n => n,
        };
        let count = usize::try_from(partitions).unwrap_or(0);
        if count == 0 {
            return Err(ApiError::new(
                ResponseError::InvalidPartitions,
                format!("Number of partitions was set to an invalid value {partitions}: it must be positive, or -1 for the default."),
            ));
        }
        if count > MAX_PARTITIONS_PER_REQUEST {
            return Err(too_many_partitions(count));
        }
        place(image, count, replication_factor, image.topics.len())
    }
}

pub(super) fn too_many_partitions(count: usize) -> ApiError {
    ApiError::new(
        ResponseError::InvalidPartitions,
        format!("Cannot create {count} partitions in one request: at most {MAX_PARTITIONS_PER_REQUEST}."),
    )
}

/// Manual assignments sorted by partition id, which must be exactly 0..n.
fn manual_replica_lists(
    image: &MetadataImage,
    assignments: &[(i32, Vec<i32>)],
) -> Result<Vec<Vec<i32>>, ApiError> {
    if assignments.len() > MAX_PARTITIONS_PER_REQUEST {
        return Err(too_many_partitions(assignments.len()));
    }
    let mut by_partition: BTreeMap<i32, &Vec<i32>> = BTreeMap::new();
    for (partition, replicas) in assignments {
        by_partition.insert(*partition, replicas);
    }
    let ids: HashSet<i32> = by_partition.keys().copied().collect();
    let expected: HashSet<i32> = (0..assignments.len() as i32).collect();
    if by_partition.len() != assignments.len() || ids != expected {
        return Err(ApiError::new(
            ResponseError::InvalidReplicaAssignment,
            "Partitions in the manual assignment must be 0, 1, 2, ... with each listed once.",
        ));
    }
    let lists: Vec<Vec<i32>> = by_partition.into_values().cloned().collect();
    validate_assignments(image, 0, &lists)?;
    Ok(lists)
}

/// PartitionRecords for new partitions numbered from `first`.
pub(super) fn partition_records(
    image: &MetadataImage,
    topic_id: Uuid,
    first: usize,
    replicas: &[Vec<i32>],
) -> Vec<MetadataRecord> {
    replicas
        .iter()
        .enumerate()
        .map(|(i, replicas)| {
            let (isr, leader) = isr_and_leader(image, replicas);
            MetadataRecord::Partition(PartitionRecord {
                partition_id: (first + i) as i32,
                topic_id,
                replicas: replicas.clone(),
                isr,
                removing_replicas: Vec::new(),
                adding_replicas: Vec::new(),
                leader,
                leader_recovery_state: 0,
                leader_epoch: 0,
                partition_epoch: 0,
            })
        })
        .collect()
}
