//! ListOffsets: earliest, latest, max timestamp, or the first offset at or
//! after a timestamp.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse};

use crate::server::{BrokerState, PartitionError};

pub const VERSIONS: &[(ApiKey, i16, i16)] = &[(ApiKey::ListOffsets, 1, 9)];

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

pub async fn handle(
    state: &BrokerState,
    version: i16,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let image = state.image();
    let topics = super::per_partition(
        request.topics,
        |t| (t.name.0.as_str(), &t.partitions[..]),
        |topic, p| {
            let base =
                ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
            match lookup(state, &image, topic, p) {
                Ok((offset, timestamp, epoch)) => base
                    .with_offset(offset)
                    .with_timestamp(timestamp)
                    // Versions before 4 have no leader epoch field.
                    .with_leader_epoch(if version >= 4 { epoch } else { -1 }),
                Err(e) => base
                    .with_error_code(e.code)
                    .with_offset(-1)
                    .with_timestamp(-1),
            }
        },
        |t, partitions| {
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        },
    );
    ListOffsetsResponse::default().with_topics(topics)
}

/// (offset, timestamp, leader epoch) for one partition; -1/-1 when no record
/// matches the timestamp.
fn lookup(
    state: &BrokerState,
    image: &crate::metadata::MetadataImage,
    topic: &str,
    request: &kafka_protocol::messages::list_offsets_request::ListOffsetsPartition,
) -> Result<(i64, i64, i32), PartitionError> {
    let (log, meta) = state.leader_log(image, topic, request.partition_index)?;
    super::fetch::check_leader_epoch(request.current_leader_epoch, meta.leader_epoch)?;
    let epoch = meta.leader_epoch;
    let storage_err = |e: crate::storage::StorageError| PartitionError::from_storage(&e);
    Ok(match request.timestamp {
        LATEST | LATEST_TIERED => (log.log_end_offset(), -1, epoch),
        EARLIEST | EARLIEST_LOCAL => (log.log_start_offset(), -1, epoch),
        MAX_TIMESTAMP => match log.max_timestamp().map_err(storage_err)? {
            Some((offset, ts)) => (offset, ts, epoch),
            None => (-1, -1, -1),
        },
        ts => match tokio::task::block_in_place(|| log.offset_for_timestamp(ts))
            .map_err(storage_err)?
        {
            Some((offset, found)) => (offset, found, epoch),
            None => (-1, -1, -1),
        },
    })
}
