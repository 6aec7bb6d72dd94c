//! Producer id blocks for idempotent producers (Kafka's AllocateProducerIds):
//! each block is recorded in the metadata log before a broker hands out its
//! ids, so no id is ever given twice, even across restarts and failovers.

use std::ops::Range;

use kafka_protocol::error::ResponseError;

use super::error::{ApiError, ControllerError};
use super::quorum::Controller;
use crate::metadata::records::ProducerIdsRecord;
use crate::metadata::MetadataRecord;

/// Ids per block, as Kafka's controller allocates them.
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

impl Controller {
    /// A fresh block of producer ids for broker `broker_id`, whose
    /// registration must be current (`broker_epoch`).
    pub fn allocate_producer_ids(
        &self,
        broker_id: i32,
        broker_epoch: i64,
    ) -> Result<Range<i64>, ControllerError> {
        let _writer = self.write();
        let image = self.image();
        match image.brokers.get(&broker_id) {
            Some(broker) if broker.epoch == broker_epoch => {}
            Some(_) => {
                return Err(ApiError::new(
                    ResponseError::StaleBrokerEpoch,
                    format!("broker {broker_id} epoch {broker_epoch} is not its current one"),
                )
                .into())
            }
            None => {
                return Err(ApiError::new(
                    ResponseError::BrokerIdNotRegistered,
                    format!("broker {broker_id} is not registered"),
                )
                .into())
            }
        }
        let start = image.next_producer_id;
        let end = start.checked_add(PRODUCER_ID_BLOCK_SIZE).ok_or_else(|| {
            ApiError::new(
                ResponseError::UnknownServerError,
                "producer ids are exhausted",
            )
        })?;
        self.commit(
            &image,
            vec![MetadataRecord::ProducerIds(ProducerIdsRecord {
                broker_id,
                broker_epoch,
                next_producer_id: end,
            })],
        )?;
        tracing::debug!(broker_id, start, end, "new producer id block");
        Ok(start..end)
    }
}
