//! Coordinator tests: whole rebalances driven through the public API, with tokio's
//! paused clock standing in for session, rebalance and retention timeouts.

mod errors;
mod handlers;
mod offsets;
mod persistence;
mod rebalance;
mod record_format;
mod static_members;

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::task::JoinHandle;

use super::*;

pub(super) const SESSION_MS: i32 = 10_000;
pub(super) const REBALANCE_MS: i32 = 30_000;

pub(super) fn config() -> GroupConfig {
    GroupConfig {
        offsets_topic_num_partitions: 4,
        offsets_retention_ms: 60_000,
        offsets_retention_check_interval_ms: 1_000,
        initial_rebalance_delay_ms: 3_000,
        min_session_timeout_ms: 6_000,
        max_session_timeout_ms: 300_000,
        max_size: 10,
        offset_metadata_max_bytes: 4096,
    }
}

pub(super) async fn start(
    store: Arc<MemoryOffsetsStore>,
    config: GroupConfig,
) -> Arc<GroupCoordinator> {
    let coordinator = GroupCoordinator::new(config, store);
    coordinator.load().await.expect("load");
    coordinator
}

pub(super) async fn coordinator() -> (Arc<GroupCoordinator>, Arc<MemoryOffsetsStore>) {
    let store = Arc::new(MemoryOffsetsStore::new());
    (start(store.clone(), config()).await, store)
}

/// ConsumerProtocolSubscription v0 for `topics`, no user data.
pub(super) fn subscription(topics: &[&str]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(0);
    out.put_i32(topics.len() as i32);
    for topic in topics {
        out.put_i16(topic.len() as i16);
        out.put_slice(topic.as_bytes());
    }
    out.put_i32(-1);
    out.freeze()
}

pub(super) fn join_params(group: &str, member_id: &str) -> JoinGroupParams {
    JoinGroupParams {
        group_id: group.to_string(),
        member_id: member_id.to_string(),
        group_instance_id: None,
        client: ClientInfo {
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
        },
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        protocol_type: "consumer".into(),
        protocols: vec![
            Protocol {
                name: "range".into(),
                metadata: subscription(&["t"]),
            },
            Protocol {
                name: "roundrobin".into(),
                metadata: subscription(&["t"]),
            },
        ],
        require_known_member_id: false,
        supports_skip_assignment: false,
    }
}

pub(super) fn spawn_join(
    coordinator: &Arc<GroupCoordinator>,
    params: JoinGroupParams,
) -> JoinHandle<Result<JoinResult, GroupError>> {
    let coordinator = coordinator.clone();
    tokio::spawn(async move { coordinator.join_group(params).await })
}

pub(super) fn sync_params(group: &str, generation: i32, member: &str) -> SyncGroupParams {
    SyncGroupParams {
        group_id: group.to_string(),
        generation_id: generation,
        member_id: member.to_string(),
        group_instance_id: None,
        protocol_type: None,
        protocol_name: None,
        assignments: Vec::new(),
    }
}

pub(super) fn spawn_sync(
    coordinator: &Arc<GroupCoordinator>,
    params: SyncGroupParams,
) -> JoinHandle<Result<SyncResult, GroupError>> {
    let coordinator = coordinator.clone();
    tokio::spawn(async move { coordinator.sync_group(params).await })
}

/// Joins `members` (new ones have an empty id) in one rebalance, then syncs with
/// the leader assigning `member-id` bytes to each; returns the join results.
pub(super) async fn rebalance(
    coordinator: &Arc<GroupCoordinator>,
    group: &str,
    members: Vec<JoinGroupParams>,
) -> Vec<JoinResult> {
    let joins: Vec<_> = members
        .into_iter()
        .map(|p| spawn_join(coordinator, p))
        .collect();
    let mut results = Vec::new();
    for join in joins {
        results.push(join.await.unwrap().expect("join"));
    }
    let generation = results[0].generation_id;
    let mut syncs = Vec::new();
    for result in &results {
        let mut params = sync_params(group, generation, &result.member_id);
        if result.member_id == result.leader {
            params.assignments = result
                .members
                .iter()
                .map(|m| (m.member_id.clone(), Bytes::from(m.member_id.clone())))
                .collect();
        }
        syncs.push(spawn_sync(coordinator, params));
    }
    for (sync, result) in syncs.into_iter().zip(&results) {
        let assignment = sync.await.unwrap().expect("sync").assignment;
        assert_eq!(assignment, Bytes::from(result.member_id.clone()));
    }
    results
}

pub(super) fn state_of(coordinator: &GroupCoordinator, group: &str) -> &'static str {
    coordinator.describe_groups(&[group.to_string()])[0]
        .as_ref()
        .expect("describe")
        .state
}

pub(super) fn exists(coordinator: &GroupCoordinator, group: &str) -> bool {
    match coordinator.describe_groups(&[group.to_string()]).remove(0) {
        Ok(_) => true,
        Err(GroupError::GroupIdNotFound) => false,
        Err(other) => panic!("describe failed: {other}"),
    }
}

pub(super) fn standalone_commit(group: &str, offsets: &[(&str, i32, i64)]) -> OffsetCommitParams {
    OffsetCommitParams {
        group_id: group.to_string(),
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
        retention_time_ms: -1,
        offsets: offsets
            .iter()
            .map(|(topic, partition, offset)| OffsetCommitEntry {
                topic: topic.to_string(),
                partition: *partition,
                offset: *offset,
                leader_epoch: -1,
                metadata: Some("meta".into()),
            })
            .collect(),
    }
}
