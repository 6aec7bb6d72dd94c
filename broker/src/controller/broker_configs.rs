//! AlterConfigs and IncrementalAlterConfigs on BROKER resources. Only the
//! dynamic keys this broker acts on are accepted ([`BROKER_KEYS`]); the rest
//! of a broker's configs are static (server.properties).

use std::collections::{BTreeMap, HashSet};

use kafka_protocol::error::ResponseError;

use super::configs::{config_records, replace, AlterOp, ConfigUpdate};
use super::error::ApiError;
use super::leadership::demote;
use super::removal::plan_removal_update;
use crate::metadata::image::{EXCLUDED_KEY, REMOVAL_KEY_PREFIX};
use crate::metadata::records::BROKER_RESOURCE;
use crate::metadata::{MetadataImage, MetadataRecord};
use crate::replication::throttle;

/// Set to `true` on a broker to move its partition leaderships to other in-sync replicas
/// (`POST /admin/v1/brokers/{id}/demote`); nothing is stored.
pub const DEMOTE_KEY: &str = "broker.demote";

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
    if let Some(value) = action(update, DEMOTE_KEY).filter(|_| !on_default) {
        return plan_demotion(image, name, value);
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
    let (key, value) = single_set(update)?;
    (on_default && key.starts_with(REMOVAL_KEY_PREFIX)).then_some((key, value))
}

/// The value of a SET of the action key `key` alone.
fn action<'a>(update: &'a ConfigUpdate, key: &str) -> Option<&'a str> {
    single_set(update).and_then(|(k, value)| (k == key).then_some(value))
}

/// The key and value of an IncrementalAlterConfigs that SETs one key only.
fn single_set(update: &ConfigUpdate) -> Option<(&str, &str)> {
    match update {
        ConfigUpdate::Incremental(ops) if ops.len() == 1 => match &ops[0] {
            (key, AlterOp::Set, Some(value)) => Some((key.as_str(), value.as_str())),
            _ => None,
        },
        _ => None,
    }
}

/// `broker.demote=true` on broker `name`: an action, not a stored config. It moves
/// the broker's leaderships to other in-sync replicas (see [`demote`]).
fn plan_demotion(
    image: &MetadataImage,
    name: &str,
    value: &str,
) -> Result<Vec<MetadataRecord>, ApiError> {
    if !value.trim().eq_ignore_ascii_case("true") {
        return Err(ApiError::new(
            ResponseError::InvalidConfig,
            format!(
                "Invalid value for {DEMOTE_KEY}: it is an action, set only to true, not `{value}`."
            ),
        ));
    }
    let broker = name.parse::<i32>().unwrap_or(-1);
    Ok(demote(image, broker))
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
