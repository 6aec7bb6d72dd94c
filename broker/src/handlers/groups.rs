//! Consumer group APIs: kafka-protocol requests in, coordinator calls, responses out,
//! with each field set only in the versions that have it.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    ApiKey, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest,
    OffsetDeleteResponse, OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest,
    SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::group::{
    ClientInfo, FetchedOffset, GroupCoordinator, GroupError, JoinGroupParams, LeavingMember,
    OffsetCommitEntry, OffsetCommitParams, PartitionResult, Protocol, SyncGroupParams,
    CLASSIC_GROUP_TYPE,
};

/// The group APIs and versions implemented here, for ApiVersions.
pub const GROUP_API_VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
];

/// Kafka's authorized operations of a group without an authorizer: READ, DELETE, DESCRIBE.
const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

fn text(s: &StrBytes) -> String {
    s.as_str().to_string()
}

fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

fn code(result: &Result<(), GroupError>) -> i16 {
    result.as_ref().err().map_or(0, GroupError::code)
}

pub async fn join_group(
    coordinator: &GroupCoordinator,
    client: &ClientInfo,
    version: i16,
    request: JoinGroupRequest,
) -> JoinGroupResponse {
    if let Some(reason) = &request.reason {
        tracing::debug!(group = %request.group_id.0.as_str(), reason = reason.as_str(), "join reason");
    }
    let params = JoinGroupParams {
        group_id: text(&request.group_id.0),
        member_id: text(&request.member_id),
        group_instance_id: request.group_instance_id.as_ref().map(text),
        client: client.clone(),
        session_timeout_ms: request.session_timeout_ms,
        // v0 has no rebalance timeout; Kafka uses the session timeout.
        rebalance_timeout_ms: if version == 0 {
            request.session_timeout_ms
        } else {
            request.rebalance_timeout_ms
        },
        protocol_type: text(&request.protocol_type),
        protocols: request
            .protocols
            .iter()
            .map(|p| Protocol {
                name: text(&p.name),
                metadata: p.metadata.clone(),
            })
            .collect(),
        require_known_member_id: version >= 4,
        supports_skip_assignment: version >= 9,
    };
    let mut response = JoinGroupResponse::default();
    // Before v7 the protocol name is not nullable.
    let protocol_name = |name: Option<String>| match (name, version >= 7) {
        (Some(name), _) => Some(str_bytes(name)),
        (None, true) => None,
        (None, false) => Some(StrBytes::default()),
    };
    match coordinator.join_group(params).await {
        Ok(result) => {
            response.generation_id = result.generation_id;
            if version >= 7 {
                response.protocol_type = result.protocol_type.map(str_bytes);
            }
            response.protocol_name = protocol_name(result.protocol_name);
            response.leader = str_bytes(result.leader);
            response.skip_assignment = result.skip_assignment;
            response.member_id = str_bytes(result.member_id);
            response.members = result
                .members
                .into_iter()
                .map(|m| {
                    let mut member = JoinGroupResponseMember::default();
                    member.member_id = str_bytes(m.member_id);
                    member.group_instance_id = m.group_instance_id.map(str_bytes);
                    member.metadata = m.metadata;
                    member
                })
                .collect();
        }
        Err(error) => {
            response.error_code = error.code();
            response.generation_id = -1;
            response.protocol_name = protocol_name(None);
            response.member_id = match error {
                GroupError::MemberIdRequired(id) => str_bytes(id),
                _ => request.member_id,
            };
        }
    }
    response
}

pub async fn sync_group(
    coordinator: &GroupCoordinator,
    version: i16,
    request: SyncGroupRequest,
) -> SyncGroupResponse {
    let params = SyncGroupParams {
        group_id: text(&request.group_id.0),
        generation_id: request.generation_id,
        member_id: text(&request.member_id),
        group_instance_id: request.group_instance_id.as_ref().map(text),
        protocol_type: request.protocol_type.as_ref().map(text),
        protocol_name: request.protocol_name.as_ref().map(text),
        assignments: request
            .assignments
            .iter()
            .map(|a| (text(&a.member_id), a.assignment.clone()))
            .collect(),
    };
    let mut response = SyncGroupResponse::default();
    match coordinator.sync_group(params).await {
        Ok(result) => {
            if version >= 5 {
                response.protocol_type = result.protocol_type.map(str_bytes);
                response.protocol_name = result.protocol_name.map(str_bytes);
            }
            response.assignment = result.assignment;
        }
        Err(error) => response.error_code = error.code(),
    }
    response
}

pub async fn heartbeat(
    coordinator: &GroupCoordinator,
    _version: i16,
    request: HeartbeatRequest,
) -> HeartbeatResponse {
    let result = coordinator.heartbeat(
        request.group_id.0.as_str(),
        request.generation_id,
        request.member_id.as_str(),
        request.group_instance_id.as_deref(),
    );
    let mut response = HeartbeatResponse::default();
    response.error_code = code(&result);
    response
}

pub async fn leave_group(
    coordinator: &GroupCoordinator,
    version: i16,
    request: LeaveGroupRequest,
) -> LeaveGroupResponse {
    let leaving: Vec<LeavingMember> = if version >= 3 {
        request
            .members
            .iter()
            .map(|m| LeavingMember {
                member_id: text(&m.member_id),
                group_instance_id: m.group_instance_id.as_ref().map(text),
            })
            .collect()
    } else {
        vec![LeavingMember {
            member_id: text(&request.member_id),
            group_instance_id: None,
        }]
    };
    let mut response = LeaveGroupResponse::default();
    match coordinator.leave_group(request.group_id.0.as_str(), &leaving) {
        Err(error) => response.error_code = error.code(),
        // Before v3 there is one member and its error is the response's error.
        Ok(results) if version < 3 => response.error_code = results.first().map_or(0, code),
        Ok(results) => {
            response.members = leaving
                .into_iter()
                .zip(results)
                .map(|(m, result)| {
                    let mut member = MemberResponse::default();
                    member.member_id = str_bytes(m.member_id);
                    member.group_instance_id = m.group_instance_id.map(str_bytes);
                    member.error_code = code(&result);
                    member
                })
                .collect();
        }
    }
    response
}

/// Groups per-partition results by topic, keeping the order topics first appear in.
fn by_topic<T>(
    results: Vec<PartitionResult>,
    mut make: impl FnMut(&PartitionResult) -> T,
) -> Vec<(String, Vec<T>)> {
    let mut topics: Vec<(String, Vec<T>)> = Vec::new();
    for result in results {
        let item = make(&result);
        match topics.iter_mut().find(|(name, _)| *name == result.topic) {
            Some((_, items)) => items.push(item),
            None => topics.push((result.topic, vec![item])),
        }
    }
    topics
}

/// Answers an OffsetCommit only once the followers in the ISR have the group's
/// `__consumer_offsets` records, as Kafka commits with acks=all: a commit the
/// leader alone held could be lost when another replica takes over. Partitions
/// that committed get COORDINATOR_NOT_AVAILABLE (or NOT_COORDINATOR, or
/// REQUEST_TIMED_OUT) when that does not happen, so the client retries.
pub async fn after_replication(
    state: &crate::server::BrokerState,
    group: &str,
    mut response: OffsetCommitResponse,
    timeout: std::time::Duration,
) -> OffsetCommitResponse {
    if response
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .all(|p| p.error_code != 0)
    {
        return response;
    }
    let tp = crate::storage::TopicPartition::new(
        crate::controller::InternalTopic::ConsumerOffsets.name(),
        state.groups.partition_of(group),
    );
    let replicated = async {
        let hosted = state
            .replicas
            .partition(&tp)
            .ok_or(ResponseError::NotCoordinator)?;
        let epoch = hosted.leader_epoch().ok_or(ResponseError::NotCoordinator)?;
        let min_isr = hosted.log.config().min_insync_replicas.max(1) as usize;
        let end = hosted.log.log_end_offset();
        hosted.wait_replicated(end, epoch, min_isr).await
    };
    let error = match tokio::time::timeout(timeout, replicated).await {
        Ok(Ok(())) => return response,
        Ok(Err(ResponseError::NotLeaderOrFollower)) | Ok(Err(ResponseError::NotCoordinator)) => {
            ResponseError::NotCoordinator
        }
        Ok(Err(_)) => ResponseError::CoordinatorNotAvailable,
        Err(_) => ResponseError::RequestTimedOut,
    };
    for p in response
        .topics
        .iter_mut()
        .flat_map(|t| t.partitions.iter_mut())
    {
        if p.error_code == 0 {
            p.error_code = error.code();
        }
    }
    response
}

/// `partition_exists` filters out commits for partitions the cluster does not
/// have: they get UNKNOWN_TOPIC_OR_PARTITION, as Kafka answers before the
/// coordinator sees them.
pub async fn offset_commit(
    coordinator: &GroupCoordinator,
    partition_exists: impl Fn(&str, i32) -> bool,
    version: i16,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let (offsets, unknown): (Vec<OffsetCommitEntry>, Vec<OffsetCommitEntry>) = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| OffsetCommitEntry {
                topic: text(&t.name.0),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if version >= 6 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: p.committed_metadata.as_ref().map(text),
            })
        })
        .partition(|o| partition_exists(&o.topic, o.partition));
    let params = OffsetCommitParams {
        group_id: text(&request.group_id.0),
        generation_id: request.generation_id_or_member_epoch,
        member_id: text(&request.member_id),
        group_instance_id: request.group_instance_id.as_ref().map(text),
        retention_time_ms: if version <= 4 {
            request.retention_time_ms
        } else {
            -1
        },
        offsets: offsets.clone(),
    };
    // A request-level error applies to every partition: the response has no other place for it.
    let mut results = coordinator.commit_offsets(params).unwrap_or_else(|error| {
        offsets
            .iter()
            .map(|o| PartitionResult {
                topic: o.topic.clone(),
                partition: o.partition,
                error: Some(error.clone()),
            })
            .collect()
    });
    results.extend(unknown.into_iter().map(|o| PartitionResult {
        topic: o.topic,
        partition: o.partition,
        error: Some(GroupError::UnknownTopicOrPartition),
    }));
    let mut response = OffsetCommitResponse::default();
    response.topics = by_topic(results, |r| {
        let mut partition = OffsetCommitResponsePartition::default();
        partition.partition_index = r.partition;
        partition.error_code = r.error.as_ref().map_or(0, GroupError::code);
        partition
    })
    .into_iter()
    .map(|(name, partitions)| {
        let mut topic = OffsetCommitResponseTopic::default();
        topic.name = TopicName(str_bytes(name));
        topic.partitions = partitions;
        topic
    })
    .collect();
    response
}

/// Fetches for one group: `Ok` offsets grouped by topic, or the group's error.
fn fetch_group(
    coordinator: &GroupCoordinator,
    group_id: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> Result<Vec<(String, Vec<FetchedOffset>)>, GroupError> {
    let fetched = coordinator.fetch_offsets(group_id, topics, require_stable)?;
    let mut grouped: Vec<(String, Vec<FetchedOffset>)> = Vec::new();
    for offset in fetched {
        match grouped.iter_mut().find(|(name, _)| *name == offset.topic) {
            Some((_, items)) => items.push(offset),
            None => grouped.push((offset.topic.clone(), vec![offset])),
        }
    }
    Ok(grouped)
}

pub async fn offset_fetch(
    coordinator: &GroupCoordinator,
    version: i16,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    let mut response = OffsetFetchResponse::default();
    if version >= 8 {
        response.groups = request
            .groups
            .iter()
            .map(|g| {
                let topics = g.topics.as_ref().map(|ts| {
                    ts.iter()
                        .map(|t| (text(&t.name.0), t.partition_indexes.clone()))
                        .collect()
                });
                let mut group = OffsetFetchResponseGroup::default();
                group.group_id = g.group_id.clone();
                match fetch_group(
                    coordinator,
                    g.group_id.0.as_str(),
                    topics,
                    request.require_stable,
                ) {
                    Ok(topics) => {
                        group.topics = topics
                            .into_iter()
                            .map(|(name, offsets)| {
                                let mut topic = OffsetFetchResponseTopics::default();
                                topic.name = TopicName(str_bytes(name));
                                topic.partitions = offsets.into_iter().map(partition_v8).collect();
                                topic
                            })
                            .collect();
                    }
                    Err(error) => group.error_code = error.code(),
                }
                group
            })
            .collect();
        return response;
    }
    let requested: Option<Vec<(String, Vec<i32>)>> = request.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (text(&t.name.0), t.partition_indexes.clone()))
            .collect()
    });
    let result = fetch_group(
        coordinator,
        request.group_id.0.as_str(),
        requested.clone(),
        request.require_stable,
    );
    let (topics, error) = match result {
        Ok(topics) => (topics, 0),
        // v1 has no group-level error code: Kafka reports it on every partition asked for.
        Err(error) if version < 2 => {
            let topics = requested
                .unwrap_or_default()
                .into_iter()
                .map(|(name, partitions)| {
                    let offsets = partitions
                        .into_iter()
                        .map(|partition| FetchedOffset {
                            topic: name.clone(),
                            partition,
                            offset: -1,
                            leader_epoch: -1,
                            metadata: String::new(),
                        })
                        .collect();
                    (name, offsets)
                })
                .collect();
            return v1_response(topics, error.code());
        }
        Err(error) => (Vec::new(), error.code()),
    };
    response = v1_response(topics, 0);
    response.error_code = error;
    response
}

/// The pre-v8 shape; `partition_error` goes on every partition.
fn v1_response(
    topics: Vec<(String, Vec<FetchedOffset>)>,
    partition_error: i16,
) -> OffsetFetchResponse {
    let mut response = OffsetFetchResponse::default();
    response.topics = topics
        .into_iter()
        .map(|(name, offsets)| {
            let mut topic = OffsetFetchResponseTopic::default();
            topic.name = TopicName(str_bytes(name));
            topic.partitions = offsets
                .into_iter()
                .map(|o| {
                    let mut partition = OffsetFetchResponsePartition::default();
                    partition.partition_index = o.partition;
                    partition.committed_offset = o.offset;
                    partition.committed_leader_epoch = o.leader_epoch;
                    partition.metadata = Some(str_bytes(o.metadata));
                    partition.error_code = partition_error;
                    partition
                })
                .collect();
            topic
        })
        .collect();
    response
}

fn partition_v8(o: FetchedOffset) -> OffsetFetchResponsePartitions {
    let mut partition = OffsetFetchResponsePartitions::default();
    partition.partition_index = o.partition;
    partition.committed_offset = o.offset;
    partition.committed_leader_epoch = o.leader_epoch;
    partition.metadata = Some(str_bytes(o.metadata));
    partition
}

pub async fn describe_groups(
    coordinator: &GroupCoordinator,
    version: i16,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let ids: Vec<String> = request.groups.iter().map(|g| text(&g.0)).collect();
    let mut response = DescribeGroupsResponse::default();
    response.groups = ids
        .iter()
        .zip(coordinator.describe_groups(&ids))
        .map(|(id, result)| {
            let mut group = DescribedGroup::default();
            group.group_id = GroupId(str_bytes(id.clone()));
            match result {
                Ok(description) => {
                    group.group_state = str_bytes(description.state);
                    group.protocol_type = str_bytes(description.protocol_type);
                    group.protocol_data = str_bytes(description.protocol);
                    group.members = description
                        .members
                        .into_iter()
                        .map(|m| {
                            let mut member = DescribedGroupMember::default();
                            member.member_id = str_bytes(m.member_id);
                            member.group_instance_id = m.group_instance_id.map(str_bytes);
                            member.client_id = str_bytes(m.client_id);
                            member.client_host = str_bytes(m.client_host);
                            member.member_metadata = m.metadata;
                            member.member_assignment = m.assignment;
                            member
                        })
                        .collect();
                    if version >= 3 && request.include_authorized_operations {
                        group.authorized_operations = GROUP_OPERATIONS;
                    }
                }
                // Before v6 (KIP-1043) an unknown group is a Dead group without error.
                Err(GroupError::GroupIdNotFound) if version < 6 => {
                    group.group_state = StrBytes::from_static_str("Dead");
                }
                Err(error) => {
                    group.error_code = error.code();
                    if version >= 6 {
                        group.error_message = Some(str_bytes(error.to_string()));
                    }
                }
            }
            group
        })
        .collect();
    response
}

pub async fn list_groups(
    coordinator: &GroupCoordinator,
    version: i16,
    request: ListGroupsRequest,
) -> ListGroupsResponse {
    let states: Vec<String> = if version >= 4 {
        request.states_filter.iter().map(text).collect()
    } else {
        Vec::new()
    };
    let types: Vec<String> = if version >= 5 {
        request.types_filter.iter().map(text).collect()
    } else {
        Vec::new()
    };
    let mut response = ListGroupsResponse::default();
    match coordinator.list_groups(&states, &types) {
        Ok(groups) => {
            response.groups = groups
                .into_iter()
                .map(|g| {
                    let mut listed = ListedGroup::default();
                    listed.group_id = GroupId(str_bytes(g.group_id));
                    listed.protocol_type = str_bytes(g.protocol_type);
                    listed.group_state = str_bytes(g.state);
                    listed.group_type = StrBytes::from_static_str(CLASSIC_GROUP_TYPE);
                    listed
                })
                .collect();
        }
        Err(error) => response.error_code = error.code(),
    }
    response
}

pub async fn delete_groups(
    coordinator: &GroupCoordinator,
    _version: i16,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let ids: Vec<String> = request.groups_names.iter().map(|g| text(&g.0)).collect();
    let mut response = DeleteGroupsResponse::default();
    response.results = ids
        .iter()
        .zip(coordinator.delete_groups(&ids))
        .map(|(id, result)| {
            let mut deleted = DeletableGroupResult::default();
            deleted.group_id = GroupId(str_bytes(id.clone()));
            deleted.error_code = code(&result);
            deleted
        })
        .collect();
    response
}

pub async fn offset_delete(
    coordinator: &GroupCoordinator,
    _version: i16,
    request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let partitions: Vec<(String, i32)> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (text(&t.name.0), p.partition_index))
        })
        .collect();
    let mut response = OffsetDeleteResponse::default();
    match coordinator.delete_offsets(request.group_id.0.as_str(), partitions) {
        Ok(results) => {
            response.topics = by_topic(results, |r| {
                let mut partition = OffsetDeleteResponsePartition::default();
                partition.partition_index = r.partition;
                partition.error_code = r.error.as_ref().map_or(0, GroupError::code);
                partition
            })
            .into_iter()
            .map(|(name, partitions)| {
                let mut topic = OffsetDeleteResponseTopic::default();
                topic.name = TopicName(str_bytes(name));
                topic.partitions = partitions;
                topic
            })
            .collect();
        }
        Err(error) => response.error_code = error.code(),
    }
    response
}
