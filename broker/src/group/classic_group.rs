//! The state of one classic group: members, generation, protocol and leader. Pure
//! bookkeeping; timers, storage and replies are the coordinator's business.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use bytes::Bytes;
use tokio::time::Instant;

use super::consumer_protocol::{union_of_topics, CONSUMER_PROTOCOL_TYPE};
use super::member::Member;
use super::records::{GroupMetadataValue, MemberMetadataValue, OffsetCommitValue};
use super::state::GroupState;
use super::types::{GroupDescription, JoinResult, JoinedMember, MemberDescription, Protocol};

/// The pending JoinGroup phase: which timer is live, and for the first rebalance of
/// an empty group how much of `group.initial.rebalance.delay.ms` may still be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinTimer {
    pub id: u64,
    pub initial: Option<InitialDelay>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitialDelay {
    pub delay_ms: u64,
    pub remaining_ms: u64,
}

/// A member id handed out with MEMBER_ID_REQUIRED, not yet used to join.
#[derive(Debug, Clone, Copy)]
pub struct PendingMember {
    pub deadline: Instant,
    pub timer_id: u64,
}

#[derive(Debug)]
pub struct ClassicGroup {
    pub id: String,
    pub state: GroupState,
    pub state_timestamp_ms: Option<i64>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// group.instance.id -> member id.
    pub static_members: HashMap<String, String>,
    pub pending_members: HashMap<String, PendingMember>,
    /// Members of this generation that have not sent SyncGroup yet.
    pub pending_sync: HashSet<String>,
    pub new_member_added: bool,
    pub join_timer: Option<JoinTimer>,
    pub offsets: BTreeMap<(String, i32), OffsetCommitValue>,
    pub subscribed_topics: Option<BTreeSet<String>>,
}

impl ClassicGroup {
    pub fn new(id: String, now_ms: i64) -> Self {
        ClassicGroup {
            id,
            state: GroupState::Empty,
            state_timestamp_ms: Some(now_ms),
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            pending_sync: HashSet::new(),
            new_member_added: false,
            join_timer: None,
            offsets: BTreeMap::new(),
            subscribed_topics: None,
        }
    }

    pub fn transition(&mut self, state: GroupState, now_ms: i64) {
        tracing::debug!(group = %self.id, from = self.state.name(), to = state.name(), "group state");
        self.state = state;
        self.state_timestamp_ms = Some(now_ms);
    }

    pub fn is_leader(&self, member_id: &str) -> bool {
        self.leader.as_deref() == Some(member_id)
    }

    pub fn add_member(&mut self, member: Member, protocol_type: &str) {
        if self.members.is_empty() {
            self.protocol_type = Some(protocol_type.to_string());
        }
        if self.leader.is_none() {
            self.leader = Some(member.id.clone());
        }
        if let Some(instance) = &member.instance_id {
            self.static_members
                .insert(instance.clone(), member.id.clone());
        }
        self.pending_members.remove(&member.id);
        self.members.insert(member.id.clone(), member);
    }

    pub fn remove_member(&mut self, member_id: &str) -> Option<Member> {
        let member = self.members.remove(member_id)?;
        if let Some(instance) = &member.instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance);
            }
        }
        self.pending_sync.remove(member_id);
        if self.is_leader(member_id) {
            self.leader = self.members.keys().next().cloned();
        }
        Some(member)
    }

    /// Moves a static member to its new member id; the caller fences the old one.
    pub fn replace_static_member(
        &mut self,
        instance_id: &str,
        old_id: &str,
        new_id: &str,
    ) -> Option<&mut Member> {
        let mut member = self.members.remove(old_id)?;
        member.id = new_id.to_string();
        if self.is_leader(old_id) {
            self.leader = Some(new_id.to_string());
        }
        if self.pending_sync.remove(old_id) {
            self.pending_sync.insert(new_id.to_string());
        }
        self.static_members
            .insert(instance_id.to_string(), new_id.to_string());
        Some(self.members.entry(new_id.to_string()).or_insert(member))
    }

    pub fn static_member_id(&self, instance_id: &str) -> Option<&str> {
        self.static_members.get(instance_id).map(String::as_str)
    }

    /// Another member id holds this group.instance.id.
    pub fn is_static_member_fenced(&self, instance_id: Option<&str>, member_id: &str) -> bool {
        instance_id
            .and_then(|i| self.static_member_id(i))
            .is_some_and(|current| current != member_id)
    }

    /// Kafka's rule: a new group takes any non-empty protocol type and list; then the
    /// type must match and one protocol must be supported by every member.
    pub fn supports_protocols(&self, protocol_type: &str, protocols: &[Protocol]) -> bool {
        if self.state == GroupState::Empty {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|p| self.supported_by_all(&p.name))
    }

    fn supported_by_all(&self, name: &str) -> bool {
        self.members
            .values()
            .all(|m| m.protocols.iter().any(|p| p.name == name))
    }

    /// Every member votes for its most preferred protocol that all members support;
    /// the most votes wins, ties going to the earlier candidate.
    pub fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|p| p.name.as_str())
            .filter(|name| self.supported_by_all(name))
            .collect();
        let mut votes = vec![0usize; candidates.len()];
        for member in self.members.values() {
            if let Some(choice) = member
                .protocols
                .iter()
                .find_map(|p| candidates.iter().position(|c| *c == p.name))
            {
                votes[choice] += 1;
            }
        }
        let best = votes
            .iter()
            .enumerate()
            .max_by(|(ia, va), (ib, vb)| va.cmp(vb).then(ib.cmp(ia)))?
            .0;
        Some(candidates[best].to_string())
    }

    /// Every known member has sent JoinGroup and no new member still owes one.
    pub fn all_joined(&self) -> bool {
        self.members.values().all(Member::awaiting_join) && self.pending_members.is_empty()
    }

    pub fn rebalance_timeout_ms(&self) -> u64 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms.max(0) as u64)
            .max()
            .unwrap_or(0)
    }

    /// Starts the next generation after a join phase; an empty group becomes Empty.
    pub fn init_next_generation(&mut self, now_ms: i64) {
        self.generation += 1;
        if self.members.is_empty() {
            self.protocol = None;
            self.transition(GroupState::Empty, now_ms);
        } else {
            self.protocol = self.select_protocol();
            self.transition(GroupState::CompletingRebalance, now_ms);
        }
        self.subscribed_topics = self.compute_subscribed_topics();
        self.pending_sync = self.members.keys().cloned().collect();
    }

    fn compute_subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if self.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) {
            return None;
        }
        if self.members.is_empty() {
            return Some(BTreeSet::new());
        }
        let protocol = self.protocol.as_deref()?;
        let metadata: Vec<Bytes> = self
            .members
            .values()
            .map(|m| m.metadata(protocol))
            .collect();
        union_of_topics(metadata.iter().map(|m| m.as_ref()))
    }

    pub fn is_subscribed_to(&self, topic: &str) -> bool {
        self.subscribed_topics
            .as_ref()
            .is_some_and(|topics| topics.contains(topic))
    }

    /// The members and their metadata for the selected protocol, as the leader gets them.
    pub fn joined_members(&self) -> Vec<JoinedMember> {
        let protocol = self.protocol.as_deref().unwrap_or_default();
        self.members
            .values()
            .map(|m| JoinedMember {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                metadata: m.metadata(protocol),
            })
            .collect()
    }

    /// The JoinGroup answer for `member_id` in the current generation.
    pub fn join_result(&self, member_id: &str) -> JoinResult {
        JoinResult {
            member_id: member_id.to_string(),
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            skip_assignment: false,
            members: if self.is_leader(member_id) {
                self.joined_members()
            } else {
                Vec::new()
            },
        }
    }

    /// The GroupMetadataValue to persist; `assignments` replaces the members'
    /// current assignments when given (the leader's SyncGroup, before it applies).
    pub fn metadata_value(
        &self,
        assignments: Option<&HashMap<String, Bytes>>,
    ) -> GroupMetadataValue {
        let protocol = self.protocol.as_deref().unwrap_or_default();
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            current_state_timestamp: self.state_timestamp_ms.unwrap_or(-1),
            members: self
                .members
                .values()
                .map(|m| MemberMetadataValue {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client.client_id.clone(),
                    client_host: m.client.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata(protocol),
                    assignment: match assignments {
                        Some(a) => a.get(&m.id).cloned().unwrap_or_default(),
                        None => m.assignment.clone(),
                    },
                })
                .collect(),
        }
    }

    /// DescribeGroups: metadata and assignments are only meaningful while Stable.
    pub fn describe(&self) -> GroupDescription {
        let stable = self.state == GroupState::Stable;
        let protocol = if stable {
            self.protocol.clone().unwrap_or_default()
        } else {
            String::new()
        };
        GroupDescription {
            group_id: self.id.clone(),
            state: self.state.name(),
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            members: self
                .members
                .values()
                .map(|m| MemberDescription {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client.client_id.clone(),
                    client_host: m.client.client_host.clone(),
                    metadata: if stable {
                        m.metadata(&protocol)
                    } else {
                        Bytes::new()
                    },
                    assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
            protocol,
        }
    }
}
