//! KRaft on this node: the Raft core (`crate::raft`) driven over real sockets
//! and disk, feeding committed metadata to the loader and taking the
//! controller's writes as proposals.
//!
//! - `driver`: the event loop (own thread) around the core.
//! - `disk_log`, `records`, `quorum_state`: the metadata partition on disk.
//! - `wire`, `rpc`: the core's messages as Kafka RPCs, out and in.
//! - `metadata_log`: the controller's writes through the quorum.

pub mod disk_log;
pub mod driver;
pub mod metadata_log;
pub mod quorum_state;
pub mod records;
pub mod rpc;
pub mod wire;

pub use driver::{QuorumView, RaftHandle};
