use std::time::Duration;

use super::*;

fn partition(group: &str) -> i32 {
    records::partition_for(group, config().offsets_topic_num_partitions)
}

fn tombstones(store: &MemoryOffsetsStore, group: &str) -> Vec<records::RecordKey> {
    store
        .records(partition(group))
        .into_iter()
        .filter(|(_, value)| value.is_none())
        .map(|(key, _)| records::RecordKey::decode(&key).unwrap())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn completed_rebalance_is_written_in_kafkas_format() {
    let (c, store) = coordinator().await;
    let mut params = join_params("g", "");
    params.group_instance_id = Some("i1".into());
    let members = rebalance(&c, "g", vec![params]).await;
    let (key, value) = store.records(partition("g")).pop().unwrap();
    assert_eq!(
        records::RecordKey::decode(&key).unwrap(),
        records::RecordKey::GroupMetadata { group: "g".into() }
    );
    let value = records::GroupMetadataValue::decode(&value.unwrap()).unwrap();
    assert_eq!(value.protocol_type, "consumer");
    assert_eq!(value.generation, 1);
    assert_eq!(value.protocol.as_deref(), Some("range"));
    assert_eq!(value.leader.as_deref(), Some(members[0].member_id.as_str()));
    let member = &value.members[0];
    assert_eq!(member.group_instance_id.as_deref(), Some("i1"));
    assert_eq!(
        (member.client_id.as_str(), member.client_host.as_str()),
        ("client", "/127.0.0.1")
    );
    assert_eq!(
        (member.session_timeout_ms, member.rebalance_timeout_ms),
        (SESSION_MS, REBALANCE_MS)
    );
    assert_eq!(member.subscription, subscription(&["t"]));
    assert_eq!(member.assignment, Bytes::from(members[0].member_id.clone()));
}

#[tokio::test(start_paused = true)]
async fn restart_restores_groups_and_offsets() {
    let (c, store) = coordinator().await;
    c.commit_offsets(standalone_commit("s", &[("t", 0, 10), ("t", 1, 11)]))
        .unwrap();
    c.commit_offsets(standalone_commit("s", &[("t", 0, 20)]))
        .unwrap();
    let members = rebalance(&c, "g", vec![join_params("g", "")]).await;
    let commit = OffsetCommitParams {
        generation_id: 1,
        member_id: members[0].member_id.clone(),
        ..standalone_commit("g", &[("t", 3, 33)])
    };
    c.commit_offsets(commit).unwrap();
    c.commit_offsets(standalone_commit("gone", &[("t", 0, 1)]))
        .unwrap();
    assert_eq!(c.delete_groups(&["gone".into()]), vec![Ok(())]);
    c.shutdown();

    let restarted = start(store, config()).await;
    let s = restarted.fetch_offsets("s", None, false).unwrap();
    assert_eq!(
        s.iter()
            .map(|o| (o.partition, o.offset))
            .collect::<Vec<_>>(),
        vec![(0, 20), (1, 11)]
    );
    assert_eq!(
        restarted.fetch_offsets("g", None, false).unwrap()[0].offset,
        33
    );
    assert!(restarted
        .fetch_offsets("gone", None, false)
        .unwrap()
        .is_empty());
    let listed: Vec<String> = restarted
        .list_groups(&[], &[])
        .unwrap()
        .into_iter()
        .map(|g| g.group_id)
        .collect();
    assert_eq!(listed, vec!["g", "s"]);
    assert_eq!(state_of(&restarted, "g"), "Empty");
    // The generation carries on from where it was.
    let rejoined = restarted.join_group(join_params("g", "")).await.unwrap();
    assert_eq!(rejoined.generation_id, 2);
}

#[tokio::test(start_paused = true)]
async fn standalone_offsets_expire_after_retention_with_tombstones() {
    let (c, store) = coordinator().await;
    c.commit_offsets(standalone_commit("s", &[("t", 0, 10)]))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(59_000)).await;
    assert_eq!(c.fetch_offsets("s", None, false).unwrap().len(), 1);
    assert!(tombstones(&store, "s").is_empty());
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert!(c.fetch_offsets("s", None, false).unwrap().is_empty());
    assert!(!exists(&c, "s"));
    assert_eq!(
        tombstones(&store, "s"),
        vec![
            records::RecordKey::OffsetCommit {
                group: "s".into(),
                topic: "t".into(),
                partition: 0
            },
            records::RecordKey::GroupMetadata { group: "s".into() },
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn stable_consumer_group_keeps_offsets_of_subscribed_topics() {
    let (c, store) = coordinator().await;
    let members = rebalance(&c, "g", vec![join_params("g", "")]).await;
    let id = members[0].member_id.clone();
    for topic in ["t", "old"] {
        let commit = OffsetCommitParams {
            generation_id: 1,
            member_id: id.clone(),
            ..standalone_commit("g", &[(topic, 0, 5)])
        };
        c.commit_offsets(commit).unwrap();
    }
    for _ in 0..21 {
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(c.heartbeat("g", 1, &id, None), Ok(()));
    }
    let left: Vec<String> = c
        .fetch_offsets("g", None, false)
        .unwrap()
        .into_iter()
        .map(|o| o.topic)
        .collect();
    assert_eq!(left, vec!["t".to_string()]);
    assert_eq!(tombstones(&store, "g").len(), 1);

    // Once empty, retention counts from the moment the group became empty.
    c.leave_group(
        "g",
        &[LeavingMember {
            member_id: id,
            group_instance_id: None,
        }],
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(59_000)).await;
    assert_eq!(c.fetch_offsets("g", None, false).unwrap().len(), 1);
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert!(c.fetch_offsets("g", None, false).unwrap().is_empty());
    assert!(!exists(&c, "g"));
}

#[tokio::test(start_paused = true)]
async fn explicit_retention_time_of_old_commits_wins() {
    let (c, store) = coordinator().await;
    let mut params = standalone_commit("s", &[("t", 0, 10)]);
    params.retention_time_ms = 5_000;
    c.commit_offsets(params).unwrap();
    let (_, value) = store.records(partition("s")).pop().unwrap();
    let value = records::OffsetCommitValue::decode(&value.unwrap()).unwrap();
    assert!(
        value.expire_timestamp.is_some(),
        "written as value version 1"
    );
    tokio::time::sleep(Duration::from_millis(6_500)).await;
    assert!(c.fetch_offsets("s", None, false).unwrap().is_empty());
}

#[tokio::test]
async fn unreadable_records_are_skipped_on_load() {
    let store = Arc::new(MemoryOffsetsStore::new());
    let key = records::RecordKey::OffsetCommit {
        group: "s".into(),
        topic: "t".into(),
        partition: 0,
    };
    store
        .append(
            partition("s"),
            vec![
                (
                    Bytes::from_static(&[0, 9, 1]),
                    Some(Bytes::from_static(b"future")),
                ),
                (key.encode(), Some(Bytes::from_static(&[0, 3, 0]))),
                (Bytes::from_static(&[0]), None),
            ],
        )
        .unwrap();
    let c = start(store, config()).await;
    assert!(c.fetch_offsets("s", None, false).unwrap().is_empty());
}

/// Fails every append once `broken` is set.
#[derive(Default)]
struct FlakyStore {
    inner: MemoryOffsetsStore,
    broken: std::sync::atomic::AtomicBool,
}

impl OffsetsStore for FlakyStore {
    fn append(&self, partition: i32, records: Vec<OffsetsRecord>) -> Result<(), OffsetsStoreError> {
        if self.broken.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(OffsetsStoreError::Unavailable(partition));
        }
        self.inner.append(partition, records)
    }

    fn load(&self, partition: i32) -> Result<Vec<OffsetsRecord>, OffsetsStoreError> {
        self.inner.load(partition)
    }
}

#[tokio::test(start_paused = true)]
async fn failed_writes_leave_state_unchanged_and_ask_clients_to_retry() {
    let store = Arc::new(FlakyStore::default());
    let c = GroupCoordinator::new(config(), store.clone());
    c.load().await.unwrap();
    c.commit_offsets(standalone_commit("s", &[("t", 0, 1)]))
        .unwrap();
    store
        .broken
        .store(true, std::sync::atomic::Ordering::SeqCst);

    let results = c
        .commit_offsets(standalone_commit("s", &[("t", 0, 2)]))
        .unwrap();
    let error = results[0].error.clone().unwrap();
    assert_eq!(error.code(), 15, "COORDINATOR_NOT_AVAILABLE");
    assert_eq!(c.fetch_offsets("s", None, false).unwrap()[0].offset, 1);
    assert_eq!(
        c.delete_groups(&["s".into()])[0]
            .as_ref()
            .unwrap_err()
            .code(),
        15
    );
    assert_eq!(state_of(&c, "s"), "Empty");

    // The leader's assignment cannot be persisted: nobody gets it and the group
    // rebalances.
    let joined = c.join_group(join_params("g", "")).await.unwrap();
    let mut sync = sync_params("g", 1, &joined.member_id);
    sync.assignments = vec![(joined.member_id.clone(), Bytes::from_static(b"a"))];
    assert_eq!(c.sync_group(sync).await.unwrap_err().code(), 15);
    assert_eq!(state_of(&c, "g"), "PreparingRebalance");
}

#[tokio::test]
async fn load_fails_when_the_store_does_and_is_idempotent() {
    struct Unreadable;
    impl OffsetsStore for Unreadable {
        fn append(&self, _: i32, _: Vec<OffsetsRecord>) -> Result<(), OffsetsStoreError> {
            Ok(())
        }
        fn load(&self, _: i32) -> Result<Vec<OffsetsRecord>, OffsetsStoreError> {
            Err(OffsetsStoreError::Storage("disk gone".into()))
        }
    }
    let c = GroupCoordinator::new(config(), Arc::new(Unreadable));
    assert_eq!(c.load().await.unwrap_err().code(), 15);
    assert_eq!(
        c.list_groups(&[], &[]),
        Err(GroupError::CoordinatorLoadInProgress)
    );

    let (c, _) = coordinator().await;
    c.commit_offsets(standalone_commit("s", &[("t", 0, 1)]))
        .unwrap();
    c.load().await.unwrap();
    assert_eq!(
        c.fetch_offsets("s", None, false).unwrap().len(),
        1,
        "a second load changes nothing"
    );
}

#[tokio::test(start_paused = true)]
async fn only_the_partitions_led_here_are_served_and_a_gained_one_is_replayed() {
    // Another node coordinated `g` before: its commit is in the partition's log.
    let store = Arc::new(MemoryOffsetsStore::new());
    let before = start(store.clone(), config()).await;
    before
        .commit_offsets(standalone_commit("g", &[("t", 0, 42)]))
        .unwrap();
    before.shutdown();

    let c = GroupCoordinator::new(config(), store.clone());
    c.serve_led_partitions_only().unwrap();
    let fetch =
        |c: &GroupCoordinator| c.fetch_offsets("g", Some(vec![("t".into(), vec![0])]), false);
    assert_eq!(fetch(&c).unwrap_err(), GroupError::NotCoordinator);
    assert_eq!(
        c.commit_offsets(standalone_commit("g", &[("t", 0, 7)]))
            .unwrap_err(),
        GroupError::NotCoordinator
    );
    assert!(c.list_groups(&[], &[]).unwrap().is_empty());

    // Leadership arrives: the group comes back from the log.
    c.serve_partitions(&[partition("g")]).unwrap();
    assert_eq!(fetch(&c).unwrap()[0].offset, 42);
    assert_eq!(c.list_groups(&[], &[]).unwrap().len(), 1);

    // And leaves again: a member waiting to join hears NOT_COORDINATOR.
    let waiting = spawn_join(&c, join_params("g", ""));
    tokio::task::yield_now().await;
    c.release_partitions(&[partition("g")]);
    assert_eq!(
        waiting.await.unwrap().unwrap_err(),
        GroupError::NotCoordinator
    );
    assert_eq!(fetch(&c).unwrap_err(), GroupError::NotCoordinator);
}
