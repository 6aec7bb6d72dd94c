use super::super::records::*;
use super::*;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn partition_matches_javas_string_hash() {
    // "hello".hashCode() == 99162322
    assert_eq!(partition_for("hello", 50), 22);
    // "polygenelubricants".hashCode() == Integer.MIN_VALUE, whose Utils.abs is 0.
    assert_eq!(partition_for("polygenelubricants", 50), 0);
    // Hashed over UTF-16 code units: one emoji is a surrogate pair, hash 1772899.
    assert_eq!(partition_for("\u{1F600}", 50), 49);
    assert_eq!(partition_for("anything", 1), 0);
}

#[test]
fn offset_commit_key_layout() {
    let key = RecordKey::OffsetCommit {
        group: "grp".into(),
        topic: "topic".into(),
        partition: 3,
    };
    assert_eq!(
        hex(&key.encode()),
        "0001 0003677270 0005746f706963 00000003".replace(' ', "")
    );
    assert_eq!(RecordKey::decode(&key.encode()).unwrap(), key);
}

#[test]
fn group_metadata_key_layout() {
    let key = RecordKey::GroupMetadata {
        group: "grp".into(),
    };
    assert_eq!(hex(&key.encode()), "00020003677270");
    assert_eq!(RecordKey::decode(&key.encode()).unwrap(), key);
}

#[test]
fn offset_commit_value_layout() {
    let value = OffsetCommitValue {
        offset: 100,
        leader_epoch: 5,
        metadata: "m".into(),
        commit_timestamp: 1000,
        expire_timestamp: None,
    };
    assert_eq!(
        hex(&value.encode()),
        "0003 0000000000000064 00000005 00016d 00000000000003e8".replace(' ', "")
    );
    assert_eq!(OffsetCommitValue::decode(&value.encode()).unwrap(), value);
    let old = OffsetCommitValue {
        expire_timestamp: Some(2000),
        leader_epoch: -1,
        ..value
    };
    assert_eq!(
        hex(&old.encode()),
        "0001 0000000000000064 00016d 00000000000003e8 00000000000007d0".replace(' ', "")
    );
    assert_eq!(OffsetCommitValue::decode(&old.encode()).unwrap(), old);
}

#[test]
fn group_metadata_value_layout() {
    let value = GroupMetadataValue {
        protocol_type: "consumer".into(),
        generation: 2,
        protocol: Some("range".into()),
        leader: Some("m1".into()),
        current_state_timestamp: 7,
        members: vec![MemberMetadataValue {
            member_id: "m1".into(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "/h".into(),
            rebalance_timeout_ms: 300_000,
            session_timeout_ms: 10_000,
            subscription: Bytes::from_static(&[1, 2]),
            assignment: Bytes::new(),
        }],
    };
    let expected = [
        "0003",
        "0008636f6e73756d6572", // "consumer"
        "00000002",
        "000572616e6765", // "range"
        "00026d31",       // leader "m1"
        "0000000000000007",
        "00000001",
        "00026d31", // member id
        "ffff",     // no group instance id
        "000163",   // client id "c"
        "00022f68", // client host "/h"
        "000493e0",
        "00002710",
        "000000020102",
        "00000000",
    ]
    .concat();
    assert_eq!(hex(&value.encode()), expected);
    assert_eq!(GroupMetadataValue::decode(&value.encode()).unwrap(), value);
}

#[test]
fn older_value_versions_decode() {
    // OffsetCommitValue v0: offset, metadata, commit timestamp.
    let v0 = [0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let value = OffsetCommitValue::decode(&v0).unwrap();
    assert_eq!(
        (value.offset, value.leader_epoch, value.commit_timestamp),
        (9, -1, 1)
    );
    // GroupMetadataValue v0 with one member: a single timeout serves as both.
    let mut v0 = vec![0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1];
    v0.extend([
        0, 1, b'm', 0, 1, b'c', 0, 1, b'h', 0, 0, 0x27, 0x10, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    let value = GroupMetadataValue::decode(&v0).unwrap();
    assert_eq!(value.current_state_timestamp, -1);
    assert_eq!(value.members[0].rebalance_timeout_ms, 10_000);
}

#[test]
fn malformed_records_are_errors_not_panics() {
    assert!(RecordKey::decode(&[]).is_err());
    assert!(RecordKey::decode(&[0, 1, 0, 9, b'g']).is_err());
    assert_eq!(RecordKey::decode(&[0, 4]), Err(RecordError::KeyVersion(4)));
    assert!(OffsetCommitValue::decode(&[0, 3, 0]).is_err());
    assert!(OffsetCommitValue::decode(&[0, 4]).is_err());
    assert!(GroupMetadataValue::decode(&[0, 3, 0, 1, 0xff]).is_err());
    // A negative bytes length.
    let mut bad = GroupMetadataValue {
        protocol_type: String::new(),
        generation: 0,
        protocol: None,
        leader: None,
        current_state_timestamp: 0,
        members: Vec::new(),
    }
    .encode()
    .to_vec();
    bad.truncate(bad.len() - 4);
    bad.extend([
        0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    bad.extend([0xff, 0xff, 0xff, 0xfe]);
    assert!(GroupMetadataValue::decode(&bad).is_err());
}
