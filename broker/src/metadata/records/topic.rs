//! Topic records: topics, partitions, partition changes, configs, removal.

use uuid::Uuid;

use super::{no_tags, skip_tags, RecordBody};
use crate::metadata::codec::{DecodeError, Reader, Writer};

/// TopicRecord (api key 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRecord {
    pub name: String,
    pub topic_id: Uuid,
}

impl RecordBody for TopicRecord {
    const API_KEY: u16 = 2;
    const VERSIONS: std::ops::RangeInclusive<u32> = 0..=0;
    const WRITE_VERSION: u32 = 0;

    fn write(&self, w: &mut Writer) {
        w.string(&self.name);
        w.uuid(&self.topic_id);
        no_tags(w);
    }

    fn read(r: &mut Reader<'_>, _version: u32) -> Result<Self, DecodeError> {
        let record = TopicRecord {
            name: r.string()?,
            topic_id: r.uuid()?,
        };
        skip_tags(r)?;
        Ok(record)
    }
}

/// PartitionRecord (api key 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRecord {
    pub partition_id: i32,
    pub topic_id: Uuid,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub removing_replicas: Vec<i32>,
    pub adding_replicas: Vec<i32>,
    pub leader: i32,
    /// 1 while recovering from an unclean election (tag 0, default 0).
    pub leader_recovery_state: i8,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
}

impl RecordBody for PartitionRecord {
    const API_KEY: u16 = 3;
    const VERSIONS: std::ops::RangeInclusive<u32> = 0..=2;
    // v1 adds per-replica directories (JBOD), v2 eligible leader replicas; neither is used.
    const WRITE_VERSION: u32 = 0;

    fn write(&self, w: &mut Writer) {
        w.i32(self.partition_id);
        w.uuid(&self.topic_id);
        w.i32_array(&self.replicas);
        w.i32_array(&self.isr);
        w.i32_array(&self.removing_replicas);
        w.i32_array(&self.adding_replicas);
        w.i32(self.leader);
        w.i32(self.leader_epoch);
        w.i32(self.partition_epoch);
        let mut tags = Vec::new();
        if self.leader_recovery_state != 0 {
            let mut field = Writer::default();
            field.i8(self.leader_recovery_state);
            tags.push((0, field));
        }
        w.tagged_fields(tags);
    }

    fn read(r: &mut Reader<'_>, version: u32) -> Result<Self, DecodeError> {
        let partition_id = r.i32()?;
        let topic_id = r.uuid()?;
        let replicas = r.i32_array()?;
        let isr = r.i32_array()?;
        // Nullable in early schemas; null and empty mean the same.
        let removing_replicas = r.nullable_i32_array()?.unwrap_or_default();
        let adding_replicas = r.nullable_i32_array()?.unwrap_or_default();
        let leader = r.i32()?;
        let leader_epoch = r.i32()?;
        let partition_epoch = r.i32()?;
        if version >= 1 {
            // Directories: one uuid per replica; log directories are not tracked yet.
            r.array_of(16, Reader::uuid)?;
        }
        let mut leader_recovery_state = 0;
        r.tagged_fields(|tag, f| {
            if tag == 0 {
                leader_recovery_state = f.i8()?;
                return Ok(true);
            }
            Ok(false)
        })?;
        Ok(PartitionRecord {
            partition_id,
            topic_id,
            replicas,
            isr,
            removing_replicas,
            adding_replicas,
            leader,
            leader_recovery_state,
            leader_epoch,
            partition_epoch,
        })
    }
}

/// PartitionChangeRecord (api key 5): only the fields that changed are set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionChangeRecord {
    pub partition_id: i32,
    pub topic_id: Uuid,
    /// Tag 0; `None` if unchanged.
    pub isr: Option<Vec<i32>>,
    /// Tag 1; -2 if unchanged, -1 for no leader.
    pub leader: i32,
    /// Tag 2; `None` if unchanged.
    pub replicas: Option<Vec<i32>>,
    /// Tag 3.
    pub removing_replicas: Option<Vec<i32>>,
    /// Tag 4.
    pub adding_replicas: Option<Vec<i32>>,
    /// Tag 5; -1 if unchanged.
    pub leader_recovery_state: i8,
}

/// `PartitionChangeRecord.leader` when the leader did not change.
pub const NO_LEADER_CHANGE: i32 = -2;

impl RecordBody for PartitionChangeRecord {
    const API_KEY: u16 = 5;
    const VERSIONS: std::ops::RangeInclusive<u32> = 0..=2;
    // v1/v2 only add tags for directories and eligible leader replicas.
    const WRITE_VERSION: u32 = 0;

    fn write(&self, w: &mut Writer) {
        w.i32(self.partition_id);
        w.uuid(&self.topic_id);
        let mut tags = Vec::new();
        let list = |tags: &mut Vec<(u32, Writer)>, tag, value: &Option<Vec<i32>>| {
            if let Some(items) = value {
                let mut field = Writer::default();
                field.i32_array(items);
                tags.push((tag, field));
            }
        };
        list(&mut tags, 0, &self.isr);
        if self.leader != NO_LEADER_CHANGE {
            let mut field = Writer::default();
            field.i32(self.leader);
            tags.push((1, field));
        }
        list(&mut tags, 2, &self.replicas);
        list(&mut tags, 3, &self.removing_replicas);
        list(&mut tags, 4, &self.adding_replicas);
        if self.leader_recovery_state != -1 {
            let mut field = Writer::default();
            field.i8(self.leader_recovery_state);
            tags.push((5, field));
        }
        w.tagged_fields(tags);
    }

    fn read(r: &mut Reader<'_>, _version: u32) -> Result<Self, DecodeError> {
        let mut record = PartitionChangeRecord {
            partition_id: r.i32()?,
            topic_id: r.uuid()?,
            isr: None,
            leader: NO_LEADER_CHANGE,
            replicas: None,
            removing_replicas: None,
            adding_replicas: None,
            leader_recovery_state: -1,
        };
        r.tagged_fields(|tag, f| {
            match tag {
                0 => record.isr = f.nullable_i32_array()?,
                1 => record.leader = f.i32()?,
                2 => record.replicas = f.nullable_i32_array()?,
                3 => record.removing_replicas = f.nullable_i32_array()?,
                4 => record.adding_replicas = f.nullable_i32_array()?,
                5 => record.leader_recovery_state = f.i8()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(record)
    }
}

/// ConfigRecord (api key 4); a null value deletes the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigRecord {
    /// Kafka's ConfigResource type: 2 topic, 4 broker.
    pub resource_type: i8,
    pub resource_name: String,
    pub name: String,
    pub value: Option<String>,
}

/// `ConfigRecord.resource_type` of a topic.
pub const TOPIC_RESOURCE: i8 = 2;
/// `ConfigRecord.resource_type` of a broker (name: its id, or empty for the cluster default).
pub const BROKER_RESOURCE: i8 = 4;

impl RecordBody for ConfigRecord {
    const API_KEY: u16 = 4;
    const VERSIONS: std::ops::RangeInclusive<u32> = 0..=0;
    const WRITE_VERSION: u32 = 0;

    fn write(&self, w: &mut Writer) {
        w.i8(self.resource_type);
        w.string(&self.resource_name);
        w.string(&self.name);
        w.nullable_string(self.value.as_deref());
        no_tags(w);
    }

    fn read(r: &mut Reader<'_>, _version: u32) -> Result<Self, DecodeError> {
        let record = ConfigRecord {
            resource_type: r.i8()?,
            resource_name: r.string()?,
            name: r.string()?,
            value: r.nullable_string()?,
        };
        skip_tags(r)?;
        Ok(record)
    }
}

/// RemoveTopicRecord (api key 9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveTopicRecord {
    pub topic_id: Uuid,
}

impl RecordBody for RemoveTopicRecord {
    const API_KEY: u16 = 9;
    const VERSIONS: std::ops::RangeInclusive<u32> = 0..=0;
    const WRITE_VERSION: u32 = 0;

    fn write(&self, w: &mut Writer) {
        w.uuid(&self.topic_id);
        no_tags(w);
    }

    fn read(r: &mut Reader<'_>, _version: u32) -> Result<Self, DecodeError> {
        let record = RemoveTopicRecord {
            topic_id: r.uuid()?,
        };
        skip_tags(r)?;
        Ok(record)
    }
}
