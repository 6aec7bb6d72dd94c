//! Follower fetchers, after Kafka's ReplicaFetcherThread: one task per
//! leader broker fetches all the partitions this node follows from it in
//! one Fetch request, from each log's end with its last fetched epoch;
//! truncates where the leader says the logs diverged, appends the leader's
//! batches as they are, and takes the leader's high watermark.

use crate::server::listeners::inter_broker_address;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;
use tokio::time::Instant;

use super::partition::Partition;
use super::ReplicaManager;
use crate::client::{ClientOptions, NodeClients};
use crate::config::BrokerConfig;
use crate::metadata::MetadataImage;
use crate::storage::{PartitionLog, StorageError, TopicPartition};

/// ListOffsets' special timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

#[derive(Debug, Clone)]
pub struct FetcherConfig {
    pub local_id: i32,
    pub wait_max: Duration,
    pub partition_max_bytes: i32,
    pub response_max_bytes: i32,
    pub backoff: Duration,
    /// The listener other brokers are reached on; the first one when unset.
    pub listener: Option<String>,
}

impl FetcherConfig {
    pub fn from_broker(config: &BrokerConfig) -> Self {
        FetcherConfig {
            local_id: config.node_id,
            wait_max: Duration::from_millis(config.replica_fetch_wait_max_ms),
            partition_max_bytes: config.replica_fetch_max_bytes,
            response_max_bytes: config.replica_fetch_response_max_bytes,
            backoff: Duration::from_millis(config.replica_fetch_backoff_ms),
            listener: config.inter_broker_listener_name.clone(),
        }
    }
}

/// How soon a fetcher holding back throttled partitions looks at the rate again.
const THROTTLE_RECHECK: Duration = Duration::from_millis(50);

/// A partition to fetch, as the image describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchTarget {
    pub tp: TopicPartition,
    pub topic_id: uuid::Uuid,
    pub leader: i32,
    pub leader_epoch: i32,
    /// Copies under `follower.replication.throttled.rate` (see the throttle module).
    pub throttled: bool,
}

struct Fetcher {
    targets: watch::Sender<Vec<FetchTarget>>,
    task: tokio::task::JoinHandle<()>,
    /// Messages this node is behind its leader, at the last response.
    lag: Arc<AtomicI64>,
}

/// What every fetcher shares: this node's broker epoch and the connections.
struct Shared {
    config: FetcherConfig,
    broker_epoch: AtomicI64,
    clients: NodeClients,
}

pub struct FetcherManager {
    shared: Arc<Shared>,
    addresses: Arc<RwLock<HashMap<i32, (String, u16)>>>,
    fetchers: Mutex<HashMap<i32, Fetcher>>,
}

impl FetcherManager {
    pub fn new(config: FetcherConfig) -> Self {
        let addresses: Arc<RwLock<HashMap<i32, (String, u16)>>> = Arc::default();
        let book = addresses.clone();
        let clients = NodeClients::new(
            Arc::new(move |id| book.read().get(&id).cloned()),
            ClientOptions {
                client_id: format!("replica-fetcher-{}", config.local_id),
                ..ClientOptions::default()
            },
        );
        FetcherManager {
            shared: Arc::new(Shared {
                config,
                broker_epoch: AtomicI64::new(-1),
                clients,
            }),
            addresses,
            fetchers: Mutex::new(HashMap::new()),
        }
    }

    /// Points one fetcher per leader at its partitions; stops the fetchers
    /// of brokers that lead nothing we follow.
    pub fn assign(
        &self,
        manager: &Arc<ReplicaManager>,
        image: &MetadataImage,
        targets: Vec<FetchTarget>,
    ) {
        let listener = self.shared.config.listener.as_deref();
        *self.addresses.write() = image
            .brokers
            .values()
            .map(|b| (b.id, inter_broker_address(b, listener)))
            .collect();
        let local = self.shared.config.local_id;
        self.shared.broker_epoch.store(
            image.brokers.get(&local).map_or(-1, |b| b.epoch),
            Ordering::Release,
        );
        let mut by_leader: HashMap<i32, Vec<FetchTarget>> = HashMap::new();
        for target in targets {
            by_leader.entry(target.leader).or_default().push(target);
        }
        let mut fetchers = self.fetchers.lock();
        fetchers.retain(|leader, fetcher| {
            let keep = by_leader.contains_key(leader);
            if !keep {
                fetcher.task.abort();
            }
            keep
        });
        for (leader, targets) in by_leader {
            match fetchers.get(&leader) {
                Some(fetcher) => {
                    fetcher.targets.send_if_modified(|current| {
                        let changed = *current != targets;
                        *current = targets;
                        changed
                    });
                }
                None => {
                    let (tx, rx) = watch::channel(targets);
                    let lag = Arc::new(AtomicI64::new(0));
                    let task = tokio::spawn(run(
                        leader,
                        Arc::downgrade(manager),
                        self.shared.clone(),
                        rx,
                        lag.clone(),
                    ));
                    fetchers.insert(
                        leader,
                        Fetcher {
                            targets: tx,
                            task,
                            lag,
                        },
                    );
                }
            }
        }
    }

    /// The largest lag behind a leader at the fetchers' last responses.
    pub fn max_lag(&self) -> i64 {
        self.fetchers
            .lock()
            .values()
            .map(|f| f.lag.load(Ordering::Acquire))
            .max()
            .unwrap_or(0)
    }

    pub fn stop_all(&self) {
        for (_, fetcher) in self.fetchers.lock().drain() {
            fetcher.task.abort();
        }
    }
}

impl Drop for FetcherManager {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// One fetcher's loop; ends when the replica manager is gone.
async fn run(
    leader: i32,
    manager: Weak<ReplicaManager>,
    shared: Arc<Shared>,
    mut targets: watch::Receiver<Vec<FetchTarget>>,
    lag: Arc<AtomicI64>,
) {
    let config = &shared.config;
    let mut delayed: HashMap<TopicPartition, Instant> = HashMap::new();
    loop {
        let now = Instant::now();
        delayed.retain(|_, until| *until > now);
        let current = targets.borrow_and_update().clone();
        let Some(manager) = manager.upgrade() else {
            return;
        };
        let over_rate = manager.throttles.follower.exceeded();
        let held_back = |t: &FetchTarget| over_rate && t.throttled;
        let any_held_back = current.iter().any(held_back);
        let ready: Vec<(FetchTarget, Arc<PartitionLog>)> = current
            .into_iter()
            .filter(|t| !delayed.contains_key(&t.tp) && !held_back(t))
            .filter_map(|t| manager.partition(&t.tp).map(|p| (t, p.log.clone())))
            .collect();
        if ready.is_empty() && any_held_back {
            // Only throttled partitions are left, and the rate is used up.
            drop(manager);
            back_off(&mut targets, THROTTLE_RECHECK).await;
            continue;
        }
        if ready.is_empty() {
            let next = delayed.values().min().copied();
            drop(manager);
            tokio::select! {
                changed = targets.changed() => if changed.is_err() { return },
                _ = sleep_until_or_forever(next) => {}
            }
            continue;
        }
        let request = fetch_request(&shared, &ready);
        let timeout = config.wait_max + Duration::from_secs(30);
        match shared.clients.send(leader, &request, timeout).await {
            Ok(response) if response.error_code == 0 => {
                // Answers are matched by topic id and partition: every topic has a partition 0.
                // Indexed, since one fetch can carry thousands of partitions.
                let answers: HashMap<(uuid::Uuid, i32), PartitionData> = response
                    .responses
                    .into_iter()
                    .flat_map(|t| {
                        let id = t.topic_id;
                        t.partitions
                            .into_iter()
                            .map(move |p| ((id, p.partition_index), p))
                    })
                    .collect();
                let mut max_lag = 0;
                for (target, log) in &ready {
                    let Some(answer) = answers.get(&(target.topic_id, target.tp.partition)) else {
                        continue;
                    };
                    if target.throttled {
                        let bytes = answer.records.as_ref().map_or(0, |r| r.len());
                        manager.throttles.follower.record(bytes);
                        manager
                            .metrics
                            .follower_throttled_bytes
                            .inc_by(bytes as u64);
                    }
                    match handle_answer(&manager, &shared, target, log, answer).await {
                        Ok(behind) => max_lag = max_lag.max(behind),
                        Err(reason) => {
                            tracing::debug!(partition = %target.tp, leader, %reason, "fetch failed; backing off");
                            delayed.insert(target.tp.clone(), Instant::now() + config.backoff);
                        }
                    }
                }
                lag.store(max_lag, Ordering::Release);
            }
            Ok(response) => {
                tracing::warn!(leader, error = response.error_code, "fetch refused");
                back_off(&mut targets, config.backoff).await;
            }
            Err(error) => {
                tracing::debug!(leader, %error, "fetch failed");
                back_off(&mut targets, config.backoff).await;
            }
        }
    }
}

async fn sleep_until_or_forever(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Waits `backoff`, or less if the partitions to fetch change.
async fn back_off(targets: &mut watch::Receiver<Vec<FetchTarget>>, backoff: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(backoff) => {}
        _ = targets.changed() => {}
    }
}

fn fetch_request(shared: &Shared, ready: &[(FetchTarget, Arc<PartitionLog>)]) -> FetchRequest {
    let config = &shared.config;
    let mut topics: Vec<FetchTopic> = Vec::new();
    for (target, log) in ready {
        let partition = FetchPartition::default()
            .with_partition(target.tp.partition)
            .with_current_leader_epoch(target.leader_epoch)
            .with_fetch_offset(log.log_end_offset())
            .with_last_fetched_epoch(log.latest_epoch().unwrap_or(-1))
            .with_log_start_offset(log.log_start_offset())
            .with_partition_max_bytes(config.partition_max_bytes);
        match topics.iter_mut().find(|t| t.topic_id == target.topic_id) {
            Some(topic) => topic.partitions.push(partition),
            None => topics.push(
                FetchTopic::default()
                    .with_topic_id(target.topic_id)
                    .with_partitions(vec![partition]),
            ),
        }
    }
    // Fetch v15+: the replica is named in replica_state, with its broker epoch.
    FetchRequest::default()
        .with_replica_state(
            ReplicaState::default()
                .with_replica_id(BrokerId(config.local_id))
                .with_replica_epoch(shared.broker_epoch.load(Ordering::Acquire)),
        )
        .with_max_wait_ms(config.wait_max.as_millis() as i32)
        .with_min_bytes(1)
        .with_max_bytes(config.response_max_bytes)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(topics)
}

/// Applies one partition's answer; returns how far behind the leader's
/// high watermark this replica still is.
async fn handle_answer(
    manager: &Arc<ReplicaManager>,
    shared: &Shared,
    target: &FetchTarget,
    log: &Arc<PartitionLog>,
    answer: &PartitionData,
) -> Result<i64, String> {
    let partition = manager
        .partition(&target.tp)
        .filter(|p| Arc::ptr_eq(&p.log, log))
        .ok_or("the partition is no longer hosted here")?;
    match ResponseError::try_from_code(answer.error_code) {
        None => {}
        Some(ResponseError::OffsetOutOfRange) => {
            reset_out_of_range(shared, target, partition.clone()).await?;
            partition.clamp_high_watermark();
            return Ok(0);
        }
        Some(error) => return Err(format!("{error:?}")),
    }
    let following = partition.clone();
    let (leader, epoch) = (target.leader, target.leader_epoch);
    let answer2 = answer.clone();
    let applied = tokio::task::spawn_blocking(move || {
        following.while_following(leader, epoch, |log, hw| apply(log, &answer2, hw))
    })
    .await
    .map_err(|e| e.to_string())?;
    match applied {
        // Elected, or following another leader or epoch now: the next round
        // fetches with the new targets.
        None => return Ok(0),
        Some(result) => result.map_err(|e| e.to_string())?,
    }
    if let Some(records) = &answer.records {
        manager
            .metrics
            .replication_bytes_in
            .inc_by(records.len() as u64);
    }
    partition.clamp_high_watermark();
    partition.update_follower_high_watermark(answer.high_watermark);
    manager.notify_progress();
    Ok((answer.high_watermark - log.log_end_offset()).max(0))
}

/// Truncates on divergence, or appends the records and follows the leader's log start.
fn apply(log: &PartitionLog, answer: &PartitionData, hw: i64) -> Result<(), StorageError> {
    let diverging = &answer.diverging_epoch;
    if diverging.epoch >= 0 || diverging.end_offset >= 0 {
        let offset = truncation_offset(log, diverging.epoch, diverging.end_offset, hw);
        tracing::info!(partition = %log.topic_partition(), offset, leader_epoch = diverging.epoch, "log diverged from the leader's; truncating");
        return log.truncate_to(offset);
    }
    if let Some(records) = answer.records.as_ref().filter(|r| !r.is_empty()) {
        log.append_as_follower(records.clone())?;
    }
    let leader_start = answer.log_start_offset.min(log.log_end_offset());
    if leader_start > log.log_start_offset() {
        log.delete_records_before(leader_start)?;
    }
    Ok(())
}

/// Where a follower truncates when the leader reports that its epoch
/// `leader_epoch` ends at `leader_end` (Kafka's truncation rules): at the
/// high watermark if the leader knows no epoch at all; otherwise at the
/// end of that epoch on both sides, or, when the follower has no such
/// epoch, at the end of its largest earlier one (the next fetch, with the
/// follower's new last epoch, narrows it down further).
pub fn truncation_offset(log: &PartitionLog, leader_epoch: i32, leader_end: i64, hw: i64) -> i64 {
    let log_end = log.log_end_offset();
    if leader_end < 0 {
        return hw.min(log_end);
    }
    if leader_epoch < 0 {
        return leader_end.min(log_end);
    }
    let (local_epoch, local_end) = log.end_offset_for_epoch(leader_epoch);
    if local_end < 0 {
        leader_end.min(log_end)
    } else if local_epoch != leader_epoch {
        local_end.min(log_end)
    } else {
        leader_end.min(local_end).min(log_end)
    }
}

/// OFFSET_OUT_OF_RANGE: the leader's log ends below ours (truncate to its
/// end) or starts above ours (start over at its log start).
async fn reset_out_of_range(
    shared: &Shared,
    target: &FetchTarget,
    partition: Arc<Partition>,
) -> Result<(), String> {
    let fetch_offset = partition.log.log_end_offset();
    let leader_end = list_offset(shared, target, LATEST).await?;
    let leader_start = if leader_end < fetch_offset {
        None
    } else {
        Some(list_offset(shared, target, EARLIEST).await?)
    };
    let (leader, epoch) = (target.leader, target.leader_epoch);
    tokio::task::spawn_blocking(move || {
        partition.while_following(leader, epoch, |log, _| match leader_start {
            None => log.truncate_to(leader_end),
            Some(start) if start > fetch_offset => log.truncate_fully_and_start_at(start),
            Some(_) => Ok(()),
        })
    })
    .await
    .map_err(|e| e.to_string())?
    .unwrap_or(Ok(()))
    .map_err(|e| e.to_string())
}

/// The leader's earliest or latest offset, as a replica sees it.
async fn list_offset(shared: &Shared, target: &FetchTarget, timestamp: i64) -> Result<i64, String> {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(shared.config.local_id))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_string(target.tp.topic.clone())))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(target.tp.partition)
                .with_current_leader_epoch(target.leader_epoch)
                .with_timestamp(timestamp)])]);
    let response = shared
        .clients
        .send(
            target.leader,
            &request,
            shared.config.wait_max + Duration::from_secs(30),
        )
        .await
        .map_err(|e| e.to_string())?;
    let answer = response
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == target.tp.partition)
        .ok_or("ListOffsets answer without the partition")?;
    if answer.error_code != 0 {
        return Err(format!("ListOffsets error code {}", answer.error_code));
    }
    Ok(answer.offset)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::storage::batch::testutil::simple;
    use crate::storage::batch::PatchableBatch;
    use crate::storage::LogConfig;

    fn log(dir: &std::path::Path) -> PartitionLog {
        PartitionLog::open(
            dir,
            TopicPartition::new("t", 0),
            LogConfig::from_broker(&BrokerConfig::default()),
            crate::storage::Checkpoints::default(),
            0,
        )
        .unwrap()
    }

    /// `n` records at `base` as a leader of `epoch` wrote them.
    fn replicated(base: i64, epoch: i32, n: usize) -> Bytes {
        let raw = simple(n, base);
        let mut batch = PatchableBatch::new(&raw).unwrap();
        batch.set_base_offset(base);
        batch.set_leader_epoch(epoch);
        Bytes::from(batch.to_vec())
    }

    /// A follower log with epochs 1: [0, 5), 3: [5, 10), 4: [10, 12).
    fn follower(dir: &std::path::Path) -> PartitionLog {
        let log = log(dir);
        log.append_as_follower(replicated(0, 1, 5)).unwrap();
        log.append_as_follower(replicated(5, 3, 5)).unwrap();
        log.append_as_follower(replicated(10, 4, 2)).unwrap();
        log
    }

    #[test]
    fn truncation_follows_kafkas_rules_on_real_logs() {
        let dir = tempfile::tempdir().unwrap();
        let log = follower(dir.path());
        // The leader knows nothing: back to the high watermark.
        assert_eq!(truncation_offset(&log, -1, -1, 7), 7);
        // The leader has no epoch at or below ours: its end offset.
        assert_eq!(truncation_offset(&log, -1, 3, 7), 3);
        // Same epoch, the leader's ends earlier.
        assert_eq!(truncation_offset(&log, 3, 8, 0), 8);
        // Same epoch, ours ends earlier: ours.
        assert_eq!(truncation_offset(&log, 1, 9, 0), 5);
        // We never had epoch 2: the end of our largest earlier epoch.
        assert_eq!(truncation_offset(&log, 2, 7, 0), 5);
        // Never past our own log end.
        assert_eq!(truncation_offset(&log, 4, 50, 0), 12);
    }

    #[test]
    fn a_divergent_tail_is_truncated_then_refetched() {
        let dir = tempfile::tempdir().unwrap();
        let log = follower(dir.path());
        // The leader of epoch 5 says epoch 3 ended at 8: our 8..12 goes.
        let answer = PartitionData::default()
            .with_diverging_epoch(
                kafka_protocol::messages::fetch_response::EpochEndOffset::default()
                    .with_epoch(3)
                    .with_end_offset(8),
            )
            .with_records(Some(Bytes::new()));
        apply(&log, &answer, 0).unwrap();
        assert_eq!(log.log_end_offset(), 5, "the whole batch holding 8 goes");
        assert_eq!(log.latest_epoch(), Some(1));
        // The next answer carries the leader's batches from there.
        let mut records = replicated(5, 3, 3).to_vec();
        records.extend_from_slice(&replicated(8, 5, 4));
        let answer = PartitionData::default()
            .with_high_watermark(10)
            .with_log_start_offset(2)
            .with_records(Some(Bytes::from(records)));
        apply(&log, &answer, 0).unwrap();
        assert_eq!(log.log_end_offset(), 12);
        assert_eq!(
            log.log_start_offset(),
            2,
            "the leader's log start is followed"
        );
        assert_eq!(log.end_offset_for_epoch(3), (3, 8));
        assert_eq!(log.end_offset_for_epoch(5), (5, 12));
    }
}
