//! Static settings of one Raft node.

use std::collections::BTreeSet;

/// Settings of a node; defaults follow Kafka's `controller.quorum.*` configs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftConfig {
    pub node_id: i32,
    /// The fixed voter set (`controller.quorum.voters`); other ids are observers.
    pub voters: BTreeSet<i32>,
    pub cluster_id: String,
    /// `controller.quorum.election.timeout.ms`: election timers are random in [T, 2T).
    pub election_timeout_ms: u64,
    /// `controller.quorum.election.backoff.max.ms`: cap of the backoff after a lost election.
    pub election_backoff_max_ms: u64,
    /// `controller.quorum.fetch.timeout.ms`: a follower without a successful fetch for this
    /// long starts an election; a leader without fetches from a majority for 1.5× resigns.
    pub fetch_timeout_ms: u64,
    /// How long the leader may park a fetch that finds no new data.
    pub fetch_max_wait_ms: u64,
    pub fetch_max_bytes: u32,
    pub snapshot_chunk_bytes: u32,
    /// `controller.quorum.request.timeout.ms`: an unanswered request is abandoned after this.
    pub request_timeout_ms: u64,
    /// `controller.quorum.retry.backoff.ms`: pause before retrying a failed request.
    pub retry_backoff_ms: u64,
    /// Seed of the node's random generator (election timers, backoffs, observer fetch targets).
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid raft config: {0}")]
pub struct ConfigError(pub &'static str);

impl RaftConfig {
    /// Kafka's defaults for everything but identity and seed.
    pub fn new(
        node_id: i32,
        voters: BTreeSet<i32>,
        cluster_id: impl Into<String>,
        seed: u64,
    ) -> Self {
        RaftConfig {
            node_id,
            voters,
            cluster_id: cluster_id.into(),
            election_timeout_ms: 1000,
            election_backoff_max_ms: 1000,
            fetch_timeout_ms: 2000,
            fetch_max_wait_ms: 500,
            fetch_max_bytes: 8 * 1024 * 1024,
            snapshot_chunk_bytes: 8 * 1024 * 1024,
            request_timeout_ms: 2000,
            retry_backoff_ms: 20,
            seed,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.voters.is_empty() {
            return Err(ConfigError("the voter set is empty"));
        }
        if self.voters.iter().any(|&id| id < 0) || self.node_id < 0 {
            return Err(ConfigError("node ids must not be negative"));
        }
        if self.election_timeout_ms == 0 || self.fetch_timeout_ms == 0 {
            return Err(ConfigError("election and fetch timeouts must be positive"));
        }
        // A parked fetch must be answered before the follower gives up on it.
        if self.request_timeout_ms <= self.fetch_max_wait_ms {
            return Err(ConfigError("request timeout must exceed fetch max wait"));
        }
        if self.fetch_max_bytes == 0 || self.snapshot_chunk_bytes == 0 {
            return Err(ConfigError(
                "fetch and snapshot chunk sizes must be positive",
            ));
        }
        Ok(())
    }

    pub fn is_voter(&self, id: i32) -> bool {
        self.voters.contains(&id)
    }

    /// Number of voters that form a majority.
    pub fn majority(&self) -> usize {
        self.voters.len() / 2 + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RaftConfig {
        RaftConfig::new(1, [1, 2, 3].into(), "c", 7)
    }

    #[test]
    fn defaults_are_valid_and_majority_counts_voters() {
        let config = config();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.majority(), 2);
        assert!(config.is_voter(3) && !config.is_voter(4));
    }

    #[test]
    fn rejects_unusable_settings() {
        let mut empty = config();
        empty.voters.clear();
        assert!(empty.validate().is_err());
        let mut waits_too_long = config();
        waits_too_long.fetch_max_wait_ms = waits_too_long.request_timeout_ms;
        assert!(waits_too_long.validate().is_err());
    }
}
