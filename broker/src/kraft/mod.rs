//! KRaft on this node: the Raft core (`crate::raft`) driven over real sockets
//! and disk, feeding committed metadata to the loader and the controller.

pub mod disk_log;
pub mod quorum_state;
pub mod records;
pub mod wire;
