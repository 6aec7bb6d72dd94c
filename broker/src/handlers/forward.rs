//! Requests that change metadata run on the active controller: locally when
//! this node is it, otherwise forwarded there (as Kafka brokers forward them)
//! and answered with its response once the change is committed.

use std::future::Future;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    alter_configs_response, create_partitions_response, create_topics_response,
    delete_topics_request, delete_topics_response, incremental_alter_configs_response,
    AllocateProducerIdsRequest, AlterConfigsRequest, AlterConfigsResponse,
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, AlterPartitionRequest,
    BrokerHeartbeatRequest, BrokerRegistrationRequest, CreatePartitionsRequest,
    CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse, ElectLeadersRequest, ElectLeadersResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, UnregisterBrokerRequest,
    UnregisterBrokerResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::client::{ClientError, ControllerRpc};
use crate::controller::Controller;
use crate::server::BrokerState;

/// How long a forwarded request may look for the active controller; a
/// client's own request timeout is usually 30 s, so it hears back first.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(25);

/// A controller request whose every item can be failed with one error.
pub trait Forwardable: ControllerRpc + Sized {
    fn fail_all(&self, code: i16, message: &str) -> Self::Response;

    /// The request as it must look at the newest version, which the forwarder sends: a
    /// field that only older versions carry would be left out on the wire.
    fn for_newest_version(self) -> Self {
        self
    }
}

/// Runs `local` when this node is the active controller, else forwards.
pub async fn via_controller<'a, R, F, Fut>(
    state: &'a BrokerState,
    request: R,
    local: F,
) -> R::Response
where
    R: Forwardable,
    F: FnOnce(&'a Controller, R) -> Fut,
    Fut: Future<Output = R::Response>,
{
    if state.controller_is_local() {
        return run_blocking(local(&state.controller, request));
    }
    let request = request.for_newest_version();
    match state
        .controller_channel
        .send(&request, FORWARD_TIMEOUT)
        .await
    {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!(%error, "forwarding to the active controller failed");
            let code = match error {
                ClientError::NoController(_) | ClientError::Timeout(_) => {
                    ResponseError::RequestTimedOut.code()
                }
                _ => ResponseError::UnknownServerError.code(),
            };
            request.fail_all(code, &error.to_string())
        }
    }
}

/// Runs a controller operation, which blocks until its records are committed,
/// without holding up the runtime's other tasks (Raft fetches among them).
pub fn run_blocking<T>(operation: impl Future<Output = T>) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(operation))
}

fn message(text: &str) -> Option<StrBytes> {
    Some(StrBytes::from_string(text.to_string()))
}

const NOT_CONTROLLER: i16 = ResponseError::NotController.code();

impl ControllerRpc for CreateTopicsRequest {
    fn not_controller(response: &CreateTopicsResponse) -> bool {
        response
            .topics
            .iter()
            .any(|t| t.error_code == NOT_CONTROLLER)
    }
}

impl Forwardable for CreateTopicsRequest {
    fn fail_all(&self, code: i16, text: &str) -> CreateTopicsResponse {
        CreateTopicsResponse::default().with_topics(
            self.topics
                .iter()
                .map(|t| {
                    create_topics_response::CreatableTopicResult::default()
                        .with_name(t.name.clone())
                        .with_error_code(code)
                        .with_error_message(message(text))
                        .with_num_partitions(-1)
                        .with_replication_factor(-1)
                })
                .collect(),
        )
    }
}

impl ControllerRpc for DeleteTopicsRequest {
    fn not_controller(response: &DeleteTopicsResponse) -> bool {
        response
            .responses
            .iter()
            .any(|t| t.error_code == NOT_CONTROLLER)
    }
}

impl Forwardable for DeleteTopicsRequest {
    fn fail_all(&self, code: i16, text: &str) -> DeleteTopicsResponse {
        // v6 names topics in `topics`, older versions in `topic_names`.
        let by_state = self.topics.iter().map(|t| (t.name.clone(), t.topic_id));
        let by_name = self
            .topic_names
            .iter()
            .map(|n| (Some(n.clone()), Default::default()));
        DeleteTopicsResponse::default().with_responses(
            by_state
                .chain(by_name)
                .map(|(name, topic_id)| {
                    delete_topics_response::DeletableTopicResult::default()
                        .with_name(name)
                        .with_topic_id(topic_id)
                        .with_error_code(code)
                        .with_error_message(message(text))
                })
                .collect(),
        )
    }

    /// Up to v5 topics are named in `topic_names`, from v6 in `topics`: a v4 request
    /// forwarded as v6 reached the controller with no topics and was answered with none,
    /// and the client waited for its results until it timed out.
    fn for_newest_version(mut self) -> Self {
        for name in std::mem::take(&mut self.topic_names) {
            self.topics
                .push(delete_topics_request::DeleteTopicState::default().with_name(Some(name)));
        }
        self
    }
}

impl ControllerRpc for CreatePartitionsRequest {
    fn not_controller(response: &CreatePartitionsResponse) -> bool {
        response
            .results
            .iter()
            .any(|t| t.error_code == NOT_CONTROLLER)
    }
}

impl Forwardable for CreatePartitionsRequest {
    fn fail_all(&self, code: i16, text: &str) -> CreatePartitionsResponse {
        CreatePartitionsResponse::default().with_results(
            self.topics
                .iter()
                .map(|t| {
                    create_partitions_response::CreatePartitionsTopicResult::default()
                        .with_name(t.name.clone())
                        .with_error_code(code)
                        .with_error_message(message(text))
                })
                .collect(),
        )
    }
}

impl ControllerRpc for AlterConfigsRequest {
    fn not_controller(response: &AlterConfigsResponse) -> bool {
        response
            .responses
            .iter()
            .any(|r| r.error_code == NOT_CONTROLLER)
    }
}

impl Forwardable for AlterConfigsRequest {
    fn fail_all(&self, code: i16, text: &str) -> AlterConfigsResponse {
        AlterConfigsResponse::default().with_responses(
            self.resources
                .iter()
                .map(|r| {
                    alter_configs_response::AlterConfigsResourceResponse::default()
                        .with_resource_type(r.resource_type)
                        .with_resource_name(r.resource_name.clone())
                        .with_error_code(code)
                        .with_error_message(message(text))
                })
                .collect(),
        )
    }
}

impl ControllerRpc for IncrementalAlterConfigsRequest {
    fn not_controller(response: &IncrementalAlterConfigsResponse) -> bool {
        response
            .responses
            .iter()
            .any(|r| r.error_code == NOT_CONTROLLER)
    }
}

impl Forwardable for IncrementalAlterConfigsRequest {
    fn fail_all(&self, code: i16, text: &str) -> IncrementalAlterConfigsResponse {
        IncrementalAlterConfigsResponse::default().with_responses(
            self.resources
                .iter()
                .map(|r| {
                    incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                        .with_resource_type(r.resource_type)
                        .with_resource_name(r.resource_name.clone())
                        .with_error_code(code)
                        .with_error_message(message(text))
                })
                .collect(),
        )
    }
}

/// Requests answered with one top-level error code.
macro_rules! fail_top_level {
    ($($request:ty),* $(,)?) => {
        $(impl Forwardable for $request {
            fn fail_all(&self, code: i16, _text: &str) -> Self::Response {
                Self::Response::default().with_error_code(code)
            }
        })*
    };
}

fail_top_level!(
    AllocateProducerIdsRequest,
    AlterPartitionRequest,
    BrokerRegistrationRequest,
    BrokerHeartbeatRequest,
);

impl ControllerRpc for ElectLeadersRequest {
    fn not_controller(response: &ElectLeadersResponse) -> bool {
        response.error_code == NOT_CONTROLLER
            || response
                .replica_election_results
                .iter()
                .flat_map(|t| &t.partition_result)
                .any(|p| p.error_code == NOT_CONTROLLER)
    }
}

impl Forwardable for ElectLeadersRequest {
    fn fail_all(&self, code: i16, text: &str) -> ElectLeadersResponse {
        // Forwarded requests are sent at v1+, where the top-level error exists.
        super::elect_leaders::failed(self, 2, code, text)
    }
}

impl ControllerRpc for AlterPartitionReassignmentsRequest {
    fn not_controller(response: &AlterPartitionReassignmentsResponse) -> bool {
        response.error_code == NOT_CONTROLLER
            || response
                .responses
                .iter()
                .flat_map(|t| &t.partitions)
                .any(|p| p.error_code == NOT_CONTROLLER)
    }
}

impl Forwardable for AlterPartitionReassignmentsRequest {
    fn fail_all(&self, code: i16, text: &str) -> AlterPartitionReassignmentsResponse {
        super::reassignments::alter_failed(self, code, text)
    }
}

impl ControllerRpc for ListPartitionReassignmentsRequest {
    fn not_controller(response: &ListPartitionReassignmentsResponse) -> bool {
        response.error_code == NOT_CONTROLLER
    }
}

impl Forwardable for ListPartitionReassignmentsRequest {
    fn fail_all(&self, code: i16, text: &str) -> ListPartitionReassignmentsResponse {
        ListPartitionReassignmentsResponse::default()
            .with_error_code(code)
            .with_error_message(message(text))
    }
}

impl ControllerRpc for UnregisterBrokerRequest {
    fn not_controller(response: &UnregisterBrokerResponse) -> bool {
        response.error_code == NOT_CONTROLLER
    }
}

impl Forwardable for UnregisterBrokerRequest {
    fn fail_all(&self, code: i16, text: &str) -> UnregisterBrokerResponse {
        super::unregister_broker::failed(code, text)
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::{DeleteTopicsRequest, TopicName};
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

    use super::Forwardable;

    #[test]
    fn delete_topics_by_name_survives_forwarding_at_the_newest_version() {
        let name = TopicName(StrBytes::from_static_str("t1"));
        let old = DeleteTopicsRequest::default().with_topic_names(vec![name.clone()]);
        let mut wire = bytes::BytesMut::new();
        old.for_newest_version().encode(&mut wire, 6).unwrap();
        let seen = DeleteTopicsRequest::decode(&mut wire.freeze(), 6).unwrap();
        assert_eq!(seen.topics.len(), 1);
        assert_eq!(seen.topics[0].name, Some(name));
        assert!(seen.topic_names.is_empty());
    }
}
