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

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::replication::Partition;
use crate::server::{BrokerState, PartitionError};
use crate::storage::{UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET};

pub const VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
];

/// DeleteRecords' "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

/// How often a DeleteRecords looks whether the followers moved their log start.
const LOW_WATERMARK_POLL: Duration = Duration::from_millis(20);

/// Moves each partition's log start on its leader, then (as Kafka's delayed
/// DeleteRecords) answers once the in-sync followers have moved theirs too, so
/// that a failover cannot bring the deleted records back.
pub async fn delete_records(
    state: &BrokerState,
    _version: i16,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let image = state.image();
    let deadline = Instant::now() + Duration::from_millis(request.timeout_ms.max(0) as u64);
    // One entry per partition in response order: what to wait for, if anything.
    let mut pending: Vec<Option<(Arc<Partition>, i32, i64)>> = Vec::new();
    let topics = super::per_partition(
        request.topics,
        |t| (t.name.0.as_str(), &t.partitions[..]),
        |topic, p| {
            let base =
                DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
            let result = state
                .leader_partition(&image, topic, p.partition_index)
                .and_then(|(partition, meta)| {
                    let high_watermark = partition.high_watermark();
                    let target = if p.offset == HIGH_WATERMARK {
                        high_watermark
                    } else {
                        p.offset
                    };
                    if target < 0 || target > high_watermark {
                        return Err(PartitionError::new(ResponseError::OffsetOutOfRange));
                    }
                    tokio::task::block_in_place(|| partition.log.delete_records_before(target))
                        .map_err(|e| PartitionError::from_storage(&e))?;
                    Ok((partition, meta.leader_epoch, target))
                });
            match result {
                Ok(wait) => {
                    pending.push(Some(wait));
                    base
                }
                Err(e) => {
                    pending.push(None);
                    base.with_error_code(e.code).with_low_watermark(-1)
                }
            }
        },
        |t, partitions| {
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions)
        },
    );
    let mut response = DeleteRecordsResponse::default().with_topics(topics);
    let results = response
        .topics
        .iter_mut()
        .flat_map(|t| t.partitions.iter_mut());
    for (result, wait) in results.zip(pending) {
        let Some((partition, epoch, target)) = wait else {
            continue;
        };
        match followers_caught_up(&partition, epoch, target, deadline).await {
            Ok(low_watermark) => result.low_watermark = low_watermark,
            Err(error) => {
                result.error_code = error.code();
                result.low_watermark = -1;
            }
        }
    }
    response
}

/// Waits until the partition's low watermark reaches `target`: followers
/// report their log start in every fetch, which happens at least every
/// `replica.fetch.wait.max.ms`.
async fn followers_caught_up(
    partition: &Partition,
    epoch: i32,
    target: i64,
    deadline: Instant,
) -> Result<i64, ResponseError> {
    loop {
        let low_watermark = partition.low_watermark(epoch)?;
        if low_watermark >= target {
            return Ok(low_watermark);
        }
        if Instant::now() >= deadline {
            return Err(ResponseError::RequestTimedOut);
        }
        tokio::time::sleep(LOW_WATERMARK_POLL).await;
    }
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
