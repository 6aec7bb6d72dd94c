//! The immutable view of the cluster that handlers read: one snapshot per
//! request, replaced as a whole after every applied batch of records.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use uuid::Uuid;

use super::records::{
    BrokerEndpoint, BrokerFeature, BrokerRegistrationChangeRecord, ConfigRecord, MetadataRecord,
    PartitionChangeRecord, PartitionRecord, RegisterBrokerRecord, BROKER_RESOURCE,
    NO_LEADER_CHANGE, TOPIC_RESOURCE,
};

pub use broker_configs::EXCLUDED_KEY;
pub use removals::{RemovalState, RemovalTask, REMOVAL_KEY_PREFIX};

/// Name of the feature whose level is the metadata version.
pub const METADATA_VERSION_FEATURE: &str = "metadata.version";

/// A record that does not fit the image it is applied to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("topic id {0} is not known")]
    UnknownTopicId(Uuid),
    #[error("topic `{name}` already exists with id {id}")]
    TopicExists { name: String, id: Uuid },
    #[error("topic id {0} is already used")]
    TopicIdInUse(Uuid),
    #[error("partition {partition} of topic id {topic_id} is out of order or unknown")]
    BadPartition { topic_id: Uuid, partition: i32 },
    #[error("config record for unknown topic `{0}`")]
    UnknownConfigTopic(String),
    #[error("broker {0} is not registered")]
    UnknownBroker(i32),
    #[error("broker config record for `{0}`, which is neither a broker id nor empty")]
    BadBrokerResource(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerImage {
    pub id: i32,
    pub epoch: i64,
    /// The first endpoint's address, the one clients are told.
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
    pub fenced: bool,
    /// Moving its leaderships away before it stops; it takes no new ones.
    pub in_controlled_shutdown: bool,
    pub incarnation_id: Uuid,
    /// Every registered listener and supported feature range, kept so that a
    /// snapshot carries the whole registration.
    pub endpoints: Vec<BrokerEndpoint>,
    pub features: Vec<BrokerFeature>,
}

impl BrokerImage {
    /// May lead partitions and receive new replicas.
    pub fn is_active(&self) -> bool {
        !self.fenced && !self.in_controlled_shutdown
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionImage {
    pub partition: i32,
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// Replicas leaving and joining during a reassignment.
    pub removing_replicas: Vec<i32>,
    pub adding_replicas: Vec<i32>,
    /// 1 while recovering from an unclean leader election.
    pub leader_recovery_state: i8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    pub name: String,
    pub id: Uuid,
    /// Index == partition id.
    pub partitions: Vec<PartitionImage>,
    /// Overrides only; defaults come from the broker config.
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataImage {
    pub cluster_id: String,
    /// Offset of the last applied record; -1 before any.
    pub metadata_offset: i64,
    /// Level of the `metadata.version` feature; 0 until set.
    pub metadata_version: i16,
    pub brokers: BTreeMap<i32, BrokerImage>,
    pub topics: BTreeMap<String, Arc<TopicImage>>,
    pub topic_ids: HashMap<Uuid, String>,
    /// First id of the next block the controller hands out.
    pub next_producer_id: i64,
    /// Dynamic BROKER configs per broker id (registered or not, as in Kafka).
    pub broker_configs: BTreeMap<i32, BTreeMap<String, String>>,
    /// Dynamic BROKER configs of the default resource (empty name): the cluster-wide default.
    pub default_broker_configs: BTreeMap<String, String>,
}

impl MetadataImage {
    pub fn empty(cluster_id: impl Into<String>) -> Self {
        MetadataImage {
            cluster_id: cluster_id.into(),
            metadata_offset: -1,
            metadata_version: 0,
            brokers: BTreeMap::new(),
            topics: BTreeMap::new(),
            topic_ids: HashMap::new(),
            next_producer_id: 0,
            broker_configs: BTreeMap::new(),
            default_broker_configs: BTreeMap::new(),
        }
    }

    pub fn topic(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<&Arc<TopicImage>> {
        self.topic_ids
            .get(id)
            .and_then(|name| self.topics.get(name))
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionImage> {
        let index = usize::try_from(partition).ok()?;
        self.topic(topic)?.partitions.get(index)
    }

    /// Brokers that may host new replicas and lead: unfenced, not shutting down.
    pub fn active_brokers(&self) -> impl Iterator<Item = &BrokerImage> {
        self.brokers.values().filter(|b| b.is_active())
    }

    /// Active brokers that are not excluded: where new replicas go.
    pub fn placeable_brokers(&self) -> impl Iterator<Item = &BrokerImage> {
        self.active_brokers().filter(|b| !self.is_excluded(b.id))
    }

    /// A new image with `records` applied; topics they do not touch stay shared.
    /// A record that does not fit is logged and skipped, as a broker following
    /// the log must keep going; the controller uses [`Self::try_apply`].
    pub fn apply(&self, records: &[MetadataRecord], last_offset: i64) -> MetadataImage {
        let mut next = self.clone();
        for record in records {
            if let Err(error) = next.apply_record(record) {
                tracing::warn!(%error, ?record, "skipping metadata record");
            }
        }
        next.metadata_offset = last_offset;
        next
    }

    /// Like [`Self::apply`], but the first record that does not fit is an error
    /// and nothing is applied.
    pub fn try_apply(
        &self,
        records: &[MetadataRecord],
        last_offset: i64,
    ) -> Result<MetadataImage, ApplyError> {
        let mut next = self.clone();
        for record in records {
            next.apply_record(record)?;
        }
        next.metadata_offset = last_offset;
        Ok(next)
    }

    /// Applies one record in place, for building an image (log replay) that no
    /// reader sees until it is complete. Leaves `metadata_offset` to the caller.
    pub fn apply_record(&mut self, record: &MetadataRecord) -> Result<(), ApplyError> {
        match record {
            MetadataRecord::RegisterBroker(r) => self.register_broker(r),
            MetadataRecord::UnregisterBroker(r) => {
                self.brokers
                    .remove(&r.id)
                    .ok_or(ApplyError::UnknownBroker(r.id))?;
            }
            MetadataRecord::FenceBroker(r) => self.set_fenced(r.id, true)?,
            MetadataRecord::UnfenceBroker(r) => self.set_fenced(r.id, false)?,
            MetadataRecord::BrokerRegistrationChange(r) => self.change_registration(r)?,
            MetadataRecord::Topic(r) => {
                if let Some(existing) = self.topics.get(&r.name) {
                    return Err(ApplyError::TopicExists {
                        name: r.name.clone(),
                        id: existing.id,
                    });
                }
                if self.topic_ids.contains_key(&r.topic_id) {
                    return Err(ApplyError::TopicIdInUse(r.topic_id));
                }
                self.topic_ids.insert(r.topic_id, r.name.clone());
                self.topics.insert(
                    r.name.clone(),
                    Arc::new(TopicImage {
                        name: r.name.clone(),
                        id: r.topic_id,
                        partitions: Vec::new(),
                        configs: BTreeMap::new(),
                    }),
                );
            }
            MetadataRecord::Partition(r) => self.put_partition(r)?,
            MetadataRecord::PartitionChange(r) => self.change_partition(r)?,
            MetadataRecord::Config(r) => self.set_config(r)?,
            MetadataRecord::RemoveTopic(r) => {
                let name = self
                    .topic_ids
                    .remove(&r.topic_id)
                    .ok_or(ApplyError::UnknownTopicId(r.topic_id))?;
                self.topics.remove(&name);
            }
            MetadataRecord::FeatureLevel(r) => {
                if r.name == METADATA_VERSION_FEATURE {
                    self.metadata_version = r.feature_level;
                }
            }
            MetadataRecord::ProducerIds(r) => self.next_producer_id = r.next_producer_id,
            MetadataRecord::NoOp(_) => {}
        }
        Ok(())
    }

    fn register_broker(&mut self, r: &RegisterBrokerRecord) {
        // Clients are told the first endpoint: the controller registers the
        // client listener first.
        let (host, port) = r
            .endpoints
            .first()
            .map_or((String::new(), 0), |e| (e.host.clone(), e.port));
        self.brokers.insert(
            r.broker_id,
            BrokerImage {
                id: r.broker_id,
                epoch: r.broker_epoch,
                host,
                port,
                rack: r.rack.clone(),
                fenced: r.fenced,
                in_controlled_shutdown: r.in_controlled_shutdown,
                incarnation_id: r.incarnation_id,
                endpoints: r.endpoints.clone(),
                features: r.features.clone(),
            },
        );
    }

    /// Fencing: -1 unfences, 1 fences; controlled shutdown: 1 enters it, and
    /// only a new registration leaves it. 0 changes nothing, as in Kafka.
    fn change_registration(
        &mut self,
        r: &BrokerRegistrationChangeRecord,
    ) -> Result<(), ApplyError> {
        let broker = self.broker_mut(r.broker_id)?;
        match r.fenced {
            1 => broker.fenced = true,
            -1 => broker.fenced = false,
            _ => {}
        }
        if r.in_controlled_shutdown == 1 {
            broker.in_controlled_shutdown = true;
        }
        Ok(())
    }

    fn broker_mut(&mut self, id: i32) -> Result<&mut BrokerImage, ApplyError> {
        self.brokers
            .get_mut(&id)
            .ok_or(ApplyError::UnknownBroker(id))
    }

    fn set_fenced(&mut self, id: i32, fenced: bool) -> Result<(), ApplyError> {
        self.broker_mut(id)?.fenced = fenced;
        Ok(())
    }

    /// The topic with `id`, copied if another image still shares it.
    fn topic_mut(&mut self, id: &Uuid) -> Result<&mut TopicImage, ApplyError> {
        let name = self
            .topic_ids
            .get(id)
            .ok_or(ApplyError::UnknownTopicId(*id))?;
        let topic = self
            .topics
            .get_mut(name)
            .ok_or(ApplyError::UnknownTopicId(*id))?;
        Ok(Arc::make_mut(topic))
    }

    fn put_partition(&mut self, r: &PartitionRecord) -> Result<(), ApplyError> {
        let topic = self.topic_mut(&r.topic_id)?;
        let image = PartitionImage {
            partition: r.partition_id,
            leader: r.leader,
            leader_epoch: r.leader_epoch,
            partition_epoch: r.partition_epoch,
            replicas: r.replicas.clone(),
            isr: r.isr.clone(),
            removing_replicas: r.removing_replicas.clone(),
            adding_replicas: r.adding_replicas.clone(),
            leader_recovery_state: r.leader_recovery_state,
        };
        // Partitions arrive in order; a record may also replace an existing one.
        match usize::try_from(r.partition_id) {
            Ok(i) if i < topic.partitions.len() => topic.partitions[i] = image,
            Ok(i) if i == topic.partitions.len() => topic.partitions.push(image),
            _ => {
                return Err(ApplyError::BadPartition {
                    topic_id: r.topic_id,
                    partition: r.partition_id,
                })
            }
        }
        Ok(())
    }

    fn change_partition(&mut self, r: &PartitionChangeRecord) -> Result<(), ApplyError> {
        let topic = self.topic_mut(&r.topic_id)?;
        let partition = usize::try_from(r.partition_id)
            .ok()
            .and_then(|i| topic.partitions.get_mut(i))
            .ok_or(ApplyError::BadPartition {
                topic_id: r.topic_id,
                partition: r.partition_id,
            })?;
        if let Some(isr) = &r.isr {
            partition.isr = isr.clone();
        }
        if let Some(replicas) = &r.replicas {
            partition.replicas = replicas.clone();
        }
        if let Some(removing) = &r.removing_replicas {
            partition.removing_replicas = removing.clone();
        }
        if let Some(adding) = &r.adding_replicas {
            partition.adding_replicas = adding.clone();
        }
        // -1 means unchanged.
        if r.leader_recovery_state >= 0 {
            partition.leader_recovery_state = r.leader_recovery_state;
        }
        // Saturating: a garbled epoch near i32::MAX must not take the broker down.
        if r.leader != NO_LEADER_CHANGE {
            partition.leader = r.leader;
            partition.leader_epoch = partition.leader_epoch.saturating_add(1);
        }
        partition.partition_epoch = partition.partition_epoch.saturating_add(1);
        Ok(())
    }

    fn set_config(&mut self, r: &ConfigRecord) -> Result<(), ApplyError> {
        match r.resource_type {
            TOPIC_RESOURCE => self.set_topic_config(r),
            BROKER_RESOURCE => self.set_broker_config(r),
            _ => {
                // Kafka's other resources (client metrics, groups) have no use here.
                tracing::debug!(resource = %r.resource_name, key = %r.name, "ignoring config record");
                Ok(())
            }
        }
    }

    fn set_topic_config(&mut self, r: &ConfigRecord) -> Result<(), ApplyError> {
        let id = self
            .topics
            .get(&r.resource_name)
            .map(|t| t.id)
            .ok_or_else(|| ApplyError::UnknownConfigTopic(r.resource_name.clone()))?;
        let topic = self.topic_mut(&id)?;
        match &r.value {
            Some(value) => topic.configs.insert(r.name.clone(), value.clone()),
            None => topic.configs.remove(&r.name),
        };
        Ok(())
    }
}

mod broker_configs;
mod removals;
mod snapshot_records;

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;
