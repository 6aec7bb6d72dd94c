//! AlterConfigs and IncrementalAlterConfigs on BROKER resources. Only the
//! dynamic keys this broker acts on are accepted ([`BROKER_KEYS`]); the rest
//! of a broker's configs are static (server.properties).

use std::collections::{BTreeMap, HashSet};

use kafka_protocol::error::ResponseError;

use super::configs::{config_records, replace, AlterOp, ConfigUpdate};
use super::error::ApiError;
use super::removal::plan_removal_update;
use crate::metadata::image::{EXCLUDED_KEY, REMOVAL_KEY_PREFIX};
use crate::metadata::records::BROKER_RESOURCE;
use crate::metadata::{MetadataImage, MetadataRecord};
use crate::replication::throttle;

/// A dynamic broker key: where it may be set, and how a given value is kept.
struct BrokerKey {
    name: &'static str,
    scope: Scope,
    /// The value to store for a given one (`None` removes the key), or why it is invalid.
    normalize: fn(&str) -> Result<Option<String>, String>,
}

/// Which broker resources take a key.
#[derive(PartialEq)]
enum Scope {
    /// One broker, named by its id.
    Broker,
    /// A broker, or the cluster default (an empty name) for every broker without its own.
    BrokerOrDefault,
}

/// Every dynamic broker key.
const BROKER_KEYS: &[BrokerKey] = &[
    BrokerKey {
        name: EXCLUDED_KEY,
        scope: Scope::Broker,
        normalize: true_or_absent,
    },
    BrokerKey {
        name: throttle::LEADER_RATE_KEY,
        scope: Scope::BrokerOrDefault,
        normalize: rate,
    },
    BrokerKey {
        name: throttle::FOLLOWER_RATE_KEY,
        scope: Scope::BrokerOrDefault,
        normalize: rate,
    },
];

/// A throttle rate in bytes/s, kept in canonical form.
fn rate(value: &str) -> Result<Option<String>, String> {
    throttle::parse_rate(value).map(|rate| Some(rate.to_string()))
}

/// A boolean kept only while true, so that un-excluding leaves no record behind.
fn true_or_absent(value: &str) -> Result<Option<String>, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(Some("true".into())),
        "false" => Ok(None),
        _ => Err(format!(
            "Expected value to be either true or false, not `{value}`."
        )),
    }
}

/// The records that turn the resource `name` (a broker id, or empty for the
/// cluster default) into what `update` asks for.
pub fn plan_broker_update(
    image: &MetadataImage,
    name: &str,
    update: &ConfigUpdate,
) -> Result<Vec<MetadataRecord>, ApiError> {
    let on_default = name.is_empty();
    if !on_default {
        let registered = name
            .parse::<i32>()
            .map_err(|_| {
                ApiError::new(
                    ResponseError::InvalidRequest,
                    format!("Invalid broker name `{name}`: a broker resource is named by a broker id, or empty for the cluster default."),
                )
            })
            .map(|id| image.brokers.contains_key(&id))?;
        if !registered {
            return Err(ApiError::new(
                ResponseError::BrokerIdNotRegistered,
                format!("Broker {name} is not registered."),
            ));
        }
    }
    if let Some((key, value)) = removal_update(on_default, update) {
        return plan_removal_update(image, key, value);
    }
    // Removal tasks share the default resource but are never rewritten here.
    let current: BTreeMap<String, String> = image
        .broker_resource_configs(name)
        .into_iter()
        .flatten()
        .filter(|(key, _)| !key.starts_with(REMOVAL_KEY_PREFIX))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let set = |configs: &mut BTreeMap<String, String>, key: &str, value: &str| {
        let known = known_key(key, on_default)?;
        match (known.normalize)(value) {
            Ok(Some(value)) => configs.insert(key.to_string(), value),
            Ok(None) => configs.remove(key),
            Err(reason) => {
                return Err(ApiError::new(
                    ResponseError::InvalidConfig,
                    format!("Invalid value for configuration {key}: {reason}"),
                ))
            }
        };
        Ok(())
    };
    let mut wanted = BTreeMap::new();
    match update {
        ConfigUpdate::Replace(configs) => {
            for (key, value) in replace(configs)? {
                set(&mut wanted, &key, &value)?;
            }
        }
        ConfigUpdate::Incremental(ops) => {
            wanted = current.clone();
            let mut seen = HashSet::new();
            for (key, op, value) in ops {
                if !seen.insert(key) {
                    return Err(ApiError::new(
                        ResponseError::InvalidRequest,
                        format!("Config `{key}` is changed more than once in one request."),
                    ));
                }
                known_key(key, on_default)?;
                match (op, value) {
                    (AlterOp::Delete, _) => {
                        wanted.remove(key);
                    }
                    (AlterOp::Set, Some(value)) => set(&mut wanted, key, value)?,
                    (AlterOp::Set, None) => {
                        return Err(ApiError::new(
                            ResponseError::InvalidRequest,
                            format!("Null value not supported for: {key}"),
                        ))
                    }
                    (AlterOp::Append | AlterOp::Subtract, _) => {
                        return Err(ApiError::new(
                            ResponseError::InvalidConfig,
                            format!("Config value append/subtract is not allowed for config key `{key}`: it is not a list."),
                        ))
                    }
                }
            }
        }
    }
    Ok(config_records(BROKER_RESOURCE, name, &current, &wanted))
}

/// A SET of one `removal.<id>` key on the cluster default: the removal task's
/// start or cancel, which the removal module checks against the whole image.
fn removal_update(on_default: bool, update: &ConfigUpdate) -> Option<(&str, &str)> {
    match update {
        ConfigUpdate::Incremental(ops) if on_default && ops.len() == 1 => match &ops[0] {
            (key, AlterOp::Set, Some(value)) if key.starts_with(REMOVAL_KEY_PREFIX) => {
                Some((key.as_str(), value.as_str()))
            }
            _ => None,
        },
        _ => None,
    }
}

fn known_key(key: &str, on_default: bool) -> Result<&'static BrokerKey, ApiError> {
    let known = BROKER_KEYS.iter().find(|k| k.name == key).ok_or_else(|| {
        ApiError::new(
            ResponseError::InvalidConfig,
            format!(
                "Broker config `{key}` cannot be changed dynamically: only {} can; set the others in server.properties.",
                BROKER_KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
            ),
        )
    })?;
    if on_default && known.scope == Scope::Broker {
        return Err(ApiError::new(
            ResponseError::InvalidRequest,
            format!(
                "Config `{key}` cannot be set on the cluster default: name a broker id instead."
            ),
        ));
    }
    Ok(known)
}
