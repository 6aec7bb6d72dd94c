use super::*;
use crate::metadata::records::{
    BrokerRegistrationChangeRecord, FeatureLevelRecord, FenceBrokerRecord, ProducerIdsRecord,
    RemoveTopicRecord, TopicRecord, UnfenceBrokerRecord,
};

fn id(seed: u8) -> Uuid {
    Uuid::from_bytes([seed; 16])
}

fn topic(name: &str, seed: u8) -> MetadataRecord {
    MetadataRecord::Topic(TopicRecord {
        name: name.into(),
        topic_id: id(seed),
    })
}

fn partition(seed: u8, partition_id: i32) -> MetadataRecord {
    MetadataRecord::Partition(PartitionRecord {
        partition_id,
        topic_id: id(seed),
        replicas: vec![1],
        isr: vec![1],
        removing_replicas: vec![],
        adding_replicas: vec![],
        leader: 1,
        leader_recovery_state: 0,
        leader_epoch: 0,
        partition_epoch: 0,
    })
}

fn config(topic: &str, key: &str, value: Option<&str>) -> MetadataRecord {
    MetadataRecord::Config(ConfigRecord {
        resource_type: TOPIC_RESOURCE,
        resource_name: topic.into(),
        name: key.into(),
        value: value.map(str::to_string),
    })
}

fn two_topics() -> MetadataImage {
    MetadataImage::empty("cluster").apply(
        &[
            topic("a", 1),
            partition(1, 0),
            topic("b", 2),
            partition(2, 0),
            partition(2, 1),
        ],
        4,
    )
}

#[test]
fn create_topics_and_look_them_up() {
    let image = two_topics();
    assert_eq!(image.metadata_offset, 4);
    assert_eq!(image.topic("b").unwrap().partitions.len(), 2);
    assert_eq!(image.topic_by_id(&id(1)).unwrap().name, "a");
    assert_eq!(image.partition("b", 1).unwrap().leader, 1);
    assert!(image.partition("b", 2).is_none());
    assert!(image.partition("b", -1).is_none());
}

#[test]
fn changes_copy_only_the_topics_they_touch() {
    let before = two_topics();
    let added = before.apply(&[partition(1, 1)], 5);
    assert_eq!(added.topic("a").unwrap().partitions.len(), 2);
    assert_eq!(before.topic("a").unwrap().partitions.len(), 1);
    assert!(Arc::ptr_eq(
        before.topic("b").unwrap(),
        added.topic("b").unwrap()
    ));
    assert!(!Arc::ptr_eq(
        before.topic("a").unwrap(),
        added.topic("a").unwrap()
    ));

    let configured = added.apply(&[config("b", "retention.ms", Some("10"))], 6);
    assert_eq!(configured.topic("b").unwrap().configs["retention.ms"], "10");
    assert!(Arc::ptr_eq(
        added.topic("a").unwrap(),
        configured.topic("a").unwrap()
    ));
    let unset = configured.apply(&[config("b", "retention.ms", None)], 7);
    assert!(unset.topic("b").unwrap().configs.is_empty());

    let deleted = unset.apply(
        &[MetadataRecord::RemoveTopic(RemoveTopicRecord {
            topic_id: id(2),
        })],
        8,
    );
    assert!(deleted.topic("b").is_none());
    assert!(deleted.topic_by_id(&id(2)).is_none());
    assert!(Arc::ptr_eq(
        unset.topic("a").unwrap(),
        deleted.topic("a").unwrap()
    ));
}

#[test]
fn partition_changes_bump_epochs() {
    let image = two_topics().apply(
        &[MetadataRecord::PartitionChange(PartitionChangeRecord {
            partition_id: 1,
            topic_id: id(2),
            isr: Some(vec![]),
            leader: -1,
            replicas: None,
            removing_replicas: None,
            adding_replicas: None,
            leader_recovery_state: -1,
        })],
        5,
    );
    let p = image.partition("b", 1).unwrap();
    assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (-1, 1, 1));
    assert!(p.isr.is_empty());
    assert_eq!(p.replicas, vec![1]);
}

#[test]
fn cluster_records_set_versions_brokers_and_producer_ids() {
    let image = MetadataImage::empty("c").apply(
        &[
            MetadataRecord::FeatureLevel(FeatureLevelRecord {
                name: METADATA_VERSION_FEATURE.into(),
                feature_level: 7,
            }),
            MetadataRecord::RegisterBroker(RegisterBrokerRecord {
                broker_id: 3,
                incarnation_id: id(3),
                broker_epoch: 1,
                endpoints: vec![crate::metadata::records::BrokerEndpoint {
                    name: "PLAINTEXT".into(),
                    host: "h".into(),
                    port: 9092,
                    security_protocol: 0,
                }],
                features: vec![],
                rack: None,
                fenced: false,
                in_controlled_shutdown: false,
            }),
            MetadataRecord::FenceBroker(FenceBrokerRecord { id: 3, epoch: 1 }),
            MetadataRecord::ProducerIds(ProducerIdsRecord {
                broker_id: 3,
                broker_epoch: 1,
                next_producer_id: 1000,
            }),
        ],
        3,
    );
    assert_eq!(image.metadata_version, 7);
    let broker = &image.brokers[&3];
    assert_eq!(
        (broker.host.as_str(), broker.port, broker.fenced),
        ("h", 9092, true)
    );
    assert_eq!(image.active_brokers().count(), 0);
    assert_eq!(image.next_producer_id, 1000);

    let change = |fenced, in_controlled_shutdown| {
        MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
            broker_id: 3,
            broker_epoch: 1,
            fenced,
            in_controlled_shutdown,
        })
    };
    let unfenced = image.apply(&[change(-1, 0)], 4);
    assert!(unfenced.brokers[&3].is_active());
    let shutting_down = unfenced.apply(&[change(0, 1)], 5);
    let broker = &shutting_down.brokers[&3];
    assert!(!broker.fenced && broker.in_controlled_shutdown && !broker.is_active());
    assert_eq!(
        image.try_apply(
            &[MetadataRecord::UnfenceBroker(UnfenceBrokerRecord {
                id: 9,
                epoch: 1
            })],
            4
        ),
        Err(ApplyError::UnknownBroker(9))
    );
}

#[test]
fn records_that_do_not_fit_are_errors_for_try_apply() {
    let image = two_topics();
    assert_eq!(
        image.try_apply(&[partition(9, 0)], 5),
        Err(ApplyError::UnknownTopicId(id(9)))
    );
    assert_eq!(
        image.try_apply(&[partition(1, 5)], 5),
        Err(ApplyError::BadPartition {
            topic_id: id(1),
            partition: 5
        })
    );
    assert!(matches!(
        image.try_apply(&[topic("a", 7)], 5),
        Err(ApplyError::TopicExists { .. })
    ));
    assert_eq!(
        image.try_apply(&[config("zz", "retention.ms", Some("1"))], 5),
        Err(ApplyError::UnknownConfigTopic("zz".into()))
    );
    // `apply` skips the bad record and keeps the good ones.
    let applied = image.apply(&[partition(9, 0), partition(1, 1)], 5);
    assert_eq!(applied.topic("a").unwrap().partitions.len(), 2);
}

fn broker_config(resource: &str, key: &str, value: Option<&str>) -> MetadataRecord {
    MetadataRecord::Config(ConfigRecord {
        resource_type: BROKER_RESOURCE,
        resource_name: resource.into(),
        name: key.into(),
        value: value.map(str::to_string),
    })
}

#[test]
fn broker_configs_are_kept_per_broker_and_for_the_default() {
    let image = MetadataImage::empty("c").apply(
        &[
            broker_config("2", EXCLUDED_KEY, Some("true")),
            broker_config("5", EXCLUDED_KEY, Some("true")),
            broker_config("", "removal.r", Some("{}")),
            broker_config("5", EXCLUDED_KEY, None),
        ],
        3,
    );
    assert!(image.is_excluded(2));
    assert!(!image.is_excluded(5) && !image.is_excluded(0));
    assert_eq!(image.excluded_brokers().collect::<Vec<_>>(), vec![2]);
    // The deleted key leaves no empty entry behind.
    assert_eq!(image.broker_configs.keys().collect::<Vec<_>>(), vec![&2]);
    assert_eq!(image.default_broker_configs["removal.r"], "{}");
    assert_eq!(
        image.broker_resource_configs(""),
        Some(&image.default_broker_configs)
    );
    assert!(image.broker_resource_configs("7").unwrap().is_empty());
    assert!(image.broker_resource_configs("x").is_none());

    // Any value but `true` does not exclude.
    let image = image.apply(&[broker_config("2", EXCLUDED_KEY, Some("yes"))], 4);
    assert!(!image.is_excluded(2));
}

#[test]
fn a_broker_config_for_a_name_that_is_no_id_does_not_fit() {
    let image = MetadataImage::empty("c");
    let err = image
        .try_apply(&[broker_config("b-1", EXCLUDED_KEY, Some("true"))], 0)
        .unwrap_err();
    assert_eq!(err, ApplyError::BadBrokerResource("b-1".into()));
    // A broker following the log skips it and keeps going.
    assert_eq!(
        image.apply(&[broker_config("b-1", EXCLUDED_KEY, Some("true"))], 0),
        MetadataImage {
            metadata_offset: 0,
            ..image.clone()
        }
    );
}
