//! DescribeConfigs: effective topic configs with their sources, and this
//! broker's static configs and dynamic ones. Reads one image; never takes the writer lock.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;

use super::configs::ConfigResource;
use super::error::ApiError;
use super::quorum::Controller;
use crate::config::{BrokerConfig, Listener};
use crate::metadata::image::EXCLUDED_KEY;
use crate::storage::LogConfig;

/// Where a value comes from (Kafka's DescribeConfigs ConfigSource ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum ConfigSource {
    TopicConfig = 1,
    DynamicBrokerConfig = 2,
    DynamicDefaultBrokerConfig = 3,
    StaticBrokerConfig = 4,
    DefaultConfig = 5,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSynonym {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
}

/// One described key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
    pub read_only: bool,
    /// Kafka's ConfigType id (1 boolean, 2 string, 3 int, 5 long, 6 double, 7 list).
    pub config_type: i8,
    /// This key's value at each level, most specific first.
    pub synonyms: Vec<ConfigSynonym>,
}

/// Each topic key and the broker key that supplies its default.
const BROKER_SYNONYMS: &[(&str, &str)] = &[
    ("cleanup.policy", "log.cleanup.policy"),
    ("compression.type", "compression.type"),
    ("delete.retention.ms", "log.cleaner.delete.retention.ms"),
    ("flush.messages", "log.flush.interval.messages"),
    ("flush.ms", "log.flush.interval.ms"),
    ("index.interval.bytes", "log.index.interval.bytes"),
    ("max.message.bytes", "message.max.bytes"),
    ("message.timestamp.type", "log.message.timestamp.type"),
    (
        "min.cleanable.dirty.ratio",
        "log.cleaner.min.cleanable.ratio",
    ),
    ("min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms"),
    ("min.insync.replicas", "min.insync.replicas"),
    ("retention.bytes", "log.retention.bytes"),
    ("retention.ms", "log.retention.ms"),
    ("segment.bytes", "log.segment.bytes"),
    ("segment.index.bytes", "log.index.size.max.bytes"),
    ("segment.ms", "log.roll.ms"),
    (
        "unclean.leader.election.enable",
        "unclean.leader.election.enable",
    ),
];

fn broker_key(topic_key: &str) -> &'static str {
    BROKER_SYNONYMS
        .iter()
        .find(|(t, _)| *t == topic_key)
        .map_or("", |(_, b)| b)
}

impl Controller {
    /// The entries of `resource`, limited to `keys` when given (unknown keys are skipped).
    pub fn describe_configs(
        &self,
        resource: &ConfigResource,
        keys: Option<&[String]>,
    ) -> Result<Vec<ConfigEntry>, ApiError> {
        let entries = match resource {
            ConfigResource::Topic(name) => self.describe_topic(name)?,
            ConfigResource::Broker(id) => {
                let node_id = self.config().node_id;
                if !id.is_empty() && id.parse::<i32>() != Ok(node_id) {
                    return Err(ApiError::new(
                        ResponseError::InvalidRequest,
                        format!("Broker `{id}` is not this broker ({node_id}): ask that broker."),
                    ));
                }
                let mut entries = describe_broker(self.config());
                entries.extend(self.describe_dynamic_broker(id));
                entries
            }
        };
        Ok(match keys {
            Some(keys) => entries
                .into_iter()
                .filter(|e| keys.contains(&e.name))
                .collect(),
            None => entries,
        })
    }

    /// The dynamic configs (`broker.excluded`, ...) of the broker resource `name`.
    fn describe_dynamic_broker(&self, name: &str) -> Vec<ConfigEntry> {
        let source = if name.is_empty() {
            ConfigSource::DynamicDefaultBrokerConfig
        } else {
            ConfigSource::DynamicBrokerConfig
        };
        let image = self.image();
        let Some(configs) = image.broker_resource_configs(name) else {
            return Vec::new();
        };
        configs
            .iter()
            .map(|(key, value)| ConfigEntry {
                name: key.clone(),
                value: Some(value.clone()),
                source,
                read_only: false,
                config_type: config_type(key),
                synonyms: vec![ConfigSynonym {
                    name: key.clone(),
                    value: Some(value.clone()),
                    source,
                }],
            })
            .collect()
    }

    fn describe_topic(&self, name: &str) -> Result<Vec<ConfigEntry>, ApiError> {
        let image = self.image();
        let topic = image.topic(name).ok_or_else(|| {
            ApiError::new(
                ResponseError::UnknownTopicOrPartition,
                format!("Topic '{name}' does not exist."),
            )
        })?;
        Ok(self.describe_topic_configs(&topic.configs))
    }

    /// Every topic key's effective value for a topic with `overrides`, as
    /// DescribeConfigs and CreateTopics (v5+) report them.
    pub fn describe_topic_configs(&self, overrides: &BTreeMap<String, String>) -> Vec<ConfigEntry> {
        let broker_level = self.log_defaults().describe();
        let kafka_default = LogConfig::from_broker(&BrokerConfig::default()).describe();
        broker_level
            .into_iter()
            .zip(kafka_default)
            .map(|((key, broker_value), (_, default_value))| {
                let mut synonyms = Vec::new();
                if let Some(value) = overrides.get(key) {
                    synonyms.push(ConfigSynonym {
                        name: key.to_string(),
                        value: Some(value.clone()),
                        source: ConfigSource::TopicConfig,
                    });
                }
                synonyms.extend(broker_synonyms(
                    broker_key(key),
                    broker_value,
                    default_value,
                ));
                let first = &synonyms[0];
                ConfigEntry {
                    name: key.to_string(),
                    value: first.value.clone(),
                    source: first.source,
                    read_only: false,
                    config_type: config_type(key),
                    synonyms,
                }
            })
            .collect()
    }
}

/// A broker-level value: static if it differs from Kafka's default, then the default.
fn broker_synonyms(key: &str, value: String, default: String) -> Vec<ConfigSynonym> {
    let mut synonyms = Vec::new();
    if value != default {
        synonyms.push(ConfigSynonym {
            name: key.to_string(),
            value: Some(value),
            source: ConfigSource::StaticBrokerConfig,
        });
    }
    synonyms.push(ConfigSynonym {
        name: key.to_string(),
        value: Some(default),
        source: ConfigSource::DefaultConfig,
    });
    synonyms
}

/// The broker keys users look at, with this broker's values.
fn broker_values(c: &BrokerConfig) -> Vec<(&'static str, Option<String>)> {
    fn listeners(list: &[Listener]) -> Option<String> {
        if list.is_empty() {
            return None;
        }
        let text: Vec<String> = list
            .iter()
            .map(|l| format!("{}://{}:{}", l.name, l.host, l.port))
            .collect();
        Some(text.join(","))
    }
    let mut values = vec![
        ("node.id", Some(c.node_id.to_string())),
        ("broker.id", Some(c.node_id.to_string())),
        ("process.roles", Some(c.roles.to_string())),
        ("listeners", listeners(&c.listeners)),
        ("advertised.listeners", listeners(&c.advertised_listeners)),
        ("broker.rack", c.rack.clone()),
        (
            "log.dirs",
            Some(
                c.log_dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ),
        ("num.partitions", Some(c.num_partitions.to_string())),
        (
            "default.replication.factor",
            Some(c.default_replication_factor.to_string()),
        ),
        (
            "auto.create.topics.enable",
            Some(c.auto_create_topics_enable.to_string()),
        ),
        (
            "delete.topic.enable",
            Some(c.delete_topic_enable.to_string()),
        ),
        ("log.cleaner.enable", Some(c.log_cleaner_enable.to_string())),
        (
            "log.retention.check.interval.ms",
            Some(c.log_retention_check_interval_ms.to_string()),
        ),
        (
            "offsets.topic.num.partitions",
            Some(c.offsets_topic_num_partitions.to_string()),
        ),
        (
            "offsets.retention.minutes",
            Some((c.offsets_retention_ms / 60_000).to_string()),
        ),
        (
            "socket.request.max.bytes",
            Some(c.socket_request_max_bytes.to_string()),
        ),
        (
            "group.initial.rebalance.delay.ms",
            Some(c.group_initial_rebalance_delay_ms.to_string()),
        ),
        (
            "group.min.session.timeout.ms",
            Some(c.group_min_session_timeout_ms.to_string()),
        ),
        (
            "group.max.session.timeout.ms",
            Some(c.group_max_session_timeout_ms.to_string()),
        ),
    ];
    // The log.* keys, formatted exactly as topics show them.
    values.extend(
        LogConfig::from_broker(c)
            .describe()
            .into_iter()
            .map(|(key, value)| (broker_key(key), Some(value))),
    );
    values
}

/// This broker's static configs; all read-only, since they come from server.properties.
fn describe_broker(config: &BrokerConfig) -> Vec<ConfigEntry> {
    let defaults = broker_values(&BrokerConfig::default());
    broker_values(config)
        .into_iter()
        .zip(defaults)
        .map(|((key, value), (_, default))| {
            let mut synonyms = Vec::new();
            if value != default {
                synonyms.push(ConfigSynonym {
                    name: key.to_string(),
                    value: value.clone(),
                    source: ConfigSource::StaticBrokerConfig,
                });
            }
            synonyms.push(ConfigSynonym {
                name: key.to_string(),
                value: default,
                source: ConfigSource::DefaultConfig,
            });
            let source = synonyms[0].source;
            ConfigEntry {
                name: key.to_string(),
                value,
                source,
                read_only: true,
                config_type: config_type(key),
                synonyms,
            }
        })
        .collect()
}

/// Kafka's ConfigType of a key, from the naming conventions of the keys we describe.
fn config_type(key: &str) -> i8 {
    const BOOLEAN: i8 = 1;
    const STRING: i8 = 2;
    const INT: i8 = 3;
    const LONG: i8 = 5;
    const DOUBLE: i8 = 6;
    const LIST: i8 = 7;
    match key {
        k if k.ends_with(".enable") || k == EXCLUDED_KEY => BOOLEAN,
        "cleanup.policy" | "log.cleanup.policy" | "process.roles" | "log.dirs" => LIST,
        "min.cleanable.dirty.ratio" | "log.cleaner.min.cleanable.ratio" => DOUBLE,
        "compression.type"
        | "message.timestamp.type"
        | "log.message.timestamp.type"
        | "listeners"
        | "advertised.listeners"
        | "broker.rack" => STRING,
        k if k.ends_with(".ms")
            || k.ends_with("retention.bytes")
            || k.ends_with("flush.messages")
            || k == "log.flush.interval.messages" =>
        {
            LONG
        }
        _ => INT,
    }
}
