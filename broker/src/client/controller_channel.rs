//! Requests to the active controller, wherever it currently is.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    AllocateProducerIdsRequest, AlterPartitionRequest, BrokerHeartbeatRequest,
    BrokerRegistrationRequest, DescribeQuorumRequest,
};
use kafka_protocol::protocol::Request;
use tokio::sync::watch;
use tokio::time::Instant;

use super::nodes::NodeClients;
use super::{backoff, ClientError, ClientOptions};

/// A request only the active controller serves; other controllers answer it
/// with NOT_CONTROLLER.
pub trait ControllerRpc: Request {
    fn not_controller(response: &Self::Response) -> bool;
}

/// Requests whose response carries NOT_CONTROLLER in its top-level error code.
macro_rules! top_level_error_code {
    ($($request:ty),* $(,)?) => {
        $(impl ControllerRpc for $request {
            fn not_controller(response: &Self::Response) -> bool {
                response.error_code == ResponseError::NotController.code()
            }
        })*
    };
}

top_level_error_code!(
    BrokerRegistrationRequest,
    BrokerHeartbeatRequest,
    AllocateProducerIdsRequest,
    AlterPartitionRequest
);

/// Voters that do not lead answer DescribeQuorum with NOT_LEADER_OR_FOLLOWER
/// on the metadata partition.
impl ControllerRpc for DescribeQuorumRequest {
    fn not_controller(response: &Self::Response) -> bool {
        let not_leader = ResponseError::NotLeaderOrFollower.code();
        response.error_code == ResponseError::NotController.code()
            || response
                .topics
                .iter()
                .flat_map(|t| &t.partitions)
                .any(|p| p.error_code == not_leader)
    }
}

/// First wait before retrying another controller (Kafka's `retry.backoff.ms`).
const RETRY_BACKOFF: Duration = Duration::from_millis(100);
const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(1);

pub struct ControllerChannel {
    clients: NodeClients,
    voters: Vec<i32>,
    /// The current leader of the controller quorum, as the Raft driver knows it.
    leader: watch::Receiver<Option<i32>>,
}

impl ControllerChannel {
    /// `voters` as `controller.quorum.voters` lists them: `(id, host, port)`.
    pub fn new(
        voters: &[(i32, String, u16)],
        leader: watch::Receiver<Option<i32>>,
        options: ClientOptions,
    ) -> Self {
        let addresses: HashMap<i32, (String, u16)> = voters
            .iter()
            .map(|(id, host, port)| (*id, (host.clone(), *port)))
            .collect();
        ControllerChannel {
            clients: NodeClients::new(Arc::new(move |id| addresses.get(&id).cloned()), options),
            voters: voters.iter().map(|(id, _, _)| *id).collect(),
            leader,
        }
    }

    /// Sends `request` to the active controller, retrying on NOT_CONTROLLER
    /// and connection failures until `timeout` has passed. While the leader is
    /// unknown, the voters are tried in turn; a leader change ends a backoff early.
    pub async fn send<R: ControllerRpc>(
        &self,
        request: &R,
        timeout: Duration,
    ) -> Result<R::Response, ClientError> {
        let deadline = Instant::now() + timeout;
        let mut leader = self.leader.clone();
        let mut failures = 0;
        let mut next_voter = 0;
        loop {
            let known = (*leader.borrow_and_update()).filter(|id| self.voters.contains(id));
            let target = known.or_else(|| {
                next_voter += 1;
                self.voters
                    .get(next_voter % self.voters.len().max(1))
                    .copied()
            });
            let failure = match target {
                None => "no controller quorum voters are configured".to_string(),
                Some(node) => match self.clients.send_until(node, request, deadline).await {
                    Ok(response) if !R::not_controller(&response) => return Ok(response),
                    Ok(_) => format!("node {node} is not the active controller"),
                    Err(error) if error.is_retriable() => format!("node {node}: {error}"),
                    Err(error) => return Err(error),
                },
            };
            failures += 1;
            let wake = (Instant::now() + backoff(RETRY_BACKOFF, RETRY_BACKOFF_MAX, failures))
                .min(deadline);
            tracing::debug!(%failure, "controller request failed; retrying");
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                Ok(()) = leader.changed() => {}
            }
            if Instant::now() >= deadline {
                return Err(ClientError::NoController(failure));
            }
        }
    }
}
