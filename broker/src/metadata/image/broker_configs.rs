//! Dynamic BROKER configs in the image, and the one the controller acts on:
//! `broker.excluded`, which keeps new replicas and preferred leaderships off a broker.

use std::collections::BTreeMap;

use super::{ApplyError, MetadataImage, PartitionImage};
use crate::metadata::records::ConfigRecord;

/// Set to `true` on a broker resource to exclude that broker; absent otherwise.
pub const EXCLUDED_KEY: &str = "broker.excluded";

impl MetadataImage {
    /// Whether `broker` is excluded from new replicas and preferred leaderships.
    pub fn is_excluded(&self, broker: i32) -> bool {
        self.broker_configs
            .get(&broker)
            .and_then(|configs| configs.get(EXCLUDED_KEY))
            .is_some_and(|value| value == "true")
    }

    /// The excluded broker ids, in order; a config on an unregistered id counts too.
    pub fn excluded_brokers(&self) -> impl Iterator<Item = i32> + '_ {
        self.broker_configs
            .keys()
            .copied()
            .filter(|id| self.is_excluded(*id))
    }

    /// The replica that should lead `p`: its first replica not excluded, or
    /// its first one when all are; `None` without replicas.
    pub fn preferred_leader(&self, p: &PartitionImage) -> Option<i32> {
        p.replicas
            .iter()
            .copied()
            .find(|id| !self.is_excluded(*id))
            .or_else(|| p.replicas.first().copied())
    }

    /// The dynamic configs of a BROKER resource by its record name: a broker
    /// id, or empty for the cluster default. `None` for any other name.
    pub fn broker_resource_configs(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        if name.is_empty() {
            return Some(&self.default_broker_configs);
        }
        let id = name.parse::<i32>().ok()?;
        Some(self.broker_configs.get(&id).unwrap_or(&EMPTY))
    }

    pub(super) fn set_broker_config(&mut self, r: &ConfigRecord) -> Result<(), ApplyError> {
        let configs = if r.resource_name.is_empty() {
            &mut self.default_broker_configs
        } else {
            let id = r
                .resource_name
                .parse::<i32>()
                .map_err(|_| ApplyError::BadBrokerResource(r.resource_name.clone()))?;
            self.broker_configs.entry(id).or_default()
        };
        match &r.value {
            Some(value) => configs.insert(r.name.clone(), value.clone()),
            None => configs.remove(&r.name),
        };
        // A broker without configs leaves no empty entry, so images compare
        // equal to their snapshot's rebuild.
        self.broker_configs.retain(|_, configs| !configs.is_empty());
        Ok(())
    }
}
