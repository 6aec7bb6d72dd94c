//! Controller flows over the in-memory log: every operation and error code.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;

use super::*;
use crate::config::BrokerConfig;
use crate::metadata::records::{BrokerEndpoint, RegisterBrokerRecord};
use crate::metadata::{MetadataImage, MetadataRecord};

fn open_with(config: &BrokerConfig, log: &MemoryMetadataLog) -> Arc<Controller> {
    log.open_controller(config)
}

fn open() -> (Arc<Controller>, MemoryMetadataLog) {
    let log = MemoryMetadataLog::new();
    (open_with(&BrokerConfig::default(), &log), log)
}

/// A controller whose log already registers brokers 2.. (fenced or not).
fn open_with_brokers(others: &[(i32, bool)]) -> Arc<Controller> {
    configured_with_brokers(&BrokerConfig::default(), others)
}

fn configured_with_brokers(config: &BrokerConfig, others: &[(i32, bool)]) -> Arc<Controller> {
    let log = MemoryMetadataLog::new();
    for &(id, fenced) in others {
        log.push_raw(
            MetadataRecord::RegisterBroker(RegisterBrokerRecord {
                broker_id: id,
                incarnation_id: uuid::Uuid::new_v4(),
                broker_epoch: 0,
                endpoints: vec![BrokerEndpoint {
                    name: "PLAINTEXT".into(),
                    host: format!("b{id}"),
                    port: 9092,
                    security_protocol: 0,
                }],
                features: vec![],
                rack: None,
                fenced,
                in_controlled_shutdown: false,
            })
            .encode(),
        )
        .unwrap();
    }
    open_with(config, &log)
}

fn topic(name: &str, partitions: i32, rf: i16) -> NewTopic {
    NewTopic {
        num_partitions: partitions,
        replication_factor: rf,
        ..NewTopic::with_defaults(name)
    }
}

fn create(c: &Controller, t: NewTopic) -> Result<CreatedTopic, ApiError> {
    c.create_topics(vec![t], false).unwrap().pop().unwrap()
}

fn code<T: std::fmt::Debug>(result: Result<T, ApiError>) -> ResponseError {
    result.unwrap_err().error
}

#[test]
fn activation_bootstraps_the_metadata_version_once() {
    let (c, log) = open();
    let image = c.image();
    assert_eq!(image.metadata_version, METADATA_VERSION);
    assert_eq!(image.cluster_id, "cluster-1");
    let records = log.record_count();
    c.activate().unwrap();
    assert_eq!(log.record_count(), records, "bootstrapped only once");
}

#[test]
fn restart_replays_to_the_same_image() {
    let (c, log) = open();
    create(&c, topic("a", 3, 1)).unwrap();
    create(&c, topic("b", 1, 1)).unwrap();
    c.alter_configs(
        vec![(
            ConfigResource::Topic("a".into()),
            ConfigUpdate::Replace(vec![("retention.ms".into(), Some("5".into()))]),
        )],
        false,
    )
    .unwrap();
    c.create_partitions(
        vec![NewPartitions {
            topic: "b".into(),
            count: 2,
            assignments: None,
        }],
        false,
    )
    .unwrap();
    c.delete_topics(vec![TopicRef::Name("b".into())]).unwrap();
    let epoch = c.image().brokers[&1].epoch;
    c.allocate_producer_ids(1, epoch).unwrap();
    let records = log.record_count();

    let again = open_with(&BrokerConfig::default(), &log);
    assert_eq!(*again.image(), *c.image());
    assert_eq!(log.record_count(), records, "no re-registration");
}

#[test]
fn create_topic_with_defaults_and_configs() {
    let config = BrokerConfig {
        num_partitions: 3,
        ..BrokerConfig::default()
    };
    let log = MemoryMetadataLog::new();
    let c = open_with(&config, &log);
    let rx = c.publisher().subscribe();
    let mut t = NewTopic::with_defaults("orders");
    t.configs = vec![("retention.ms".into(), Some("1000".into()))];
    let created = create(&c, t).unwrap();
    assert_eq!((created.num_partitions, created.replication_factor), (3, 1));
    assert_eq!(created.configs["retention.ms"], "1000");
    assert!(rx.has_changed().unwrap());

    let image = c.image();
    let orders = image.topic("orders").unwrap();
    assert_eq!(orders.id, created.topic_id);
    assert_eq!(orders.configs["retention.ms"], "1000");
    let p = image.partition("orders", 2).unwrap();
    assert_eq!(
        (p.leader, p.replicas.clone(), p.isr.clone()),
        (1, vec![1], vec![1])
    );
}

#[test]
fn placement_spreads_replicas_over_unfenced_brokers() {
    let c = open_with_brokers(&[(2, false), (3, false), (4, true)]);
    let created = create(&c, topic("t", 3, 3)).unwrap();
    assert_eq!(created.replication_factor, 3);
    let image = c.image();
    let leaders: Vec<i32> = image
        .topic("t")
        .unwrap()
        .partitions
        .iter()
        .map(|p| p.leader)
        .collect();
    let mut distinct = leaders.clone();
    distinct.sort_unstable();
    assert_eq!(distinct, vec![1, 2, 3], "one leadership each");
    for p in &image.topic("t").unwrap().partitions {
        assert_eq!(p.leader, p.replicas[0]);
        assert!(!p.replicas.contains(&4), "fenced broker got a replica");
    }
    assert_eq!(
        code(create(&c, topic("u", 1, 4))),
        ResponseError::InvalidReplicationFactor
    );
}

#[test]
fn create_topic_errors() {
    let c = open_with_brokers(&[(2, false)]);
    create(&c, topic("exists", 1, 1)).unwrap();
    create(&c, topic("a.b", 1, 1)).unwrap();
    let cases = [
        (
            topic("bad name", 1, 1),
            ResponseError::InvalidTopicException,
        ),
        (topic("..", 1, 1), ResponseError::InvalidTopicException),
        (
            topic(&"x".repeat(250), 1, 1),
            ResponseError::InvalidTopicException,
        ),
        (topic("a_b", 1, 1), ResponseError::InvalidTopicException),
        (topic("exists", 1, 1), ResponseError::TopicAlreadyExists),
        (topic("p0", 0, 1), ResponseError::InvalidPartitions),
        (topic("p-2", -2, 1), ResponseError::InvalidPartitions),
        (
            topic("huge", 1_000_000, 1),
            ResponseError::InvalidPartitions,
        ),
        (topic("rf0", 1, 0), ResponseError::InvalidReplicationFactor),
        (topic("rf3", 1, 3), ResponseError::InvalidReplicationFactor),
    ];
    for (t, expected) in cases {
        let name = t.name.clone();
        assert_eq!(code(create(&c, t)), expected, "{name}");
    }
    let with = |assignments: Vec<(i32, Vec<i32>)>| NewTopic {
        assignments,
        ..NewTopic::with_defaults("manual")
    };
    assert_eq!(
        code(create(&c, with(vec![(0, vec![1]), (2, vec![2])]))),
        ResponseError::InvalidReplicaAssignment
    );
    assert_eq!(
        code(create(&c, with(vec![(0, vec![9])]))),
        ResponseError::InvalidReplicaAssignment
    );
    assert_eq!(
        code(create(&c, with(vec![(0, vec![1, 1])]))),
        ResponseError::InvalidReplicaAssignment
    );
    assert_eq!(
        code(create(&c, with(vec![(0, vec![1]), (0, vec![2])]))),
        ResponseError::InvalidReplicaAssignment
    );
    let both = NewTopic {
        num_partitions: 1,
        ..with(vec![(0, vec![1])])
    };
    assert_eq!(code(create(&c, both)), ResponseError::InvalidRequest);
    let created = create(&c, with(vec![(1, vec![1, 2]), (0, vec![2, 1])])).unwrap();
    assert_eq!((created.num_partitions, created.replication_factor), (2, 2));
    assert_eq!(c.image().partition("manual", 0).unwrap().leader, 2);

    let configured = |key: &str, value: Option<&str>| NewTopic {
        configs: vec![(key.into(), value.map(str::to_string))],
        ..NewTopic::with_defaults("configured")
    };
    assert_eq!(
        code(create(&c, configured("retention.mss", Some("1")))),
        ResponseError::InvalidConfig
    );
    assert_eq!(
        code(create(&c, configured("segment.bytes", Some("1")))),
        ResponseError::InvalidConfig
    );
    assert_eq!(
        code(create(&c, configured("retention.ms", None))),
        ResponseError::InvalidConfig
    );
}

#[test]
fn one_request_creates_valid_topics_and_rejects_duplicates() {
    let (c, _) = open();
    let results = c
        .create_topics(
            vec![
                topic("ok", 1, 1),
                topic("dup", 1, 1),
                topic("dup", 1, 1),
                topic("x y", 1, 1),
            ],
            false,
        )
        .unwrap();
    assert!(results[0].is_ok());
    assert_eq!(
        results[1].as_ref().unwrap_err().error,
        ResponseError::InvalidRequest
    );
    assert_eq!(
        results[2].as_ref().unwrap_err().error,
        ResponseError::InvalidRequest
    );
    assert_eq!(
        results[3].as_ref().unwrap_err().error,
        ResponseError::InvalidTopicException
    );
    assert!(c.image().topic("ok").is_some());
    assert!(c.image().topic("dup").is_none());
}

#[test]
fn validate_only_changes_nothing() {
    let (c, log) = open();
    let before = log.record_count();
    let results = c.create_topics(vec![topic("t", 2, 1)], true).unwrap();
    assert_eq!(results[0].as_ref().unwrap().num_partitions, 2);
    assert!(c.image().topic("t").is_none());
    create(&c, topic("t", 1, 1)).unwrap();
    let after = log.record_count();
    let grow = NewPartitions {
        topic: "t".into(),
        count: 4,
        assignments: None,
    };
    assert_eq!(c.create_partitions(vec![grow], true).unwrap(), vec![Ok(())]);
    let set = (
        ConfigResource::Topic("t".into()),
        ConfigUpdate::Replace(vec![("retention.ms".into(), Some("1".into()))]),
    );
    assert_eq!(c.alter_configs(vec![set], true).unwrap(), vec![Ok(())]);
    assert_eq!(c.image().topic("t").unwrap().partitions.len(), 1);
    assert!(c.image().topic("t").unwrap().configs.is_empty());
    assert_eq!(log.record_count(), after);
    assert!(after > before);
}

#[test]
fn delete_topics_by_name_and_id() {
    let (c, _) = open();
    let a = create(&c, topic("a", 1, 1)).unwrap();
    let b = create(&c, topic("b", 1, 1)).unwrap();
    let results = c
        .delete_topics(vec![
            TopicRef::Id(a.topic_id),
            TopicRef::Name("b".into()),
            TopicRef::Name("missing".into()),
            TopicRef::Id(uuid::Uuid::from_u128(7)),
        ])
        .unwrap();
    assert_eq!(results[0].as_ref().unwrap().name, "a");
    assert_eq!(results[1].as_ref().unwrap().id, b.topic_id);
    assert_eq!(
        results[2].as_ref().unwrap_err().error,
        ResponseError::UnknownTopicOrPartition
    );
    assert_eq!(
        results[3].as_ref().unwrap_err().error,
        ResponseError::UnknownTopicId
    );
    assert!(c.image().topics.is_empty());

    create(&c, topic("c", 1, 1)).unwrap();
    let results = c
        .delete_topics(vec![TopicRef::Name("c".into()), TopicRef::Name("c".into())])
        .unwrap();
    assert!(results[0].is_ok());
    assert_eq!(
        results[1].as_ref().unwrap_err().error,
        ResponseError::InvalidRequest
    );
}

#[test]
fn deletion_can_be_disabled_and_internal_topics_are_kept() {
    let config = BrokerConfig {
        delete_topic_enable: false,
        ..BrokerConfig::default()
    };
    let c = open_with(&config, &MemoryMetadataLog::new());
    create(&c, topic("t", 1, 1)).unwrap();
    let results = c.delete_topics(vec![TopicRef::Name("t".into())]).unwrap();
    assert_eq!(
        results[0].as_ref().unwrap_err().error,
        ResponseError::TopicDeletionDisabled
    );
    assert!(c.image().topic("t").is_some());

    let (c, _) = open();
    c.ensure_internal_topic(InternalTopic::ConsumerOffsets)
        .unwrap();
    let results = c
        .delete_topics(vec![TopicRef::Name("__consumer_offsets".into())])
        .unwrap();
    assert_eq!(
        results[0].as_ref().unwrap_err().error,
        ResponseError::InvalidRequest
    );
}

#[test]
fn consumer_offsets_is_created_once_and_compacted() {
    let config = BrokerConfig {
        offsets_topic_num_partitions: 5,
        ..BrokerConfig::default()
    };
    let log = MemoryMetadataLog::new();
    let c = open_with(&config, &log);
    let first = c
        .ensure_internal_topic(InternalTopic::ConsumerOffsets)
        .unwrap();
    assert_eq!(first.partitions.len(), 5);
    assert_eq!(first.configs["cleanup.policy"], "compact");
    let records = log.record_count();
    let second = c
        .ensure_internal_topic(InternalTopic::ConsumerOffsets)
        .unwrap();
    assert!(Arc::ptr_eq(&first, &second));
    assert_eq!(log.record_count(), records);
}

#[test]
fn consumer_offsets_replication_factor_is_the_configured_one_or_capped_to_the_brokers() {
    // Unset: Kafka's 3, capped to the one broker there is.
    let c = open_with_brokers(&[]);
    let topic = c
        .ensure_internal_topic(InternalTopic::ConsumerOffsets)
        .unwrap();
    assert_eq!(topic.partitions[0].replicas.len(), 1);

    // Set: exactly that, and refused while the cluster cannot hold it.
    let config = BrokerConfig {
        offsets_topic_replication_factor: Some(2),
        ..BrokerConfig::default()
    };
    let refused = configured_with_brokers(&config, &[])
        .ensure_internal_topic(InternalTopic::ConsumerOffsets)
        .unwrap_err();
    assert_eq!(
        refused.to_api_error().error,
        ResponseError::InvalidReplicationFactor
    );
    let topic = configured_with_brokers(&config, &[(2, false)])
        .ensure_internal_topic(InternalTopic::ConsumerOffsets)
        .unwrap();
    assert_eq!(topic.partitions[0].replicas.len(), 2);
}

#[test]
fn create_partitions_flows_and_errors() {
    let c = open_with_brokers(&[(2, false)]);
    create(&c, topic("t", 2, 2)).unwrap();
    let grow = |count, assignments| NewPartitions {
        topic: "t".into(),
        count,
        assignments,
    };
    assert_eq!(
        c.create_partitions(vec![grow(4, None)], false).unwrap(),
        vec![Ok(())]
    );
    let image = c.image();
    assert_eq!(image.topic("t").unwrap().partitions.len(), 4);
    assert_eq!(image.partition("t", 3).unwrap().replicas.len(), 2);

    let result = |r: NewPartitions| c.create_partitions(vec![r], false).unwrap().pop().unwrap();
    assert_eq!(
        code(result(grow(4, None))),
        ResponseError::InvalidPartitions
    );
    assert_eq!(
        code(result(grow(2, None))),
        ResponseError::InvalidPartitions
    );
    assert_eq!(
        code(result(grow(-1, None))),
        ResponseError::InvalidPartitions
    );
    assert_eq!(
        code(result(grow(6, Some(vec![vec![1, 2]])))),
        ResponseError::InvalidReplicaAssignment
    );
    assert_eq!(
        code(result(grow(5, Some(vec![vec![7]])))),
        ResponseError::InvalidReplicaAssignment
    );
    let missing = NewPartitions {
        topic: "nope".into(),
        count: 2,
        assignments: None,
    };
    assert_eq!(
        code(result(missing)),
        ResponseError::UnknownTopicOrPartition
    );
    result(grow(5, Some(vec![vec![2, 1]]))).unwrap();
    assert_eq!(c.image().partition("t", 4).unwrap().leader, 2);
}

#[test]
fn alter_configs_replace_and_incremental() {
    let (c, _) = open();
    let mut t = NewTopic::with_defaults("t");
    t.configs = vec![
        ("retention.ms".into(), Some("10".into())),
        ("segment.ms".into(), Some("20".into())),
    ];
    create(&c, t).unwrap();
    let alter = |update| {
        c.alter_configs(vec![(ConfigResource::Topic("t".into()), update)], false)
            .unwrap()
            .pop()
            .unwrap()
    };
    let configs = || c.image().topic("t").unwrap().configs.clone();
    let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };

    // Replace drops keys not given.
    alter(ConfigUpdate::Replace(vec![(
        "retention.ms".into(),
        Some("30".into()),
    )]))
    .unwrap();
    assert_eq!(configs(), map(&[("retention.ms", "30")]));

    let op = |key: &str, op, value: Option<&str>| (key.to_string(), op, value.map(str::to_string));
    alter(ConfigUpdate::Incremental(vec![
        op("segment.ms", AlterOp::Set, Some("40")),
        op("retention.ms", AlterOp::Delete, None),
    ]))
    .unwrap();
    assert_eq!(configs(), map(&[("segment.ms", "40")]));

    // Append starts from the broker default (delete).
    alter(ConfigUpdate::Incremental(vec![op(
        "cleanup.policy",
        AlterOp::Append,
        Some("compact"),
    )]))
    .unwrap();
    assert_eq!(configs()["cleanup.policy"], "delete,compact");
    alter(ConfigUpdate::Incremental(vec![op(
        "cleanup.policy",
        AlterOp::Subtract,
        Some("delete"),
    )]))
    .unwrap();
    assert_eq!(configs()["cleanup.policy"], "compact");

    let before = configs();
    for (update, expected) in [
        (
            ConfigUpdate::Incremental(vec![op(
                "cleanup.policy",
                AlterOp::Subtract,
                Some("compact"),
            )]),
            ResponseError::InvalidConfig,
        ),
        (
            ConfigUpdate::Incremental(vec![op("retention.ms", AlterOp::Append, Some("1"))]),
            ResponseError::InvalidConfig,
        ),
        (
            ConfigUpdate::Incremental(vec![op("retention.mss", AlterOp::Set, Some("1"))]),
            ResponseError::InvalidConfig,
        ),
        (
            ConfigUpdate::Incremental(vec![op("retention.ms", AlterOp::Set, Some("-5"))]),
            ResponseError::InvalidConfig,
        ),
        (
            ConfigUpdate::Incremental(vec![op("retention.ms", AlterOp::Set, None)]),
            ResponseError::InvalidRequest,
        ),
        (
            ConfigUpdate::Incremental(vec![
                op("retention.ms", AlterOp::Set, Some("1")),
                op("retention.ms", AlterOp::Delete, None),
            ]),
            ResponseError::InvalidRequest,
        ),
        (
            ConfigUpdate::Replace(vec![("segment.bytes".into(), Some("1".into()))]),
            ResponseError::InvalidConfig,
        ),
        (
            ConfigUpdate::Replace(vec![("retention.ms".into(), None)]),
            ResponseError::InvalidRequest,
        ),
    ] {
        assert_eq!(code(alter(update.clone())), expected, "{update:?}");
    }
    assert_eq!(configs(), before);

    let results = c
        .alter_configs(
            vec![
                (
                    ConfigResource::Topic("missing".into()),
                    ConfigUpdate::Replace(vec![]),
                ),
                (
                    ConfigResource::Broker("1".into()),
                    ConfigUpdate::Replace(vec![("num.partitions".into(), Some("3".into()))]),
                ),
            ],
            false,
        )
        .unwrap();
    assert_eq!(
        results[0].as_ref().unwrap_err().error,
        ResponseError::UnknownTopicOrPartition
    );
    // Static broker configs stay read-only.
    assert_eq!(
        results[1].as_ref().unwrap_err().error,
        ResponseError::InvalidConfig
    );
    assert_eq!(
        code(ConfigResource::from_wire(8, "x")),
        ResponseError::InvalidRequest
    );
}

#[test]
fn describe_topic_configs_with_sources() {
    let config = BrokerConfig {
        log_segment_bytes: 1 << 20,
        ..BrokerConfig::default()
    };
    let c = open_with(&config, &MemoryMetadataLog::new());
    let mut t = NewTopic::with_defaults("t");
    t.configs = vec![("retention.ms".into(), Some("10".into()))];
    create(&c, t).unwrap();
    let entries = c
        .describe_configs(&ConfigResource::Topic("t".into()), None)
        .unwrap();
    assert_eq!(entries.len(), crate::storage::TOPIC_CONFIG_KEYS.len());
    let get = |key: &str| entries.iter().find(|e| e.name == key).unwrap().clone();

    let retention = get("retention.ms");
    assert_eq!(
        (retention.value.as_deref(), retention.source),
        (Some("10"), ConfigSource::TopicConfig)
    );
    assert_eq!(retention.synonyms.len(), 2);
    assert_eq!(retention.synonyms[1].name, "log.retention.ms");
    assert_eq!(retention.synonyms[1].source, ConfigSource::DefaultConfig);

    let segment = get("segment.bytes");
    assert_eq!(
        (segment.value.as_deref(), segment.source),
        (Some("1048576"), ConfigSource::StaticBrokerConfig)
    );
    assert_eq!(get("cleanup.policy").source, ConfigSource::DefaultConfig);
    assert!(!get("cleanup.policy").read_only);

    let filtered = c
        .describe_configs(
            &ConfigResource::Topic("t".into()),
            Some(&["segment.ms".into(), "nope".into()]),
        )
        .unwrap();
    assert_eq!(filtered.len(), 1);
    assert_eq!(
        code(c.describe_configs(&ConfigResource::Topic("x".into()), None)),
        ResponseError::UnknownTopicOrPartition
    );
}

#[test]
fn describe_broker_configs_read_only() {
    let config = BrokerConfig {
        num_partitions: 6,
        ..BrokerConfig::default()
    };
    let c = open_with(&config, &MemoryMetadataLog::new());
    for name in ["", "1"] {
        let entries = c
            .describe_configs(&ConfigResource::Broker(name.into()), None)
            .unwrap();
        assert!(entries.iter().all(|e| e.read_only));
        let partitions = entries.iter().find(|e| e.name == "num.partitions").unwrap();
        assert_eq!(
            (partitions.value.as_deref(), partitions.source),
            (Some("6"), ConfigSource::StaticBrokerConfig)
        );
        let retention = entries
            .iter()
            .find(|e| e.name == "log.retention.ms")
            .unwrap();
        assert_eq!(retention.source, ConfigSource::DefaultConfig);
    }
    assert_eq!(
        code(c.describe_configs(&ConfigResource::Broker("2".into()), None)),
        ResponseError::InvalidRequest
    );
}

#[test]
fn producer_id_blocks_never_overlap_across_restarts() {
    let (c, log) = open();
    let epoch = c.image().brokers[&1].epoch;
    let first = c.allocate_producer_ids(1, epoch).unwrap();
    let second = c.allocate_producer_ids(1, epoch).unwrap();
    assert_eq!(first, 0..PRODUCER_ID_BLOCK_SIZE);
    assert_eq!(second, PRODUCER_ID_BLOCK_SIZE..2 * PRODUCER_ID_BLOCK_SIZE);
    let again = open_with(&BrokerConfig::default(), &log);
    let third = again.allocate_producer_ids(1, epoch).unwrap();
    assert_eq!(third.start, 2 * PRODUCER_ID_BLOCK_SIZE);
}

#[test]
fn image_snapshots_stay_consistent_while_writes_happen() {
    let (c, _) = open();
    let before: Arc<MetadataImage> = c.image();
    create(&c, topic("t", 1, 1)).unwrap();
    assert!(before.topic("t").is_none());
    assert!(c.image().topic("t").is_some());
}

/// A log that works until told to fail, like a disk filling up.
struct FlakyLog {
    inner: MemoryMetadataLog,
    failing: std::sync::atomic::AtomicBool,
}

impl MetadataLog for FlakyLog {
    fn append(&self, records: Vec<bytes::Bytes>, based_on: i64) -> Result<i64, MetadataLogError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(MetadataLogError::Io(std::io::Error::other("disk full")));
        }
        self.inner.append(records, based_on)
    }
}

#[test]
fn failed_appends_change_nothing() {
    let log = Arc::new(FlakyLog {
        inner: MemoryMetadataLog::new(),
        failing: false.into(),
    });
    let c = Controller::open(&BrokerConfig::default(), log.inner.publisher(), log.clone()).unwrap();
    c.activate().unwrap();
    super::lifecycle_tests::unfenced(&c, 1, 0);
    let before = c.image();
    log.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let err = c.create_topics(vec![topic("t", 1, 1)], false).unwrap_err();
    assert!(matches!(err, ControllerError::Log(_)), "{err}");
    assert!(Arc::ptr_eq(&before, &c.image()));
    let epoch = c.image().brokers[&1].epoch;
    assert!(c.allocate_producer_ids(1, epoch).is_err());
    log.failing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    // The failed block was never handed out, so ids start at 0.
    assert_eq!(c.allocate_producer_ids(1, epoch).unwrap().start, 0);
}
