//! The keys and values Kafka writes to `__consumer_offsets`, byte for byte, so that
//! Kafka's tools can read our log. Values are read in versions 0-3 (what Kafka
//! writes); the flexible version 4 and KIP-848 record types are reported as unsupported.

use bytes::{BufMut, Bytes, BytesMut};

use super::wire::{put_bytes, put_nullable_string, put_string, Reader, WireError};

/// Key versions 0 and 1 are offset commits, 2 is group metadata.
const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
const GROUP_METADATA_KEY_VERSION: i16 = 2;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("unsupported key version {0}")]
    KeyVersion(i16),
    #[error("unsupported {kind} value version {version}")]
    ValueVersion { kind: &'static str, version: i16 },
}

/// The partition of `__consumer_offsets` holding a group: Kafka's
/// `Utils.abs(groupId.hashCode) % partitions`, where abs(i32::MIN) is 0.
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    let hash = java_string_hash(group_id);
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions.max(1)
}

/// Java's `String.hashCode`: over UTF-16 code units, wrapping.
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(unit as i32))
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RecordKey {
    OffsetCommit {
        group: String,
        topic: String,
        partition: i32,
    },
    GroupMetadata {
        group: String,
    },
}

impl RecordKey {
    pub fn group(&self) -> &str {
        match self {
            RecordKey::OffsetCommit { group, .. } | RecordKey::GroupMetadata { group } => group,
        }
    }

    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        match self {
            RecordKey::OffsetCommit {
                group,
                topic,
                partition,
            } => {
                out.put_i16(OFFSET_COMMIT_KEY_VERSION);
                put_string(&mut out, group);
                put_string(&mut out, topic);
                out.put_i32(*partition);
            }
            RecordKey::GroupMetadata { group } => {
                out.put_i16(GROUP_METADATA_KEY_VERSION);
                put_string(&mut out, group);
            }
        }
        out.freeze()
    }

    pub fn decode(buf: &[u8]) -> Result<Self, RecordError> {
        let mut r = Reader::new(buf);
        match r.i16("key version")? {
            0 | 1 => Ok(RecordKey::OffsetCommit {
                group: r.string("group")?,
                topic: r.string("topic")?,
                partition: r.i32("partition")?,
            }),
            2 => Ok(RecordKey::GroupMetadata {
                group: r.string("group")?,
            }),
            other => Err(RecordError::KeyVersion(other)),
        }
    }
}

/// A committed offset as stored; `leader_epoch` -1 means none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
    /// Only set by OffsetCommit v2-4 with an explicit retention time.
    pub expire_timestamp: Option<i64>,
}

impl OffsetCommitValue {
    /// Version 3, or version 1 when there is an explicit expiry (v3 has no field for
    /// it), as Kafka does.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        match self.expire_timestamp {
            Some(expire) => {
                out.put_i16(1);
                out.put_i64(self.offset);
                put_string(&mut out, &self.metadata);
                out.put_i64(self.commit_timestamp);
                out.put_i64(expire);
            }
            None => {
                out.put_i16(3);
                out.put_i64(self.offset);
                out.put_i32(self.leader_epoch);
                put_string(&mut out, &self.metadata);
                out.put_i64(self.commit_timestamp);
            }
        }
        out.freeze()
    }

    pub fn decode(buf: &[u8]) -> Result<Self, RecordError> {
        let mut r = Reader::new(buf);
        let version = r.i16("value version")?;
        if !(0..=3).contains(&version) {
            return Err(RecordError::ValueVersion {
                kind: "offset commit",
                version,
            });
        }
        let offset = r.i64("offset")?;
        let leader_epoch = if version >= 3 {
            r.i32("leader epoch")?
        } else {
            -1
        };
        let metadata = r.string("metadata")?;
        let commit_timestamp = r.i64("commit timestamp")?;
        let expire_timestamp = if version == 1 {
            Some(r.i64("expire timestamp")?)
        } else {
            None
        };
        Ok(OffsetCommitValue {
            offset,
            leader_epoch,
            metadata,
            commit_timestamp,
            expire_timestamp,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadataValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// -1 when unknown (values before version 2).
    pub current_state_timestamp: i64,
    pub members: Vec<MemberMetadataValue>,
}

impl GroupMetadataValue {
    /// Version 3, the last non-flexible one, which Kafka 3.x writes.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        out.put_i16(3);
        put_string(&mut out, &self.protocol_type);
        out.put_i32(self.generation);
        put_nullable_string(&mut out, self.protocol.as_deref());
        put_nullable_string(&mut out, self.leader.as_deref());
        out.put_i64(self.current_state_timestamp);
        out.put_i32(self.members.len() as i32);
        for m in &self.members {
            put_string(&mut out, &m.member_id);
            put_nullable_string(&mut out, m.group_instance_id.as_deref());
            put_string(&mut out, &m.client_id);
            put_string(&mut out, &m.client_host);
            out.put_i32(m.rebalance_timeout_ms);
            out.put_i32(m.session_timeout_ms);
            put_bytes(&mut out, &m.subscription);
            put_bytes(&mut out, &m.assignment);
        }
        out.freeze()
    }

    pub fn decode(buf: &[u8]) -> Result<Self, RecordError> {
        let mut r = Reader::new(buf);
        let version = r.i16("value version")?;
        if !(0..=3).contains(&version) {
            return Err(RecordError::ValueVersion {
                kind: "group metadata",
                version,
            });
        }
        let protocol_type = r.string("protocol type")?;
        let generation = r.i32("generation")?;
        let protocol = r.nullable_string("protocol")?;
        let leader = r.nullable_string("leader")?;
        let current_state_timestamp = if version >= 2 {
            r.i64("current state timestamp")?
        } else {
            -1
        };
        let count = r.array_len("members")?;
        let mut members = Vec::new();
        for _ in 0..count {
            let member_id = r.string("member id")?;
            let group_instance_id = if version >= 3 {
                r.nullable_string("group instance id")?
            } else {
                None
            };
            let client_id = r.string("client id")?;
            let client_host = r.string("client host")?;
            let rebalance_timeout_ms = if version >= 1 {
                Some(r.i32("rebalance timeout")?)
            } else {
                None
            };
            let session_timeout_ms = r.i32("session timeout")?;
            members.push(MemberMetadataValue {
                member_id,
                group_instance_id,
                client_id,
                client_host,
                // v0 had one timeout, used for both.
                rebalance_timeout_ms: rebalance_timeout_ms.unwrap_or(session_timeout_ms),
                session_timeout_ms,
                subscription: r.bytes("subscription")?,
                assignment: r.bytes("assignment")?,
            });
        }
        Ok(GroupMetadataValue {
            protocol_type,
            generation,
            protocol,
            leader,
            current_state_timestamp,
            members,
        })
    }
}
