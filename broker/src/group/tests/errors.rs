use super::*;

#[tokio::test(start_paused = true)]
async fn requests_before_load_and_after_shutdown_are_refused() {
    let c = GroupCoordinator::new(config(), Arc::new(MemoryOffsetsStore::new()));
    assert_eq!(
        c.join_group(join_params("g", "")).await,
        Err(GroupError::CoordinatorLoadInProgress)
    );
    assert_eq!(
        c.list_groups(&[], &[]),
        Err(GroupError::CoordinatorLoadInProgress)
    );
    c.load().await.unwrap();
    let waiting = spawn_join(&c, join_params("g", ""));
    tokio::task::yield_now().await;
    c.shutdown();
    assert_eq!(
        waiting.await.unwrap(),
        Err(GroupError::CoordinatorNotAvailable)
    );
    assert_eq!(
        c.heartbeat("g", 1, "m", None),
        Err(GroupError::CoordinatorNotAvailable)
    );
    assert_eq!(GroupError::CoordinatorNotAvailable.code(), 15);
}

#[tokio::test(start_paused = true)]
async fn join_rejects_bad_input() {
    let (c, _) = coordinator().await;
    assert_eq!(
        c.join_group(join_params("", "")).await,
        Err(GroupError::InvalidGroupId)
    );
    let mut short = join_params("g", "");
    short.session_timeout_ms = 5_999;
    assert_eq!(
        c.join_group(short).await,
        Err(GroupError::InvalidSessionTimeout)
    );
    let mut long = join_params("g", "");
    long.session_timeout_ms = 300_001;
    assert_eq!(
        c.join_group(long).await,
        Err(GroupError::InvalidSessionTimeout)
    );
    let mut no_type = join_params("g", "");
    no_type.protocol_type = String::new();
    assert_eq!(
        c.join_group(no_type).await,
        Err(GroupError::InconsistentGroupProtocol)
    );
    assert_eq!(
        c.join_group(join_params("nope", "ghost")).await,
        Err(GroupError::UnknownMemberId)
    );
}

#[tokio::test(start_paused = true)]
async fn unknown_member_and_illegal_generation() {
    let (c, _) = coordinator().await;
    let members = rebalance(&c, "g", vec![join_params("g", "")]).await;
    let id = &members[0].member_id;
    assert_eq!(
        c.heartbeat("g", 1, "ghost", None),
        Err(GroupError::UnknownMemberId)
    );
    assert_eq!(
        c.heartbeat("other", 1, id, None),
        Err(GroupError::UnknownMemberId)
    );
    assert_eq!(
        c.heartbeat("g", 7, id, None),
        Err(GroupError::IllegalGeneration)
    );
    assert_eq!(
        c.sync_group(sync_params("g", 0, id)).await,
        Err(GroupError::IllegalGeneration)
    );
    assert_eq!(
        c.sync_group(sync_params("g", 1, "ghost")).await,
        Err(GroupError::UnknownMemberId)
    );
    let mut wrong_protocol = sync_params("g", 1, id);
    wrong_protocol.protocol_name = Some("roundrobin".into());
    assert_eq!(
        c.sync_group(wrong_protocol).await,
        Err(GroupError::InconsistentGroupProtocol)
    );
    assert_eq!(
        c.join_group(join_params("g", "ghost")).await,
        Err(GroupError::UnknownMemberId)
    );
    let leave = c.leave_group(
        "g",
        &[LeavingMember {
            member_id: "ghost".into(),
            group_instance_id: None,
        }],
    );
    assert_eq!(leave, Ok(vec![Err(GroupError::UnknownMemberId)]));
}

#[tokio::test(start_paused = true)]
async fn group_max_size_is_enforced() {
    let store = Arc::new(MemoryOffsetsStore::new());
    let c = start(
        store,
        GroupConfig {
            max_size: 1,
            ..config()
        },
    )
    .await;
    rebalance(&c, "g", vec![join_params("g", "")]).await;
    assert_eq!(
        c.join_group(join_params("g", "")).await,
        Err(GroupError::GroupMaxSizeReached)
    );
}

#[tokio::test(start_paused = true)]
async fn sync_during_a_rebalance_says_so() {
    let (c, _) = coordinator().await;
    let members = rebalance(&c, "g", vec![join_params("g", "")]).await;
    let _rejoin = spawn_join(&c, join_params("g", ""));
    tokio::task::yield_now().await;
    assert_eq!(
        c.sync_group(sync_params("g", 1, &members[0].member_id))
            .await,
        Err(GroupError::RebalanceInProgress)
    );
}

#[tokio::test(start_paused = true)]
async fn group_max_size_counts_rejoined_members_during_a_rebalance() {
    let store = Arc::new(MemoryOffsetsStore::new());
    let c = start(
        store,
        GroupConfig {
            max_size: 2,
            ..config()
        },
    )
    .await;
    let members = rebalance(&c, "g", vec![join_params("g", ""); 2]).await;
    // A leader rejoin starts a rebalance in which one member has rejoined so far.
    let leader = members.iter().find(|r| r.member_id == r.leader).unwrap();
    let _rejoin = spawn_join(&c, join_params("g", &leader.member_id));
    tokio::task::yield_now().await;
    let newcomer = spawn_join(&c, join_params("g", ""));
    tokio::task::yield_now().await;
    assert!(
        !newcomer.is_finished(),
        "room for one more while only one has rejoined"
    );
    assert_eq!(
        c.join_group(join_params("g", "")).await,
        Err(GroupError::GroupMaxSizeReached)
    );
}

#[test]
fn config_comes_from_the_broker_settings() {
    let broker = crate::config::BrokerConfig {
        offsets_topic_num_partitions: 7,
        offsets_retention_ms: 11,
        offsets_retention_check_interval_ms: 13,
        group_initial_rebalance_delay_ms: 17,
        group_min_session_timeout_ms: 19,
        group_max_session_timeout_ms: 23,
        group_max_size: 29,
        ..Default::default()
    };
    let config = GroupConfig::from_broker(&broker);
    assert_eq!(
        (
            config.offsets_topic_num_partitions,
            config.offsets_retention_ms,
            config.offsets_retention_check_interval_ms,
            config.initial_rebalance_delay_ms,
            config.min_session_timeout_ms,
            config.max_session_timeout_ms,
            config.max_size,
        ),
        (7, 11, 13, 17, 19, 23, 29)
    );
}
