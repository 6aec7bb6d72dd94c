//! Broker registration, heartbeats, fencing and controlled shutdown: every
//! rule and error code, on a controller-only node over the in-memory log.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use super::*;
use crate::config::{BrokerConfig, Roles};
use crate::metadata::image::METADATA_VERSION_FEATURE;
use crate::metadata::records::{BrokerEndpoint, BrokerFeature};

const SESSION_MS: i64 = 9_000;

fn controller() -> Arc<Controller> {
    let config = BrokerConfig {
        roles: Roles {
            broker: false,
            controller: true,
        },
        ..BrokerConfig::default()
    };
    MemoryMetadataLog::new().open_controller(&config)
}

pub(crate) fn registration(id: i32, incarnation: u128) -> BrokerRegistration {
    BrokerRegistration {
        broker_id: id,
        cluster_id: "cluster-1".into(),
        incarnation_id: Uuid::from_u128(incarnation),
        listeners: vec![BrokerEndpoint {
            name: "PLAINTEXT".into(),
            host: format!("b{id}"),
            port: 9092,
            security_protocol: 0,
        }],
        features: vec![BrokerFeature {
            name: METADATA_VERSION_FEATURE.into(),
            min_supported_version: 1,
            max_supported_version: METADATA_VERSION,
        }],
        rack: Some("r1".into()),
        is_migrating_zk_broker: false,
    }
}

pub(crate) fn heartbeat(id: i32, epoch: i64, offset: i64) -> BrokerHeartbeat {
    BrokerHeartbeat {
        broker_id: id,
        broker_epoch: epoch,
        current_metadata_offset: offset,
        want_fence: false,
        want_shut_down: false,
    }
}

fn caught_up(c: &Controller, id: i32, epoch: i64) -> BrokerHeartbeat {
    heartbeat(id, epoch, c.image().metadata_offset)
}

/// Registers broker `id` and heartbeats it to unfenced; returns its epoch.
pub(crate) fn unfenced(c: &Controller, id: i32, now: i64) -> i64 {
    let epoch = c
        .register_broker(registration(id, id as u128), now)
        .unwrap();
    let reply = c.broker_heartbeat(caught_up(c, id, epoch), now).unwrap();
    assert!(!reply.is_fenced);
    epoch
}

fn code<T: std::fmt::Debug>(result: Result<T, ControllerError>) -> ResponseError {
    result.unwrap_err().to_api_error().error
}

/// Creates `name` with the given replica lists.
pub(crate) fn topic(c: &Controller, name: &str, assignments: Vec<Vec<i32>>) {
    let topic = NewTopic {
        assignments: assignments
            .into_iter()
            .enumerate()
            .map(|(p, r)| (p as i32, r))
            .collect(),
        ..NewTopic::with_defaults(name)
    };
    c.create_topics(vec![topic], false)
        .unwrap()
        .pop()
        .unwrap()
        .unwrap();
}

/// (leader, isr) of each partition of `name`.
/// The leader of `t-0` reports `isr` (epochs[i] is broker i+1's epoch), as it would once
/// its followers caught up.
pub(crate) fn leader_reports_isr(c: &Controller, epochs: &[i64], isr: &[i32]) {
    let t = &c.image().topics["t"];
    let p = &t.partitions[0];
    let change = IsrChange {
        topic_id: t.id,
        partition: 0,
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        new_isr: isr.iter().map(|id| (*id, -1)).collect(),
        leader_recovery_state: 0,
    };
    let leader_epoch = epochs[(p.leader - 1) as usize];
    let results = c
        .alter_partition(p.leader, leader_epoch, &[change])
        .unwrap();
    assert!(results[0].is_ok(), "{results:?}");
}

pub(crate) fn partitions(c: &Controller, name: &str) -> Vec<(i32, Vec<i32>)> {
    c.image().topics[name]
        .partitions
        .iter()
        .map(|p| (p.leader, p.isr.clone()))
        .collect()
}

#[test]
fn registration_is_fenced_and_its_epoch_is_the_record_offset() {
    let c = controller();
    let epoch = c.register_broker(registration(2, 7), 0).unwrap();
    let image = c.image();
    assert_eq!(epoch, image.metadata_offset);
    let broker = &image.brokers[&2];
    assert_eq!(
        (
            broker.epoch,
            broker.fenced,
            broker.host.as_str(),
            broker.rack.as_deref()
        ),
        (epoch, true, "b2", Some("r1"))
    );
    assert_eq!(broker.incarnation_id, Uuid::from_u128(7));
}

#[test]
fn registration_errors() {
    let c = controller();
    let wrong_cluster = BrokerRegistration {
        cluster_id: "other".into(),
        ..registration(2, 1)
    };
    assert_eq!(
        code(c.register_broker(wrong_cluster, 0)),
        ResponseError::InconsistentClusterId
    );
    let too_new = BrokerRegistration {
        features: vec![BrokerFeature {
            name: METADATA_VERSION_FEATURE.into(),
            min_supported_version: METADATA_VERSION + 1,
            max_supported_version: METADATA_VERSION + 2,
        }],
        ..registration(2, 1)
    };
    assert_eq!(
        code(c.register_broker(too_new, 0)),
        ResponseError::UnsupportedVersion
    );
    let no_version = BrokerRegistration {
        features: Vec::new(),
        ..registration(2, 1)
    };
    assert_eq!(
        code(c.register_broker(no_version, 0)),
        ResponseError::UnsupportedVersion
    );
    let zk = BrokerRegistration {
        is_migrating_zk_broker: true,
        ..registration(2, 1)
    };
    assert_eq!(
        code(c.register_broker(zk, 0)),
        ResponseError::BrokerIdNotRegistered
    );
    let no_listener = BrokerRegistration {
        listeners: Vec::new(),
        ..registration(2, 1)
    };
    assert_eq!(
        code(c.register_broker(no_listener, 0)),
        ResponseError::InvalidRequest
    );
    assert!(!c.image().brokers.contains_key(&2));
}

#[test]
fn another_incarnation_waits_for_the_old_session_to_expire() {
    let c = controller();
    let first = c.register_broker(registration(2, 1), 0).unwrap();
    c.broker_heartbeat(heartbeat(2, first, -1), 5_000).unwrap();
    assert_eq!(
        code(c.register_broker(registration(2, 2), 5_000 + SESSION_MS)),
        ResponseError::DuplicateBrokerRegistration
    );
    // The same incarnation may register again at any time.
    let again = c.register_broker(registration(2, 1), 6_000).unwrap();
    assert!(again > first);
    let replaced = c
        .register_broker(registration(2, 2), 6_001 + SESSION_MS)
        .unwrap();
    assert!(replaced > again);
    assert_eq!(c.image().brokers[&2].incarnation_id, Uuid::from_u128(2));
}

#[test]
fn heartbeats_with_a_stale_epoch_are_refused() {
    let c = controller();
    assert_eq!(
        code(c.broker_heartbeat(heartbeat(2, 1, 0), 0)),
        ResponseError::StaleBrokerEpoch
    );
    let epoch = c.register_broker(registration(2, 1), 0).unwrap();
    assert_eq!(
        code(c.broker_heartbeat(heartbeat(2, epoch - 1, 0), 0)),
        ResponseError::StaleBrokerEpoch
    );
}

#[test]
fn a_broker_is_unfenced_once_caught_up_unless_it_wants_fencing() {
    let c = controller();
    let epoch = c.register_broker(registration(2, 1), 0).unwrap();
    let behind = c
        .broker_heartbeat(heartbeat(2, epoch, epoch - 1), 0)
        .unwrap();
    assert!(!behind.is_caught_up && behind.is_fenced && !behind.should_shut_down);
    let wants_fence = BrokerHeartbeat {
        want_fence: true,
        ..heartbeat(2, epoch, epoch)
    };
    let reply = c.broker_heartbeat(wants_fence, 0).unwrap();
    assert!(reply.is_caught_up && reply.is_fenced);
    let reply = c.broker_heartbeat(heartbeat(2, epoch, epoch), 0).unwrap();
    assert!(reply.is_caught_up && !reply.is_fenced);
    assert!(!c.image().brokers[&2].fenced);
    // An unfenced broker may ask to be fenced again.
    let reply = c.broker_heartbeat(wants_fence, 0).unwrap();
    assert!(reply.is_fenced);
    assert!(c.image().brokers[&2].fenced);
}

#[test]
fn stale_sessions_are_fenced_and_leaderships_move() {
    let c = controller();
    let e2 = unfenced(&c, 2, 0);
    let e3 = unfenced(&c, 3, 0);
    topic(&c, "t", vec![vec![2, 3], vec![3, 2]]);
    topic(&c, "solo", vec![vec![2]]);
    assert_eq!(partitions(&c, "t"), vec![(2, vec![2, 3]), (3, vec![3, 2])]);
    // Broker 3 keeps heartbeating; broker 2 goes quiet.
    c.broker_heartbeat(caught_up(&c, 3, e3), 8_000).unwrap();
    assert!(c.fence_stale_brokers(SESSION_MS).unwrap().is_empty());
    assert_eq!(c.fence_stale_brokers(SESSION_MS + 1).unwrap(), vec![2]);
    assert!(c.image().brokers[&2].fenced);
    assert_eq!(partitions(&c, "t"), vec![(3, vec![3]), (3, vec![3])]);
    // The last ISR member stays, without a leader.
    assert_eq!(partitions(&c, "solo"), vec![(-1, vec![2])]);
    let leader_epoch = |p: usize| c.image().topics["t"].partitions[p].leader_epoch;
    assert_eq!((leader_epoch(0), leader_epoch(1)), (1, 0));
    // New partitions avoid the fenced broker.
    let wide = NewTopic {
        replication_factor: 2,
        ..NewTopic::with_defaults("u")
    };
    let results = c.create_topics(vec![wide], false).unwrap();
    assert_eq!(
        results[0].as_ref().unwrap_err().error,
        ResponseError::InvalidReplicationFactor
    );

    // It returns (a new process), catches up and leads its leaderless partition again.
    let now = SESSION_MS + 2;
    let epoch = c.register_broker(registration(2, 22), now).unwrap();
    assert!(epoch > e2);
    let reply = c.broker_heartbeat(caught_up(&c, 2, epoch), now).unwrap();
    assert!(!reply.is_fenced);
    assert_eq!(partitions(&c, "t"), vec![(3, vec![3]), (3, vec![3])]);
    assert_eq!(partitions(&c, "solo"), vec![(2, vec![2])]);
}

#[test]
fn controlled_shutdown_moves_leaderships_then_lets_the_broker_go() {
    let c = controller();
    let e2 = unfenced(&c, 2, 0);
    let e3 = unfenced(&c, 3, 0);
    topic(&c, "t", vec![vec![2, 3], vec![3, 2]]);
    let leaving = BrokerHeartbeat {
        want_shut_down: true,
        ..caught_up(&c, 2, e2)
    };
    let reply = c.broker_heartbeat(leaving, 100).unwrap();
    assert!(reply.in_controlled_shutdown && !reply.should_shut_down && !reply.is_fenced);
    let broker = &c.image().brokers[&2];
    assert!(broker.in_controlled_shutdown && !broker.fenced);
    assert_eq!(partitions(&c, "t"), vec![(3, vec![3]), (3, vec![3])]);
    // Not before broker 3 has seen the new leaders.
    c.broker_heartbeat(heartbeat(3, e3, e3), 150).unwrap();
    let reply = c.broker_heartbeat(leaving, 200).unwrap();
    assert!(reply.in_controlled_shutdown && !reply.should_shut_down);
    c.broker_heartbeat(caught_up(&c, 3, e3), 250).unwrap();
    let reply = c.broker_heartbeat(leaving, 300).unwrap();
    assert!(reply.should_shut_down && reply.is_fenced && !reply.in_controlled_shutdown);
    assert!(c.image().brokers[&2].fenced);
    // Its next incarnation need not wait out the old session.
    c.register_broker(registration(2, 23), 400).unwrap();
}

#[test]
fn a_broker_leading_nothing_shuts_down_at_once() {
    let c = controller();
    let e2 = unfenced(&c, 2, 0);
    let leaving = BrokerHeartbeat {
        want_shut_down: true,
        ..caught_up(&c, 2, e2)
    };
    let reply = c.broker_heartbeat(leaving, 0).unwrap();
    assert!(reply.should_shut_down && reply.is_fenced);
    // A fenced broker asking to shut down may, too.
    let e3 = c.register_broker(registration(3, 3), 0).unwrap();
    let reply = c
        .broker_heartbeat(
            BrokerHeartbeat {
                want_shut_down: true,
                ..heartbeat(3, e3, -1)
            },
            0,
        )
        .unwrap();
    assert!(reply.should_shut_down && reply.is_fenced);
}

#[test]
fn reset_sessions_give_every_broker_a_fresh_start() {
    let c = controller();
    unfenced(&c, 2, 0);
    c.reset_broker_sessions();
    // The session restarts when the controller first looks at the broker again.
    assert!(c.fence_stale_brokers(50_000).unwrap().is_empty());
    assert!(c
        .fence_stale_brokers(50_000 + SESSION_MS)
        .unwrap()
        .is_empty());
    assert_eq!(c.fence_stale_brokers(50_001 + SESSION_MS).unwrap(), vec![2]);
}

#[test]
fn a_replaced_registration_stops_leading() {
    let c = controller();
    unfenced(&c, 2, 0);
    topic(&c, "t", vec![vec![2]]);
    // The same incarnation registers again (e.g. after losing its epoch).
    let epoch = c.register_broker(registration(2, 2), 10).unwrap();
    assert_eq!(c.image().brokers[&2].epoch, epoch);
    assert!(c.image().brokers[&2].fenced);
    assert_eq!(partitions(&c, "t"), vec![(-1, vec![2])]);
}
