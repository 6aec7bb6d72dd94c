//! Produce: validate and append each partition's batches as they arrived.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;

use crate::server::{now_ms, BrokerState, PartitionError};

pub const VERSIONS: &[(ApiKey, i16, i16)] = &[(ApiKey::Produce, 3, 12)];

pub async fn handle(
    state: &BrokerState,
    _version: i16,
    request: ProduceRequest,
) -> ProduceResponse {
    let image = state.image();
    let acks = request.acks;
    let mut responses = Vec::with_capacity(request.topic_data.len());
    let mut appended = false;
    for topic in request.topic_data {
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for data in topic.partition_data {
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
                Ok(info) => {
                    appended = true;
                    response
                        .with_base_offset(info.base_offset)
                        .with_log_append_time_ms(info.log_append_time)
                        .with_log_start_offset(info.log_start_offset)
                }
                Err(e) => response
                    .with_error_code(e.code)
                    .with_base_offset(-1)
                    .with_error_message(e.message.map(StrBytes::from_string)),
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
    ProduceResponse::default().with_responses(responses)
}

fn append(
    state: &BrokerState,
    image: &crate::metadata::MetadataImage,
    topic: &str,
    partition: i32,
    records: Option<bytes::Bytes>,
    acks: i16,
) -> Result<crate::storage::AppendInfo, PartitionError> {
    let (log, meta) = state.leader_log(image, topic, partition)?;
    let records = records.ok_or_else(|| {
        PartitionError::with_message(
            ResponseError::CorruptMessage,
            "produce request without records",
        )
    })?;
    if acks == -1 && (meta.isr.len() as i32) < log.config().min_insync_replicas {
        return Err(PartitionError::new(ResponseError::NotEnoughReplicas));
    }
    let size = records.len() as u64;
    // Usually a page-cache write, but a segment roll fsyncs under the append
    // lock: let the runtime move other connections off this worker meanwhile.
    let info = tokio::task::block_in_place(|| log.append(records, meta.leader_epoch, now_ms()))
        .map_err(|e| PartitionError::from_storage(&e))?;
    state
        .metrics
        .record_produce(topic, size, info.last_offset - info.base_offset + 1);
    Ok(info)
}
