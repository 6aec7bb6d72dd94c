//! Per-topic log configuration: the broker's `log.*` defaults overlaid with a
//! topic's own keys (`retention.ms`, `cleanup.policy`, ...).

use std::collections::BTreeMap;

use kafka_protocol::records::Compression;

use super::recompress::{compression_type_name, parse_compression_type};
use crate::config::{parse_timestamp_type, BrokerConfig, CleanupPolicy};

/// A topic-level key that is unknown or whose value does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid topic config `{key}`=`{value}`: {reason}")]
pub struct InvalidTopicConfig {
    pub key: String,
    pub value: String,
    pub reason: String,
}

/// Effective configuration of one partition's log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    /// -1 keeps data forever.
    pub retention_ms: i64,
    /// -1 means no size limit.
    pub retention_bytes: i64,
    pub cleanup_policy: CleanupPolicy,
    pub index_interval_bytes: u32,
    pub segment_index_bytes: u32,
    pub max_message_bytes: u32,
    /// true: the broker stamps LogAppendTime on every batch.
    pub timestamp_log_append: bool,
    pub delete_retention_ms: i64,
    pub min_compaction_lag_ms: i64,
    pub min_cleanable_dirty_ratio: f64,
    pub flush_messages: Option<u64>,
    pub flush_ms: Option<u64>,
    pub min_insync_replicas: i32,
    /// `compression.type`: `None` stores batches as the producer sent them.
    pub compression: Option<Compression>,
    /// `unclean.leader.election.enable`: read by the controller, not the log.
    pub unclean_leader_election: bool,
    /// `leader/follower.replication.throttled.replicas`: read by replication, not the
    /// log (see replication::throttle), in canonical form.
    pub leader_throttled_replicas: String,
    pub follower_throttled_replicas: String,
}

/// Topic keys we honour, in the order DescribeConfigs lists them.
pub const TOPIC_CONFIG_KEYS: &[&str] = &[
    "cleanup.policy",
    "compression.type",
    "delete.retention.ms",
    "flush.messages",
    "flush.ms",
    "follower.replication.throttled.replicas",
    "index.interval.bytes",
    "leader.replication.throttled.replicas",
    "max.message.bytes",
    "message.timestamp.type",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "min.insync.replicas",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.index.bytes",
    "segment.ms",
    "unclean.leader.election.enable",
];

/// Checks a `leader/follower.replication.throttled.replicas` value (read by
/// replication::throttle) and puts it in canonical form: `*`, or comma-separated
/// `partition:broker` pairs (empty: none).
fn parse_throttled_replicas(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value == "*" {
        return Ok(value.to_string());
    }
    let mut pairs = Vec::new();
    for (entry, pair) in throttled_replica_pairs(value) {
        match pair {
            Some((p, b)) => pairs.push(format!("{p}:{b}")),
            None => {
                return Err(format!(
                    "`{entry}` is not a partition:broker pair; the value is `*` or a list such as 0:101,1:102"
                ))
            }
        }
    }
    Ok(pairs.join(","))
}

/// The entries of a throttled-replicas list other than `*`, each with its
/// `(partition, broker)` pair, `None` where it does not parse; empty entries are skipped.
pub fn throttled_replica_pairs(
    value: &str,
) -> impl Iterator<Item = (&str, Option<(i32, i32)>)> + '_ {
    let pair = |entry: &str| {
        let (p, b) = entry.split_once(':')?;
        let pair = (p.trim().parse::<i32>().ok()?, b.trim().parse::<i32>().ok()?);
        (pair.0 >= 0 && pair.1 >= 0).then_some(pair)
    };
    value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(move |entry| (entry, pair(entry)))
}

impl LogConfig {
    /// The defaults a topic without overrides gets from the broker config.
    pub fn from_broker(config: &BrokerConfig) -> Self {
        LogConfig {
            segment_bytes: config.log_segment_bytes,
            segment_ms: config.log_roll_ms,
            retention_ms: config.log_retention_ms,
            retention_bytes: config.log_retention_bytes,
            cleanup_policy: config.log_cleanup_policy,
            index_interval_bytes: config.log_index_interval_bytes,
            segment_index_bytes: config.log_index_size_max_bytes,
            max_message_bytes: config.message_max_bytes,
            timestamp_log_append: config.log_message_timestamp_type_log_append,
            delete_retention_ms: config.log_cleaner_delete_retention_ms,
            min_compaction_lag_ms: config.log_cleaner_min_compaction_lag_ms,
            min_cleanable_dirty_ratio: config.log_cleaner_min_cleanable_ratio,
            flush_messages: config.log_flush_interval_messages,
            flush_ms: config.log_flush_interval_ms,
            min_insync_replicas: config.min_insync_replicas,
            compression: config.compression_type,
            unclean_leader_election: config.leadership.unclean_leader_election,
            leader_throttled_replicas: String::new(),
            follower_throttled_replicas: String::new(),
        }
    }

    /// This config with a topic's keys applied; every key is validated.
    pub fn with_overrides(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> Result<LogConfig, InvalidTopicConfig> {
        let mut config = self.clone();
        for (key, value) in overrides {
            config.set(key, value)?;
        }
        Ok(config)
    }

    /// The effective config of topic `name`: these defaults with its
    /// overrides, or the defaults alone if an override does not parse.
    /// Overrides are validated before they are committed, so only a metadata
    /// log written by another version can hold a bad one.
    pub fn for_topic(&self, name: &str, overrides: &BTreeMap<String, String>) -> LogConfig {
        self.with_overrides(overrides).unwrap_or_else(|error| {
            tracing::warn!(topic = %name, %error, "ignoring invalid topic config");
            self.clone()
        })
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), InvalidTopicConfig> {
        let bad = |reason: &str| InvalidTopicConfig {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        fn num<T: std::str::FromStr>(value: &str) -> Option<T> {
            value.trim().parse().ok()
        }
        match key {
            "cleanup.policy" => {
                self.cleanup_policy = CleanupPolicy::parse(value).map_err(|r| bad(&r))?
            }
            "compression.type" => {
                self.compression = parse_compression_type(value).map_err(|r| bad(&r))?
            }
            "delete.retention.ms" => {
                self.delete_retention_ms = num(value)
                    .filter(|v| *v >= 0)
                    .ok_or_else(|| bad("expected a number >= 0"))?
            }
            "flush.messages" => {
                self.flush_messages = Some(
                    num(value)
                        .filter(|v| *v > 0)
                        .ok_or_else(|| bad("expected a number > 0"))?,
                )
            }
            "flush.ms" => {
                self.flush_ms = Some(
                    num(value)
                        .filter(|v| *v > 0)
                        .ok_or_else(|| bad("expected a number > 0"))?,
                )
            }
            "index.interval.bytes" => {
                self.index_interval_bytes =
                    num(value).ok_or_else(|| bad("expected a number >= 0"))?
            }
            "max.message.bytes" => {
                self.max_message_bytes = num(value)
                    .filter(|v| *v > 0)
                    .ok_or_else(|| bad("expected a number > 0"))?
            }
            "message.timestamp.type" => {
                self.timestamp_log_append = parse_timestamp_type(key, value)
                    .map_err(|_| bad("expected CreateTime or LogAppendTime"))?
            }
            "min.cleanable.dirty.ratio" => {
                self.min_cleanable_dirty_ratio = num(value)
                    .filter(|v: &f64| (0.0..=1.0).contains(v))
                    .ok_or_else(|| bad("expected a number between 0 and 1"))?
            }
            "min.compaction.lag.ms" => {
                self.min_compaction_lag_ms = num(value)
                    .filter(|v| *v >= 0)
                    .ok_or_else(|| bad("expected a number >= 0"))?
            }
            "min.insync.replicas" => {
                self.min_insync_replicas = num(value)
                    .filter(|v| *v > 0)
                    .ok_or_else(|| bad("expected a number > 0"))?
            }
            "retention.bytes" => {
                self.retention_bytes = num(value)
                    .filter(|v| *v >= -1)
                    .ok_or_else(|| bad("expected -1 or a number >= 0"))?
            }
            "retention.ms" => {
                self.retention_ms = num(value)
                    .filter(|v| *v >= -1)
                    .ok_or_else(|| bad("expected -1 or a number >= 0"))?
            }
            "segment.bytes" => {
                self.segment_bytes = num(value)
                    .filter(|v| (14..=i32::MAX as u64).contains(v))
                    .ok_or_else(|| bad("expected a number between 14 and 2147483647"))?
            }
            "segment.index.bytes" => {
                self.segment_index_bytes = num(value)
                    .filter(|v| *v >= 8)
                    .ok_or_else(|| bad("expected a number >= 8"))?
            }
            "segment.ms" => {
                self.segment_ms = num(value)
                    .filter(|v| *v > 0)
                    .ok_or_else(|| bad("expected a number > 0"))?
            }
            "unclean.leader.election.enable" => {
                self.unclean_leader_election = match value.trim() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(bad("expected true or false")),
                }
            }
            "leader.replication.throttled.replicas" => {
                self.leader_throttled_replicas =
                    parse_throttled_replicas(value).map_err(|e| bad(&e))?;
            }
            "follower.replication.throttled.replicas" => {
                self.follower_throttled_replicas =
                    parse_throttled_replicas(value).map_err(|e| bad(&e))?;
            }
            _ => return Err(bad("unknown topic config key")),
        }
        Ok(())
    }

    /// The value of every key in [`TOPIC_CONFIG_KEYS`] as DescribeConfigs shows it.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        fn opt(v: Option<u64>) -> String {
            v.map_or(i64::MAX.to_string(), |v| v.to_string())
        }
        let timestamp_type = if self.timestamp_log_append {
            "LogAppendTime"
        } else {
            "CreateTime"
        };
        vec![
            ("cleanup.policy", self.cleanup_policy.to_string()),
            (
                "compression.type",
                compression_type_name(self.compression).to_string(),
            ),
            ("delete.retention.ms", self.delete_retention_ms.to_string()),
            ("flush.messages", opt(self.flush_messages)),
            ("flush.ms", opt(self.flush_ms)),
            (
                "follower.replication.throttled.replicas",
                self.follower_throttled_replicas.clone(),
            ),
            (
                "index.interval.bytes",
                self.index_interval_bytes.to_string(),
            ),
            (
                "leader.replication.throttled.replicas",
                self.leader_throttled_replicas.clone(),
            ),
            ("max.message.bytes", self.max_message_bytes.to_string()),
            ("message.timestamp.type", timestamp_type.to_string()),
            (
                "min.cleanable.dirty.ratio",
                self.min_cleanable_dirty_ratio.to_string(),
            ),
            (
                "min.compaction.lag.ms",
                self.min_compaction_lag_ms.to_string(),
            ),
            ("min.insync.replicas", self.min_insync_replicas.to_string()),
            ("retention.bytes", self.retention_bytes.to_string()),
            ("retention.ms", self.retention_ms.to_string()),
            ("segment.bytes", self.segment_bytes.to_string()),
            ("segment.index.bytes", self.segment_index_bytes.to_string()),
            ("segment.ms", self.segment_ms.to_string()),
            (
                "unclean.leader.election.enable",
                self.unclean_leader_election.to_string(),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overrides(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn overrides_replace_broker_defaults() {
        let base = LogConfig::from_broker(&BrokerConfig::default());
        let config = base
            .with_overrides(&overrides(&[
                ("retention.ms", "1000"),
                ("cleanup.policy", "compact,delete"),
            ]))
            .unwrap();
        assert_eq!(config.retention_ms, 1000);
        assert!(config.cleanup_policy.compact && config.cleanup_policy.delete);
        assert_eq!(config.segment_bytes, base.segment_bytes);
    }

    #[test]
    fn every_described_key_is_settable() {
        let base = LogConfig::from_broker(&BrokerConfig::default());
        let described: Vec<&str> = base.describe().iter().map(|(k, _)| *k).collect();
        assert_eq!(described, TOPIC_CONFIG_KEYS);
        // Describing and re-applying every value must round-trip.
        let all: BTreeMap<String, String> = base
            .describe()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(
            base.with_overrides(&all).unwrap().describe(),
            base.describe()
        );
    }

    #[test]
    fn invalid_keys_and_values_are_named() {
        let base = LogConfig::from_broker(&BrokerConfig::default());
        let err = base
            .with_overrides(&overrides(&[("retention.mss", "1")]))
            .unwrap_err();
        assert_eq!(err.key, "retention.mss");
        let err = base
            .with_overrides(&overrides(&[("segment.bytes", "3")]))
            .unwrap_err();
        assert_eq!(err.key, "segment.bytes");
        let err = base
            .with_overrides(&overrides(&[("cleanup.policy", "shred")]))
            .unwrap_err();
        assert_eq!(err.key, "cleanup.policy");
        let err = base
            .with_overrides(&overrides(&[(
                "leader.replication.throttled.replicas",
                "0-1",
            )]))
            .unwrap_err();
        assert_eq!(err.key, "leader.replication.throttled.replicas");
        assert!(err.reason.contains("partition:broker"), "{}", err.reason);
        let listed = base
            .with_overrides(&overrides(&[(
                "follower.replication.throttled.replicas",
                "0:1, 2:3",
            )]))
            .unwrap();
        assert_eq!(listed.follower_throttled_replicas, "0:1,2:3");
    }

    #[test]
    fn throttled_replicas_values_are_checked_and_made_canonical() {
        assert_eq!(parse_throttled_replicas(" * ").unwrap(), "*");
        assert_eq!(parse_throttled_replicas("0:1, 1 : 2,").unwrap(), "0:1,1:2");
        assert_eq!(parse_throttled_replicas("").unwrap(), "");
        for bad in ["0", "a:1", "0:-1", "*,0:1", "0:1:2"] {
            let error = parse_throttled_replicas(bad).unwrap_err();
            assert!(error.contains("partition:broker"), "{bad}: {error}");
        }
    }
}
