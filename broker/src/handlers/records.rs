//! DeleteRecords (move the log start offset) and OffsetForLeaderEpoch.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    ApiKey, DeleteRecordsRequest, DeleteRecordsResponse, OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
};

use crate::server::{BrokerState, PartitionError};
use crate::storage::{UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET};

pub const VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
];

/// DeleteRecords' "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

pub async fn delete_records(
    state: &BrokerState,
    _version: i16,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let image = state.image();
    let topics = super::per_partition(
        request.topics,
        |t| (t.name.0.as_str(), &t.partitions[..]),
        |topic, p| {
            let base =
                DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
            let result = state
                .leader_log(&image, topic, p.partition_index)
                .and_then(|(log, _)| {
                    let high_watermark = log.log_end_offset();
                    let target = if p.offset == HIGH_WATERMARK {
                        high_watermark
                    } else {
                        p.offset
                    };
                    if target < 0 || target > high_watermark {
                        return Err(PartitionError::new(ResponseError::OffsetOutOfRange));
                    }
                    tokio::task::block_in_place(|| log.delete_records_before(target))
                        .map_err(|e| PartitionError::from_storage(&e))
                });
            match result {
                Ok(low_watermark) => base.with_low_watermark(low_watermark),
                Err(e) => base.with_error_code(e.code).with_low_watermark(-1),
            }
        },
        |t, partitions| {
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions)
        },
    );
    DeleteRecordsResponse::default().with_topics(topics)
}

/// The end offset of the requested epoch from the leader's epoch cache,
/// Kafka's answer: UNDEFINED (-1, -1) with no error for an epoch the log
/// cannot place (newer than the current one, or none at all).
pub async fn offset_for_leader_epoch(
    state: &BrokerState,
    _version: i16,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let image = state.image();
    let topics = super::per_partition(
        request.topics,
        |t| (t.topic.0.as_str(), &t.partitions[..]),
        |topic, p| {
            let base = EpochEndOffset::default().with_partition(p.partition);
            let result = state
                .leader_log(&image, topic, p.partition)
                .and_then(|(log, meta)| {
                    super::fetch::check_leader_epoch(p.current_leader_epoch, meta.leader_epoch)?;
                    Ok(log.leader_end_offset_for_epoch(p.leader_epoch, meta.leader_epoch))
                });
            match result {
                Ok((epoch, end)) => base.with_leader_epoch(epoch).with_end_offset(end),
                Err(e) => base
                    .with_error_code(e.code)
                    .with_leader_epoch(UNDEFINED_EPOCH)
                    .with_end_offset(UNDEFINED_EPOCH_OFFSET),
            }
        },
        |t, partitions| {
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions)
        },
    );
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use bytes::BytesMut;
    use kafka_protocol::messages::offset_for_leader_epoch_request::{
        OffsetForLeaderPartition, OffsetForLeaderTopic,
    };
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    use super::*;
    use crate::config::BrokerConfig;
    use crate::controller::MemoryMetadataLog;
    use crate::metadata::records::{PartitionRecord, TopicRecord};
    use crate::metadata::MetadataRecord;
    use crate::storage::batch::testutil::simple;

    const LEADER_EPOCH: i32 = 5;

    /// A broker leading partition `t-0` in `LEADER_EPOCH`, its logs in `dir`.
    fn broker(dir: &Path) -> BrokerState {
        let config = BrokerConfig {
            log_dirs: vec![dir.to_path_buf()],
            ..BrokerConfig::default()
        };
        let topic_id = uuid::Uuid::from_u128(1);
        let metadata = MemoryMetadataLog::new();
        metadata
            .push_raw(
                MetadataRecord::Topic(TopicRecord {
                    name: "t".into(),
                    topic_id,
                })
                .encode(),
            )
            .unwrap();
        metadata
            .push_raw(
                MetadataRecord::Partition(PartitionRecord {
                    partition_id: 0,
                    topic_id,
                    replicas: vec![config.node_id],
                    isr: vec![config.node_id],
                    removing_replicas: vec![],
                    adding_replicas: vec![],
                    leader: config.node_id,
                    leader_recovery_state: 0,
                    leader_epoch: LEADER_EPOCH,
                    partition_epoch: 0,
                })
                .encode(),
            )
            .unwrap();
        crate::server::testing::broker_state_over(dir, &metadata)
    }

    /// (error code, epoch, end offset) per partition, asking for `(partition, current, requested)`.
    async fn ask(
        state: &BrokerState,
        version: i16,
        partitions: &[(i32, i32, i32)],
    ) -> Vec<(i16, i32, i64)> {
        let request = OffsetForLeaderEpochRequest::default().with_topics(vec![
            OffsetForLeaderTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|&(partition, current, requested)| {
                            OffsetForLeaderPartition::default()
                                .with_partition(partition)
                                .with_current_leader_epoch(current)
                                .with_leader_epoch(requested)
                        })
                        .collect(),
                ),
        ]);
        let response = offset_for_leader_epoch(state, version, request).await;
        let mut buf = BytesMut::new();
        response.encode(&mut buf, version).unwrap();
        response.topics[0]
            .partitions
            .iter()
            .map(|p| (p.error_code, p.leader_epoch, p.end_offset))
            .collect()
    }

    #[tokio::test]
    async fn answers_from_the_leader_epoch_cache() {
        let dir = tempfile::tempdir().unwrap();
        let state = broker(dir.path());
        let (log, _) = state.leader_log(&state.image(), "t", 0).unwrap();
        // Offsets 0..2 written in epoch 1, 3..5 in epoch 3; the leader is now
        // in epoch 5 and has not appended yet.
        log.append(simple(3, 0), 1, 0).unwrap();
        log.append(simple(3, 0), 3, 0).unwrap();
        for version in 2..=4 {
            let answers = ask(
                &state,
                version,
                &[
                    (0, -1, 0),
                    (0, -1, 1),
                    (0, -1, 2),
                    (0, -1, 3),
                    (0, LEADER_EPOCH, 4),
                    (0, LEADER_EPOCH, 5),
                    (0, -1, 6),
                    (0, -1, -1),
                ],
            )
            .await;
            assert_eq!(
                answers,
                [
                    (0, 0, 0),
                    (0, 1, 3),
                    (0, 1, 3),
                    (0, 3, 6),
                    (0, 3, 6),
                    (0, 5, 6),
                    (0, -1, -1),
                    (0, -1, -1),
                ],
                "version {version}"
            );
        }
        // Once the leader appends, its epoch ends at the log end.
        log.append(simple(2, 0), LEADER_EPOCH, 0).unwrap();
        assert_eq!(ask(&state, 4, &[(0, -1, 5)]).await, [(0, 5, 8)]);
        assert_eq!(ask(&state, 4, &[(0, -1, 4)]).await, [(0, 3, 6)]);
    }

    #[tokio::test]
    async fn fenced_unknown_and_missing_partitions_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let state = broker(dir.path());
        let answers = ask(
            &state,
            4,
            &[
                (0, LEADER_EPOCH - 1, 1),
                (0, LEADER_EPOCH + 1, 1),
                (3, -1, 1),
            ],
        )
        .await;
        let undefined = |error: ResponseError| (error.code(), -1, -1);
        assert_eq!(
            answers,
            [
                undefined(ResponseError::FencedLeaderEpoch),
                undefined(ResponseError::UnknownLeaderEpoch),
                undefined(ResponseError::UnknownTopicOrPartition),
            ]
        );
    }
}
