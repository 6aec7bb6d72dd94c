//! The log: segments, indexes, retention and compaction. Knows nothing of sockets or Raft.
//!
//! On disk, Kafka's layout: `<log.dir>/<topic>-<partition>/` holds
//! `<20-digit base offset>.log` segments of record batches v2 with their
//! `.index` and `.timeindex`, plus `.snapshot` files of idempotent producer
//! state. Each log dir holds the `recovery-point-offset-checkpoint`,
//! `log-start-offset-checkpoint` and `cleaner-offset-checkpoint` files and,
//! after a clean shutdown, `.kafka_cleanshutdown`.

pub mod batch;
pub(crate) mod checkpoint;
mod cleaner;
pub mod config;
pub mod control_records;
mod epoch_cache;
mod recompress;

pub use recompress::parse_compression_type;
mod error;
mod index;
mod log;
mod manager;
mod partition_metadata;
mod producer_state;
mod segment;
pub mod snapshot;

pub use epoch_cache::{UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET};
pub use error::StorageError;
pub use log::{AppendInfo, Checkpoints, PartitionLog};
pub use manager::{BackgroundConfig, HostedLog, LogManager};

pub use config::{throttled_replica_pairs, InvalidTopicConfig, LogConfig, TOPIC_CONFIG_KEYS};

use std::fmt;

/// A partition of a topic; its log lives in `<log.dir>/<topic>-<partition>/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }

    /// The directory name Kafka uses for this partition's log.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }

    /// Parses a `<topic>-<partition>` directory name (topics may contain `-`).
    pub fn from_dir_name(name: &str) -> Option<Self> {
        let (topic, partition) = name.rsplit_once('-')?;
        if topic.is_empty() {
            return None;
        }
        Some(TopicPartition::new(topic, partition.parse().ok()?))
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_names_round_trip_with_dashes_in_topic() {
        let tp = TopicPartition::new("my-topic", 12);
        assert_eq!(tp.dir_name(), "my-topic-12");
        assert_eq!(TopicPartition::from_dir_name("my-topic-12"), Some(tp));
        assert_eq!(TopicPartition::from_dir_name("-1"), None);
        assert_eq!(TopicPartition::from_dir_name("topic-x"), None);
    }
}
