use uuid::Uuid;

use super::*;

fn id(seed: u8) -> Uuid {
    Uuid::from_bytes([seed; 16])
}

fn samples() -> Vec<MetadataRecord> {
    vec![
        MetadataRecord::RegisterBroker(RegisterBrokerRecord {
            broker_id: 1,
            incarnation_id: id(9),
            broker_epoch: 12,
            endpoints: vec![BrokerEndpoint {
                name: "PLAINTEXT".into(),
                host: "kafka-0.example".into(),
                port: 9092,
                security_protocol: 0,
            }],
            features: vec![BrokerFeature {
                name: "metadata.version".into(),
                min_supported_version: 7,
                max_supported_version: 7,
            }],
            rack: Some("rack-a".into()),
            fenced: false,
            in_controlled_shutdown: true,
        }),
        MetadataRecord::Topic(TopicRecord {
            name: "orders".into(),
            topic_id: id(1),
        }),
        MetadataRecord::Partition(PartitionRecord {
            partition_id: 3,
            topic_id: id(1),
            replicas: vec![1, 2, 3],
            isr: vec![1, 2],
            removing_replicas: vec![3],
            adding_replicas: vec![],
            leader: 1,
            leader_recovery_state: 1,
            leader_epoch: 4,
            partition_epoch: 5,
        }),
        MetadataRecord::Config(ConfigRecord {
            resource_type: TOPIC_RESOURCE,
            resource_name: "orders".into(),
            name: "retention.ms".into(),
            value: None,
        }),
        MetadataRecord::PartitionChange(PartitionChangeRecord {
            partition_id: 0,
            topic_id: id(1),
            isr: Some(vec![1]),
            leader: -1,
            replicas: None,
            removing_replicas: Some(vec![]),
            adding_replicas: None,
            leader_recovery_state: 0,
        }),
        MetadataRecord::PartitionChange(PartitionChangeRecord {
            partition_id: 0,
            topic_id: id(1),
            isr: None,
            leader: NO_LEADER_CHANGE,
            replicas: None,
            removing_replicas: None,
            adding_replicas: None,
            leader_recovery_state: -1,
        }),
        MetadataRecord::FenceBroker(FenceBrokerRecord { id: 2, epoch: 7 }),
        MetadataRecord::UnregisterBroker(UnregisterBrokerRecord { id: 2, epoch: 7 }),
        MetadataRecord::UnfenceBroker(UnfenceBrokerRecord { id: 2, epoch: 8 }),
        MetadataRecord::RemoveTopic(RemoveTopicRecord { topic_id: id(1) }),
        MetadataRecord::FeatureLevel(FeatureLevelRecord {
            name: "metadata.version".into(),
            feature_level: 7,
        }),
        MetadataRecord::ProducerIds(ProducerIdsRecord {
            broker_id: 1,
            broker_epoch: 2,
            next_producer_id: 3000,
        }),
        MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
            broker_id: 1,
            broker_epoch: 2,
            fenced: -1,
            in_controlled_shutdown: 1,
        }),
        MetadataRecord::NoOp(NoOpRecord),
    ]
}

#[test]
fn every_record_round_trips() {
    for record in samples() {
        let bytes = record.encode();
        assert_eq!(
            MetadataRecord::decode(&bytes),
            Ok(record.clone()),
            "{record:?}"
        );
        assert_eq!(u32::from(record.api_key()), u32::from(bytes[1]));
    }
}

#[test]
fn topic_record_matches_hand_encoded_bytes() {
    let record = MetadataRecord::Topic(TopicRecord {
        name: "foo".into(),
        topic_id: Uuid::from_bytes(std::array::from_fn(|i| i as u8)),
    });
    let mut expected = vec![
        0x01, // frame version
        0x02, // api key: TopicRecord
        0x00, // record version
        0x04, b'f', b'o', b'o', // compact string: length + 1, bytes
    ];
    expected.extend(0u8..16); // uuid
    expected.push(0x00); // no tagged fields
    assert_eq!(record.encode().as_ref(), expected.as_slice());
    assert_eq!(MetadataRecord::decode(&expected), Ok(record));
}

#[test]
fn partition_record_matches_hand_encoded_bytes() {
    let mut record = PartitionRecord {
        partition_id: 1,
        topic_id: id(0xab),
        replicas: vec![1, 2],
        isr: vec![1],
        removing_replicas: vec![],
        adding_replicas: vec![],
        leader: 1,
        leader_recovery_state: 0,
        leader_epoch: 0,
        partition_epoch: 2,
    };
    let mut expected = vec![0x01, 0x03, 0x00, 0, 0, 0, 1];
    expected.extend([0xab; 16]);
    expected.extend([0x03, 0, 0, 0, 1, 0, 0, 0, 2]); // replicas [1, 2]
    expected.extend([0x02, 0, 0, 0, 1]); // isr [1]
    expected.extend([0x01, 0x01]); // removing, adding: empty
    expected.extend([0, 0, 0, 1]); // leader
    expected.extend([0, 0, 0, 0]); // leader epoch
    expected.extend([0, 0, 0, 2]); // partition epoch
    expected.push(0x00); // LeaderRecoveryState is default: no tagged fields
    let encoded = MetadataRecord::Partition(record.clone()).encode();
    assert_eq!(encoded.as_ref(), expected.as_slice());

    // A non-default LeaderRecoveryState goes in tag 0: count, tag, size, value.
    record.leader_recovery_state = 1;
    let last = expected.len() - 1;
    expected.truncate(last);
    expected.extend([0x01, 0x00, 0x01, 0x01]);
    let encoded = MetadataRecord::Partition(record.clone()).encode();
    assert_eq!(encoded.as_ref(), expected.as_slice());
    assert_eq!(
        MetadataRecord::decode(&expected),
        Ok(MetadataRecord::Partition(record))
    );
}

#[test]
fn newer_partition_record_versions_are_read() {
    // Version 1 adds Directories after PartitionEpoch.
    let record = PartitionRecord {
        partition_id: 0,
        topic_id: id(2),
        replicas: vec![1],
        isr: vec![1],
        removing_replicas: vec![],
        adding_replicas: vec![],
        leader: 1,
        leader_recovery_state: 0,
        leader_epoch: 0,
        partition_epoch: 0,
    };
    let v0 = MetadataRecord::Partition(record.clone()).encode();
    let mut v1 = v0[..v0.len() - 1].to_vec();
    v1[2] = 1;
    v1.push(0x02);
    v1.extend([7u8; 16]);
    v1.push(0x00);
    assert_eq!(
        MetadataRecord::decode(&v1),
        Ok(MetadataRecord::Partition(record))
    );
}

#[test]
fn garbled_input_is_an_error_never_a_panic() {
    assert_eq!(
        MetadataRecord::decode(&[]),
        Err(DecodeError::UnexpectedEnd { at: 0, needed: 1 })
    );
    // Frame version 0 is Kafka 2.8's pre-release format.
    assert_eq!(
        MetadataRecord::decode(&[0, 2, 0]),
        Err(DecodeError::FrameVersion(0))
    );
    assert_eq!(
        MetadataRecord::decode(&[1, 99, 0]),
        Err(DecodeError::UnknownApiKey(99))
    );
    assert_eq!(
        MetadataRecord::decode(&[1, 2, 5]),
        Err(DecodeError::UnsupportedVersion {
            api_key: 2,
            version: 5
        })
    );
    for record in samples() {
        let bytes = record.encode();
        // Every truncation fails cleanly.
        for len in 0..bytes.len() {
            assert!(
                MetadataRecord::decode(&bytes[..len]).is_err(),
                "{record:?} at {len}"
            );
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert_eq!(
            MetadataRecord::decode(&longer),
            Err(DecodeError::TrailingBytes(1))
        );
        // Flipping any byte never panics.
        for i in 0..bytes.len() {
            let mut flipped = bytes.to_vec();
            flipped[i] ^= 0xff;
            let _ = MetadataRecord::decode(&flipped);
        }
    }
}
