//! Producer ids for idempotent producers, handed out from blocks recorded in
//! the metadata log so that no id is ever given twice, even across restarts.

use kafka_protocol::error::ResponseError;

use super::error::{ApiError, ControllerError};
use super::quorum::Controller;
use crate::metadata::records::ProducerIdsRecord;
use crate::metadata::MetadataRecord;

/// Ids per ProducerIdsRecord, as Kafka's controller allocates them.
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

impl Controller {
    /// A producer id no one has had before.
    pub fn allocate_producer_id(&self) -> Result<i64, ControllerError> {
        let mut writer = self.write();
        if let Some(id) = writer.producer_ids.next() {
            return Ok(id);
        }
        let image = self.image();
        let start = image.next_producer_id;
        let end = start.checked_add(PRODUCER_ID_BLOCK_SIZE).ok_or_else(|| {
            ApiError::new(
                ResponseError::UnknownServerError,
                "producer ids are exhausted",
            )
        })?;
        let node_id = self.config().node_id;
        let broker_epoch = image.brokers.get(&node_id).map_or(-1, |b| b.epoch);
        self.commit(
            &image,
            vec![MetadataRecord::ProducerIds(ProducerIdsRecord {
                broker_id: node_id,
                broker_epoch,
                next_producer_id: end,
            })],
        )?;
        tracing::debug!(start, end, "new producer id block");
        // The block is only used once it is durable.
        writer.producer_ids = start + 1..end;
        Ok(start)
    }
}
