//! All partition logs under `log.dirs`: startup recovery, creation and
//! deletion, checkpoints, the clean-shutdown marker and background work.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};
use uuid::Uuid;

use super::log::{now_ms, Checkpoints};
use super::{
    checkpoint, cleaner, partition_metadata, LogConfig, PartitionLog, StorageError, TopicPartition,
};
use crate::config::BrokerConfig;

const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";
const LOG_START_FILE: &str = "log-start-offset-checkpoint";
const CLEANER_FILE: &str = "cleaner-offset-checkpoint";
const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
const DELETE_SUFFIX: &str = "-delete";
const METADATA_TOPIC: &str = "__cluster_metadata";
/// Upper bound on how late a `flush.ms` flush may run.
const FLUSH_CHECK_MS: u64 = 1_000;

/// How the log manager runs its own work: recovery threads at startup, then the
/// intervals of the background work.
#[derive(Debug, Clone)]
pub struct BackgroundConfig {
    /// `num.recovery.threads.per.data.dir`: threads that open the logs at startup.
    pub recovery_threads_per_data_dir: usize,
    pub retention_check_interval_ms: u64,
    pub checkpoint_interval_ms: u64,
    pub cleaner_enable: bool,
    pub cleaner_backoff_ms: u64,
}

impl BackgroundConfig {
    pub fn from_broker(config: &BrokerConfig) -> Self {
        BackgroundConfig {
            recovery_threads_per_data_dir: config.num_recovery_threads_per_data_dir,
            retention_check_interval_ms: config.log_retention_check_interval_ms,
            checkpoint_interval_ms: config.log_flush_offset_checkpoint_interval_ms,
            cleaner_enable: config.log_cleaner_enable,
            cleaner_backoff_ms: config.log_cleaner_backoff_ms,
        }
    }
}

struct Entry {
    dir: usize,
    log: Arc<PartitionLog>,
    /// The topic the log belongs to (`partition.metadata`); None for a log from before
    /// ids were recorded, until [`LogManager::stamp_topic_id`] records one.
    topic_id: Option<Uuid>,
}

impl Entry {
    /// Whether the log is known to belong to a topic other than `topic_id`.
    fn of_other_topic(&self, topic_id: Uuid) -> bool {
        self.topic_id.is_some_and(|id| id != topic_id)
    }
}

/// A hosted log, with the topic id it belongs to and the log dir holding it.
pub struct HostedLog {
    pub tp: TopicPartition,
    pub log: Arc<PartitionLog>,
    pub topic_id: Option<Uuid>,
    pub log_dir: PathBuf,
}

pub struct LogManager {
    dirs: Vec<PathBuf>,
    background: BackgroundConfig,
    logs: RwLock<HashMap<TopicPartition, Entry>>,
    /// Serializes creation so two callers never open the same directory twice.
    create: Mutex<()>,
    stopping: Mutex<bool>,
    wake: Condvar,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// A checkpoint file's entries; an unreadable file means "recover everything".
fn read_checkpoint(dir: &Path, name: &str) -> BTreeMap<TopicPartition, i64> {
    checkpoint::read(&dir.join(name)).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "ignoring unreadable checkpoint");
        BTreeMap::new()
    })
}

/// A partition directory found at startup, with what the checkpoints say about it.
struct FoundLog {
    dir: usize,
    path: PathBuf,
    tp: TopicPartition,
    checkpoints: Checkpoints,
}

/// Finds the partition logs of log dir `index`, purging directories left by a deletion.
fn scan_dir(
    index: usize,
    dir: &Path,
    clean: bool,
    found: &mut Vec<FoundLog>,
) -> Result<(), StorageError> {
    let recovery = read_checkpoint(dir, RECOVERY_POINT_FILE);
    let starts = read_checkpoint(dir, LOG_START_FILE);
    let cleaned = read_checkpoint(dir, CLEANER_FILE);
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !entry.file_type()?.is_dir() {
            continue;
        }
        if name.ends_with(DELETE_SUFFIX) {
            fs::remove_dir_all(entry.path())?;
            continue;
        }
        let Some(tp) = TopicPartition::from_dir_name(&name) else {
            tracing::warn!(dir = %entry.path().display(), "skipping directory that is not a partition log");
            continue;
        };
        if tp.topic == METADATA_TOPIC {
            // The KRaft metadata log belongs to the Raft layer, as in Kafka.
            continue;
        }
        let checkpoints = Checkpoints {
            recovery_point: if clean {
                i64::MAX
            } else {
                recovery.get(&tp).copied().unwrap_or(0)
            },
            log_start_offset: starts.get(&tp).copied().unwrap_or(0),
            cleaner_offset: cleaned.get(&tp).copied().unwrap_or(0),
        };
        found.push(FoundLog {
            dir: index,
            path: entry.path(),
            tp,
            checkpoints,
        });
    }
    Ok(())
}

/// Opens (recovering where needed) the found logs on `threads` threads, as Kafka's
/// `num.recovery.threads.per.data.dir` does: opening 10,000 logs one after another was
/// most of a broker's restart. The first error stops the other threads.
fn open_found(
    found: &[FoundLog],
    defaults: &LogConfig,
    threads: usize,
) -> Result<HashMap<TopicPartition, Entry>, StorageError> {
    let now = now_ms();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let open_some = || -> Result<Vec<(TopicPartition, Entry)>, StorageError> {
        let mut opened = Vec::new();
        while !failed.load(Ordering::Relaxed) {
            let Some(f) = found.get(next.fetch_add(1, Ordering::Relaxed)) else {
                break;
            };
            let log =
                PartitionLog::open(&f.path, f.tp.clone(), defaults.clone(), f.checkpoints, now)
                    .inspect_err(|_| failed.store(true, Ordering::Relaxed))?;
            let entry = Entry {
                dir: f.dir,
                log: Arc::new(log),
                topic_id: partition_metadata::read(&f.path)
                    .inspect_err(|_| failed.store(true, Ordering::Relaxed))?,
            };
            opened.push((f.tp.clone(), entry));
        }
        Ok(opened)
    };
    let workers = threads.clamp(1, found.len().max(1));
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers).map(|_| scope.spawn(open_some)).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(StorageError::Io(std::io::Error::other(
                        "a log recovery thread panicked",
                    )))
                })
            })
            .collect()
    });
    let mut logs = HashMap::with_capacity(found.len());
    for result in results {
        logs.extend(result?);
    }
    Ok(logs)
}

impl LogManager {
    /// Opens every `<topic>-<partition>` directory under `dirs`, recovering
    /// logs that were not shut down cleanly.
    pub fn open(
        dirs: &[PathBuf],
        defaults: LogConfig,
        background: BackgroundConfig,
    ) -> Result<Arc<LogManager>, StorageError> {
        let mut found = Vec::new();
        let mut markers = Vec::new();
        for (i, dir) in dirs.iter().enumerate() {
            fs::create_dir_all(dir)?;
            let marker = dir.join(CLEAN_SHUTDOWN_FILE);
            let clean = marker.exists();
            scan_dir(i, dir, clean, &mut found)?;
            if clean {
                markers.push(marker);
            }
        }
        let mut seen = HashSet::new();
        if let Some(twice) = found.iter().find(|f| !seen.insert(&f.tp)) {
            return Err(StorageError::Io(std::io::Error::other(format!(
                "partition {} has a log in more than one log dir",
                twice.tp
            ))));
        }
        let threads = background.recovery_threads_per_data_dir * dirs.len();
        let logs = open_found(&found, &defaults, threads)?;
        for marker in markers {
            // A crash from now on must trigger recovery again.
            fs::remove_file(&marker)?;
        }
        tracing::info!(logs = logs.len(), threads, "log manager opened");
        Ok(Arc::new(LogManager {
            dirs: dirs.to_vec(),
            background,
            logs: RwLock::new(logs),
            create: Mutex::new(()),
            stopping: Mutex::new(false),
            wake: Condvar::new(),
            threads: Mutex::new(Vec::new()),
        }))
    }

    pub fn get(&self, tp: &TopicPartition) -> Option<Arc<PartitionLog>> {
        self.logs.read().get(tp).map(|e| e.log.clone())
    }

    /// The log of `tp` if it is one of topic `topic_id` (or of unknown topic, from before
    /// ids were recorded). A log of an earlier topic of the same name, not deleted yet, is
    /// [`StorageError::StaleTopicLog`]: serving it would hand out the old topic's records.
    pub fn get_for_topic(
        &self,
        tp: &TopicPartition,
        topic_id: Uuid,
    ) -> Result<Option<Arc<PartitionLog>>, StorageError> {
        match self.logs.read().get(tp) {
            Some(e) if e.of_other_topic(topic_id) => Err(StorageError::StaleTopicLog),
            Some(e) => Ok(Some(e.log.clone())),
            None => Ok(None),
        }
    }

    /// The log of `tp` in topic `topic_id`, created in the log dir holding the fewest
    /// partitions if there is none.
    pub fn get_or_create(
        &self,
        tp: &TopicPartition,
        topic_id: Uuid,
        config: LogConfig,
    ) -> Result<Arc<PartitionLog>, StorageError> {
        if let Some(log) = self.get_for_topic(tp, topic_id)? {
            return Ok(log);
        }
        let _create = self.create.lock();
        if let Some(log) = self.get_for_topic(tp, topic_id)? {
            return Ok(log);
        }
        let dir = {
            let logs = self.logs.read();
            let mut counts = vec![0usize; self.dirs.len()];
            for entry in logs.values() {
                counts[entry.dir] += 1;
            }
            (0..self.dirs.len())
                .min_by_key(|&i| counts[i])
                .ok_or_else(|| StorageError::Io(std::io::Error::other("no log.dirs configured")))?
        };
        let path = self.dirs[dir].join(tp.dir_name());
        let log = Arc::new(PartitionLog::open(
            &path,
            tp.clone(),
            config,
            Checkpoints::default(),
            now_ms(),
        )?);
        partition_metadata::write(&path, topic_id)?;
        self.logs.write().insert(
            tp.clone(),
            Entry {
                dir,
                log: log.clone(),
                topic_id: Some(topic_id),
            },
        );
        tracing::info!(%tp, dir = %path.display(), "created log");
        Ok(log)
    }

    /// [`Self::get_or_create`], deleting first a log of another topic id: for a caller
    /// that knows `topic_id` is the topic of that name now, so that the log held is of a
    /// deleted topic (log sync would delete it a moment later).
    pub fn replace_stale(
        &self,
        tp: &TopicPartition,
        topic_id: Uuid,
        config: LogConfig,
    ) -> Result<Arc<PartitionLog>, StorageError> {
        let stale = match self.logs.read().get(tp) {
            Some(e) if e.of_other_topic(topic_id) => Some(e.log.clone()),
            _ => None,
        };
        if let Some(old) = stale {
            tracing::info!(%tp, "deleting the log of an earlier topic of the same name");
            self.delete(tp, &old)?;
        }
        self.get_or_create(tp, topic_id, config)
    }

    /// Records `topic_id` as the topic of a log that had none (from before ids were
    /// recorded), so that a later topic of the same name is told apart from it.
    pub fn stamp_topic_id(
        &self,
        tp: &TopicPartition,
        log: &Arc<PartitionLog>,
        topic_id: Uuid,
    ) -> Result<(), StorageError> {
        let mut logs = self.logs.write();
        let Some(entry) = logs.get_mut(tp).filter(|e| Arc::ptr_eq(&e.log, log)) else {
            return Ok(());
        };
        if entry.topic_id.is_none() {
            partition_metadata::write(log.dir(), topic_id)?;
            entry.topic_id = Some(topic_id);
        }
        Ok(())
    }

    /// Removes `log` if it is still the log of `tp` (a newer one created meanwhile
    /// stays): renamed to `<tp>.<uuid>-delete` first so a crash midway never leaves
    /// a half-deleted log that looks live.
    pub fn delete(&self, tp: &TopicPartition, log: &Arc<PartitionLog>) -> Result<(), StorageError> {
        let entry = {
            let mut logs = self.logs.write();
            match logs.get(tp) {
                Some(e) if Arc::ptr_eq(&e.log, log) => logs.remove(tp),
                _ => None,
            }
        };
        let Some(entry) = entry else {
            return Ok(());
        };
        entry.log.mark_closed();
        let doomed = self.dirs[entry.dir].join(format!(
            "{}.{}{DELETE_SUFFIX}",
            tp.dir_name(),
            uuid::Uuid::new_v4().simple()
        ));
        fs::rename(entry.log.dir(), &doomed)?;
        fs::remove_dir_all(&doomed)?;
        tracing::info!(%tp, "deleted log");
        Ok(())
    }

    pub fn partitions(&self) -> Vec<(TopicPartition, Arc<PartitionLog>)> {
        self.logs
            .read()
            .iter()
            .map(|(tp, e)| (tp.clone(), e.log.clone()))
            .collect()
    }

    /// Every log with the topic id it belongs to.
    pub fn hosted(&self) -> Vec<HostedLog> {
        self.logs
            .read()
            .iter()
            .map(|(tp, e)| HostedLog {
                tp: tp.clone(),
                log: e.log.clone(),
                topic_id: e.topic_id,
                log_dir: self.dirs[e.dir].clone(),
            })
            .collect()
    }

    /// Writes the recovery point, log start and cleaner checkpoints of every dir.
    pub fn write_checkpoints(&self) -> Result<(), StorageError> {
        // Collected first so the fsyncs below do not hold up creation and deletion.
        let logs: Vec<(TopicPartition, usize, Arc<PartitionLog>)> = self
            .logs
            .read()
            .iter()
            .map(|(tp, e)| (tp.clone(), e.dir, e.log.clone()))
            .collect();
        for (i, dir) in self.dirs.iter().enumerate() {
            let collect = |f: fn(&PartitionLog) -> i64| -> BTreeMap<TopicPartition, i64> {
                logs.iter()
                    .filter(|(_, d, _)| *d == i)
                    .map(|(tp, _, log)| (tp.clone(), f(log)))
                    .collect()
            };
            checkpoint::write(
                &dir.join(RECOVERY_POINT_FILE),
                &collect(PartitionLog::recovery_point),
            )?;
            checkpoint::write(
                &dir.join(LOG_START_FILE),
                &collect(PartitionLog::log_start_offset),
            )?;
            checkpoint::write(
                &dir.join(CLEANER_FILE),
                &collect(PartitionLog::cleaner_offset),
            )?;
        }
        Ok(())
    }

    /// Starts the housekeeping thread (retention, flush, checkpoints) and,
    /// when enabled, the cleaner thread.
    pub fn start_background(self: &Arc<Self>) {
        let mut threads = self.threads.lock();
        let weak = Arc::downgrade(self);
        let tick = self
            .background
            .retention_check_interval_ms
            .min(self.background.checkpoint_interval_ms)
            .clamp(1, FLUSH_CHECK_MS);
        threads.extend(spawn(
            "log-housekeeping",
            weak.clone(),
            tick,
            housekeeping(),
        ));
        if self.background.cleaner_enable {
            let backoff = self.background.cleaner_backoff_ms.max(1);
            threads.extend(spawn(
                "log-cleaner",
                weak,
                backoff,
                |m: &LogManager, now| {
                    for (tp, log) in m.partitions() {
                        if let Err(e) = cleaner::clean(&log, now) {
                            tracing::error!(%tp, error = %e, "log cleaning failed");
                        }
                    }
                },
            ));
        }
    }

    /// Stops background work, flushes every log, writes producer snapshots and
    /// checkpoints, then the clean-shutdown marker.
    pub fn shutdown(&self) -> Result<(), StorageError> {
        *self.stopping.lock() = true;
        self.wake.notify_all();
        for handle in self.threads.lock().drain(..) {
            if handle.join().is_err() {
                tracing::error!("background thread panicked");
            }
        }
        let logs = self.partitions();
        // Refuse appends first so nothing lands after the final flush.
        for (_, log) in &logs {
            log.mark_closed();
        }
        for (_, log) in &logs {
            log.close()?;
        }
        self.write_checkpoints()?;
        for dir in &self.dirs {
            fs::write(dir.join(CLEAN_SHUTDOWN_FILE), b"")?;
        }
        tracing::info!("log manager shut down cleanly");
        Ok(())
    }

    /// Sleeps up to `ms`; true when shutdown was requested.
    fn wait(&self, ms: u64) -> bool {
        let mut stopping = self.stopping.lock();
        if !*stopping {
            self.wake.wait_for(&mut stopping, Duration::from_millis(ms));
        }
        *stopping
    }
}

/// The housekeeping step: each job runs when its interval has passed.
fn housekeeping() -> impl FnMut(&LogManager, i64) + Send + 'static {
    let start = now_ms();
    let (mut last_retention, mut last_checkpoint) = (start, start);
    move |m: &LogManager, now| {
        let bg = &m.background;
        if now - last_retention >= bg.retention_check_interval_ms as i64 {
            last_retention = now;
            for (tp, log) in m.partitions() {
                if let Err(e) = log.apply_retention(now) {
                    tracing::error!(%tp, error = %e, "retention failed");
                }
            }
        }
        for (tp, log) in m.partitions() {
            if let Err(e) = log.maybe_flush(now) {
                tracing::error!(%tp, error = %e, "flush failed");
            }
        }
        if now - last_checkpoint >= bg.checkpoint_interval_ms as i64 {
            last_checkpoint = now;
            if let Err(e) = m.write_checkpoints() {
                tracing::error!(error = %e, "writing checkpoints failed");
            }
        }
    }
}

/// A thread running `step` every `interval_ms` until shutdown or the manager is dropped.
fn spawn(
    name: &str,
    manager: Weak<LogManager>,
    interval_ms: u64,
    mut step: impl FnMut(&LogManager, i64) + Send + 'static,
) -> Option<JoinHandle<()>> {
    let spawned = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || loop {
            let Some(m) = manager.upgrade() else { return };
            if m.wait(interval_ms) {
                return;
            }
            step(&m, now_ms());
        });
    spawned
        .inspect_err(
            |e| tracing::error!(thread = name, error = %e, "cannot start background thread"),
        )
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::batch::testutil::simple;
    use crate::storage::log::testutil::config;

    const TOPIC_ID: Uuid = Uuid::from_u128(7);

    fn background(cleaner: bool) -> BackgroundConfig {
        BackgroundConfig {
            recovery_threads_per_data_dir: 2,
            retention_check_interval_ms: 10,
            checkpoint_interval_ms: 10,
            cleaner_enable: cleaner,
            cleaner_backoff_ms: 10,
        }
    }

    #[test]
    fn creates_in_the_emptiest_dir_and_reopens_everything() {
        let root = tempfile::tempdir().unwrap();
        let dirs = vec![root.path().join("a"), root.path().join("b")];
        let m = LogManager::open(&dirs, config(), background(false)).unwrap();
        let mut logs = Vec::new();
        for p in 0..4 {
            let log = m
                .get_or_create(&TopicPartition::new("t", p), TOPIC_ID, config())
                .unwrap();
            log.append(simple(p as usize + 1, 0), 0, 0).unwrap();
            logs.push(log);
        }
        for dir in &dirs {
            assert_eq!(fs::read_dir(dir).unwrap().count(), 2);
        }
        fs::create_dir(dirs[0].join("__cluster_metadata-0")).unwrap();
        m.shutdown().unwrap();
        assert!(dirs[0].join(CLEAN_SHUTDOWN_FILE).exists());
        assert_eq!(
            logs[0]
                .append(simple(1, 0), 0, 0)
                .unwrap_err()
                .kafka_error_code(),
            6
        );
        let recovery = checkpoint::read(&dirs[1].join(RECOVERY_POINT_FILE)).unwrap();
        assert_eq!(recovery.len(), 2);
        drop(m);

        let m = LogManager::open(&dirs, config(), background(false)).unwrap();
        assert!(!dirs[0].join(CLEAN_SHUTDOWN_FILE).exists());
        fs::create_dir(dirs[1].join("t-0")).unwrap();
        assert!(LogManager::open(&dirs, config(), background(false)).is_err());
        let mut ends: Vec<_> = m
            .partitions()
            .iter()
            .map(|(tp, l)| (tp.partition, l.log_end_offset()))
            .collect();
        ends.sort();
        assert_eq!(ends, vec![(0, 1), (1, 2), (2, 3), (3, 4)]);
        assert!(m
            .get(&TopicPartition::new("__cluster_metadata", 0))
            .is_none());
    }

    #[test]
    fn checkpoints_carry_log_start_offsets_across_restarts() {
        let root = tempfile::tempdir().unwrap();
        let dirs = vec![root.path().to_path_buf()];
        let m = LogManager::open(&dirs, config(), background(false)).unwrap();
        let tp = TopicPartition::new("t", 0);
        let log = m.get_or_create(&tp, TOPIC_ID, config()).unwrap();
        log.append(simple(10, 0), 0, 0).unwrap();
        log.delete_records_before(4).unwrap();
        log.flush().unwrap();
        m.write_checkpoints().unwrap();
        assert_eq!(
            checkpoint::read(&root.path().join(LOG_START_FILE)).unwrap()[&tp],
            4
        );
        assert_eq!(
            checkpoint::read(&root.path().join(RECOVERY_POINT_FILE)).unwrap()[&tp],
            10
        );
        drop((log, m));

        let m = LogManager::open(&dirs, config(), background(false)).unwrap();
        assert_eq!(m.get(&tp).unwrap().log_start_offset(), 4);
    }

    #[test]
    fn delete_removes_the_directory_and_leftovers_are_purged() {
        let root = tempfile::tempdir().unwrap();
        let dirs = vec![root.path().to_path_buf()];
        let m = LogManager::open(&dirs, config(), background(false)).unwrap();
        let tp = TopicPartition::new("gone", 0);
        let log = m.get_or_create(&tp, TOPIC_ID, config()).unwrap();
        m.delete(&tp, &log).unwrap();
        assert!(m.get(&tp).is_none());
        assert!(!root.path().join("gone-0").exists());
        assert_eq!(
            log.append(simple(1, 0), 0, 0)
                .unwrap_err()
                .kafka_error_code(),
            6
        );

        fs::create_dir(root.path().join("x-0.abc-delete")).unwrap();
        drop(m);
        LogManager::open(&dirs, config(), background(false)).unwrap();
        assert!(!root.path().join("x-0.abc-delete").exists());
    }

    #[test]
    fn a_log_is_served_only_for_its_own_topic_id_also_after_a_restart() {
        let root = tempfile::tempdir().unwrap();
        let dirs = vec![root.path().to_path_buf()];
        let m = LogManager::open(&dirs, config(), background(false)).unwrap();
        let tp = TopicPartition::new("t", 0);
        let old = m.get_or_create(&tp, TOPIC_ID, config()).unwrap();
        let recreated = Uuid::from_u128(8);
        assert!(matches!(
            m.get_for_topic(&tp, recreated),
            Err(StorageError::StaleTopicLog)
        ));
        assert!(m.get_or_create(&tp, recreated, config()).is_err());
        drop(old);
        m.shutdown().unwrap();
        drop(m);

        let m = LogManager::open(&dirs, config(), background(false)).unwrap();
        assert!(m.get_for_topic(&tp, TOPIC_ID).unwrap().is_some());
        assert!(matches!(
            m.get_for_topic(&tp, recreated),
            Err(StorageError::StaleTopicLog)
        ));
        let old = m.get(&tp).unwrap();
        m.delete(&tp, &old).unwrap();
        let new = m.get_or_create(&tp, recreated, config()).unwrap();
        // A delete decided on the old log leaves the new one alone.
        m.delete(&tp, &old).unwrap();
        assert!(Arc::ptr_eq(&m.get(&tp).unwrap(), &new));
        assert_eq!(m.hosted()[0].topic_id, Some(recreated));
    }

    #[test]
    fn a_log_without_a_topic_id_is_accepted_until_stamped() {
        let root = tempfile::tempdir().unwrap();
        let dirs = vec![root.path().to_path_buf()];
        let m = LogManager::open(&dirs, config(), background(false)).unwrap();
        let tp = TopicPartition::new("t", 0);
        let log = m.get_or_create(&tp, TOPIC_ID, config()).unwrap();
        fs::remove_file(log.dir().join(partition_metadata::FILE_NAME)).unwrap();
        drop(log);
        m.shutdown().unwrap();
        drop(m);

        let m = LogManager::open(&dirs, config(), background(false)).unwrap();
        let log = m.get_for_topic(&tp, Uuid::from_u128(9)).unwrap().unwrap();
        m.stamp_topic_id(&tp, &log, TOPIC_ID).unwrap();
        assert!(m.get_for_topic(&tp, Uuid::from_u128(9)).is_err());
        assert!(m.get_for_topic(&tp, TOPIC_ID).unwrap().is_some());
    }

    #[test]
    fn background_retention_and_checkpoints_run() {
        let root = tempfile::tempdir().unwrap();
        let dirs = vec![root.path().to_path_buf()];
        let m = LogManager::open(&dirs, config(), background(true)).unwrap();
        let mut c = config();
        c.retention_ms = 1;
        let log = m
            .get_or_create(&TopicPartition::new("t", 0), TOPIC_ID, c)
            .unwrap();
        for _ in 0..10 {
            log.append(simple(10, 1), 0, now_ms()).unwrap();
        }
        m.start_background();
        let deadline = now_ms() + 5_000;
        let checkpointed = || root.path().join(LOG_START_FILE).exists();
        while (log.log_start_offset() < 100 || !checkpointed()) && now_ms() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(log.log_start_offset(), 100);
        assert!(root.path().join(LOG_START_FILE).exists());
        m.shutdown().unwrap();
    }

    #[test]
    fn unclean_restart_recovers_past_the_recovery_point_and_keeps_whole_batches() {
        let root = tempfile::tempdir().unwrap();
        let dirs = vec![root.path().to_path_buf()];
        let m = LogManager::open(&dirs, config(), background(false)).unwrap();
        let tp = TopicPartition::new("t", 0);
        let log = m.get_or_create(&tp, TOPIC_ID, config()).unwrap();
        for _ in 0..30 {
            log.append(simple(5, 0), 0, 0).unwrap();
        }
        log.flush().unwrap();
        m.write_checkpoints().unwrap();
        for _ in 0..3 {
            log.append(simple(5, 0), 0, 0).unwrap();
        }
        let active = log.segments_snapshot().last().unwrap().base_offset();
        // "kill -9": no shutdown; the last batch is torn.
        drop((log, m));
        let path = root
            .path()
            .join("t-0")
            .join(crate::storage::segment::file_name(active, "log"));
        let len = fs::metadata(&path).unwrap().len();
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 1)
            .unwrap();

        let m = LogManager::open(&dirs, config(), background(false)).unwrap();
        let log = m.get(&tp).unwrap();
        assert_eq!(log.log_end_offset(), 160, "every whole batch survives");
        assert_eq!(log.append(simple(1, 0), 0, 0).unwrap().base_offset, 160);
    }

    #[test]
    fn background_cleaner_compacts_compacted_topics() {
        let root = tempfile::tempdir().unwrap();
        let dirs = vec![root.path().to_path_buf()];
        let m = LogManager::open(&dirs, config(), background(true)).unwrap();
        let mut c = config();
        c.cleanup_policy = crate::config::CleanupPolicy::parse("compact").unwrap();
        let log = m
            .get_or_create(&TopicPartition::new("c", 0), TOPIC_ID, c)
            .unwrap();
        for _ in 0..40 {
            log.append(simple(5, 0), 0, 0).unwrap();
        }
        let before = log.size_bytes();
        m.start_background();
        let deadline = now_ms() + 5_000;
        // Segments are cleaned one at a time: wait for the result asserted below.
        while log.size_bytes() >= before / 2 && now_ms() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        // Every record has key "k": the cleaned segments shrink to one record.
        assert!(
            log.size_bytes() < before / 2,
            "{} vs {before}",
            log.size_bytes()
        );
        assert_eq!(log.log_end_offset(), 200);
        m.shutdown().unwrap();
    }
}
