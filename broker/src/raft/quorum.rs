//! What a leader knows about its replicas: their progress (for the high watermark and
//! DescribeQuorum), when they last fetched (check-quorum), who still needs to hear of the new
//! epoch, and the fetches it parked.

use std::collections::{BTreeMap, BTreeSet};

use super::messages::FetchRequest;

/// One replica's row of DescribeQuorum. Times are the driver's clock in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaInfo {
    pub replica_id: i32,
    /// -1 until the replica fetched from a valid position in this leader's epoch.
    pub log_end_offset: i64,
    pub last_fetch_ms: Option<u64>,
    pub last_caught_up_ms: Option<u64>,
}

/// The leader's answer to DescribeQuorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumInfo {
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub high_watermark: i64,
    pub voters: Vec<ReplicaInfo>,
    pub observers: Vec<ReplicaInfo>,
}

/// A fetch that found nothing new, answered when data or a new high watermark arrives, or at
/// `deadline`.
#[derive(Debug, Clone)]
pub(super) struct ParkedFetch {
    pub from: i32,
    pub id: u64,
    pub request: FetchRequest,
    pub deadline: u64,
    pub high_watermark: i64,
}

#[derive(Debug, Clone, Default)]
struct Progress {
    end_offset: Option<i64>,
    last_fetch_ms: Option<u64>,
    last_caught_up_ms: Option<u64>,
    /// The leader's end offset at the previous fetch, for the caught-up rule.
    leader_end_at_last_fetch: Option<i64>,
}

impl Progress {
    /// Kafka's rule: a replica is caught up at a fetch that reaches the leader's end, or at
    /// the previous fetch if this one reaches what the leader had then.
    fn on_fetch(&mut self, end_offset: Option<i64>, leader_end: i64, now: u64) {
        if let Some(end) = end_offset {
            if end >= leader_end {
                self.last_caught_up_ms = self.last_caught_up_ms.max(Some(now));
            } else if self
                .leader_end_at_last_fetch
                .is_some_and(|previous| end >= previous)
            {
                self.last_caught_up_ms = self.last_caught_up_ms.max(self.last_fetch_ms);
            }
            self.end_offset = Some(end);
            self.leader_end_at_last_fetch = Some(leader_end);
        }
        self.last_fetch_ms = Some(now);
    }

    fn info(&self, replica_id: i32) -> ReplicaInfo {
        ReplicaInfo {
            replica_id,
            log_end_offset: self.end_offset.unwrap_or(-1),
            last_fetch_ms: self.last_fetch_ms,
            last_caught_up_ms: self.last_caught_up_ms,
        }
    }
}

#[derive(Debug)]
pub(super) struct LeaderState {
    local_id: i32,
    /// Offset of this epoch's leader-change entry; the high watermark must pass it before
    /// anything is committed in this epoch (Raft commits older entries only indirectly).
    pub epoch_start_offset: i64,
    started_ms: u64,
    voters: BTreeMap<i32, Progress>,
    observers: BTreeMap<i32, Progress>,
    /// Voters not yet known to follow this epoch: BeginQuorumEpoch goes to them until they
    /// answer or fetch.
    unacknowledged: BTreeSet<i32>,
    pub parked: Vec<ParkedFetch>,
}

impl LeaderState {
    pub fn new(local_id: i32, voters: &BTreeSet<i32>, epoch_start_offset: i64, now: u64) -> Self {
        LeaderState {
            local_id,
            epoch_start_offset,
            started_ms: now,
            voters: voters.iter().map(|&id| (id, Progress::default())).collect(),
            observers: BTreeMap::new(),
            unacknowledged: voters
                .iter()
                .copied()
                .filter(|&id| id != local_id)
                .collect(),
            parked: Vec::new(),
        }
    }

    pub fn unacknowledged(&self) -> Vec<i32> {
        self.unacknowledged.iter().copied().collect()
    }

    pub fn acknowledge(&mut self, voter: i32) {
        self.unacknowledged.remove(&voter);
    }

    /// A fetch (or snapshot fetch) from `replica` in this epoch; `end_offset` is its log end
    /// when the fetch position matched the leader's log.
    pub fn record_fetch(
        &mut self,
        replica: i32,
        end_offset: Option<i64>,
        leader_end: i64,
        now: u64,
    ) {
        let progress = match self.voters.get_mut(&replica) {
            Some(progress) => {
                self.unacknowledged.remove(&replica);
                progress
            }
            None => self.observers.entry(replica).or_default(),
        };
        progress.on_fetch(end_offset, leader_end, now);
    }

    pub fn update_local_end(&mut self, end_offset: i64, now: u64) {
        let local = self.voters.entry(self.local_id).or_default();
        local.on_fetch(Some(end_offset), end_offset, now);
    }

    /// The largest offset that a majority of voters have reached.
    pub fn majority_end_offset(&self) -> Option<i64> {
        let mut ends: Vec<i64> = self.voters.values().filter_map(|p| p.end_offset).collect();
        let majority = self.voters.len() / 2 + 1;
        if ends.len() < majority {
            return None;
        }
        ends.sort_unstable_by(|a, b| b.cmp(a));
        Some(ends[majority - 1])
    }

    /// When the leader stops having heard from a majority within `timeout_ms` (check-quorum);
    /// `None` for a single voter, which is its own majority.
    pub fn check_quorum_deadline(&self, timeout_ms: u64) -> Option<u64> {
        let needed = self.voters.len() / 2;
        let mut contacts: Vec<u64> = self
            .voters
            .iter()
            .filter(|(&id, _)| id != self.local_id)
            .map(|(_, p)| p.last_fetch_ms.unwrap_or(0).max(self.started_ms))
            .collect();
        contacts.sort_unstable_by(|a, b| b.cmp(a));
        let oldest_needed = *contacts.get(needed.checked_sub(1)?)?;
        Some(oldest_needed.saturating_add(timeout_ms))
    }

    /// Other voters, those whose logs reach furthest first: the order of succession.
    pub fn successors(&self) -> Vec<i32> {
        let mut others: Vec<(i32, Option<i64>)> = self
            .voters
            .iter()
            .filter(|(&id, _)| id != self.local_id)
            .map(|(&id, p)| (id, p.end_offset))
            .collect();
        others.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        others.into_iter().map(|(id, _)| id).collect()
    }

    pub fn replicas(&self) -> (Vec<ReplicaInfo>, Vec<ReplicaInfo>) {
        let info = |map: &BTreeMap<i32, Progress>| map.iter().map(|(&id, p)| p.info(id)).collect();
        (info(&self.voters), info(&self.observers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader(voters: &[i32]) -> LeaderState {
        LeaderState::new(1, &voters.iter().copied().collect(), 10, 1000)
    }

    #[test]
    fn majority_end_offset_needs_a_majority_of_voters() {
        let mut state = leader(&[1, 2, 3, 4, 5]);
        state.update_local_end(20, 1000);
        state.record_fetch(2, Some(15), 20, 1000);
        assert_eq!(state.majority_end_offset(), None);
        state.record_fetch(3, Some(12), 20, 1000);
        assert_eq!(state.majority_end_offset(), Some(12));
        state.record_fetch(4, Some(18), 20, 1000);
        assert_eq!(state.majority_end_offset(), Some(15));
        state.record_fetch(9, Some(20), 20, 1000);
        assert_eq!(
            state.majority_end_offset(),
            Some(15),
            "observers do not count"
        );
    }

    #[test]
    fn fetches_acknowledge_the_epoch() {
        let mut state = leader(&[1, 2, 3]);
        assert_eq!(state.unacknowledged(), vec![2, 3]);
        state.record_fetch(3, None, 10, 1000);
        assert_eq!(state.unacknowledged(), vec![2]);
        state.acknowledge(2);
        assert!(state.unacknowledged().is_empty());
    }

    #[test]
    fn check_quorum_deadline_follows_the_majority_contact() {
        let mut state = leader(&[1, 2, 3, 4, 5]);
        assert_eq!(state.check_quorum_deadline(300), Some(1300));
        state.record_fetch(2, None, 10, 1200);
        assert_eq!(state.check_quorum_deadline(300), Some(1300));
        state.record_fetch(3, None, 10, 1250);
        assert_eq!(state.check_quorum_deadline(300), Some(1500));
        assert_eq!(leader(&[1]).check_quorum_deadline(300), None);
    }

    #[test]
    fn caught_up_time_follows_kafkas_rule() {
        let mut state = leader(&[1, 2]);
        state.record_fetch(2, Some(5), 10, 100);
        state.record_fetch(2, Some(10), 12, 200);
        let (voters, _) = state.replicas();
        // Reached the leader's end as of the previous fetch, so caught up at that fetch.
        assert_eq!(voters[1].last_caught_up_ms, Some(100));
        state.record_fetch(2, Some(12), 12, 300);
        let (voters, _) = state.replicas();
        assert_eq!(voters[1].last_caught_up_ms, Some(300));
        assert_eq!(voters[1].log_end_offset, 12);
    }

    #[test]
    fn successors_are_ordered_by_progress() {
        let mut state = leader(&[1, 2, 3, 4]);
        state.record_fetch(3, Some(9), 10, 0);
        state.record_fetch(4, Some(7), 10, 0);
        assert_eq!(state.successors(), vec![3, 4, 2]);
    }
}
