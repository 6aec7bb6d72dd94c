//! AlterPartition validation: every error code, and a committed change.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use super::*;
use crate::config::{BrokerConfig, Roles};
use crate::controller::lifecycle_tests::{self, topic};
use crate::controller::{BrokerHeartbeat, MemoryMetadataLog};

/// A controller with brokers 1, 2, 3 unfenced and topic `t` on [1, 2, 3]
/// led by 1; returns it with the brokers' epochs.
fn cluster() -> (Arc<Controller>, [i64; 3]) {
    let config = BrokerConfig {
        roles: Roles {
            broker: false,
            controller: true,
        },
        ..BrokerConfig::default()
    };
    let c = MemoryMetadataLog::new().open_controller(&config);
    let epochs = [1, 2, 3].map(|id| {
        let registration = lifecycle_tests::registration(id, id as u128);
        let epoch = c.register_broker(registration, 0).unwrap();
        heartbeat(&c, id, epoch, false);
        epoch
    });
    topic(&c, "t", vec![vec![1, 2, 3]]);
    (c, epochs)
}

fn heartbeat(c: &Controller, id: i32, epoch: i64, want_shut_down: bool) {
    let request = BrokerHeartbeat {
        want_shut_down,
        ..lifecycle_tests::heartbeat(id, epoch, c.image().metadata_offset)
    };
    c.broker_heartbeat(request, 0).unwrap();
}

fn current(c: &Controller) -> (Uuid, PartitionImage) {
    let t = &c.image().topics["t"];
    (t.id, t.partitions[0].clone())
}

/// A change of `t-0` to `isr` (ids with epoch -1) at the current epochs.
fn change(c: &Controller, isr: &[i32]) -> IsrChange {
    let (topic_id, p) = current(c);
    IsrChange {
        topic_id,
        partition: 0,
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        new_isr: isr.iter().map(|id| (*id, -1)).collect(),
        leader_recovery_state: 0,
    }
}

fn one(
    c: &Controller,
    broker: i32,
    epoch: i64,
    change: IsrChange,
) -> Result<CommittedPartition, ResponseError> {
    c.alter_partition(broker, epoch, &[change])
        .unwrap()
        .pop()
        .unwrap()
}

#[test]
fn a_valid_change_is_committed_and_answered_with_the_new_state() {
    let (c, epochs) = cluster();
    let (_, before) = current(&c);
    let state = one(&c, 1, epochs[0], change(&c, &[1, 3])).unwrap();
    assert_eq!(state.isr, [1, 3]);
    assert_eq!(state.leader, 1);
    assert_eq!(state.leader_epoch, before.leader_epoch);
    assert_eq!(state.partition_epoch, before.partition_epoch + 1);
    assert_eq!(current(&c).1.isr, [1, 3]);
    // The same ISR again changes nothing and is answered with the state.
    let again = one(&c, 1, epochs[0], change(&c, &[1, 3])).unwrap();
    assert_eq!(again, state);
    // Members with their current broker epochs pass the KIP-903 check.
    let mut with_epochs = change(&c, &[1, 2, 3]);
    with_epochs.new_isr = vec![(1, epochs[0]), (2, epochs[1]), (3, epochs[2])];
    assert_eq!(one(&c, 1, epochs[0], with_epochs).unwrap().isr, [1, 2, 3]);
}

#[test]
fn every_refusal_has_kafkas_error_code() {
    let (c, epochs) = cluster();
    let leader = |change| one(&c, 1, epochs[0], change);
    let mut unknown_topic = change(&c, &[1, 2]);
    unknown_topic.topic_id = Uuid::from_u128(99);
    assert_eq!(leader(unknown_topic), Err(ResponseError::UnknownTopicId));
    let mut unknown_partition = change(&c, &[1, 2]);
    unknown_partition.partition = 5;
    assert_eq!(
        leader(unknown_partition),
        Err(ResponseError::UnknownTopicOrPartition)
    );
    let mut newer_leader_epoch = change(&c, &[1, 2]);
    newer_leader_epoch.leader_epoch += 1;
    assert_eq!(
        leader(newer_leader_epoch),
        Err(ResponseError::NotController)
    );
    let mut newer_partition_epoch = change(&c, &[1, 2]);
    newer_partition_epoch.partition_epoch += 1;
    assert_eq!(
        leader(newer_partition_epoch),
        Err(ResponseError::NotController)
    );
    assert_eq!(
        one(&c, 2, epochs[1], change(&c, &[1, 2])),
        Err(ResponseError::InvalidRequest),
        "not the leader"
    );
    let mut duplicate = change(&c, &[1, 2]);
    duplicate.new_isr.push((2, -1));
    assert_eq!(leader(duplicate), Err(ResponseError::InvalidRequest));
    assert_eq!(
        leader(change(&c, &[1, 4])),
        Err(ResponseError::InvalidRequest),
        "not a replica"
    );
    assert_eq!(
        leader(change(&c, &[2, 3])),
        Err(ResponseError::InvalidRequest),
        "without the leader"
    );
    let mut bad_recovery = change(&c, &[1, 2]);
    bad_recovery.leader_recovery_state = 7;
    assert_eq!(leader(bad_recovery), Err(ResponseError::InvalidRequest));
    let mut back_to_recovering = change(&c, &[1]);
    back_to_recovering.leader_recovery_state = 1;
    assert_eq!(
        leader(back_to_recovering),
        Err(ResponseError::InvalidRequest)
    );
    let mut stale_member_epoch = change(&c, &[1, 2]);
    stale_member_epoch.new_isr[1].1 = epochs[1] + 100;
    assert_eq!(
        leader(stale_member_epoch),
        Err(ResponseError::IneligibleReplica)
    );

    // A stale partition epoch, then a stale leader epoch.
    let stale = change(&c, &[1, 2]);
    leader(change(&c, &[1, 3])).unwrap();
    assert_eq!(
        leader(stale.clone()),
        Err(ResponseError::InvalidUpdateVersion)
    );
    // Broker 3 shuts down: it cannot join.
    heartbeat(&c, 3, epochs[2], true);
    assert_eq!(
        leader(change(&c, &[1, 2, 3])),
        Err(ResponseError::IneligibleReplica)
    );
    // Broker 1 shuts down: broker 2 leads, and broker 1's epoch is fenced.
    leader(change(&c, &[1, 2])).unwrap();
    let old_epoch = change(&c, &[1, 2]);
    heartbeat(&c, 1, epochs[0], true);
    assert_eq!(current(&c).1.leader, 2);
    assert_eq!(
        one(&c, 2, epochs[1], old_epoch),
        Err(ResponseError::FencedLeaderEpoch)
    );
}

#[test]
fn a_stale_broker_epoch_fails_the_whole_request() {
    let (c, epochs) = cluster();
    let error = c
        .alter_partition(1, epochs[0] + 1, &[change(&c, &[1, 2])])
        .unwrap_err();
    assert_eq!(error.to_api_error().error, ResponseError::StaleBrokerEpoch);
    let error = c
        .alter_partition(9, -1, &[change(&c, &[1, 2])])
        .unwrap_err();
    assert_eq!(error.to_api_error().error, ResponseError::StaleBrokerEpoch);
}
