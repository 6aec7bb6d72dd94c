//! UnregisterBroker (KIP-631): forget a broker that has left the cluster, so
//! that no stale registration stays behind after a scale-down. Unlike Kafka,
//! which takes the request at any time, this controller refuses while the
//! broker is still running or still holds replicas: unregistering then would
//! only make it register again, or leave partitions naming a broker that is gone.

use kafka_protocol::error::ResponseError;

use super::error::{ApiError, ControllerError};
use super::quorum::Controller;
use crate::metadata::records::{ConfigRecord, UnregisterBrokerRecord, BROKER_RESOURCE};
use crate::metadata::MetadataRecord;

impl Controller {
    /// Removes `id`'s registration and its dynamic broker configs (an
    /// exclusion must not carry over to a new broker with the same id).
    pub fn unregister_broker(&self, id: i32) -> Result<(), ControllerError> {
        let mut writer = self.write();
        let image = self.image();
        let Some(broker) = image.brokers.get(&id) else {
            return Err(ApiError::new(
                ResponseError::BrokerIdNotRegistered,
                format!("Broker {id} is not registered."),
            )
            .into());
        };
        if !broker.fenced {
            return Err(ApiError::new(
                ResponseError::InvalidRequest,
                format!(
                    "Broker {id} is still running (unfenced): stop it before unregistering it."
                ),
            )
            .into());
        }
        let held = image.partitions_on(id);
        if held > 0 {
            return Err(ApiError::new(
                ResponseError::InvalidRequest,
                format!("Broker {id} still holds replicas of {held} partitions: move them away first (a removal does)."),
            )
            .into());
        }
        let configs = image
            .broker_configs
            .get(&id)
            .into_iter()
            .flatten()
            .map(|(key, _)| {
                MetadataRecord::Config(ConfigRecord {
                    resource_type: BROKER_RESOURCE,
                    resource_name: id.to_string(),
                    name: key.clone(),
                    value: None,
                })
            });
        let records = configs
            .chain(std::iter::once(MetadataRecord::UnregisterBroker(
                UnregisterBrokerRecord {
                    id,
                    epoch: broker.epoch,
                },
            )))
            .collect();
        self.commit(&image, records)?;
        writer.sessions.end(id);
        tracing::info!(broker = id, "broker unregistered");
        Ok(())
    }
}

#[cfg(test)]
#[path = "unregister_tests.rs"]
mod tests;
