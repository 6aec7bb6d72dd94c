//! Cluster-wide records: feature levels, producer id blocks, no-ops.

use super::{no_tags, skip_tags, RecordBody};
use crate::metadata::codec::{DecodeError, Reader, Writer};

/// FeatureLevelRecord (api key 12), e.g. `metadata.version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureLevelRecord {
    pub name: String,
    pub feature_level: i16,
}

impl RecordBody for FeatureLevelRecord {
    const API_KEY: u16 = 12;
    const VERSIONS: std::ops::RangeInclusive<u32> = 0..=0;
    const WRITE_VERSION: u32 = 0;

    fn write(&self, w: &mut Writer) {
        w.string(&self.name);
        w.i16(self.feature_level);
        no_tags(w);
    }

    fn read(r: &mut Reader<'_>, _version: u32) -> Result<Self, DecodeError> {
        let record = FeatureLevelRecord {
            name: r.string()?,
            feature_level: r.i16()?,
        };
        skip_tags(r)?;
        Ok(record)
    }
}

/// ProducerIdsRecord (api key 15): a block of producer ids was handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerIdsRecord {
    pub broker_id: i32,
    pub broker_epoch: i64,
    /// First id of the next block, i.e. one past the block just handed out.
    pub next_producer_id: i64,
}

impl RecordBody for ProducerIdsRecord {
    const API_KEY: u16 = 15;
    const VERSIONS: std::ops::RangeInclusive<u32> = 0..=0;
    const WRITE_VERSION: u32 = 0;

    fn write(&self, w: &mut Writer) {
        w.i32(self.broker_id);
        w.i64(self.broker_epoch);
        w.i64(self.next_producer_id);
        no_tags(w);
    }

    fn read(r: &mut Reader<'_>, _version: u32) -> Result<Self, DecodeError> {
        let record = ProducerIdsRecord {
            broker_id: r.i32()?,
            broker_epoch: r.i64()?,
            next_producer_id: r.i64()?,
        };
        skip_tags(r)?;
        Ok(record)
    }
}

/// NoOpRecord (api key 20): advances the log without changing state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoOpRecord;

impl RecordBody for NoOpRecord {
    const API_KEY: u16 = 20;
    const VERSIONS: std::ops::RangeInclusive<u32> = 0..=0;
    const WRITE_VERSION: u32 = 0;

    fn write(&self, w: &mut Writer) {
        no_tags(w);
    }

    fn read(r: &mut Reader<'_>, _version: u32) -> Result<Self, DecodeError> {
        skip_tags(r)?;
        Ok(NoOpRecord)
    }
}
