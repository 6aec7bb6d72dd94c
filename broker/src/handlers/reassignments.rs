//! AlterPartitionReassignments and ListPartitionReassignments (KIP-455), run
//! on the active controller (brokers forward them there).

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::controller::{ApiError, Controller, OngoingReassignment};

fn timeout(ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

pub async fn alter(
    controller: &Controller,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let moves = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                let target = p
                    .replicas
                    .as_ref()
                    .map(|r| r.iter().map(|id| id.0).collect());
                (t.name.0.to_string(), p.partition_index, target)
            })
        })
        .collect();
    match controller.alter_partition_reassignments(moves, timeout(request.timeout_ms)) {
        Ok(results) => {
            let mut results = results.into_iter();
            answer(&request, || {
                results.next().map_or_else(
                    || (ResponseError::UnknownServerError.code(), None),
                    |(_, _, r)| outcome(r),
                )
            })
        }
        Err(error) => {
            let e = error.to_api_error();
            alter_failed(&request, e.code(), &e.message)
        }
    }
}

fn outcome(result: Result<(), ApiError>) -> (i16, Option<String>) {
    match result {
        Ok(()) => (0, None),
        Err(e) => (e.code(), Some(e.message)),
    }
}

/// The whole request failed: the top level and every partition carry the error.
pub fn alter_failed(
    request: &AlterPartitionReassignmentsRequest,
    code: i16,
    message: &str,
) -> AlterPartitionReassignmentsResponse {
    answer(request, || (code, Some(message.to_string())))
        .with_error_code(code)
        .with_error_message(Some(StrBytes::from_string(message.to_string())))
}

/// A response answering each partition of `request`, in its order.
fn answer(
    request: &AlterPartitionReassignmentsRequest,
    mut each: impl FnMut() -> (i16, Option<String>),
) -> AlterPartitionReassignmentsResponse {
    let responses = request
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let (code, message) = each();
                    ReassignablePartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                        .with_error_message(message.map(StrBytes::from_string))
                })
                .collect();
            ReassignableTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    AlterPartitionReassignmentsResponse::default().with_responses(responses)
}

pub async fn list(
    controller: &Controller,
    request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let wanted = request.topics.map(|topics| {
        topics
            .iter()
            .flat_map(|t| {
                t.partition_indexes
                    .iter()
                    .map(|p| (t.name.0.to_string(), *p))
            })
            .collect()
    });
    let ongoing = controller.list_partition_reassignments(wanted);
    ListPartitionReassignmentsResponse::default().with_topics(by_topic(ongoing))
}

/// Moves grouped by topic: consecutive moves of one topic share an entry.
fn by_topic(ongoing: Vec<OngoingReassignment>) -> Vec<OngoingTopicReassignment> {
    let ids = |ids: Vec<i32>| ids.into_iter().map(BrokerId).collect();
    let mut topics: Vec<OngoingTopicReassignment> = Vec::new();
    for r in ongoing {
        let partition = OngoingPartitionReassignment::default()
            .with_partition_index(r.partition)
            .with_replicas(ids(r.replicas))
            .with_adding_replicas(ids(r.adding))
            .with_removing_replicas(ids(r.removing));
        match topics.last_mut().filter(|t| t.name.0.as_str() == r.topic) {
            Some(topic) => topic.partitions.push(partition),
            None => topics.push(
                OngoingTopicReassignment::default()
                    .with_name(TopicName(StrBytes::from_string(r.topic)))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    topics
}
