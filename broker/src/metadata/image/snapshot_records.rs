//! The image written back as records: what a metadata snapshot holds.

use super::{MetadataImage, METADATA_VERSION_FEATURE};
use crate::metadata::records::{
    ConfigRecord, FeatureLevelRecord, MetadataRecord, PartitionRecord, ProducerIdsRecord,
    RegisterBrokerRecord, TopicRecord, BROKER_RESOURCE, TOPIC_RESOURCE,
};

impl MetadataImage {
    /// The fewest records that rebuild this image when applied to an empty one.
    ///
    /// `metadata_offset` is not among them (the snapshot id carries it), nor is
    /// `cluster_id` (meta.properties does). Fields still at their empty value
    /// are left out, as Kafka's image writers do.
    pub fn to_records(&self) -> Vec<MetadataRecord> {
        let partitions: usize = self.topics.values().map(|t| t.partitions.len()).sum();
        let mut records =
            Vec::with_capacity(2 + self.brokers.len() + self.topics.len() + partitions);
        // metadata.version first: a reader needs it to interpret what follows.
        if self.metadata_version != 0 {
            records.push(MetadataRecord::FeatureLevel(FeatureLevelRecord {
                name: METADATA_VERSION_FEATURE.into(),
                feature_level: self.metadata_version,
            }));
        }
        for broker in self.brokers.values() {
            // The registration as it stands now, fencing and shutdown state included,
            // so no FenceBroker or BrokerRegistrationChange record is needed.
            records.push(MetadataRecord::RegisterBroker(RegisterBrokerRecord {
                broker_id: broker.id,
                incarnation_id: broker.incarnation_id,
                broker_epoch: broker.epoch,
                endpoints: broker.endpoints.clone(),
                features: broker.features.clone(),
                rack: broker.rack.clone(),
                fenced: broker.fenced,
                in_controlled_shutdown: broker.in_controlled_shutdown,
            }));
        }
        // The cluster default first, as Kafka's ConfigurationsImage writes it.
        let broker_configs = std::iter::once((String::new(), &self.default_broker_configs)).chain(
            self.broker_configs
                .iter()
                .map(|(id, configs)| (id.to_string(), configs)),
        );
        for (resource_name, configs) in broker_configs {
            for (name, value) in configs {
                records.push(MetadataRecord::Config(ConfigRecord {
                    resource_type: BROKER_RESOURCE,
                    resource_name: resource_name.clone(),
                    name: name.clone(),
                    value: Some(value.clone()),
                }));
            }
        }
        for topic in self.topics.values() {
            records.push(MetadataRecord::Topic(TopicRecord {
                name: topic.name.clone(),
                topic_id: topic.id,
            }));
            // In index order: a partition record may only extend the list by one.
            for p in &topic.partitions {
                records.push(MetadataRecord::Partition(PartitionRecord {
                    partition_id: p.partition,
                    topic_id: topic.id,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                    removing_replicas: p.removing_replicas.clone(),
                    adding_replicas: p.adding_replicas.clone(),
                    leader: p.leader,
                    leader_recovery_state: p.leader_recovery_state,
                    leader_epoch: p.leader_epoch,
                    partition_epoch: p.partition_epoch,
                }));
            }
            for (name, value) in &topic.configs {
                records.push(MetadataRecord::Config(ConfigRecord {
                    resource_type: TOPIC_RESOURCE,
                    resource_name: topic.name.clone(),
                    name: name.clone(),
                    value: Some(value.clone()),
                }));
            }
        }
        if self.next_producer_id != 0 {
            // Kafka writes the block owner as -1: only the next id matters here.
            records.push(MetadataRecord::ProducerIds(ProducerIdsRecord {
                broker_id: -1,
                broker_epoch: -1,
                next_producer_id: self.next_producer_id,
            }));
        }
        records
    }
}

#[cfg(test)]
mod tests;
