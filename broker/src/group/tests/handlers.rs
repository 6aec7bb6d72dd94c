//! Every handler's response encodes at every advertised version, for answers with
//! and without errors.

use bytes::BytesMut;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::*;
use crate::handlers::groups::{self, GROUP_API_VERSIONS};

fn versions(key: ApiKey) -> std::ops::RangeInclusive<i16> {
    let (_, min, max) = GROUP_API_VERSIONS
        .iter()
        .find(|(k, _, _)| *k == key)
        .expect("advertised");
    *min..=*max
}

fn encodes<T: Encodable + std::fmt::Debug>(message: &T, version: i16) {
    let mut buf = BytesMut::new();
    message
        .encode(&mut buf, version)
        .unwrap_or_else(|e| panic!("v{version}: {e}: {message:?}"));
    assert_eq!(buf.len(), message.compute_size(version).unwrap());
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn client() -> ClientInfo {
    ClientInfo {
        client_id: "client".into(),
        client_host: "/10.0.0.1".into(),
    }
}

fn join_request(group: &str, member: &str, version: i16) -> JoinGroupRequest {
    let mut request = JoinGroupRequest::default();
    request.group_id = GroupId(s(group));
    request.member_id = s(member);
    request.session_timeout_ms = SESSION_MS;
    request.rebalance_timeout_ms = REBALANCE_MS;
    request.protocol_type = s("consumer");
    if version >= 5 {
        request.group_instance_id = Some(s(&format!("{group}-instance")));
    }
    let mut protocol = JoinGroupRequestProtocol::default();
    protocol.name = s("range");
    protocol.metadata = subscription(&["t"]);
    request.protocols = vec![protocol];
    request
}

/// Joins and syncs one member into `group` through the handlers at `version`.
async fn join_and_sync(c: &GroupCoordinator, group: &str, version: i16) -> (String, i32) {
    let mut response =
        groups::join_group(c, &client(), version, join_request(group, "", version)).await;
    encodes(&response, version);
    if response.error_code == 79 {
        assert!(version == 4, "static members need no member id round trip");
        response = groups::join_group(
            c,
            &client(),
            version,
            join_request(group, response.member_id.as_str(), version),
        )
        .await;
        encodes(&response, version);
    }
    assert_eq!(response.error_code, 0, "v{version}");
    assert_eq!(response.members.len(), 1);
    let member = response.member_id.to_string();
    let mut sync = SyncGroupRequest::default();
    sync.group_id = GroupId(s(group));
    sync.generation_id = response.generation_id;
    sync.member_id = s(&member);
    let mut assignment = SyncGroupRequestAssignment::default();
    assignment.member_id = s(&member);
    assignment.assignment = Bytes::from_static(b"assigned");
    sync.assignments = vec![assignment];
    let sync_version = version.min(5);
    let synced = groups::sync_group(c, sync_version, sync).await;
    encodes(&synced, sync_version);
    assert_eq!(synced.assignment, Bytes::from_static(b"assigned"));
    (member, response.generation_id)
}

#[tokio::test(start_paused = true)]
async fn join_sync_heartbeat_leave_encode_at_every_version() {
    let (c, _) = coordinator().await;
    for version in versions(ApiKey::JoinGroup) {
        let group = format!("g{version}");
        let (member, generation) = join_and_sync(&c, &group, version).await;

        let mut bad = join_request(&group, "", version);
        bad.session_timeout_ms = 1;
        let rejected = groups::join_group(&c, &client(), version, bad).await;
        assert_eq!(rejected.error_code, 26);
        encodes(&rejected, version);

        let hb_version = version.min(4);
        let mut heartbeat = HeartbeatRequest::default();
        heartbeat.group_id = GroupId(s(&group));
        heartbeat.generation_id = generation;
        heartbeat.member_id = s(&member);
        let ok = groups::heartbeat(&c, hb_version, heartbeat.clone()).await;
        assert_eq!(ok.error_code, 0);
        encodes(&ok, hb_version);
        heartbeat.generation_id += 1;
        let stale = groups::heartbeat(&c, hb_version, heartbeat).await;
        assert_eq!(stale.error_code, 22);
        encodes(&stale, hb_version);

        let leave_version = version.min(5);
        let mut leave = LeaveGroupRequest::default();
        leave.group_id = GroupId(s(&group));
        if leave_version >= 3 {
            let mut known = MemberIdentity::default();
            known.member_id = s(&member);
            let mut unknown = MemberIdentity::default();
            unknown.member_id = s("ghost");
            leave.members = vec![known, unknown];
        } else {
            leave.member_id = s(&member);
        }
        let left = groups::leave_group(&c, leave_version, leave).await;
        encodes(&left, leave_version);
        if leave_version >= 3 {
            assert_eq!(left.error_code, 0);
            assert_eq!(
                left.members
                    .iter()
                    .map(|m| m.error_code)
                    .collect::<Vec<_>>(),
                vec![0, 25]
            );
        } else {
            assert_eq!(left.error_code, 0);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn errors_of_sync_and_leave_encode_at_every_version() {
    let (c, _) = coordinator().await;
    for version in versions(ApiKey::SyncGroup) {
        let mut sync = SyncGroupRequest::default();
        sync.group_id = GroupId(s("none"));
        sync.member_id = s("ghost");
        let response = groups::sync_group(&c, version, sync).await;
        assert_eq!(response.error_code, 25);
        encodes(&response, version);
    }
    for version in versions(ApiKey::LeaveGroup) {
        let mut leave = LeaveGroupRequest::default();
        leave.group_id = GroupId(s(""));
        let response = groups::leave_group(&c, version, leave).await;
        assert_eq!(response.error_code, 24);
        encodes(&response, version);
    }
}

fn commit_request(group: &str, generation: i32, member: &str) -> OffsetCommitRequest {
    let mut request = OffsetCommitRequest::default();
    request.group_id = GroupId(s(group));
    request.generation_id_or_member_epoch = generation;
    request.member_id = s(member);
    let mut partition = OffsetCommitRequestPartition::default();
    partition.partition_index = 0;
    partition.committed_offset = 7;
    partition.committed_metadata = Some(s("m"));
    let mut topic = OffsetCommitRequestTopic::default();
    topic.name = TopicName(s("t"));
    let mut second = partition.clone();
    second.partition_index = 1;
    topic.partitions = vec![partition, second];
    request.topics = vec![topic];
    request
}

fn any_partition(_: &str, _: i32) -> bool {
    true
}

#[tokio::test(start_paused = true)]
async fn commits_for_unknown_partitions_are_refused_and_the_rest_stored() {
    let (c, _) = coordinator().await;
    let only_partition_0 = |topic: &str, partition: i32| topic == "t" && partition == 0;
    let response =
        groups::offset_commit(&c, only_partition_0, 9, commit_request("s", -1, "")).await;
    let codes: Vec<(i32, i16)> = response.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.error_code))
        .collect();
    assert_eq!(codes, vec![(0, 0), (1, 3)]);
    let stored = c.fetch_offsets("s", None, false).unwrap();
    assert_eq!(
        stored.iter().map(|o| o.partition).collect::<Vec<_>>(),
        vec![0]
    );
}

#[tokio::test(start_paused = true)]
async fn offset_commit_and_fetch_encode_at_every_version() {
    let (c, _) = coordinator().await;
    for version in versions(ApiKey::OffsetCommit) {
        let ok =
            groups::offset_commit(&c, any_partition, version, commit_request("s", -1, "")).await;
        assert_eq!(
            ok.topics[0]
                .partitions
                .iter()
                .map(|p| p.error_code)
                .collect::<Vec<_>>(),
            vec![0, 0]
        );
        encodes(&ok, version);
        let stale =
            groups::offset_commit(&c, any_partition, version, commit_request("none", 4, "m")).await;
        assert_eq!(stale.topics[0].partitions[0].error_code, 22);
        encodes(&stale, version);
    }
    let loading = GroupCoordinator::new(config(), Arc::new(MemoryOffsetsStore::new()));
    for version in versions(ApiKey::OffsetFetch) {
        let mut request = OffsetFetchRequest::default();
        if version >= 8 {
            let mut topic = OffsetFetchRequestTopics::default();
            topic.name = TopicName(s("t"));
            topic.partition_indexes = vec![0, 5];
            let mut some = OffsetFetchRequestGroup::default();
            some.group_id = GroupId(s("s"));
            some.topics = Some(vec![topic]);
            let mut all = OffsetFetchRequestGroup::default();
            all.group_id = GroupId(s("s"));
            all.topics = None;
            let mut unknown = OffsetFetchRequestGroup::default();
            unknown.group_id = GroupId(s("unknown"));
            unknown.topics = None;
            request.groups = vec![some, all, unknown];
        } else {
            let mut topic = OffsetFetchRequestTopic::default();
            topic.name = TopicName(s("t"));
            topic.partition_indexes = vec![0, 5];
            request.group_id = GroupId(s("s"));
            request.topics = Some(vec![topic]);
        }
        let response = groups::offset_fetch(&c, version, request.clone()).await;
        encodes(&response, version);
        let failed = groups::offset_fetch(&loading, version, request).await;
        encodes(&failed, version);
        if version >= 8 {
            let offsets = |g: &offset_fetch_response::OffsetFetchResponseGroup| -> Vec<(i32, i64)> {
                g.topics
                    .iter()
                    .flat_map(|t| {
                        t.partitions
                            .iter()
                            .map(|p| (p.partition_index, p.committed_offset))
                    })
                    .collect()
            };
            assert_eq!(offsets(&response.groups[0]), vec![(0, 7), (5, -1)]);
            assert_eq!(offsets(&response.groups[1]), vec![(0, 7), (1, 7)]);
            assert!(response.groups[2].topics.is_empty());
            assert_eq!(failed.groups[0].error_code, 14);
        } else {
            let partitions = &response.topics[0].partitions;
            assert_eq!(
                (
                    partitions[0].committed_offset,
                    partitions[1].committed_offset
                ),
                (7, -1)
            );
            if version >= 2 {
                assert_eq!(failed.error_code, 14);
            } else {
                assert_eq!(failed.topics[0].partitions[0].error_code, 14);
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn admin_apis_encode_at_every_version() {
    let (c, _) = coordinator().await;
    join_and_sync(&c, "busy", 9).await;
    groups::offset_commit(&c, any_partition, 9, commit_request("s", -1, "")).await;
    let loading = GroupCoordinator::new(config(), Arc::new(MemoryOffsetsStore::new()));

    for version in versions(ApiKey::DescribeGroups) {
        let mut request = DescribeGroupsRequest::default();
        request.groups = vec![GroupId(s("busy")), GroupId(s("unknown"))];
        request.include_authorized_operations = version >= 3;
        let response = groups::describe_groups(&c, version, request.clone()).await;
        encodes(&response, version);
        assert_eq!(response.groups[0].group_state.as_str(), "Stable");
        assert_eq!(
            response.groups[0].members[0].member_assignment,
            Bytes::from_static(b"assigned")
        );
        assert_eq!(
            response.groups[0].members[0].client_host.as_str(),
            "/10.0.0.1"
        );
        if version >= 6 {
            assert_eq!(response.groups[1].error_code, 69);
            assert!(response.groups[1].error_message.is_some());
        } else {
            assert_eq!(response.groups[1].error_code, 0);
            assert_eq!(response.groups[1].group_state.as_str(), "Dead");
        }
        let failed = groups::describe_groups(&loading, version, request).await;
        assert_eq!(failed.groups[0].error_code, 14);
        encodes(&failed, version);
    }
    for version in versions(ApiKey::ListGroups) {
        let mut request = ListGroupsRequest::default();
        if version >= 4 {
            request.states_filter = vec![s("Stable")];
        }
        if version >= 5 {
            request.types_filter = vec![s("classic")];
        }
        let response = groups::list_groups(&c, version, request.clone()).await;
        encodes(&response, version);
        let expected = if version >= 4 { 1 } else { 2 };
        assert_eq!(response.groups.len(), expected, "v{version}");
        let failed = groups::list_groups(&loading, version, request).await;
        assert_eq!(failed.error_code, 14);
        encodes(&failed, version);
    }
    for version in versions(ApiKey::OffsetDelete) {
        let mut request = OffsetDeleteRequest::default();
        request.group_id = GroupId(s("busy"));
        let mut topic = OffsetDeleteRequestTopic::default();
        topic.name = TopicName(s("t"));
        let mut partition = OffsetDeleteRequestPartition::default();
        partition.partition_index = 0;
        topic.partitions = vec![partition];
        request.topics = vec![topic];
        let subscribed = groups::offset_delete(&c, version, request.clone()).await;
        assert_eq!(subscribed.topics[0].partitions[0].error_code, 86);
        encodes(&subscribed, version);
        request.group_id = GroupId(s("unknown"));
        let unknown = groups::offset_delete(&c, version, request).await;
        assert_eq!(unknown.error_code, 69);
        encodes(&unknown, version);
    }
    for version in versions(ApiKey::DeleteGroups) {
        let mut request = DeleteGroupsRequest::default();
        request.groups_names = vec![GroupId(s("busy")), GroupId(s("s"))];
        let response = groups::delete_groups(&c, version, request).await;
        encodes(&response, version);
        let codes: Vec<i16> = response.results.iter().map(|r| r.error_code).collect();
        let expected_s = if version == 0 { 0 } else { 69 };
        assert_eq!(codes, vec![68, expected_s]);
    }
}

#[test]
fn advertised_versions_are_ones_the_crate_decodes() {
    for (key, min, max) in GROUP_API_VERSIONS {
        let supported = key.valid_versions();
        assert!(supported.min <= *min && *max <= supported.max, "{key:?}");
    }
    assert_eq!(GROUP_API_VERSIONS.len(), 10);
}

#[tokio::test(start_paused = true)]
async fn version_specific_request_fields_reach_the_coordinator() {
    let (c, store) = coordinator().await;
    // JoinGroup v0 has no rebalance timeout: the session timeout serves.
    let mut request = join_request("old", "", 0);
    request.rebalance_timeout_ms = -1;
    let joined = groups::join_group(&c, &client(), 0, request).await;
    let mut sync = SyncGroupRequest::default();
    sync.group_id = GroupId(s("old"));
    sync.generation_id = joined.generation_id;
    sync.member_id = joined.member_id.clone();
    groups::sync_group(&c, 0, sync).await;
    let partition = records::partition_for("old", config().offsets_topic_num_partitions);
    let (_, value) = store.records(partition).pop().unwrap();
    let value = records::GroupMetadataValue::decode(&value.unwrap()).unwrap();
    assert_eq!(value.members[0].rebalance_timeout_ms, SESSION_MS);
    assert_eq!(value.members[0].client_host, "/10.0.0.1");

    // OffsetCommit v2-4 may carry a retention time; later versions cannot.
    let mut commit = commit_request("r", -1, "");
    commit.retention_time_ms = 5_000;
    groups::offset_commit(&c, any_partition, 2, commit.clone()).await;
    let partition = records::partition_for("r", config().offsets_topic_num_partitions);
    let (_, value) = store.records(partition).pop().unwrap();
    assert!(records::OffsetCommitValue::decode(&value.unwrap())
        .unwrap()
        .expire_timestamp
        .is_some());
    groups::offset_commit(&c, any_partition, 5, commit).await;
    let (_, value) = store.records(partition).pop().unwrap();
    assert_eq!(
        records::OffsetCommitValue::decode(&value.unwrap())
            .unwrap()
            .expire_timestamp,
        None
    );
}
