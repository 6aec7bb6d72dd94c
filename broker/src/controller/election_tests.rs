//! Preferred and unclean leader elections: ElectLeaders' answers, the
//! controller's own balancing, and when an unclean election may happen.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;

use super::*;
use crate::config::{BrokerConfig, LeadershipConfig, Roles};
use crate::controller::lifecycle_tests::{self, partitions, topic};

/// A controller with brokers 1, 2, 3 unfenced; returns their epochs.
fn cluster(leadership: LeadershipConfig) -> (Arc<Controller>, [i64; 3]) {
    let config = BrokerConfig {
        roles: Roles {
            broker: false,
            controller: true,
        },
        leadership,
        ..BrokerConfig::default()
    };
    let c = MemoryMetadataLog::new().open_controller(&config);
    let epochs = [1, 2, 3].map(|id| lifecycle_tests::unfenced(&c, id, 0));
    (c, epochs)
}

/// Heartbeats broker `id` asking to be fenced (true) or unfenced (false).
fn set_fenced(c: &Controller, id: i32, epoch: i64, fenced: bool) {
    let request = BrokerHeartbeat {
        want_fence: fenced,
        ..lifecycle_tests::heartbeat(id, epoch, c.image().metadata_offset)
    };
    let reply = c.broker_heartbeat(request, 0).unwrap();
    assert_eq!(reply.is_fenced, fenced, "broker {id}");
}

fn errors(results: Vec<ElectionResult>) -> Vec<(String, i32, Option<ResponseError>)> {
    results
        .into_iter()
        .map(|(t, p, r)| (t, p, r.err().map(|e| e.error)))
        .collect()
}

#[test]
fn preferred_election_moves_leadership_back_once_the_preferred_replica_is_in_sync() {
    let (c, epochs) = cluster(LeadershipConfig::default());
    topic(&c, "t", vec![vec![1, 2, 3]]);
    set_fenced(&c, 1, epochs[0], true);
    assert_eq!(partitions(&c, "t"), vec![(2, vec![2, 3])]);
    set_fenced(&c, 1, epochs[0], false);

    let t0 = || Some(vec![("t".to_string(), 0)]);
    // Back, but not yet in the ISR: it may not lead.
    let results = c.elect_leaders(ElectionType::Preferred, t0()).unwrap();
    assert_eq!(
        errors(results),
        vec![(
            "t".into(),
            0,
            Some(ResponseError::PreferredLeaderNotAvailable)
        )]
    );
    lifecycle_tests::leader_reports_isr(&c, &epochs, &[2, 3, 1]);
    let results = c.elect_leaders(ElectionType::Preferred, t0()).unwrap();
    assert_eq!(errors(results), vec![("t".into(), 0, None)]);
    assert_eq!(partitions(&c, "t")[0].0, 1);
    let results = c.elect_leaders(ElectionType::Preferred, t0()).unwrap();
    assert_eq!(
        errors(results),
        vec![("t".into(), 0, Some(ResponseError::ElectionNotNeeded))]
    );
}

#[test]
fn unknown_partitions_are_named_and_all_partitions_lists_only_elections_held() {
    let (c, epochs) = cluster(LeadershipConfig::default());
    topic(&c, "t", vec![vec![1, 2, 3]]);
    topic(&c, "u", vec![vec![2, 3], vec![3, 2]]);
    let results = c
        .elect_leaders(
            ElectionType::Preferred,
            Some(vec![("t".into(), 5), ("nope".into(), 0), ("u".into(), 1)]),
        )
        .unwrap();
    assert_eq!(
        errors(results),
        vec![
            ("t".into(), 5, Some(ResponseError::UnknownTopicOrPartition)),
            (
                "nope".into(),
                0,
                Some(ResponseError::UnknownTopicOrPartition)
            ),
            ("u".into(), 1, Some(ResponseError::ElectionNotNeeded)),
        ]
    );

    set_fenced(&c, 1, epochs[0], true);
    set_fenced(&c, 1, epochs[0], false);
    lifecycle_tests::leader_reports_isr(&c, &epochs, &[2, 3, 1]);
    // Only t-0 is off its preferred leader: the others are left out.
    let results = c.elect_leaders(ElectionType::Preferred, None).unwrap();
    assert_eq!(errors(results), vec![("t".into(), 0, None)]);
    assert!(c
        .elect_leaders(ElectionType::Preferred, None)
        .unwrap()
        .is_empty());
}

#[test]
fn automatic_balancing_elects_every_preferred_replica_that_may_lead() {
    let (c, epochs) = cluster(LeadershipConfig::default());
    topic(&c, "t", vec![vec![1, 2, 3]]);
    assert_eq!(c.balance_leaders().unwrap(), 0);
    set_fenced(&c, 1, epochs[0], true);
    set_fenced(&c, 1, epochs[0], false);
    assert_eq!(c.balance_leaders().unwrap(), 0, "1 is not in the ISR yet");
    lifecycle_tests::leader_reports_isr(&c, &epochs, &[2, 3, 1]);
    assert_eq!(c.balance_leaders().unwrap(), 1);
    assert_eq!(partitions(&c, "t"), vec![(1, vec![2, 3, 1])]);
}

/// `t` on [1, 2] loses broker 2, then 1 (its last ISR member): leaderless,
/// with 2 back but outside the ISR.
fn leaderless(c: &Controller, epochs: &[i64; 3]) {
    topic(c, "t", vec![vec![1, 2]]);
    set_fenced(c, 2, epochs[1], true);
    set_fenced(c, 1, epochs[0], true);
    assert_eq!(partitions(c, "t"), vec![(-1, vec![1])]);
    set_fenced(c, 2, epochs[1], false);
    assert_eq!(
        partitions(c, "t"),
        vec![(-1, vec![1])],
        "2 may not lead cleanly"
    );
}

#[test]
fn no_unclean_election_unless_allowed() {
    let (c, epochs) = cluster(LeadershipConfig::default());
    leaderless(&c, &epochs);
    assert_eq!(c.elect_unclean_leaders().unwrap(), 0);
    assert_eq!(partitions(&c, "t"), vec![(-1, vec![1])]);

    // A topic override allows it.
    c.alter_configs(
        vec![(
            ConfigResource::Topic("t".into()),
            ConfigUpdate::Incremental(vec![(
                "unclean.leader.election.enable".into(),
                AlterOp::Set,
                Some("true".into()),
            )]),
        )],
        false,
    )
    .unwrap()
    .pop()
    .unwrap()
    .unwrap();
    assert_eq!(c.elect_unclean_leaders().unwrap(), 1);
    let p = c.image().topics["t"].partitions[0].clone();
    assert_eq!((p.leader, p.isr, p.leader_recovery_state), (2, vec![2], 1));
}

#[test]
fn broker_default_allows_unclean_elections_and_elect_leaders_can_ask_for_one() {
    let allow = LeadershipConfig {
        unclean_leader_election: true,
        ..LeadershipConfig::default()
    };
    let (c, epochs) = cluster(allow);
    leaderless(&c, &epochs);
    assert_eq!(c.elect_unclean_leaders().unwrap(), 1);
    assert_eq!(partitions(&c, "t"), vec![(2, vec![2])]);

    // ElectLeaders UNCLEAN works whatever the config says, and prefers the ISR.
    let (c, epochs) = cluster(LeadershipConfig::default());
    leaderless(&c, &epochs);
    let t0 = Some(vec![("t".to_string(), 0)]);
    let results = c.elect_leaders(ElectionType::Unclean, t0.clone()).unwrap();
    assert_eq!(errors(results), vec![("t".into(), 0, None)]);
    assert_eq!(partitions(&c, "t"), vec![(2, vec![2])]);
    let results = c.elect_leaders(ElectionType::Unclean, t0).unwrap();
    assert_eq!(
        errors(results),
        vec![("t".into(), 0, Some(ResponseError::ElectionNotNeeded))]
    );
}

#[test]
fn unclean_election_without_a_live_replica_is_refused() {
    let (c, epochs) = cluster(LeadershipConfig::default());
    leaderless(&c, &epochs);
    set_fenced(&c, 2, epochs[1], true);
    let results = c
        .elect_leaders(ElectionType::Unclean, Some(vec![("t".into(), 0)]))
        .unwrap();
    assert_eq!(
        errors(results),
        vec![(
            "t".into(),
            0,
            Some(ResponseError::EligibleLeadersNotAvailable)
        )]
    );
}

/// `broker.demote=true` on one broker (the admin API's demote), as the controller answers it.
fn demote_broker(c: &Controller, name: &str, value: &str) -> Result<(), ApiError> {
    let op = (
        DEMOTE_KEY.to_string(),
        AlterOp::Set,
        Some(value.to_string()),
    );
    c.alter_configs(
        vec![(
            ConfigResource::Broker(name.into()),
            ConfigUpdate::Incremental(vec![op]),
        )],
        false,
    )
    .unwrap()
    .pop()
    .unwrap()
}

#[test]
fn demotion_hands_leaderships_to_other_in_sync_replicas_and_stores_nothing() {
    let (c, _) = cluster(LeadershipConfig::default());
    topic(&c, "t", vec![vec![1, 2, 3], vec![1, 3, 2], vec![2, 1, 3]]);
    topic(&c, "solo", vec![vec![1]]);
    demote_broker(&c, "1", "true").unwrap();
    assert_eq!(
        partitions(&c, "t"),
        vec![(2, vec![1, 2, 3]), (3, vec![1, 3, 2]), (2, vec![2, 1, 3])],
        "leaders move, ISRs stay"
    );
    assert_eq!(
        partitions(&c, "solo"),
        vec![(1, vec![1])],
        "no one else can lead"
    );
    assert_eq!(leaderships(&c.image(), 1), 1);
    let stored = c
        .image()
        .broker_resource_configs("1")
        .cloned()
        .unwrap_or_default();
    assert!(!stored.contains_key(DEMOTE_KEY), "{stored:?}");

    let err = demote_broker(&c, "1", "later").unwrap_err();
    assert_eq!(err.error, ResponseError::InvalidConfig);
    assert!(err.message.contains("set only to true"), "{}", err.message);
    assert_eq!(
        demote_broker(&c, "", "true").unwrap_err().error,
        ResponseError::InvalidConfig
    );
}
