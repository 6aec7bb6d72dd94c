//! First start of a cluster, and this node's broker registration.

use uuid::Uuid;

use super::error::ControllerError;
use super::quorum::Controller;
use crate::metadata::image::METADATA_VERSION_FEATURE;
use crate::metadata::records::{
    BrokerEndpoint, BrokerFeature, FeatureLevelRecord, RegisterBrokerRecord,
};
use crate::metadata::{MetadataImage, MetadataRecord};

/// The metadata.version we write: 3.3-IV3, the first level whose record
/// versions (RegisterBrokerRecord v1, BrokerRegistrationChangeRecord v1) we emit.
pub const METADATA_VERSION: i16 = 7;

/// Kafka's SecurityProtocol id for PLAINTEXT, the only one served.
const PLAINTEXT: i16 = 0;

impl Controller {
    /// Writes what a new cluster needs, and (re-)registers this broker when
    /// its registration is missing or its advertised address changed.
    pub(super) fn bootstrap(&self) -> Result<(), ControllerError> {
        let _writer = self.write();
        let image = self.image();
        let mut records = Vec::new();
        if image.metadata_offset < 0 {
            records.push(MetadataRecord::FeatureLevel(FeatureLevelRecord {
                name: METADATA_VERSION_FEATURE.into(),
                feature_level: METADATA_VERSION,
            }));
        }
        // The broker epoch is the offset of the registration record.
        let epoch = image.metadata_offset + records.len() as i64 + 1;
        let registration = self.registration(&image, epoch);
        let registering = registration.is_some();
        if let Some(registration) = registration {
            tracing::info!(
                broker = registration.broker_id,
                epoch,
                "registering this broker"
            );
            records.push(MetadataRecord::RegisterBroker(registration));
        }
        if records.is_empty() {
            return Ok(());
        }
        let committed = self.commit(&image, records)?;
        // The registration is the batch's last record; a log whose offsets are
        // not contiguous (e.g. raft control records) would break the epoch rule.
        if registering && committed.metadata_offset != epoch {
            tracing::warn!(
                epoch,
                offset = committed.metadata_offset,
                "broker epoch differs from the offset of its registration"
            );
        }
        Ok(())
    }

    /// This node's registration, unless the image already has an equal one.
    fn registration(&self, image: &MetadataImage, epoch: i64) -> Option<RegisterBrokerRecord> {
        let config = self.config();
        if !config.roles.broker {
            return None;
        }
        let listener = config.client_listener()?;
        let (host, port) = config.advertised_address(listener);
        if let Some(current) = image.brokers.get(&config.node_id) {
            if current.host == host
                && current.port == port
                && current.rack == config.rack
                && !current.fenced
            {
                return None;
            }
        }
        Some(RegisterBrokerRecord {
            broker_id: config.node_id,
            incarnation_id: Uuid::new_v4(),
            broker_epoch: epoch,
            endpoints: vec![BrokerEndpoint {
                name: listener.name.clone(),
                host,
                port,
                security_protocol: PLAINTEXT,
            }],
            features: vec![BrokerFeature {
                name: METADATA_VERSION_FEATURE.into(),
                min_supported_version: METADATA_VERSION,
                max_supported_version: METADATA_VERSION,
            }],
            rack: config.rack.clone(),
            // A single node is its own controller: nothing to wait for.
            fenced: false,
            in_controlled_shutdown: false,
        })
    }
}
