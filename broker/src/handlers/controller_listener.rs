//! The controller listener (`controller.listener.names`): Raft RPCs between
//! voters and from observing brokers, DescribeQuorum, and the requests only
//! the active controller serves (broker lifecycle, metadata changes, ISR
//! changes, producer id blocks). A standby answers the latter NOT_CONTROLLER,
//! so senders go looking for the active one.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_quorum_response::{PartitionData, ReplicaState, TopicData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::forward::{run_blocking, Forwardable};
use super::{
    alter_partition, api_name, api_versions, broker_lifecycle, configs, elect_leaders,
    producer_ids, reassignments, topics, unregister_broker, DispatchError, ADMIN_API_VERSIONS,
};
use crate::config::BrokerConfig;
use crate::controller::Controller;
use crate::kraft::wire::{is_metadata_fetch, RAFT_API_VERSIONS, RAFT_FETCH_VERSIONS};
use crate::kraft::{rpc, RaftHandle};
use crate::protocol::{decode_request, encode_response, peek_header, ApiVersionTable};
use crate::raft::ReplicaInfo;
use crate::server::metrics::Metrics;

/// The controller-only APIs besides Raft's.
const CONTROLLER_API_VERSIONS: &[(ApiKey, i16, i16)] = &[(ApiKey::DescribeQuorum, 0, 1)];

pub struct ControllerService {
    pub config: BrokerConfig,
    pub controller: Arc<Controller>,
    pub raft: RaftHandle,
    pub metrics: Arc<Metrics>,
    api_versions: ApiVersionTable,
}

impl ControllerService {
    pub fn new(
        config: BrokerConfig,
        controller: Arc<Controller>,
        raft: RaftHandle,
        metrics: Arc<Metrics>,
    ) -> Self {
        let fetch = [(ApiKey::Fetch, RAFT_FETCH_VERSIONS.0, RAFT_FETCH_VERSIONS.1)];
        let admin: Vec<_> = ADMIN_API_VERSIONS
            .iter()
            .copied()
            .filter(|(api, _, _)| !matches!(api, ApiKey::DescribeConfigs | ApiKey::InitProducerId))
            .collect();
        let api_versions = ApiVersionTable::new([
            api_versions::VERSIONS,
            RAFT_API_VERSIONS,
            &fetch[..],
            CONTROLLER_API_VERSIONS,
            broker_lifecycle::VERSIONS,
            alter_partition::VERSIONS,
            producer_ids::CONTROLLER_VERSIONS,
            &admin[..],
        ]);
        ControllerService {
            config,
            controller,
            raft,
            metrics,
            api_versions,
        }
    }

    /// Runs `local` on the active controller; a standby refuses.
    async fn on_active<'a, R, F, Fut>(&'a self, request: R, local: F) -> R::Response
    where
        R: Forwardable,
        F: FnOnce(&'a Controller, R) -> Fut,
        Fut: Future<Output = R::Response>,
    {
        if !self.raft.view().active {
            return request.fail_all(
                ResponseError::NotController.code(),
                "this node is not the active controller",
            );
        }
        run_blocking(local(&self.controller, request))
    }

    async fn describe_quorum(&self) -> DescribeQuorumResponse {
        let Some(info) = self.raft.describe().await else {
            let view = self.raft.view();
            return DescribeQuorumResponse::default().with_topics(vec![TopicData::default()
                .with_topic_name(TopicName(StrBytes::from_static_str(
                    crate::kraft::disk_log::METADATA_TOPIC,
                )))
                .with_partitions(vec![PartitionData::default()
                    .with_error_code(ResponseError::NotLeaderOrFollower.code())
                    .with_leader_id(BrokerId(view.leader.unwrap_or(-1)))
                    .with_leader_epoch(view.epoch)])]);
        };
        let replica = |r: &ReplicaInfo| {
            ReplicaState::default()
                .with_replica_id(BrokerId(r.replica_id))
                .with_log_end_offset(r.log_end_offset)
                .with_last_fetch_timestamp(r.last_fetch_ms.map_or(-1, |t| t as i64))
                .with_last_caught_up_timestamp(r.last_caught_up_ms.map_or(-1, |t| t as i64))
        };
        DescribeQuorumResponse::default().with_topics(vec![TopicData::default()
            .with_topic_name(TopicName(StrBytes::from_static_str(
                crate::kraft::disk_log::METADATA_TOPIC,
            )))
            .with_partitions(vec![PartitionData::default()
                .with_leader_id(BrokerId(info.leader_id))
                .with_leader_epoch(info.leader_epoch)
                .with_high_watermark(info.high_watermark)
                .with_current_voters(info.voters.iter().map(replica).collect())
                .with_observers(info.observers.iter().map(replica).collect())])])
    }
}

impl crate::network::Service for ControllerService {
    fn max_frame_bytes(&self) -> u32 {
        self.config.socket_request_max_bytes
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    async fn dispatch(
        &self,
        _client_host: &str,
        frame: Bytes,
    ) -> Result<Option<Vec<Bytes>>, DispatchError> {
        let raw = peek_header(&frame)?;
        let Some(api) = self.api_versions.supported(raw.api_key, raw.api_version) else {
            return super::unsupported(&self.api_versions, raw);
        };
        let version = raw.api_version;
        self.metrics
            .requests
            .with_label_values(&[api_name(api)])
            .inc();
        let raft = &self.raft;
        match api {
            ApiKey::ApiVersions => route!((api, version, frame), ApiVersionsRequest, |_, r| {
                api_versions::handle(
                    &self.api_versions,
                    &self.controller.publisher().current(),
                    r,
                )
            }),
            ApiKey::Vote => route!((api, version, frame), VoteRequest, |_, r| rpc::serve_vote(
                raft, r
            )),
            ApiKey::BeginQuorumEpoch => {
                route!((api, version, frame), BeginQuorumEpochRequest, |_, r| {
                    rpc::serve_begin_quorum_epoch(raft, r)
                })
            }
            ApiKey::EndQuorumEpoch => {
                route!((api, version, frame), EndQuorumEpochRequest, |_, r| {
                    rpc::serve_end_quorum_epoch(raft, r)
                })
            }
            ApiKey::Fetch => route!((api, version, frame), FetchRequest, |_, r| async move {
                if !is_metadata_fetch(&r) {
                    return FetchResponse::default()
                        .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                }
                rpc::serve_fetch(raft, version, r).await
            }),
            ApiKey::FetchSnapshot => {
                route!((api, version, frame), FetchSnapshotRequest, |_, r| {
                    rpc::serve_fetch_snapshot(raft, r)
                })
            }
            ApiKey::DescribeQuorum => {
                route!((api, version, frame), DescribeQuorumRequest, |_, _r| {
                    self.describe_quorum()
                })
            }
            ApiKey::BrokerRegistration => {
                route!((api, version, frame), BrokerRegistrationRequest, |_, r| {
                    self.on_active(r, |c, r| {
                        broker_lifecycle::broker_registration(c, version, r)
                    })
                })
            }
            ApiKey::BrokerHeartbeat => {
                route!((api, version, frame), BrokerHeartbeatRequest, |_, r| {
                    self.on_active(r, |c, r| broker_lifecycle::broker_heartbeat(c, version, r))
                })
            }
            ApiKey::AlterPartition => {
                route!((api, version, frame), AlterPartitionRequest, |_, r| {
                    self.on_active(
                        r,
                        |c, r| async move { alter_partition::answer(c, version, r) },
                    )
                })
            }
            ApiKey::AllocateProducerIds => {
                route!((api, version, frame), AllocateProducerIdsRequest, |_, r| {
                    self.on_active(r, |c, r| producer_ids::allocate_producer_ids(c, version, r))
                })
            }
            ApiKey::CreateTopics => route!((api, version, frame), CreateTopicsRequest, |_, r| {
                self.on_active(r, |c, r| topics::create_topics(c, version, r))
            }),
            ApiKey::DeleteTopics => route!((api, version, frame), DeleteTopicsRequest, |_, r| {
                self.on_active(r, |c, r| topics::delete_topics(c, version, r))
            }),
            ApiKey::CreatePartitions => {
                route!((api, version, frame), CreatePartitionsRequest, |_, r| {
                    self.on_active(r, |c, r| topics::create_partitions(c, version, r))
                })
            }
            ApiKey::ElectLeaders => route!((api, version, frame), ElectLeadersRequest, |_, r| {
                self.on_active(r, |c, r| elect_leaders::elect_leaders(c, version, r))
            }),
            ApiKey::AlterPartitionReassignments => route!(
                (api, version, frame),
                AlterPartitionReassignmentsRequest,
                |_, r| self.on_active(r, reassignments::alter)
            ),
            ApiKey::ListPartitionReassignments => route!(
                (api, version, frame),
                ListPartitionReassignmentsRequest,
                |_, r| self.on_active(r, reassignments::list)
            ),
            ApiKey::UnregisterBroker => {
                route!((api, version, frame), UnregisterBrokerRequest, |_, r| self
                    .on_active(r, unregister_broker::unregister_broker))
            }
            ApiKey::AlterConfigs => route!((api, version, frame), AlterConfigsRequest, |_, r| {
                self.on_active(r, |c, r| configs::alter_configs(c, version, r))
            }),
            ApiKey::IncrementalAlterConfigs => {
                route!(
                    (api, version, frame),
                    IncrementalAlterConfigsRequest,
                    |_, r| {
                        self.on_active(r, |c, r| configs::incremental_alter_configs(c, version, r))
                    }
                )
            }
            other => Err(DispatchError::UnknownApi(other as i16)),
        }
    }
}
