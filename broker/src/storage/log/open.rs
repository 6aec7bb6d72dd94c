//! Opening a log: finish interrupted cleaner swaps, load segments, recover
//! those past the recovery point, and rebuild producer state.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::{index_config, Appender, Checkpoints, PartitionLog, SNAPSHOTS_KEPT};
use crate::storage::batch::BatchHeader;
use crate::storage::cleaner;
use crate::storage::epoch_cache::LeaderEpochCache;
use crate::storage::producer_state::{self, ProducerState};
use crate::storage::segment::{self, parse_file_name, Segment};
use crate::storage::{LogConfig, StorageError, TopicPartition};

impl PartitionLog {
    /// Opens (or creates) the log in `dir`, recovering segments at or after
    /// the checkpointed recovery point.
    pub fn open(
        dir: &Path,
        tp: TopicPartition,
        config: LogConfig,
        checkpoints: Checkpoints,
        now_ms: i64,
    ) -> Result<PartitionLog, StorageError> {
        fs::create_dir_all(dir)?;
        cleaner::finish_interrupted_swaps(dir)?;
        segment::purge_deleted(dir)?;
        let mut bases: Vec<i64> = fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| parse_file_name(e.file_name().to_str()?, "log"))
            .collect();
        bases.sort_unstable();

        let idx = index_config(&config);
        let mut segments = BTreeMap::new();
        for (i, &base) in bases.iter().enumerate() {
            let next_base = bases.get(i + 1).copied().unwrap_or(i64::MAX);
            let recover = next_base > checkpoints.recovery_point;
            let (segment, truncated) = Segment::open(dir, base, idx, recover, now_ms)?;
            segments.insert(base, Arc::new(segment));
            if truncated > 0 {
                // Everything after a damaged batch is suspect: drop later segments.
                for &later in &bases[i + 1..] {
                    segment::delete_files(dir, later)?;
                    tracing::warn!(%tp, base_offset = later, "deleted segment after a truncated one");
                }
                break;
            }
        }
        if segments.is_empty() {
            let base = checkpoints.log_start_offset.max(0);
            segments.insert(base, Arc::new(Segment::create(dir, base, idx, now_ms)?));
        }
        let first_base = *segments.keys().next().unwrap_or(&0);
        let log_end = segments
            .values()
            .last()
            .map_or(first_base, |s| s.next_offset());
        let log_start = checkpoints.log_start_offset.max(first_base).min(log_end);

        let log = PartitionLog {
            tp,
            dir: dir.to_path_buf(),
            config: RwLock::new(config),
            segments: RwLock::new(segments),
            appender: Mutex::new(Appender {
                producers: ProducerState::default(),
            }),
            epochs: RwLock::new(LeaderEpochCache::default()),
            log_end: AtomicI64::new(log_end),
            log_start: AtomicI64::new(log_start),
            recovery_point: AtomicI64::new(log_end),
            cleaner_offset: AtomicI64::new(checkpoints.cleaner_offset.clamp(log_start, log_end)),
            unflushed_messages: AtomicU64::new(0),
            last_flush_ms: AtomicI64::new(now_ms),
            closed: AtomicBool::new(false),
        };
        let producers = log.rebuild_producer_state()?;
        log.appender.lock().producers = producers;
        log.load_epochs(checkpoints.recovery_point)?;
        tracing::info!(tp = %log.tp, log_start, log_end, "opened log");
        Ok(log)
    }

    /// Producer state as of the log end: the newest snapshot not past it plus
    /// a replay of the batch headers after it. Stale snapshots are removed.
    fn rebuild_producer_state(&self) -> Result<ProducerState, StorageError> {
        let end = self.log_end.load(Ordering::Acquire);
        producer_state::clean_snapshots(&self.dir, end, SNAPSHOTS_KEPT)?;
        let (from, mut state) = producer_state::load_latest_snapshot(&self.dir, end)?.unwrap_or((
            self.log_start.load(Ordering::Acquire),
            ProducerState::default(),
        ));
        self.for_each_batch_from(from, |h| {
            if h.base_offset >= from {
                state.replay(h);
            }
        })?;
        Ok(state)
    }

    /// Calls `f` with the header of every batch from the one holding `from` on.
    pub(super) fn for_each_batch_from(
        &self,
        from: i64,
        mut f: impl FnMut(&BatchHeader),
    ) -> Result<(), StorageError> {
        for segment in self.segments_snapshot() {
            if segment.next_offset() <= from {
                continue;
            }
            let start = segment.find_batch(from)?.map_or(0, |(pos, _)| pos);
            segment.for_each_header(start, |_, h| {
                f(h);
                true
            })?;
        }
        Ok(())
    }

    /// Re-reads producer state after a truncation.
    pub(super) fn reload_producer_state(
        &self,
        appender: &mut Appender,
    ) -> Result<(), StorageError> {
        appender.producers = self.rebuild_producer_state()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;

    use super::super::testutil::*;
    use super::*;
    use crate::storage::batch::testutil::{encode, rec, simple};
    use crate::storage::segment::file_name;
    use kafka_protocol::records::Compression;

    #[test]
    fn recovery_after_a_torn_tail_ends_on_the_last_valid_batch() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config());
        for i in 0..5 {
            log.append(simple(2, i), 0, 0).unwrap();
        }
        drop(log);
        let path = dir.path().join(file_name(0, "log"));
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 10)
            .unwrap();
        let mut bytes = fs::read(&path).unwrap();
        bytes.extend_from_slice(b"garbage garbage garbage");
        fs::write(&path, bytes).unwrap();

        let log = open(dir.path(), config());
        assert_eq!(log.log_end_offset(), 8);
        let data = log.read(0, 1 << 20, i64::MAX, true).unwrap();
        let batches = crate::storage::batch::validate_all(&data, usize::MAX, true).unwrap();
        assert_eq!(batches.len(), 4);
        // Appends continue right after the last valid batch.
        assert_eq!(log.append(simple(1, 9), 0, 0).unwrap().base_offset, 8);
    }

    #[test]
    fn a_damaged_segment_drops_the_segments_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config());
        while log.segment_count() < 3 {
            log.append(simple(10, 0), 0, 0).unwrap();
        }
        let second = log.segments_snapshot()[1].base_offset();
        let third = log.segments_snapshot()[2].base_offset();
        log.append(simple(10, 0), 0, 0).unwrap();
        drop(log);
        let path = dir.path().join(file_name(second, "log"));
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&path, bytes).unwrap();

        let log = open(dir.path(), config());
        assert_eq!(log.segment_count(), 2);
        // The second segment lost its last batch; the third is gone from disk.
        let end = log.log_end_offset();
        assert!(end > second && end < third);
        assert!(!dir.path().join(file_name(third, "log")).exists());
        assert!(!dir.path().join(file_name(third, "index")).exists());
        assert_eq!(log.append(simple(1, 0), 0, 0).unwrap().base_offset, end);
    }

    #[test]
    fn producer_state_survives_reopen_with_and_without_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config());
        let batch = |seq| encode(&[rec("k", "v", 0)], (5, 0, seq), Compression::None);
        log.append(batch(0), 0, 0).unwrap();
        log.close().unwrap();
        log.append(batch(1), 0, 0).unwrap();
        drop(log);

        // Snapshot at offset 1 plus replay of the batch at offset 1.
        let log = open(dir.path(), config());
        let dup = log.append(batch(1), 0, 0).unwrap();
        assert!(dup.duplicate);
        assert_eq!(dup.base_offset, 1);
        assert!(log.append(batch(5), 0, 0).is_err());
        drop(log);

        for offset in producer_state::snapshot_offsets(dir.path()).unwrap() {
            fs::remove_file(dir.path().join(file_name(offset, "snapshot"))).unwrap();
        }
        let log = open(dir.path(), config());
        assert!(log.append(batch(1), 0, 0).unwrap().duplicate);
        assert_eq!(log.append(batch(2), 0, 0).unwrap().base_offset, 2);
    }

    #[test]
    fn segments_marked_deleted_before_a_crash_stay_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config());
        while log.segment_count() < 3 {
            log.append(simple(10, 0), 0, 0).unwrap();
        }
        let first = log.segments_snapshot()[0].clone();
        first.mark_deleted().unwrap();
        drop((first, log));

        let log = open(dir.path(), config());
        assert_eq!(log.segment_count(), 2);
        assert!(log.log_start_offset() > 0);
        let leftovers = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".deleted")
            })
            .count();
        assert_eq!(leftovers, 0);
    }
}
