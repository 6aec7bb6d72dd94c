//! Control records as Kafka encodes them: the key is `ControlRecordType`'s
//! (version, type); the value a flexible-encoded message such as the
//! `SnapshotHeaderRecord`/`SnapshotFooterRecord` that frame a snapshot or the
//! `LeaderChangeMessage` a Raft leader writes at the start of its epoch.

use bytes::{BufMut, Bytes, BytesMut};

/// `ControlRecordType.LEADER_CHANGE`.
pub const LEADER_CHANGE: i16 = 2;
/// `ControlRecordType.SNAPSHOT_HEADER`.
pub(crate) const SNAPSHOT_HEADER: i16 = 3;
/// `ControlRecordType.SNAPSHOT_FOOTER`.
pub(crate) const SNAPSHOT_FOOTER: i16 = 4;

/// Version of the control record key and of both record schemas.
const VERSION: i16 = 0;
/// Version + type.
const KEY_LEN: usize = 4;
/// Version, LastContainedLogTimestamp and the empty tagged-field count.
const HEADER_LEN: usize = 2 + 8 + 1;
/// Version and the empty tagged-field count.
const FOOTER_LEN: usize = 2 + 1;

pub fn key(record_type: i16) -> Bytes {
    let mut key = BytesMut::with_capacity(KEY_LEN);
    key.put_i16(VERSION);
    key.put_i16(record_type);
    key.freeze()
}

pub(crate) fn header_value(last_contained_log_timestamp: i64) -> Bytes {
    let mut value = BytesMut::with_capacity(HEADER_LEN);
    value.put_i16(VERSION);
    value.put_i64(last_contained_log_timestamp);
    value.put_u8(0);
    value.freeze()
}

pub(crate) fn footer_value() -> Bytes {
    let mut value = BytesMut::with_capacity(FOOTER_LEN);
    value.put_i16(VERSION);
    value.put_u8(0);
    value.freeze()
}

/// The control record type of `key`.
pub fn record_type(key: Option<&[u8]>) -> Result<i16, String> {
    match key {
        Some(&[v0, v1, t0, t1, ..]) if i16::from_be_bytes([v0, v1]) >= 0 => {
            Ok(i16::from_be_bytes([t0, t1]))
        }
        _ => Err("control record without a valid key".into()),
    }
}

/// The LastContainedLogTimestamp of a SnapshotHeader value.
pub(crate) fn header_timestamp(value: Option<&[u8]>) -> Result<i64, String> {
    match value {
        Some(v) if v.len() >= HEADER_LEN => {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&v[2..10]);
            Ok(i64::from_be_bytes(ts))
        }
        _ => Err("SnapshotHeader record too short".into()),
    }
}

/// Checks that a SnapshotFooter value is complete.
pub(crate) fn check_footer(value: Option<&[u8]>) -> Result<(), String> {
    match value {
        Some(v) if v.len() >= FOOTER_LEN => Ok(()),
        _ => Err("SnapshotFooter record too short".into()),
    }
}
