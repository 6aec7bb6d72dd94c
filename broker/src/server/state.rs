//! What every handler shares: config, logs, controller, groups, metrics.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use tokio::sync::watch;

use crate::config::BrokerConfig;
use crate::controller::{Controller, InternalTopic, NewTopic};
use crate::group::GroupCoordinator;
use crate::metadata::{MetadataImage, PartitionImage, TopicImage};
use crate::protocol::ApiVersionTable;
use crate::replication::alter_partition::LocalController;
use crate::replication::{Partition, ReplicaManager, ReplicationConfig};
use crate::server::metrics::Metrics;
use crate::storage::{LogConfig, LogManager, PartitionLog, StorageError, TopicPartition};

pub struct BrokerState {
    pub config: BrokerConfig,
    pub api_versions: ApiVersionTable,
    pub logs: Arc<LogManager>,
    pub controller: Arc<Controller>,
    pub groups: Arc<GroupCoordinator>,
    pub metrics: Arc<Metrics>,
    pub log_defaults: LogConfig,
    pub replicas: Arc<ReplicaManager>,
    /// Bumped after every produce request that appended; wakes long-polling fetches.
    appends: watch::Sender<u64>,
}

/// A per-partition failure: a Kafka error code and, where useful, a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionError {
    pub code: i16,
    pub message: Option<String>,
}

impl PartitionError {
    pub fn new(error: ResponseError) -> Self {
        PartitionError {
            code: error.code(),
            message: None,
        }
    }

    pub fn with_message(error: ResponseError, message: &str) -> Self {
        PartitionError {
            code: error.code(),
            message: Some(message.to_string()),
        }
    }

    pub fn from_storage(error: &StorageError) -> Self {
        if matches!(error, StorageError::Io(_)) {
            tracing::error!(%error, "storage failure");
        }
        PartitionError {
            code: error.kafka_error_code(),
            message: Some(error.to_string()),
        }
    }
}

impl BrokerState {
    pub fn new(
        config: BrokerConfig,
        logs: Arc<LogManager>,
        controller: Arc<Controller>,
        groups: Arc<GroupCoordinator>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let appends = watch::channel(0).0;
        let replicas = ReplicaManager::new(
            ReplicationConfig::from_broker(&config),
            logs.clone(),
            appends.clone(),
            Arc::new(LocalController(controller.clone())),
            &metrics.registry,
        );
        BrokerState {
            log_defaults: LogConfig::from_broker(&config),
            replicas,
            api_versions: crate::handlers::implemented_versions(),
            config,
            logs,
            controller,
            groups,
            metrics,
            appends,
        }
    }

    /// The metadata image this request works with, start to end.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.controller.publisher().current()
    }

    pub fn subscribe_appends(&self) -> watch::Receiver<u64> {
        self.appends.subscribe()
    }

    pub fn notify_appended(&self) {
        self.appends.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The effective log config of a topic: broker defaults plus its overrides.
    pub fn topic_log_config(&self, topic: &TopicImage) -> LogConfig {
        self.log_defaults
            .with_overrides(&topic.configs)
            .unwrap_or_else(|error| {
                // Configs are validated before they are committed; this only
                // guards against a metadata log written by another version.
                tracing::warn!(topic = %topic.name, %error, "ignoring invalid topic config");
                self.log_defaults.clone()
            })
    }

    /// The local log of a partition this node leads, created on first use so
    /// that a topic is writable as soon as its creation is committed.
    pub fn leader_log<'a>(
        &self,
        image: &'a MetadataImage,
        topic: &str,
        partition: i32,
    ) -> Result<(Arc<PartitionLog>, &'a PartitionImage), PartitionError> {
        let unknown = || PartitionError::new(ResponseError::UnknownTopicOrPartition);
        let topic_image = image.topic(topic).ok_or_else(unknown)?;
        let meta = usize::try_from(partition)
            .ok()
            .and_then(|p| topic_image.partitions.get(p))
            .ok_or_else(unknown)?;
        if meta.leader != self.config.node_id {
            return Err(PartitionError::new(ResponseError::NotLeaderOrFollower));
        }
        let tp = TopicPartition::new(topic, partition);
        let log = match self.logs.get(&tp) {
            Some(log) => log,
            None => self
                .logs
                .get_or_create(&tp, self.topic_log_config(topic_image))
                .map_err(|e| PartitionError::from_storage(&e))?,
        };
        Ok((log, meta))
    }

    /// [`Self::leader_log`]'s partition in its replication role.
    pub fn leader_partition<'a>(
        &self,
        image: &'a MetadataImage,
        topic: &str,
        partition: i32,
    ) -> Result<(Arc<Partition>, &'a PartitionImage), PartitionError> {
        let (log, meta) = self.leader_log(image, topic, partition)?;
        let tp = TopicPartition::new(topic, partition);
        let hosted = self
            .replicas
            .hosted(&tp, &log, meta)
            .map_err(PartitionError::new)?;
        Ok((hosted, meta))
    }

    /// Creates a topic with the broker's defaults (Metadata auto-creation).
    /// A topic that someone else created meanwhile is a success.
    pub async fn auto_create_topic(&self, name: &str) -> Result<(), i16> {
        let created = tokio::task::block_in_place(|| {
            self.controller
                .create_topics(vec![NewTopic::with_defaults(name)], false)
        });
        match created {
            Ok(results) => match results.into_iter().next() {
                Some(Err(e)) if e.error != ResponseError::TopicAlreadyExists => Err(e.error.code()),
                _ => Ok(()),
            },
            Err(e) => Err(e.to_api_error().error.code()),
        }
    }

    /// Creates `__consumer_offsets` if it does not exist yet.
    pub async fn ensure_offsets_topic(&self) -> Result<(), i16> {
        tokio::task::block_in_place(|| {
            self.controller
                .ensure_internal_topic(InternalTopic::ConsumerOffsets)
        })
        .map(|_| ())
        .map_err(|e| e.to_api_error().error.code())
    }

    /// Where clients reach this broker.
    pub fn advertised_client_address(&self) -> (String, u16) {
        let listener = self
            .config
            .client_listener()
            .expect("validated at config load: a broker has a client listener");
        self.config.advertised_address(listener)
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
