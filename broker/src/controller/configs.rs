//! AlterConfigs and IncrementalAlterConfigs on topics, and on brokers for the
//! few dynamic broker keys (`broker_configs`).

use std::collections::{BTreeMap, HashMap, HashSet};

use kafka_protocol::error::ResponseError;

use super::broker_configs::plan_broker_update;
use super::error::{ApiError, ControllerError};
use super::quorum::Controller;
use crate::metadata::records::{ConfigRecord, BROKER_RESOURCE, TOPIC_RESOURCE};
use crate::metadata::{MetadataImage, MetadataRecord};
use crate::storage::TOPIC_CONFIG_KEYS;

/// Topic keys whose values are comma-separated lists (APPEND/SUBTRACT apply).
const LIST_KEYS: &[&str] = &["cleanup.policy"];

/// What a config request is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ConfigResource {
    Topic(String),
    /// A broker id, or empty for the cluster-wide default.
    Broker(String),
}

impl ConfigResource {
    /// From a request's resource type and name; other types are refused.
    pub fn from_wire(resource_type: i8, name: &str) -> Result<Self, ApiError> {
        match resource_type {
            TOPIC_RESOURCE => Ok(ConfigResource::Topic(name.to_string())),
            BROKER_RESOURCE => Ok(ConfigResource::Broker(name.to_string())),
            other => Err(ApiError::new(
                ResponseError::InvalidRequest,
                format!("Config resource type {other} is not supported: only topics (2) and brokers (4)."),
            )),
        }
    }
}

/// IncrementalAlterConfigs operations, by their wire codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlterOp {
    Set,
    Delete,
    Append,
    Subtract,
}

impl AlterOp {
    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            0 => Some(AlterOp::Set),
            1 => Some(AlterOp::Delete),
            2 => Some(AlterOp::Append),
            3 => Some(AlterOp::Subtract),
            _ => None,
        }
    }
}

/// The change asked for one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigUpdate {
    /// AlterConfigs: the given keys become the whole set of overrides.
    Replace(Vec<(String, Option<String>)>),
    /// IncrementalAlterConfigs: each key changed by its operation.
    Incremental(Vec<(String, AlterOp, Option<String>)>),
}

impl Controller {
    /// Applies the valid updates in one batch; results in request order.
    pub fn alter_configs(
        &self,
        updates: Vec<(ConfigResource, ConfigUpdate)>,
        validate_only: bool,
    ) -> Result<Vec<Result<(), ApiError>>, ControllerError> {
        let _writer = self.write();
        let image = self.image();
        let mut counts: HashMap<&ConfigResource, usize> = HashMap::new();
        for (resource, _) in &updates {
            *counts.entry(resource).or_default() += 1;
        }
        let mut records = Vec::new();
        let mut results = Vec::with_capacity(updates.len());
        for (resource, update) in &updates {
            let planned = if counts[resource] > 1 {
                Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    format!("{resource:?} is listed more than once."),
                ))
            } else {
                match resource {
                    ConfigResource::Topic(name) => self.plan_topic_update(&image, name, update),
                    ConfigResource::Broker(name) => plan_broker_update(&image, name, update),
                }
            };
            results.push(planned.map(|new_records| records.extend(new_records)));
        }
        if !validate_only && !records.is_empty() {
            self.commit(&image, records)?;
        }
        Ok(results)
    }

    fn plan_topic_update(
        &self,
        image: &MetadataImage,
        name: &str,
        update: &ConfigUpdate,
    ) -> Result<Vec<MetadataRecord>, ApiError> {
        let topic = image.topic(name).ok_or_else(|| {
            ApiError::new(
                ResponseError::UnknownTopicOrPartition,
                format!("Topic '{name}' does not exist."),
            )
        })?;
        let wanted = match update {
            ConfigUpdate::Replace(configs) => replace(configs)?,
            ConfigUpdate::Incremental(ops) => self.incremental(&topic.configs, ops)?,
        };
        self.log_defaults()
            .with_overrides(&wanted)
            .map_err(|e| ApiError::new(ResponseError::InvalidConfig, e.to_string()))?;
        Ok(config_records(
            TOPIC_RESOURCE,
            name,
            &topic.configs,
            &wanted,
        ))
    }

    fn incremental(
        &self,
        current: &BTreeMap<String, String>,
        ops: &[(String, AlterOp, Option<String>)],
    ) -> Result<BTreeMap<String, String>, ApiError> {
        let mut seen = HashSet::new();
        let mut configs = current.clone();
        for (key, op, value) in ops {
            if !seen.insert(key) {
                return Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    format!("Config `{key}` is changed more than once in one request."),
                ));
            }
            if !TOPIC_CONFIG_KEYS.contains(&key.as_str()) {
                return Err(ApiError::new(
                    ResponseError::InvalidConfig,
                    format!("Unknown topic config name: {key}"),
                ));
            }
            if *op == AlterOp::Delete {
                configs.remove(key);
                continue;
            }
            let value = value.as_deref().ok_or_else(|| {
                ApiError::new(
                    ResponseError::InvalidRequest,
                    format!("Null value not supported for: {key}"),
                )
            })?;
            if matches!(op, AlterOp::Append | AlterOp::Subtract)
                && !LIST_KEYS.contains(&key.as_str())
            {
                return Err(ApiError::new(
                    ResponseError::InvalidConfig,
                    format!("Config value append/subtract is not allowed for config key `{key}`: it is not a list."),
                ));
            }
            let new_value = match op {
                AlterOp::Set => value.to_string(),
                _ => {
                    let base = configs
                        .get(key)
                        .cloned()
                        .unwrap_or_else(|| self.default_value(key));
                    let mut items: Vec<String> = split_list(&base);
                    let given = split_list(value);
                    if *op == AlterOp::Append {
                        items.extend(
                            given
                                .into_iter()
                                .filter(|g| !items.contains(g))
                                .collect::<Vec<_>>(),
                        );
                    } else {
                        items.retain(|i| !given.contains(i));
                    }
                    items.join(",")
                }
            };
            configs.insert(key.clone(), new_value);
        }
        Ok(configs)
    }

    /// A topic key's value when the topic does not override it.
    fn default_value(&self, key: &str) -> String {
        self.log_defaults()
            .describe()
            .into_iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
            .unwrap_or_default()
    }
}

/// The Config records that take resource `name` from its `current` configs to
/// `wanted`: a null value for each removed key, the value for each new or changed one.
pub(super) fn config_records(
    resource_type: i8,
    name: &str,
    current: &BTreeMap<String, String>,
    wanted: &BTreeMap<String, String>,
) -> Vec<MetadataRecord> {
    let record = |key: &str, value: Option<&String>| {
        MetadataRecord::Config(ConfigRecord {
            resource_type,
            resource_name: name.to_string(),
            name: key.to_string(),
            value: value.cloned(),
        })
    };
    let removed = current
        .keys()
        .filter(|k| !wanted.contains_key(*k))
        .map(|k| record(k, None));
    let set = wanted
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(*v))
        .map(|(k, v)| record(k, Some(v)));
    removed.chain(set).collect()
}

pub(super) fn replace(
    configs: &[(String, Option<String>)],
) -> Result<BTreeMap<String, String>, ApiError> {
    let mut wanted = BTreeMap::new();
    for (key, value) in configs {
        let value = value.as_ref().ok_or_else(|| {
            ApiError::new(
                ResponseError::InvalidRequest,
                format!("Null value not supported for: {key}"),
            )
        })?;
        if wanted.insert(key.clone(), value.clone()).is_some() {
            return Err(ApiError::new(
                ResponseError::InvalidRequest,
                format!("Config `{key}` is given more than once."),
            ));
        }
    }
    Ok(wanted)
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}
