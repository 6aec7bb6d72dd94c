//! An in-memory [`RaftLog`]: the reference implementation the unit and simulation tests run on.

use std::io;

use bytes::Bytes;

use super::log::{Batch, BatchKind, OffsetAndEpoch, RaftLog, SnapshotId};

#[derive(Debug, Default, Clone)]
pub struct MemoryRaftLog {
    start: OffsetAndEpoch,
    /// Sorted by offset, hence by epoch too.
    batches: Vec<Batch>,
    snapshot: Option<(SnapshotId, Bytes)>,
    download: Option<(SnapshotId, Vec<u8>)>,
}

fn invalid(message: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

impl MemoryRaftLog {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn batches(&self) -> &[Batch] {
        &self.batches
    }

    /// The latest complete snapshot and its bytes.
    pub fn snapshot(&self) -> Option<(SnapshotId, &Bytes)> {
        self.snapshot.as_ref().map(|(id, data)| (*id, data))
    }

    /// Stores `data` as the snapshot of everything before `end_offset` (a batch boundary
    /// after offset 0) and drops that prefix from the log. The caller must only snapshot
    /// committed entries.
    pub fn create_snapshot(&mut self, end_offset: i64, data: Bytes) -> io::Result<SnapshotId> {
        if end_offset <= 0 || end_offset < self.start.offset || end_offset > self.end_offset() {
            return Err(invalid("snapshot end offset outside the log"));
        }
        let epoch = if end_offset == self.start.offset {
            self.start.epoch
        } else {
            self.batches
                .iter()
                .find(|batch| batch.next_offset() == end_offset)
                .map(|batch| batch.epoch)
                .ok_or_else(|| invalid("snapshot end offset is not a batch boundary"))?
        };
        let id = SnapshotId::new(end_offset, epoch);
        self.batches.retain(|batch| batch.base_offset >= end_offset);
        self.start = id;
        self.snapshot = Some((id, data));
        Ok(id)
    }

    fn complete_snapshot(&self, id: SnapshotId) -> Option<&Bytes> {
        self.snapshot
            .as_ref()
            .filter(|(latest, _)| *latest == id)
            .map(|(_, data)| data)
    }
}

impl RaftLog for MemoryRaftLog {
    fn start(&self) -> OffsetAndEpoch {
        self.start
    }

    fn end_offset(&self) -> i64 {
        self.batches
            .last()
            .map_or(self.start.offset, Batch::next_offset)
    }

    fn last_epoch(&self) -> i32 {
        self.batches
            .last()
            .map_or(self.start.epoch, |batch| batch.epoch)
    }

    fn end_offset_for_epoch(&self, epoch: i32) -> OffsetAndEpoch {
        if epoch >= self.last_epoch() {
            return OffsetAndEpoch::new(self.end_offset(), self.last_epoch());
        }
        // First batch of a later epoch; it exists because `epoch < last_epoch()`.
        let later = self.batches.partition_point(|batch| batch.epoch <= epoch);
        let end = self.batches[later].base_offset;
        match later.checked_sub(1) {
            Some(floor) => OffsetAndEpoch::new(end, self.batches[floor].epoch),
            // Only the start snapshot can hold entries of an epoch ≤ `epoch`.
            None => OffsetAndEpoch::new(end, self.start.epoch.min(epoch)),
        }
    }

    fn append(&mut self, batch: Batch) -> io::Result<()> {
        if batch.base_offset != self.end_offset() || batch.epoch < self.last_epoch() {
            return Err(invalid("append out of order"));
        }
        self.batches.push(batch);
        Ok(())
    }

    fn truncate_to(&mut self, offset: i64) -> io::Result<()> {
        let offset = offset.max(self.start.offset);
        self.batches.retain(|batch| batch.base_offset < offset);
        if let Some(last) = self.batches.last_mut() {
            if last.next_offset() > offset {
                let keep = (offset - last.base_offset) as usize;
                match &mut last.kind {
                    BatchKind::Data(records) => records.truncate(keep),
                    // One offset long, so it cannot straddle `offset`.
                    BatchKind::LeaderChange { .. } => {}
                }
            }
        }
        Ok(())
    }

    fn read(&self, from: i64, max_bytes: usize) -> io::Result<Vec<Batch>> {
        let first = self
            .batches
            .partition_point(|batch| batch.next_offset() <= from);
        let mut budget = max_bytes;
        let mut out = Vec::new();
        for batch in &self.batches[first..] {
            let size = batch.size_bytes();
            if !out.is_empty() && size > budget {
                break;
            }
            budget = budget.saturating_sub(size);
            out.push(batch.clone());
        }
        Ok(out)
    }

    fn latest_snapshot(&self) -> Option<SnapshotId> {
        self.snapshot.as_ref().map(|(id, _)| *id)
    }

    fn snapshot_size(&self, id: SnapshotId) -> Option<u64> {
        self.complete_snapshot(id).map(|data| data.len() as u64)
    }

    fn read_snapshot(
        &self,
        id: SnapshotId,
        position: u64,
        max_bytes: usize,
    ) -> io::Result<Option<Bytes>> {
        Ok(self.complete_snapshot(id).map(|data| {
            let from = (position as usize).min(data.len());
            let to = from.saturating_add(max_bytes).min(data.len());
            data.slice(from..to)
        }))
    }

    fn write_snapshot_chunk(
        &mut self,
        id: SnapshotId,
        _size: u64,
        position: u64,
        bytes: Bytes,
    ) -> io::Result<()> {
        if position == 0 {
            self.download = Some((id, Vec::new()));
        }
        match &mut self.download {
            Some((partial, data)) if *partial == id && data.len() as u64 == position => {
                data.extend_from_slice(&bytes);
                Ok(())
            }
            _ => Err(invalid("snapshot chunk does not continue the download")),
        }
    }

    fn install_snapshot(&mut self, id: SnapshotId) -> io::Result<()> {
        match self.download.take() {
            Some((downloaded, data)) if downloaded == id => {
                self.batches.clear();
                self.start = id;
                self.snapshot = Some((id, Bytes::from(data)));
                Ok(())
            }
            _ => Err(invalid("no downloaded snapshot with this id")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::log::test_batch as data;

    /// Epoch 1 at [0, 3), epoch 3 at [3, 5), epoch 4 at [5, 6).
    fn log() -> MemoryRaftLog {
        let mut log = MemoryRaftLog::new();
        for batch in [data(0, 1, 2), data(2, 1, 1), data(3, 3, 2), data(5, 4, 1)] {
            log.append(batch).unwrap();
        }
        log
    }

    #[test]
    fn epoch_cache_answers_like_offset_for_leader_epoch() {
        let log = log();
        assert_eq!(log.end_offset_for_epoch(4), OffsetAndEpoch::new(6, 4));
        assert_eq!(log.end_offset_for_epoch(9), OffsetAndEpoch::new(6, 4));
        assert_eq!(log.end_offset_for_epoch(3), OffsetAndEpoch::new(5, 3));
        // Epoch 2 never had entries: its floor is epoch 1, which ends where epoch 3 starts.
        assert_eq!(log.end_offset_for_epoch(2), OffsetAndEpoch::new(3, 1));
        assert_eq!(log.end_offset_for_epoch(0), OffsetAndEpoch::new(0, 0));
    }

    #[test]
    fn appends_must_continue_the_log() {
        let mut log = log();
        assert!(log.append(data(7, 4, 1)).is_err());
        assert!(log.append(data(6, 3, 1)).is_err());
        assert!(log.append(data(6, 5, 1)).is_ok());
    }

    #[test]
    fn truncation_trims_a_straddling_batch() {
        let mut log = log();
        log.truncate_to(4).unwrap();
        assert_eq!(log.end_offset(), 4);
        assert_eq!(log.last_epoch(), 3);
        log.truncate_to(0).unwrap();
        assert_eq!(log.end_offset(), 0);
        assert_eq!(log.last_epoch(), 0);
    }

    #[test]
    fn reads_respect_the_byte_budget_but_return_at_least_one_batch() {
        let log = log();
        assert_eq!(log.read(3, 0).unwrap().len(), 1);
        assert_eq!(log.read(3, 1 << 20).unwrap().len(), 2);
        assert!(log.read(6, 1 << 20).unwrap().is_empty());
    }

    #[test]
    fn snapshot_replaces_the_prefix_and_is_served_in_chunks() {
        let mut log = log();
        assert!(
            log.create_snapshot(4, Bytes::new()).is_err(),
            "not a batch boundary"
        );
        let id = log
            .create_snapshot(5, Bytes::from_static(b"state"))
            .unwrap();
        assert_eq!(id, SnapshotId::new(5, 3));
        assert_eq!(log.start(), id);
        assert_eq!(log.batches().len(), 1);
        assert_eq!(log.end_offset_for_epoch(3), OffsetAndEpoch::new(5, 3));
        assert_eq!(log.snapshot_size(id), Some(5));
        assert_eq!(log.read_snapshot(id, 3, 10).unwrap().unwrap(), "te");
        assert_eq!(
            log.read_snapshot(SnapshotId::new(1, 1), 0, 10).unwrap(),
            None
        );
    }

    #[test]
    fn downloaded_snapshot_replaces_the_whole_log() {
        let mut log = log();
        let id = SnapshotId::new(20, 6);
        assert!(log.install_snapshot(id).is_err());
        log.write_snapshot_chunk(id, 3, 0, Bytes::from_static(b"ab"))
            .unwrap();
        assert!(log
            .write_snapshot_chunk(id, 3, 5, Bytes::from_static(b"c"))
            .is_err());
        log.write_snapshot_chunk(id, 3, 2, Bytes::from_static(b"c"))
            .unwrap();
        log.install_snapshot(id).unwrap();
        assert_eq!(
            (log.start(), log.end_offset(), log.last_epoch()),
            (id, 20, 6)
        );
        assert_eq!(log.snapshot().unwrap().1.as_ref(), b"abc");
    }
}
