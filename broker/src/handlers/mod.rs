//! One file per API family. `dispatch` decodes a frame, runs its handler and
//! encodes the answer; handlers read one `MetadataImage` per request.

/// Decodes the request, runs the handler (which may use the header), and
/// encodes the answer, splicing in the byte fields `$splice` picks out.
/// `(api, version, frame)` name the dispatcher's locals.
macro_rules! route {
    (($api:ident, $version:ident, $frame:ident), $request:ty, |$header:pat_param, $req:ident| $handler:expr) => {
        route!(
            ($api, $version, $frame),
            $request,
            |$header, $req| $handler,
            |_| Vec::new()
        )
    };
    (($api:ident, $version:ident, $frame:ident), $request:ty, |$header:pat_param, $req:ident| $handler:expr, $splice:expr) => {{
        let (header, $req): (RequestHeader, $request) = decode_request($api, $version, $frame)?;
        let correlation_id = header.correlation_id;
        let $header = header;
        let response = $handler.await;
        let splice = $splice(&response);
        Ok(Some(encode_response(
            $api,
            $version,
            correlation_id,
            &response,
            splice,
        )?))
    }};
}

pub mod alter_partition;
pub mod api_versions;
pub mod broker_lifecycle;
pub mod cluster;
pub mod configs;
pub mod controller_listener;
pub mod coordinator;
pub mod elect_leaders;
pub mod fetch;
pub mod forward;
pub mod groups;
pub mod list_offsets;
pub mod log_dirs;
pub mod metadata;
pub mod produce;
pub mod producer_ids;
pub mod reassignments;
pub mod records;
pub mod topics;
pub mod unregister_broker;

use bytes::Bytes;
use kafka_protocol::messages::*;

use crate::protocol::{decode_request, encode_response, peek_header, CodecError, RawHeader};
use crate::server::BrokerState;
use forward::via_controller;

/// Why a connection must be closed instead of answered, as Kafka does.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("unknown API key {0}")]
    UnknownApi(i16),
    #[error("API key {key} does not support version {version}")]
    UnsupportedVersion { key: i16, version: i16 },
}

/// The admin APIs these handlers implement, as (api, min version, max version) for ApiVersions.
pub const ADMIN_API_VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::AlterPartitionReassignments, 0, 0),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::UnregisterBroker, 0, 0),
];

/// Every API this broker implements, with the versions it serves.
pub fn implemented_versions() -> crate::protocol::ApiVersionTable {
    crate::protocol::ApiVersionTable::new([
        api_versions::VERSIONS,
        metadata::VERSIONS,
        produce::VERSIONS,
        fetch::VERSIONS,
        list_offsets::VERSIONS,
        records::VERSIONS,
        coordinator::VERSIONS,
        cluster::VERSIONS,
        log_dirs::VERSIONS,
        groups::GROUP_API_VERSIONS,
        ADMIN_API_VERSIONS,
    ])
}

impl crate::network::Service for BrokerState {
    fn max_frame_bytes(&self) -> u32 {
        self.config.socket_request_max_bytes
    }

    fn metrics(&self) -> &crate::server::metrics::Metrics {
        &self.metrics
    }

    async fn dispatch(
        &self,
        client_host: &str,
        frame: Bytes,
    ) -> Result<Option<Vec<Bytes>>, DispatchError> {
        dispatch(self, client_host, frame).await
    }
}

/// Runs one request. `Ok(None)` means no response is due (produce with acks=0).
pub async fn dispatch(
    state: &BrokerState,
    client_host: &str,
    frame: Bytes,
) -> Result<Option<Vec<Bytes>>, DispatchError> {
    let raw = peek_header(&frame)?;
    let Some(api) = state.api_versions.supported(raw.api_key, raw.api_version) else {
        return unsupported(&state.api_versions, raw);
    };
    let version = raw.api_version;
    state
        .metrics
        .requests
        .with_label_values(&[api_name(api)])
        .inc();

    match api {
        ApiKey::ApiVersions => route!((api, version, frame), ApiVersionsRequest, |_, r| {
            api_versions::handle(&state.api_versions, &state.image(), r)
        }),
        ApiKey::Metadata => route!((api, version, frame), MetadataRequest, |_, r| {
            metadata::handle(state, version, r)
        }),
        ApiKey::Produce => {
            let (header, request): (RequestHeader, ProduceRequest) =
                decode_request(api, version, frame)?;
            let acks = request.acks;
            let response = produce::handle(state, version, request).await;
            // acks=0: the client expects no response at all.
            if acks == 0 {
                return Ok(None);
            }
            Ok(Some(encode_response(
                api,
                version,
                header.correlation_id,
                &response,
                Vec::new(),
            )?))
        }
        ApiKey::Fetch => route!(
            (api, version, frame),
            FetchRequest,
            |_, r| fetch::handle(state, version, r),
            fetch::record_sets
        ),
        ApiKey::ListOffsets => route!((api, version, frame), ListOffsetsRequest, |_, r| {
            list_offsets::handle(state, version, r)
        }),
        ApiKey::DeleteRecords => route!((api, version, frame), DeleteRecordsRequest, |_, r| {
            records::delete_records(state, version, r)
        }),
        ApiKey::OffsetForLeaderEpoch => route!(
            (api, version, frame),
            OffsetForLeaderEpochRequest,
            |_, r| { records::offset_for_leader_epoch(state, version, r) }
        ),
        ApiKey::FindCoordinator => route!((api, version, frame), FindCoordinatorRequest, |_, r| {
            coordinator::handle(state, version, r)
        }),
        ApiKey::DescribeCluster => route!((api, version, frame), DescribeClusterRequest, |_, r| {
            cluster::handle(state, version, r)
        }),
        ApiKey::DescribeLogDirs => route!((api, version, frame), DescribeLogDirsRequest, |_, r| {
            log_dirs::handle(state, version, r)
        }),
        ApiKey::CreateTopics => route!((api, version, frame), CreateTopicsRequest, |_, r| {
            via_controller(state, r, |c, r| topics::create_topics(c, version, r))
        }),
        ApiKey::DeleteTopics => route!((api, version, frame), DeleteTopicsRequest, |_, r| {
            via_controller(state, r, |c, r| topics::delete_topics(c, version, r))
        }),
        ApiKey::CreatePartitions => {
            route!((api, version, frame), CreatePartitionsRequest, |_, r| {
                via_controller(state, r, |c, r| topics::create_partitions(c, version, r))
            })
        }
        ApiKey::ElectLeaders => route!((api, version, frame), ElectLeadersRequest, |_, r| {
            async move {
                let response =
                    via_controller(state, r, |c, r| elect_leaders::elect_leaders(c, version, r))
                        .await;
                elect_leaders::at_version(response, version)
            }
        }),
        ApiKey::AlterPartitionReassignments => route!(
            (api, version, frame),
            AlterPartitionReassignmentsRequest,
            |_, r| via_controller(state, r, reassignments::alter)
        ),
        ApiKey::ListPartitionReassignments => route!(
            (api, version, frame),
            ListPartitionReassignmentsRequest,
            |_, r| via_controller(state, r, reassignments::list)
        ),
        ApiKey::UnregisterBroker => {
            route!((api, version, frame), UnregisterBrokerRequest, |_, r| {
                via_controller(state, r, unregister_broker::unregister_broker)
            })
        }
        ApiKey::DescribeConfigs => route!((api, version, frame), DescribeConfigsRequest, |_, r| {
            configs::describe_configs(&state.controller, version, r)
        }),
        ApiKey::AlterConfigs => route!((api, version, frame), AlterConfigsRequest, |_, r| {
            via_controller(state, r, |c, r| configs::alter_configs(c, version, r))
        }),
        ApiKey::IncrementalAlterConfigs => {
            route!(
                (api, version, frame),
                IncrementalAlterConfigsRequest,
                |_, r| via_controller(state, r, |c, r| configs::incremental_alter_configs(
                    c, version, r
                ))
            )
        }
        ApiKey::InitProducerId => route!((api, version, frame), InitProducerIdRequest, |_, r| {
            producer_ids::init_producer_id(state, version, r)
        }),
        ApiKey::JoinGroup => route!((api, version, frame), JoinGroupRequest, |header, r| {
            let client = crate::group::ClientInfo {
                client_id: header
                    .client_id
                    .as_ref()
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
                client_host: client_host.to_string(),
            };
            async move { groups::join_group(&state.groups, &client, version, r).await }
        }),
        ApiKey::SyncGroup => route!((api, version, frame), SyncGroupRequest, |_, r| {
            groups::sync_group(&state.groups, version, r)
        }),
        ApiKey::Heartbeat => route!((api, version, frame), HeartbeatRequest, |_, r| {
            groups::heartbeat(&state.groups, version, r)
        }),
        ApiKey::LeaveGroup => route!((api, version, frame), LeaveGroupRequest, |_, r| {
            groups::leave_group(&state.groups, version, r)
        }),
        ApiKey::OffsetCommit => route!((api, version, frame), OffsetCommitRequest, |_, r| {
            let image = state.image();
            let exists =
                move |topic: &str, partition: i32| image.partition(topic, partition).is_some();
            async move {
                let group = r.group_id.0.to_string();
                let timeout = std::time::Duration::from_millis(
                    state.config.replica_lag_time_max_ms.max(5_000),
                );
                let response = groups::offset_commit(&state.groups, exists, version, r).await;
                groups::after_replication(state, &group, response, timeout).await
            }
        }),
        ApiKey::OffsetFetch => route!((api, version, frame), OffsetFetchRequest, |_, r| {
            groups::offset_fetch(&state.groups, version, r)
        }),
        ApiKey::DescribeGroups => route!((api, version, frame), DescribeGroupsRequest, |_, r| {
            groups::describe_groups(&state.groups, version, r)
        }),
        ApiKey::ListGroups => route!((api, version, frame), ListGroupsRequest, |_, r| {
            groups::list_groups(&state.groups, version, r)
        }),
        ApiKey::DeleteGroups => route!((api, version, frame), DeleteGroupsRequest, |_, r| {
            groups::delete_groups(&state.groups, version, r)
        }),
        ApiKey::OffsetDelete => route!((api, version, frame), OffsetDeleteRequest, |_, r| {
            groups::offset_delete(&state.groups, version, r)
        }),
        other => Err(DispatchError::UnknownApi(other as i16)),
    }
}

/// ApiVersions at a version we do not know is answered (v0 body, error 35, all
/// our keys) so the client can fall back; anything else closes the connection.
pub(crate) fn unsupported(
    table: &crate::protocol::ApiVersionTable,
    raw: RawHeader,
) -> Result<Option<Vec<Bytes>>, DispatchError> {
    if raw.api_key == ApiKey::ApiVersions as i16 {
        let response = api_versions::unsupported_version(table);
        return Ok(Some(encode_response(
            ApiKey::ApiVersions,
            0,
            raw.correlation_id,
            &response,
            Vec::new(),
        )?));
    }
    if table.knows(raw.api_key) {
        Err(DispatchError::UnsupportedVersion {
            key: raw.api_key,
            version: raw.api_version,
        })
    } else {
        Err(DispatchError::UnknownApi(raw.api_key))
    }
}

/// Answers each partition of a per-topic request, keeping the request's
/// grouping and order: `split` names a topic and its partitions, `answer`
/// handles one partition, `wrap` builds a topic's part of the response.
pub(crate) fn per_partition<T, P, R, O>(
    topics: Vec<T>,
    split: impl Fn(&T) -> (&str, &[P]),
    mut answer: impl FnMut(&str, &P) -> R,
    wrap: impl Fn(T, Vec<R>) -> O,
) -> Vec<O> {
    topics
        .into_iter()
        .map(|topic| {
            let (name, partitions) = split(&topic);
            let answers = partitions.iter().map(|p| answer(name, p)).collect();
            wrap(topic, answers)
        })
        .collect()
}

/// Kafka's name of an API, for metric labels.
pub fn api_name(api: ApiKey) -> &'static str {
    match api {
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        ApiKey::Metadata => "Metadata",
        ApiKey::OffsetCommit => "OffsetCommit",
        ApiKey::OffsetFetch => "OffsetFetch",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::JoinGroup => "JoinGroup",
        ApiKey::Heartbeat => "Heartbeat",
        ApiKey::LeaveGroup => "LeaveGroup",
        ApiKey::SyncGroup => "SyncGroup",
        ApiKey::DescribeGroups => "DescribeGroups",
        ApiKey::ListGroups => "ListGroups",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::DeleteTopics => "DeleteTopics",
        ApiKey::DeleteRecords => "DeleteRecords",
        ApiKey::InitProducerId => "InitProducerId",
        ApiKey::OffsetForLeaderEpoch => "OffsetForLeaderEpoch",
        ApiKey::DescribeConfigs => "DescribeConfigs",
        ApiKey::AlterConfigs => "AlterConfigs",
        ApiKey::CreatePartitions => "CreatePartitions",
        ApiKey::DeleteGroups => "DeleteGroups",
        ApiKey::IncrementalAlterConfigs => "IncrementalAlterConfigs",
        ApiKey::OffsetDelete => "OffsetDelete",
        ApiKey::DescribeCluster => "DescribeCluster",
        ApiKey::DescribeLogDirs => "DescribeLogDirs",
        ApiKey::BrokerRegistration => "BrokerRegistration",
        ApiKey::BrokerHeartbeat => "BrokerHeartbeat",
        ApiKey::AlterPartition => "AlterPartition",
        ApiKey::ElectLeaders => "ElectLeaders",
        ApiKey::AlterPartitionReassignments => "AlterPartitionReassignments",
        ApiKey::ListPartitionReassignments => "ListPartitionReassignments",
        ApiKey::UnregisterBroker => "UnregisterBroker",
        _ => "Other",
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::Message;

    use super::*;

    /// We never advertise a version kafka-protocol cannot encode.
    #[test]
    fn advertised_versions_are_encodable() {
        for &(api, min, max) in ADMIN_API_VERSIONS {
            let range = match api {
                ApiKey::CreateTopics => CreateTopicsResponse::VERSIONS,
                ApiKey::DeleteTopics => DeleteTopicsResponse::VERSIONS,
                ApiKey::CreatePartitions => CreatePartitionsResponse::VERSIONS,
                ApiKey::DescribeConfigs => DescribeConfigsResponse::VERSIONS,
                ApiKey::AlterConfigs => AlterConfigsResponse::VERSIONS,
                ApiKey::IncrementalAlterConfigs => IncrementalAlterConfigsResponse::VERSIONS,
                ApiKey::InitProducerId => InitProducerIdRequest::VERSIONS,
                ApiKey::ElectLeaders => ElectLeadersResponse::VERSIONS,
                ApiKey::AlterPartitionReassignments => {
                    AlterPartitionReassignmentsResponse::VERSIONS
                }
                ApiKey::ListPartitionReassignments => ListPartitionReassignmentsResponse::VERSIONS,
                ApiKey::UnregisterBroker => UnregisterBrokerResponse::VERSIONS,
                other => panic!("unexpected api {other:?}"),
            };
            assert!(range.min <= min && max <= range.max, "{api:?}");
        }
    }
}
