//! The coordinator object: owns the groups, the background tasks and the store.
//! The protocol operations live in `rebalance.rs`, `commits.rs` and `admin.rs`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;

use super::classic_group::ClassicGroup;
use super::config::GroupConfig;
use super::error::GroupError;
use super::records::{partition_for, RecordKey};
use super::state::GroupState;
use super::store::{OffsetsRecord, OffsetsStore};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    Loading,
    Active,
    ShutDown,
}

pub(super) struct Inner {
    pub status: Status,
    pub groups: HashMap<String, ClassicGroup>,
    /// The `__consumer_offsets` partitions whose groups this node serves: those it
    /// leads. `None` serves them all (one node that is every partition's leader).
    pub owned: Option<HashSet<i32>>,
    /// Partitions the metadata says this node leads whose groups are not
    /// served yet: their requests hear COORDINATOR_LOAD_IN_PROGRESS, which
    /// clients retry in place, rather than NOT_COORDINATOR.
    pub loading: HashSet<i32>,
}

impl Inner {
    /// Kafka's validateGroupStatus, minus the group id check that depends on the API.
    pub fn check_active(&self) -> Result<(), GroupError> {
        match self.status {
            Status::Active => Ok(()),
            Status::Loading => Err(GroupError::CoordinatorLoadInProgress),
            Status::ShutDown => Err(GroupError::CoordinatorNotAvailable),
        }
    }

    /// [`Self::check_active`], and that the group's partition is served here.
    pub fn check_serves(&self, partition: i32) -> Result<(), GroupError> {
        self.check_active()?;
        match &self.owned {
            Some(owned) if owned.contains(&partition) => Ok(()),
            Some(_) if self.loading.contains(&partition) => {
                Err(GroupError::CoordinatorLoadInProgress)
            }
            Some(_) => Err(GroupError::NotCoordinator),
            _ => Ok(()),
        }
    }

    pub fn serves(&self, partition: i32) -> bool {
        self.owned.as_ref().is_none_or(|o| o.contains(&partition))
    }
}

/// What a timer task asks the coordinator to look at when it fires.
#[derive(Debug, Clone)]
pub(super) enum Timer {
    /// End of a join phase (rebalance timeout or initial delay).
    Join { group: String, id: u64 },
    /// Members of `generation` that have not sent SyncGroup in time are removed.
    Sync { group: String, generation: i32 },
    /// A member's (or pending member's) session may have expired.
    Session {
        group: String,
        member: String,
        id: u64,
    },
}

/// The classic group coordinator for every partition of `__consumer_offsets`.
pub struct GroupCoordinator {
    pub(super) config: GroupConfig,
    pub(super) store: Arc<dyn OffsetsStore>,
    pub(super) inner: Mutex<Inner>,
    me: Weak<GroupCoordinator>,
    next_timer_id: AtomicU64,
    stop: watch::Sender<bool>,
    /// Wall-clock milliseconds at `started`; timestamps follow tokio's clock from
    /// there, so paused-time tests control commit and retention times too.
    epoch_ms: i64,
    started: Instant,
}

impl GroupCoordinator {
    /// A coordinator that answers COORDINATOR_LOAD_IN_PROGRESS until [`Self::load`] ran.
    pub fn new(config: GroupConfig, store: Arc<dyn OffsetsStore>) -> Arc<GroupCoordinator> {
        let epoch_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Arc::new_cyclic(|me| GroupCoordinator {
            config,
            store,
            inner: Mutex::new(Inner {
                status: Status::Loading,
                groups: HashMap::new(),
                owned: None,
                loading: HashSet::new(),
            }),
            me: me.clone(),
            next_timer_id: AtomicU64::new(1),
            stop: watch::channel(false).0,
            epoch_ms,
            started: Instant::now(),
        })
    }

    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// Stops the background tasks and answers parked requests with
    /// COORDINATOR_NOT_AVAILABLE so that clients look for the coordinator again.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
        let mut inner = self.inner.lock();
        inner.status = Status::ShutDown;
        for group in inner.groups.values_mut() {
            for member in group.members.values_mut() {
                member.reply_join(Err(GroupError::CoordinatorNotAvailable));
                member.reply_sync(Err(GroupError::CoordinatorNotAvailable));
            }
        }
        inner.groups.clear();
        tracing::info!("group coordinator shut down");
    }

    pub(super) fn now_ms(&self) -> i64 {
        self.epoch_ms + self.started.elapsed().as_millis() as i64
    }

    /// The `__consumer_offsets` partition that holds `group_id`.
    pub fn partition_of(&self, group_id: &str) -> i32 {
        partition_for(group_id, self.config.offsets_topic_num_partitions)
    }

    pub(super) fn timer_id(&self) -> u64 {
        self.next_timer_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Runs `timer` at `at` unless the coordinator shuts down first.
    pub(super) fn schedule(&self, at: Instant, timer: Timer) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(?timer, "no tokio runtime; group timer not scheduled");
            return;
        };
        let me = self.me.clone();
        let mut stop = self.stop.subscribe();
        runtime.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {
                    if let Some(coordinator) = me.upgrade() {
                        coordinator.on_timer(timer);
                    }
                }
                _ = stop.wait_for(|stopped| *stopped) => {}
            }
        });
    }

    /// Starts the task that expires old offsets every
    /// `offsets.retention.check.interval.ms`.
    pub(super) fn start_retention_task(&self) {
        let me = self.me.clone();
        let mut stop = self.stop.subscribe();
        let every = Duration::from_millis(self.config.offsets_retention_check_interval_ms.max(1));
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(Instant::now() + every, every);
            loop {
                tokio::select! {
                    _ = ticks.tick() => match me.upgrade() {
                        Some(coordinator) => coordinator.expire_offsets(),
                        None => return,
                    },
                    _ = stop.wait_for(|stopped| *stopped) => return,
                }
            }
        });
    }

    fn on_timer(&self, timer: Timer) {
        let mut inner = self.inner.lock();
        if inner.status != Status::Active {
            return;
        }
        match timer {
            Timer::Join { group, id } => {
                if let Some(group) = inner.groups.get_mut(&group) {
                    self.on_join_timer(group, id);
                }
            }
            Timer::Sync { group, generation } => {
                if let Some(group) = inner.groups.get_mut(&group) {
                    self.on_sync_timer(group, generation);
                }
            }
            Timer::Session { group, member, id } => {
                if let Some(group) = inner.groups.get_mut(&group) {
                    self.on_session_timer(group, &member, id);
                }
            }
        }
    }

    /// Persists the group's metadata; `assignments` as in [`ClassicGroup::metadata_value`].
    pub(super) fn store_group(
        &self,
        group: &ClassicGroup,
        assignments: Option<&HashMap<String, bytes::Bytes>>,
    ) -> Result<(), GroupError> {
        let key = RecordKey::GroupMetadata {
            group: group.id.clone(),
        };
        let value = group.metadata_value(assignments).encode();
        self.append(&group.id, vec![(key.encode(), Some(value))])
    }

    /// Called with the coordinator's lock held, so that a group's records reach the
    /// log in the order its in-memory state changed.
    pub(super) fn append(
        &self,
        group_id: &str,
        records: Vec<OffsetsRecord>,
    ) -> Result<(), GroupError> {
        self.store
            .append(self.partition_of(group_id), records)
            .map_err(|e| {
                tracing::warn!(group = group_id, error = %e, "writing to __consumer_offsets failed");
                GroupError::from(e)
            })
    }

    /// Tombstones for `offsets` of the group and, when `with_group`, its metadata.
    pub(super) fn write_tombstones(
        &self,
        group_id: &str,
        offsets: &[(String, i32)],
        with_group: bool,
    ) -> Result<(), GroupError> {
        let mut records: Vec<OffsetsRecord> = offsets
            .iter()
            .map(|(topic, partition)| {
                let key = RecordKey::OffsetCommit {
                    group: group_id.to_string(),
                    topic: topic.clone(),
                    partition: *partition,
                };
                (key.encode(), None)
            })
            .collect();
        if with_group {
            let key = RecordKey::GroupMetadata {
                group: group_id.to_string(),
            };
            records.push((key.encode(), None));
        }
        if records.is_empty() {
            return Ok(());
        }
        self.append(group_id, records)
    }

    /// Kafka's cleanupGroupMetadata tail: an Empty group without offsets is dead and
    /// its metadata is deleted. Returns true when the group went away.
    pub(super) fn remove_offsets_and_maybe_group(
        &self,
        inner: &mut Inner,
        group_id: &str,
        offsets: &[(String, i32)],
    ) -> Result<bool, GroupError> {
        let Some(group) = inner.groups.get_mut(group_id) else {
            return Ok(false);
        };
        let dead = group.state == GroupState::Empty
            && group.offsets.keys().all(|key| offsets.contains(key));
        self.write_tombstones(group_id, offsets, dead)?;
        for key in offsets {
            group.offsets.remove(key);
        }
        if dead {
            group.transition(GroupState::Dead, self.now_ms());
            inner.groups.remove(group_id);
            tracing::info!(group = group_id, "group deleted");
        }
        Ok(dead)
    }
}
