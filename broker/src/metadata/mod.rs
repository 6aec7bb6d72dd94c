//! Metadata records in Kafka's formats and the immutable `MetadataImage` built from them.
