//! SyncGroup, Heartbeat and LeaveGroup.

use std::collections::HashMap;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::classic_group::ClassicGroup;
use super::coordinator::GroupCoordinator;
use super::error::GroupError;
use super::rebalance::session;
use super::state::GroupState;
use super::types::{LeavingMember, SyncGroupParams, SyncResult};

impl GroupCoordinator {
    /// Followers wait for the leader's assignment; the leader's SyncGroup persists the
    /// group and answers everyone.
    pub async fn sync_group(&self, params: SyncGroupParams) -> Result<SyncResult, GroupError> {
        let wait = {
            let mut inner = self.inner.lock();
            if params.group_id.is_empty() {
                return Err(GroupError::InvalidGroupId);
            }
            inner.check_serves(self.partition_of(&params.group_id))?;
            let group = inner
                .groups
                .get_mut(&params.group_id)
                .ok_or(GroupError::UnknownMemberId)?;
            validate_member(
                group,
                &params.member_id,
                params.group_instance_id.as_deref(),
                params.generation_id,
            )?;
            let type_mismatch =
                params.protocol_type.is_some() && params.protocol_type != group.protocol_type;
            let name_mismatch =
                params.protocol_name.is_some() && params.protocol_name != group.protocol;
            if type_mismatch || name_mismatch {
                return Err(GroupError::InconsistentGroupProtocol);
            }
            match group.state {
                GroupState::Empty | GroupState::Dead => return Err(GroupError::UnknownMemberId),
                GroupState::PreparingRebalance => return Err(GroupError::RebalanceInProgress),
                GroupState::Stable => {
                    group.pending_sync.remove(&params.member_id);
                    return Ok(sync_result(group, &params.member_id));
                }
                GroupState::CompletingRebalance => {}
            }
            let (reply, wait) = oneshot::channel();
            if let Some(member) = group.members.get_mut(&params.member_id) {
                member.sync_reply = Some(reply);
            }
            group.pending_sync.remove(&params.member_id);
            if group.is_leader(&params.member_id) {
                self.apply_assignment(group, params.assignments);
            }
            wait
        };
        wait.await.unwrap_or(Err(GroupError::RebalanceInProgress))
    }

    /// Persists the leader's assignment, then distributes it; members it leaves out
    /// get an empty assignment, as in Kafka.
    fn apply_assignment(&self, group: &mut ClassicGroup, assignments: Vec<(String, bytes::Bytes)>) {
        let mut assignment: HashMap<String, bytes::Bytes> = assignments.into_iter().collect();
        assignment.retain(|id, _| group.members.contains_key(id));
        if let Err(e) = self.store_group(group, Some(&assignment)) {
            for member in group.members.values_mut() {
                member.assignment = bytes::Bytes::new();
                member.reply_sync(Err(e.clone()));
            }
            self.maybe_prepare_rebalance(group, "could not persist the assignment");
            return;
        }
        let ids: Vec<String> = group.members.keys().cloned().collect();
        for id in &ids {
            let value = assignment.remove(id).unwrap_or_default();
            if let Some(member) = group.members.get_mut(id) {
                member.assignment = value;
            }
        }
        group.transition(GroupState::Stable, self.now_ms());
        for id in &ids {
            let result = sync_result(group, id);
            if let Some(member) = group.members.get_mut(id) {
                member.reply_sync(Ok(result));
            }
        }
        tracing::info!(group = %group.id, generation = group.generation, "group stable");
    }

    /// Keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin.
    pub fn heartbeat(
        &self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> Result<(), GroupError> {
        let mut inner = self.inner.lock();
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        inner.check_serves(self.partition_of(group_id))?;
        let group = inner
            .groups
            .get_mut(group_id)
            .ok_or(GroupError::UnknownMemberId)?;
        validate_member(group, member_id, group_instance_id, generation_id)?;
        let state = group.state;
        if state == GroupState::Empty {
            return Err(GroupError::UnknownMemberId);
        }
        if let Some(member) = group.members.get_mut(member_id) {
            member.session_deadline = Instant::now() + session(member.session_timeout_ms);
        }
        match state {
            GroupState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            _ => Ok(()),
        }
    }

    /// Removes members; the outer error is for the whole request, the inner ones per
    /// member, in request order.
    pub fn leave_group(
        &self,
        group_id: &str,
        leaving: &[LeavingMember],
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        let mut inner = self.inner.lock();
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        inner.check_serves(self.partition_of(group_id))?;
        let Some(group) = inner.groups.get_mut(group_id) else {
            return Ok(leaving
                .iter()
                .map(|_| Err(GroupError::UnknownMemberId))
                .collect());
        };
        if group.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        Ok(leaving.iter().map(|m| self.leave_one(group, m)).collect())
    }

    fn leave_one(
        &self,
        group: &mut ClassicGroup,
        leaving: &LeavingMember,
    ) -> Result<(), GroupError> {
        let member_id = match leaving.group_instance_id.as_deref() {
            Some(instance) => {
                let current = group
                    .static_member_id(instance)
                    .ok_or(GroupError::UnknownMemberId)?;
                if !leaving.member_id.is_empty() && leaving.member_id != current {
                    return Err(GroupError::FencedInstanceId);
                }
                current.to_string()
            }
            None => {
                if group.pending_members.remove(&leaving.member_id).is_some() {
                    self.try_complete_join(group);
                    return Ok(());
                }
                if !group.members.contains_key(&leaving.member_id) {
                    return Err(GroupError::UnknownMemberId);
                }
                leaving.member_id.clone()
            }
        };
        tracing::info!(group = %group.id, member = %member_id, "member leaves");
        self.remove_member_and_update(group, &member_id, "member left");
        Ok(())
    }
}

/// The checks SyncGroup and Heartbeat share, in Kafka's order.
fn validate_member(
    group: &ClassicGroup,
    member_id: &str,
    instance_id: Option<&str>,
    generation_id: i32,
) -> Result<(), GroupError> {
    if group.state == GroupState::Dead {
        return Err(GroupError::CoordinatorNotAvailable);
    }
    if group.is_static_member_fenced(instance_id, member_id) {
        return Err(GroupError::FencedInstanceId);
    }
    if !group.members.contains_key(member_id) {
        return Err(GroupError::UnknownMemberId);
    }
    if generation_id != group.generation {
        return Err(GroupError::IllegalGeneration);
    }
    Ok(())
}

fn sync_result(group: &ClassicGroup, member_id: &str) -> SyncResult {
    SyncResult {
        protocol_type: group.protocol_type.clone(),
        protocol_name: group.protocol.clone(),
        assignment: group
            .members
            .get(member_id)
            .map(|m| m.assignment.clone())
            .unwrap_or_default(),
    }
}
