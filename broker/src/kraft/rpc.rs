//! Raft RPCs over real sockets: [`RaftPeers`] sends the core's requests to
//! the voters' controller listeners; the `serve_*` functions answer the ones
//! that arrive on this node's controller listener through the driver.

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    BeginQuorumEpochRequest, BeginQuorumEpochResponse, EndQuorumEpochRequest,
    EndQuorumEpochResponse, FetchRequest, FetchResponse, FetchSnapshotRequest,
    FetchSnapshotResponse, VoteRequest, VoteResponse,
};

use super::driver::RaftHandle;
use super::wire::{self, WireError};
use crate::client::{ClientOptions, NodeClients};
use crate::raft::{Request, Response};
use crate::server::now_ms;

/// The voters' controller listeners, by node id.
pub struct RaftPeers {
    clients: NodeClients,
    /// Every call gives up after this; the core retries on its own schedule.
    timeout: Duration,
}

impl RaftPeers {
    /// `voters` as `controller.quorum.voters` lists them: `(id, host, port)`.
    pub fn new(voters: &[(i32, String, u16)], timeout: Duration) -> Self {
        let addresses: std::collections::HashMap<i32, (String, u16)> = voters
            .iter()
            .map(|(id, host, port)| (*id, (host.clone(), *port)))
            .collect();
        RaftPeers {
            clients: NodeClients::new(
                std::sync::Arc::new(move |id| addresses.get(&id).cloned()),
                ClientOptions {
                    client_id: "raft".into(),
                    ..ClientOptions::default()
                },
            ),
            timeout,
        }
    }

    /// Sends one request and returns the answer; `None` when there is none
    /// (unreachable peer, timeout, malformed answer), which the core retries.
    pub async fn call(&self, to: i32, request: Request) -> Option<Response> {
        let answer = self.try_call(to, request).await;
        if let Err(error) = &answer {
            tracing::debug!(to, %error, "raft request failed");
        }
        answer.ok()
    }

    async fn try_call(&self, to: i32, request: Request) -> anyhow::Result<Response> {
        // A long-polled fetch may be held for its max wait on top of the round trip.
        let timeout = match &request {
            Request::Fetch(f) => self.timeout + Duration::from_millis(u64::from(f.max_wait_ms)),
            _ => self.timeout,
        };
        let clients = &self.clients;
        Ok(match request {
            Request::Vote(r) => Response::Vote(wire::vote_response_in(
                &clients
                    .send(to, &wire::vote_request_out(&r, to), timeout)
                    .await?,
            )?),
            Request::BeginQuorumEpoch(r) => Response::BeginQuorumEpoch(wire::begin_response_in(
                &clients
                    .send(to, &wire::begin_request_out(&r, to), timeout)
                    .await?,
            )?),
            Request::EndQuorumEpoch(r) => Response::EndQuorumEpoch(wire::end_response_in(
                &clients
                    .send(to, &wire::end_request_out(&r), timeout)
                    .await?,
            )?),
            Request::Fetch(r) => Response::Fetch(wire::fetch_response_in(
                clients
                    .send(to, &wire::fetch_request_out(&r), timeout)
                    .await?,
            )?),
            Request::FetchSnapshot(r) => Response::FetchSnapshot(wire::fetch_snapshot_response_in(
                clients
                    .send(to, &wire::fetch_snapshot_request_out(&r), timeout)
                    .await?,
            )?),
        })
    }
}

/// Why an inbound RPC got a bare error response.
fn refused(error: &WireError) -> i16 {
    tracing::warn!(%error, "refusing a raft request");
    ResponseError::InvalidRequest.code()
}

/// The driver stopped (the node is shutting down).
fn unavailable() -> i16 {
    ResponseError::NotLeaderOrFollower.code()
}

pub async fn serve_vote(raft: &RaftHandle, request: VoteRequest) -> VoteResponse {
    let parsed = match wire::vote_request_in(&request) {
        Ok(parsed) => parsed,
        Err(e) => return VoteResponse::default().with_error_code(refused(&e)),
    };
    match raft
        .inbound(parsed.candidate_id, crate::raft::Request::Vote(parsed))
        .await
    {
        Some(Response::Vote(r)) => wire::vote_response_out(&r),
        _ => VoteResponse::default().with_error_code(unavailable()),
    }
}

pub async fn serve_begin_quorum_epoch(
    raft: &RaftHandle,
    request: BeginQuorumEpochRequest,
) -> BeginQuorumEpochResponse {
    let parsed = match wire::begin_request_in(&request) {
        Ok(parsed) => parsed,
        Err(e) => return BeginQuorumEpochResponse::default().with_error_code(refused(&e)),
    };
    match raft
        .inbound(parsed.leader_id, Request::BeginQuorumEpoch(parsed))
        .await
    {
        Some(Response::BeginQuorumEpoch(r)) => wire::begin_response_out(&r),
        _ => BeginQuorumEpochResponse::default().with_error_code(unavailable()),
    }
}

pub async fn serve_end_quorum_epoch(
    raft: &RaftHandle,
    request: EndQuorumEpochRequest,
) -> EndQuorumEpochResponse {
    let parsed = match wire::end_request_in(&request) {
        Ok(parsed) => parsed,
        Err(e) => return EndQuorumEpochResponse::default().with_error_code(refused(&e)),
    };
    match raft
        .inbound(parsed.leader_id, Request::EndQuorumEpoch(parsed))
        .await
    {
        Some(Response::EndQuorumEpoch(r)) => wire::end_response_out(&r),
        _ => EndQuorumEpochResponse::default().with_error_code(unavailable()),
    }
}

pub async fn serve_fetch(raft: &RaftHandle, version: i16, request: FetchRequest) -> FetchResponse {
    let parsed = match wire::fetch_request_in(&request, version) {
        Ok(parsed) => parsed,
        Err(e) => return FetchResponse::default().with_error_code(refused(&e)),
    };
    match raft
        .inbound(parsed.replica_id, Request::Fetch(parsed))
        .await
    {
        Some(Response::Fetch(r)) => wire::fetch_response_out(&r, now_ms())
            .unwrap_or_else(|e| FetchResponse::default().with_error_code(refused(&e))),
        _ => FetchResponse::default().with_error_code(unavailable()),
    }
}

pub async fn serve_fetch_snapshot(
    raft: &RaftHandle,
    request: FetchSnapshotRequest,
) -> FetchSnapshotResponse {
    let parsed = match wire::fetch_snapshot_request_in(&request) {
        Ok(parsed) => parsed,
        Err(e) => return FetchSnapshotResponse::default().with_error_code(refused(&e)),
    };
    match raft
        .inbound(parsed.replica_id, Request::FetchSnapshot(parsed))
        .await
    {
        Some(Response::FetchSnapshot(r)) => wire::fetch_snapshot_response_out(&r),
        _ => FetchSnapshotResponse::default().with_error_code(unavailable()),
    }
}
