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
                if l.replicas != meta.replicas {
                    l.replicas = meta.replicas.clone();
                }
                let members = l.isr.isr.len();
                if l.commit(meta.isr.clone(), meta.partition_epoch) {
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
