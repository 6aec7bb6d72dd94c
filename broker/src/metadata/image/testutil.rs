//! Varied images for tests: seeded random sequences of records, each one
//! chosen to fit the image built so far (with a few that do not, which
//! `apply` must skip).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use super::{MetadataImage, METADATA_VERSION_FEATURE};
use crate::metadata::records::*;

const TOPIC_NAMES: [&str; 6] = [
    "orders",
    "payments",
    "a",
    "b-1",
    "logs.x",
    "__consumer_offsets",
];
const CONFIG_KEYS: [&str; 3] = ["retention.ms", "cleanup.policy", "segment.bytes"];
const BROKER_CONFIG_KEYS: [&str; 2] = [super::EXCLUDED_KEY, "removal.x"];

fn ids(rng: &mut StdRng, max_len: usize) -> Vec<i32> {
    let len = rng.random_range(0..=max_len);
    (0..len).map(|_| rng.random_range(0..6)).collect()
}

fn maybe_ids(rng: &mut StdRng) -> Option<Vec<i32>> {
    rng.random_bool(0.5).then(|| ids(rng, 4))
}

fn register_broker(rng: &mut StdRng) -> MetadataRecord {
    let endpoints = (0..rng.random_range(0..3))
        .map(|i| BrokerEndpoint {
            name: format!("LISTENER{i}"),
            host: format!("kafka-{}.example", rng.random_range(0..9)),
            port: rng.random(),
            security_protocol: rng.random_range(0..4),
        })
        .collect();
    let features = (0..rng.random_range(0..3))
        .map(|i| BrokerFeature {
            name: format!("feature.{i}"),
            min_supported_version: rng.random_range(0..4),
            max_supported_version: rng.random_range(4..9),
        })
        .collect();
    MetadataRecord::RegisterBroker(RegisterBrokerRecord {
        broker_id: rng.random_range(0..6),
        incarnation_id: Uuid::from_u128(rng.random()),
        broker_epoch: rng.random_range(0..1000),
        endpoints,
        features,
        rack: rng
            .random_bool(0.5)
            .then(|| format!("rack-{}", rng.random_range(0..3))),
        fenced: rng.random_bool(0.5),
        in_controlled_shutdown: rng.random_bool(0.2),
    })
}

/// A topic id of the image most of the time, sometimes an unknown one.
fn topic_id(rng: &mut StdRng, image: &MetadataImage) -> Uuid {
    let known: Vec<Uuid> = image.topic_ids.keys().copied().collect();
    if known.is_empty() || rng.random_bool(0.05) {
        return Uuid::from_u128(rng.random());
    }
    known[rng.random_range(0..known.len())]
}

fn partition_count(image: &MetadataImage, id: &Uuid) -> i32 {
    image
        .topic_by_id(id)
        .map_or(0, |t| t.partitions.len() as i32)
}

fn next_record(rng: &mut StdRng, image: &MetadataImage) -> MetadataRecord {
    let broker_id = rng.random_range(0..6);
    let epoch = rng.random_range(0..1000);
    match rng.random_range(0..13) {
        0 => register_broker(rng),
        1 => MetadataRecord::FenceBroker(FenceBrokerRecord {
            id: broker_id,
            epoch,
        }),
        2 => MetadataRecord::UnfenceBroker(UnfenceBrokerRecord {
            id: broker_id,
            epoch,
        }),
        3 => MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
            broker_id,
            broker_epoch: epoch,
            fenced: rng.random_range(-1..=1),
            in_controlled_shutdown: rng.random_range(0..=1),
        }),
        // Removals half as often as creations, so that topics accumulate.
        9 if rng.random_bool(0.5) => MetadataRecord::RemoveTopic(RemoveTopicRecord {
            topic_id: topic_id(rng, image),
        }),
        4 | 9 => MetadataRecord::Topic(TopicRecord {
            name: TOPIC_NAMES[rng.random_range(0..TOPIC_NAMES.len())].into(),
            topic_id: Uuid::from_u128(rng.random()),
        }),
        5 | 6 => {
            let topic_id = topic_id(rng, image);
            MetadataRecord::Partition(PartitionRecord {
                // Mostly the next partition, sometimes a replacement.
                partition_id: rng.random_range(0..=partition_count(image, &topic_id)),
                topic_id,
                replicas: ids(rng, 4),
                isr: ids(rng, 4),
                removing_replicas: ids(rng, 2),
                adding_replicas: ids(rng, 2),
                leader: rng.random_range(-1..6),
                leader_recovery_state: rng.random_range(0..=1),
                leader_epoch: rng.random_range(0..100),
                partition_epoch: rng.random_range(0..100),
            })
        }
        7 => {
            let topic_id = topic_id(rng, image);
            MetadataRecord::PartitionChange(PartitionChangeRecord {
                partition_id: rng.random_range(0..=partition_count(image, &topic_id)),
                topic_id,
                isr: maybe_ids(rng),
                leader: rng.random_range(NO_LEADER_CHANGE..6),
                replicas: maybe_ids(rng),
                removing_replicas: maybe_ids(rng),
                adding_replicas: maybe_ids(rng),
                leader_recovery_state: rng.random_range(-1..=1),
            })
        }
        8 => {
            // Now and then a broker config: per broker, the cluster default, or
            // (rarely) a name that is no broker id, which the image refuses.
            let broker = rng.random_bool(0.2);
            let (resource_type, resource_name, keys): (i8, String, &[&str]) = if broker {
                let name = match rng.random_range(0..8) {
                    0 => String::new(),
                    1 => "not-an-id".into(),
                    id => (id - 2).to_string(),
                };
                (BROKER_RESOURCE, name, &BROKER_CONFIG_KEYS)
            } else {
                (
                    TOPIC_RESOURCE,
                    TOPIC_NAMES[rng.random_range(0..TOPIC_NAMES.len())].into(),
                    &CONFIG_KEYS,
                )
            };
            MetadataRecord::Config(ConfigRecord {
                resource_type,
                resource_name,
                name: keys[rng.random_range(0..keys.len())].into(),
                value: rng
                    .random_bool(0.8)
                    .then(|| rng.random_range(0..1000).to_string()),
            })
        }
        10 => MetadataRecord::FeatureLevel(FeatureLevelRecord {
            name: if rng.random_bool(0.7) {
                METADATA_VERSION_FEATURE.into()
            } else {
                "kraft.version".into()
            },
            feature_level: rng.random_range(1..25),
        }),
        11 => MetadataRecord::ProducerIds(ProducerIdsRecord {
            broker_id,
            broker_epoch: epoch,
            next_producer_id: rng.random_range(0..1_000_000),
        }),
        _ => MetadataRecord::NoOp(NoOpRecord),
    }
}

/// The image after `steps` random records generated from `seed`.
pub(crate) fn random_image(seed: u64, steps: usize) -> MetadataImage {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut image = MetadataImage::empty("cluster");
    for offset in 0..steps {
        let record = next_record(&mut rng, &image);
        image = image.apply(&[record], offset as i64);
    }
    image
}

/// An image with `topics` topics of `partitions` partitions each, three
/// replicas per partition across five brokers, and a config override per topic.
pub(crate) fn large_image(topics: usize, partitions: usize) -> MetadataImage {
    let mut records = vec![MetadataRecord::FeatureLevel(FeatureLevelRecord {
        name: METADATA_VERSION_FEATURE.into(),
        feature_level: 20,
    })];
    let mut rng = StdRng::seed_from_u64(7);
    for broker_id in 0..5 {
        if let MetadataRecord::RegisterBroker(mut r) = register_broker(&mut rng) {
            r.broker_id = broker_id;
            records.push(MetadataRecord::RegisterBroker(r));
        }
    }
    for t in 0..topics {
        let name = format!("topic-{t:05}");
        let topic_id = Uuid::from_u128(rng.random());
        records.push(MetadataRecord::Topic(TopicRecord {
            name: name.clone(),
            topic_id,
        }));
        for p in 0..partitions as i32 {
            let replicas: Vec<i32> = (0..3).map(|r| (p + r) % 5).collect();
            records.push(MetadataRecord::Partition(PartitionRecord {
                partition_id: p,
                topic_id,
                isr: replicas.clone(),
                leader: replicas[0],
                replicas,
                removing_replicas: vec![],
                adding_replicas: vec![],
                leader_recovery_state: 0,
                leader_epoch: 3,
                partition_epoch: 5,
            }));
        }
        records.push(MetadataRecord::Config(ConfigRecord {
            resource_type: TOPIC_RESOURCE,
            resource_name: name,
            name: "retention.ms".into(),
            value: Some("86400000".into()),
        }));
    }
    let last_offset = records.len() as i64 - 1;
    MetadataImage::empty("cluster")
        .try_apply(&records, last_offset)
        .expect("records built to fit")
}
