//! AlterPartition (v2-3): partition leaders' ISR changes, answered by the
//! controller with the committed partition state.

use kafka_protocol::messages::alter_partition_response::{PartitionData, TopicData};
use kafka_protocol::messages::{AlterPartitionRequest, AlterPartitionResponse, ApiKey, BrokerId};

use crate::controller::{Controller, IsrChange};

pub const VERSIONS: &[(ApiKey, i16, i16)] = &[(ApiKey::AlterPartition, 2, 3)];

/// The whole exchange, synchronously.
pub fn answer(
    controller: &Controller,
    version: i16,
    request: AlterPartitionRequest,
) -> AlterPartitionResponse {
    let changes: Vec<IsrChange> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| IsrChange {
                topic_id: t.topic_id,
                partition: p.partition_index,
                leader_epoch: p.leader_epoch,
                partition_epoch: p.partition_epoch,
                // Version 3 names each member's broker epoch (KIP-903).
                new_isr: if version >= 3 {
                    p.new_isr_with_epochs
                        .iter()
                        .map(|b| (b.broker_id.0, b.broker_epoch))
                        .collect()
                } else {
                    p.new_isr.iter().map(|id| (id.0, -1)).collect()
                },
                leader_recovery_state: p.leader_recovery_state,
            })
        })
        .collect();
    let results =
        match controller.alter_partition(request.broker_id.0, request.broker_epoch, &changes) {
            Ok(results) => results,
            Err(e) => {
                return AlterPartitionResponse::default().with_error_code(e.to_api_error().code())
            }
        };
    let mut results = results.into_iter();
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .zip(results.by_ref())
                .map(|(p, result)| {
                    let base = PartitionData::default().with_partition_index(p.partition_index);
                    match result {
                        Ok(state) => base
                            .with_leader_id(BrokerId(state.leader))
                            .with_leader_epoch(state.leader_epoch)
                            .with_isr(state.isr.into_iter().map(BrokerId).collect())
                            .with_leader_recovery_state(state.leader_recovery_state)
                            .with_partition_epoch(state.partition_epoch),
                        Err(error) => base.with_error_code(error.code()),
                    }
                })
                .collect();
            TopicData::default()
                .with_topic_id(t.topic_id)
                .with_partitions(partitions)
        })
        .collect();
    AlterPartitionResponse::default().with_topics(topics)
}
