//! What every handler shares: config, logs, controller, groups, metrics.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use tokio::sync::watch;

use crate::client::ControllerChannel;
use crate::config::BrokerConfig;
use crate::controller::{Controller, InternalTopic, NewTopic};
use crate::handlers::forward::via_controller;
use crate::kraft::QuorumView;
use kafka_protocol::messages::CreateTopicsRequest;

/// The CreateTopics version the broker's own requests use (the newest we serve).
const CREATE_TOPICS_VERSION: i16 = 7;
use crate::group::GroupCoordinator;
use crate::metadata::{MetadataImage, PartitionImage, TopicImage};
use crate::protocol::ApiVersionTable;
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
    /// The metadata quorum as the Raft driver sees it.
    pub quorum: watch::Receiver<QuorumView>,
    /// Reaches the active controller for requests this node cannot serve itself.
    pub controller_channel: Arc<ControllerChannel>,
    /// Producer ids this broker may hand out, from its latest block.
    pub producer_ids: tokio::sync::Mutex<std::ops::Range<i64>>,
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
        quorum: watch::Receiver<QuorumView>,
        controller_channel: Arc<ControllerChannel>,
    ) -> Self {
        let appends = watch::channel(0).0;
        let replicas = ReplicaManager::new(
            ReplicationConfig::from_broker(&config),
            logs.clone(),
            appends.clone(),
            controller_channel.clone(),
            &metrics.registry,
        );
        BrokerState {
            quorum,
            controller_channel,
            producer_ids: tokio::sync::Mutex::new(0..0),
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

    /// Whether this node is the active controller, so metadata changes run here.
    pub fn controller_is_local(&self) -> bool {
        self.config.roles.controller && self.quorum.borrow().active
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
        self.log_defaults.for_topic(&topic.name, &topic.configs)
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
        let config = || self.topic_log_config(topic_image);
        let log = match self.logs.get_for_topic(&tp, topic_image.id) {
            Ok(Some(log)) => Ok(log),
            Ok(None) => self.logs.get_or_create(&tp, topic_image.id, config()),
            // Deleted and created again, and log sync has not dropped the old log yet.
            // Unless this request's image is the older one (the log is the newer topic's).
            Err(StorageError::StaleTopicLog)
                if self
                    .image()
                    .topic(topic)
                    .is_some_and(|t| t.id == topic_image.id) =>
            {
                self.logs.replace_stale(&tp, topic_image.id, config())
            }
            Err(e) => Err(e),
        }
        .map_err(|e| PartitionError::from_storage(&e))?;
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
        self.create_topic(&NewTopic::with_defaults(name)).await
    }

    /// Creates `__consumer_offsets` if it does not exist yet.
    pub async fn ensure_offsets_topic(&self) -> Result<(), i16> {
        let which = InternalTopic::ConsumerOffsets;
        if self.image().topic(which.name()).is_some() {
            return Ok(());
        }
        self.create_topic(&self.controller.internal_topic(which))
            .await
    }

    /// Creates `topic` through the active controller; an existing topic is a success.
    async fn create_topic(&self, topic: &NewTopic) -> Result<(), i16> {
        let request = CreateTopicsRequest::default()
            .with_topics(vec![crate::handlers::topics::creatable_topic(topic)]);
        let response = via_controller(self, request, |controller, request| {
            crate::handlers::topics::create_topics(controller, CREATE_TOPICS_VERSION, request)
        })
        .await;
        match response.topics.first().map(|t| t.error_code) {
            Some(0) => Ok(()),
            Some(code) if code == ResponseError::TopicAlreadyExists.code() => Ok(()),
            Some(code) => Err(code),
            None => Err(ResponseError::UnknownServerError.code()),
        }
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
