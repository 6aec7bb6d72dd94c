//! CreateTopics (v2-7), DeleteTopics (v1-6) and CreatePartitions (v0-3).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    BrokerId, CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest,
    CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::controller::{
    run_checked, ApiError, Controller, CreatedTopic, NewPartitions, NewTopic, TopicRef,
};

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn new_topic(t: &CreatableTopic) -> NewTopic {
    NewTopic {
        name: t.name.0.to_string(),
        num_partitions: t.num_partitions,
        replication_factor: t.replication_factor,
        assignments: t
            .assignments
            .iter()
            .map(|a| {
                (
                    a.partition_index,
                    a.broker_ids.iter().map(|b| b.0).collect(),
                )
            })
            .collect(),
        configs: t
            .configs
            .iter()
            .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
            .collect(),
    }
}

/// The wire form of `topic`, for requests this broker sends the controller itself.
pub fn creatable_topic(topic: &NewTopic) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(TopicName(text(&topic.name)))
        .with_num_partitions(topic.num_partitions)
        .with_replication_factor(topic.replication_factor)
        .with_assignments(
            topic
                .assignments
                .iter()
                .map(|(partition, replicas)| {
                    CreatableReplicaAssignment::default()
                        .with_partition_index(*partition)
                        .with_broker_ids(replicas.iter().map(|&b| BrokerId(b)).collect())
                })
                .collect(),
        )
        .with_configs(
            topic
                .configs
                .iter()
                .map(|(name, value)| {
                    CreatableTopicConfig::default()
                        .with_name(text(name))
                        .with_value(value.as_deref().map(text))
                })
                .collect(),
        )
}

pub async fn create_topics(
    controller: &Controller,
    version: i16,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let items = request.topics.iter().map(|t| Ok(new_topic(t))).collect();
    let results = run_checked(items, |topics| {
        controller.create_topics(topics, request.validate_only)
    });
    let topics = request
        .topics
        .iter()
        .zip(results)
        .map(|(t, result)| created_result(controller, version, t.name.clone(), result))
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}

fn created_result(
    controller: &Controller,
    version: i16,
    name: TopicName,
    result: Result<CreatedTopic, ApiError>,
) -> CreatableTopicResult {
    let base = CreatableTopicResult::default().with_name(name);
    let created = match result {
        Ok(created) => created,
        Err(e) => {
            return base
                .with_error_code(e.code())
                .with_error_message(Some(text(&e.message)))
        }
    };
    let mut result = base;
    if version >= 7 {
        result = result.with_topic_id(created.topic_id);
    }
    // v5+ tells the client what it got, so it need not describe the topic.
    if version >= 5 {
        let configs = controller
            .describe_topic_configs(&created.configs)
            .into_iter()
            .map(|e| {
                CreatableTopicConfigs::default()
                    .with_name(text(&e.name))
                    .with_value(e.value.as_deref().map(text))
                    .with_read_only(e.read_only)
                    .with_config_source(e.source as i8)
                    .with_is_sensitive(false)
            })
            .collect();
        result = result
            .with_num_partitions(created.num_partitions)
            .with_replication_factor(created.replication_factor)
            .with_configs(Some(configs));
    }
    result
}

pub async fn delete_topics(
    controller: &Controller,
    version: i16,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    // v6 names topics by name or id; earlier versions by name only.
    let refs: Vec<Result<TopicRef, ApiError>> = if version >= 6 {
        request
            .topics
            .iter()
            .map(|t| match (&t.name, t.topic_id.is_nil()) {
                (_, false) => Ok(TopicRef::Id(t.topic_id)),
                (Some(name), true) => Ok(TopicRef::Name(name.0.to_string())),
                (None, true) => Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    "Neither topic name nor id were specified.",
                )),
            })
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|n| Ok(TopicRef::Name(n.0.to_string())))
            .collect()
    };
    let asked: Vec<(Option<String>, Uuid)> = refs
        .iter()
        .map(|r| match r {
            Ok(TopicRef::Name(name)) => (Some(name.clone()), Uuid::nil()),
            Ok(TopicRef::Id(id)) => (None, *id),
            Err(_) => (None, Uuid::nil()),
        })
        .collect();
    let results = run_checked(refs, |refs| controller.delete_topics(refs));
    let responses = asked
        .into_iter()
        .zip(results)
        .map(|((name, id), result)| {
            let (name, id, error) = match result {
                Ok(deleted) => (Some(deleted.name), deleted.id, None),
                Err(e) => (name, id, Some(e)),
            };
            let mut r = DeletableTopicResult::default()
                .with_name(name.map(|n| TopicName(text(&n))))
                .with_error_code(error.as_ref().map_or(0, ApiError::code));
            if version >= 6 {
                r = r.with_topic_id(id);
            }
            if version >= 5 {
                r = r.with_error_message(error.map(|e| text(&e.message)));
            }
            r
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}

pub async fn create_partitions(
    controller: &Controller,
    _version: i16,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let items = request
        .topics
        .iter()
        .map(|t| {
            Ok(NewPartitions {
                topic: t.name.0.to_string(),
                count: t.count,
                // Empty is treated as null: some client libraries default to it.
                assignments: t
                    .assignments
                    .as_ref()
                    .filter(|l| !l.is_empty())
                    .map(|list| {
                        list.iter()
                            .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                            .collect()
                    }),
            })
        })
        .collect();
    let results = run_checked(items, |items| {
        controller.create_partitions(items, request.validate_only)
    });
    let results = request
        .topics
        .iter()
        .zip(results)
        .map(|(t, result)| {
            let r = CreatePartitionsTopicResult::default().with_name(t.name.clone());
            match result {
                Ok(()) => r,
                Err(e) => r
                    .with_error_code(e.code())
                    .with_error_message(Some(text(&e.message))),
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}

#[cfg(test)]
mod tests;
