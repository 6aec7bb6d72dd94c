//! The leader's ISR changes on their way to the controller (KIP-497).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use kafka_protocol::messages::alter_partition_request::{BrokerState, PartitionData, TopicData};
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

/// The request for one proposal from leader `broker_id`.
pub fn request(broker_id: i32, proposal: &Proposal) -> AlterPartitionRequest {
    AlterPartitionRequest::default()
        .with_broker_id(BrokerId(broker_id))
        .with_broker_epoch(proposal.broker_epoch)
        .with_topics(vec![TopicData::default()
            .with_topic_id(proposal.topic_id)
            .with_partitions(vec![PartitionData::default()
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
                )])])
}
