//! The leader's ISR changes on their way to the controller (KIP-497).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use kafka_protocol::messages::alter_partition_request::{BrokerState, PartitionData, TopicData};
pub use kafka_protocol::messages::alter_partition_response::PartitionData as ResponsePartition;
use kafka_protocol::messages::{AlterPartitionRequest, AlterPartitionResponse, BrokerId};

use crate::client::ControllerChannel;

/// How long an ISR change may take before the leader gives up and retries.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The version both senders speak: ISR members with broker epochs (KIP-903).
pub const VERSION: i16 = 3;

pub type Answer<'a> =
    Pin<Box<dyn Future<Output = Result<AlterPartitionResponse, String>> + Send + 'a>>;

/// Delivers AlterPartition to the active controller.
pub trait AlterPartitionSender: Send + Sync {
    fn send(&self, request: AlterPartitionRequest) -> Answer<'_>;
}

/// A controller in this process, for tests without a quorum.
#[cfg(test)]
pub struct LocalController(pub std::sync::Arc<crate::controller::Controller>);

#[cfg(test)]
impl AlterPartitionSender for LocalController {
    fn send(&self, request: AlterPartitionRequest) -> Answer<'_> {
        let controller = self.0.clone();
        Box::pin(async move {
            // Committing waits for the metadata log: off the async workers.
            tokio::task::spawn_blocking(move || {
                crate::handlers::alter_partition::answer(&controller, VERSION, request)
            })
            .await
            .map_err(|e| e.to_string())
        })
    }
}

/// The active controller of a separate quorum.
impl AlterPartitionSender for ControllerChannel {
    fn send(&self, request: AlterPartitionRequest) -> Answer<'_> {
        Box::pin(async move {
            ControllerChannel::send(self, &request, TIMEOUT)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// One partition's proposed ISR, as the leader sends it.
pub struct Proposal {
    /// The leader's own broker epoch.
    pub broker_epoch: i64,
    pub topic_id: uuid::Uuid,
    pub partition: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// (broker id, broker epoch or -1 when unknown).
    pub isr: Vec<(i32, i64)>,
}

/// One request for `proposals` from leader `broker_id` in `broker_epoch`, grouped by
/// topic: the controller commits the whole batch at once, as Kafka's leaders send it.
pub fn request(
    broker_id: i32,
    broker_epoch: i64,
    proposals: &[&Proposal],
) -> AlterPartitionRequest {
    let mut topics: Vec<TopicData> = Vec::new();
    for proposal in proposals {
        let data = PartitionData::default()
            .with_partition_index(proposal.partition)
            .with_leader_epoch(proposal.leader_epoch)
            .with_partition_epoch(proposal.partition_epoch)
            .with_leader_recovery_state(0)
            .with_new_isr_with_epochs(
                proposal
                    .isr
                    .iter()
                    .map(|(id, epoch)| {
                        BrokerState::default()
                            .with_broker_id(BrokerId(*id))
                            .with_broker_epoch(*epoch)
                    })
                    .collect(),
            );
        match topics.iter_mut().find(|t| t.topic_id == proposal.topic_id) {
            Some(topic) => topic.partitions.push(data),
            None => topics.push(
                TopicData::default()
                    .with_topic_id(proposal.topic_id)
                    .with_partitions(vec![data]),
            ),
        }
    }
    AlterPartitionRequest::default()
        .with_broker_id(BrokerId(broker_id))
        .with_broker_epoch(broker_epoch)
        .with_topics(topics)
}

/// What the controller answered for one proposal of a batch.
pub fn outcome(
    answer: &Result<AlterPartitionResponse, String>,
    proposal: &Proposal,
) -> Result<ResponsePartition, String> {
    let response = answer.as_ref().map_err(Clone::clone)?;
    if response.error_code != 0 {
        return Err(format!("error code {}", response.error_code));
    }
    let p = response
        .topics
        .iter()
        .filter(|t| t.topic_id == proposal.topic_id)
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == proposal.partition)
        .ok_or_else(|| "the answer does not name the partition".to_string())?;
    if p.error_code != 0 {
        return Err(format!("error code {}", p.error_code));
    }
    Ok(p.clone())
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::alter_partition_response::{
        PartitionData as AnsweredPartition, TopicData as AnsweredTopic,
    };

    use super::*;

    fn proposal(topic_id: uuid::Uuid, partition: i32) -> Proposal {
        Proposal {
            broker_epoch: 7,
            topic_id,
            partition,
            leader_epoch: 2,
            partition_epoch: 3,
            isr: vec![(1, 7), (2, -1)],
        }
    }

    #[test]
    fn a_batch_is_one_request_grouped_by_topic() {
        let (a, b) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
        let proposals = [proposal(a, 0), proposal(b, 0), proposal(a, 1)];
        let refs: Vec<&Proposal> = proposals.iter().collect();
        let request = request(1, 7, &refs);
        assert_eq!((request.broker_id, request.broker_epoch), (BrokerId(1), 7));
        let shape: Vec<(uuid::Uuid, Vec<i32>)> = request
            .topics
            .iter()
            .map(|t| {
                (
                    t.topic_id,
                    t.partitions.iter().map(|p| p.partition_index).collect(),
                )
            })
            .collect();
        assert_eq!(shape, [(a, vec![0, 1]), (b, vec![0])]);
        let isr = &request.topics[0].partitions[0].new_isr_with_epochs;
        assert_eq!((isr[0].broker_id, isr[0].broker_epoch), (BrokerId(1), 7));
        assert_eq!(request.topics[0].partitions[0].partition_epoch, 3);
    }

    #[test]
    fn each_proposal_gets_the_answer_for_its_own_topic_and_partition() {
        let (a, b) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
        let answered = |partition, error_code| {
            AnsweredPartition::default()
                .with_partition_index(partition)
                .with_error_code(error_code)
                .with_partition_epoch(4)
        };
        let answer = Ok(AlterPartitionResponse::default().with_topics(vec![
            AnsweredTopic::default()
                .with_topic_id(a)
                .with_partitions(vec![answered(0, 0), answered(1, 95)]),
            AnsweredTopic::default()
                .with_topic_id(b)
                .with_partitions(vec![answered(0, 0)]),
        ]));
        assert_eq!(
            outcome(&answer, &proposal(a, 0)).unwrap().partition_epoch,
            4
        );
        assert_eq!(
            outcome(&answer, &proposal(a, 1)).unwrap_err(),
            "error code 95"
        );
        assert!(outcome(&answer, &proposal(b, 0)).is_ok());
        assert!(outcome(&answer, &proposal(b, 1)).is_err(), "not answered");
        let refused = Ok(AlterPartitionResponse::default().with_error_code(77));
        assert_eq!(
            outcome(&refused, &proposal(a, 0)).unwrap_err(),
            "error code 77"
        );
        let lost = Err("timed out".to_string());
        assert_eq!(outcome(&lost, &proposal(a, 0)).unwrap_err(), "timed out");
    }
}
