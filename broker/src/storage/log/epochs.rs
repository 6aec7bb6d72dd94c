//! The log's leader epoch cache: kept in step with appends, truncation and
//! log start moves, persisted on every change, and rebuilt from the batch
//! headers when its checkpoint is missing or unreadable.

use std::io;
use std::sync::atomic::Ordering;

use super::PartitionLog;
use crate::storage::batch::{BatchHeader, PatchableBatch};
use crate::storage::epoch_cache::LeaderEpochCache;
use crate::storage::StorageError;

impl PartitionLog {
    /// The epoch of the newest leader that wrote to this log.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.read().latest_epoch()
    }

    /// Kafka's end offset of `epoch`: the largest epoch at or below it and
    /// where that epoch ends; (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET) when unknown.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        let epochs = self.epochs.read();
        // Read under the lock: appends publish the log end and a new epoch together.
        epochs.end_offset_for(epoch, self.log_end_offset())
    }

    /// [`Self::end_offset_for_epoch`] as the leader of `current_epoch`
    /// answers it: Kafka starts a new leader's epoch at the log end on
    /// election, so the answer counts that epoch even before its first append.
    pub fn leader_end_offset_for_epoch(&self, epoch: i32, current_epoch: i32) -> (i32, i64) {
        let epochs = self.epochs.read();
        let log_end = self.log_end_offset();
        if epochs.latest_epoch() >= Some(current_epoch) {
            return epochs.end_offset_for(epoch, log_end);
        }
        let mut with_current = epochs.clone();
        with_current.assign(current_epoch, log_end);
        with_current.end_offset_for(epoch, log_end)
    }

    /// Records that `epoch` starts at the log end, as a newly elected leader
    /// does before its first append; an epoch not newer than the latest is ignored.
    pub fn start_leader_epoch(&self, epoch: i32) -> Result<(), StorageError> {
        let _appender = self.appender.lock();
        let end = self.log_end_offset();
        self.update_epochs(|epochs| {
            epochs.latest_epoch().is_none_or(|latest| epoch > latest) && epochs.assign(epoch, end)
        })
    }

    /// Forgets every epoch: the log restarts empty. Caller holds the appender lock.
    pub(super) fn clear_epochs(&self) -> Result<(), StorageError> {
        self.update_epochs(|epochs| std::mem::take(epochs) != LeaderEpochCache::default())
    }

    /// Publishes a new log end after writing `batches`, together with the
    /// epochs they start. Caller holds the appender lock.
    pub(super) fn publish_end(
        &self,
        next: i64,
        batches: &[PatchableBatch<'_>],
    ) -> Result<(), StorageError> {
        self.update_epochs(|epochs| {
            let mut changed = false;
            for batch in batches {
                changed |= assign_newer(epochs, &batch.header());
            }
            self.log_end.store(next, Ordering::Release);
            changed
        })
    }

    /// Publishes the log end after a truncation, together with dropping the
    /// epochs that started at or after it. Caller holds the appender lock.
    pub(super) fn publish_truncated_end(&self, end: i64) -> Result<(), StorageError> {
        self.update_epochs(|epochs| {
            self.log_end.store(end, Ordering::Release);
            epochs.truncate_from_end(end)
        })
    }

    /// Moves the first epoch to the (new) log start. Caller holds the appender lock.
    pub(super) fn truncate_epochs_to_start(&self) -> Result<(), StorageError> {
        let start = self.log_start_offset();
        self.update_epochs(|epochs| epochs.truncate_from_start(start))
    }

    /// Applies `change` and writes the checkpoint if it changed the cache.
    /// A failed write closes the log: the checkpoint on disk may now miss an
    /// epoch of data that is in the log.
    fn update_epochs(
        &self,
        change: impl FnOnce(&mut LeaderEpochCache) -> bool,
    ) -> Result<(), StorageError> {
        let mut epochs = self.epochs.write();
        if !change(&mut epochs) {
            return Ok(());
        }
        let snapshot = epochs.clone();
        drop(epochs);
        snapshot.write(&self.dir).map_err(|e| {
            tracing::error!(tp = %self.tp, error = %e, "writing the leader epoch checkpoint failed, closing log");
            self.mark_closed();
            StorageError::Io(e)
        })
    }

    /// Loads the epoch cache at open and makes it agree with the log: entries
    /// past the log end go (a torn tail was cut), batches past `recovery_point`
    /// may start epochs the checkpoint missed (a crash before it was written),
    /// and the first entry moves to the log start. If the last batch still
    /// has an epoch the cache lacks (a failed checkpoint write), the log is
    /// rescanned from the latest known epoch. Without a readable checkpoint,
    /// every batch header is scanned: Kafka refuses to open a log with a
    /// malformed checkpoint, but the log holds the same information.
    pub(super) fn load_epochs(&self, recovery_point: i64) -> Result<(), StorageError> {
        let log_start = self.log_start_offset();
        let loaded = match LeaderEpochCache::read(&self.dir) {
            Ok(loaded) => loaded,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                tracing::warn!(tp = %self.tp, error = %e, "leader epoch checkpoint is malformed, rebuilding it from the log");
                None
            }
            Err(e) => return Err(e.into()),
        };
        let mut cache = loaded.clone().unwrap_or_default();
        cache.truncate_from_end(self.log_end_offset());
        let last_epoch = self.last_batch()?.map(|h| h.partition_leader_epoch);
        let scan_from = if loaded.is_none() {
            log_start
        } else if last_epoch > cache.latest_epoch().or(Some(-1)) {
            tracing::warn!(tp = %self.tp, ?last_epoch, "leader epoch checkpoint misses the latest epoch, rescanning");
            cache.latest_start_offset().unwrap_or(log_start)
        } else {
            recovery_point.max(log_start)
        };
        self.for_each_batch_from(scan_from, |h| {
            assign_newer(&mut cache, h);
        })?;
        cache.truncate_from_start(log_start);
        if loaded.as_ref() != Some(&cache) {
            cache.write(&self.dir)?;
        }
        *self.epochs.write() = cache;
        Ok(())
    }

    /// The header of the log's last batch, found through the offset index.
    fn last_batch(&self) -> Result<Option<BatchHeader>, StorageError> {
        for segment in self.segments_snapshot().iter().rev() {
            if let Some((_, header)) = segment.find_batch(segment.next_offset() - 1)? {
                return Ok(Some(header));
            }
        }
        Ok(None)
    }
}

/// Records the epoch a batch starts if it is newer than every known one:
/// batches of older or equal epochs add nothing (an epoch keeps its first offset).
fn assign_newer(epochs: &mut LeaderEpochCache, h: &BatchHeader) -> bool {
    let epoch = h.partition_leader_epoch;
    epoch >= 0
        && epochs.latest_epoch().is_none_or(|latest| epoch > latest)
        && epochs.assign(epoch, h.base_offset)
}

#[cfg(test)]
mod tests {
    use std::fs::{self, OpenOptions};
    use std::path::Path;

    use super::super::testutil::*;
    use crate::storage::batch::testutil::simple;
    use crate::storage::segment::file_name;
    use crate::storage::{Checkpoints, PartitionLog, TopicPartition};

    const CHECKPOINT: &str = "leader-epoch-checkpoint";

    fn checkpoint(dir: &Path) -> String {
        fs::read_to_string(dir.join(CHECKPOINT)).unwrap()
    }

    /// Epoch 1 at 0..4, epoch 3 at 5..9, epoch 4 at 10..14, written as leader.
    fn three_epochs(dir: &Path) -> PartitionLog {
        let log = open(dir, config());
        for epoch in [1, 1, 3, 3, 3, 4, 4, 4, 4, 4] {
            log.append(simple(if epoch == 1 { 3 } else { 2 }, 0), epoch, 0)
                .unwrap();
        }
        log
    }

    fn open_at(dir: &Path, recovery_point: i64) -> PartitionLog {
        let checkpoints = Checkpoints {
            recovery_point,
            ..Checkpoints::default()
        };
        PartitionLog::open(dir, TopicPartition::new("t", 0), config(), checkpoints, 0).unwrap()
    }

    #[test]
    fn leader_appends_record_where_each_epoch_starts() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config());
        assert_eq!(log.latest_epoch(), None);
        assert_eq!(log.end_offset_for_epoch(0), (-1, -1));
        assert_eq!(checkpoint(dir.path()), "0\n0\n");

        let log = three_epochs(dir.path());
        assert_eq!(log.log_end_offset(), 22);
        assert_eq!(checkpoint(dir.path()), "0\n3\n1 0\n3 6\n4 12\n");
        assert_eq!(log.latest_epoch(), Some(4));
        assert_eq!(log.end_offset_for_epoch(0), (0, 0));
        assert_eq!(log.end_offset_for_epoch(1), (1, 6));
        assert_eq!(log.end_offset_for_epoch(2), (1, 6));
        assert_eq!(log.end_offset_for_epoch(3), (3, 12));
        assert_eq!(log.end_offset_for_epoch(4), (4, 22));
        assert_eq!(log.end_offset_for_epoch(5), (-1, -1));
        // A batch stamped with an older epoch does not rewrite history.
        log.append(simple(1, 0), 3, 0).unwrap();
        assert_eq!(checkpoint(dir.path()), "0\n3\n1 0\n3 6\n4 12\n");
    }

    #[test]
    fn a_new_leader_answers_for_its_epoch_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let log = three_epochs(dir.path());
        // Leader of epoch 6 that has not appended yet: epoch 6 starts at the log end.
        assert_eq!(log.leader_end_offset_for_epoch(4, 6), (4, 22));
        assert_eq!(log.leader_end_offset_for_epoch(5, 6), (4, 22));
        assert_eq!(log.leader_end_offset_for_epoch(6, 6), (6, 22));
        assert_eq!(log.leader_end_offset_for_epoch(7, 6), (-1, -1));
        assert_eq!(log.leader_end_offset_for_epoch(4, 4), (4, 22));
        // Answering changed nothing.
        assert_eq!(log.latest_epoch(), Some(4));
        assert_eq!(log.end_offset_for_epoch(5), (-1, -1));
    }

    #[test]
    fn the_checkpoint_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let log = three_epochs(dir.path());
        log.close().unwrap();
        drop(log);
        let log = open_at(dir.path(), 22);
        assert_eq!(log.end_offset_for_epoch(3), (3, 12));
        assert_eq!(log.end_offset_for_epoch(4), (4, 22));
        assert_eq!(checkpoint(dir.path()), "0\n3\n1 0\n3 6\n4 12\n");
    }

    #[test]
    fn a_missing_or_malformed_checkpoint_is_rebuilt_from_the_log() {
        let dir = tempfile::tempdir().unwrap();
        drop(three_epochs(dir.path()));
        let expected = checkpoint(dir.path());
        for damage in [None, Some("0\n3\n1 0\n3 six\n"), Some("garbage")] {
            match damage {
                None => fs::remove_file(dir.path().join(CHECKPOINT)).unwrap(),
                Some(text) => fs::write(dir.path().join(CHECKPOINT), text).unwrap(),
            }
            let log = open_at(dir.path(), 22);
            assert_eq!(checkpoint(dir.path()), expected, "{damage:?}");
            assert_eq!(log.end_offset_for_epoch(3), (3, 12));
        }
    }

    #[test]
    fn a_torn_tail_drops_the_epochs_it_held() {
        let dir = tempfile::tempdir().unwrap();
        let log = three_epochs(dir.path());
        // Kill mid-write of the first epoch-4 batch (offsets 12..13).
        let segment = log
            .segments_snapshot()
            .into_iter()
            .rfind(|s| s.base_offset() <= 12)
            .unwrap();
        let (position, header) = segment.find_batch(12).unwrap().unwrap();
        assert_eq!(header.partition_leader_epoch, 4);
        let path = dir.path().join(file_name(segment.base_offset(), "log"));
        drop((segment, log));
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(position + 10)
            .unwrap();

        let log = open_at(dir.path(), 0);
        assert_eq!(log.log_end_offset(), 12);
        assert_eq!(log.latest_epoch(), Some(3));
        assert_eq!(log.end_offset_for_epoch(3), (3, 12));
        assert_eq!(log.end_offset_for_epoch(4), (-1, -1));
        assert_eq!(checkpoint(dir.path()), "0\n2\n1 0\n3 6\n");
        // The next leader's epoch starts where the log now ends.
        log.append(simple(1, 0), 5, 0).unwrap();
        assert_eq!(checkpoint(dir.path()), "0\n3\n1 0\n3 6\n5 12\n");
    }

    #[test]
    fn epochs_written_after_the_checkpoint_are_found_past_the_recovery_point() {
        let dir = tempfile::tempdir().unwrap();
        drop(three_epochs(dir.path()));
        // A crash after epoch 4's first batch reached the log, before its
        // checkpoint entry did; data below offset 12 was flushed.
        fs::write(dir.path().join(CHECKPOINT), "0\n2\n1 0\n3 6\n").unwrap();
        let log = open_at(dir.path(), 12);
        assert_eq!(log.end_offset_for_epoch(4), (4, 22));
        assert_eq!(checkpoint(dir.path()), "0\n3\n1 0\n3 6\n4 12\n");
        drop(log);

        // A checkpoint write that failed while the data was flushed later:
        // the last batch's epoch is unknown, so the log is rescanned.
        fs::write(dir.path().join(CHECKPOINT), "0\n1\n1 0\n").unwrap();
        let log = open_at(dir.path(), 22);
        assert_eq!(log.end_offset_for_epoch(3), (3, 12));
        assert_eq!(checkpoint(dir.path()), "0\n3\n1 0\n3 6\n4 12\n");
    }

    #[test]
    fn log_start_moves_move_the_first_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let log = three_epochs(dir.path());
        log.delete_records_before(8).unwrap();
        assert_eq!(checkpoint(dir.path()), "0\n2\n3 8\n4 12\n");
        // Epochs before the log start end where the log now starts.
        assert_eq!(log.end_offset_for_epoch(1), (1, 8));
        assert_eq!(log.end_offset_for_epoch(3), (3, 12));
        log.delete_records_before(15).unwrap();
        assert_eq!(checkpoint(dir.path()), "0\n1\n4 15\n");

        // A restart with the log start checkpoint agrees.
        drop(log);
        let checkpoints = Checkpoints {
            recovery_point: 22,
            log_start_offset: 15,
            cleaner_offset: 0,
        };
        let log = PartitionLog::open(
            dir.path(),
            TopicPartition::new("t", 0),
            config(),
            checkpoints,
            0,
        )
        .unwrap();
        assert_eq!(log.end_offset_for_epoch(4), (4, 22));
        assert_eq!(checkpoint(dir.path()), "0\n1\n4 15\n");
    }
}
