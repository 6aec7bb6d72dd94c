//! Partition replication, after Kafka's ReplicaManager: the leader tracks
//! its followers, keeps the ISR and the high watermark, and proposes ISR
//! changes to the controller; followers fetch from their leader.
//!
//! Roles follow the metadata image: a partition whose leader is this node
//! is led here in the image's leader epoch, one that lists this node as a
//! replica under another leader is fetched from that leader.

pub mod alter_partition;
mod checkpoint;
pub mod fetcher;
mod leader;
mod metrics;
mod partition;

pub use alter_partition::AlterPartitionSender;
pub use leader::{FollowerState, IsrState, LeaderState};
pub use metrics::ReplicationMetrics;
pub use partition::{Partition, Progress};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use crate::config::BrokerConfig;
use crate::metadata::{MetadataImage, PartitionImage};
use crate::server::now_ms;
use crate::storage::{LogManager, PartitionLog, TopicPartition};
use alter_partition::Proposal;

/// What the replica manager needs of the broker config.
#[derive(Debug, Clone)]
pub struct ReplicationConfig {
    pub local_id: i32,
    pub log_dirs: Vec<PathBuf>,
    pub lag_time_max_ms: u64,
    pub checkpoint_interval: Duration,
    pub fetcher: fetcher::FetcherConfig,
}

impl ReplicationConfig {
    pub fn from_broker(config: &BrokerConfig) -> Self {
        ReplicationConfig {
            local_id: config.node_id,
            log_dirs: config.log_dirs.clone(),
            lag_time_max_ms: config.replica_lag_time_max_ms,
            checkpoint_interval: Duration::from_millis(
                config.replica_high_watermark_checkpoint_interval_ms,
            ),
            fetcher: fetcher::FetcherConfig::from_broker(config),
        }
    }
}

pub struct ReplicaManager {
    config: ReplicationConfig,
    logs: Arc<LogManager>,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    /// Checkpointed high watermarks of partitions not taken over yet.
    checkpointed: Mutex<HashMap<TopicPartition, i64>>,
    /// One checkpoint writer at a time: they share the temp file.
    checkpoint_writer: Mutex<()>,
    /// Bumped when a high watermark moves or data arrives: wakes long polls.
    progress: watch::Sender<u64>,
    alter: Arc<dyn AlterPartitionSender>,
    fetchers: fetcher::FetcherManager,
    pub metrics: ReplicationMetrics,
}

impl ReplicaManager {
    pub fn new(
        config: ReplicationConfig,
        logs: Arc<LogManager>,
        progress: watch::Sender<u64>,
        alter: Arc<dyn AlterPartitionSender>,
        registry: &prometheus::Registry,
    ) -> Arc<Self> {
        let checkpointed = checkpoint::load(&config.log_dirs);
        Arc::new(ReplicaManager {
            fetchers: fetcher::FetcherManager::new(config.fetcher.clone()),
            config,
            logs,
            partitions: RwLock::new(HashMap::new()),
            checkpointed: Mutex::new(checkpointed),
            checkpoint_writer: Mutex::new(()),
            progress,
            alter,
            metrics: ReplicationMetrics::new(registry),
        })
    }

    pub fn local_id(&self) -> i32 {
        self.config.local_id
    }

    pub fn partition(&self, tp: &TopicPartition) -> Option<Arc<Partition>> {
        self.partitions.read().get(tp).cloned()
    }

    /// Wakes long-polling fetches: a high watermark moved or data arrived.
    pub fn notify_progress(&self) {
        self.progress.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The partition of `log`, in the role `meta` gives it.
    pub fn hosted(
        &self,
        tp: &TopicPartition,
        log: &Arc<PartitionLog>,
        meta: &PartitionImage,
    ) -> Result<Arc<Partition>, ResponseError> {
        let partition = {
            let existing = self.partitions.read().get(tp).cloned();
            match existing {
                Some(p) if Arc::ptr_eq(&p.log, log) => p,
                _ => self.insert(tp, log),
            }
        };
        match partition.apply(meta, now_ms()) {
            Ok((moved, isr_change)) => {
                if let Some((before, after)) = isr_change {
                    self.metrics.count_isr_change(before, after);
                }
                if moved {
                    self.notify_progress();
                }
                Ok(partition)
            }
            Err(error) => {
                tracing::error!(partition = %tp, %error, "cannot take the partition's new role");
                Err(ResponseError::KafkaStorageError)
            }
        }
    }

    fn insert(&self, tp: &TopicPartition, log: &Arc<PartitionLog>) -> Arc<Partition> {
        let mut partitions = self.partitions.write();
        if let Some(p) = partitions.get(tp).filter(|p| Arc::ptr_eq(&p.log, log)) {
            return p.clone();
        }
        let hw = self.checkpointed.lock().remove(tp).unwrap_or(0);
        let partition = Arc::new(Partition::new(
            tp.clone(),
            log.clone(),
            self.config.local_id,
            hw,
        ));
        if let Some(old) = partitions.insert(tp.clone(), partition.clone()) {
            old.close();
        }
        partition
    }

    /// Takes every role the image gives this node, drops partitions it no
    /// longer hosts, and points the fetchers at the current leaders. Logs
    /// are created by log sync first.
    pub fn apply_image(self: &Arc<Self>, image: &MetadataImage) {
        let local = self.config.local_id;
        let mut hosted = HashMap::new();
        let mut follow = Vec::new();
        for topic in image.topics.values() {
            for meta in topic
                .partitions
                .iter()
                .filter(|p| p.replicas.contains(&local))
            {
                let tp = TopicPartition::new(topic.name.clone(), meta.partition);
                let Some(log) = self.logs.get(&tp) else {
                    continue;
                };
                if self.hosted(&tp, &log, meta).is_err() {
                    continue;
                }
                if meta.leader != local && meta.leader >= 0 {
                    follow.push(fetcher::FetchTarget {
                        tp: tp.clone(),
                        topic_id: topic.id,
                        leader: meta.leader,
                        leader_epoch: meta.leader_epoch,
                    });
                }
                hosted.insert(tp, ());
            }
        }
        let gone: Vec<Arc<Partition>> = {
            let mut partitions = self.partitions.write();
            let doomed: Vec<TopicPartition> = partitions
                .keys()
                .filter(|tp| !hosted.contains_key(*tp))
                .cloned()
                .collect();
            doomed
                .iter()
                .filter_map(|tp| partitions.remove(tp))
                .collect()
        };
        for partition in gone {
            partition.close();
        }
        self.fetchers.assign(self, image, follow);
    }

    /// Records a follower's fetch and moves the high watermark and ISR on.
    /// `eligible`: whether the follower may join the ISR (registered,
    /// unfenced, not shutting down).
    pub fn record_follower_fetch(
        self: &Arc<Self>,
        partition: &Arc<Partition>,
        image: &MetadataImage,
        leader_epoch: i32,
        replica: (i32, i64),
        fetch_offset: i64,
    ) -> Result<(), ResponseError> {
        let (id, broker_epoch) = replica;
        let eligible = image.brokers.get(&id).is_some_and(|b| b.is_active());
        let (known, moved, expansion) = partition.with_leader(leader_epoch, |l, log| {
            let end = log.log_end_offset();
            let known = l.record_fetch(id, fetch_offset, broker_epoch, end, now_ms());
            let moved = l.maybe_advance_high_watermark(end);
            let expansion = l.expansion(id, eligible).map(|isr| {
                l.propose(isr.clone());
                self.proposal(image, partition, l, isr)
            });
            (known, moved, expansion)
        })?;
        if moved {
            self.notify_progress();
        }
        if let Some(proposal) = expansion.flatten() {
            self.send_proposal(partition.clone(), proposal);
        }
        if known {
            Ok(())
        } else {
            Err(ResponseError::NotLeaderOrFollower)
        }
    }

    /// The leader appended: with fewer replicas in sync, that alone may
    /// move the high watermark.
    pub fn leader_appended(&self, partition: &Partition, leader_epoch: i32) {
        let moved = partition
            .with_leader(leader_epoch, |l, log| {
                l.maybe_advance_high_watermark(log.log_end_offset())
            })
            .unwrap_or(false);
        if moved {
            self.notify_progress();
        }
    }

    /// An AlterPartition proposal for `isr`, with each member's broker epoch.
    fn proposal(
        &self,
        image: &MetadataImage,
        partition: &Partition,
        leader: &LeaderState,
        isr: Vec<i32>,
    ) -> Option<Proposal> {
        let topic_id = image.topic(&partition.tp.topic)?.id;
        let local = self.config.local_id;
        let broker_epoch = image.brokers.get(&local).map_or(-1, |b| b.epoch);
        let isr = isr
            .into_iter()
            .map(|id| {
                let epoch = if id == local {
                    broker_epoch
                } else {
                    leader.follower(id).map_or(-1, |f| f.broker_epoch)
                };
                (id, epoch)
            })
            .collect();
        Some(Proposal {
            broker_epoch,
            topic_id,
            partition: partition.tp.partition,
            leader_epoch: leader.leader_epoch,
            partition_epoch: leader.isr.partition_epoch,
            isr,
        })
    }

    /// Sends a proposal and takes the controller's answer: the committed
    /// ISR, or a refusal that lets a later check try again.
    fn send_proposal(self: &Arc<Self>, partition: Arc<Partition>, proposal: Proposal) {
        let manager = self.clone();
        tokio::spawn(async move {
            let request = alter_partition::request(manager.local_id(), &proposal);
            let answer = manager.alter.send(request).await;
            let committed = match answer {
                Ok(response) if response.error_code == 0 => response
                    .topics
                    .into_iter()
                    .flat_map(|t| t.partitions)
                    .find(|p| p.partition_index == proposal.partition)
                    .ok_or_else(|| "the answer does not name the partition".to_string())
                    .and_then(|p| {
                        if p.error_code == 0 {
                            Ok(p)
                        } else {
                            Err(format!("error code {}", p.error_code))
                        }
                    }),
                Ok(response) => Err(format!("error code {}", response.error_code)),
                Err(error) => Err(error),
            };
            let outcome = partition.with_leader(proposal.leader_epoch, |l, log| match &committed {
                Ok(p) if p.leader_epoch == l.leader_epoch => {
                    let before = l.isr.isr.len();
                    let isr: Vec<i32> = p.isr.iter().map(|b| b.0).collect();
                    // The image may have brought the same change first.
                    let changed = l.commit(isr, p.partition_epoch);
                    let moved = l.maybe_advance_high_watermark(log.log_end_offset());
                    (changed.then_some((before, l.isr.isr.len())), moved)
                }
                _ => {
                    l.abort_proposal();
                    (None, false)
                }
            });
            match (&committed, outcome) {
                (Err(error), _) => {
                    tracing::warn!(partition = %partition.tp, %error, "ISR change refused")
                }
                (Ok(p), Ok((isr_change, moved))) => {
                    tracing::info!(partition = %partition.tp, isr = ?p.isr, "ISR changed");
                    if let Some((before, after)) = isr_change {
                        manager.metrics.count_isr_change(before, after);
                    }
                    if moved {
                        manager.notify_progress();
                    }
                }
                _ => {}
            }
        });
    }

    /// Proposes ISR shrinks for followers that fell behind, updates the
    /// gauges; the periodic check of Kafka's `isr-expiration` task.
    pub fn check_isr(self: &Arc<Self>, image: &MetadataImage) {
        let partitions: Vec<Arc<Partition>> = self.partitions.read().values().cloned().collect();
        let lag = self.config.lag_time_max_ms;
        let (mut under_replicated, mut max_lag) = (0, 0);
        for partition in partitions {
            let Some(epoch) = partition.leader_epoch() else {
                continue;
            };
            let shrink = partition.with_leader(epoch, |l, log| {
                let isr = l.shrink(log.log_end_offset(), lag, now_ms())?;
                l.propose(isr.clone());
                self.proposal(image, &partition, l, isr)
            });
            if let Ok(Some(proposal)) = shrink {
                tracing::info!(partition = %partition.tp, isr = ?proposal.isr, "shrinking ISR: followers fell behind");
                self.send_proposal(partition.clone(), proposal);
            }
            if let Some((under, lag)) = partition.leader_summary() {
                under_replicated += i64::from(under);
                max_lag = max_lag.max(lag);
            }
        }
        self.metrics.under_replicated.set(under_replicated);
        self.metrics
            .max_lag
            .set(max_lag.max(self.fetchers.max_lag()));
    }

    /// Writes every hosted partition's high watermark to its log dir.
    pub fn write_checkpoint(&self) -> std::io::Result<()> {
        let _writer = self.checkpoint_writer.lock();
        let mut entries: Vec<(PathBuf, TopicPartition, i64)> = self
            .partitions
            .read()
            .values()
            .map(|p| (p.log.dir().to_path_buf(), p.tp.clone(), p.high_watermark()))
            .collect();
        // Logs not taken over yet keep their loaded value.
        for (tp, hw) in self.checkpointed.lock().iter() {
            if let Some(log) = self.logs.get(tp) {
                entries.push((log.dir().to_path_buf(), tp.clone(), *hw));
            }
        }
        checkpoint::write(&self.config.log_dirs, &entries)
    }

    /// The background work: ISR checks every half lag time, high watermark
    /// checkpoints at their interval. Runs until `stop` flips.
    pub async fn run(
        self: Arc<Self>,
        images: Arc<crate::metadata::MetadataPublisher>,
        mut stop: watch::Receiver<bool>,
    ) {
        let isr_every = Duration::from_millis((self.config.lag_time_max_ms / 2).max(1));
        let mut isr_tick = tokio::time::interval(isr_every);
        let mut checkpoint_tick = tokio::time::interval(self.config.checkpoint_interval);
        loop {
            tokio::select! {
                _ = isr_tick.tick() => self.check_isr(&images.current()),
                _ = checkpoint_tick.tick() => {
                    let manager = self.clone();
                    let written = tokio::task::spawn_blocking(move || manager.write_checkpoint()).await;
                    if let Ok(Err(error)) = written {
                        tracing::error!(%error, "writing the high watermark checkpoint failed");
                    }
                }
                _ = stop.changed() => break,
            }
        }
        self.fetchers.stop_all();
    }
}

#[cfg(test)]
mod tests;
