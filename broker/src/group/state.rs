//! The states of a classic group, named as Kafka names them on the wire.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    /// Only these states may start a new rebalance; PreparingRebalance already has one.
    pub fn can_rebalance(self) -> bool {
        matches!(
            self,
            GroupState::Empty | GroupState::CompletingRebalance | GroupState::Stable
        )
    }
}
