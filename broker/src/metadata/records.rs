//! Metadata records exactly as Kafka stores them in `__cluster_metadata` record
//! values: unsigned varint frame version, api key and record version, then the
//! record's fields in flexible encoding.

mod broker;
mod cluster;
mod topic;

pub use broker::{
    BrokerEndpoint, BrokerFeature, BrokerRegistrationChangeRecord, FenceBrokerRecord,
    RegisterBrokerRecord, UnfenceBrokerRecord, UnregisterBrokerRecord,
};
pub use cluster::{FeatureLevelRecord, NoOpRecord, ProducerIdsRecord};
pub use topic::{
    ConfigRecord, PartitionChangeRecord, PartitionRecord, RemoveTopicRecord, TopicRecord,
    BROKER_RESOURCE, NO_LEADER_CHANGE, TOPIC_RESOURCE,
};

use std::ops::RangeInclusive;

use bytes::Bytes;

use super::codec::{DecodeError, Reader, Writer};

/// Kafka's frame version since 3.0 (`AbstractApiMessageSerde`); Kafka rejects
/// 0, the pre-release format of 2.8, and so do we.
const FRAME_VERSION: u32 = 1;

/// One record type's schema: its api key, the versions we read and the one we write.
trait RecordBody: Sized {
    const API_KEY: u16;
    const VERSIONS: RangeInclusive<u32>;
    const WRITE_VERSION: u32;
    fn write(&self, w: &mut Writer);
    fn read(r: &mut Reader<'_>, version: u32) -> Result<Self, DecodeError>;
}

/// A tagged-field section with no fields we know; unknown tags are skipped.
fn skip_tags(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    r.tagged_fields(|_, _| Ok(false))
}

fn no_tags(w: &mut Writer) {
    w.tagged_fields(Vec::new());
}

macro_rules! metadata_records {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        /// Every metadata record type this broker reads and writes.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum MetadataRecord {
            $($variant($ty),)*
        }

        impl MetadataRecord {
            /// Kafka's api key of this record type.
            pub fn api_key(&self) -> u16 {
                match self {
                    $(MetadataRecord::$variant(_) => <$ty as RecordBody>::API_KEY,)*
                }
            }

            /// The record value bytes as Kafka writes them.
            pub fn encode(&self) -> Bytes {
                let mut w = Writer::default();
                w.uvarint(FRAME_VERSION);
                match self {
                    $(MetadataRecord::$variant(body) => {
                        w.uvarint(u32::from(<$ty as RecordBody>::API_KEY));
                        w.uvarint(<$ty as RecordBody>::WRITE_VERSION);
                        body.write(&mut w);
                    })*
                }
                Bytes::from(w.into_inner())
            }

            /// Decodes one record value; unknown types, versions or garbled bytes are errors.
            pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
                let mut r = Reader::new(bytes);
                let frame = r.uvarint()?;
                if frame != FRAME_VERSION {
                    return Err(DecodeError::FrameVersion(frame));
                }
                let api_key = r.uvarint()?;
                let version = r.uvarint()?;
                let record = match api_key {
                    $(k if k == u32::from(<$ty as RecordBody>::API_KEY) => {
                        if !<$ty as RecordBody>::VERSIONS.contains(&version) {
                            return Err(DecodeError::UnsupportedVersion {
                                api_key: <$ty as RecordBody>::API_KEY,
                                version,
                            });
                        }
                        MetadataRecord::$variant(<$ty as RecordBody>::read(&mut r, version)?)
                    })*
                    other => return Err(DecodeError::UnknownApiKey(other)),
                };
                r.finish()?;
                Ok(record)
            }
        }
    };
}

metadata_records! {
    RegisterBroker(RegisterBrokerRecord),
    UnregisterBroker(UnregisterBrokerRecord),
    Topic(TopicRecord),
    Partition(PartitionRecord),
    Config(ConfigRecord),
    PartitionChange(PartitionChangeRecord),
    FenceBroker(FenceBrokerRecord),
    UnfenceBroker(UnfenceBrokerRecord),
    RemoveTopic(RemoveTopicRecord),
    FeatureLevel(FeatureLevelRecord),
    ProducerIds(ProducerIdsRecord),
    BrokerRegistrationChange(BrokerRegistrationChangeRecord),
    NoOp(NoOpRecord),
}

#[cfg(test)]
mod tests;
