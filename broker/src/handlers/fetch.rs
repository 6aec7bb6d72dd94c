//! Fetch: whole batches straight from segment files, with long polling until
//! `min_bytes` are there or `max_wait_ms` passes.

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse};
use tokio::time::Instant;

use crate::metadata::MetadataImage;
use crate::server::{BrokerState, PartitionError};

pub const VERSIONS: &[(ApiKey, i16, i16)] = &[(ApiKey::Fetch, 4, 17)];

pub async fn handle(state: &BrokerState, version: i16, request: FetchRequest) -> FetchResponse {
    let deadline = Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    loop {
        // Subscribe before reading so an append between the read and the wait still wakes us.
        let mut appends = state.subscribe_appends();
        let (response, bytes, had_error) = read_all(state, version, &request);
        if bytes >= request.min_bytes.max(0) as usize || had_error || Instant::now() >= deadline {
            return response;
        }
        tokio::select! {
            _ = appends.changed() => {}
            _ = tokio::time::sleep_until(deadline) => {
                return read_all(state, version, &request).0;
            }
        }
    }
}

/// Reads every requested partition once; returns the response, the record
/// bytes in it, and whether any partition failed (which answers at once).
fn read_all(
    state: &BrokerState,
    version: i16,
    request: &FetchRequest,
) -> (FetchResponse, usize, bool) {
    let image = state.image();
    let mut budget = if request.max_bytes > 0 {
        request.max_bytes as usize
    } else {
        usize::MAX
    };
    let mut total = 0usize;
    let mut had_error = false;
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        // Borrowed for the lookups: a long poll rereads every partition on each wake-up.
        let name: Option<&str> = if version >= 13 {
            image.topic_by_id(&topic.topic_id).map(|t| t.name.as_str())
        } else {
            Some(topic.topic.0.as_str())
        };
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let base = PartitionData::default().with_partition_index(p.partition);
            let result = match name {
                None => Err(PartitionError::new(ResponseError::UnknownTopicId)),
                Some(name) => {
                    let limit = (p.partition_max_bytes.max(0) as usize).min(budget);
                    read_partition(state, &image, name, p, limit, total == 0)
                }
            };
            partitions.push(match result {
                Ok(read) => {
                    total += read.records.len();
                    budget = budget.saturating_sub(read.records.len());
                    base.with_high_watermark(read.high_watermark)
                        .with_last_stable_offset(read.high_watermark)
                        .with_log_start_offset(read.log_start_offset)
                        .with_aborted_transactions(None)
                        .with_records(Some(read.records))
                }
                Err(e) => {
                    had_error = true;
                    // Empty records, not null: librdkafka rejects a null record
                    // set ("invalid MessageSetSize -1") and misses the error.
                    base.with_error_code(e.code)
                        .with_high_watermark(-1)
                        .with_records(Some(bytes::Bytes::new()))
                }
            });
        }
        topics.push(
            FetchableTopicResponse::default()
                // Versions before 13 echo the request's name; later ones carry only the id.
                .with_topic(topic.topic.clone())
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
    state.metrics.bytes_out.inc_by(total as u64);
    (
        FetchResponse::default().with_responses(topics),
        total,
        had_error,
    )
}

struct PartitionRead {
    records: bytes::Bytes,
    high_watermark: i64,
    log_start_offset: i64,
}

fn read_partition(
    state: &BrokerState,
    image: &MetadataImage,
    topic: &str,
    request: &kafka_protocol::messages::fetch_request::FetchPartition,
    max_bytes: usize,
    min_one_batch: bool,
) -> Result<PartitionRead, PartitionError> {
    let (log, meta) = state.leader_log(image, topic, request.partition)?;
    check_leader_epoch(request.current_leader_epoch, meta.leader_epoch)?;
    let high_watermark = log.log_end_offset();
    let records = tokio::task::block_in_place(|| {
        log.read(
            request.fetch_offset,
            max_bytes,
            high_watermark,
            min_one_batch,
        )
    })
    .map_err(|e| PartitionError::from_storage(&e))?;
    Ok(PartitionRead {
        records,
        high_watermark,
        log_start_offset: log.log_start_offset(),
    })
}

/// KIP-320: a client that knows a newer epoch than ours talks to a stale
/// leader; one that knows an older epoch must refresh its metadata.
pub fn check_leader_epoch(requested: i32, current: i32) -> Result<(), PartitionError> {
    if requested < 0 || requested == current {
        Ok(())
    } else if requested > current {
        Err(PartitionError::new(ResponseError::UnknownLeaderEpoch))
    } else {
        Err(PartitionError::new(ResponseError::FencedLeaderEpoch))
    }
}

/// The record sets of a response, which the encoder passes through uncopied.
pub fn record_sets(response: &FetchResponse) -> Vec<bytes::Bytes> {
    response
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .filter_map(|p| p.records.clone())
        .collect()
}
