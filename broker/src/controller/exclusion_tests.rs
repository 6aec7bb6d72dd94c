//! Broker exclusion on a real controller: the `broker.excluded` config, and
//! how placement and preferred elections skip excluded brokers; and the other
//! dynamic broker configs, the replication throttle rates.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;

use super::*;
use crate::config::{BrokerConfig, Roles};
use crate::controller::lifecycle_tests::{self, partitions, topic};
use crate::metadata::image::EXCLUDED_KEY;

fn config() -> BrokerConfig {
    BrokerConfig {
        roles: Roles {
            broker: false,
            controller: true,
        },
        ..BrokerConfig::default()
    }
}

/// A controller over `log` with brokers 1, 2, 3 unfenced; returns their epochs.
fn cluster(log: &MemoryMetadataLog) -> (Arc<Controller>, [i64; 3]) {
    let c = log.open_controller(&config());
    let epochs = [1, 2, 3].map(|id| lifecycle_tests::unfenced(&c, id, 0));
    (c, epochs)
}

fn op(key: &str, op: AlterOp, value: Option<&str>) -> (String, AlterOp, Option<String>) {
    (key.to_string(), op, value.map(str::to_string))
}

/// IncrementalAlterConfigs on one broker resource.
fn alter(
    c: &Controller,
    name: &str,
    ops: Vec<(String, AlterOp, Option<String>)>,
) -> Result<(), ApiError> {
    c.alter_configs(
        vec![(
            ConfigResource::Broker(name.into()),
            ConfigUpdate::Incremental(ops),
        )],
        false,
    )
    .unwrap()
    .pop()
    .unwrap()
}

fn exclude(c: &Controller, id: i32, excluded: bool) {
    let value = excluded.to_string();
    alter(
        c,
        &id.to_string(),
        vec![op(EXCLUDED_KEY, AlterOp::Set, Some(&value))],
    )
    .unwrap();
}

fn excluded(c: &Controller) -> Vec<i32> {
    c.image().excluded_brokers().collect()
}

fn create(c: &Controller, name: &str, count: i32, rf: i16) -> Result<CreatedTopic, ApiError> {
    let topic = NewTopic {
        num_partitions: count,
        replication_factor: rf,
        ..NewTopic::with_defaults(name)
    };
    c.create_topics(vec![topic], false).unwrap().pop().unwrap()
}

fn replicas(c: &Controller, name: &str) -> Vec<Vec<i32>> {
    c.image().topics[name]
        .partitions
        .iter()
        .map(|p| p.replicas.clone())
        .collect()
}

#[test]
fn excluding_and_lifting_writes_and_removes_the_config() {
    let log = MemoryMetadataLog::new();
    let (c, _) = cluster(&log);
    exclude(&c, 2, true);
    assert_eq!(excluded(&c), vec![2]);
    let records = log.record_count();
    // Repeating it writes nothing: the call is idempotent.
    exclude(&c, 2, true);
    alter(&c, "2", vec![op(EXCLUDED_KEY, AlterOp::Set, Some("TRUE"))]).unwrap();
    assert_eq!(log.record_count(), records);

    // false removes the key, as does DELETE.
    exclude(&c, 2, false);
    assert!(excluded(&c).is_empty());
    assert!(c.image().broker_configs.is_empty());
    exclude(&c, 3, true);
    alter(&c, "3", vec![op(EXCLUDED_KEY, AlterOp::Delete, None)]).unwrap();
    assert!(excluded(&c).is_empty());

    // AlterConfigs replaces the broker's whole set of dynamic configs.
    let replace = |configs: Vec<(String, Option<String>)>| {
        c.alter_configs(
            vec![(
                ConfigResource::Broker("1".into()),
                ConfigUpdate::Replace(configs),
            )],
            false,
        )
        .unwrap()
        .pop()
        .unwrap()
    };
    replace(vec![(EXCLUDED_KEY.into(), Some("true".into()))]).unwrap();
    assert_eq!(excluded(&c), vec![1]);
    replace(vec![]).unwrap();
    assert!(excluded(&c).is_empty());

    // validate_only checks and writes nothing.
    let results = c
        .alter_configs(
            vec![(
                ConfigResource::Broker("1".into()),
                ConfigUpdate::Incremental(vec![op(EXCLUDED_KEY, AlterOp::Set, Some("true"))]),
            )],
            true,
        )
        .unwrap();
    assert!(results[0].is_ok());
    assert!(excluded(&c).is_empty());
}

#[test]
fn bad_broker_config_requests_are_refused_and_change_nothing() {
    let log = MemoryMetadataLog::new();
    let (c, _) = cluster(&log);
    exclude(&c, 1, true);
    let records = log.record_count();
    let set = |value: &str| vec![op(EXCLUDED_KEY, AlterOp::Set, Some(value))];
    for (name, ops, expected, says) in [
        (
            "9",
            set("true"),
            ResponseError::BrokerIdNotRegistered,
            "Broker 9 is not registered",
        ),
        (
            "b-2",
            set("true"),
            ResponseError::InvalidRequest,
            "Invalid broker name `b-2`",
        ),
        (
            "2",
            set("maybe"),
            ResponseError::InvalidConfig,
            "either true or false",
        ),
        (
            "2",
            vec![op("log.retention.ms", AlterOp::Set, Some("1"))],
            ResponseError::InvalidConfig,
            "`log.retention.ms` cannot be changed dynamically",
        ),
        (
            "2",
            vec![op(EXCLUDED_KEY, AlterOp::Set, None)],
            ResponseError::InvalidRequest,
            "Null value",
        ),
        (
            "2",
            vec![op(EXCLUDED_KEY, AlterOp::Append, Some("true"))],
            ResponseError::InvalidConfig,
            "not a list",
        ),
        (
            "2",
            vec![
                op(EXCLUDED_KEY, AlterOp::Set, Some("true")),
                op(EXCLUDED_KEY, AlterOp::Delete, None),
            ],
            ResponseError::InvalidRequest,
            "more than once",
        ),
        (
            "",
            set("true"),
            ResponseError::InvalidRequest,
            "cannot be set on the cluster default",
        ),
    ] {
        let err = alter(&c, name, ops).unwrap_err();
        assert_eq!(err.error, expected, "{name}: {}", err.message);
        assert!(err.message.contains(says), "{name}: {}", err.message);
    }
    let err = c
        .alter_configs(
            vec![(
                ConfigResource::Broker("2".into()),
                ConfigUpdate::Replace(vec![("num.partitions".into(), Some("3".into()))]),
            )],
            false,
        )
        .unwrap()
        .pop()
        .unwrap()
        .unwrap_err();
    assert_eq!(err.error, ResponseError::InvalidConfig);
    assert!(err.message.contains("num.partitions"), "{}", err.message);
    assert_eq!(log.record_count(), records);
    assert_eq!(excluded(&c), vec![1]);
}

#[test]
fn throttle_rates_are_set_per_broker_or_as_the_default_and_checked() {
    use crate::replication::throttle::{configured_rate, Side, FOLLOWER_RATE_KEY, LEADER_RATE_KEY};
    let log = MemoryMetadataLog::new();
    let (c, _) = cluster(&log);
    alter(
        &c,
        "",
        vec![op(LEADER_RATE_KEY, AlterOp::Set, Some(" 1048576"))],
    )
    .unwrap();
    alter(
        &c,
        "2",
        vec![op(FOLLOWER_RATE_KEY, AlterOp::Set, Some("5000"))],
    )
    .unwrap();
    alter(
        &c,
        "2",
        vec![op(LEADER_RATE_KEY, AlterOp::Set, Some("7000"))],
    )
    .unwrap();
    let image = c.image();
    assert_eq!(configured_rate(&image, 1, Side::Leader), Some(1_048_576));
    assert_eq!(
        configured_rate(&image, 2, Side::Leader),
        Some(7000),
        "its own wins"
    );
    assert_eq!(configured_rate(&image, 2, Side::Follower), Some(5000));
    assert_eq!(configured_rate(&image, 1, Side::Follower), None);

    let records = log.record_count();
    for bad in ["0", "-1", "fast", ""] {
        let err = alter(&c, "1", vec![op(LEADER_RATE_KEY, AlterOp::Set, Some(bad))]).unwrap_err();
        assert_eq!(err.error, ResponseError::InvalidConfig, "{bad}");
        assert!(
            err.message.contains("positive number of bytes per second"),
            "{}",
            err.message
        );
    }
    assert_eq!(log.record_count(), records);

    alter(&c, "", vec![op(LEADER_RATE_KEY, AlterOp::Delete, None)]).unwrap();
    assert_eq!(configured_rate(&c.image(), 1, Side::Leader), None);
}

#[test]
fn new_replicas_go_only_to_brokers_not_excluded() {
    let (c, _) = cluster(&MemoryMetadataLog::new());
    exclude(&c, 2, true);
    create(&c, "t", 6, 2).unwrap();
    assert!(
        replicas(&c, "t")
            .iter()
            .all(|r| r.len() == 2 && !r.contains(&2)),
        "{:?}",
        replicas(&c, "t")
    );
    c.create_partitions(
        vec![NewPartitions {
            topic: "t".into(),
            count: 9,
            assignments: None,
        }],
        false,
    )
    .unwrap()[0]
        .as_ref()
        .unwrap();
    assert_eq!(replicas(&c, "t").len(), 9);
    assert!(replicas(&c, "t").iter().all(|r| !r.contains(&2)));

    // Two brokers left: RF 3 cannot be placed, for topics and partitions alike.
    let err = create(&c, "u", 1, 3).unwrap_err();
    assert_eq!(err.error, ResponseError::InvalidReplicationFactor);
    assert!(err.message.contains("not excluded"), "{}", err.message);

    exclude(&c, 2, false);
    create(&c, "v", 3, 3).unwrap();
    assert!(replicas(&c, "v").iter().all(|r| r.contains(&2)));
}

#[test]
fn preferred_elections_skip_excluded_brokers() {
    let (c, _) = cluster(&MemoryMetadataLog::new());
    topic(&c, "t", vec![vec![2, 1, 3], vec![1, 2, 3], vec![2, 3, 1]]);
    assert_eq!(partitions(&c, "t")[0].0, 2);
    exclude(&c, 2, true);

    // ElectLeaders moves t-0 to 1, the first replica not excluded; t-1 is
    // already led by its preferred replica.
    let t = |p| ("t".to_string(), p);
    let results = c
        .elect_leaders(ElectionType::Preferred, Some(vec![t(0), t(1)]))
        .unwrap();
    let codes: Vec<_> = results
        .iter()
        .map(|(_, _, r)| r.as_ref().err().map(|e| e.error))
        .collect();
    assert_eq!(codes, vec![None, Some(ResponseError::ElectionNotNeeded)]);
    // The controller's own balancing moves t-2 to 3.
    assert_eq!(c.balance_leaders().unwrap(), 1);
    let leaders: Vec<i32> = partitions(&c, "t").iter().map(|(l, _)| *l).collect();
    assert_eq!(leaders, vec![1, 1, 3]);
    assert_eq!(c.balance_leaders().unwrap(), 0);

    // Lifted: leadership goes back to the first replica.
    exclude(&c, 2, false);
    assert_eq!(c.balance_leaders().unwrap(), 2);
    let leaders: Vec<i32> = partitions(&c, "t").iter().map(|(l, _)| *l).collect();
    assert_eq!(leaders, vec![2, 1, 2]);
}

#[test]
fn an_excluded_broker_still_takes_over_when_it_is_the_only_one_left() {
    let (c, epochs) = cluster(&MemoryMetadataLog::new());
    topic(&c, "t", vec![vec![1, 2]]);
    exclude(&c, 2, true);
    // Broker 1 fails: availability first, the excluded 2 leads.
    let request = BrokerHeartbeat {
        want_fence: true,
        ..lifecycle_tests::heartbeat(1, epochs[0], c.image().metadata_offset)
    };
    c.broker_heartbeat(request, 0).unwrap();
    assert_eq!(partitions(&c, "t"), vec![(2, vec![2])]);
    // The preferred replica not excluded is down: the leader stays.
    let results = c.elect_leaders(ElectionType::Preferred, None).unwrap();
    assert_eq!(
        results[0].2.as_ref().unwrap_err().error,
        ResponseError::PreferredLeaderNotAvailable
    );
    assert_eq!(c.balance_leaders().unwrap(), 0);
    assert_eq!(partitions(&c, "t")[0].0, 2);
}

#[test]
fn an_exclusion_survives_a_restart_and_is_described() {
    let log = MemoryMetadataLog::new();
    let (c, _) = cluster(&log);
    exclude(&c, 1, true);
    drop(c);
    let again = log.open_controller(&config());
    assert_eq!(excluded(&again), vec![1]);
    create(&again, "t", 4, 2).unwrap();
    assert!(replicas(&again, "t").iter().all(|r| !r.contains(&1)));

    // This node (1) describes its own dynamic config among the static ones.
    let entries = again
        .describe_configs(&ConfigResource::Broker("1".into()), None)
        .unwrap();
    let entry = entries.iter().find(|e| e.name == EXCLUDED_KEY).unwrap();
    assert_eq!(
        (
            entry.value.as_deref(),
            entry.source,
            entry.read_only,
            entry.config_type
        ),
        (Some("true"), ConfigSource::DynamicBrokerConfig, false, 1)
    );
    let entries = again
        .describe_configs(&ConfigResource::Broker("".into()), None)
        .unwrap();
    assert!(entries.iter().all(|e| e.name != EXCLUDED_KEY));
}
