use std::time::Duration;

use super::*;

fn static_params(group: &str, member_id: &str, instance: &str) -> JoinGroupParams {
    let mut params = join_params(group, member_id);
    params.group_instance_id = Some(instance.to_string());
    params.require_known_member_id = true;
    params
}

#[tokio::test(start_paused = true)]
async fn static_member_restart_takes_over_without_a_rebalance() {
    let (c, _) = coordinator().await;
    let first = rebalance(
        &c,
        "g",
        vec![static_params("g", "", "i1"), static_params("g", "", "i2")],
    )
    .await;
    let follower = first.iter().find(|r| r.member_id != r.leader).unwrap();
    let instance = if first[0].member_id == follower.member_id {
        "i1"
    } else {
        "i2"
    };

    // The follower restarts: same instance id, no member id, same subscription.
    let rejoined = c
        .join_group(static_params("g", "", instance))
        .await
        .unwrap();
    assert_ne!(rejoined.member_id, follower.member_id);
    assert_eq!(rejoined.generation_id, 1);
    assert!(!rejoined.skip_assignment);
    assert_eq!(state_of(&c, "g"), "Stable");

    // The old incarnation is fenced; the new one keeps the assignment.
    assert_eq!(
        c.heartbeat("g", 1, &follower.member_id, Some(instance)),
        Err(GroupError::FencedInstanceId)
    );
    assert_eq!(
        c.heartbeat("g", 1, &rejoined.member_id, Some(instance)),
        Ok(())
    );
    let mut sync = sync_params("g", 1, &rejoined.member_id);
    sync.group_instance_id = Some(instance.to_string());
    let assignment = c.sync_group(sync).await.unwrap().assignment;
    assert_eq!(assignment, Bytes::from(follower.member_id.clone()));
}

#[tokio::test(start_paused = true)]
async fn static_leader_restart_is_told_to_skip_the_assignment() {
    let (c, _) = coordinator().await;
    let first = rebalance(&c, "g", vec![static_params("g", "", "i1")]).await;
    let mut params = static_params("g", "", "i1");
    params.supports_skip_assignment = true;
    let rejoined = c.join_group(params).await.unwrap();
    assert_eq!(rejoined.leader, rejoined.member_id);
    assert!(rejoined.skip_assignment);
    assert_eq!(rejoined.members.len(), 1);
    assert_ne!(rejoined.member_id, first[0].member_id);

    // An older client is not made leader of a Stable group it cannot assign.
    let older = c.join_group(static_params("g", "", "i1")).await.unwrap();
    assert_eq!(older.leader, rejoined.member_id);
    assert!(!older.skip_assignment);
}

#[tokio::test(start_paused = true)]
async fn static_member_with_changed_protocols_triggers_a_rebalance() {
    let (c, _) = coordinator().await;
    rebalance(&c, "g", vec![static_params("g", "", "i1")]).await;
    let mut params = static_params("g", "", "i1");
    params.protocols.reverse();
    let rejoined = c.join_group(params).await.unwrap();
    assert_eq!(rejoined.generation_id, 2);
    assert_eq!(rejoined.protocol_name.as_deref(), Some("roundrobin"));
}

#[tokio::test(start_paused = true)]
async fn stale_static_member_id_is_fenced_on_join_and_leave() {
    let (c, _) = coordinator().await;
    let first = rebalance(&c, "g", vec![static_params("g", "", "i1")]).await;
    c.join_group(static_params("g", "", "i1")).await.unwrap();
    let stale = static_params("g", &first[0].member_id, "i1");
    assert_eq!(c.join_group(stale).await, Err(GroupError::FencedInstanceId));
    let leave = c.leave_group(
        "g",
        &[LeavingMember {
            member_id: first[0].member_id.clone(),
            group_instance_id: Some("i1".into()),
        }],
    );
    assert_eq!(leave, Ok(vec![Err(GroupError::FencedInstanceId)]));
    let by_instance = c.leave_group(
        "g",
        &[LeavingMember {
            member_id: String::new(),
            group_instance_id: Some("i1".into()),
        }],
    );
    assert_eq!(by_instance, Ok(vec![Ok(())]));
    assert_eq!(state_of(&c, "g"), "Empty");
}

#[tokio::test(start_paused = true)]
async fn static_member_that_does_not_rejoin_stays_in_the_next_generation() {
    let (c, _) = coordinator().await;
    let first = rebalance(
        &c,
        "g",
        vec![static_params("g", "", "i1"), static_params("g", "", "i2")],
    )
    .await;
    let leader_index = first.iter().position(|r| r.member_id == r.leader).unwrap();
    let other = &first[1 - leader_index];
    let leader_instance = format!("i{}", leader_index + 1);
    let other_instance = format!("i{}", 2 - leader_index);
    let join = spawn_join(
        &c,
        static_params("g", &first[leader_index].member_id, &leader_instance),
    );
    // The other static member keeps its session alive but does not rejoin: unlike a
    // dynamic member it is not dropped when the rebalance times out.
    while !join.is_finished() {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let _ = c.heartbeat("g", 1, &other.member_id, Some(&other_instance));
    }
    let result = join.await.unwrap().unwrap();
    assert_eq!(result.generation_id, 2);
    assert_eq!(result.members.len(), 2);
    assert_eq!(
        c.heartbeat("g", 2, &other.member_id, Some(&other_instance)),
        Ok(())
    );
}

/// A static member that stopped without LeaveGroup is gone once its session timeout has
/// passed, even if the timer that expires it has not fired yet: DeleteGroups then
/// succeeds (librdkafka's 0081 deletes such groups exactly one session timeout later).
#[tokio::test(start_paused = true)]
async fn overdue_static_member_is_expired_before_delete_groups() {
    let (c, _) = coordinator().await;
    rebalance(&c, "g", vec![static_params("g", "", "i1")]).await;
    assert_eq!(
        c.delete_groups(&["g".into()]),
        vec![Err(GroupError::NonEmptyGroup)]
    );
    // The deadline passes; its timer (due SESSION_MS from now) has not fired.
    for member in c
        .inner
        .lock()
        .groups
        .get_mut("g")
        .unwrap()
        .members
        .values_mut()
    {
        member.session_deadline = tokio::time::Instant::now() - Duration::from_millis(1);
    }
    assert_eq!(c.delete_groups(&["g".into()]), vec![Ok(())]);
    assert!(!exists(&c, "g"));
}
