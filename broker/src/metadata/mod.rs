//! Metadata records in Kafka's formats and the immutable `MetadataImage` built from them.

mod codec;
pub mod image;
pub mod loader;
pub mod publisher;
pub mod records;
pub mod snapshot;

pub use codec::DecodeError;
pub use image::{ApplyError, BrokerImage, MetadataImage, PartitionImage, TopicImage};
pub use loader::{LoadError, MetadataLoader};
pub use publisher::MetadataPublisher;
pub use records::MetadataRecord;
