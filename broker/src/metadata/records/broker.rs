//! Broker lifecycle records: registration, fencing and registration changes.

use uuid::Uuid;

use super::{no_tags, skip_tags, RecordBody};
use crate::metadata::codec::{DecodeError, Reader, Writer};

/// One listener a broker registers (`RegisterBrokerRecord.EndPoints`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerEndpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
    /// Kafka's SecurityProtocol id; 0 is PLAINTEXT.
    pub security_protocol: i16,
}

/// A feature range a broker supports (`RegisterBrokerRecord.Features`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerFeature {
    pub name: String,
    pub min_supported_version: i16,
    pub max_supported_version: i16,
}

/// RegisterBrokerRecord (api key 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterBrokerRecord {
    pub broker_id: i32,
    pub incarnation_id: Uuid,
    pub broker_epoch: i64,
    pub endpoints: Vec<BrokerEndpoint>,
    pub features: Vec<BrokerFeature>,
    pub rack: Option<String>,
    pub fenced: bool,
    pub in_controlled_shutdown: bool,
}

impl RecordBody for RegisterBrokerRecord {
    const API_KEY: u16 = 0;
    const VERSIONS: std::ops::RangeInclusive<u32> = 0..=3;
    // v1 adds InControlledShutdown; v2 (ZK migration) and v3 (log dirs) add nothing we use.
    const WRITE_VERSION: u32 = 1;

    fn write(&self, w: &mut Writer) {
        w.i32(self.broker_id);
        w.uuid(&self.incarnation_id);
        w.i64(self.broker_epoch);
        w.array_of(&self.endpoints, |w, e| {
            w.string(&e.name);
            w.string(&e.host);
            w.u16(e.port);
            w.i16(e.security_protocol);
            no_tags(w);
        });
        w.array_of(&self.features, |w, f| {
            w.string(&f.name);
            w.i16(f.min_supported_version);
            w.i16(f.max_supported_version);
            no_tags(w);
        });
        w.nullable_string(self.rack.as_deref());
        w.bool(self.fenced);
        w.bool(self.in_controlled_shutdown);
        no_tags(w);
    }

    fn read(r: &mut Reader<'_>, version: u32) -> Result<Self, DecodeError> {
        let broker_id = r.i32()?;
        if version >= 2 {
            // IsMigratingZkBroker: there is no ZooKeeper here to migrate from.
            r.bool()?;
        }
        let incarnation_id = r.uuid()?;
        let broker_epoch = r.i64()?;
        // Smallest endpoint: two empty strings, port, protocol, tags = 7 bytes.
        let endpoints = r.array_of(7, |r| {
            let endpoint = BrokerEndpoint {
                name: r.string()?,
                host: r.string()?,
                port: r.u16()?,
                security_protocol: r.i16()?,
            };
            skip_tags(r)?;
            Ok(endpoint)
        })?;
        let features = r.array_of(6, |r| {
            let feature = BrokerFeature {
                name: r.string()?,
                min_supported_version: r.i16()?,
                max_supported_version: r.i16()?,
            };
            skip_tags(r)?;
            Ok(feature)
        })?;
        let rack = r.nullable_string()?;
        let fenced = r.bool()?;
        let in_controlled_shutdown = if version >= 1 { r.bool()? } else { false };
        // v3's LogDirs is tag 0; log directories are not tracked yet.
        skip_tags(r)?;
        Ok(RegisterBrokerRecord {
            broker_id,
            incarnation_id,
            broker_epoch,
            endpoints,
            features,
            rack,
            fenced,
            in_controlled_shutdown,
        })
    }
}

/// FenceBrokerRecord (api key 7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceBrokerRecord {
    pub id: i32,
    pub epoch: i64,
}

impl RecordBody for FenceBrokerRecord {
    const API_KEY: u16 = 7;
    const VERSIONS: std::ops::RangeInclusive<u32> = 0..=0;
    const WRITE_VERSION: u32 = 0;

    fn write(&self, w: &mut Writer) {
        w.i32(self.id);
        w.i64(self.epoch);
        no_tags(w);
    }

    fn read(r: &mut Reader<'_>, _version: u32) -> Result<Self, DecodeError> {
        let record = FenceBrokerRecord {
            id: r.i32()?,
            epoch: r.i64()?,
        };
        skip_tags(r)?;
        Ok(record)
    }
}

/// UnregisterBrokerRecord (api key 1): the broker's registration is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnregisterBrokerRecord {
    pub id: i32,
    pub epoch: i64,
}

impl RecordBody for UnregisterBrokerRecord {
    const API_KEY: u16 = 1;
    const VERSIONS: std::ops::RangeInclusive<u32> = 0..=0;
    const WRITE_VERSION: u32 = 0;

    fn write(&self, w: &mut Writer) {
        w.i32(self.id);
        w.i64(self.epoch);
        no_tags(w);
    }

    fn read(r: &mut Reader<'_>, _version: u32) -> Result<Self, DecodeError> {
        let record = UnregisterBrokerRecord {
            id: r.i32()?,
            epoch: r.i64()?,
        };
        skip_tags(r)?;
        Ok(record)
    }
}

/// UnfenceBrokerRecord (api key 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnfenceBrokerRecord {
    pub id: i32,
    pub epoch: i64,
}

impl RecordBody for UnfenceBrokerRecord {
    const API_KEY: u16 = 8;
    const VERSIONS: std::ops::RangeInclusive<u32> = 0..=0;
    const WRITE_VERSION: u32 = 0;

    fn write(&self, w: &mut Writer) {
        w.i32(self.id);
        w.i64(self.epoch);
        no_tags(w);
    }

    fn read(r: &mut Reader<'_>, _version: u32) -> Result<Self, DecodeError> {
        let record = UnfenceBrokerRecord {
            id: r.i32()?,
            epoch: r.i64()?,
        };
        skip_tags(r)?;
        Ok(record)
    }
}

/// BrokerRegistrationChangeRecord (api key 17).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistrationChangeRecord {
    pub broker_id: i32,
    pub broker_epoch: i64,
    /// -1 unfenced, 0 no change, 1 fenced (tag 0).
    pub fenced: i8,
    /// 0 no change, 1 in controlled shutdown (tag 1, v1+).
    pub in_controlled_shutdown: i8,
}

impl RecordBody for BrokerRegistrationChangeRecord {
    const API_KEY: u16 = 17;
    const VERSIONS: std::ops::RangeInclusive<u32> = 0..=2;
    const WRITE_VERSION: u32 = 1;

    fn write(&self, w: &mut Writer) {
        w.i32(self.broker_id);
        w.i64(self.broker_epoch);
        let mut tags = Vec::new();
        for (tag, value) in [(0, self.fenced), (1, self.in_controlled_shutdown)] {
            if value != 0 {
                let mut field = Writer::default();
                field.i8(value);
                tags.push((tag, field));
            }
        }
        w.tagged_fields(tags);
    }

    fn read(r: &mut Reader<'_>, version: u32) -> Result<Self, DecodeError> {
        let mut record = BrokerRegistrationChangeRecord {
            broker_id: r.i32()?,
            broker_epoch: r.i64()?,
            fenced: 0,
            in_controlled_shutdown: 0,
        };
        r.tagged_fields(|tag, f| match tag {
            0 => {
                record.fenced = f.i8()?;
                Ok(true)
            }
            1 if version >= 1 => {
                record.in_controlled_shutdown = f.i8()?;
                Ok(true)
            }
            _ => Ok(false),
        })?;
        Ok(record)
    }
}
