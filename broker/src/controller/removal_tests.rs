//! The broker removal task on a real controller: start with its checks, the
//! duty's moves under the concurrency cap until completion, cancel, and a new
//! controller carrying on from the log.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;

use super::*;
use crate::config::{BrokerConfig, Roles};
use crate::controller::lifecycle_tests::{self, topic};
use crate::controller::{AlterOp, ConfigResource, ConfigUpdate, IsrChange, MemoryMetadataLog};
use crate::metadata::image::RemovalTask;

fn config() -> BrokerConfig {
    BrokerConfig {
        roles: Roles {
            broker: false,
            controller: true,
        },
        ..BrokerConfig::default()
    }
}

/// A controller with brokers 1..=n unfenced; returns their epochs by id - 1.
fn cluster(log: &MemoryMetadataLog, n: i32) -> (Arc<Controller>, Vec<i64>) {
    let c = log.open_controller(&config());
    let epochs = (1..=n)
        .map(|id| lifecycle_tests::unfenced(&c, id, 0))
        .collect();
    (c, epochs)
}

/// SET of `removal.<id>` to the task, as the admin API sends it.
fn send(c: &Controller, id: &str, brokers: &[i32], state: RemovalState) -> Result<(), ApiError> {
    let task = RemovalTask {
        brokers: brokers.to_vec(),
        state,
        error: None,
    };
    c.alter_configs(
        vec![(
            ConfigResource::Broker(String::new()),
            ConfigUpdate::Incremental(vec![(
                format!("removal.{id}"),
                AlterOp::Set,
                Some(task.to_value()),
            )]),
        )],
        false,
    )
    .unwrap()
    .pop()
    .unwrap()
}

fn start(c: &Controller, id: &str, brokers: &[i32]) -> Result<(), ResponseError> {
    send(c, id, brokers, RemovalState::Running).map_err(|e| e.error)
}

/// Every moving partition's leader reports all its replicas in sync, as it
/// would once the added ones caught up; the move then completes.
fn moves_catch_up(c: &Controller, epochs: &[i64]) {
    let image = c.image();
    for t in image.topics.values() {
        for p in t.partitions.iter().filter(|p| reassigning(p)) {
            let change = IsrChange {
                topic_id: t.id,
                partition: p.partition,
                leader_epoch: p.leader_epoch,
                partition_epoch: p.partition_epoch,
                new_isr: p.replicas.iter().map(|id| (*id, -1)).collect(),
                leader_recovery_state: 0,
            };
            let epoch = epochs[(p.leader - 1) as usize];
            let results = c.alter_partition(p.leader, epoch, &[change]).unwrap();
            assert!(results[0].is_ok(), "{results:?}");
        }
    }
}

fn moving(c: &Controller) -> usize {
    c.image()
        .topics
        .values()
        .flat_map(|t| t.partitions.iter())
        .filter(|p| reassigning(p))
        .count()
}

/// Six partitions, each with a replica on broker 4, which leads half of them.
fn topic_on_4(c: &Controller) {
    topic(
        c,
        "t",
        vec![
            vec![4, 1],
            vec![1, 4],
            vec![4, 2],
            vec![2, 4],
            vec![4, 3],
            vec![3, 4],
        ],
    );
}

#[test]
fn a_removal_excludes_moves_everything_off_within_the_cap_and_completes() {
    let log = MemoryMetadataLog::new();
    let (c, epochs) = cluster(&log, 4);
    topic_on_4(&c);
    start(&c, "shrink", &[4]).unwrap();
    assert!(c.image().is_excluded(4));
    assert_eq!(
        c.image().removal("shrink").unwrap().state,
        RemovalState::Running
    );

    let mut rounds = 0;
    while c.image().removal("shrink").unwrap().state == RemovalState::Running {
        rounds += 1;
        assert!(rounds < 20, "the removal does not end");
        let started = c.advance_removal(2).unwrap();
        assert!(started <= 2, "{started} moves at once on broker 4");
        assert!(moving(&c) <= 2);
        moves_catch_up(&c, &epochs);
    }
    assert!(
        rounds >= 3,
        "six moves at two at a time take three rounds, took {rounds}"
    );
    let image = c.image();
    assert_eq!(
        image.removal("shrink").unwrap().state,
        RemovalState::Completed
    );
    assert_eq!(image.partitions_on(4), 0);
    for p in &image.topics["t"].partitions {
        assert_eq!(p.replicas.len(), 2, "{p:?}");
        assert_ne!(p.replicas[0], p.replicas[1]);
        assert_ne!(p.leader, 4);
    }
    // Spread by fewest replicas first: 12 replicas over 3 brokers, none far off 4 (each
    // choice is greedy, and a partition cannot take a broker it already has).
    let spread: Vec<usize> = (1..=3).map(|b| image.partitions_on(b)).collect();
    assert!(spread.iter().all(|n| (3..=5).contains(n)), "{spread:?}");
    assert!(
        image.is_excluded(4),
        "a removed broker stays excluded until it goes"
    );
    assert_eq!(c.advance_removal(2).unwrap(), 0);
}

#[test]
fn a_removal_that_leaves_too_few_brokers_is_refused_and_writes_nothing() {
    let log = MemoryMetadataLog::new();
    let (c, _) = cluster(&log, 3);
    topic(&c, "wide", vec![vec![1, 2, 3]]);
    let records = log.record_count();
    let refused = send(&c, "r", &[3], RemovalState::Running).unwrap_err();
    assert_eq!(refused.error, ResponseError::InvalidReplicationFactor);
    assert!(refused.message.contains("wide"), "{}", refused.message);
    assert_eq!(log.record_count(), records);
    assert!(!c.image().is_excluded(3));
    assert_eq!(
        start(&c, "r", &[9]),
        Err(ResponseError::BrokerIdNotRegistered)
    );
    assert_eq!(
        start(&c, "Bad_Id", &[1]),
        Err(ResponseError::InvalidRequest)
    );
    assert_eq!(log.record_count(), records);
}

#[test]
fn a_second_removal_conflicts_and_the_same_one_again_changes_nothing() {
    let log = MemoryMetadataLog::new();
    let (c, _) = cluster(&log, 4);
    topic(&c, "t", vec![vec![3, 4]]);
    start(&c, "one", &[4]).unwrap();
    let records = log.record_count();
    assert_eq!(start(&c, "one", &[4]), Ok(()));
    assert_eq!(
        log.record_count(),
        records,
        "repeating a start writes nothing"
    );
    assert_eq!(
        start(&c, "one", &[3]),
        Err(ResponseError::ReassignmentInProgress)
    );
    assert_eq!(
        start(&c, "two", &[3]),
        Err(ResponseError::ReassignmentInProgress)
    );
    assert_eq!(
        send(&c, "one", &[4], RemovalState::Completed).map_err(|e| e.error),
        Err(ResponseError::InvalidRequest)
    );
    assert_eq!(log.record_count(), records);
}

#[test]
fn cancel_stops_the_moves_in_flight_and_lifts_the_exclusion() {
    let log = MemoryMetadataLog::new();
    let (c, _) = cluster(&log, 4);
    topic_on_4(&c);
    start(&c, "r", &[4]).unwrap();
    assert_eq!(c.advance_removal(2).unwrap(), 2);
    assert_eq!(moving(&c), 2);
    send(&c, "r", &[4], RemovalState::Cancelled).unwrap();
    let image = c.image();
    assert_eq!(image.removal("r").unwrap().state, RemovalState::Cancelled);
    assert!(!image.is_excluded(4));
    assert_eq!(moving(&c), 0, "the moves in flight went back");
    assert_eq!(image.partitions_on(4), 6);
    let records = log.record_count();
    send(&c, "r", &[4], RemovalState::Cancelled).unwrap();
    assert_eq!(c.advance_removal(2).unwrap(), 0);
    assert_eq!(
        log.record_count(),
        records,
        "a cancelled removal stays as it is"
    );
    // Another removal may start now.
    start(&c, "again", &[4]).unwrap();
}

#[test]
fn a_new_controller_carries_on_from_the_log() {
    let log = MemoryMetadataLog::new();
    let (c, epochs) = cluster(&log, 4);
    topic_on_4(&c);
    start(&c, "r", &[4]).unwrap();
    c.advance_removal(2).unwrap();
    moves_catch_up(&c, &epochs);
    drop(c);
    let next = log.open_controller(&config());
    assert_eq!(
        next.image().removal("r").unwrap().state,
        RemovalState::Running
    );
    for _ in 0..20 {
        next.advance_removal(2).unwrap();
        moves_catch_up(&next, &epochs);
    }
    let image = next.image();
    assert_eq!(image.removal("r").unwrap().state, RemovalState::Completed);
    assert_eq!(image.partitions_on(4), 0);
}

#[test]
fn moves_prefer_the_leaving_brokers_rack_then_the_fewest_replicas() {
    let log = MemoryMetadataLog::new();
    let (c, _) = cluster(&log, 4);
    topic(&c, "t", vec![vec![4, 1]]);
    topic(&c, "busy", vec![vec![2, 1], vec![2, 1]]);
    let mut image = (*c.image()).clone();
    for (id, rack) in [(1, "a"), (2, "b"), (3, "a"), (4, "b")] {
        image.brokers.get_mut(&id).unwrap().rack = Some(rack.into());
    }
    // Broker 2 shares broker 4's rack, though it holds more replicas than 3.
    let (moves, error) = plan_moves(&image, &[4], 2);
    assert_eq!((moves, error), (vec![("t".into(), 0, vec![2, 1])], None));
    for b in image.brokers.values_mut() {
        b.rack = None;
    }
    let (moves, _) = plan_moves(&image, &[4], 2);
    assert_eq!(moves, vec![("t".into(), 0, vec![3, 1])], "fewest replicas");
    // With broker 3 gone too, only broker 2 is left for t-0 besides 1.
    let (moves, error) = plan_moves(&image, &[3, 4], 2);
    assert_eq!(moves, vec![("t".into(), 0, vec![2, 1])]);
    assert_eq!(error, None);
    let (moves, error) = plan_moves(&image, &[2, 3, 4], 2);
    assert!(moves.is_empty());
    assert!(error.unwrap().contains("t-0"));
}
