//! The read-only admin API of `docs/admin-api.yaml` that any node answers
//! from its metadata image: the cluster view and whether a broker may stop.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::metadata::{BrokerImage, MetadataImage};
use crate::storage::LogConfig;

/// `ClusterView` of the contract.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterView {
    pub cluster_id: String,
    pub active_controller_id: Option<i32>,
    pub brokers: Vec<BrokerInfo>,
    pub topics: Vec<TopicInfo>,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BrokerInfo {
    pub id: i32,
    pub state: &'static str,
    /// `broker.excluded`: no new replicas or preferred leaderships.
    pub excluded: bool,
    pub replicas: i64,
    pub leaders: i64,
    pub rack: Option<String>,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TopicInfo {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i32,
}

/// `RestartSafety` of the contract.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RestartSafety {
    pub broker_id: i32,
    pub safe: bool,
    pub partitions_at_min_isr: i64,
    pub reason: Option<String>,
}

/// The cluster as `image` has it; `active_controller` from the quorum view.
pub fn cluster_view(image: &MetadataImage, active_controller: Option<i32>) -> ClusterView {
    let mut replicas: BTreeMap<i32, i64> = BTreeMap::new();
    let mut leaders: BTreeMap<i32, i64> = BTreeMap::new();
    let mut topics = Vec::with_capacity(image.topics.len());
    for topic in image.topics.values() {
        for p in &topic.partitions {
            for id in &p.replicas {
                *replicas.entry(*id).or_default() += 1;
            }
            *leaders.entry(p.leader).or_default() += 1;
        }
        topics.push(TopicInfo {
            name: topic.name.clone(),
            partitions: topic.partitions.len() as i32,
            replication_factor: topic
                .partitions
                .iter()
                .map(|p| p.replicas.len() as i32)
                .max()
                .unwrap_or(0),
        });
    }
    let brokers = image
        .brokers
        .values()
        .map(|b| BrokerInfo {
            id: b.id,
            state: broker_state(b),
            excluded: image.is_excluded(b.id),
            replicas: replicas.get(&b.id).copied().unwrap_or(0),
            leaders: leaders.get(&b.id).copied().unwrap_or(0),
            rack: b.rack.clone(),
        })
        .collect();
    ClusterView {
        cluster_id: image.cluster_id.clone(),
        active_controller_id: active_controller,
        brokers,
        topics,
    }
}

/// A registered broker's state as the contract names it. The image cannot
/// tell a stopped broker from a fenced one: both are `fenced` until unregistered.
fn broker_state(b: &BrokerImage) -> &'static str {
    if b.in_controlled_shutdown {
        "controlled_shutdown"
    } else if b.fenced {
        "fenced"
    } else {
        "running"
    }
}

/// Whether stopping `broker` now keeps every partition it is in sync for at
/// or above its topic's `min.insync.replicas`; `None` for an unknown broker.
pub fn restart_safety(
    image: &MetadataImage,
    log_defaults: &LogConfig,
    broker: i32,
) -> Option<RestartSafety> {
    image.brokers.get(&broker)?;
    let mut at_risk = 0i64;
    let mut example = None;
    for topic in image.topics.values() {
        let min_isr = log_defaults
            .for_topic(&topic.name, &topic.configs)
            .min_insync_replicas;
        for p in &topic.partitions {
            // A partition with one replica has nothing to keep in sync: it is
            // unavailable while its broker is down, whatever the ISR says.
            let remaining = p.isr.iter().filter(|id| **id != broker).count();
            if p.isr.contains(&broker) && remaining < min_isr.max(1) as usize {
                at_risk += 1;
                example.get_or_insert_with(|| format!("{}-{}", topic.name, p.partition));
            }
        }
    }
    Some(RestartSafety {
        broker_id: broker,
        safe: at_risk == 0,
        partitions_at_min_isr: at_risk,
        reason: example.map(|p| {
            format!(
                "stopping broker {broker} would leave {at_risk} partition(s) below \
                 min.insync.replicas, e.g. {p}"
            )
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use crate::metadata::image::testutil::large_image;

    #[test]
    fn counts_replicas_and_leaders_per_broker() {
        let image = large_image(2, 3);
        let view = cluster_view(&image, Some(1000));
        assert_eq!(view.active_controller_id, Some(1000));
        assert_eq!(view.topics.len(), image.topics.len());
        let replicas: i64 = view.brokers.iter().map(|b| b.replicas).sum();
        let expected: usize = image
            .topics
            .values()
            .flat_map(|t| &t.partitions)
            .map(|p| p.replicas.len())
            .sum();
        assert_eq!(replicas, expected as i64);
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["brokers"][0]["excluded"], false);
        assert!(json.get("clusterId").is_some() && json.get("activeControllerId").is_some());
    }

    #[test]
    fn excluded_brokers_are_shown_from_the_image() {
        let mut image = large_image(1, 1);
        image
            .broker_configs
            .entry(3)
            .or_default()
            .insert(crate::metadata::image::EXCLUDED_KEY.into(), "true".into());
        let view = cluster_view(&image, None);
        let excluded: Vec<i32> = view
            .brokers
            .iter()
            .filter(|b| b.excluded)
            .map(|b| b.id)
            .collect();
        assert_eq!(excluded, vec![3]);
    }

    #[test]
    fn a_broker_whose_stop_drops_a_partition_below_min_isr_is_unsafe() {
        let mut image = large_image(1, 1);
        let defaults = LogConfig {
            min_insync_replicas: 2,
            ..LogConfig::from_broker(&BrokerConfig::default())
        };
        let name = image.topics.keys().next().unwrap().clone();
        let broker = *image.brokers.keys().next().unwrap();
        let others: Vec<i32> = image
            .brokers
            .keys()
            .copied()
            .filter(|b| *b != broker)
            .collect();
        let set_isr = |image: &mut MetadataImage, isr: Vec<i32>| {
            let topic = std::sync::Arc::make_mut(image.topics.get_mut(&name).unwrap());
            topic.partitions[0].replicas = isr.clone();
            topic.partitions[0].isr = isr;
        };
        // Three in sync, two needed: any one may stop.
        set_isr(&mut image, vec![broker, others[0], others[1]]);
        assert!(restart_safety(&image, &defaults, broker).unwrap().safe);
        // Two in sync: stopping either leaves one.
        set_isr(&mut image, vec![broker, others[0]]);
        let verdict = restart_safety(&image, &defaults, broker).unwrap();
        assert_eq!((verdict.safe, verdict.partitions_at_min_isr), (false, 1));
        assert!(verdict.reason.unwrap().contains(&format!("{name}-0")));
        // A broker out of the ISR changes nothing by stopping.
        assert!(restart_safety(&image, &defaults, others[1]).unwrap().safe);
        assert!(restart_safety(&image, &defaults, 4242).is_none());
    }
}
