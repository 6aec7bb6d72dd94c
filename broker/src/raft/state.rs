//! The persisted election state and the roles a node can be in.

/// What must survive a restart (Kafka's `quorum-state` file). The driver persists it when
/// the core emits [`super::Action::Persist`], before sending anything emitted after it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ElectionState {
    pub epoch: i32,
    /// The candidate this node voted for in `epoch`; at most one per epoch.
    pub voted_for: Option<i32>,
    /// The leader of `epoch`, once known.
    pub leader_id: Option<i32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// No leader known and no vote cast in the epoch.
    Unattached,
    /// Voted in the epoch; no leader known yet.
    Voted,
    /// Asking for pre-votes (KIP-996) without bumping the epoch.
    Prospective,
    Candidate,
    Leader,
    Follower,
    /// A former leader of the epoch handing over (graceful shutdown or lost quorum).
    Resigned,
}

impl Role {
    pub fn is_leader(self) -> bool {
        self == Role::Leader
    }
}
