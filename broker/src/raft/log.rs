//! The replicated log as the core sees it. The driver implements it on disk (a segment log
//! plus snapshot files); tests use [`super::MemoryRaftLog`].

use std::io;

use bytes::Bytes;

/// A position in the log qualified by the epoch of the entry just before it.
/// Deliberately not `Ord`: Raft compares logs by epoch first, offsets by offset first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct OffsetAndEpoch {
    pub offset: i64,
    pub epoch: i32,
}

impl OffsetAndEpoch {
    pub const fn new(offset: i64, epoch: i32) -> Self {
        OffsetAndEpoch { offset, epoch }
    }
}

/// A snapshot is named by its end offset (exclusive) and the epoch of its last entry.
pub type SnapshotId = OffsetAndEpoch;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchKind {
    /// Records proposed by the state machine, one offset each.
    Data(Vec<Bytes>),
    /// The control entry a new leader writes at the start of its epoch (Kafka's
    /// LeaderChangeMessage); it occupies one offset.
    LeaderChange { leader_id: i32, voters: Vec<i32> },
}

/// Consecutive entries written by one leader in one epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub base_offset: i64,
    pub epoch: i32,
    pub kind: BatchKind,
}

/// Bytes a batch header costs on the wire; keeps the fetch byte budget honest for tiny records.
const BATCH_OVERHEAD_BYTES: usize = 61;

impl Batch {
    pub fn record_count(&self) -> i64 {
        match &self.kind {
            BatchKind::Data(records) => records.len() as i64,
            BatchKind::LeaderChange { .. } => 1,
        }
    }

    /// The offset right after this batch.
    pub fn next_offset(&self) -> i64 {
        self.base_offset + self.record_count()
    }

    /// Approximate encoded size, used against fetch byte limits.
    pub fn size_bytes(&self) -> usize {
        let payload = match &self.kind {
            BatchKind::Data(records) => records.iter().map(|r| r.len() + 8).sum(),
            BatchKind::LeaderChange { voters, .. } => 8 + 4 * voters.len(),
        };
        BATCH_OVERHEAD_BYTES + payload
    }
}

/// Synchronous log operations. Mutations must be durable when they return; an error is fatal
/// for the node (the driver stops it), as in Kafka.
///
/// Invariant: entries are contiguous from `start().offset` to `end_offset()`, epochs never
/// decrease along the log, and when `start().offset > 0` the prefix was replaced by the
/// snapshot `start()`.
pub trait RaftLog {
    /// The log start: (0, 0) for a full log, else the id of the snapshot that replaced the prefix.
    fn start(&self) -> OffsetAndEpoch;
    /// The offset the next appended entry gets.
    fn end_offset(&self) -> i64;
    /// Epoch of the last entry; the start snapshot's epoch when the log is empty.
    fn last_epoch(&self) -> i32;
    /// The epoch cache (Kafka's OffsetForLeaderEpoch): the largest epoch ≤ `epoch` present in
    /// the log and the offset where it ends (the start of the next epoch, or the log end).
    /// For `epoch ≥ last_epoch()` that is (last_epoch, end_offset).
    fn end_offset_for_epoch(&self, epoch: i32) -> OffsetAndEpoch;
    /// Appends a batch whose base offset is `end_offset()`.
    fn append(&mut self, batch: Batch) -> io::Result<()>;
    /// Drops every entry at or after `offset` (never below the log start).
    fn truncate_to(&mut self, offset: i64) -> io::Result<()>;
    /// Whole batches from `from` (which is a batch boundary) up to about `max_bytes`; at least
    /// one batch when any exists, so a large batch cannot stall replication.
    fn read(&self, from: i64, max_bytes: usize) -> io::Result<Vec<Batch>>;

    /// The newest complete snapshot.
    fn latest_snapshot(&self) -> Option<SnapshotId>;
    /// Size in bytes of a complete snapshot, `None` if there is no such snapshot.
    fn snapshot_size(&self, id: SnapshotId) -> Option<u64>;
    /// Up to `max_bytes` of a complete snapshot from `position`; `None` if it does not exist.
    fn read_snapshot(
        &self,
        id: SnapshotId,
        position: u64,
        max_bytes: usize,
    ) -> io::Result<Option<Bytes>>;
    /// Writes a downloaded chunk of snapshot `id` (of `size` bytes in all) at `position`;
    /// position 0 discards any earlier partial download.
    fn write_snapshot_chunk(
        &mut self,
        id: SnapshotId,
        size: u64,
        position: u64,
        bytes: Bytes,
    ) -> io::Result<()>;
    /// Makes the fully downloaded snapshot `id` the latest one and replaces the whole log with
    /// it: afterwards the log is empty and starts at `id`.
    fn install_snapshot(&mut self, id: SnapshotId) -> io::Result<()>;
}

/// A data batch of `count` one-byte records, for tests.
#[cfg(test)]
pub(super) fn test_batch(base_offset: i64, epoch: i32, count: usize) -> Batch {
    Batch {
        base_offset,
        epoch,
        kind: BatchKind::Data(vec![Bytes::from_static(b"v"); count]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_offsets_and_sizes() {
        let data = Batch {
            base_offset: 10,
            epoch: 2,
            kind: BatchKind::Data(vec![Bytes::from_static(b"ab"), Bytes::from_static(b"c")]),
        };
        assert_eq!(data.record_count(), 2);
        assert_eq!(data.next_offset(), 12);
        assert_eq!(data.size_bytes(), BATCH_OVERHEAD_BYTES + 10 + 9);
        let change = Batch {
            base_offset: 12,
            epoch: 3,
            kind: BatchKind::LeaderChange {
                leader_id: 1,
                voters: vec![1, 2, 3],
            },
        };
        assert_eq!(change.next_offset(), 13);
    }
}
