//! Reassignment on a real controller: start, completion through AlterPartition
//! and through the duty, replacement, cancel, and every error code.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;

use super::*;
use crate::config::{BrokerConfig, Roles};
use crate::controller::lifecycle_tests::{self, topic};
use crate::controller::MemoryMetadataLog;

const WAIT: Duration = Duration::from_secs(1);

/// A controller with brokers 1-4 unfenced and `t-0` on [1, 2] led by 1.
fn cluster() -> (Arc<Controller>, MemoryMetadataLog, [i64; 4]) {
    let config = BrokerConfig {
        roles: Roles {
            broker: false,
            controller: true,
        },
        ..BrokerConfig::default()
    };
    let log = MemoryMetadataLog::new();
    let c = log.open_controller(&config);
    let epochs = [1, 2, 3, 4].map(|id| lifecycle_tests::unfenced(&c, id, 0));
    topic(&c, "t", vec![vec![1, 2]]);
    (c, log, epochs)
}

fn t0(c: &Controller) -> PartitionImage {
    c.image().topics["t"].partitions[0].clone()
}

fn reassign(c: &Controller, target: Option<Vec<i32>>) -> Result<(), ResponseError> {
    let mut results = c
        .alter_partition_reassignments(vec![("t".into(), 0, target)], WAIT)
        .unwrap();
    assert_eq!(results.len(), 1);
    results.pop().unwrap().2.map_err(|e| e.error)
}

fn state(p: &PartitionImage) -> (Vec<i32>, Vec<i32>, Vec<i32>, Vec<i32>, i32) {
    (
        p.replicas.clone(),
        p.isr.clone(),
        p.adding_replicas.clone(),
        p.removing_replicas.clone(),
        p.leader,
    )
}

#[test]
fn a_move_completes_once_the_added_replica_joins_and_leadership_leaves_the_removed_one() {
    let (c, _, epochs) = cluster();
    let before = t0(&c);
    reassign(&c, Some(vec![2, 3])).unwrap();
    let moving = t0(&c);
    assert_eq!(
        state(&moving),
        (vec![2, 3, 1], vec![1, 2], vec![3], vec![1], 1)
    );
    assert_eq!(moving.leader_epoch, before.leader_epoch);
    let listed = c.list_partition_reassignments(None);
    assert_eq!(
        listed,
        vec![OngoingReassignment {
            topic: "t".into(),
            partition: 0,
            replicas: vec![2, 3, 1],
            adding: vec![3],
            removing: vec![1],
        }]
    );

    lifecycle_tests::leader_reports_isr(&c, &epochs, &[1, 2, 3]);
    let done = t0(&c);
    assert_eq!(state(&done), (vec![2, 3], vec![2, 3], vec![], vec![], 2));
    assert_eq!(done.leader_epoch, before.leader_epoch + 1);
    assert!(c.list_partition_reassignments(None).is_empty());
    assert_eq!(c.complete_reassignments().unwrap(), 0);
}

#[test]
fn the_duty_completes_a_move_left_complete_but_unfinished() {
    let (c, log, _) = cluster();
    reassign(&c, Some(vec![1, 3])).unwrap();
    // As a controller that failed over between the ISR change and the completion left it.
    let t = &c.image().topics["t"];
    let record = MetadataRecord::PartitionChange(PartitionChangeRecord {
        partition_id: 0,
        topic_id: t.id,
        isr: Some(vec![1, 2, 3]),
        leader: NO_LEADER_CHANGE,
        replicas: None,
        removing_replicas: None,
        adding_replicas: None,
        leader_recovery_state: -1,
    });
    log.push_raw(record.encode()).unwrap();
    assert_eq!(state(&t0(&c)).2, vec![3]);
    assert_eq!(c.complete_reassignments().unwrap(), 1);
    assert_eq!(state(&t0(&c)), (vec![1, 3], vec![1, 3], vec![], vec![], 1));
}

#[test]
fn a_reorder_or_a_shrink_completes_at_once_and_the_same_replicas_write_nothing() {
    let (c, log, _) = cluster();
    let records = log.record_count();
    reassign(&c, Some(vec![1, 2])).unwrap();
    assert_eq!(log.record_count(), records);
    reassign(&c, Some(vec![2, 1])).unwrap();
    assert_eq!(state(&t0(&c)), (vec![2, 1], vec![1, 2], vec![], vec![], 1));
    reassign(&c, Some(vec![2])).unwrap();
    assert_eq!(state(&t0(&c)), (vec![2], vec![2], vec![], vec![], 2));
}

#[test]
fn a_new_move_replaces_the_one_in_flight_from_the_original_replicas() {
    let (c, _, epochs) = cluster();
    reassign(&c, Some(vec![2, 3])).unwrap();
    reassign(&c, Some(vec![1, 4])).unwrap();
    // 3 was only being added: it is dropped, not kept as a replica to remove.
    assert_eq!(
        state(&t0(&c)),
        (vec![1, 4, 2], vec![1, 2], vec![4], vec![2], 1)
    );
    lifecycle_tests::leader_reports_isr(&c, &epochs, &[1, 2, 4]);
    assert_eq!(state(&t0(&c)), (vec![1, 4], vec![1, 4], vec![], vec![], 1));
}

#[test]
fn cancel_puts_the_original_replicas_back() {
    let (c, _, epochs) = cluster();
    assert_eq!(
        reassign(&c, None),
        Err(ResponseError::NoReassignmentInProgress)
    );
    reassign(&c, Some(vec![3, 4])).unwrap();
    assert_eq!(
        state(&t0(&c)),
        (vec![3, 4, 1, 2], vec![1, 2], vec![3, 4], vec![1, 2], 1)
    );
    // 3 caught up, 4 not yet: still moving.
    lifecycle_tests::leader_reports_isr(&c, &epochs, &[1, 2, 3]);
    assert_eq!(state(&t0(&c)).2, vec![3, 4]);
    reassign(&c, None).unwrap();
    assert_eq!(state(&t0(&c)), (vec![1, 2], vec![1, 2], vec![], vec![], 1));
    assert_eq!(
        reassign(&c, None),
        Err(ResponseError::NoReassignmentInProgress)
    );
}

#[test]
fn a_cancel_that_would_empty_the_isr_is_refused() {
    let (c, _, epochs) = cluster();
    reassign(&c, Some(vec![3, 4])).unwrap();
    lifecycle_tests::leader_reports_isr(&c, &epochs, &[1, 2, 3]);
    // Leadership moves to 3, then the original replicas leave the ISR.
    c.elect_leaders(crate::controller::ElectionType::Preferred, None)
        .unwrap();
    assert_eq!(t0(&c).leader, 3);
    lifecycle_tests::leader_reports_isr(&c, &epochs, &[3]);
    assert_eq!(
        reassign(&c, None),
        Err(ResponseError::InvalidReplicaAssignment)
    );
    assert_eq!(state(&t0(&c)).2, vec![3, 4]);
}

#[test]
fn invalid_targets_and_unknown_partitions_are_refused_and_change_nothing() {
    let (c, log, _) = cluster();
    let records = log.record_count();
    let results = c
        .alter_partition_reassignments(
            vec![
                ("t".into(), 0, Some(vec![])),
                ("t".into(), 1, Some(vec![1, 2])),
                ("nope".into(), 0, Some(vec![1, 2])),
                ("t".into(), -1, None),
            ],
            WAIT,
        )
        .unwrap();
    let codes: Vec<_> = results
        .iter()
        .map(|r| r.2.as_ref().unwrap_err().error)
        .collect();
    assert_eq!(
        codes,
        [
            ResponseError::InvalidReplicaAssignment,
            ResponseError::UnknownTopicOrPartition,
            ResponseError::UnknownTopicOrPartition,
            ResponseError::UnknownTopicOrPartition,
        ]
    );
    for bad in [vec![1, 1], vec![1, 9], vec![-1]] {
        assert_eq!(
            reassign(&c, Some(bad.clone())),
            Err(ResponseError::InvalidReplicaAssignment),
            "{bad:?}"
        );
    }
    let twice = c
        .alter_partition_reassignments(
            vec![
                ("t".into(), 0, Some(vec![1, 3])),
                ("t".into(), 0, Some(vec![1, 4])),
            ],
            WAIT,
        )
        .unwrap();
    assert!(twice[0].2.is_ok());
    assert_eq!(
        twice[1].2.as_ref().unwrap_err().error,
        ResponseError::InvalidRequest
    );
    assert_eq!(log.record_count(), records + 1);
    assert_eq!(state(&t0(&c)).2, vec![3]);
}

#[test]
fn list_names_only_moving_partitions_of_those_asked_for() {
    let (c, _, _) = cluster();
    topic(&c, "u", vec![vec![1], vec![2]]);
    c.alter_partition_reassignments(vec![("u".into(), 1, Some(vec![3]))], WAIT)
        .unwrap();
    reassign(&c, Some(vec![3, 4])).unwrap();
    let asked = vec![("u".into(), 0), ("u".into(), 1), ("x".into(), 0)];
    let listed = c.list_partition_reassignments(Some(asked));
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].topic.as_str(), listed[0].partition), ("u", 1));
    assert_eq!(c.list_partition_reassignments(None).len(), 2);
}

#[test]
fn a_busy_writer_times_the_request_out() {
    let (c, _, _) = cluster();
    let _writer = c.write();
    let err = c
        .alter_partition_reassignments(vec![("t".into(), 0, Some(vec![3]))], Duration::ZERO)
        .unwrap_err();
    assert_eq!(err.to_api_error().error, ResponseError::RequestTimedOut);
}
