//! The controller: one writer that turns requests into records, commits them
//! to the metadata log, then applies and publishes them.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};

use super::error::ControllerError;
use super::log::MetadataLog;
use super::log::MetadataLogError;
use super::sessions::BrokerSessions;
use crate::config::BrokerConfig;
use crate::metadata::{MetadataImage, MetadataPublisher, MetadataRecord};
use crate::storage::LogConfig;

/// How long a committed write may take to reach the image; only a stuck
/// loader (a corrupt log) makes it longer.
const APPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// State only the writer touches; holding its lock serializes operations.
pub(super) struct WriterState {
    pub sessions: BrokerSessions,
}

pub struct Controller {
    config: BrokerConfig,
    log_defaults: LogConfig,
    log: Arc<dyn MetadataLog>,
    publisher: Arc<MetadataPublisher>,
    writer: Mutex<WriterState>,
}

impl Controller {
    /// A controller writing to `log`, whose committed records reach
    /// `publisher` through the metadata loader. It writes only once
    /// [`Self::activate`]d.
    pub fn open(
        config: &BrokerConfig,
        publisher: Arc<MetadataPublisher>,
        log: Arc<dyn MetadataLog>,
    ) -> Result<Arc<Controller>, ControllerError> {
        let controller = Arc::new(Controller {
            config: config.clone(),
            log_defaults: LogConfig::from_broker(config),
            log,
            publisher,
            writer: Mutex::new(WriterState {
                sessions: BrokerSessions::new(config.broker_session_timeout_ms),
            }),
        });
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

    pub fn publisher(&self) -> &Arc<MetadataPublisher> {
        &self.publisher
    }

    /// Takes the writer lock; the image read under it is the latest one.
    pub(super) fn write(&self) -> MutexGuard<'_, WriterState> {
        self.writer.lock()
    }

    /// The writer lock if it comes free within `timeout`.
    pub(super) fn write_within(&self, timeout: Duration) -> Option<MutexGuard<'_, WriterState>> {
        self.writer.try_lock_for(timeout)
    }

    /// Appends `records` as one batch and returns the image once they are
    /// committed and applied. Callers hold the writer lock and validated
    /// against `image`, the current one.
    pub(super) fn commit(
        &self,
        image: &MetadataImage,
        records: Vec<MetadataRecord>,
    ) -> Result<Arc<MetadataImage>, ControllerError> {
        // Apply to a scratch copy first so a record that does not fit never reaches the log.
        let predicted = image.metadata_offset + records.len() as i64;
        image
            .try_apply(&records, predicted)
            .map_err(|source| ControllerError::Apply {
                offset: predicted,
                source,
            })?;
        let encoded = records.iter().map(MetadataRecord::encode).collect();
        let last_offset = self.log.append(encoded, image.metadata_offset)?;
        if !self.publisher.wait_for_offset(last_offset, APPLY_TIMEOUT) {
            return Err(MetadataLogError::Timeout.into());
        }
        tracing::debug!(
            offset = last_offset,
            records = records.len(),
            "metadata committed"
        );
        Ok(self.publisher.current())
    }
}
