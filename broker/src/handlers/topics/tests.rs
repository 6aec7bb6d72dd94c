use std::sync::Arc;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::protocol::Encodable;

use super::*;
use crate::config::BrokerConfig;
use crate::controller::MemoryMetadataLog;

fn controller() -> Arc<Controller> {
    MemoryMetadataLog::new().open_controller(&BrokerConfig::default())
}

fn name(s: &str) -> TopicName {
    TopicName(text(s))
}

fn encodes<T: Encodable>(message: &T, version: i16) {
    let mut buf = bytes::BytesMut::new();
    message.encode(&mut buf, version).unwrap();
    assert_eq!(buf.len(), message.compute_size(version).unwrap());
}

fn creatable(topic: &str, partitions: i32) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(name(topic))
        .with_num_partitions(partitions)
        .with_replication_factor(-1)
}

#[tokio::test]
async fn create_topics_at_every_version() {
    let c = controller();
    for version in 2..=7 {
        let good = format!("t{version}");
        let with_config = creatable(&good, 2).with_configs(vec![CreatableTopicConfig::default()
            .with_name(text("retention.ms"))
            .with_value(Some(text("100")))]);
        let request = CreateTopicsRequest::default().with_topics(vec![
            with_config,
            creatable("bad name", 1),
            creatable(&good, 1),
        ]);
        let response = create_topics(&c, version, request).await;
        encodes(&response, version);
        let [ok, bad, dup] = &response.topics[..] else {
            panic!("three results expected");
        };
        // The same name twice in one request: both refused.
        assert_eq!(ok.error_code, ResponseError::InvalidRequest.code());
        assert_eq!(dup.error_code, ResponseError::InvalidRequest.code());
        assert_eq!(bad.error_code, ResponseError::InvalidTopicException.code());
        assert!(bad.error_message.is_some());

        let request = CreateTopicsRequest::default().with_topics(vec![creatable(&good, 2)
            .with_configs(vec![CreatableTopicConfig::default()
                .with_name(text("retention.ms"))
                .with_value(Some(text("100")))])]);
        let response = create_topics(&c, version, request).await;
        encodes(&response, version);
        let ok = &response.topics[0];
        assert_eq!(ok.error_code, 0, "{:?}", ok.error_message);
        let topic = c.image().topic(&good).unwrap().clone();
        if version >= 7 {
            assert_eq!(ok.topic_id, topic.id);
        } else {
            assert!(ok.topic_id.is_nil());
        }
        if version >= 5 {
            assert_eq!((ok.num_partitions, ok.replication_factor), (2, 1));
            let configs = ok.configs.as_ref().unwrap();
            let retention = configs
                .iter()
                .find(|e| e.name.as_str() == "retention.ms")
                .unwrap();
            assert_eq!(retention.value.as_ref().unwrap().as_str(), "100");
            assert_eq!(retention.config_source, 1);
        }
    }
}

#[tokio::test]
async fn create_topics_validate_only_creates_nothing() {
    let c = controller();
    let request = CreateTopicsRequest::default()
        .with_topics(vec![creatable("t", 3)])
        .with_validate_only(true);
    let response = create_topics(&c, 7, request).await;
    assert_eq!(response.topics[0].error_code, 0);
    assert_eq!(response.topics[0].num_partitions, 3);
    assert!(c.image().topic("t").is_none());
}

#[tokio::test]
async fn delete_topics_at_every_version() {
    let c = controller();
    for version in 1..=6 {
        let topic = format!("d{version}");
        c.create_topics(vec![NewTopic::with_defaults(&topic)], false)
            .unwrap();
        let id = c.image().topic(&topic).unwrap().id;
        let request = if version >= 6 {
            DeleteTopicsRequest::default().with_topics(vec![
                DeleteTopicState::default().with_topic_id(id),
                DeleteTopicState::default().with_name(Some(name("missing"))),
                DeleteTopicState::default(),
            ])
        } else {
            DeleteTopicsRequest::default().with_topic_names(vec![name(&topic), name("missing")])
        };
        let response = delete_topics(&c, version, request).await;
        encodes(&response, version);
        let first = &response.responses[0];
        assert_eq!(first.error_code, 0);
        assert_eq!(first.name.as_ref().unwrap().0.as_str(), topic);
        let missing = &response.responses[1];
        assert_eq!(
            missing.error_code,
            ResponseError::UnknownTopicOrPartition.code()
        );
        assert_eq!(missing.error_message.is_some(), version >= 5);
        if version >= 6 {
            assert_eq!(first.topic_id, id);
            assert_eq!(
                response.responses[2].error_code,
                ResponseError::InvalidRequest.code()
            );
        }
        assert!(c.image().topic(&topic).is_none());
    }
}

#[tokio::test]
async fn create_partitions_at_every_version() {
    let c = controller();
    c.create_topics(vec![NewTopic::with_defaults("p")], false)
        .unwrap();
    for version in 0..=3 {
        let count = 2 + i32::from(version);
        let request = CreatePartitionsRequest::default().with_topics(vec![
            CreatePartitionsTopic::default()
                .with_name(name("p"))
                .with_count(count)
                .with_assignments(None),
            CreatePartitionsTopic::default()
                .with_name(name("nope"))
                .with_count(2)
                .with_assignments(None),
        ]);
        let response = create_partitions(&c, version, request).await;
        encodes(&response, version);
        assert_eq!(response.results[0].error_code, 0);
        assert!(response.results[0].error_message.is_none());
        assert_eq!(
            response.results[1].error_code,
            ResponseError::UnknownTopicOrPartition.code()
        );
        assert_eq!(
            c.image().topic("p").unwrap().partitions.len(),
            count as usize
        );
    }
}
