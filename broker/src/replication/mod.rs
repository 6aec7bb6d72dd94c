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
pub mod throttle;

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
use alter_partition::{Proposal, ResponsePartition};

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
    /// Bounds the AlterPartition requests in flight.
    alter_in_flight: Arc<tokio::sync::Semaphore>,
    /// Proposals waiting for a request.
    alter_queue: Mutex<Vec<(Arc<Partition>, Proposal)>>,
    fetchers: fetcher::FetcherManager,
    pub throttles: throttle::Throttles,
    pub metrics: ReplicationMetrics,
}

/// AlterPartition requests one broker keeps in flight. After a restart with thousands of
/// partitions every follower joins the ISR at once; unbounded, those requests queued the
/// controller's answers to broker heartbeats past their timeout, so it fenced live brokers,
/// moved thousands of leaderships and turned every pending change stale. Kafka sends one
/// request at a time per broker (with many partitions in it).
const ALTER_PARTITION_IN_FLIGHT: usize = 8;
/// Partitions in one AlterPartition request: one controller commit of bounded size.
const ALTER_PARTITION_BATCH: usize = 1_000;

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
            alter_in_flight: Arc::new(tokio::sync::Semaphore::new(ALTER_PARTITION_IN_FLIGHT)),
            alter_queue: Mutex::new(Vec::new()),
            throttles: throttle::Throttles::default(),
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
                let Ok(Some(log)) = self.logs.get_for_topic(&tp, topic.id) else {
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
                        throttled: throttle::is_throttled(
                            meta,
                            &topic.configs,
                            throttle::Side::Follower,
                            local,
                            local,
                        ),
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
        self.throttles.configure(image, local);
        self.metrics.show_throttle_rates(&self.throttles);
        self.fetchers.assign(self, image, follow);
    }

    /// Records a follower's fetch (its position and log start offset) and
    /// moves the high watermark and ISR on.
    /// `eligible`: whether the follower may join the ISR (registered,
    /// unfenced, not shutting down).
    pub fn record_follower_fetch(
        self: &Arc<Self>,
        partition: &Arc<Partition>,
        image: &MetadataImage,
        leader_epoch: i32,
        replica: (i32, i64),
        fetch_offset: i64,
        log_start_offset: i64,
    ) -> Result<(), ResponseError> {
        let (id, broker_epoch) = replica;
        let eligible = image.brokers.get(&id).is_some_and(|b| b.is_active());
        let (known, moved, expansion) = partition.with_leader(leader_epoch, |l, log| {
            let end = log.log_end_offset();
            let now = now_ms();
            let known = l.record_fetch(id, fetch_offset, broker_epoch, end, now);
            l.record_log_start(id, log_start_offset);
            let moved = l.maybe_advance_high_watermark(end);
            let expansion = l.expansion(id, eligible, now).map(|isr| {
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

    /// Queues a proposal for the controller. While the requests in flight are out, new
    /// proposals wait in the queue and go out together in the next request: after a
    /// restart at 2,000 partitions, one partition per request took 15 s to bring a broker
    /// back into every ISR. The partition's proposal stays pending while it waits, so no
    /// duplicates queue up.
    fn send_proposal(self: &Arc<Self>, partition: Arc<Partition>, proposal: Proposal) {
        self.alter_queue.lock().push((partition, proposal));
        let manager = self.clone();
        tokio::spawn(async move {
            let _permit = manager.alter_in_flight.clone().acquire_owned().await;
            loop {
                let batch = manager.next_alter_batch();
                if batch.is_empty() {
                    return;
                }
                let proposals: Vec<&Proposal> = batch.iter().map(|(_, p)| p).collect();
                let broker_epoch = proposals[0].broker_epoch;
                let request =
                    alter_partition::request(manager.local_id(), broker_epoch, &proposals);
                let answer = manager.alter.send(request).await;
                for (partition, proposal) in &batch {
                    let committed = alter_partition::outcome(&answer, proposal);
                    manager.take_alter_outcome(partition, proposal, committed);
                }
            }
        });
    }

    /// Up to `ALTER_PARTITION_BATCH` queued proposals made in one broker epoch (a request
    /// carries one); the others stay queued for the next round.
    fn next_alter_batch(&self) -> Vec<(Arc<Partition>, Proposal)> {
        let mut queue = self.alter_queue.lock();
        let Some(epoch) = queue.first().map(|(_, p)| p.broker_epoch) else {
            return Vec::new();
        };
        let mut batch = Vec::new();
        let mut rest = Vec::new();
        for item in queue.drain(..) {
            if item.1.broker_epoch == epoch && batch.len() < ALTER_PARTITION_BATCH {
                batch.push(item);
            } else {
                rest.push(item);
            }
        }
        *queue = rest;
        batch
    }

    /// Takes the controller's answer for one proposal: the committed ISR, or a refusal
    /// that lets a later check try again.
    fn take_alter_outcome(
        &self,
        partition: &Partition,
        proposal: &Proposal,
        committed: Result<ResponsePartition, String>,
    ) {
        let outcome = partition.with_leader(proposal.leader_epoch, |l, log| match &committed {
            Ok(p) if p.leader_epoch == l.leader_epoch => {
                let before = l.isr.isr.len();
                let isr: Vec<i32> = p.isr.iter().map(|b| b.0).collect();
                // The image may have brought the same change first.
                let changed = l.commit_answer(isr, p.partition_epoch);
                let moved = l.maybe_advance_high_watermark(log.log_end_offset());
                (changed.then_some((before, l.isr.isr.len())), moved)
            }
            _ => {
                l.abort_proposal(proposal.partition_epoch, now_ms());
                (None, false)
            }
        });
        match (&committed, outcome) {
            (Err(error), _) => tracing::warn!(
                partition = %partition.tp,
                %error,
                proposed = ?proposal.isr,
                leader_epoch = proposal.leader_epoch,
                partition_epoch = proposal.partition_epoch,
                "ISR change refused"
            ),
            (Ok(p), Ok((isr_change, moved))) => {
                tracing::info!(partition = %partition.tp, isr = ?p.isr, "ISR changed");
                if let Some((before, after)) = isr_change {
                    self.metrics.count_isr_change(before, after);
                }
                if moved {
                    self.notify_progress();
                }
            }
            _ => {}
        }
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
