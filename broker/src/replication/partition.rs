//! One hosted partition: its log, whether this node leads or follows it, and
//! the progress that waiting produce requests watch.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use parking_lot::Mutex;
use tokio::sync::watch;

use super::leader::{IsrState, LeaderState};
use crate::metadata::PartitionImage;
use crate::storage::{PartitionLog, StorageError, TopicPartition};

/// What a produce request waiting for acks=all needs to see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub leading: bool,
    pub leader_epoch: i32,
    pub high_watermark: i64,
    pub maximal_isr: usize,
}

pub enum Role {
    Leader(LeaderState),
    Follower {
        leader: i32,
        leader_epoch: i32,
        high_watermark: i64,
    },
}

impl Role {
    fn high_watermark(&self) -> i64 {
        match self {
            Role::Leader(l) => l.high_watermark(),
            Role::Follower { high_watermark, .. } => *high_watermark,
        }
    }
}

pub struct Partition {
    pub tp: TopicPartition,
    pub log: Arc<PartitionLog>,
    local_id: i32,
    role: Mutex<Role>,
    progress: watch::Sender<Progress>,
}

impl Partition {
    /// A partition that starts as a follower of nobody, with the high
    /// watermark from the checkpoint (within the log's bounds).
    pub fn new(tp: TopicPartition, log: Arc<PartitionLog>, local_id: i32, hw: i64) -> Self {
        let hw = hw.clamp(log.log_start_offset(), log.log_end_offset());
        Partition {
            tp,
            log,
            local_id,
            role: Mutex::new(Role::Follower {
                leader: -1,
                leader_epoch: -1,
                high_watermark: hw,
            }),
            progress: watch::channel(Progress {
                leading: false,
                leader_epoch: -1,
                high_watermark: hw,
                maximal_isr: 0,
            })
            .0,
        }
    }

    pub fn high_watermark(&self) -> i64 {
        self.role.lock().high_watermark()
    }

    /// Brings the role in line with the image: a new leader epoch makes this
    /// node leader (recording the epoch in the log) or follower; in the same
    /// epoch, the committed ISR is taken over. Returns whether the high
    /// watermark moved, and the ISR size before and after if it changed.
    pub fn apply(
        &self,
        meta: &PartitionImage,
        now_ms: i64,
    ) -> Result<(bool, Option<(usize, usize)>), StorageError> {
        let mut role = self.role.lock();
        let before = role.high_watermark();
        let mut isr_change = None;
        match &mut *role {
            Role::Leader(l)
                if meta.leader == self.local_id && l.leader_epoch == meta.leader_epoch =>
            {
                l.set_replicas(&meta.replicas, now_ms);
                let members = l.isr.isr.len();
                if l.commit_image(meta.isr.clone(), meta.partition_epoch) {
                    isr_change = Some((members, l.isr.isr.len()));
                }
                l.maybe_advance_high_watermark(self.log.log_end_offset());
            }
            Role::Follower { leader_epoch, .. }
            | Role::Leader(LeaderState { leader_epoch, .. })
                if *leader_epoch > meta.leader_epoch => {}
            _ if meta.leader == self.local_id => {
                self.log.start_leader_epoch(meta.leader_epoch)?;
                let end = self.log.log_end_offset();
                let mut leader = LeaderState::new(
                    self.local_id,
                    meta.leader_epoch,
                    end,
                    meta.replicas.clone(),
                    IsrState {
                        isr: meta.isr.clone(),
                        partition_epoch: meta.partition_epoch,
                        pending: None,
                    },
                    before,
                    now_ms,
                );
                leader.maybe_advance_high_watermark(end);
                tracing::info!(partition = %self.tp, epoch = meta.leader_epoch, "became leader");
                *role = Role::Leader(leader);
            }
            Role::Follower {
                leader,
                leader_epoch,
                ..
            } if *leader == meta.leader && *leader_epoch == meta.leader_epoch => {}
            _ => {
                tracing::info!(partition = %self.tp, leader = meta.leader, epoch = meta.leader_epoch, "became follower");
                *role = Role::Follower {
                    leader: meta.leader,
                    leader_epoch: meta.leader_epoch,
                    high_watermark: before.min(self.log.log_end_offset()),
                };
            }
        }
        let moved = role.high_watermark() > before;
        self.publish(&role);
        Ok((moved, isr_change))
    }

    /// Runs `f` on the leader state of `epoch`; NOT_LEADER_OR_FOLLOWER when
    /// this node does not lead in that epoch. Publishes the progress after.
    pub fn with_leader<T>(
        &self,
        epoch: i32,
        f: impl FnOnce(&mut LeaderState, &PartitionLog) -> T,
    ) -> Result<T, ResponseError> {
        let mut role = self.role.lock();
        let Role::Leader(leader) = &mut *role else {
            return Err(ResponseError::NotLeaderOrFollower);
        };
        if leader.leader_epoch != epoch {
            return Err(ResponseError::NotLeaderOrFollower);
        }
        let result = f(leader, &self.log);
        self.publish(&role);
        Ok(result)
    }

    /// Runs `f` on the log and high watermark while this node follows
    /// `leader` in `leader_epoch`, holding the role so that no election can
    /// make it leader meanwhile: a fetch answered by the old leader must not
    /// append to or truncate a log that now leads (its batches would sit
    /// after the start of the new epoch, under the old epoch's stamp, and
    /// every follower would be told to truncate there again and again).
    /// None when the role has moved on.
    pub fn while_following<T>(
        &self,
        leader: i32,
        leader_epoch: i32,
        f: impl FnOnce(&PartitionLog, i64) -> T,
    ) -> Option<T> {
        let role = self.role.lock();
        match &*role {
            Role::Follower {
                leader: following,
                leader_epoch: epoch,
                high_watermark,
            } if *following == leader && *epoch == leader_epoch => {
                Some(f(&self.log, *high_watermark))
            }
            _ => None,
        }
    }

    /// A follower's high watermark after a fetch: the leader's, within the
    /// local log. Returns whether it moved.
    pub fn update_follower_high_watermark(&self, leader_hw: i64) -> bool {
        let mut role = self.role.lock();
        let Role::Follower { high_watermark, .. } = &mut *role else {
            return false;
        };
        let hw = leader_hw.min(self.log.log_end_offset());
        let moved = hw != *high_watermark;
        *high_watermark = hw;
        self.publish(&role);
        moved
    }

    /// Lowers a follower's high watermark to its log end after a truncation.
    pub fn clamp_high_watermark(&self) {
        let mut role = self.role.lock();
        if let Role::Follower { high_watermark, .. } = &mut *role {
            *high_watermark = (*high_watermark).min(self.log.log_end_offset());
        }
        self.publish(&role);
    }

    /// The leader state, for metrics and maintenance: (under-replicated, max follower lag).
    pub fn leader_summary(&self) -> Option<(bool, i64)> {
        match &*self.role.lock() {
            Role::Leader(l) => Some((
                l.under_replicated(),
                l.max_follower_lag(self.log.log_end_offset()),
            )),
            Role::Follower { .. } => None,
        }
    }

    /// The leader epoch, while this node leads.
    pub fn leader_epoch(&self) -> Option<i32> {
        match &*self.role.lock() {
            Role::Leader(l) => Some(l.leader_epoch),
            Role::Follower { .. } => None,
        }
    }

    /// The low watermark while this node leads in `epoch` (see
    /// [`LeaderState::low_watermark`]).
    pub fn low_watermark(&self, epoch: i32) -> Result<i64, ResponseError> {
        self.with_leader(epoch, |l, log| l.low_watermark(log.log_start_offset()))
    }

    /// The leader epoch it follows in, while this node is a follower.
    pub fn follower_epoch(&self) -> Option<i32> {
        match &*self.role.lock() {
            Role::Follower { leader_epoch, .. } => Some(*leader_epoch),
            Role::Leader(_) => None,
        }
    }

    fn publish(&self, role: &Role) {
        let progress = match role {
            Role::Leader(l) => Progress {
                leading: true,
                leader_epoch: l.leader_epoch,
                high_watermark: l.high_watermark(),
                maximal_isr: l.isr.maximal().len(),
            },
            Role::Follower {
                leader_epoch,
                high_watermark,
                ..
            } => Progress {
                leading: false,
                leader_epoch: *leader_epoch,
                high_watermark: *high_watermark,
                maximal_isr: 0,
            },
        };
        self.progress.send_if_modified(|p| {
            let changed = *p != progress;
            *p = progress;
            changed
        });
    }

    /// Waits until the high watermark reaches `offset` while this node leads
    /// in `epoch` (Kafka's delayed produce): then succeeds if at least
    /// `min_isr` replicas are in the maximal ISR, else
    /// NOT_ENOUGH_REPLICAS_AFTER_APPEND. Losing leadership or the partition
    /// ends the wait with NOT_LEADER_OR_FOLLOWER.
    pub async fn wait_replicated(
        &self,
        offset: i64,
        epoch: i32,
        min_isr: usize,
    ) -> Result<(), ResponseError> {
        let mut progress = self.progress.subscribe();
        loop {
            {
                let p = progress.borrow_and_update();
                if !p.leading || p.leader_epoch != epoch {
                    return Err(ResponseError::NotLeaderOrFollower);
                }
                if p.high_watermark >= offset {
                    return if p.maximal_isr >= min_isr {
                        Ok(())
                    } else {
                        Err(ResponseError::NotEnoughReplicasAfterAppend)
                    };
                }
            }
            if progress.changed().await.is_err() {
                return Err(ResponseError::NotLeaderOrFollower);
            }
        }
    }

    /// Ends every wait: the partition is no longer hosted here.
    pub fn close(&self) {
        self.progress.send_replace(Progress {
            leading: false,
            leader_epoch: -1,
            high_watermark: -1,
            maximal_isr: 0,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::config::BrokerConfig;
    use crate::storage::batch::testutil::simple;
    use crate::storage::{Checkpoints, LogConfig};

    fn meta(leader: i32, leader_epoch: i32) -> PartitionImage {
        PartitionImage {
            partition: 0,
            leader,
            leader_epoch,
            partition_epoch: leader_epoch,
            replicas: vec![1, 2],
            isr: vec![1, 2],
            removing_replicas: vec![],
            adding_replicas: vec![],
            leader_recovery_state: 0,
        }
    }

    /// A batch as leader 2 wrote it in `epoch`, at `base`.
    fn from_leader(base: i64, epoch: i32) -> Bytes {
        let raw = simple(2, 0);
        let mut batch = crate::storage::batch::PatchableBatch::new(&raw).unwrap();
        batch.set_base_offset(base);
        batch.set_leader_epoch(epoch);
        Bytes::from(batch.to_vec())
    }

    #[test]
    fn an_old_leaders_answer_cannot_touch_a_log_that_now_leads() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig::from_broker(&BrokerConfig::default());
        let tp = TopicPartition::new("t", 0);
        let log = PartitionLog::open(dir.path(), tp.clone(), config, Checkpoints::default(), 0);
        let log = Arc::new(log.unwrap());
        let partition = Partition::new(tp, log.clone(), 1, 0);
        partition.apply(&meta(2, 3), 0).unwrap();
        let appended = partition.while_following(2, 3, |log, hw| {
            assert_eq!(hw, 0);
            log.append_as_follower(from_leader(0, 3))
        });
        assert!(appended.unwrap().is_ok());
        assert_eq!(log.log_end_offset(), 2);

        // Elected in epoch 4 while a fetch to broker 2 was in flight.
        partition.apply(&meta(1, 4), 0).unwrap();
        assert_eq!(log.end_offset_for_epoch(3), (3, 2));
        for (leader, epoch) in [(2, 3), (2, 4), (1, 4)] {
            let ran = partition.while_following(leader, epoch, |log, _| {
                log.append_as_follower(from_leader(2, 3))
            });
            assert!(ran.is_none(), "follower work ran as {leader}/{epoch}");
        }
        assert_eq!(log.log_end_offset(), 2);

        // Following broker 2 again in epoch 5: only that epoch's answers apply.
        partition.apply(&meta(2, 5), 0).unwrap();
        assert!(partition.while_following(2, 4, |_, _| ()).is_none());
        assert!(partition.while_following(2, 5, |_, _| ()).is_some());
    }
}
