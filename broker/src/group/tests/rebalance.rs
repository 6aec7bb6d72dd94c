use std::time::Duration;

use tokio::time::Instant;

use super::*;

#[tokio::test(start_paused = true)]
async fn three_members_rebalance_leave_and_rejoin() {
    let (c, _) = coordinator().await;
    let started = Instant::now();
    let first = rebalance(&c, "g", vec![join_params("g", ""); 3]).await;
    // The initial delay (3s) ran once and was extended as members kept arriving.
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert!(first.iter().all(|r| r.generation_id == 1));
    assert!(first
        .iter()
        .all(|r| r.protocol_name.as_deref() == Some("range")));
    let leader = &first[0].leader;
    let leaders: Vec<_> = first.iter().filter(|r| &r.member_id == leader).collect();
    assert_eq!(leaders.len(), 1);
    assert_eq!(leaders[0].members.len(), 3);
    assert!(first
        .iter()
        .filter(|r| &r.member_id != leader)
        .all(|r| r.members.is_empty()));
    assert_eq!(state_of(&c, "g"), "Stable");

    // A follower leaves: the others hear about it through their heartbeats.
    let leaving = first.iter().find(|r| &r.member_id != leader).unwrap();
    let left = c.leave_group(
        "g",
        &[LeavingMember {
            member_id: leaving.member_id.clone(),
            group_instance_id: None,
        }],
    );
    assert_eq!(left, Ok(vec![Ok(())]));
    assert_eq!(state_of(&c, "g"), "PreparingRebalance");
    let staying: Vec<&JoinResult> = first
        .iter()
        .filter(|r| r.member_id != leaving.member_id)
        .collect();
    for r in &staying {
        assert_eq!(
            c.heartbeat("g", 1, &r.member_id, None),
            Err(GroupError::RebalanceInProgress)
        );
    }
    let second = rebalance(
        &c,
        "g",
        staying
            .iter()
            .map(|r| join_params("g", &r.member_id))
            .collect(),
    )
    .await;
    assert!(second.iter().all(|r| r.generation_id == 2));
    assert_eq!(second.iter().map(|r| r.members.len()).sum::<usize>(), 2);
    assert_eq!(c.heartbeat("g", 2, &second[0].member_id, None), Ok(()));

    // The member comes back as a new member; the others rejoin after the heartbeat says so.
    let returning = spawn_join(&c, join_params("g", ""));
    tokio::task::yield_now().await;
    assert_eq!(
        c.heartbeat("g", 2, &second[0].member_id, None),
        Err(GroupError::RebalanceInProgress)
    );
    let others: Vec<_> = second
        .iter()
        .map(|r| spawn_join(&c, join_params("g", &r.member_id)))
        .collect();
    let mut third = vec![returning.await.unwrap().unwrap()];
    for other in others {
        third.push(other.await.unwrap().unwrap());
    }
    assert!(third.iter().all(|r| r.generation_id == 3));
    assert_eq!(third.iter().map(|r| r.members.len()).sum::<usize>(), 3);
}

#[tokio::test(start_paused = true)]
async fn new_member_must_rejoin_with_the_member_id_it_was_given() {
    let (c, _) = coordinator().await;
    let mut params = join_params("g", "");
    params.require_known_member_id = true;
    let Err(GroupError::MemberIdRequired(member_id)) = c.join_group(params.clone()).await else {
        panic!("expected MEMBER_ID_REQUIRED");
    };
    assert!(member_id.starts_with("client-"), "{member_id}");
    params.member_id = member_id.clone();
    let joined = c.join_group(params).await.unwrap();
    assert_eq!(joined.member_id, member_id);
    assert_eq!(joined.leader, member_id);
    assert_eq!(joined.generation_id, 1);
}

#[tokio::test(start_paused = true)]
async fn pending_member_id_expires_with_the_session() {
    let (c, _) = coordinator().await;
    let mut params = join_params("g", "");
    params.require_known_member_id = true;
    let Err(GroupError::MemberIdRequired(member_id)) = c.join_group(params.clone()).await else {
        panic!("expected MEMBER_ID_REQUIRED");
    };
    tokio::time::sleep(Duration::from_millis(SESSION_MS as u64 + 1)).await;
    params.member_id = member_id;
    assert_eq!(c.join_group(params).await, Err(GroupError::UnknownMemberId));
}

#[tokio::test(start_paused = true)]
async fn expired_session_removes_the_member_and_rebalances() {
    let (c, store) = coordinator().await;
    let members = rebalance(&c, "g", vec![join_params("g", ""); 2]).await;
    let (alive, silent) = (&members[0], &members[1]);
    // Only one member heartbeats, every 3s, past the 10s session timeout.
    let mut seen_rebalance = false;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_secs(3)).await;
        match c.heartbeat("g", 1, &alive.member_id, None) {
            Ok(()) => {}
            Err(GroupError::RebalanceInProgress) => seen_rebalance = true,
            other => panic!("unexpected heartbeat answer {other:?}"),
        }
    }
    assert!(seen_rebalance);
    assert_eq!(
        c.heartbeat("g", 1, &silent.member_id, None),
        Err(GroupError::UnknownMemberId)
    );
    let rejoined = c
        .join_group(join_params("g", &alive.member_id))
        .await
        .unwrap();
    assert_eq!(rejoined.generation_id, 2);
    assert_eq!(rejoined.members.len(), 1);
    assert!(!store.records(c_partition(&c, "g")).is_empty());
}

fn c_partition(c: &GroupCoordinator, group: &str) -> i32 {
    records::partition_for(group, c.config().offsets_topic_num_partitions)
}

#[tokio::test(start_paused = true)]
async fn members_that_do_not_rejoin_within_the_rebalance_timeout_are_removed() {
    let (c, _) = coordinator().await;
    let members = rebalance(&c, "g", vec![join_params("g", ""); 2]).await;
    let leader = members.iter().find(|r| r.member_id == r.leader).unwrap();
    let follower = members.iter().find(|r| r.member_id != r.leader).unwrap();
    // The leader rejoining starts a rebalance; the follower keeps heartbeating but
    // never rejoins.
    let started = Instant::now();
    let join = spawn_join(&c, join_params("g", &leader.member_id));
    while !join.is_finished() {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let _ = c.heartbeat("g", 1, &follower.member_id, None);
    }
    let result = join.await.unwrap().unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(REBALANCE_MS as u64),
        "{waited:?}"
    );
    assert!(
        waited < Duration::from_millis(REBALANCE_MS as u64 + 3_001),
        "{waited:?}"
    );
    assert_eq!(result.generation_id, 2);
    assert_eq!(result.members.len(), 1);
    assert_eq!(
        c.heartbeat("g", 2, &follower.member_id, None),
        Err(GroupError::UnknownMemberId)
    );
}

#[tokio::test(start_paused = true)]
async fn followers_wait_for_the_leaders_assignment() {
    let (c, _) = coordinator().await;
    let joins: Vec<_> = (0..2)
        .map(|_| spawn_join(&c, join_params("g", "")))
        .collect();
    let mut results = Vec::new();
    for join in joins {
        results.push(join.await.unwrap().unwrap());
    }
    let follower = results.iter().find(|r| r.member_id != r.leader).unwrap();
    let leader = results.iter().find(|r| r.member_id == r.leader).unwrap();
    let waiting = spawn_sync(&c, sync_params("g", 1, &follower.member_id));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiting.is_finished());
    assert_eq!(state_of(&c, "g"), "CompletingRebalance");
    let mut params = sync_params("g", 1, &leader.member_id);
    params.assignments = vec![(
        follower.member_id.clone(),
        Bytes::from_static(b"follower's"),
    )];
    let leader_sync = c.sync_group(params).await.unwrap();
    assert_eq!(
        leader_sync.assignment,
        Bytes::new(),
        "left out of the assignment"
    );
    let follower_sync = waiting.await.unwrap().unwrap();
    assert_eq!(follower_sync.assignment, Bytes::from_static(b"follower's"));
    assert_eq!(follower_sync.protocol_name.as_deref(), Some("range"));
    assert_eq!(state_of(&c, "g"), "Stable");
}

#[tokio::test(start_paused = true)]
async fn member_that_never_syncs_is_removed_after_the_rebalance_timeout() {
    let (c, _) = coordinator().await;
    let joins: Vec<_> = (0..2)
        .map(|_| spawn_join(&c, join_params("g", "")))
        .collect();
    let mut results = Vec::new();
    for join in joins {
        results.push(join.await.unwrap().unwrap());
    }
    let leader = results.iter().find(|r| r.member_id == r.leader).unwrap();
    let follower = results.iter().find(|r| r.member_id != r.leader).unwrap();
    let mut params = sync_params("g", 1, &leader.member_id);
    params.assignments = vec![(leader.member_id.clone(), Bytes::from_static(b"a"))];
    c.sync_group(params).await.unwrap();
    for _ in 0..11 {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let _ = c.heartbeat("g", 1, &leader.member_id, None);
        let _ = c.heartbeat("g", 1, &follower.member_id, None);
    }
    assert_eq!(
        c.heartbeat("g", 1, &follower.member_id, None),
        Err(GroupError::UnknownMemberId)
    );
    assert_eq!(
        c.heartbeat("g", 1, &leader.member_id, None),
        Err(GroupError::RebalanceInProgress)
    );
}

#[tokio::test(start_paused = true)]
async fn cooperative_rejoin_after_revoking_starts_another_generation() {
    let (c, _) = coordinator().await;
    let first = rebalance(&c, "g", vec![join_params("g", "")]).await;
    let member = &first[0].member_id;
    // Cooperative-sticky: a new member triggers a rebalance; the old member rejoins,
    // syncs, revokes, and rejoins at once for a second rebalance.
    let newcomer = spawn_join(&c, join_params("g", ""));
    tokio::task::yield_now().await;
    let second = rebalance(&c, "g", vec![join_params("g", member)]).await;
    let newcomer = newcomer.await.unwrap().unwrap();
    assert_eq!(second[0].generation_id, 2);
    assert_eq!(newcomer.generation_id, 2);
    let synced = c
        .sync_group(sync_params("g", 2, &newcomer.member_id))
        .await
        .unwrap();
    assert_eq!(synced.assignment, Bytes::from(newcomer.member_id.clone()));
    let third = spawn_join(&c, join_params("g", member));
    tokio::task::yield_now().await;
    assert_eq!(
        c.heartbeat("g", 2, &newcomer.member_id, None),
        Err(GroupError::RebalanceInProgress)
    );
    let newcomer_again = c
        .join_group(join_params("g", &newcomer.member_id))
        .await
        .unwrap();
    let third = third.await.unwrap().unwrap();
    assert_eq!((third.generation_id, newcomer_again.generation_id), (3, 3));
}

#[tokio::test(start_paused = true)]
async fn protocol_is_chosen_by_votes_among_the_common_ones() {
    let (c, _) = coordinator().await;
    let mut a = join_params("g", "");
    a.protocols.reverse(); // prefers roundrobin
    let mut b = join_params("g", "");
    b.protocols.reverse();
    let c_params = join_params("g", ""); // prefers range
    let results = rebalance(&c, "g", vec![a, b, c_params]).await;
    assert!(results
        .iter()
        .all(|r| r.protocol_name.as_deref() == Some("roundrobin")));

    let mut only_sticky = join_params("g", "");
    only_sticky.protocols = vec![Protocol {
        name: "sticky".into(),
        metadata: Bytes::new(),
    }];
    assert_eq!(
        c.join_group(only_sticky).await,
        Err(GroupError::InconsistentGroupProtocol)
    );
}

#[tokio::test(start_paused = true)]
async fn last_member_leaving_empties_the_group_and_persists_it() {
    let (c, store) = coordinator().await;
    let members = rebalance(&c, "g", vec![join_params("g", "")]).await;
    let left = c.leave_group(
        "g",
        &[LeavingMember {
            member_id: members[0].member_id.clone(),
            group_instance_id: None,
        }],
    );
    assert_eq!(left, Ok(vec![Ok(())]));
    assert_eq!(state_of(&c, "g"), "Empty");
    let (key, value) = store.records(c_partition(&c, "g")).pop().unwrap();
    assert_eq!(
        records::RecordKey::decode(&key).unwrap(),
        records::RecordKey::GroupMetadata { group: "g".into() }
    );
    let value = records::GroupMetadataValue::decode(&value.unwrap()).unwrap();
    assert_eq!(value.generation, 2);
    assert!(value.members.is_empty());
    assert_eq!(value.protocol, None);
}

#[tokio::test(start_paused = true)]
async fn initial_delay_is_extended_while_members_keep_arriving() {
    let (c, _) = coordinator().await;
    let started = Instant::now();
    let first = spawn_join(&c, join_params("g", ""));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let second = spawn_join(&c, join_params("g", ""));
    let first = first.await.unwrap().unwrap();
    // 3s initial delay, then one more 3s because a member arrived meanwhile.
    assert_eq!(started.elapsed(), Duration::from_secs(6));
    assert_eq!(
        second.await.unwrap().unwrap().generation_id,
        first.generation_id
    );

    let (alone, _) = coordinator().await;
    let started = Instant::now();
    alone.join_group(join_params("h", "")).await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn lost_join_response_is_answered_again_without_a_rebalance() {
    let (c, _) = coordinator().await;
    let joins: Vec<_> = (0..2)
        .map(|_| spawn_join(&c, join_params("g", "")))
        .collect();
    let mut results = Vec::new();
    for join in joins {
        results.push(join.await.unwrap().unwrap());
    }
    let follower = results.iter().find(|r| r.member_id != r.leader).unwrap();
    // Between JoinGroup and SyncGroup, heartbeats are fine and a repeated JoinGroup
    // with the same metadata gets the same generation back.
    assert_eq!(c.heartbeat("g", 1, &follower.member_id, None), Ok(()));
    let again = c
        .join_group(join_params("g", &follower.member_id))
        .await
        .unwrap();
    assert_eq!(&again, follower);
    assert_eq!(state_of(&c, "g"), "CompletingRebalance");
}

#[tokio::test(start_paused = true)]
async fn pending_member_may_leave_before_joining() {
    let (c, _) = coordinator().await;
    let mut params = join_params("g", "");
    params.require_known_member_id = true;
    let Err(GroupError::MemberIdRequired(member_id)) = c.join_group(params).await else {
        panic!("expected MEMBER_ID_REQUIRED");
    };
    let left = c.leave_group(
        "g",
        &[LeavingMember {
            member_id: member_id.clone(),
            group_instance_id: None,
        }],
    );
    assert_eq!(left, Ok(vec![Ok(())]));
    assert_eq!(
        c.join_group(join_params("g", &member_id)).await,
        Err(GroupError::UnknownMemberId)
    );
}

#[tokio::test(start_paused = true)]
async fn new_member_stuck_in_join_is_dropped_after_five_minutes() {
    let (c, _) = coordinator().await;
    let members = rebalance(&c, "g", vec![join_params("g", "")]).await;
    let old = &members[0].member_id;
    let mut slow = join_params("g", "");
    slow.rebalance_timeout_ms = 600_000;
    let newcomer = spawn_join(&c, slow);
    tokio::task::yield_now().await;
    // The old member heartbeats (told to rejoin) but never does; the newcomer's
    // JoinGroup waits for it until the new-member timeout drops the newcomer.
    let started = Instant::now();
    while !newcomer.is_finished() {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let _ = c.heartbeat("g", 1, old, None);
    }
    assert_eq!(newcomer.await.unwrap(), Err(GroupError::UnknownMemberId));
    let waited = started.elapsed();
    assert!((300..=303).contains(&waited.as_secs()), "{waited:?}");
}
