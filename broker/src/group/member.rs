//! One member of a classic group and the requests it has parked with the coordinator.

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::error::GroupError;
use super::types::{ClientInfo, JoinResult, Protocol, SyncResult};

pub type JoinReply = oneshot::Sender<Result<JoinResult, GroupError>>;
pub type SyncReply = oneshot::Sender<Result<SyncResult, GroupError>>;

#[derive(Debug)]
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client: ClientInfo,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub protocols: Vec<Protocol>,
    pub assignment: Bytes,
    /// A JoinGroup waiting for the rebalance to complete.
    pub join_reply: Option<JoinReply>,
    /// A SyncGroup waiting for the leader's assignment.
    pub sync_reply: Option<SyncReply>,
    /// The member is removed when this passes without a heartbeat.
    pub session_deadline: Instant,
    /// Tells the live session timer from ones left over by replaced members.
    pub timer_id: u64,
    /// Joined but not yet part of a generation.
    pub is_new: bool,
}

impl Member {
    pub fn awaiting_join(&self) -> bool {
        self.join_reply.is_some()
    }

    /// The metadata this member sent for `protocol`.
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }

    pub fn matches(&self, protocols: &[Protocol]) -> bool {
        self.protocols == protocols
    }

    pub fn reply_join(&mut self, result: Result<JoinResult, GroupError>) {
        if let Some(reply) = self.join_reply.take() {
            // The requester may have gone away; nothing to do then.
            let _ = reply.send(result);
        }
    }

    pub fn reply_sync(&mut self, result: Result<SyncResult, GroupError>) {
        if let Some(reply) = self.sync_reply.take() {
            let _ = reply.send(result);
        }
    }
}
