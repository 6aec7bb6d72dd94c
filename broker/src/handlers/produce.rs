//! Produce: validate and append each partition's batches as they arrived.
//! With acks=all the answer waits until the ISR has every appended batch
//! (the high watermark passes it), or the request's timeout.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use crate::replication::Partition;
use crate::server::{now_ms, BrokerState, PartitionError};

pub const VERSIONS: &[(ApiKey, i16, i16)] = &[(ApiKey::Produce, 3, 12)];

/// An acks=all append waiting for the ISR: (topic index, partition index) in
/// the response, and what to wait for.
struct Pending {
    at: (usize, usize),
    partition: Arc<Partition>,
    end_offset: i64,
    leader_epoch: i32,
    min_isr: usize,
}

pub async fn handle(
    state: &BrokerState,
    _version: i16,
    request: ProduceRequest,
) -> ProduceResponse {
    let deadline = Instant::now() + Duration::from_millis(request.timeout_ms.max(0) as u64);
    let image = state.image();
    let acks = request.acks;
    let mut responses = Vec::with_capacity(request.topic_data.len());
    let mut pending = Vec::new();
    let mut appended = false;
    for (t, topic) in request.topic_data.into_iter().enumerate() {
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for (p, data) in topic.partition_data.into_iter().enumerate() {
            let response = PartitionProduceResponse::default().with_index(data.index);
            let outcome = if ![-1, 0, 1].contains(&acks) {
                Err(PartitionError::new(ResponseError::InvalidRequiredAcks))
            } else if request.transactional_id.is_some() {
                Err(PartitionError::with_message(
                    ResponseError::TransactionalIdAuthorizationFailed,
                    "transactions are not supported by this broker",
                ))
            } else {
                append(state, &image, &topic.name, data.index, data.records, acks)
            };
            partitions.push(match outcome {
                Ok((info, waiting)) => {
                    appended = true;
                    if let Some(mut waiting) = waiting {
                        waiting.at = (t, p);
                        pending.push(waiting);
                    }
                    response
                        .with_base_offset(info.base_offset)
                        .with_log_append_time_ms(info.log_append_time)
                        .with_log_start_offset(info.log_start_offset)
                }
                Err(e) => {
                    tracing::debug!(topic = %topic.name.as_str(), partition = data.index, code = e.code, "produce refused");
                    failed(response, e)
                }
            });
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_topic_id(topic.topic_id)
                .with_partition_responses(partitions),
        );
    }
    if appended {
        state.notify_appended();
    }
    // Every wait shares the request's deadline, so waiting in turn takes no longer.
    for waiting in pending {
        let replicated = waiting.partition.wait_replicated(
            waiting.end_offset,
            waiting.leader_epoch,
            waiting.min_isr,
        );
        let error = match tokio::time::timeout_at(deadline, replicated).await {
            Ok(Ok(())) => continue,
            Ok(Err(error)) => error,
            Err(_) => ResponseError::RequestTimedOut,
        };
        let (t, p) = waiting.at;
        tracing::debug!(partition = %waiting.partition.tp, %error, "acks=all produce failed");
        let slot = &mut responses[t].partition_responses[p];
        *slot = failed(slot.clone(), PartitionError::new(error));
    }
    ProduceResponse::default().with_responses(responses)
}

fn failed(response: PartitionProduceResponse, e: PartitionError) -> PartitionProduceResponse {
    response
        .with_error_code(e.code)
        .with_base_offset(-1)
        .with_error_message(e.message.map(StrBytes::from_string))
}

fn append(
    state: &BrokerState,
    image: &crate::metadata::MetadataImage,
    topic: &str,
    partition: i32,
    records: Option<bytes::Bytes>,
    acks: i16,
) -> Result<(crate::storage::AppendInfo, Option<Pending>), PartitionError> {
    let (hosted, meta) = state.leader_partition(image, topic, partition)?;
    let records = records.ok_or_else(|| {
        PartitionError::with_message(
            ResponseError::CorruptMessage,
            "produce request without records",
        )
    })?;
    let min_isr = hosted.log.config().min_insync_replicas.max(1) as usize;
    if acks == -1 && meta.isr.len() < min_isr {
        return Err(PartitionError::new(ResponseError::NotEnoughReplicas));
    }
    let size = records.len() as u64;
    // Usually a page-cache write, but a segment roll fsyncs under the append
    // lock: let the runtime move other connections off this worker meanwhile.
    let info =
        tokio::task::block_in_place(|| hosted.log.append(records, meta.leader_epoch, now_ms()))
            .map_err(|e| PartitionError::from_storage(&e))?;
    state.replicas.leader_appended(&hosted, meta.leader_epoch);
    state
        .metrics
        .record_produce(topic, size, info.last_offset - info.base_offset + 1);
    let waiting = (acks == -1).then(|| Pending {
        at: (0, 0),
        partition: hosted,
        end_offset: info.last_offset + 1,
        leader_epoch: meta.leader_epoch,
        min_isr,
    });
    Ok((info, waiting))
}
