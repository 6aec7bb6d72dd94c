//! Group coordinator for the classic consumer group protocol; offsets kept in `__consumer_offsets`.
//!
//! [`GroupCoordinator`] follows Kafka's GroupCoordinator: JoinGroup and SyncGroup
//! park until the rebalance moves on, timers expire sessions and join phases, and
//! every state that must survive a restart is written to `__consumer_offsets`
//! through [`OffsetsStore`] in Kafka's record format.

mod admin;
mod classic_group;
mod commits;
mod config;
mod consumer_protocol;
mod coordinator;
mod error;
mod join;
mod loader;
mod member;
mod membership;
mod offsets;
mod rebalance;
pub mod records;
mod state;
mod store;
mod types;
mod wire;

#[cfg(test)]
mod tests;

pub use admin::CLASSIC_GROUP_TYPE;
pub use commits::OffsetFetchTopics;
pub use config::GroupConfig;
pub use coordinator::GroupCoordinator;
pub use error::{GroupError, OffsetsStoreError};
pub use store::{MemoryOffsetsStore, OffsetsRecord, OffsetsStore};
pub use types::*;
