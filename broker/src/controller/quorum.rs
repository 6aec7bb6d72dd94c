//! The controller: one writer that turns requests into records, commits them
//! to the metadata log, then applies and publishes them.

use std::ops::Range;
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use super::error::ControllerError;
use super::log::MetadataLog;
use super::sessions::BrokerSessions;
use crate::config::BrokerConfig;
use crate::metadata::{MetadataImage, MetadataPublisher, MetadataRecord};
use crate::storage::LogConfig;

/// State only the writer touches; holding its lock serializes operations.
pub(super) struct WriterState {
    /// Producer ids of the current block not yet handed out.
    pub producer_ids: Range<i64>,
    pub sessions: BrokerSessions,
}

pub struct Controller {
    config: BrokerConfig,
    log_defaults: LogConfig,
    log: Arc<dyn MetadataLog>,
    publisher: MetadataPublisher,
    writer: Mutex<WriterState>,
}

impl Controller {
    /// Replays `log` into an image; on a brand-new log, bootstraps the
    /// metadata version and registers this node.
    pub fn open(
        config: &BrokerConfig,
        cluster_id: String,
        log: Arc<dyn MetadataLog>,
    ) -> Result<Arc<Controller>, ControllerError> {
        let mut image = MetadataImage::empty(cluster_id);
        for (offset, bytes) in log.replay()? {
            let record = MetadataRecord::decode(&bytes)
                .map_err(|source| ControllerError::Decode { offset, source })?;
            image
                .apply_record(&record)
                .map_err(|source| ControllerError::Apply { offset, source })?;
            image.metadata_offset = offset;
        }
        tracing::info!(
            offset = image.metadata_offset,
            topics = image.topics.len(),
            "metadata log replayed"
        );
        let controller = Arc::new(Controller {
            config: config.clone(),
            log_defaults: LogConfig::from_broker(config),
            log,
            publisher: MetadataPublisher::new(image),
            writer: Mutex::new(WriterState {
                producer_ids: 0..0,
                sessions: BrokerSessions::new(config.broker_session_timeout_ms),
            }),
        });
        controller.bootstrap()?;
        Ok(controller)
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// The topic config every topic starts from: the broker's `log.*` values.
    pub fn log_defaults(&self) -> &LogConfig {
        &self.log_defaults
    }

    /// The current snapshot; take one per request.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.publisher.current()
    }

    pub fn publisher(&self) -> &MetadataPublisher {
        &self.publisher
    }

    /// Takes the writer lock; the image read under it is the latest one.
    pub(super) fn write(&self) -> MutexGuard<'_, WriterState> {
        self.writer.lock()
    }

    /// Appends `records` as one batch, then applies and publishes them.
    /// Callers hold the writer lock and validated against `image`, the current one.
    pub(super) fn commit(
        &self,
        image: &MetadataImage,
        records: Vec<MetadataRecord>,
    ) -> Result<Arc<MetadataImage>, ControllerError> {
        // Apply before appending so a record that does not fit never reaches the log.
        let predicted = image.metadata_offset + records.len() as i64;
        let mut next =
            image
                .try_apply(&records, predicted)
                .map_err(|source| ControllerError::Apply {
                    offset: predicted,
                    source,
                })?;
        let encoded = records.iter().map(MetadataRecord::encode).collect();
        next.metadata_offset = self.log.append(encoded)?;
        let next = Arc::new(next);
        self.publisher.publish(next.clone());
        tracing::debug!(
            offset = next.metadata_offset,
            records = records.len(),
            "metadata committed"
        );
        Ok(next)
    }
}
