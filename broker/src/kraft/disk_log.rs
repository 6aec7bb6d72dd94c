//! The Raft log on disk: `<metadata dir>/__cluster_metadata-0`, a segment log
//! in Kafka's layout (batches as `records` encodes them, the leader epoch
//! cache beside it) plus the snapshot `.checkpoint` files that replace its
//! prefix. Every mutation is fsynced before it returns, as the Raft core
//! requires: a vote or an acknowledged entry must survive a crash.

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::records::{decode_batches, encode_batch};
use crate::config::CleanupPolicy;
use crate::raft::{Batch, OffsetAndEpoch, RaftLog};
use crate::server::now_ms;
use crate::storage::snapshot::{self, IncomingSnapshot, RawSnapshot, SnapshotId};
use crate::storage::{Checkpoints, LogConfig, PartitionLog, StorageError, TopicPartition};

pub const METADATA_TOPIC: &str = "__cluster_metadata";

pub struct DiskRaftLog {
    dir: PathBuf,
    log: PartitionLog,
    /// (0, 0), or the snapshot that replaced everything before its end offset.
    start: OffsetAndEpoch,
    latest_snapshot: Option<OffsetAndEpoch>,
    download: Option<IncomingSnapshot>,
}

fn to_raft(id: SnapshotId) -> OffsetAndEpoch {
    OffsetAndEpoch::new(id.end_offset, id.epoch)
}

fn to_storage(id: OffsetAndEpoch) -> SnapshotId {
    SnapshotId::new(id.offset, id.epoch)
}

fn io_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl DiskRaftLog {
    /// Opens the metadata partition under `metadata_dir`, recovering a torn
    /// tail, dropping partial snapshot downloads, and starting the log at the
    /// latest snapshot.
    pub fn open(metadata_dir: &Path, defaults: &LogConfig) -> io::Result<Self> {
        let tp = TopicPartition::new(METADATA_TOPIC, 0);
        let dir = metadata_dir.join(tp.dir_name());
        std::fs::create_dir_all(&dir)?;
        snapshot::clean_up_partial(&dir).map_err(io_error)?;
        let latest = snapshot::latest_snapshot(&dir).map_err(io_error)?;
        let start_offset = latest.map_or(0, |id| id.end_offset);
        let config = LogConfig {
            // The log is the source of truth: only snapshots shorten it.
            retention_ms: -1,
            retention_bytes: -1,
            cleanup_policy: CleanupPolicy {
                delete: true,
                compact: false,
            },
            ..defaults.clone()
        };
        let checkpoints = Checkpoints {
            log_start_offset: start_offset,
            ..Checkpoints::default()
        };
        let log = PartitionLog::open(&dir, tp, config, checkpoints, now_ms()).map_err(io_error)?;
        if log.log_end_offset() < start_offset {
            // A snapshot was installed but the log was not restarted before a crash.
            log.truncate_fully_and_start_at(start_offset)
                .map_err(io_error)?;
        } else if log.log_start_offset() < start_offset {
            log.delete_records_before(start_offset).map_err(io_error)?;
        }
        let start = latest.map_or(OffsetAndEpoch::default(), to_raft);
        Ok(DiskRaftLog {
            dir,
            log,
            start,
            latest_snapshot: latest.map(to_raft),
            download: None,
        })
    }

    /// The partition directory, where the quorum-state file and snapshots live too.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records that a snapshot ending at `id` was written (by the state
    /// machine, at or below the high watermark) and drops the log before it
    /// and older snapshots.
    pub fn snapshot_written(&mut self, id: OffsetAndEpoch) -> io::Result<()> {
        self.latest_snapshot = Some(id);
        self.log
            .delete_records_before(id.offset)
            .map_err(io_error)?;
        self.start = id;
        snapshot::delete_before(&self.dir, to_storage(id)).map_err(io_error)?;
        Ok(())
    }

    /// The epoch of the entry at `offset`, for naming a snapshot ending after it.
    pub fn epoch_at(&self, offset: i64) -> Option<i32> {
        self.read(offset, 1)
            .ok()?
            .into_iter()
            .find(|b| b.base_offset <= offset && offset < b.next_offset())
            .map(|b| b.epoch)
    }

    /// Flushes and closes the log for a clean shutdown.
    pub fn close(&self) -> Result<(), StorageError> {
        self.log.close()
    }
}

impl RaftLog for DiskRaftLog {
    fn start(&self) -> OffsetAndEpoch {
        self.start
    }

    fn end_offset(&self) -> i64 {
        self.log.log_end_offset()
    }

    fn last_epoch(&self) -> i32 {
        if self.end_offset() <= self.start.offset {
            return self.start.epoch;
        }
        self.log.latest_epoch().unwrap_or(self.start.epoch)
    }

    fn end_offset_for_epoch(&self, epoch: i32) -> OffsetAndEpoch {
        let last = self.last_epoch();
        if epoch >= last {
            return OffsetAndEpoch::new(self.end_offset(), last);
        }
        let (found, end) = self.log.end_offset_for_epoch(epoch);
        let log_start = self.log.log_start_offset();
        if found < 0 || end <= log_start {
            // Older than anything in the log: only the start snapshot can hold it.
            return OffsetAndEpoch::new(log_start, self.start.epoch.min(epoch));
        }
        OffsetAndEpoch::new(end, found)
    }

    fn append(&mut self, batch: Batch) -> io::Result<()> {
        if batch.base_offset != self.end_offset() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "raft append at {} but the log ends at {}",
                    batch.base_offset,
                    self.end_offset()
                ),
            ));
        }
        let bytes = encode_batch(&batch, now_ms()).map_err(io_error)?;
        self.log.append_as_follower(bytes).map_err(io_error)?;
        self.log.flush().map_err(io_error)
    }

    fn truncate_to(&mut self, offset: i64) -> io::Result<()> {
        self.log
            .truncate_to(offset.max(self.start.offset))
            .map_err(io_error)?;
        self.log.flush().map_err(io_error)
    }

    fn read(&self, from: i64, max_bytes: usize) -> io::Result<Vec<Batch>> {
        if from >= self.end_offset() {
            return Ok(Vec::new());
        }
        let bytes = self
            .log
            .read(from, max_bytes, i64::MAX, true)
            .map_err(io_error)?;
        decode_batches(bytes).map_err(io_error)
    }

    fn latest_snapshot(&self) -> Option<OffsetAndEpoch> {
        self.latest_snapshot
    }

    fn snapshot_size(&self, id: OffsetAndEpoch) -> Option<u64> {
        if self.latest_snapshot != Some(id) {
            return None;
        }
        RawSnapshot::open(&self.dir, to_storage(id))
            .ok()
            .map(|s| s.size())
    }

    fn read_snapshot(
        &self,
        id: OffsetAndEpoch,
        position: u64,
        max_bytes: usize,
    ) -> io::Result<Option<Bytes>> {
        if self.latest_snapshot != Some(id) {
            return Ok(None);
        }
        let raw = RawSnapshot::open(&self.dir, to_storage(id)).map_err(io_error)?;
        if position >= raw.size() {
            return Ok(Some(Bytes::new()));
        }
        raw.read_chunk(position, max_bytes)
            .map(Some)
            .map_err(io_error)
    }

    fn write_snapshot_chunk(
        &mut self,
        id: OffsetAndEpoch,
        size: u64,
        position: u64,
        bytes: Bytes,
    ) -> io::Result<()> {
        if position == 0 {
            self.download =
                Some(IncomingSnapshot::create(&self.dir, to_storage(id), size).map_err(io_error)?);
        }
        match &mut self.download {
            Some(download) if download.id() == to_storage(id) => {
                download.append(position, &bytes).map_err(io_error)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "snapshot chunk does not continue the download",
            )),
        }
    }

    fn install_snapshot(&mut self, id: OffsetAndEpoch) -> io::Result<()> {
        let download = match self.download.take() {
            Some(download) if download.id() == to_storage(id) => download,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "no downloaded snapshot with this id",
                ))
            }
        };
        // Validates every batch before the file becomes the latest snapshot.
        download.finish().map_err(io_error)?;
        self.latest_snapshot = Some(id);
        self.start = id;
        self.log
            .truncate_fully_and_start_at(id.offset)
            .map_err(io_error)?;
        snapshot::delete_before(&self.dir, to_storage(id)).map_err(io_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::BatchKind;

    fn data(base_offset: i64, epoch: i32, values: &[&'static [u8]]) -> Batch {
        Batch {
            base_offset,
            epoch,
            kind: BatchKind::Data(values.iter().map(|v| Bytes::from_static(v)).collect()),
        }
    }

    fn defaults() -> LogConfig {
        LogConfig::from_broker(&crate::config::BrokerConfig::default())
    }

    #[test]
    fn appends_survive_reopen_with_their_epochs() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = DiskRaftLog::open(dir.path(), &defaults()).unwrap();
        assert_eq!((log.end_offset(), log.last_epoch()), (0, 0));
        log.append(Batch {
            base_offset: 0,
            epoch: 1,
            kind: BatchKind::LeaderChange {
                leader_id: 1,
                voters: vec![1],
            },
        })
        .unwrap();
        log.append(data(1, 1, &[b"a", b"b"])).unwrap();
        log.append(data(3, 4, &[b"c"])).unwrap();
        assert!(log.append(data(9, 4, &[b"gap"])).is_err());
        drop(log);

        let mut log = DiskRaftLog::open(dir.path(), &defaults()).unwrap();
        assert_eq!((log.end_offset(), log.last_epoch()), (4, 4));
        assert_eq!(log.end_offset_for_epoch(2), OffsetAndEpoch::new(3, 1));
        assert_eq!(log.end_offset_for_epoch(9), OffsetAndEpoch::new(4, 4));
        let read = log.read(1, 1 << 20).unwrap();
        assert_eq!(read, vec![data(1, 1, &[b"a", b"b"]), data(3, 4, &[b"c"])]);

        log.truncate_to(3).unwrap();
        assert_eq!((log.end_offset(), log.last_epoch()), (3, 1));
        log.append(data(3, 5, &[b"d"])).unwrap();
        assert_eq!(log.end_offset_for_epoch(4), OffsetAndEpoch::new(3, 1));
    }

    /// Flips one byte inside the record data of the batch starting at `base_offset`.
    fn damage_batch(dir: &Path, base_offset: i64) {
        let segment = dir
            .join("__cluster_metadata-0")
            .join(format!("{:020}.log", 0));
        let mut bytes = std::fs::read(&segment).unwrap();
        let mut at = 0;
        while i64::from_be_bytes(bytes[at..at + 8].try_into().unwrap()) != base_offset {
            let len = u32::from_be_bytes(bytes[at + 8..at + 12].try_into().unwrap());
            at += 12 + len as usize;
        }
        // Past the 61-byte header: the records, covered by the CRC.
        bytes[at + 61] ^= 0xff;
        std::fs::write(&segment, bytes).unwrap();
    }

    #[test]
    fn a_batch_with_a_bad_crc_is_cut_off_at_load_and_never_read() {
        for clean_close in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let mut log = DiskRaftLog::open(dir.path(), &defaults()).unwrap();
            log.append(data(0, 1, &[b"a", b"b"])).unwrap();
            log.append(data(2, 1, &[b"c"])).unwrap();
            log.append(data(3, 2, &[b"d"])).unwrap();
            if clean_close {
                log.close().unwrap();
            }
            drop(log);
            damage_batch(dir.path(), 2);

            let log = DiskRaftLog::open(dir.path(), &defaults()).unwrap();
            assert_eq!(log.end_offset(), 2, "clean close: {clean_close}");
            assert_eq!(
                log.read(0, 1 << 20).unwrap(),
                vec![data(0, 1, &[b"a", b"b"])],
                "clean close: {clean_close}"
            );
        }
    }

    #[test]
    fn a_downloaded_snapshot_replaces_the_log_and_is_the_start_after_reopen() {
        // A leader-side snapshot to transfer.
        let leader_dir = tempfile::tempdir().unwrap();
        let mut image = crate::metadata::MetadataImage::empty("c");
        image.metadata_offset = 41;
        let id = crate::metadata::snapshot::write_image_snapshot(
            &leader_dir.path().join("__cluster_metadata-0"),
            &image,
            3,
            0,
        )
        .unwrap();
        let id = to_raft(id);
        let mut leader = DiskRaftLog::open(leader_dir.path(), &defaults()).unwrap();
        leader.latest_snapshot = Some(id);
        let size = leader.snapshot_size(id).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let mut follower = DiskRaftLog::open(dir.path(), &defaults()).unwrap();
        follower.append(data(0, 1, &[b"old"])).unwrap();
        let mut position = 0;
        while position < size {
            let chunk = leader.read_snapshot(id, position, 7).unwrap().unwrap();
            follower
                .write_snapshot_chunk(id, size, position, chunk.clone())
                .unwrap();
            position += chunk.len() as u64;
        }
        follower.install_snapshot(id).unwrap();
        assert_eq!(
            (
                follower.start(),
                follower.end_offset(),
                follower.last_epoch()
            ),
            (id, 42, 3)
        );
        follower.append(data(42, 4, &[b"new"])).unwrap();
        drop(follower);

        let follower = DiskRaftLog::open(dir.path(), &defaults()).unwrap();
        assert_eq!(follower.start(), id);
        assert_eq!(follower.latest_snapshot(), Some(id));
        assert_eq!((follower.end_offset(), follower.last_epoch()), (43, 4));
        assert_eq!(follower.end_offset_for_epoch(2), OffsetAndEpoch::new(42, 2));
    }
}
