//! Removing data: retention by time and size, DeleteRecords and truncation.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{index_config, now_ms, Appender, PartitionLog};
use crate::storage::segment::{self, Segment};
use crate::storage::StorageError;

impl PartitionLog {
    /// Deletes whole segments past `retention.ms` (by their largest timestamp)
    /// or beyond `retention.bytes`, and segments wholly below the log start.
    /// Returns how many segments were deleted.
    pub fn apply_retention(&self, now_ms: i64) -> Result<usize, StorageError> {
        let config = self.config();
        let mut appender = self.appender.lock();
        let segments = self.segments_snapshot();
        let log_start = self.log_start_offset();
        let mut excess = if config.cleanup_policy.delete && config.retention_bytes >= 0 {
            segments.iter().map(|s| s.size()).sum::<u64>() as i64 - config.retention_bytes
        } else {
            0
        };
        let mut doomed = 0;
        for (i, segment) in segments.iter().enumerate() {
            let next_base = segments
                .get(i + 1)
                .map_or(self.log_end_offset(), |s| s.base_offset());
            let below_start = next_base <= log_start;
            let expired = config.cleanup_policy.delete
                && config.retention_ms >= 0
                && segment.max_timestamp() >= 0
                && now_ms - segment.max_timestamp() > config.retention_ms;
            let too_big = excess > 0 && segment.size() as i64 <= excess;
            let empty_active = i + 1 == segments.len() && segment.size() == 0;
            if !(below_start || expired || too_big) || empty_active {
                break;
            }
            excess -= segment.size() as i64;
            doomed += 1;
        }
        if doomed == 0 {
            return Ok(0);
        }
        tracing::info!(tp = %self.tp, segments = doomed, "deleting segments by retention");
        self.delete_oldest(&mut appender, &segments[..doomed], now_ms)?;
        // Unlinking and closing the last handles happens outside the lock.
        drop(appender);
        drop(segments);
        segment::purge_deleted(&self.dir)?;
        Ok(doomed)
    }

    /// Moves the log start offset forward (never past the log end) and deletes
    /// segments wholly below it. Returns the new log start offset.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, StorageError> {
        let mut appender = self.appender.lock();
        let (log_start, log_end) = (self.log_start_offset(), self.log_end_offset());
        if offset > log_end {
            return Err(StorageError::OffsetOutOfRange {
                requested: offset,
                log_start,
                log_end,
            });
        }
        if offset <= log_start {
            return Ok(log_start);
        }
        self.log_start.store(offset, Ordering::Release);
        self.cleaner_offset.fetch_max(offset, Ordering::AcqRel);
        self.truncate_epochs_to_start()?;
        let segments = self.segments_snapshot();
        let below: Vec<Arc<Segment>> = segments
            .iter()
            .enumerate()
            .take_while(|(i, s)| {
                let next_base = segments.get(i + 1).map_or(log_end, |n| n.base_offset());
                next_base <= offset && !(i + 1 == segments.len() && s.size() == 0)
            })
            .map(|(_, s)| s.clone())
            .collect();
        if !below.is_empty() {
            self.delete_oldest(&mut appender, &below, now_ms())?;
            drop(appender);
            drop((segments, below));
            segment::purge_deleted(&self.dir)?;
        }
        Ok(offset)
    }

    /// Removes every batch at or after the batch holding `offset`.
    pub fn truncate_to(&self, offset: i64) -> Result<(), StorageError> {
        let mut appender = self.appender.lock();
        if offset >= self.log_end_offset() {
            // No batch goes, but an epoch that starts at the log end does: a broker elected
            // leader that appended nothing before it lost the leadership keeps that epoch
            // as its latest, and a follower fetching with it is told to truncate here again
            // and again (Kafka truncates the epoch cache in this case too).
            let end = self.log_end_offset();
            return self.publish_truncated_end(end);
        }
        let segments = self.segments_snapshot();
        let (keep, doomed): (Vec<_>, Vec<_>) =
            segments.into_iter().partition(|s| s.base_offset() < offset);
        self.remove_segments(&doomed)?;
        match keep.last() {
            Some(last) => {
                last.truncate_to(offset)?;
            }
            None => {
                let segment = Segment::create(
                    &self.dir,
                    offset,
                    index_config(&self.config.read()),
                    now_ms(),
                )?;
                self.segments.write().insert(offset, Arc::new(segment));
            }
        }
        let end = self.active_segment().next_offset().min(offset);
        let end = end.max(self.active_segment().base_offset());
        self.publish_truncated_end(end)?;
        self.log_start.fetch_min(end, Ordering::AcqRel);
        if keep.is_empty() {
            self.log_start.store(end, Ordering::Release);
        }
        self.recovery_point.fetch_min(end, Ordering::AcqRel);
        self.cleaner_offset.fetch_min(end, Ordering::AcqRel);
        self.truncate_epochs_to_start()?;
        self.reload_producer_state(&mut appender)?;
        drop(appender);
        drop((keep, doomed));
        segment::purge_deleted(&self.dir)?;
        tracing::info!(tp = %self.tp, offset = end, "truncated log");
        Ok(())
    }

    /// Drops the whole log and restarts it empty at `offset` (Kafka's
    /// `truncateFullyAndStartAt`): a follower whose log ends below the
    /// leader's log start cannot fetch what lies between.
    pub fn truncate_fully_and_start_at(&self, offset: i64) -> Result<(), StorageError> {
        let mut appender = self.appender.lock();
        let doomed = self.segments_snapshot();
        self.remove_segments(&doomed)?;
        let segment = Segment::create(
            &self.dir,
            offset,
            index_config(&self.config.read()),
            now_ms(),
        )?;
        self.segments.write().insert(offset, Arc::new(segment));
        self.log_start.store(offset, Ordering::Release);
        self.log_end.store(offset, Ordering::Release);
        self.recovery_point.store(offset, Ordering::Release);
        self.cleaner_offset.store(offset, Ordering::Release);
        self.clear_epochs()?;
        self.reload_producer_state(&mut appender)?;
        drop(appender);
        drop(doomed);
        segment::purge_deleted(&self.dir)?;
        tracing::info!(tp = %self.tp, offset, "truncated log fully");
        Ok(())
    }

    /// Deletes the given oldest segments; the active one is rolled first.
    fn delete_oldest(
        &self,
        appender: &mut Appender,
        doomed: &[Arc<Segment>],
        now_ms: i64,
    ) -> Result<(), StorageError> {
        let active = self.active_segment();
        if doomed.iter().any(|s| Arc::ptr_eq(s, &active)) {
            self.roll(appender, now_ms)?;
        }
        self.remove_segments(doomed)?;
        let first = self.segments.read().keys().next().copied().unwrap_or(0);
        self.log_start.fetch_max(first, Ordering::AcqRel);
        self.cleaner_offset.fetch_max(first, Ordering::AcqRel);
        self.truncate_epochs_to_start()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::storage::batch::testutil::{encode, rec, simple};
    use crate::storage::StorageError;
    use kafka_protocol::records::Compression;

    #[test]
    fn retention_by_time_deletes_expired_segments_and_rolls_an_expired_active_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config();
        c.retention_ms = 1_000;
        let log = open(dir.path(), c);
        for _ in 0..20 {
            log.append(simple(5, 100), 0, 0).unwrap();
        }
        let old_segments = log.segment_count();
        assert!(old_segments > 2);
        // A newer segment stops deletion at the first one still in retention.
        log.roll(&log.appender.lock(), 0).unwrap();
        log.append(simple(5, 5_000), 0, 0).unwrap();
        assert_eq!(log.apply_retention(1_500).unwrap(), old_segments);
        assert_eq!(log.log_start_offset(), 100);
        assert_eq!(log.segment_count(), 1);
        let mut files: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".snapshot"))
            .collect();
        files.sort();
        assert_eq!(
            files,
            [
                "00000000000000000100.index",
                "00000000000000000100.log",
                "00000000000000000100.timeindex",
                "leader-epoch-checkpoint"
            ]
        );
        // The epoch that covered the old start now starts at the new one.
        assert_eq!(
            std::fs::read_to_string(dir.path().join("leader-epoch-checkpoint")).unwrap(),
            "0\n1\n0 100\n"
        );
        assert!(matches!(
            log.read(0, 100, i64::MAX, true),
            Err(StorageError::OffsetOutOfRange { .. })
        ));

        // Everything expired: the active segment is rolled, then deleted.
        assert_eq!(log.apply_retention(100_000).unwrap(), 1);
        assert_eq!(log.log_start_offset(), 105);
        assert_eq!(log.log_end_offset(), 105);
        assert_eq!(log.size_bytes(), 0);
        assert_eq!(log.append(simple(1, 0), 0, 0).unwrap().base_offset, 105);
    }

    #[test]
    fn retention_by_bytes_keeps_the_newest_segments_within_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config();
        c.retention_bytes = 2_000;
        let log = open(dir.path(), c);
        for i in 0..40 {
            log.append(simple(5, i), 0, 0).unwrap();
        }
        let before = log.size_bytes();
        assert!(before > 4_000);
        let deleted = log.apply_retention(0).unwrap();
        assert!(deleted > 0);
        // Kafka's rule: delete a segment only if the rest still holds retention.bytes.
        let first = log.segments_snapshot()[0].size();
        assert!(log.size_bytes() >= 2_000);
        assert!(
            log.size_bytes() - first < 2_000,
            "deletes every segment it may"
        );
        assert_eq!(
            log.log_start_offset(),
            log.segments_snapshot()[0].base_offset()
        );
        assert_eq!(log.log_end_offset(), 200);
    }

    #[test]
    fn delete_records_moves_log_start_and_drops_segments_below_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config());
        for i in 0..40 {
            log.append(simple(5, i), 0, 0).unwrap();
        }
        let second = log.segments_snapshot()[1].base_offset();
        let segments = log.segment_count();
        assert_eq!(log.delete_records_before(second + 1).unwrap(), second + 1);
        assert_eq!(log.segment_count(), segments - 1);
        assert_eq!(log.log_start_offset(), second + 1);
        assert!(log.read(second, 10, i64::MAX, true).is_err());
        let data = log.read(second + 1, 10, i64::MAX, true).unwrap();
        assert!(!data.is_empty());
        assert_eq!(log.delete_records_before(3).unwrap(), second + 1);
        assert!(matches!(
            log.delete_records_before(201),
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        assert_eq!(log.delete_records_before(200).unwrap(), 200);
        assert_eq!(log.size_bytes(), 0);
    }

    #[test]
    fn truncate_fully_restarts_the_log_empty_at_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config());
        for i in 0..40 {
            log.append(simple(5, i), 3, 0).unwrap();
        }
        log.start_leader_epoch(4).unwrap();
        log.truncate_fully_and_start_at(500).unwrap();
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (500, 500));
        assert_eq!(log.segment_count(), 1);
        assert_eq!(log.size_bytes(), 0);
        assert_eq!(log.latest_epoch(), None);
        assert!(log.read(499, 10, i64::MAX, true).is_err());
        // Appends continue from the new start, in the writer's epoch.
        let info = log.append(simple(2, 0), 5, 0).unwrap();
        assert_eq!((info.base_offset, info.last_offset), (500, 501));
        assert_eq!(log.end_offset_for_epoch(5), (5, 502));
        // The epoch cache and log start survive a reopen.
        drop(log);
        let log = open_with_start(dir.path(), 500);
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (500, 502));
        assert_eq!(log.latest_epoch(), Some(5));
    }

    #[test]
    fn a_new_leader_epoch_starts_at_the_log_end() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config());
        log.append(simple(3, 0), 1, 0).unwrap();
        log.start_leader_epoch(4).unwrap();
        assert_eq!(log.latest_epoch(), Some(4));
        assert_eq!(log.end_offset_for_epoch(1), (1, 3));
        assert_eq!(log.end_offset_for_epoch(4), (4, 3));
        // An older epoch is no news.
        log.start_leader_epoch(2).unwrap();
        assert_eq!(log.end_offset_for_epoch(2), (1, 3));
    }

    #[test]
    fn truncate_to_the_log_end_drops_an_epoch_started_there() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config());
        log.append(simple(3, 0), 1, 0).unwrap();
        // Elected in epoch 4, deposed before its first append: the new leader, which has
        // no epoch 4, says epoch 1 ends at 3, and the follower truncates to 3.
        log.start_leader_epoch(4).unwrap();
        log.truncate_to(3).unwrap();
        assert_eq!(log.log_end_offset(), 3);
        assert_eq!(log.latest_epoch(), Some(1));
        assert_eq!(log.end_offset_for_epoch(1), (1, 3));
        // Past the log end, nothing changes.
        log.truncate_to(10).unwrap();
        assert_eq!((log.log_end_offset(), log.latest_epoch()), (3, Some(1)));
    }

    #[test]
    fn truncate_to_removes_the_tail_and_producer_state_follows() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config());
        let idempotent = |seq| {
            let recs: Vec<_> = (0..5).map(|_| rec("k", "v", 0)).collect();
            encode(&recs, (4, 0, seq), Compression::None)
        };
        for i in 0..40 {
            log.append(idempotent(i * 5), 0, 0).unwrap();
        }
        // Crosses a snapshot written at a roll: state must come from before 50.
        assert!(log.segment_count() > 2);
        log.truncate_to(52).unwrap();
        assert_eq!(log.log_end_offset(), 50);
        // Sequence 50 was cut away, so it is new again rather than a duplicate.
        let info = log.append(idempotent(50), 0, 0).unwrap();
        assert_eq!((info.base_offset, info.duplicate), (50, false));
        assert!(log.append(idempotent(45), 0, 0).unwrap().duplicate);

        log.truncate_to(0).unwrap();
        assert_eq!(log.log_end_offset(), 0);
        assert_eq!(log.segment_count(), 1);
        assert!(log.read(0, 100, i64::MAX, true).unwrap().is_empty());
        assert_eq!(log.append(simple(1, 0), 0, 0).unwrap().base_offset, 0);
    }
}
