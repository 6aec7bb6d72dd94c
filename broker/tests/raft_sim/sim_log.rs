//! The simulator's log: the crate's in-memory log plus a hash chain over every logical entry
//! (snapshotted ones included) so the checker can compare whole prefixes in O(1).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io;

use broker::raft::{Batch, BatchKind, MemoryRaftLog, OffsetAndEpoch, RaftLog, SnapshotId};
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// One logical entry: its epoch, a hash of its content, and a hash of the whole log up to
/// and including it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainEntry {
    pub epoch: i32,
    pub hash: u64,
    pub prefix: u64,
}

impl ChainEntry {
    pub fn after(previous: Option<&ChainEntry>, epoch: i32, hash: u64) -> Self {
        let mut hasher = DefaultHasher::new();
        (previous.map(|p| p.prefix), epoch, hash).hash(&mut hasher);
        ChainEntry {
            epoch,
            hash,
            prefix: hasher.finish(),
        }
    }
}

pub fn record_hash(record: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    (b'd', record).hash(&mut hasher);
    hasher.finish()
}

fn leader_change_hash(leader_id: i32, voters: &[i32]) -> u64 {
    let mut hasher = DefaultHasher::new();
    (b'l', leader_id, voters).hash(&mut hasher);
    hasher.finish()
}

#[derive(Debug, Default)]
pub struct SimLog {
    inner: MemoryRaftLog,
    chain: Vec<ChainEntry>,
    /// Offsets appended since the checker last looked.
    fresh: Vec<i64>,
}

impl SimLog {
    pub fn chain(&self) -> &[ChainEntry] {
        &self.chain
    }

    /// Entries added since the last call, as (offset, entry).
    pub fn take_fresh(&mut self) -> Vec<(i64, ChainEntry)> {
        let chain = &self.chain;
        self.fresh
            .drain(..)
            .filter_map(|offset| chain.get(offset as usize).map(|entry| (offset, *entry)))
            .collect()
    }

    fn push(&mut self, epoch: i32, hash: u64) {
        let entry = ChainEntry::after(self.chain.last(), epoch, hash);
        self.fresh.push(self.chain.len() as i64);
        self.chain.push(entry);
    }

    /// Snapshots at the last batch boundary at or below `limit`, if that moves the log start.
    pub fn snapshot_below(&mut self, limit: i64) -> io::Result<Option<SnapshotId>> {
        let start = self.inner.start().offset;
        let boundary = self
            .inner
            .batches()
            .iter()
            .map(Batch::next_offset)
            .filter(|&end| end <= limit && end > start)
            .max();
        let Some(end) = boundary else {
            return Ok(None);
        };
        let mut data = BytesMut::new();
        for entry in &self.chain[..end as usize] {
            data.put_i32(entry.epoch);
            data.put_u64(entry.hash);
        }
        self.inner.create_snapshot(end, data.freeze()).map(Some)
    }
}

impl RaftLog for SimLog {
    fn start(&self) -> OffsetAndEpoch {
        self.inner.start()
    }

    fn end_offset(&self) -> i64 {
        self.inner.end_offset()
    }

    fn last_epoch(&self) -> i32 {
        self.inner.last_epoch()
    }

    fn end_offset_for_epoch(&self, epoch: i32) -> OffsetAndEpoch {
        self.inner.end_offset_for_epoch(epoch)
    }

    fn append(&mut self, batch: Batch) -> io::Result<()> {
        let hashes: Vec<u64> = match &batch.kind {
            BatchKind::Data(records) => records.iter().map(|r| record_hash(r)).collect(),
            BatchKind::LeaderChange { leader_id, voters } => {
                vec![leader_change_hash(*leader_id, voters)]
            }
        };
        let epoch = batch.epoch;
        self.inner.append(batch)?;
        for hash in hashes {
            self.push(epoch, hash);
        }
        Ok(())
    }

    fn truncate_to(&mut self, offset: i64) -> io::Result<()> {
        self.inner.truncate_to(offset)?;
        self.chain.truncate(self.inner.end_offset() as usize);
        Ok(())
    }

    fn read(&self, from: i64, max_bytes: usize) -> io::Result<Vec<Batch>> {
        self.inner.read(from, max_bytes)
    }

    fn latest_snapshot(&self) -> Option<SnapshotId> {
        self.inner.latest_snapshot()
    }

    fn snapshot_size(&self, id: SnapshotId) -> Option<u64> {
        self.inner.snapshot_size(id)
    }

    fn read_snapshot(
        &self,
        id: SnapshotId,
        position: u64,
        max: usize,
    ) -> io::Result<Option<Bytes>> {
        self.inner.read_snapshot(id, position, max)
    }

    fn write_snapshot_chunk(
        &mut self,
        id: SnapshotId,
        size: u64,
        position: u64,
        bytes: Bytes,
    ) -> io::Result<()> {
        self.inner.write_snapshot_chunk(id, size, position, bytes)
    }

    fn install_snapshot(&mut self, id: SnapshotId) -> io::Result<()> {
        self.inner.install_snapshot(id)?;
        let (_, data) = self.inner.snapshot().expect("an installed snapshot");
        let mut data = data.clone();
        self.chain.clear();
        while data.remaining() >= 12 {
            let epoch = data.get_i32();
            let hash = data.get_u64();
            self.push(epoch, hash);
        }
        if self.chain.len() as i64 != id.offset {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "snapshot length differs from its id",
            ));
        }
        Ok(())
    }
}
