//! ElectLeaders (KIP-460): preferred or unclean leader elections, run on the
//! active controller (brokers forward the request there).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use std::collections::HashMap;

use crate::controller::{Controller, ElectionType};

pub async fn elect_leaders(
    controller: &Controller,
    version: i16,
    request: ElectLeadersRequest,
) -> ElectLeadersResponse {
    // v0 has no election type: it asks for preferred leaders.
    let code = if version == 0 {
        0
    } else {
        request.election_type
    };
    let Some(kind) = ElectionType::from_code(code) else {
        return failed(
            &request,
            version,
            ResponseError::InvalidRequest.code(),
            &format!("Unknown election type {code}: expected 0 (preferred) or 1 (unclean)."),
        );
    };
    let partitions = request.topic_partitions.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p)))
            .collect()
    });
    match controller.elect_leaders(kind, partitions) {
        Ok(results) => {
            ElectLeadersResponse::default().with_replica_election_results(by_topic(results, |r| {
                match r {
                    Ok(()) => (0, None),
                    Err(e) => (e.code(), Some(e.message)),
                }
            }))
        }
        Err(error) => {
            let e = error.to_api_error();
            failed(&request, version, e.code(), &e.message)
        }
    }
}

/// Every requested partition failed with one error, which v1+ also gives as
/// the top-level error.
pub fn failed(
    request: &ElectLeadersRequest,
    version: i16,
    code: i16,
    message: &str,
) -> ElectLeadersResponse {
    let top_level = if version >= 1 { code } else { 0 };
    let response = ElectLeadersResponse::default().with_error_code(top_level);
    let Some(topics) = &request.topic_partitions else {
        return response;
    };
    let results = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p, ())))
        .collect();
    response
        .with_replica_election_results(by_topic(results, |()| (code, Some(message.to_string()))))
}

/// A response fit for `version`: v0 has no top-level error (a forwarded
/// answer may carry one); its partitions carry their own.
pub fn at_version(mut response: ElectLeadersResponse, version: i16) -> ElectLeadersResponse {
    if version == 0 {
        response.error_code = 0;
    }
    response
}

/// Results grouped by topic, in the order topics first appear.
fn by_topic<T>(
    results: Vec<(String, i32, T)>,
    outcome: impl Fn(T) -> (i16, Option<String>),
) -> Vec<ReplicaElectionResult> {
    let mut grouped: Vec<ReplicaElectionResult> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (topic, partition, result) in results {
        let (error_code, message) = outcome(result);
        let entry = PartitionResult::default()
            .with_partition_id(partition)
            .with_error_code(error_code)
            .with_error_message(message.map(StrBytes::from_string));
        let slot = *index.entry(topic.clone()).or_insert_with(|| {
            grouped.push(
                ReplicaElectionResult::default()
                    .with_topic(TopicName(StrBytes::from_string(topic))),
            );
            grouped.len() - 1
        });
        grouped[slot].partition_result.push(entry);
    }
    grouped
}
