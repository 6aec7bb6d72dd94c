//! What a controller does when it becomes the active one: start every broker
//! session afresh and, on a brand-new cluster, write the metadata version.

use super::error::ControllerError;
use super::quorum::Controller;
use crate::metadata::image::METADATA_VERSION_FEATURE;
use crate::metadata::records::FeatureLevelRecord;
use crate::metadata::MetadataRecord;

/// The metadata.version we write: 3.3-IV3, the first level whose record
/// versions (RegisterBrokerRecord v1, BrokerRegistrationChangeRecord v1) we emit.
pub const METADATA_VERSION: i16 = 7;

impl Controller {
    /// Called once this node leads the quorum and its image holds every
    /// committed record; brokers register themselves afterwards.
    pub fn activate(&self) -> Result<(), ControllerError> {
        // A new controller cannot know when brokers last heartbeated.
        self.reset_broker_sessions();
        let _writer = self.write();
        let image = self.image();
        if image.metadata_version > 0 {
            return Ok(());
        }
        tracing::info!(
            metadata_version = METADATA_VERSION,
            "bootstrapping a new cluster"
        );
        self.commit(
            &image,
            vec![MetadataRecord::FeatureLevel(FeatureLevelRecord {
                name: METADATA_VERSION_FEATURE.into(),
                feature_level: METADATA_VERSION,
            })],
        )?;
        Ok(())
    }
}
