//! The rebalance state machine shared by JoinGroup, SyncGroup, LeaveGroup and the
//! timers: starting a join phase, completing it, and removing members.

use std::time::Duration;

use tokio::time::Instant;

use super::classic_group::{ClassicGroup, InitialDelay, JoinTimer};
use super::coordinator::{GroupCoordinator, Timer};
use super::error::GroupError;
use super::state::GroupState;

impl GroupCoordinator {
    pub(super) fn maybe_prepare_rebalance(&self, group: &mut ClassicGroup, reason: &str) {
        if group.state.can_rebalance() {
            self.prepare_rebalance(group, reason);
        }
    }

    /// Starts a join phase. An empty group waits `group.initial.rebalance.delay.ms`
    /// (extended while new members keep arriving) so that a starting application's
    /// consumers land in one generation; otherwise it waits up to the rebalance
    /// timeout for every member to rejoin.
    pub(super) fn prepare_rebalance(&self, group: &mut ClassicGroup, reason: &str) {
        if group.state == GroupState::CompletingRebalance {
            // Followers waiting for the old generation's assignment must rejoin.
            for member in group.members.values_mut() {
                member.assignment = bytes::Bytes::new();
                member.reply_sync(Err(GroupError::RebalanceInProgress));
            }
        }
        group.pending_sync.clear();
        let rebalance_timeout = group.rebalance_timeout_ms();
        let (delay_ms, initial) = if group.state == GroupState::Empty {
            let delay_ms = self.config.initial_rebalance_delay_ms;
            let remaining_ms = rebalance_timeout.saturating_sub(delay_ms);
            (
                delay_ms,
                Some(InitialDelay {
                    delay_ms,
                    remaining_ms,
                }),
            )
        } else {
            (rebalance_timeout, None)
        };
        group.transition(GroupState::PreparingRebalance, self.now_ms());
        tracing::info!(group = %group.id, generation = group.generation, reason, "preparing rebalance");
        self.start_join_timer(group, delay_ms, initial);
        // Everyone may already be in (e.g. the last member just left).
        self.try_complete_join(group);
    }

    fn start_join_timer(
        &self,
        group: &mut ClassicGroup,
        delay_ms: u64,
        initial: Option<InitialDelay>,
    ) {
        let id = self.timer_id();
        group.join_timer = Some(JoinTimer { id, initial });
        self.schedule(
            Instant::now() + Duration::from_millis(delay_ms),
            Timer::Join {
                group: group.id.clone(),
                id,
            },
        );
    }

    /// Completes the join phase early once everyone has rejoined (not during the
    /// initial delay, which always runs its course).
    pub(super) fn try_complete_join(&self, group: &mut ClassicGroup) {
        let normal_phase = group.join_timer.is_some_and(|t| t.initial.is_none());
        if group.state == GroupState::PreparingRebalance && normal_phase && group.all_joined() {
            self.complete_join(group);
        }
    }

    pub(super) fn on_join_timer(&self, group: &mut ClassicGroup, id: u64) {
        let Some(timer) = group.join_timer.filter(|t| t.id == id) else {
            return;
        };
        if group.state != GroupState::PreparingRebalance {
            return;
        }
        if let Some(initial) = timer.initial {
            if group.new_member_added && initial.remaining_ms > 0 {
                group.new_member_added = false;
                let delay_ms = initial.delay_ms.min(initial.remaining_ms);
                let next = InitialDelay {
                    delay_ms: initial.delay_ms,
                    remaining_ms: initial.remaining_ms - delay_ms,
                };
                self.start_join_timer(group, delay_ms, Some(next));
                return;
            }
        }
        self.complete_join(group);
    }

    /// Kafka's onCompleteJoin: dynamic members that did not rejoin are dropped (static
    /// ones stay until their session expires), then the next generation starts and
    /// every waiting JoinGroup is answered; the leader gets the member list.
    fn complete_join(&self, group: &mut ClassicGroup) {
        group.join_timer = None;
        let absent: Vec<String> = group
            .members
            .values()
            .filter(|m| !m.awaiting_join() && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in absent {
            tracing::info!(group = %group.id, member = %id, "member did not rejoin in time; removed");
            group.remove_member(&id);
        }
        if !group.members.is_empty() && !self.elect_joined_leader(group) {
            // Only static members that have not rejoined are left: wait for them or
            // for their sessions to expire.
            // At least a session timeout, so that a zero rebalance timeout cannot spin.
            let floor = self.config.min_session_timeout_ms.max(0) as u64;
            let timeout = group.rebalance_timeout_ms().max(floor);
            self.start_join_timer(group, timeout, None);
            return;
        }
        group.init_next_generation(self.now_ms());
        if group.state == GroupState::Empty {
            if let Err(e) = self.store_group(group, None) {
                tracing::warn!(group = %group.id, error = %e, "could not persist empty group");
            }
            return;
        }
        tracing::info!(group = %group.id, generation = group.generation, members = group.members.len(), "rebalance joined");
        let now = Instant::now();
        let ids: Vec<String> = group.members.keys().cloned().collect();
        for id in ids {
            let result = group.join_result(&id);
            let timer_id = self.timer_id();
            if let Some(member) = group.members.get_mut(&id) {
                member.reply_join(Ok(result));
                member.is_new = false;
                // A fresh timer: the deadline may now be earlier than the new-member one.
                member.timer_id = timer_id;
                member.session_deadline = now + session(member.session_timeout_ms);
                let deadline = member.session_deadline;
                self.schedule_session(&group.id, &id, timer_id, deadline);
            }
        }
        self.schedule(
            now + Duration::from_millis(group.rebalance_timeout_ms()),
            Timer::Sync {
                group: group.id.clone(),
                generation: group.generation,
            },
        );
    }

    /// Keeps the leader if it rejoined, else picks a member that did. False when no
    /// member rejoined.
    fn elect_joined_leader(&self, group: &mut ClassicGroup) -> bool {
        let leader_joined = group
            .leader
            .as_ref()
            .and_then(|l| group.members.get(l))
            .is_some_and(|m| m.awaiting_join());
        if leader_joined {
            return true;
        }
        match group.members.values().find(|m| m.awaiting_join()) {
            Some(m) => {
                group.leader = Some(m.id.clone());
                true
            }
            None => false,
        }
    }

    /// Members that never sent SyncGroup for `generation` are removed and the group
    /// rebalances without them.
    pub(super) fn on_sync_timer(&self, group: &mut ClassicGroup, generation: i32) {
        let waiting = matches!(
            group.state,
            GroupState::CompletingRebalance | GroupState::Stable
        );
        if !waiting || group.generation != generation || group.pending_sync.is_empty() {
            return;
        }
        let missing: Vec<String> = group.pending_sync.iter().cloned().collect();
        for id in &missing {
            tracing::info!(group = %group.id, member = %id, "member did not sync in time; removed");
            if let Some(mut member) = group.remove_member(id) {
                member.reply_join(Err(GroupError::UnknownMemberId));
            }
        }
        self.prepare_rebalance(group, "members did not send SyncGroup in time");
    }

    /// A member without heartbeats for its session timeout leaves the group. Members
    /// waiting in JoinGroup are kept, except new ones after the new-member timeout.
    pub(super) fn on_session_timer(&self, group: &mut ClassicGroup, member_id: &str, id: u64) {
        let now = Instant::now();
        if let Some(pending) = group.pending_members.get(member_id).copied() {
            if pending.timer_id == id && pending.deadline <= now {
                group.pending_members.remove(member_id);
                tracing::info!(group = %group.id, member = member_id, "pending member expired");
                self.try_complete_join(group);
            }
            return;
        }
        let Some(member) = group.members.get_mut(member_id) else {
            return;
        };
        if member.timer_id != id {
            return;
        }
        if member.session_deadline > now {
            let at = member.session_deadline;
            self.schedule_session(&group.id, member_id, id, at);
            return;
        }
        if member.awaiting_join() && !member.is_new {
            member.session_deadline = now + session(member.session_timeout_ms);
            let at = member.session_deadline;
            self.schedule_session(&group.id, member_id, id, at);
            return;
        }
        tracing::info!(group = %group.id, member = member_id, "session expired");
        self.remove_member_and_update(group, member_id, "session expired");
    }

    /// Expires every session past its deadline now, without waiting for its timer,
    /// which fires a little late on a busy machine: admin requests must see the
    /// group that the session timeouts define (a client may delete a group of
    /// static members exactly one session timeout after they stopped).
    pub(super) fn expire_overdue_sessions(&self, group: &mut ClassicGroup) {
        let now = Instant::now();
        let overdue: Vec<(String, u64)> = group
            .members
            .values()
            .filter(|m| m.session_deadline <= now)
            .map(|m| (m.id.clone(), m.timer_id))
            .collect();
        for (member_id, timer_id) in overdue {
            self.on_session_timer(group, &member_id, timer_id);
        }
    }

    pub(super) fn schedule_session(&self, group_id: &str, member_id: &str, id: u64, at: Instant) {
        self.schedule(
            at,
            Timer::Session {
                group: group_id.to_string(),
                member: member_id.to_string(),
                id,
            },
        );
    }

    /// Removes a member (LeaveGroup or expiry) and moves the group along.
    pub(super) fn remove_member_and_update(
        &self,
        group: &mut ClassicGroup,
        member_id: &str,
        reason: &str,
    ) {
        if let Some(mut member) = group.remove_member(member_id) {
            member.reply_join(Err(GroupError::UnknownMemberId));
            member.reply_sync(Err(GroupError::UnknownMemberId));
        }
        match group.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance(group, reason)
            }
            GroupState::PreparingRebalance => self.try_complete_join(group),
            GroupState::Empty | GroupState::Dead => {}
        }
    }
}

pub(super) fn session(ms: i32) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}
