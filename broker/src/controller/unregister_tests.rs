//! UnregisterBroker on a real controller: refused for an unknown, running or
//! still-used broker; a fenced, empty one is forgotten with its configs, and
//! may register again as new.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;

use crate::config::{BrokerConfig, Roles};
use crate::controller::lifecycle_tests::{self, heartbeat, topic};
use crate::controller::{AlterOp, ConfigResource, ConfigUpdate, Controller, MemoryMetadataLog};
use crate::metadata::image::EXCLUDED_KEY;

/// Brokers 1-3 unfenced, `prepare` run, then broker 3 fenced (its session
/// expired while 1 and 2 kept heartbeating).
fn cluster(log: &MemoryMetadataLog, prepare: impl FnOnce(&Controller)) -> Arc<Controller> {
    let config = BrokerConfig {
        roles: Roles {
            broker: false,
            controller: true,
        },
        ..BrokerConfig::default()
    };
    let c = log.open_controller(&config);
    let epochs = [1, 2, 3].map(|id| lifecycle_tests::unfenced(&c, id, 0));
    prepare(&c);
    let later = 600_000;
    for id in [1, 2] {
        let offset = c.image().metadata_offset;
        c.broker_heartbeat(heartbeat(id, epochs[id as usize - 1], offset), later)
            .unwrap();
    }
    assert_eq!(c.fence_stale_brokers(later).unwrap(), vec![3]);
    c
}

fn code(c: &Controller, id: i32) -> ResponseError {
    c.unregister_broker(id).unwrap_err().to_api_error().error
}

#[test]
fn unknown_running_and_still_used_brokers_are_refused_and_nothing_is_written() {
    let log = MemoryMetadataLog::new();
    let c = cluster(&log, |c| topic(c, "kept", vec![vec![1, 3]]));
    let records = log.record_count();
    assert_eq!(code(&c, 9), ResponseError::BrokerIdNotRegistered);
    assert_eq!(code(&c, 1), ResponseError::InvalidRequest, "running");
    let held = c.unregister_broker(3).unwrap_err().to_api_error();
    assert_eq!(held.error, ResponseError::InvalidRequest);
    assert!(held.message.contains("1 partitions"), "{}", held.message);
    assert_eq!(log.record_count(), records);
    assert!(c.image().brokers.contains_key(&3));
}

#[test]
fn a_stopped_empty_broker_is_forgotten_with_its_configs_and_may_come_back() {
    let log = MemoryMetadataLog::new();
    let c = cluster(&log, |_| {});
    let exclude = ConfigUpdate::Incremental(vec![(
        EXCLUDED_KEY.into(),
        AlterOp::Set,
        Some("true".into()),
    )]);
    let results = c
        .alter_configs(vec![(ConfigResource::Broker("3".into()), exclude)], false)
        .unwrap();
    assert!(results[0].is_ok());
    assert!(c.image().is_excluded(3));

    c.unregister_broker(3).unwrap();
    let image = c.image();
    assert!(!image.brokers.contains_key(&3));
    assert!(!image.is_excluded(3), "its exclusion went with it");
    assert_eq!(code(&c, 3), ResponseError::BrokerIdNotRegistered);

    // A new broker 3 (the StatefulSet grew again) registers as new, not excluded.
    lifecycle_tests::unfenced(&c, 3, 700_000);
    assert!(c.image().brokers.contains_key(&3));
    assert!(!c.image().is_excluded(3));
}
