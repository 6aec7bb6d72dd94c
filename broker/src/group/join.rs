//! JoinGroup (Kafka's handleJoinGroup and friends).

use std::collections::hash_map::Entry;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::classic_group::{ClassicGroup, PendingMember};
use super::coordinator::GroupCoordinator;
use super::error::GroupError;
use super::member::Member;
use super::rebalance::session;
use super::state::GroupState;
use super::types::{JoinGroupParams, JoinResult};

/// How long a new member may wait in JoinGroup; it cannot heartbeat yet, and a
/// client that gave up would otherwise stay in the group forever.
const NEW_MEMBER_JOIN_TIMEOUT: Duration = Duration::from_secs(300);

type JoinWait = oneshot::Receiver<Result<JoinResult, GroupError>>;

enum Joined {
    Now(JoinResult),
    Wait(JoinWait),
}

impl GroupCoordinator {
    /// Joins (or rejoins) a member; completes when the join phase ends, or at once
    /// when no rebalance is needed.
    pub async fn join_group(&self, params: JoinGroupParams) -> Result<JoinResult, GroupError> {
        let wait = {
            let mut inner = self.inner.lock();
            if params.group_id.is_empty() {
                return Err(GroupError::InvalidGroupId);
            }
            inner.check_serves(self.partition_of(&params.group_id))?;
            let timeout = params.session_timeout_ms;
            if timeout < self.config.min_session_timeout_ms
                || timeout > self.config.max_session_timeout_ms
            {
                return Err(GroupError::InvalidSessionTimeout);
            }
            let new_member = params.member_id.is_empty();
            let now_ms = self.now_ms();
            let group = match inner.groups.entry(params.group_id.clone()) {
                Entry::Occupied(entry) => entry.into_mut(),
                Entry::Vacant(entry) if new_member => {
                    entry.insert(ClassicGroup::new(params.group_id.clone(), now_ms))
                }
                Entry::Vacant(_) => return Err(GroupError::UnknownMemberId),
            };
            if !self.accepts_joining_member(group, &params.member_id) {
                return Err(GroupError::GroupMaxSizeReached);
            }
            let joined = if new_member {
                self.join_new_member(group, params)?
            } else {
                self.join_known_member(group, params)?
            };
            match joined {
                Joined::Now(result) => return Ok(result),
                Joined::Wait(wait) => wait,
            }
        };
        // A dropped reply means a newer JoinGroup of the same member replaced this one.
        wait.await.unwrap_or(Err(GroupError::RebalanceInProgress))
    }

    /// `group.max.size`: counts members that are (or will be) in the next generation.
    fn accepts_joining_member(&self, group: &ClassicGroup, member_id: &str) -> bool {
        let max = self.config.max_size.max(0) as usize;
        match group.state {
            GroupState::Empty | GroupState::Dead => true,
            GroupState::PreparingRebalance => {
                group
                    .members
                    .get(member_id)
                    .is_some_and(Member::awaiting_join)
                    || group.members.values().filter(|m| m.awaiting_join()).count() < max
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                group.members.contains_key(member_id) || group.members.len() < max
            }
        }
    }

    fn join_new_member(
        &self,
        group: &mut ClassicGroup,
        params: JoinGroupParams,
    ) -> Result<Joined, GroupError> {
        if group.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        if !group.supports_protocols(&params.protocol_type, &params.protocols) {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        let member_id = format!("{}-{}", params.client.client_id, uuid::Uuid::new_v4());
        if let Some(instance) = params.group_instance_id.clone() {
            return match group.static_member_id(&instance).map(str::to_string) {
                Some(old_id) => {
                    self.replace_static_member(group, &instance, &old_id, member_id, params)
                }
                None => Ok(Joined::Wait(
                    self.add_member_and_rebalance(group, member_id, params),
                )),
            };
        }
        if params.require_known_member_id {
            // The client rejoins with this id; until then the join phase waits for it.
            let timer_id = self.timer_id();
            let deadline = Instant::now() + session(params.session_timeout_ms);
            group
                .pending_members
                .insert(member_id.clone(), PendingMember { deadline, timer_id });
            self.schedule_session(&group.id, &member_id, timer_id, deadline);
            return Err(GroupError::MemberIdRequired(member_id));
        }
        Ok(Joined::Wait(
            self.add_member_and_rebalance(group, member_id, params),
        ))
    }

    fn join_known_member(
        &self,
        group: &mut ClassicGroup,
        params: JoinGroupParams,
    ) -> Result<Joined, GroupError> {
        let member_id = params.member_id.clone();
        if group.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        if group.pending_members.contains_key(&member_id) {
            return Ok(Joined::Wait(
                self.add_member_and_rebalance(group, member_id, params),
            ));
        }
        match params.group_instance_id.as_deref() {
            Some(instance) => match group.static_member_id(instance) {
                None => return Err(GroupError::UnknownMemberId),
                Some(current) if current != member_id => return Err(GroupError::FencedInstanceId),
                Some(_) => {}
            },
            None if !group.members.contains_key(&member_id) => {
                return Err(GroupError::UnknownMemberId)
            }
            None => {}
        }
        if !group.supports_protocols(&params.protocol_type, &params.protocols) {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        let Some(member) = group.members.get(&member_id) else {
            return Err(GroupError::UnknownMemberId);
        };
        let unchanged = member.matches(&params.protocols);
        match group.state {
            GroupState::PreparingRebalance => Ok(Joined::Wait(
                self.update_member_and_rebalance(group, params),
            )),
            // A lost JoinGroup response: answer again with the same generation.
            GroupState::CompletingRebalance if unchanged => {
                Ok(Joined::Now(group.join_result(&member_id)))
            }
            GroupState::CompletingRebalance => Ok(Joined::Wait(
                self.update_member_and_rebalance(group, params),
            )),
            // A follower with unchanged metadata needs no rebalance; a leader rejoining
            // means it wants a new assignment.
            GroupState::Stable if unchanged && !group.is_leader(&member_id) => {
                Ok(Joined::Now(group.join_result(&member_id)))
            }
            GroupState::Stable => Ok(Joined::Wait(
                self.update_member_and_rebalance(group, params),
            )),
            GroupState::Empty | GroupState::Dead => Err(GroupError::UnknownMemberId),
        }
    }

    fn add_member_and_rebalance(
        &self,
        group: &mut ClassicGroup,
        member_id: String,
        params: JoinGroupParams,
    ) -> JoinWait {
        let (reply, wait) = oneshot::channel();
        let timer_id = self.timer_id();
        let deadline = Instant::now() + NEW_MEMBER_JOIN_TIMEOUT;
        let member = Member {
            id: member_id.clone(),
            instance_id: params.group_instance_id,
            client: params.client,
            rebalance_timeout_ms: params.rebalance_timeout_ms,
            session_timeout_ms: params.session_timeout_ms,
            protocols: params.protocols,
            assignment: bytes::Bytes::new(),
            join_reply: Some(reply),
            sync_reply: None,
            session_deadline: deadline,
            timer_id,
            is_new: true,
        };
        if group.state == GroupState::PreparingRebalance && group.generation == 0 {
            group.new_member_added = true;
        }
        group.add_member(member, &params.protocol_type);
        self.schedule_session(&group.id, &member_id, timer_id, deadline);
        tracing::info!(group = %group.id, member = %member_id, "member joins");
        self.maybe_prepare_rebalance(group, "new member joined");
        self.try_complete_join(group);
        wait
    }

    fn update_member_and_rebalance(
        &self,
        group: &mut ClassicGroup,
        params: JoinGroupParams,
    ) -> JoinWait {
        let (reply, wait) = oneshot::channel();
        if let Some(member) = group.members.get_mut(&params.member_id) {
            member.protocols = params.protocols;
            member.rebalance_timeout_ms = params.rebalance_timeout_ms;
            member.session_timeout_ms = params.session_timeout_ms;
            member.join_reply = Some(reply);
        }
        self.maybe_prepare_rebalance(group, "member rejoined");
        self.try_complete_join(group);
        wait
    }

    /// A static member came back with a new member id: the old id is fenced. A Stable
    /// group whose protocol would not change keeps its assignment (no rebalance).
    fn replace_static_member(
        &self,
        group: &mut ClassicGroup,
        instance: &str,
        old_id: &str,
        new_id: String,
        params: JoinGroupParams,
    ) -> Result<Joined, GroupError> {
        let leader_before = group.leader.clone().unwrap_or_default();
        let timer_id = self.timer_id();
        let Some(member) = group.replace_static_member(instance, old_id, &new_id) else {
            return Err(GroupError::UnknownMemberId);
        };
        member.reply_join(Err(GroupError::FencedInstanceId));
        member.reply_sync(Err(GroupError::FencedInstanceId));
        let old_protocols = std::mem::replace(&mut member.protocols, params.protocols);
        let old_timeouts = (member.rebalance_timeout_ms, member.session_timeout_ms);
        member.rebalance_timeout_ms = params.rebalance_timeout_ms;
        member.session_timeout_ms = params.session_timeout_ms;
        member.timer_id = timer_id;
        member.session_deadline = Instant::now() + session(params.session_timeout_ms);
        let deadline = member.session_deadline;
        self.schedule_session(&group.id, &new_id, timer_id, deadline);
        tracing::info!(group = %group.id, instance, old = old_id, new = %new_id, "static member replaced");

        match group.state {
            GroupState::Stable if group.select_protocol() == group.protocol => {
                if let Err(e) = self.store_group(group, None) {
                    // Undo, so that the old member id stays valid.
                    group.replace_static_member(instance, &new_id, old_id);
                    if let Some(member) = group.members.get_mut(old_id) {
                        member.protocols = old_protocols;
                        (member.rebalance_timeout_ms, member.session_timeout_ms) = old_timeouts;
                    }
                    return Err(e);
                }
                let is_leader = group.is_leader(&new_id);
                let mut result = group.join_result(&new_id);
                if params.supports_skip_assignment {
                    // KIP-814: the leader learns it leads but keeps the current assignment.
                    result.skip_assignment = is_leader;
                } else {
                    // Old clients must not run an assignment a Stable group would not
                    // distribute: they see the old leader id, which is not theirs.
                    result.leader = leader_before;
                }
                Ok(Joined::Now(result))
            }
            _ => {
                let (reply, wait) = oneshot::channel();
                if let Some(member) = group.members.get_mut(&new_id) {
                    member.join_reply = Some(reply);
                }
                match group.state {
                    // The leader may already hold the old id in its assignment.
                    GroupState::CompletingRebalance => {
                        self.prepare_rebalance(group, "static member replaced during sync")
                    }
                    _ => self.maybe_prepare_rebalance(group, "static member changed protocols"),
                }
                self.try_complete_join(group);
                Ok(Joined::Wait(wait))
            }
        }
    }
}
