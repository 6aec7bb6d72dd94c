//! Metadata snapshots in Kafka's format (KIP-630), independent of Raft.
//!
//! A snapshot with exclusive end offset E and epoch P is the file
//! `<E, 20 digits>-<P, 10 digits>.checkpoint` in the `__cluster_metadata-0`
//! directory: v2 record batches with offsets from 0, a control batch holding a
//! SnapshotHeader record first, data batches of record values, then a control
//! batch holding a SnapshotFooter record. It is written as `.checkpoint.part`
//! and renamed once complete and synced; a deleted one is renamed to
//! `.checkpoint.deleted` before its removal.

mod error;
mod files;
mod id;
mod reader;
mod transfer;
mod writer;

pub use error::SnapshotError;
pub use files::{
    clean_up_partial, delete_before, delete_snapshot, latest_snapshot, list_snapshots,
};
pub use id::SnapshotId;
pub use reader::{SnapshotReader, SnapshotRecord};
pub use transfer::{IncomingSnapshot, RawSnapshot};
pub use writer::SnapshotWriter;

/// Largest batch a reader accepts: Kafka's `KafkaRaftClient.MAX_BATCH_SIZE_BYTES`.
pub const MAX_BATCH_BYTES: usize = 8 << 20;

#[cfg(test)]
mod tests;
