//! Metadata records in Kafka's formats and the immutable `MetadataImage` built from them.

pub mod codec;
pub mod records;

pub use codec::DecodeError;
pub use records::MetadataRecord;
