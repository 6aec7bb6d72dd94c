use std::sync::Arc;

use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request as incremental;
use kafka_protocol::protocol::Encodable;

use super::*;
use crate::config::BrokerConfig;
use crate::controller::{MemoryMetadataLog, NewTopic};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

fn controller() -> Arc<Controller> {
    let c = MemoryMetadataLog::new().open_controller(&BrokerConfig::default());
    c.create_topics(vec![NewTopic::with_defaults("t")], false)
        .unwrap();
    c
}

fn encodes<T: Encodable>(message: &T, version: i16) {
    let mut buf = bytes::BytesMut::new();
    message.encode(&mut buf, version).unwrap();
    assert_eq!(buf.len(), message.compute_size(version).unwrap());
}

fn resource(kind: i8, name: &str) -> DescribeConfigsResource {
    DescribeConfigsResource::default()
        .with_resource_type(kind)
        .with_resource_name(text(name))
}

#[tokio::test]
async fn describe_configs_at_every_version() {
    let c = controller();
    for version in 1..=4 {
        let request = DescribeConfigsRequest::default()
            .with_include_synonyms(true)
            .with_resources(vec![
                resource(TOPIC, "t").with_configuration_keys(Some(vec![text("retention.ms")])),
                resource(BROKER, "1"),
                resource(TOPIC, "missing"),
                resource(8, "logger"),
            ]);
        let response = describe_configs(&c, version, request).await;
        encodes(&response, version);
        let [topic, broker, missing, logger] = &response.results[..] else {
            panic!("four results expected");
        };
        assert_eq!(topic.error_code, 0);
        assert_eq!(topic.configs.len(), 1);
        let retention = &topic.configs[0];
        assert_eq!(retention.config_source, 5, "DEFAULT_CONFIG");
        assert!(!retention.read_only && !retention.is_sensitive);
        assert_eq!(retention.synonyms[0].name.as_str(), "log.retention.ms");
        assert!(retention.documentation.is_none());
        assert_eq!(retention.config_type, if version >= 3 { 5 } else { 0 });
        assert!(broker.configs.iter().all(|e| e.read_only));
        assert!(broker
            .configs
            .iter()
            .any(|e| e.name.as_str() == "num.partitions"));
        assert_eq!(
            missing.error_code,
            ResponseError::UnknownTopicOrPartition.code()
        );
        assert_eq!(logger.error_code, ResponseError::InvalidRequest.code());
    }
    let request = DescribeConfigsRequest::default().with_resources(vec![resource(TOPIC, "t")]);
    let response = describe_configs(&c, 4, request).await;
    assert!(response.results[0]
        .configs
        .iter()
        .all(|e| e.synonyms.is_empty()));
}

#[tokio::test]
async fn alter_configs_at_every_version() {
    let c = controller();
    for version in 0..=2 {
        let value = format!("{}", 1000 + version);
        let request = AlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(TOPIC)
                .with_resource_name(text("t"))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(text("retention.ms"))
                    .with_value(Some(text(&value)))]),
            AlterConfigsResource::default()
                .with_resource_type(BROKER)
                .with_resource_name(text("1"))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(text("num.partitions"))
                    .with_value(Some(text("3")))]),
        ]);
        let response = alter_configs(&c, version, request).await;
        encodes(&response, version);
        assert_eq!(response.responses[0].error_code, 0);
        assert!(response.responses[0].error_message.is_none());
        assert_eq!(
            response.responses[1].error_code,
            ResponseError::InvalidConfig.code()
        );
        assert!(response.responses[1].error_message.is_some());
        assert_eq!(c.image().topic("t").unwrap().configs["retention.ms"], value);
    }
}

#[tokio::test]
async fn incremental_alter_configs_at_every_version() {
    let c = controller();
    let op = |name: &str, code: i8, value: Option<&str>| {
        incremental::AlterableConfig::default()
            .with_name(text(name))
            .with_config_operation(code)
            .with_value(value.map(text))
    };
    let topic = |configs| {
        incremental::AlterConfigsResource::default()
            .with_resource_type(TOPIC)
            .with_resource_name(text("t"))
            .with_configs(configs)
    };
    for version in 0..=1 {
        let request = IncrementalAlterConfigsRequest::default()
            .with_resources(vec![topic(vec![op("cleanup.policy", 2, Some("compact"))])]);
        let response = incremental_alter_configs(&c, version, request).await;
        encodes(&response, version);
        assert_eq!(response.responses[0].error_code, 0);
        assert_eq!(
            c.image().topic("t").unwrap().configs["cleanup.policy"],
            "delete,compact"
        );
        let request = IncrementalAlterConfigsRequest::default()
            .with_resources(vec![topic(vec![op("cleanup.policy", 1, None)])]);
        incremental_alter_configs(&c, version, request).await;
        assert!(c.image().topic("t").unwrap().configs.is_empty());

        // This node's exclusion, as kafka-configs --entity-type brokers sets it.
        let broker = |configs| {
            incremental::AlterConfigsResource::default()
                .with_resource_type(BROKER)
                .with_resource_name(text("1"))
                .with_configs(configs)
        };
        let request = IncrementalAlterConfigsRequest::default()
            .with_resources(vec![broker(vec![op("broker.excluded", 0, Some("true"))])]);
        let response = incremental_alter_configs(&c, version, request).await;
        assert_eq!(response.responses[0].error_code, 0);
        assert!(c.image().is_excluded(1));
        let request = IncrementalAlterConfigsRequest::default()
            .with_resources(vec![broker(vec![op("broker.excluded", 1, None)])]);
        incremental_alter_configs(&c, version, request).await;
        assert!(!c.image().is_excluded(1));

        let request = IncrementalAlterConfigsRequest::default()
            .with_resources(vec![topic(vec![op("retention.ms", 9, Some("1"))])]);
        let response = incremental_alter_configs(&c, version, request).await;
        encodes(&response, version);
        assert_eq!(
            response.responses[0].error_code,
            ResponseError::InvalidRequest.code()
        );
    }
}
