//! The coordinator's settings, taken from the broker's `group.*` and `offsets.*` keys.

use crate::config::BrokerConfig;

/// Kafka's `offset.metadata.max.bytes` default; not yet a broker config key.
const OFFSET_METADATA_MAX_BYTES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    pub offsets_topic_num_partitions: i32,
    pub offsets_retention_ms: i64,
    pub offsets_retention_check_interval_ms: u64,
    pub initial_rebalance_delay_ms: u64,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub max_size: i32,
    pub offset_metadata_max_bytes: usize,
}

impl GroupConfig {
    pub fn from_broker(config: &BrokerConfig) -> Self {
        GroupConfig {
            offsets_topic_num_partitions: config.offsets_topic_num_partitions,
            offsets_retention_ms: config.offsets_retention_ms,
            offsets_retention_check_interval_ms: config.offsets_retention_check_interval_ms,
            initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
            min_session_timeout_ms: config.group_min_session_timeout_ms,
            max_session_timeout_ms: config.group_max_session_timeout_ms,
            max_size: config.group_max_size,
            offset_metadata_max_bytes: OFFSET_METADATA_MAX_BYTES,
        }
    }
}
