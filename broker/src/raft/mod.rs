//! KRaft consensus (KIP-595 with KIP-996 pre-vote and KIP-630 snapshots) as a pure state
//! machine: no I/O, no clock, no threads. Time comes in as `now` (milliseconds on any
//! monotonic clock) and randomness from a generator seeded by [`RaftConfig::seed`].
//!
//! Contract for a driver (an event loop owning one [`RaftNode`]):
//! - Start with [`RaftNode::new`] from the persisted [`ElectionState`] (Kafka's `quorum-state`
//!   file; `ElectionState::default()` on a fresh node) and the node's [`RaftLog`].
//! - Feed every inbound message to [`RaftNode::handle`], call [`RaftNode::tick`] no later than
//!   [`RaftNode::next_deadline`], and hand proposals to [`RaftNode::propose`] (leader only).
//! - After each call, execute [`RaftNode::drain_actions`] in order: `Persist` must be durable
//!   before any later `Send` goes out; `Send` delivers a [`Message`]; `LeaderChanged` and
//!   `HighWatermark` are notifications (entries below the high watermark are committed and
//!   may be applied).
//! - A `Message::Request { id, .. }` sent by this node is answered by a
//!   `Message::Response` with the same id; deliver a response only to the incarnation that
//!   sent the request, at most once per wire response. Inbound requests are answered later
//!   through a `Send` carrying the request's id (fetches may be parked up to their max wait),
//!   so the driver keeps the id ↔ (connection, correlation id) mapping. A request that cannot
//!   be delivered may be reported with [`RaftNode::request_failed`]; otherwise it times out.
//! - For fetches, the request's `replica_id` identifies the replica; `from` is only where the
//!   answer goes.
//! - The log must be durable when `append`/`truncate_to`/`install_snapshot` return. Snapshots
//!   are the driver's job: it may snapshot at a batch boundary at or below the high watermark
//!   and drop the prefix (through [`RaftNode::log_mut`]); the core serves and fetches them.
//! - Any `Err(RaftError::Log)` is fatal: stop the node (its actions up to then are valid).
//! - [`RaftNode::resign`] before a graceful shutdown lets a successor take over at once.

mod config;
mod election;
mod log;
mod memory_log;
mod messages;
mod node;
mod quorum;
mod replication;
mod requests;
mod snapshot;
mod state;

pub use config::{ConfigError, RaftConfig};
pub use log::{Batch, BatchKind, OffsetAndEpoch, RaftLog, SnapshotId};
pub use memory_log::MemoryRaftLog;
pub use messages::{
    BeginQuorumEpochRequest, BeginQuorumEpochResponse, EndQuorumEpochRequest,
    EndQuorumEpochResponse, ErrorCode, FetchRequest, FetchResponse, FetchSnapshotRequest,
    FetchSnapshotResponse, LeaderAndEpoch, Message, Request, Response, VoteRequest, VoteResponse,
};
pub use node::{Action, RaftError, RaftNode};
pub use quorum::{QuorumInfo, ReplicaInfo};
pub use state::{ElectionState, Role};

#[cfg(test)]
mod tests;
