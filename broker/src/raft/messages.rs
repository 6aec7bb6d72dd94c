//! The Raft RPCs, field for field after Kafka's VoteRequest.json, BeginQuorumEpochRequest.json,
//! EndQuorumEpochRequest.json, FetchRequest.json and FetchSnapshotRequest.json (one topic, one
//! partition: `__cluster_metadata-0`). The driver converts them to and from the wire; fields
//! that only the wire needs (topic names, directory ids, endpoints, destination voter id) are
//! left to it.

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::log::{Batch, OffsetAndEpoch, SnapshotId};

/// A Kafka error code, kept numeric so it maps to the wire 1:1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub i16);

impl ErrorCode {
    pub const NONE: ErrorCode = ErrorCode(0);
    pub const NOT_LEADER_OR_FOLLOWER: ErrorCode =
        ErrorCode(ResponseError::NotLeaderOrFollower.code());
    pub const INVALID_REQUEST: ErrorCode = ErrorCode(ResponseError::InvalidRequest.code());
    pub const FENCED_LEADER_EPOCH: ErrorCode = ErrorCode(ResponseError::FencedLeaderEpoch.code());
    pub const UNKNOWN_LEADER_EPOCH: ErrorCode = ErrorCode(ResponseError::UnknownLeaderEpoch.code());
    pub const INCONSISTENT_VOTER_SET: ErrorCode =
        ErrorCode(ResponseError::InconsistentVoterSet.code());
    pub const SNAPSHOT_NOT_FOUND: ErrorCode = ErrorCode(ResponseError::SnapshotNotFound.code());
    pub const POSITION_OUT_OF_RANGE: ErrorCode =
        ErrorCode(ResponseError::PositionOutOfRange.code());
    pub const INCONSISTENT_CLUSTER_ID: ErrorCode =
        ErrorCode(ResponseError::InconsistentClusterId.code());

    pub fn is_none(self) -> bool {
        self == ErrorCode::NONE
    }
}

/// The responder's view of the leadership (`LeaderId`/`LeaderEpoch`, or `CurrentLeader`);
/// `None` is the wire's -1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderAndEpoch {
    pub leader_id: Option<i32>,
    pub epoch: i32,
}

/// What travels between nodes. Requests carry an id chosen by the sender; the response to a
/// request carries the same id. The driver maps the ids to wire correlation ids and must hand
/// back a response only to the node incarnation that sent the request.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Request { id: u64, body: Request },
    Response { id: u64, body: Response },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Vote(VoteRequest),
    BeginQuorumEpoch(BeginQuorumEpochRequest),
    EndQuorumEpoch(EndQuorumEpochRequest),
    Fetch(FetchRequest),
    FetchSnapshot(FetchSnapshotRequest),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    Vote(VoteResponse),
    BeginQuorumEpoch(BeginQuorumEpochResponse),
    EndQuorumEpoch(EndQuorumEpochResponse),
    Fetch(FetchResponse),
    FetchSnapshot(FetchSnapshotResponse),
}

#[derive(Debug, Clone, PartialEq)]
pub struct VoteRequest {
    pub cluster_id: Option<String>,
    /// `ReplicaEpoch`: the epoch the candidate stands in (its epoch + 1 for a pre-vote).
    pub candidate_epoch: i32,
    /// `ReplicaId`.
    pub candidate_id: i32,
    pub last_offset_epoch: i32,
    pub last_offset: i64,
    pub pre_vote: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VoteResponse {
    /// Top-level `ErrorCode`.
    pub error: ErrorCode,
    pub partition_error: ErrorCode,
    pub leader: LeaderAndEpoch,
    pub vote_granted: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BeginQuorumEpochRequest {
    pub cluster_id: Option<String>,
    pub leader_id: i32,
    pub leader_epoch: i32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BeginQuorumEpochResponse {
    pub error: ErrorCode,
    pub partition_error: ErrorCode,
    pub leader: LeaderAndEpoch,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EndQuorumEpochRequest {
    pub cluster_id: Option<String>,
    pub leader_id: i32,
    pub leader_epoch: i32,
    /// Voters ordered by how far their logs reach, best first.
    pub preferred_successors: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EndQuorumEpochResponse {
    pub error: ErrorCode,
    pub partition_error: ErrorCode,
    pub leader: LeaderAndEpoch,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FetchRequest {
    pub cluster_id: Option<String>,
    pub replica_id: i32,
    pub max_wait_ms: u32,
    pub max_bytes: u32,
    pub current_leader_epoch: i32,
    pub fetch_offset: i64,
    pub last_fetched_epoch: i32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FetchResponse {
    pub error: ErrorCode,
    pub partition_error: ErrorCode,
    /// -1 when the responder knows none.
    pub high_watermark: i64,
    pub log_start_offset: i64,
    /// Set when the fetch position does not match the leader's log: truncate, then refetch.
    pub diverging_epoch: Option<OffsetAndEpoch>,
    pub current_leader: LeaderAndEpoch,
    /// Set when the fetch position is below the leader's log start: fetch this snapshot.
    pub snapshot_id: Option<SnapshotId>,
    pub batches: Vec<Batch>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FetchSnapshotRequest {
    pub cluster_id: Option<String>,
    pub replica_id: i32,
    pub max_bytes: u32,
    pub current_leader_epoch: i32,
    pub snapshot_id: SnapshotId,
    pub position: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FetchSnapshotResponse {
    pub error: ErrorCode,
    pub partition_error: ErrorCode,
    pub snapshot_id: SnapshotId,
    pub current_leader: LeaderAndEpoch,
    /// Total size of the snapshot in bytes.
    pub size: i64,
    /// Where `bytes` starts within the snapshot.
    pub position: i64,
    pub bytes: Bytes,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_kafkas_numbers() {
        // Pinned to the protocol's numbers so a dependency change cannot shift them silently.
        assert_eq!(ErrorCode::NOT_LEADER_OR_FOLLOWER.0, 6);
        assert_eq!(ErrorCode::INVALID_REQUEST.0, 42);
        assert_eq!(ErrorCode::FENCED_LEADER_EPOCH.0, 74);
        assert_eq!(ErrorCode::UNKNOWN_LEADER_EPOCH.0, 75);
        assert_eq!(ErrorCode::INCONSISTENT_VOTER_SET.0, 94);
        assert_eq!(ErrorCode::SNAPSHOT_NOT_FOUND.0, 98);
        assert_eq!(ErrorCode::POSITION_OUT_OF_RANGE.0, 99);
        assert_eq!(ErrorCode::INCONSISTENT_CLUSTER_ID.0, 104);
        assert!(ErrorCode::NONE.is_none() && !ErrorCode::INVALID_REQUEST.is_none());
    }
}
