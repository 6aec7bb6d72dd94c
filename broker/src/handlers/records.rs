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
