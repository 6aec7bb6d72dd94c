//! Typed broker configuration read from Kafka-style `.properties` files.
//!
//! Every key is checked: a key we do not know, or a value that does not parse,
//! is an error naming the key, so a typo never silently falls back to a default.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

mod providers;
pub use providers::{EnvLookup, ENV_PROVIDER_CLASS};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("line {line}: expected `key=value`, found `{text}`")]
    Syntax { line: usize, text: String },
    #[error("unknown config key `{0}`")]
    UnknownKey(String),
    #[error("invalid value `{value}` for `{key}`: {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
    },
    #[error("missing required config key `{0}`")]
    Missing(&'static str),
    #[error("`{key}` references config provider `{provider}`, which `config.providers` does not declare")]
    UndeclaredProvider { key: String, provider: String },
    #[error("`{key}` references environment variable `{variable}`: {source}")]
    UnresolvedVariable {
        key: String,
        variable: String,
        source: std::env::VarError,
    },
}

/// Which parts of the node run in this process (`process.roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub broker: bool,
    pub controller: bool,
}

impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.broker, self.controller) {
            (true, true) => f.write_str("broker,controller"),
            (true, false) => f.write_str("broker"),
            _ => f.write_str("controller"),
        }
    }
}

/// One entry of `listeners` / `advertised.listeners`: `NAME://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub host: String,
    pub port: u16,
}

impl Listener {
    /// The address to bind: an empty host means all interfaces, as in Kafka.
    pub fn bind_addr(&self) -> String {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            &self.host
        };
        format!("{host}:{}", self.port)
    }
}

/// Cleanup policy of a topic (`cleanup.policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CleanupPolicy {
    pub delete: bool,
    pub compact: bool,
}

impl CleanupPolicy {
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut policy = CleanupPolicy {
            delete: false,
            compact: false,
        };
        for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "delete" => policy.delete = true,
                "compact" => policy.compact = true,
                other => {
                    return Err(format!(
                        "unknown policy `{other}` (use delete, compact or both)"
                    ))
                }
            }
        }
        if !policy.delete && !policy.compact {
            return Err("empty policy".into());
        }
        Ok(policy)
    }
}

impl fmt::Display for CleanupPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.compact, self.delete) {
            (true, true) => f.write_str("compact,delete"),
            (true, false) => f.write_str("compact"),
            _ => f.write_str("delete"),
        }
    }
}

/// The whole node configuration, with Kafka's defaults.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub node_id: i32,
    pub roles: Roles,
    pub listeners: Vec<Listener>,
    pub advertised_listeners: Vec<Listener>,
    pub controller_listener_names: Vec<String>,
    pub inter_broker_listener_name: Option<String>,
    /// `id@host:port` entries of `controller.quorum.voters`.
    pub quorum_voters: Vec<(i32, String, u16)>,
    pub rack: Option<String>,
    pub log_dirs: Vec<PathBuf>,
    pub metadata_log_dir: Option<PathBuf>,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics_enable: bool,
    pub delete_topic_enable: bool,
    pub min_insync_replicas: i32,
    pub log_segment_bytes: u64,
    pub log_roll_ms: i64,
    pub log_retention_ms: i64,
    pub log_retention_bytes: i64,
    pub log_retention_check_interval_ms: u64,
    pub log_index_interval_bytes: u32,
    pub log_index_size_max_bytes: u32,
    pub log_cleanup_policy: CleanupPolicy,
    pub log_cleaner_enable: bool,
    pub log_cleaner_backoff_ms: u64,
    /// Threads per log dir that open (and recover) the logs at startup.
    pub num_recovery_threads_per_data_dir: usize,
    pub log_cleaner_min_cleanable_ratio: f64,
    pub log_cleaner_delete_retention_ms: i64,
    pub log_cleaner_min_compaction_lag_ms: i64,
    pub log_flush_interval_messages: Option<u64>,
    pub log_flush_interval_ms: Option<u64>,
    pub log_flush_offset_checkpoint_interval_ms: u64,
    pub log_message_timestamp_type_log_append: bool,
    pub message_max_bytes: u32,
    pub socket_request_max_bytes: u32,
    pub offsets_topic_num_partitions: i32,
    /// `offsets.topic.replication.factor` when set; unset, Kafka's 3 capped
    /// to the brokers there are, so a small cluster still gets its groups.
    pub offsets_topic_replication_factor: Option<i16>,
    pub offsets_retention_ms: i64,
    pub offsets_retention_check_interval_ms: u64,
    pub group_initial_rebalance_delay_ms: u64,
    pub group_min_session_timeout_ms: i32,
    pub group_max_session_timeout_ms: i32,
    pub group_max_size: i32,
    pub admin_http_listener: Option<SocketAddr>,
    /// A broker not heard from for this long is fenced by the controller.
    pub broker_session_timeout_ms: u64,
    /// How often a broker heartbeats to the controller.
    pub broker_heartbeat_interval_ms: u64,
    /// Broker default of the topic `compression.type`; `None` is `producer`.
    pub compression_type: Option<kafka_protocol::records::Compression>,
    pub quorum: QuorumTimings,
    /// Write a metadata snapshot after this many bytes of records.
    pub metadata_snapshot_bytes: u64,
    /// A follower that has not caught up with the leader's log end for this
    /// long leaves the ISR.
    pub replica_lag_time_max_ms: u64,
    /// How long a follower's fetch waits at the leader for new data.
    pub replica_fetch_wait_max_ms: u64,
    /// Per-partition and whole-response byte limits of a follower's fetch.
    pub replica_fetch_max_bytes: i32,
    pub replica_fetch_response_max_bytes: i32,
    /// Pause after a failed follower fetch before the partition is retried.
    pub replica_fetch_backoff_ms: u64,
    /// How often high watermarks are written to `replication-offset-checkpoint`.
    pub replica_high_watermark_checkpoint_interval_ms: u64,
    pub leadership: LeadershipConfig,
}

/// How the controller picks partition leaders, and where consumers may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeadershipConfig {
    /// `unclean.leader.election.enable`: a partition whose whole ISR is gone
    /// may be led by a replica outside it (losing what only the ISR had).
    pub unclean_leader_election: bool,
    /// `auto.leader.rebalance.enable`: move leadership back to each
    /// partition's preferred (first) replica every check interval.
    pub auto_leader_rebalance: bool,
    /// `leader.imbalance.check.interval.seconds`, in milliseconds.
    pub imbalance_check_interval_ms: u64,
    /// `removal.max.concurrent.moves.per.broker`: how many partition moves
    /// of a broker removal may be in flight on any one broker at a time.
    pub removal_max_moves_per_broker: usize,
    /// `replica.selector.class` is Kafka's RackAwareReplicaSelector: a
    /// consumer that names its rack is sent to a replica in that rack (KIP-392).
    pub rack_aware_replica_selector: bool,
}

impl Default for LeadershipConfig {
    fn default() -> Self {
        LeadershipConfig {
            unclean_leader_election: false,
            auto_leader_rebalance: true,
            imbalance_check_interval_ms: 300_000,
            removal_max_moves_per_broker: 2,
            rack_aware_replica_selector: false,
        }
    }
}

/// The `replica.selector.class` that picks a replica in the consumer's rack.
pub const RACK_AWARE_REPLICA_SELECTOR: &str =
    "org.apache.kafka.common.replica.RackAwareReplicaSelector";
/// Kafka's default `replica.selector.class`: consumers always read from the leader.
const LEADER_SELECTOR: &str = "org.apache.kafka.common.replica.LeaderSelector";

/// `controller.quorum.*` timings. Shorter than Kafka's defaults (election
/// 1000, fetch 2000, backoff 1000): a killed leader is noticed after one fetch
/// timeout and replaced after one pre-vote and one vote round, so failover
/// stays under 2 s on a LAN; a graceful resignation skips the timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuorumTimings {
    pub election_timeout_ms: u64,
    pub fetch_timeout_ms: u64,
    pub election_backoff_max_ms: u64,
    pub request_timeout_ms: u64,
    pub retry_backoff_ms: u64,
}

impl Default for QuorumTimings {
    fn default() -> Self {
        QuorumTimings {
            election_timeout_ms: 500,
            fetch_timeout_ms: 1_000,
            election_backoff_max_ms: 500,
            request_timeout_ms: 2_000,
            retry_backoff_ms: 20,
        }
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            node_id: 1,
            roles: Roles {
                broker: true,
                controller: true,
            },
            listeners: vec![Listener {
                name: "PLAINTEXT".into(),
                host: String::new(),
                port: 9092,
            }],
            advertised_listeners: Vec::new(),
            controller_listener_names: vec!["CONTROLLER".into()],
            inter_broker_listener_name: None,
            quorum_voters: Vec::new(),
            rack: None,
            log_dirs: vec![PathBuf::from("/tmp/kraft-combined-logs")],
            metadata_log_dir: None,
            num_partitions: 1,
            default_replication_factor: 1,
            auto_create_topics_enable: true,
            delete_topic_enable: true,
            min_insync_replicas: 1,
            log_segment_bytes: 1 << 30,
            log_roll_ms: 7 * 24 * 3_600_000,
            log_retention_ms: 7 * 24 * 3_600_000,
            log_retention_bytes: -1,
            log_retention_check_interval_ms: 300_000,
            log_index_interval_bytes: 4096,
            log_index_size_max_bytes: 10 * 1024 * 1024,
            log_cleanup_policy: CleanupPolicy {
                delete: true,
                compact: false,
            },
            log_cleaner_enable: true,
            log_cleaner_backoff_ms: 15_000,
            // Kafka's default is 1; opening a log mostly waits on the file system, so
            // more threads than cores pay off (BENCHMARKS.md, KRaft at scale).
            num_recovery_threads_per_data_dir: 4,
            log_cleaner_min_cleanable_ratio: 0.5,
            log_cleaner_delete_retention_ms: 86_400_000,
            log_cleaner_min_compaction_lag_ms: 0,
            log_flush_interval_messages: None,
            log_flush_interval_ms: None,
            log_flush_offset_checkpoint_interval_ms: 60_000,
            log_message_timestamp_type_log_append: false,
            message_max_bytes: 1_048_588,
            socket_request_max_bytes: 104_857_600,
            offsets_topic_num_partitions: 50,
            offsets_topic_replication_factor: None,
            offsets_retention_ms: 7 * 24 * 3_600_000,
            offsets_retention_check_interval_ms: 600_000,
            group_initial_rebalance_delay_ms: 3_000,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            group_max_size: i32::MAX,
            admin_http_listener: None,
            broker_session_timeout_ms: 9_000,
            broker_heartbeat_interval_ms: 2_000,
            compression_type: None,
            quorum: QuorumTimings::default(),
            // Kafka's metadata.log.max.record.bytes.between.snapshots.
            metadata_snapshot_bytes: 20 * 1024 * 1024,
            replica_lag_time_max_ms: 30_000,
            replica_fetch_wait_max_ms: 500,
            replica_fetch_max_bytes: 1_048_576,
            replica_fetch_response_max_bytes: 10_485_760,
            replica_fetch_backoff_ms: 1_000,
            replica_high_watermark_checkpoint_interval_ms: 5_000,
            leadership: LeadershipConfig::default(),
        }
    }
}

/// Kafka keys that tune Kafka's JVM implementation (thread pools, buffers) and
/// have no meaning here. They are accepted, so that existing property files load,
/// and logged once so nobody expects them to do something.
const ACCEPTED_WITHOUT_EFFECT: &[&str] = &[
    "num.network.threads",
    "num.io.threads",
    "num.replica.fetchers",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "queued.max.requests",
    "background.threads",
    "log.cleaner.threads",
    "log.cleaner.dedupe.buffer.size",
    "log.cleaner.io.buffer.size",
    "listener.security.protocol.map",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "share.coordinator.state.topic.replication.factor",
    "share.coordinator.state.topic.min.isr",
    "log.preallocate",
    "zookeeper.connect",
];

impl BrokerConfig {
    /// Reads and validates a `.properties` file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        let props = parse_properties(&text)?;
        Self::from_properties(&props)
    }

    /// Builds a config from already-parsed properties, over Kafka's defaults; `${env:NAME}`
    /// references read this process's environment.
    pub fn from_properties(props: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        Self::from_properties_with_env(props, &|name| std::env::var(name))
    }

    /// As [`Self::from_properties`], with `${env:NAME}` references read through `env`.
    pub fn from_properties_with_env(
        props: &BTreeMap<String, String>,
        env: EnvLookup<'_>,
    ) -> Result<Self, ConfigError> {
        let props = providers::resolve(props, env)?;
        let mut config = BrokerConfig::default();
        let mut retention_ms = None;
        let mut retention_minutes = None;
        let mut retention_hours = None;
        let mut roll_ms = None;
        let mut roll_hours = None;
        let mut saw_roles = false;
        for (key, value) in &props {
            let v = value.as_str();
            match key.as_str() {
                "node.id" | "broker.id" => config.node_id = parse_num(key, v)?,
                "process.roles" => {
                    config.roles = parse_roles(key, v)?;
                    saw_roles = true;
                }
                "listeners" => config.listeners = parse_listeners(key, v)?,
                "advertised.listeners" => config.advertised_listeners = parse_listeners(key, v)?,
                "controller.listener.names" => config.controller_listener_names = split_list(v),
                "inter.broker.listener.name" => {
                    config.inter_broker_listener_name = Some(v.to_string())
                }
                "controller.quorum.voters" => config.quorum_voters = parse_voters(key, v)?,
                "broker.rack" => config.rack = Some(v.to_string()),
                "log.dirs" | "log.dir" => {
                    config.log_dirs = split_list(v).into_iter().map(PathBuf::from).collect();
                    if config.log_dirs.is_empty() {
                        return Err(invalid(key, v, "at least one directory is needed"));
                    }
                }
                "metadata.log.dir" => config.metadata_log_dir = Some(PathBuf::from(v)),
                "num.partitions" => config.num_partitions = parse_positive(key, v)?,
                "default.replication.factor" => {
                    config.default_replication_factor = parse_positive(key, v)?
                }
                "auto.create.topics.enable" => {
                    config.auto_create_topics_enable = parse_bool(key, v)?
                }
                "delete.topic.enable" => config.delete_topic_enable = parse_bool(key, v)?,
                "min.insync.replicas" => config.min_insync_replicas = parse_positive(key, v)?,
                "log.segment.bytes" => {
                    config.log_segment_bytes = parse_num(key, v)?;
                    if config.log_segment_bytes < 14 || config.log_segment_bytes > i32::MAX as u64 {
                        return Err(invalid(key, v, "must be between 14 and 2147483647"));
                    }
                }
                "log.roll.ms" => roll_ms = Some(parse_positive(key, v)?),
                "log.roll.hours" => roll_hours = Some(parse_positive::<i64>(key, v)?),
                "log.retention.ms" => retention_ms = Some(parse_num::<i64>(key, v)?),
                "log.retention.minutes" => retention_minutes = Some(parse_num::<i64>(key, v)?),
                "log.retention.hours" => retention_hours = Some(parse_num::<i64>(key, v)?),
                "log.retention.bytes" => config.log_retention_bytes = parse_num(key, v)?,
                "log.retention.check.interval.ms" => {
                    config.log_retention_check_interval_ms = parse_positive(key, v)?
                }
                "log.index.interval.bytes" => config.log_index_interval_bytes = parse_num(key, v)?,
                "log.index.size.max.bytes" => {
                    config.log_index_size_max_bytes = parse_positive(key, v)?
                }
                "log.cleanup.policy" => {
                    config.log_cleanup_policy =
                        CleanupPolicy::parse(v).map_err(|reason| invalid(key, v, &reason))?
                }
                "log.cleaner.enable" => config.log_cleaner_enable = parse_bool(key, v)?,
                "log.cleaner.backoff.ms" => config.log_cleaner_backoff_ms = parse_positive(key, v)?,
                "num.recovery.threads.per.data.dir" => {
                    config.num_recovery_threads_per_data_dir = parse_positive(key, v)?
                }
                "log.cleaner.min.cleanable.ratio" => {
                    let ratio: f64 = parse_num(key, v)?;
                    if !(0.0..=1.0).contains(&ratio) {
                        return Err(invalid(key, v, "must be between 0 and 1"));
                    }
                    config.log_cleaner_min_cleanable_ratio = ratio;
                }
                "log.cleaner.delete.retention.ms" => {
                    config.log_cleaner_delete_retention_ms = parse_num(key, v)?
                }
                "log.cleaner.min.compaction.lag.ms" => {
                    config.log_cleaner_min_compaction_lag_ms = parse_num(key, v)?
                }
                "log.flush.interval.messages" => {
                    config.log_flush_interval_messages = Some(parse_positive(key, v)?)
                }
                "log.flush.interval.ms" => {
                    config.log_flush_interval_ms = Some(parse_positive(key, v)?)
                }
                "log.flush.offset.checkpoint.interval.ms" => {
                    config.log_flush_offset_checkpoint_interval_ms = parse_positive(key, v)?
                }
                "log.message.timestamp.type" => {
                    config.log_message_timestamp_type_log_append = parse_timestamp_type(key, v)?
                }
                "message.max.bytes" => config.message_max_bytes = parse_positive(key, v)?,
                "compression.type" => {
                    config.compression_type = crate::storage::parse_compression_type(v)
                        .map_err(|reason| invalid(key, v, &reason))?
                }
                "socket.request.max.bytes" => {
                    config.socket_request_max_bytes = parse_positive(key, v)?
                }
                "offsets.topic.num.partitions" => {
                    config.offsets_topic_num_partitions = parse_positive(key, v)?
                }
                "offsets.topic.replication.factor" => {
                    config.offsets_topic_replication_factor = Some(parse_positive(key, v)?)
                }
                "offsets.retention.minutes" => {
                    config.offsets_retention_ms = parse_positive::<i64>(key, v)? * 60_000
                }
                "offsets.retention.check.interval.ms" => {
                    config.offsets_retention_check_interval_ms = parse_positive(key, v)?
                }
                "group.initial.rebalance.delay.ms" => {
                    config.group_initial_rebalance_delay_ms = parse_num(key, v)?
                }
                "group.min.session.timeout.ms" => {
                    config.group_min_session_timeout_ms = parse_positive(key, v)?
                }
                "group.max.session.timeout.ms" => {
                    config.group_max_session_timeout_ms = parse_positive(key, v)?
                }
                "group.max.size" => config.group_max_size = parse_positive(key, v)?,
                "admin.http.listener" => {
                    config.admin_http_listener =
                        Some(v.parse().map_err(|_| {
                            invalid(key, v, "expected host:port, e.g. 0.0.0.0:8080")
                        })?)
                }
                "replica.lag.time.max.ms" => {
                    config.replica_lag_time_max_ms = parse_positive(key, v)?
                }
                "replica.fetch.wait.max.ms" => {
                    config.replica_fetch_wait_max_ms = parse_positive(key, v)?
                }
                "replica.fetch.max.bytes" => {
                    config.replica_fetch_max_bytes = parse_positive(key, v)?
                }
                "replica.fetch.response.max.bytes" => {
                    config.replica_fetch_response_max_bytes = parse_positive(key, v)?
                }
                "replica.fetch.backoff.ms" => {
                    config.replica_fetch_backoff_ms = parse_positive(key, v)?
                }
                "replica.high.watermark.checkpoint.interval.ms" => {
                    config.replica_high_watermark_checkpoint_interval_ms = parse_positive(key, v)?
                }
                "broker.session.timeout.ms" => {
                    config.broker_session_timeout_ms = parse_positive(key, v)?
                }
                "broker.heartbeat.interval.ms" => {
                    config.broker_heartbeat_interval_ms = parse_positive(key, v)?
                }
                "controller.quorum.election.timeout.ms" => {
                    config.quorum.election_timeout_ms = parse_positive(key, v)?
                }
                "controller.quorum.fetch.timeout.ms" => {
                    config.quorum.fetch_timeout_ms = parse_positive(key, v)?
                }
                "controller.quorum.election.backoff.max.ms" => {
                    config.quorum.election_backoff_max_ms = parse_positive(key, v)?
                }
                "controller.quorum.request.timeout.ms" => {
                    config.quorum.request_timeout_ms = parse_positive(key, v)?
                }
                "controller.quorum.retry.backoff.ms" => {
                    config.quorum.retry_backoff_ms = parse_positive(key, v)?
                }
                "unclean.leader.election.enable" => {
                    config.leadership.unclean_leader_election = parse_bool(key, v)?
                }
                "auto.leader.rebalance.enable" => {
                    config.leadership.auto_leader_rebalance = parse_bool(key, v)?
                }
                "leader.imbalance.check.interval.seconds" => {
                    config.leadership.imbalance_check_interval_ms =
                        parse_positive::<u64>(key, v)?.saturating_mul(1000)
                }
                "removal.max.concurrent.moves.per.broker" => {
                    config.leadership.removal_max_moves_per_broker = parse_positive(key, v)?
                }
                "replica.selector.class" => {
                    config.leadership.rack_aware_replica_selector = match v {
                        RACK_AWARE_REPLICA_SELECTOR => true,
                        LEADER_SELECTOR | "" => false,
                        _ => return Err(invalid(
                            key,
                            v,
                            "expected org.apache.kafka.common.replica.RackAwareReplicaSelector \
                                 or org.apache.kafka.common.replica.LeaderSelector",
                        )),
                    }
                }
                "metadata.log.max.record.bytes.between.snapshots" => {
                    config.metadata_snapshot_bytes = parse_positive(key, v)?
                }
                other if ACCEPTED_WITHOUT_EFFECT.contains(&other) => {
                    tracing::info!(
                        key = other,
                        "config key accepted; it has no effect in this broker"
                    )
                }
                other => return Err(ConfigError::UnknownKey(other.to_string())),
            }
        }
        if !saw_roles {
            return Err(ConfigError::Missing("process.roles"));
        }
        if let Some(ms) = retention_ms {
            config.log_retention_ms = ms;
        } else if let Some(min) = retention_minutes {
            config.log_retention_ms = min * 60_000;
        } else if let Some(h) = retention_hours {
            config.log_retention_ms = h * 3_600_000;
        }
        if let Some(ms) = roll_ms {
            config.log_roll_ms = ms;
        } else if let Some(h) = roll_hours {
            config.log_roll_ms = h * 3_600_000;
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.roles.broker && self.client_listener().is_none() {
            return Err(ConfigError::InvalidValue {
                key: "listeners".into(),
                value: self.listeners_text(),
                reason: "a broker needs a listener that is not a controller listener".into(),
            });
        }
        if self.quorum_voters.is_empty() {
            return Err(ConfigError::Missing("controller.quorum.voters"));
        }
        if self.roles.controller {
            if !self
                .quorum_voters
                .iter()
                .any(|(id, _, _)| *id == self.node_id)
            {
                return Err(ConfigError::InvalidValue {
                    key: "controller.quorum.voters".into(),
                    value: self.voters_text(),
                    reason: format!(
                        "a controller must be one of the voters, and node.id={} is not",
                        self.node_id
                    ),
                });
            }
            if self.controller_listener().is_none() {
                return Err(ConfigError::InvalidValue {
                    key: "listeners".into(),
                    value: self.listeners_text(),
                    reason: format!(
                        "a controller needs a listener named in controller.listener.names ({})",
                        self.controller_listener_names.join(",")
                    ),
                });
            }
        }
        Ok(())
    }

    fn voters_text(&self) -> String {
        self.quorum_voters
            .iter()
            .map(|(id, host, port)| format!("{id}@{host}:{port}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The listener voters and brokers reach this controller on.
    pub fn controller_listener(&self) -> Option<&Listener> {
        self.listeners
            .iter()
            .find(|l| self.controller_listener_names.contains(&l.name))
    }

    fn listeners_text(&self) -> String {
        self.listeners
            .iter()
            .map(|l| format!("{}://{}:{}", l.name, l.host, l.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The listener clients connect to: the first one that is not a controller listener.
    pub fn client_listener(&self) -> Option<&Listener> {
        self.listeners
            .iter()
            .find(|l| !self.controller_listener_names.contains(&l.name))
    }

    /// The host and port this broker tells clients to use for `listener`.
    pub fn advertised_address(&self, listener: &Listener) -> (String, u16) {
        if let Some(adv) = self
            .advertised_listeners
            .iter()
            .find(|a| a.name == listener.name)
        {
            return (adv.host.clone(), adv.port);
        }
        let host = if listener.host.is_empty() || listener.host == "0.0.0.0" {
            "localhost".to_string()
        } else {
            listener.host.clone()
        };
        (host, listener.port)
    }

    /// Directory holding `__cluster_metadata-0`.
    pub fn metadata_dir(&self) -> &Path {
        self.metadata_log_dir
            .as_deref()
            .unwrap_or(&self.log_dirs[0])
    }
}

/// Parses the `.properties` syntax Kafka uses: `key=value` or `key: value`
/// lines, `#`/`!` comments, blank lines.
pub fn parse_properties(text: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut props = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let split = line.find(['=', ':']).ok_or_else(|| ConfigError::Syntax {
            line: index + 1,
            text: line.to_string(),
        })?;
        let key = line[..split].trim();
        if key.is_empty() {
            return Err(ConfigError::Syntax {
                line: index + 1,
                text: line.to_string(),
            });
        }
        props.insert(key.to_string(), line[split + 1..].trim().to_string());
    }
    Ok(props)
}

fn invalid(key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, ConfigError> {
    value
        .parse()
        .map_err(|_| invalid(key, value, "not a number"))
}

fn parse_positive<T: std::str::FromStr + PartialOrd + Default>(
    key: &str,
    value: &str,
) -> Result<T, ConfigError> {
    let n: T = parse_num(key, value)?;
    if n <= T::default() {
        return Err(invalid(key, value, "must be positive"));
    }
    Ok(n)
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, value, "expected true or false")),
    }
}

/// `CreateTime` or `LogAppendTime`; returns true for LogAppendTime.
pub fn parse_timestamp_type(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value {
        "CreateTime" => Ok(false),
        "LogAppendTime" => Ok(true),
        _ => Err(invalid(key, value, "expected CreateTime or LogAppendTime")),
    }
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn parse_roles(key: &str, value: &str) -> Result<Roles, ConfigError> {
    let mut roles = Roles {
        broker: false,
        controller: false,
    };
    for role in split_list(value) {
        match role.as_str() {
            "broker" => roles.broker = true,
            "controller" => roles.controller = true,
            _ => {
                return Err(invalid(
                    key,
                    value,
                    "roles are `broker`, `controller` or both",
                ))
            }
        }
    }
    if !roles.broker && !roles.controller {
        return Err(invalid(
            key,
            value,
            "roles are `broker`, `controller` or both",
        ));
    }
    Ok(roles)
}

fn parse_listeners(key: &str, value: &str) -> Result<Vec<Listener>, ConfigError> {
    split_list(value)
        .into_iter()
        .map(|entry| {
            let (name, rest) = entry
                .split_once("://")
                .ok_or_else(|| invalid(key, value, "expected NAME://host:port"))?;
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| invalid(key, value, "expected NAME://host:port"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            Ok(Listener {
                name: name.to_string(),
                host: host.to_string(),
                port: port
                    .parse()
                    .map_err(|_| invalid(key, value, "port is not a number"))?,
            })
        })
        .collect()
}

fn parse_voters(key: &str, value: &str) -> Result<Vec<(i32, String, u16)>, ConfigError> {
    split_list(value)
        .into_iter()
        .map(|entry| {
            let bad = || invalid(key, value, "expected id@host:port entries");
            let (id, addr) = entry.split_once('@').ok_or_else(bad)?;
            let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
            Ok((
                id.parse().map_err(|_| bad())?,
                host.to_string(),
                port.parse().map_err(|_| bad())?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<BrokerConfig, ConfigError> {
        BrokerConfig::from_properties(&parse_properties(text).unwrap())
    }

    #[test]
    fn reads_a_kafka_combined_node_file() {
        let config = load(
            "# comment\nprocess.roles=broker,controller\nnode.id=3\n\
             listeners=PLAINTEXT://:9092,CONTROLLER://:9093\n\
             advertised.listeners=PLAINTEXT://kafka-0.example:9092\n\
             controller.quorum.voters=3@localhost:9093\nlog.dirs=/a,/b\n\
             log.retention.hours=2\nnum.io.threads=8\nbroker.session.timeout.ms=4000\n",
        )
        .unwrap();
        assert_eq!(config.node_id, 3);
        assert!(config.roles.broker && config.roles.controller);
        assert_eq!(
            config.log_dirs,
            vec![PathBuf::from("/a"), PathBuf::from("/b")]
        );
        assert_eq!(config.log_retention_ms, 2 * 3_600_000);
        assert_eq!(config.broker_session_timeout_ms, 4000);
        assert_eq!(config.broker_heartbeat_interval_ms, 2000);
        assert_eq!(config.quorum_voters, vec![(3, "localhost".into(), 9093)]);
        let client = config.client_listener().unwrap();
        assert_eq!(client.port, 9092);
        assert_eq!(
            config.advertised_address(client),
            ("kafka-0.example".to_string(), 9092)
        );
    }

    #[test]
    fn rack_comes_from_the_process_environment() {
        // Cargo sets CARGO_PKG_NAME in the environment of the tests it runs.
        let config = load(&format!(
            "process.roles=broker,controller\nnode.id=1\nlisteners=PLAINTEXT://:9092,CONTROLLER://:9093\n\
             controller.quorum.voters=1@localhost:9093\nconfig.providers=env\n\
             config.providers.env.class={ENV_PROVIDER_CLASS}\nbroker.rack=${{env:CARGO_PKG_NAME}}\n"
        ))
        .unwrap();
        assert_eq!(config.rack.as_deref(), Some(env!("CARGO_PKG_NAME")));
    }

    #[test]
    fn retention_ms_wins_over_hours() {
        let config =
            load("process.roles=broker,controller\nnode.id=1\nlisteners=PLAINTEXT://:9092,CONTROLLER://:9093\n\
                  controller.quorum.voters=1@localhost:9093\nlog.retention.hours=5\nlog.retention.ms=10\n")
                .unwrap();
        assert_eq!(config.log_retention_ms, 10);
    }

    #[test]
    fn quorum_settings_are_checked_against_the_roles() {
        let err = load("process.roles=broker\n").unwrap_err();
        assert!(
            err.to_string().contains("controller.quorum.voters"),
            "{err}"
        );
        let err = load(
            "process.roles=controller\nnode.id=2\nlisteners=CONTROLLER://:9093\n\
             controller.quorum.voters=1@a:9093\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("node.id=2 is not"), "{err}");
        let err = load(
            "process.roles=controller\nnode.id=1\nlisteners=PLAINTEXT://:9092\n\
             controller.quorum.voters=1@a:9093\n",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("controller.listener.names"),
            "{err}"
        );
        let config = load(
            "process.roles=controller\nnode.id=1\nlisteners=CONTROLLER://:9093\n\
             controller.quorum.voters=1@a:9093\ncontroller.quorum.fetch.timeout.ms=3000\n",
        )
        .unwrap();
        assert_eq!(config.quorum.fetch_timeout_ms, 3000);
        assert_eq!(config.controller_listener().unwrap().port, 9093);
    }

    #[test]
    fn unknown_key_is_named() {
        let err = load("process.roles=broker,controller\nlog.retension.ms=5\n").unwrap_err();
        assert_eq!(err.to_string(), "unknown config key `log.retension.ms`");
    }

    #[test]
    fn bad_values_are_named() {
        let err = load("process.roles=broker\nnum.partitions=zero\n").unwrap_err();
        assert!(err.to_string().contains("num.partitions"), "{err}");
        let err = load("process.roles=worker\n").unwrap_err();
        assert!(err.to_string().contains("process.roles"), "{err}");
        let err = load("process.roles=broker\nlisteners=nonsense\n").unwrap_err();
        assert!(err.to_string().contains("listeners"), "{err}");
    }

    #[test]
    fn roles_are_required() {
        let err = load("node.id=1\n").unwrap_err();
        assert!(err.to_string().contains("process.roles"), "{err}");
    }

    #[test]
    fn syntax_errors_give_the_line() {
        let err = parse_properties("a=1\njunk line\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2: expected `key=value`, found `junk line`"
        );
    }
}
