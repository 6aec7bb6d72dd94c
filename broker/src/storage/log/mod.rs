//! One partition's log: an ordered set of segments, the last one active.
//!
//! Appends take the partition's appender lock; readers only take the segment
//! map's read lock long enough to clone an `Arc<Segment>`, then `pread`.

mod append;
mod epochs;
mod follower;
mod open;
mod read;
mod retention;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::epoch_cache::LeaderEpochCache;
use super::producer_state::{self, ProducerState};
use super::segment::{self, IndexConfig, Segment};
use super::{LogConfig, StorageError, TopicPartition};

/// What an append did, as the produce response reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// -1 unless the topic uses LogAppendTime.
    pub log_append_time: i64,
    pub log_start_offset: i64,
    /// The batch was already appended; offsets are the original ones.
    pub duplicate: bool,
}

/// Where a log starts when opened, from the log dir's checkpoints.
#[derive(Debug, Clone, Copy, Default)]
pub struct Checkpoints {
    /// Offsets below this were flushed before the last shutdown.
    pub recovery_point: i64,
    pub log_start_offset: i64,
    /// First offset the cleaner has not compacted yet.
    pub cleaner_offset: i64,
}

/// State only the appender touches.
struct Appender {
    producers: ProducerState,
}

pub struct PartitionLog {
    tp: TopicPartition,
    dir: PathBuf,
    config: RwLock<LogConfig>,
    segments: RwLock<BTreeMap<i64, Arc<Segment>>>,
    appender: Mutex<Appender>,
    /// Changed under the appender lock; readers take only this lock.
    epochs: RwLock<LeaderEpochCache>,
    log_end: AtomicI64,
    log_start: AtomicI64,
    recovery_point: AtomicI64,
    cleaner_offset: AtomicI64,
    unflushed_messages: AtomicU64,
    last_flush_ms: AtomicI64,
    closed: AtomicBool,
}

/// How many producer snapshots are kept per partition.
const SNAPSHOTS_KEPT: usize = 2;

/// Wall-clock milliseconds, for operations whose callers pass no time.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub(crate) fn index_config(config: &LogConfig) -> IndexConfig {
    IndexConfig {
        interval_bytes: config.index_interval_bytes,
        max_index_bytes: config.segment_index_bytes,
    }
}

impl PartitionLog {
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start.load(Ordering::Acquire)
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log_end.load(Ordering::Acquire)
    }

    /// Offsets below this are known to be on disk.
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point.load(Ordering::Acquire)
    }

    pub fn size_bytes(&self) -> u64 {
        self.segments.read().values().map(|s| s.size()).sum()
    }

    pub fn config(&self) -> LogConfig {
        self.config.read().clone()
    }

    pub fn update_config(&self, config: LogConfig) {
        *self.config.write() = config;
    }

    /// Number of segments, the active one included.
    pub fn segment_count(&self) -> usize {
        self.segments.read().len()
    }

    /// Writes everything appended so far to disk and advances the recovery point.
    pub fn flush(&self) -> Result<(), StorageError> {
        let end = self.log_end_offset();
        let from = self.recovery_point();
        for segment in self.segments_snapshot() {
            if segment.next_offset() > from || segment.base_offset() >= from {
                segment.flush()?;
            }
        }
        self.recovery_point.fetch_max(end, Ordering::AcqRel);
        self.unflushed_messages.store(0, Ordering::Release);
        Ok(())
    }

    /// Flushes when `flush.ms` has passed since the last flush with data pending.
    pub fn maybe_flush(&self, now_ms: i64) -> Result<(), StorageError> {
        let Some(flush_ms) = self.config.read().flush_ms else {
            return Ok(());
        };
        let due = now_ms - self.last_flush_ms.load(Ordering::Acquire) >= flush_ms as i64;
        if due && self.unflushed_messages.load(Ordering::Acquire) > 0 {
            self.last_flush_ms.store(now_ms, Ordering::Release);
            self.flush()?;
        }
        Ok(())
    }

    /// Flushes and writes a producer snapshot, for a clean shutdown.
    pub fn close(&self) -> Result<(), StorageError> {
        let appender = self.appender.lock();
        self.flush()?;
        let end = self.log_end_offset();
        // As Kafka does, a snapshot only when the log moved since the newest one: with
        // 10,000 idle partitions, writing and syncing an unchanged snapshot for each made
        // up most of a broker's shutdown.
        let newest = producer_state::snapshot_offsets(&self.dir)?.last().copied();
        if newest.unwrap_or(0) != end {
            producer_state::write_snapshot(&self.dir, end, &appender.producers)?;
            producer_state::clean_snapshots(&self.dir, end, SNAPSHOTS_KEPT)?;
        }
        Ok(())
    }

    /// Stops further appends: on deletion, at shutdown and after a failed write.
    pub fn mark_closed(&self) {
        self.closed.store(true, Ordering::Release);
    }

    pub(crate) fn cleaner_offset(&self) -> i64 {
        self.cleaner_offset.load(Ordering::Acquire)
    }

    pub(crate) fn set_cleaner_offset(&self, offset: i64) {
        self.cleaner_offset.store(offset, Ordering::Release);
    }

    /// All segments in offset order.
    pub(crate) fn segments_snapshot(&self) -> Vec<Arc<Segment>> {
        self.segments.read().values().cloned().collect()
    }

    fn active_segment(&self) -> Arc<Segment> {
        let segments = self.segments.read();
        let (_, active) = segments
            .last_key_value()
            .expect("a log always has an active segment");
        active.clone()
    }

    /// Seals the active segment, snapshots producer state and starts a new
    /// segment at the log end. Caller holds the appender lock.
    fn roll(&self, appender: &Appender, now_ms: i64) -> Result<(), StorageError> {
        self.roll_at(appender, self.log_end_offset(), now_ms)
    }

    /// Like [`Self::roll`] with the new segment at `base` (at or past the log
    /// end): replicated batches may start past the log end where the leader's
    /// cleaner removed whole batches.
    fn roll_at(&self, appender: &Appender, base: i64, now_ms: i64) -> Result<(), StorageError> {
        let end = self.log_end_offset();
        let active = self.active_segment();
        if active.base_offset() == base {
            return Ok(());
        }
        active.seal()?;
        producer_state::write_snapshot(&self.dir, end, &appender.producers)?;
        producer_state::clean_snapshots(&self.dir, end, SNAPSHOTS_KEPT)?;
        let segment = Segment::create(&self.dir, base, index_config(&self.config.read()), now_ms)?;
        self.segments.write().insert(base, Arc::new(segment));
        self.recovery_point.fetch_max(end, Ordering::AcqRel);
        tracing::debug!(tp = %self.tp, base_offset = base, "rolled new segment");
        Ok(())
    }

    /// Swaps a segment for its cleaned copy (or drops it when `install` yields
    /// none) if it is still part of the log and not the active segment.
    /// Returns false when the segment was deleted or truncated meanwhile.
    pub(crate) fn replace_segment(
        &self,
        old: &Arc<Segment>,
        install: impl FnOnce() -> Result<Option<Segment>, StorageError>,
    ) -> Result<bool, StorageError> {
        let appender = self.appender.lock();
        let current = self.segments.read().get(&old.base_offset()).cloned();
        let still_there = current.is_some_and(|c| Arc::ptr_eq(&c, old));
        if !still_there || Arc::ptr_eq(old, &self.active_segment()) {
            return Ok(false);
        }
        match install()? {
            Some(segment) => {
                self.segments
                    .write()
                    .insert(segment.base_offset(), Arc::new(segment));
            }
            None => self.remove_segments(std::slice::from_ref(old))?,
        }
        drop(appender);
        segment::purge_deleted(&self.dir)?;
        Ok(true)
    }

    /// Removes segments from the map and marks their files deleted; called
    /// under the appender lock. [`segment::purge_deleted`] unlinks them later.
    fn remove_segments(&self, doomed: &[Arc<Segment>]) -> Result<(), StorageError> {
        let mut segments = self.segments.write();
        for segment in doomed {
            segments.remove(&segment.base_offset());
        }
        drop(segments);
        for segment in doomed {
            segment.mark_deleted()?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use super::*;
    use crate::config::BrokerConfig;

    pub fn config() -> LogConfig {
        let mut c = LogConfig::from_broker(&BrokerConfig::default());
        c.segment_bytes = 1024;
        c.index_interval_bytes = 100;
        c
    }

    pub fn open(dir: &Path, config: LogConfig) -> PartitionLog {
        PartitionLog::open(
            dir,
            TopicPartition::new("t", 0),
            config,
            Checkpoints::default(),
            0,
        )
        .unwrap()
    }

    /// Reopens with `log_start` as the log start checkpoint says.
    pub fn open_with_start(dir: &Path, log_start: i64) -> PartitionLog {
        PartitionLog::open(
            dir,
            TopicPartition::new("t", 0),
            config(),
            Checkpoints {
                log_start_offset: log_start,
                ..Checkpoints::default()
            },
            0,
        )
        .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::super::batch::testutil::simple;
    use super::testutil::*;

    #[test]
    fn flush_advances_recovery_point() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config());
        log.append(simple(3, 0), 0, 0).unwrap();
        assert_eq!(log.recovery_point(), 0);
        log.flush().unwrap();
        assert_eq!(log.recovery_point(), 3);
    }

    #[test]
    fn maybe_flush_honours_flush_ms() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config();
        c.flush_ms = Some(1_000);
        let log = open(dir.path(), c);
        log.append(simple(2, 0), 0, 0).unwrap();
        log.maybe_flush(500).unwrap();
        assert_eq!(log.recovery_point(), 0);
        log.maybe_flush(1_000).unwrap();
        assert_eq!(log.recovery_point(), 2);
    }

    #[test]
    fn close_writes_a_producer_snapshot_only_when_the_log_moved() {
        let dir = tempfile::tempdir().unwrap();
        let snapshots = || super::producer_state::snapshot_offsets(dir.path()).unwrap();
        let log = open(dir.path(), config());
        log.close().unwrap();
        assert_eq!(
            snapshots(),
            Vec::<i64>::new(),
            "an empty log has nothing to keep"
        );
        log.append(simple(2, 0), 0, 0).unwrap();
        log.close().unwrap();
        assert_eq!(snapshots(), [2]);
        let written = std::fs::metadata(dir.path().join("00000000000000000002.snapshot"))
            .unwrap()
            .modified()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        log.close().unwrap();
        let again = std::fs::metadata(dir.path().join("00000000000000000002.snapshot"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(written, again, "an unchanged log rewrote its snapshot");
    }
}
