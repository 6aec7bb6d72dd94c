//! Quorum controller: turns admin requests into metadata records and commits them.
//!
//! Every write follows one path: validate against the current image → records
//! → `MetadataLog::append` → apply → publish. With KRaft the log becomes the
//! replicated `__cluster_metadata` and only `append`'s meaning changes.

mod alter_partition;
mod batch;
mod bootstrap;
mod broker_configs;
mod configs;
mod delete;
mod describe;
mod election;
mod error;
mod leadership;
mod lifecycle;
mod log;
mod names;
mod partitions;
mod placement;
mod producer_ids;
mod quorum;
mod reassignment;
mod removal;
mod sessions;
mod topics;
mod unregister;

pub use alter_partition::{CommittedPartition, IsrChange};
pub use batch::run_checked;
pub use bootstrap::METADATA_VERSION;
pub use broker_configs::DEMOTE_KEY;
pub use configs::{AlterOp, ConfigResource, ConfigUpdate};
pub use delete::{DeletedTopic, TopicRef};
pub use describe::{ConfigEntry, ConfigSource, ConfigSynonym};
pub use election::{ElectionResult, ElectionType};
pub use error::{ApiError, ControllerError};
pub use leadership::{demote, leaderships};
pub use lifecycle::{BrokerHeartbeat, BrokerRegistration, HeartbeatReply};
pub use log::{MemoryMetadataLog, MetadataLog, MetadataLogError};
pub use names::InternalTopic;
pub use partitions::NewPartitions;
pub use producer_ids::PRODUCER_ID_BLOCK_SIZE;
pub use quorum::Controller;
pub use reassignment::{reassigning, OngoingReassignment, ReassignmentResult};
pub use removal::valid_id as valid_removal_id;
pub use sessions::monotonic_ms;
pub use topics::{CreatedTopic, NewTopic};

#[cfg(test)]
mod election_tests;
#[cfg(test)]
mod exclusion_tests;
#[cfg(test)]
pub(crate) mod lifecycle_tests;
#[cfg(test)]
mod tests;
