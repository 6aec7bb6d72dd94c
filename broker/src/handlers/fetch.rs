//! Fetch: whole batches straight from segment files, with long polling until
//! `min_bytes` are there or `max_wait_ms` passes. Consumers read up to the
//! high watermark; follower replicas read up to the log end, and their fetch
//! offsets tell the leader how far they got. From v11 consumers may read from
//! a follower (KIP-392): with the rack-aware replica selector, the leader
//! sends a consumer that names its rack to an in-sync replica in that rack.

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::FetchPartition;
use kafka_protocol::messages::fetch_response::{
    EpochEndOffset, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse};
use tokio::time::Instant;

use crate::metadata::{MetadataImage, PartitionImage};
use crate::replication::throttle::{self, Side};
use crate::replication::Partition;
use crate::server::{BrokerState, PartitionError};
use crate::storage::TopicPartition;

/// The first version whose consumers may read from followers (KIP-392).
const FOLLOWER_READS_VERSION: i16 = 11;

pub const VERSIONS: &[(ApiKey, i16, i16)] = &[(ApiKey::Fetch, 4, 17)];

pub async fn handle(state: &BrokerState, version: i16, request: FetchRequest) -> FetchResponse {
    let deadline = Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    loop {
        // Subscribe before reading so an append between the read and the wait still wakes us.
        let mut appends = state.subscribe_appends();
        let reading = read_all(state, version, &request);
        if reading.bytes >= request.min_bytes.max(0) as usize
            || reading.had_error
            || Instant::now() >= deadline
        {
            return answer(state, version, &request, reading);
        }
        tokio::select! {
            _ = appends.changed() => {}
            _ = tokio::time::sleep_until(deadline) => {
                let reading = read_all(state, version, &request);
                return answer(state, version, &request, reading);
            }
        }
    }
}

/// One pass over every requested partition.
struct Reading {
    response: FetchResponse,
    /// Record bytes in the response, in all and per requested topic.
    bytes: usize,
    topic_bytes: Vec<usize>,
    /// A partition failed: the answer goes out at once.
    had_error: bool,
}

/// The reading that is answered, counted in the bytes-out metrics: consumer
/// bytes by topic, follower bytes as replication traffic, as in Kafka. Passes
/// of a long poll that are not answered count nothing.
fn answer(
    state: &BrokerState,
    version: i16,
    request: &FetchRequest,
    reading: Reading,
) -> FetchResponse {
    let metrics = &state.metrics;
    if fetching_replica(version, request).is_some() {
        metrics.replication_bytes_out.inc_by(reading.bytes as u64);
        return reading.response;
    }
    let image = state.image();
    for (topic, bytes) in request.topics.iter().zip(&reading.topic_bytes) {
        let name = if version >= 13 {
            image.topic_by_id(&topic.topic_id).map(|t| t.name.as_str())
        } else {
            Some(topic.topic.0.as_str())
        };
        if let (Some(name), 1..) = (name, *bytes) {
            metrics
                .bytes_out
                .with_label_values(&[name])
                .inc_by(*bytes as u64);
        }
    }
    reading.response
}

/// Reads every requested partition once.
fn read_all(state: &BrokerState, version: i16, request: &FetchRequest) -> Reading {
    let image = state.image();
    let replica = fetching_replica(version, request);
    let follower_reads = version >= FOLLOWER_READS_VERSION && replica.is_none();
    let client_rack = Some(request.rack_id.as_str()).filter(|r| follower_reads && !r.is_empty());
    let mut budget = if request.max_bytes > 0 {
        request.max_bytes as usize
    } else {
        usize::MAX
    };
    let mut total = 0usize;
    let mut topic_bytes = Vec::with_capacity(request.topics.len());
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
        let before = total;
        for p in &topic.partitions {
            let base = PartitionData::default().with_partition_index(p.partition);
            let result = match name {
                None => Err(PartitionError::new(ResponseError::UnknownTopicId)),
                Some(name) => {
                    let limit = (p.partition_max_bytes.max(0) as usize).min(budget);
                    let read = Read {
                        max_bytes: limit,
                        min_one_batch: total == 0,
                        replica,
                        divergence_check: version >= 12,
                        follower_reads,
                        client_rack,
                    };
                    read_partition(state, &image, name, p, read)
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
                        .with_diverging_epoch(read.diverging.unwrap_or_else(no_divergence))
                        .with_preferred_read_replica(BrokerId(read.preferred_read_replica))
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
        topic_bytes.push(total - before);
        topics.push(
            FetchableTopicResponse::default()
                // Versions before 13 echo the request's name; later ones carry only the id.
                .with_topic(topic.topic.clone())
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
    Reading {
        response: FetchResponse::default().with_responses(topics),
        bytes: total,
        topic_bytes,
        had_error,
    }
}

/// The follower replica asking, as (broker id, broker epoch): v15+ name it
/// in `replica_state`, older versions in `replica_id`; consumers are -1.
fn fetching_replica(version: i16, request: &FetchRequest) -> Option<(i32, i64)> {
    let (id, epoch) = if version >= 15 {
        (
            request.replica_state.replica_id.0,
            request.replica_state.replica_epoch,
        )
    } else {
        (request.replica_id.0, -1)
    };
    (id >= 0).then_some((id, epoch))
}

/// How to read one partition.
#[derive(Clone, Copy)]
struct Read<'a> {
    max_bytes: usize,
    min_one_batch: bool,
    replica: Option<(i32, i64)>,
    /// The request carries `last_fetched_epoch` (v12+).
    divergence_check: bool,
    /// A consumer that may be served by a follower (v11+).
    follower_reads: bool,
    /// The consumer's `client.rack`, if it named one.
    client_rack: Option<&'a str>,
}

struct PartitionRead {
    records: bytes::Bytes,
    high_watermark: i64,
    log_start_offset: i64,
    diverging: Option<EpochEndOffset>,
    /// Where the consumer should fetch from instead (-1: here).
    preferred_read_replica: i32,
}

impl PartitionRead {
    /// No records, here and now: what a redirect, a divergence or a throttle answers.
    fn nothing(partition: &Partition) -> PartitionRead {
        PartitionRead {
            records: bytes::Bytes::new(),
            high_watermark: partition.high_watermark(),
            log_start_offset: partition.log.log_start_offset(),
            diverging: None,
            preferred_read_replica: -1,
        }
    }
}

fn no_divergence() -> EpochEndOffset {
    EpochEndOffset::default().with_epoch(-1).with_end_offset(-1)
}

fn read_partition(
    state: &BrokerState,
    image: &MetadataImage,
    topic: &str,
    request: &FetchPartition,
    read: Read,
) -> Result<PartitionRead, PartitionError> {
    let (partition, meta) = match state.leader_partition(image, topic, request.partition) {
        Ok(found) => found,
        Err(not_leader) if read.follower_reads => {
            follower_partition(state, image, topic, request.partition).ok_or(not_leader)?
        }
        Err(error) => return Err(error),
    };
    check_leader_epoch(request.current_leader_epoch, meta.leader_epoch)?;
    let log = &partition.log;
    if let Some(rack) = read
        .client_rack
        .filter(|_| state.config.leadership.rack_aware_replica_selector)
    {
        if let Some(replica) =
            preferred_read_replica(state, image, &partition, meta, rack, request.fetch_offset)
        {
            return Ok(PartitionRead {
                preferred_read_replica: replica,
                ..PartitionRead::nothing(&partition)
            });
        }
    }
    let upper_bound = match read.replica {
        // A follower's high watermark is the leader's as of its last fetch.
        None => partition.high_watermark(),
        Some(replica) => {
            if read.divergence_check {
                if let Some(diverging) = divergence(log, request, meta.leader_epoch) {
                    return Ok(PartitionRead {
                        diverging: Some(diverging),
                        ..PartitionRead::nothing(&partition)
                    });
                }
            }
            state
                .replicas
                .record_follower_fetch(
                    &partition,
                    image,
                    meta.leader_epoch,
                    replica,
                    request.fetch_offset,
                    request.log_start_offset,
                )
                .map_err(PartitionError::new)?;
            log.log_end_offset()
        }
    };
    let throttled = read.replica.is_some_and(|(id, _)| {
        image.topic(topic).is_some_and(|t| {
            throttle::is_throttled(meta, &t.configs, Side::Leader, state.config.node_id, id)
        })
    });
    let limit = &state.replicas.throttles.leader;
    if throttled && limit.exceeded() {
        return Ok(PartitionRead::nothing(&partition));
    }
    let records = tokio::task::block_in_place(|| {
        log.read(
            request.fetch_offset,
            read.max_bytes,
            upper_bound,
            read.min_one_batch,
        )
    })
    .map_err(|e| PartitionError::from_storage(&e))?;
    if throttled {
        limit.record(records.len());
        let metrics = &state.replicas.metrics;
        metrics.leader_throttled_bytes.inc_by(records.len() as u64);
    }
    Ok(PartitionRead {
        records,
        high_watermark: partition.high_watermark(),
        log_start_offset: log.log_start_offset(),
        diverging: None,
        preferred_read_replica: -1,
    })
}

/// The partition when this node follows it, for a consumer reading from a follower.
fn follower_partition<'a>(
    state: &BrokerState,
    image: &'a MetadataImage,
    topic: &str,
    partition: i32,
) -> Option<(std::sync::Arc<Partition>, &'a PartitionImage)> {
    let meta = image.partition(topic, partition)?;
    if !meta.replicas.contains(&state.config.node_id) {
        return None;
    }
    let hosted = state
        .replicas
        .partition(&TopicPartition::new(topic, partition))?;
    // Only a follower in the image's leader epoch knows that leader's high watermark.
    (hosted.follower_epoch() == Some(meta.leader_epoch)).then_some((hosted, meta))
}

/// Kafka's RackAwareReplicaSelector, on the leader: None keeps the consumer
/// here (this node is in its rack, or no replica there can serve it), else the
/// in-sync replica in its rack that has the most of the log.
fn preferred_read_replica(
    state: &BrokerState,
    image: &MetadataImage,
    partition: &Partition,
    meta: &PartitionImage,
    rack: &str,
    fetch_offset: i64,
) -> Option<i32> {
    let local = state.config.node_id;
    let in_rack = |id: i32| {
        image
            .brokers
            .get(&id)
            .is_some_and(|b| !b.fenced && b.rack.as_deref() == Some(rack))
    };
    if meta.leader != local || in_rack(local) {
        return None;
    }
    partition
        .with_leader(meta.leader_epoch, |leader, _| {
            meta.replicas
                .iter()
                .copied()
                .filter(|id| *id != local && in_rack(*id) && leader.isr.isr.contains(id))
                .filter_map(|id| Some((leader.follower(id)?.log_end_offset, id)))
                .filter(|(end, _)| *end >= fetch_offset)
                .max()
                .map(|(_, id)| id)
        })
        .ok()
        .flatten()
}

/// Where a follower's log diverges from ours (KIP-595's fetch-based
/// truncation): its last fetched epoch ends earlier here than it thinks, or
/// is unknown to us. Our answer is that epoch's (or the largest earlier
/// one's) end offset.
fn divergence(
    log: &crate::storage::PartitionLog,
    request: &FetchPartition,
    leader_epoch: i32,
) -> Option<EpochEndOffset> {
    if request.last_fetched_epoch < 0 {
        return None;
    }
    let (epoch, end) = log.leader_end_offset_for_epoch(request.last_fetched_epoch, leader_epoch);
    (epoch < request.last_fetched_epoch || end < request.fetch_offset).then(|| {
        EpochEndOffset::default()
            .with_epoch(epoch)
            .with_end_offset(end)
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
