use super::*;

fn member_commit(group: &str, generation: i32, member: &str, topic: &str) -> OffsetCommitParams {
    OffsetCommitParams {
        generation_id: generation,
        member_id: member.to_string(),
        ..standalone_commit(group, &[(topic, 0, 42)])
    }
}

fn errors(results: &[PartitionResult]) -> Vec<Option<GroupError>> {
    results.iter().map(|r| r.error.clone()).collect()
}

#[tokio::test(start_paused = true)]
async fn standalone_commit_and_fetch() {
    let (c, _) = coordinator().await;
    let results = c
        .commit_offsets(standalone_commit("s", &[("t", 0, 10), ("t", 1, 11)]))
        .unwrap();
    assert_eq!(errors(&results), vec![None, None]);
    let all = c.fetch_offsets("s", None, false).unwrap();
    assert_eq!(
        all.iter()
            .map(|o| (o.partition, o.offset))
            .collect::<Vec<_>>(),
        vec![(0, 10), (1, 11)]
    );
    assert_eq!(all[0].metadata, "meta");
    let some = c
        .fetch_offsets("s", Some(vec![("t".into(), vec![1, 2])]), true)
        .unwrap();
    assert_eq!(
        some.iter()
            .map(|o| (o.partition, o.offset))
            .collect::<Vec<_>>(),
        vec![(1, 11), (2, -1)]
    );
    let unknown = c
        .fetch_offsets("nobody", Some(vec![("t".into(), vec![0])]), false)
        .unwrap();
    assert_eq!(
        (
            unknown[0].offset,
            unknown[0].leader_epoch,
            unknown[0].metadata.as_str()
        ),
        (-1, -1, "")
    );
    assert!(c.fetch_offsets("nobody", None, false).unwrap().is_empty());
    assert_eq!(state_of(&c, "s"), "Empty");
}

#[tokio::test(start_paused = true)]
async fn member_commits_are_checked_against_the_generation() {
    let (c, _) = coordinator().await;
    assert_eq!(
        c.commit_offsets(member_commit("g", 3, "m", "t")),
        Err(GroupError::IllegalGeneration)
    );
    let members = rebalance(&c, "g", vec![join_params("g", "")]).await;
    let id = &members[0].member_id;
    assert_eq!(
        errors(&c.commit_offsets(member_commit("g", 1, id, "t")).unwrap()),
        vec![None]
    );
    assert_eq!(
        c.commit_offsets(member_commit("g", 2, id, "t")),
        Err(GroupError::IllegalGeneration)
    );
    assert_eq!(
        c.commit_offsets(member_commit("g", 1, "ghost", "t")),
        Err(GroupError::UnknownMemberId)
    );
    assert_eq!(
        c.commit_offsets(standalone_commit("g", &[("t", 0, 1)])),
        Err(GroupError::UnknownMemberId),
        "only members commit for a group with members"
    );
    assert_eq!(c.fetch_offsets("g", None, false).unwrap()[0].offset, 42);

    // Between JoinGroup and SyncGroup the member must finish the rebalance first.
    let rejoin = c.join_group(join_params("g", id));
    let second = rejoin.await.unwrap();
    assert_eq!(
        c.commit_offsets(member_commit("g", 2, id, "t")),
        Err(GroupError::RebalanceInProgress)
    );
    // A commit still carrying the previous generation (sent while the JoinGroup was
    // parked, answered after it) is stale: Kafka checks the generation before the state.
    assert_eq!(
        c.commit_offsets(member_commit("g", 1, id, "t")),
        Err(GroupError::IllegalGeneration)
    );
    assert_eq!(second.generation_id, 2);
}

#[tokio::test(start_paused = true)]
async fn oversized_metadata_is_rejected_per_partition() {
    let (c, _) = coordinator().await;
    let mut params = standalone_commit("s", &[("t", 0, 1), ("t", 1, 2)]);
    params.offsets[1].metadata = Some("x".repeat(4097));
    let results = c.commit_offsets(params).unwrap();
    assert_eq!(
        errors(&results),
        vec![None, Some(GroupError::OffsetMetadataTooLarge)]
    );
    assert_eq!(c.fetch_offsets("s", None, false).unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn delete_groups_only_empty_ones_and_writes_tombstones() {
    let (c, store) = coordinator().await;
    c.commit_offsets(standalone_commit("s", &[("t", 0, 1), ("u", 0, 2)]))
        .unwrap();
    rebalance(&c, "busy", vec![join_params("busy", "")]).await;
    let results = c.delete_groups(&["s".into(), "busy".into(), "none".into()]);
    assert_eq!(
        results,
        vec![
            Ok(()),
            Err(GroupError::NonEmptyGroup),
            Err(GroupError::GroupIdNotFound)
        ]
    );
    assert!(!exists(&c, "s"));
    assert!(c.fetch_offsets("s", None, false).unwrap().is_empty());
    let partition = records::partition_for("s", config().offsets_topic_num_partitions);
    let tombstones: Vec<records::RecordKey> = store
        .records(partition)
        .into_iter()
        .filter(|(_, value)| value.is_none())
        .map(|(key, _)| records::RecordKey::decode(&key).unwrap())
        .collect();
    assert_eq!(tombstones.len(), 3);
    assert!(tombstones.contains(&records::RecordKey::GroupMetadata { group: "s".into() }));
    assert!(tombstones.contains(&records::RecordKey::OffsetCommit {
        group: "s".into(),
        topic: "u".into(),
        partition: 0
    }));
}

#[tokio::test(start_paused = true)]
async fn offset_delete_respects_subscriptions() {
    let (c, _) = coordinator().await;
    let members = rebalance(&c, "g", vec![join_params("g", "")]).await;
    let id = &members[0].member_id;
    c.commit_offsets(member_commit("g", 1, id, "t")).unwrap();
    c.commit_offsets(member_commit("g", 1, id, "old")).unwrap();
    let results = c
        .delete_offsets("g", vec![("t".into(), 0), ("old".into(), 0)])
        .unwrap();
    let by_topic: Vec<(String, Option<GroupError>)> =
        results.into_iter().map(|r| (r.topic, r.error)).collect();
    assert!(by_topic.contains(&("t".into(), Some(GroupError::GroupSubscribedToTopic))));
    assert!(by_topic.contains(&("old".into(), None)));
    let left: Vec<String> = c
        .fetch_offsets("g", None, false)
        .unwrap()
        .into_iter()
        .map(|o| o.topic)
        .collect();
    assert_eq!(left, vec!["t".to_string()]);
    assert_eq!(
        c.delete_offsets("none", vec![]),
        Err(GroupError::GroupIdNotFound)
    );

    let mut other = join_params("conn", "");
    other.protocol_type = "connect".into();
    rebalance(&c, "conn", vec![other]).await;
    assert_eq!(
        c.delete_offsets("conn", vec![("t".into(), 0)]),
        Err(GroupError::NonEmptyGroup)
    );
}

#[tokio::test(start_paused = true)]
async fn deleting_the_last_offsets_of_an_empty_group_deletes_it() {
    let (c, _) = coordinator().await;
    c.commit_offsets(standalone_commit("s", &[("t", 0, 1)]))
        .unwrap();
    let results = c.delete_offsets("s", vec![("t".into(), 0)]).unwrap();
    assert_eq!(errors(&results), vec![None]);
    assert!(!exists(&c, "s"));
}

#[tokio::test(start_paused = true)]
async fn list_groups_filters_by_state_and_type() {
    let (c, _) = coordinator().await;
    c.commit_offsets(standalone_commit("s", &[("t", 0, 1)]))
        .unwrap();
    rebalance(&c, "g", vec![join_params("g", "")]).await;
    let names =
        |groups: Vec<GroupListing>| groups.into_iter().map(|g| g.group_id).collect::<Vec<_>>();
    assert_eq!(names(c.list_groups(&[], &[]).unwrap()), vec!["g", "s"]);
    assert_eq!(
        names(c.list_groups(&["stable".into()], &[]).unwrap()),
        vec!["g"]
    );
    assert_eq!(
        names(c.list_groups(&[], &["consumer".into()]).unwrap()),
        Vec::<String>::new()
    );
    assert_eq!(
        names(
            c.list_groups(&["Empty".into()], &["Classic".into()])
                .unwrap()
        ),
        vec!["s"]
    );
    let listed = c.list_groups(&["Stable".into()], &[]).unwrap();
    assert_eq!(listed[0].protocol_type, "consumer");
}

#[tokio::test(start_paused = true)]
async fn describe_shows_members_with_their_assignment_when_stable() {
    let (c, _) = coordinator().await;
    let members = rebalance(&c, "g", vec![join_params("g", "")]).await;
    let described = c.describe_groups(&["g".into()]).remove(0).unwrap();
    assert_eq!(
        (described.state, described.protocol.as_str()),
        ("Stable", "range")
    );
    let member = &described.members[0];
    assert_eq!(member.member_id, members[0].member_id);
    assert_eq!(member.client_host, "/127.0.0.1");
    assert_eq!(member.metadata, subscription(&["t"]));
    assert_eq!(member.assignment, Bytes::from(members[0].member_id.clone()));
}
