//! Metadata: brokers, controller and topic/partition leadership, with topic
//! auto-creation when the client and the broker both allow it.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{ApiKey, BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::config::BrokerConfig;
use crate::metadata::{MetadataImage, TopicImage};
use crate::server::listeners::{broker_address, own_address};
use crate::server::BrokerState;

pub const VERSIONS: &[(ApiKey, i16, i16)] = &[(ApiKey::Metadata, 0, 12)];

/// "Authorized operations" value meaning: not computed (no ACLs here).
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

pub async fn handle(
    state: &BrokerState,
    version: i16,
    request: MetadataRequest,
) -> MetadataResponse {
    let mut image = state.image();
    // v0 used an empty list to mean "all topics"; later versions use null.
    let requested = match request.topics {
        Some(topics) if !(version == 0 && topics.is_empty()) => Some(topics),
        _ => None,
    };
    let topics = match requested {
        None => image
            .topics
            .values()
            .map(|topic| topic_response(&image, topic))
            .collect(),
        Some(wanted) => {
            let auto_create = (version < 4 || request.allow_auto_topic_creation)
                && state.config.auto_create_topics_enable;
            let mut created_any = false;
            let mut errors = Vec::new();
            for topic in &wanted {
                if let Some(name) = &topic.name {
                    if auto_create && image.topic(name).is_none() {
                        match state.auto_create_topic(name).await {
                            Ok(()) => created_any = true,
                            Err(code) => errors.push((name.0.to_string(), code)),
                        }
                    }
                }
            }
            if created_any {
                image = state.image();
            }
            wanted
                .iter()
                .map(|topic| {
                    let found = match &topic.name {
                        Some(name) => image.topic(name),
                        None => image.topic_by_id(&topic.topic_id),
                    };
                    match found {
                        Some(t) => topic_response(&image, t),
                        None => {
                            let name = topic.name.as_ref().map(|n| n.0.to_string());
                            let code = errors
                                .iter()
                                .find(|(n, _)| Some(n) == name.as_ref())
                                .map(|(_, c)| *c)
                                .unwrap_or_else(|| {
                                    if topic.name.is_some() {
                                        ResponseError::UnknownTopicOrPartition.code()
                                    } else {
                                        ResponseError::UnknownTopicId.code()
                                    }
                                });
                            MetadataResponseTopic::default()
                                .with_error_code(code)
                                .with_name(topic.name.clone())
                                .with_topic_id(topic.topic_id)
                                .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
                        }
                    }
                })
                .collect()
        }
    };
    MetadataResponse::default()
        .with_brokers(brokers(&image, &state.config))
        .with_cluster_id(Some(StrBytes::from_string(image.cluster_id.clone())))
        .with_controller_id(BrokerId(state.config.node_id))
        .with_topics(topics)
        .with_cluster_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
}

/// The unfenced brokers, as Kafka lists them; never none. A client told of no broker
/// forgets every broker it knew, its bootstrap servers too (librdkafka 2.10 and later
/// bootstrap again only after `metadata.recovery.rebootstrap.trigger.ms`, 5 minutes), and
/// every broker is fenced for a moment when a whole cluster restarts. So while no broker
/// is unfenced, the answering one lists itself: the client keeps a broker to ask again.
fn brokers(image: &MetadataImage, config: &BrokerConfig) -> Vec<MetadataResponseBroker> {
    let entry = |id: i32, (host, port): (String, u16), rack: Option<String>| {
        MetadataResponseBroker::default()
            .with_node_id(BrokerId(id))
            .with_host(StrBytes::from_string(host))
            .with_port(port as i32)
            .with_rack(rack.map(StrBytes::from_string))
    };
    let live: Vec<_> = image
        .brokers
        .values()
        .filter(|b| !b.fenced)
        // The address on the listener this request came in on.
        .filter_map(|b| Some(entry(b.id, broker_address(b)?, b.rack.clone())))
        .collect();
    if live.is_empty() {
        return vec![entry(
            config.node_id,
            own_address(config),
            config.rack.clone(),
        )];
    }
    live
}

fn topic_response(image: &MetadataImage, topic: &TopicImage) -> MetadataResponseTopic {
    let live = |id: &i32| image.brokers.get(id).is_some_and(|b| !b.fenced);
    let partitions = topic
        .partitions
        .iter()
        .map(|p| {
            let error = if live(&p.leader) {
                0
            } else {
                ResponseError::LeaderNotAvailable.code()
            };
            MetadataResponsePartition::default()
                .with_error_code(error)
                .with_partition_index(p.partition)
                .with_leader_id(BrokerId(p.leader))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(p.replicas.iter().copied().map(BrokerId).collect())
                .with_isr_nodes(p.isr.iter().copied().map(BrokerId).collect())
                .with_offline_replicas(
                    p.replicas
                        .iter()
                        .filter(|r| !live(r))
                        .copied()
                        .map(BrokerId)
                        .collect(),
                )
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(topic.id)
        .with_is_internal(topic.name.starts_with("__"))
        .with_partitions(partitions)
        .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
}

/// A topic id of all zeroes means "no id" on the wire.
pub fn known_topic_id(id: &Uuid) -> Option<&Uuid> {
    (!id.is_nil()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::{lifecycle_tests, MemoryMetadataLog};
    use crate::server::testing::broker_state_over;

    fn listed(answer: &MetadataResponse) -> Vec<i32> {
        answer.brokers.iter().map(|b| b.node_id.0).collect()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn unfenced_brokers_are_listed_and_never_none() {
        let dir = tempfile::tempdir().unwrap();
        let metadata = MemoryMetadataLog::new();
        let state = broker_state_over(dir.path(), &metadata);
        let me = state.config.node_id;
        let other = me + 1;
        let ask = || handle(&state, 12, MetadataRequest::default());

        lifecycle_tests::unfenced(&state.controller, other, 0);
        assert!(listed(&ask().await).contains(&other));
        // Every session expires, as when a whole cluster restarts.
        state.controller.fence_stale_brokers(0).unwrap();
        state.controller.fence_stale_brokers(3_600_000).unwrap();
        assert!(state.image().brokers.values().all(|b| b.fenced));
        let answer = ask().await;
        assert_eq!(listed(&answer), [me], "every broker fenced: itself");
        let (host, port) = own_address(&state.config);
        assert_eq!(answer.brokers[0].host.as_str(), host);
        assert_eq!(answer.brokers[0].port, port as i32);

        lifecycle_tests::unfenced(&state.controller, other, 3_600_000);
        assert_eq!(listed(&ask().await), [other], "only unfenced brokers");
    }
}
