//! Broker removal tasks in the image. Kafka has no record for them, so each is
//! a dynamic config of the cluster-default BROKER resource, `removal.<id>`,
//! whose value is the task as JSON: which brokers leave, and how far it got.
//! Progress is not stored: every node computes it from the partitions.

use serde::{Deserialize, Serialize};

use super::MetadataImage;

/// Prefix of a removal task's key on the cluster-default BROKER resource.
pub const REMOVAL_KEY_PREFIX: &str = "removal.";

/// Where a removal task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemovalState {
    /// Its brokers are excluded and their replicas are being moved away.
    Running,
    /// Its brokers hold no replica any more.
    Completed,
    /// Stopped before the end; its brokers take replicas again.
    Cancelled,
}

/// One removal task as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovalTask {
    pub brokers: Vec<i32>,
    pub state: RemovalState,
    /// Why a move cannot be planned now (e.g. too few brokers left), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RemovalTask {
    pub fn to_value(&self) -> String {
        serde_json::to_string(self).expect("a removal task serializes")
    }

    pub fn from_value(value: &str) -> Option<RemovalTask> {
        serde_json::from_str(value).ok()
    }
}

impl MetadataImage {
    /// Every removal task, by id, in id order; values that do not parse are left out.
    pub fn removals(&self) -> impl Iterator<Item = (&str, RemovalTask)> + '_ {
        self.default_broker_configs
            .iter()
            .filter_map(|(key, value)| {
                let id = key.strip_prefix(REMOVAL_KEY_PREFIX)?;
                Some((id, RemovalTask::from_value(value)?))
            })
    }

    pub fn removal(&self, id: &str) -> Option<RemovalTask> {
        self.default_broker_configs
            .get(&format!("{REMOVAL_KEY_PREFIX}{id}"))
            .and_then(|value| RemovalTask::from_value(value))
    }

    /// The running removal task, if any: at most one runs at a time.
    pub fn running_removal(&self) -> Option<(&str, RemovalTask)> {
        self.removals()
            .find(|(_, task)| task.state == RemovalState::Running)
    }

    /// Partitions with a replica on `broker`.
    pub fn partitions_on(&self, broker: i32) -> usize {
        self.topics
            .values()
            .flat_map(|t| t.partitions.iter())
            .filter(|p| p.replicas.contains(&broker))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_round_trips_through_its_config_value() {
        let task = RemovalTask {
            brokers: vec![3, 4],
            state: RemovalState::Running,
            error: None,
        };
        assert_eq!(task.to_value(), r#"{"brokers":[3,4],"state":"running"}"#);
        assert_eq!(RemovalTask::from_value(&task.to_value()), Some(task));
        assert_eq!(RemovalTask::from_value("not json"), None);
    }

    #[test]
    fn tasks_are_read_from_the_default_broker_resource() {
        let mut image = MetadataImage::empty("c");
        let done = RemovalTask {
            brokers: vec![1],
            state: RemovalState::Completed,
            error: None,
        };
        let running = RemovalTask {
            brokers: vec![2],
            state: RemovalState::Running,
            error: None,
        };
        image
            .default_broker_configs
            .insert("removal.a".into(), done.to_value());
        image
            .default_broker_configs
            .insert("removal.b".into(), running.to_value());
        image
            .default_broker_configs
            .insert("removal.broken".into(), "{".into());
        assert_eq!(image.removals().count(), 2);
        assert_eq!(image.removal("a"), Some(done));
        assert_eq!(image.running_removal(), Some(("b", running)));
        assert_eq!(image.removal("broken"), None);
    }
}
