//! The leader's view of a partition's replicas, as Kafka's `Partition` keeps
//! it: each follower's log end offset and when it last caught up, the ISR
//! (committed by the controller, plus a change in flight), and the high
//! watermark. Pure rules; time and the leader's log end are passed in.

use std::collections::BTreeMap;

/// Log end offset of a follower that has not fetched since the leader took over.
const UNKNOWN_OFFSET: i64 = -1;

/// What the leader knows of one follower (Kafka's `ReplicaState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerState {
    pub log_end_offset: i64,
    /// The follower had everything the leader had at this time.
    pub last_caught_up_ms: i64,
    /// The leader's log end and the time of the previous fetch: a fetch that
    /// reaches that log end shows the follower was caught up back then.
    last_fetch_leader_end: i64,
    last_fetch_ms: i64,
    /// The follower's broker epoch as it sent it, for AlterPartition (KIP-903).
    pub broker_epoch: i64,
    /// The log start offset its last fetch reported (DeleteRecords waits for it).
    pub log_start_offset: i64,
}

impl FollowerState {
    /// A follower of a new leader: ISR members get a full lag period to fetch.
    fn new(in_sync: bool, now_ms: i64) -> Self {
        FollowerState {
            log_end_offset: UNKNOWN_OFFSET,
            last_caught_up_ms: if in_sync { now_ms } else { 0 },
            last_fetch_leader_end: UNKNOWN_OFFSET,
            last_fetch_ms: 0,
            broker_epoch: -1,
            log_start_offset: UNKNOWN_OFFSET,
        }
    }
}

/// The ISR the controller committed, and one the leader proposed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrState {
    pub isr: Vec<i32>,
    pub partition_epoch: i32,
    /// Sent in an AlterPartition that has not been answered yet.
    pub pending: Option<Vec<i32>>,
}

impl IsrState {
    /// Kafka's "maximal ISR": while a change is in flight, every replica that
    /// is in either the committed or the proposed ISR. The high watermark
    /// waits for all of them, so it is safe whichever way the change goes.
    pub fn maximal(&self) -> Vec<i32> {
        let mut all = self.isr.clone();
        for id in self.pending.iter().flatten() {
            if !all.contains(id) {
                all.push(*id);
            }
        }
        all
    }
}

/// How long a leader waits after the controller refused an ISR change before it proposes
/// again (unless new metadata arrives first). Without it every follower fetch re-sent the
/// refused proposal: with thousands of partitions, hundreds of thousands of AlterPartition
/// requests that buried the controller after a broker restart.
pub const PROPOSAL_RETRY_BACKOFF_MS: i64 = 500;

/// A partition this node leads, in one leader epoch.
#[derive(Debug, Clone)]
pub struct LeaderState {
    pub local_id: i32,
    pub leader_epoch: i32,
    /// Where this leader's epoch starts: a follower must have reached it to
    /// join the ISR (it cannot hold older, unreplicated data of another leader).
    pub epoch_start_offset: i64,
    pub replicas: Vec<i32>,
    pub isr: IsrState,
    followers: BTreeMap<i32, FollowerState>,
    high_watermark: i64,
    /// No new proposal before this time (ms): the last one was refused.
    retry_at_ms: i64,
}

impl LeaderState {
    /// The state right after election: followers' positions are unknown, and
    /// the high watermark carries over from before.
    pub fn new(
        local_id: i32,
        leader_epoch: i32,
        epoch_start_offset: i64,
        replicas: Vec<i32>,
        isr: IsrState,
        high_watermark: i64,
        now_ms: i64,
    ) -> Self {
        let followers = replicas
            .iter()
            .filter(|id| **id != local_id)
            .map(|id| (*id, FollowerState::new(isr.isr.contains(id), now_ms)))
            .collect();
        LeaderState {
            local_id,
            leader_epoch,
            epoch_start_offset,
            replicas,
            isr,
            followers,
            high_watermark,
            retry_at_ms: 0,
        }
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    /// Takes the replica set a reassignment changed in the same leader
    /// epoch: an added replica is tracked from its first fetch on (before
    /// that its fetches were refused and it could never join the ISR), a
    /// removed one is forgotten.
    pub fn set_replicas(&mut self, replicas: &[i32], now_ms: i64) {
        if self.replicas == replicas {
            return;
        }
        self.followers.retain(|id, _| replicas.contains(id));
        for id in replicas.iter().filter(|id| **id != self.local_id) {
            self.followers
                .entry(*id)
                .or_insert_with(|| FollowerState::new(false, now_ms));
        }
        self.replicas = replicas.to_vec();
    }

    pub fn follower(&self, id: i32) -> Option<&FollowerState> {
        self.followers.get(&id)
    }

    /// Records a follower's fetch from `fetch_offset` (everything below it is
    /// on the follower). Returns false for a broker that is not a follower.
    pub fn record_fetch(
        &mut self,
        id: i32,
        fetch_offset: i64,
        broker_epoch: i64,
        leader_end: i64,
        now_ms: i64,
    ) -> bool {
        let Some(f) = self.followers.get_mut(&id) else {
            return false;
        };
        if fetch_offset >= leader_end {
            f.last_caught_up_ms = f.last_caught_up_ms.max(now_ms);
        } else if fetch_offset >= f.last_fetch_leader_end {
            f.last_caught_up_ms = f.last_caught_up_ms.max(f.last_fetch_ms);
        }
        f.log_end_offset = fetch_offset;
        f.last_fetch_leader_end = leader_end;
        f.last_fetch_ms = now_ms;
        f.broker_epoch = broker_epoch;
        true
    }

    /// Records the log start offset a follower's fetch reported.
    pub fn record_log_start(&mut self, id: i32, log_start_offset: i64) {
        if let Some(f) = self.followers.get_mut(&id) {
            f.log_start_offset = log_start_offset;
        }
    }

    /// Kafka's low watermark: the smallest log start offset in the maximal
    /// ISR (the leader's own is `leader_start`); -1 while a member's is unknown.
    pub fn low_watermark(&self, leader_start: i64) -> i64 {
        self.isr_minimum(leader_start, |f| f.log_start_offset)
    }

    /// The smallest of `own` and each other maximal-ISR member's `offset`
    /// (unknown, -1, for a member that has not fetched in this epoch).
    fn isr_minimum(&self, own: i64, offset: impl Fn(&FollowerState) -> i64) -> i64 {
        self.isr
            .maximal()
            .iter()
            .filter(|id| **id != self.local_id)
            .map(|id| self.followers.get(id).map_or(UNKNOWN_OFFSET, &offset))
            .fold(own, i64::min)
    }

    /// Moves the high watermark to the smallest log end offset in the
    /// maximal ISR (the leader's own is `leader_end`); it never goes back.
    /// Returns whether it moved.
    pub fn maybe_advance_high_watermark(&mut self, leader_end: i64) -> bool {
        let lowest = self.isr_minimum(leader_end, |f| f.log_end_offset);
        if lowest > self.high_watermark {
            self.high_watermark = lowest;
            true
        } else {
            false
        }
    }

    /// The ISR with `id` added, if it is an out-of-sync follower that has
    /// reached both the high watermark and this leader's epoch, no other
    /// change is in flight, and `eligible` (registered, unfenced, not
    /// shutting down), and no refusal is fresher than the retry back-off.
    pub fn expansion(&self, id: i32, eligible: bool, now_ms: i64) -> Option<Vec<i32>> {
        let f = self.followers.get(&id)?;
        let caught_up =
            f.log_end_offset >= self.high_watermark && f.log_end_offset >= self.epoch_start_offset;
        if !self.may_propose(now_ms) || self.isr.isr.contains(&id) || !caught_up || !eligible {
            return None;
        }
        let mut isr = self.isr.isr.clone();
        isr.push(id);
        Some(isr)
    }

    /// The ISR without the followers that have not caught up with the
    /// leader's log end for more than `lag_ms`, if there are any and no
    /// other change is in flight.
    pub fn shrink(&self, leader_end: i64, lag_ms: u64, now_ms: i64) -> Option<Vec<i32>> {
        if !self.may_propose(now_ms) {
            return None;
        }
        let lagging = |id: &i32| {
            self.followers.get(id).is_some_and(|f| {
                f.log_end_offset != leader_end
                    && now_ms.saturating_sub(f.last_caught_up_ms) > lag_ms as i64
            })
        };
        if !self.isr.isr.iter().any(lagging) {
            return None;
        }
        Some(
            self.isr
                .isr
                .iter()
                .copied()
                .filter(|id| !lagging(id))
                .collect(),
        )
    }

    /// Records a proposed ISR as in flight.
    pub fn propose(&mut self, isr: Vec<i32>) {
        self.isr.pending = Some(isr);
    }

    /// No change in flight, and the last refusal is older than the back-off.
    fn may_propose(&self, now_ms: i64) -> bool {
        self.isr.pending.is_none() && now_ms >= self.retry_at_ms
    }

    /// Forgets a proposal the controller refused, so a check after the back-off may
    /// retry. A refusal of a proposal made in an older partition epoch is stale: the
    /// state has moved on since, and what is in flight now is another proposal.
    pub fn abort_proposal(&mut self, proposed_in: i32, now_ms: i64) {
        if proposed_in != self.isr.partition_epoch {
            return;
        }
        self.isr.pending = None;
        self.retry_at_ms = now_ms + PROPOSAL_RETRY_BACKOFF_MS;
    }

    /// Takes the controller's answer to the proposal in flight: its ISR, unless a newer
    /// one is already known. Returns whether the state changed.
    pub fn commit_answer(&mut self, isr: Vec<i32>, partition_epoch: i32) -> bool {
        let current = self.isr.partition_epoch;
        if partition_epoch < current || (partition_epoch == current && self.isr.pending.is_none()) {
            return false;
        }
        self.take(isr, partition_epoch);
        true
    }

    /// Takes a committed ISR from the metadata image if it is newer than ours. An image
    /// in our own partition epoch brings nothing new, and must not clear the proposal in
    /// flight: every image did so once, each time queueing a duplicate proposal that the
    /// controller then refused as stale (hundreds of thousands at 2,000 partitions).
    pub fn commit_image(&mut self, isr: Vec<i32>, partition_epoch: i32) -> bool {
        if partition_epoch <= self.isr.partition_epoch {
            return false;
        }
        self.take(isr, partition_epoch);
        true
    }

    fn take(&mut self, isr: Vec<i32>, partition_epoch: i32) {
        for id in &isr {
            if let Some(f) = self.followers.get_mut(id) {
                // A follower added by someone else gets a full lag period.
                if !self.isr.isr.contains(id) && f.last_caught_up_ms == 0 {
                    f.last_caught_up_ms = f.last_fetch_ms;
                }
            }
        }
        self.isr = IsrState {
            isr,
            partition_epoch,
            pending: None,
        };
        // A newer committed state is what a refused proposal was missing: retry at once.
        self.retry_at_ms = 0;
    }

    /// Whether fewer replicas are in sync than are assigned.
    pub fn under_replicated(&self) -> bool {
        self.isr.isr.len() < self.replicas.len()
    }

    /// How far the furthest-behind follower is from the leader's log end.
    pub fn max_follower_lag(&self, leader_end: i64) -> i64 {
        self.followers
            .values()
            .map(|f| leader_end - f.log_end_offset.max(0))
            .max()
            .unwrap_or(0)
            .max(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAG_MS: u64 = 1_000;

    /// Leader 1 of replicas [1, 2, 3] in epoch 5 starting at offset 10, all in sync.
    fn leader(hw: i64) -> LeaderState {
        LeaderState::new(
            1,
            5,
            10,
            vec![1, 2, 3],
            IsrState {
                isr: vec![1, 2, 3],
                partition_epoch: 7,
                pending: None,
            },
            hw,
            0,
        )
    }

    #[test]
    fn an_added_replica_is_tracked_and_may_join_once_caught_up_a_removed_one_is_forgotten() {
        let mut l = leader(20);
        assert!(!l.record_fetch(4, 20, 9, 20, 100), "not a replica yet");
        l.set_replicas(&[4, 2, 1, 3], 100);
        assert_eq!(l.expansion(4, true, 100), None, "no fetch yet");
        assert!(l.record_fetch(4, 20, 9, 20, 100));
        assert_eq!(l.expansion(4, true, 100), Some(vec![1, 2, 3, 4]));
        l.set_replicas(&[4, 2, 1], 200);
        assert!(l.follower(3).is_none());
        assert!(l.follower(4).is_some_and(|f| f.log_end_offset == 20));
    }

    #[test]
    fn low_watermark_is_the_lowest_log_start_in_the_isr_once_every_member_reported_one() {
        let mut l = leader(5);
        assert_eq!(l.low_watermark(40), -1, "no follower has reported yet");
        l.record_log_start(2, 40);
        assert_eq!(l.low_watermark(40), -1);
        l.record_log_start(3, 10);
        assert_eq!(l.low_watermark(40), 10);
        l.record_log_start(3, 40);
        assert_eq!(l.low_watermark(40), 40);
        // A replica out of the ISR does not hold it back; the leader's own start does.
        assert!(l.commit_image(vec![1, 2], 8));
        l.record_log_start(3, 0);
        assert_eq!(l.low_watermark(30), 30);
    }

    #[test]
    fn high_watermark_is_the_lowest_isr_log_end_and_never_goes_back() {
        let mut l = leader(5);
        // Followers' positions are unknown: the high watermark stays.
        assert!(!l.maybe_advance_high_watermark(20));
        assert_eq!(l.high_watermark(), 5);
        l.record_fetch(2, 15, 1, 20, 100);
        assert!(!l.maybe_advance_high_watermark(20));
        l.record_fetch(3, 12, 1, 20, 100);
        assert!(l.maybe_advance_high_watermark(20));
        assert_eq!(l.high_watermark(), 12);
        // Never above the leader's log end.
        l.record_fetch(2, 30, 1, 20, 100);
        l.record_fetch(3, 30, 1, 20, 100);
        l.maybe_advance_high_watermark(20);
        assert_eq!(l.high_watermark(), 20);
        // A follower going back (it truncated) does not move it back.
        l.record_fetch(3, 8, 1, 20, 200);
        assert!(!l.maybe_advance_high_watermark(20));
        assert_eq!(l.high_watermark(), 20);
    }

    #[test]
    fn only_isr_members_hold_back_the_high_watermark() {
        let mut l = leader(0);
        l.commit_image(vec![1, 2], 8);
        l.record_fetch(2, 20, 1, 20, 100);
        l.record_fetch(3, 3, 1, 20, 100);
        assert!(l.maybe_advance_high_watermark(20));
        assert_eq!(l.high_watermark(), 20);
    }

    #[test]
    fn a_pending_expansion_holds_back_the_high_watermark() {
        let mut l = leader(0);
        l.commit_image(vec![1, 2], 8);
        l.record_fetch(2, 20, 1, 20, 100);
        l.record_fetch(3, 12, 1, 20, 100);
        l.maybe_advance_high_watermark(12);
        assert_eq!(l.high_watermark(), 12);
        let expanded = l.expansion(3, true, 100).unwrap();
        assert_eq!(expanded, [1, 2, 3]);
        l.propose(expanded);
        assert!(!l.maybe_advance_high_watermark(20));
        assert_eq!(l.high_watermark(), 12);
        // Until the controller answers, no other change is proposed.
        assert_eq!(l.shrink(20, LAG_MS, 1_000_000), None);
        assert!(l.commit_answer(vec![1, 2, 3], 9));
        assert_eq!(l.isr.pending, None);
    }

    #[test]
    fn a_pending_shrink_keeps_the_removed_replica_for_the_high_watermark() {
        let mut l = leader(0);
        l.record_fetch(2, 20, 1, 20, 100);
        l.record_fetch(3, 4, 1, 20, 100);
        let shrunk = l.shrink(20, LAG_MS, 100 + 2 * LAG_MS as i64).unwrap();
        assert_eq!(shrunk, [1, 2]);
        l.propose(shrunk);
        l.maybe_advance_high_watermark(20);
        assert_eq!(l.high_watermark(), 4);
        l.commit_image(vec![1, 2], 8);
        l.maybe_advance_high_watermark(20);
        assert_eq!(l.high_watermark(), 20);
    }

    #[test]
    fn followers_leave_the_isr_only_after_the_lag_time_without_catching_up() {
        let mut l = leader(0);
        // Fetching at the leader's end is caught up.
        l.record_fetch(2, 20, 1, 20, 500);
        l.record_fetch(3, 20, 1, 20, 500);
        assert_eq!(l.shrink(20, LAG_MS, 1_400), None);
        // New data arrives; follower 3 never fetches again, follower 2 keeps
        // fetching behind but reaches what the leader had at its last fetch.
        l.record_fetch(2, 25, 1, 30, 1_200);
        l.record_fetch(2, 30, 1, 40, 1_800);
        assert_eq!(l.follower(2).unwrap().last_caught_up_ms, 1_200);
        assert_eq!(l.shrink(40, LAG_MS, 1_501), Some(vec![1, 2]));
    }

    #[test]
    fn a_new_leader_gives_isr_members_a_full_lag_period() {
        let l = leader(0);
        assert_eq!(l.shrink(20, LAG_MS, LAG_MS as i64), None);
        assert_eq!(l.shrink(20, LAG_MS, LAG_MS as i64 + 1), Some(vec![1]));
    }

    #[test]
    fn followers_join_the_isr_at_the_high_watermark_and_the_leader_epoch() {
        let mut l = leader(15);
        l.commit_image(vec![1, 2], 8);
        l.record_fetch(3, 14, 1, 20, 100);
        assert_eq!(l.expansion(3, true, 100), None, "below the high watermark");
        let mut early = leader(5);
        early.commit_image(vec![1, 2], 8);
        early.record_fetch(3, 8, 1, 20, 100);
        assert_eq!(
            early.expansion(3, true, 100),
            None,
            "before the leader's epoch"
        );
        l.record_fetch(3, 15, 1, 20, 100);
        assert_eq!(l.expansion(3, false, 100), None, "fenced or shutting down");
        assert_eq!(l.expansion(3, true, 100), Some(vec![1, 2, 3]));
        assert_eq!(l.expansion(2, true, 100), None, "already in sync");
        assert_eq!(l.expansion(9, true, 100), None, "not a replica");
        assert!(!l.record_fetch(9, 15, 1, 20, 100));
    }

    #[test]
    fn older_or_repeated_commits_are_ignored_and_refusals_allow_retries() {
        let mut l = leader(0);
        assert!(!l.commit_image(vec![1], 6));
        assert!(!l.commit_image(vec![1], 7));
        l.propose(vec![1, 2]);
        l.abort_proposal(7, 100);
        assert_eq!(l.isr.maximal(), [1, 2, 3]);
        assert!(l.commit_image(vec![1, 3], 8));
        assert!(l.under_replicated());
        assert_eq!(l.isr.isr, [1, 3]);
    }

    #[test]
    fn a_refused_proposal_is_retried_after_the_back_off_or_new_metadata() {
        let mut l = leader(15);
        l.commit_image(vec![1, 2], 8);
        l.record_fetch(3, 15, 1, 20, 100);
        let isr = l.expansion(3, true, 100).unwrap();
        l.propose(isr);
        l.abort_proposal(8, 100);
        // every fetch in the back-off would otherwise send the same proposal again
        assert_eq!(l.expansion(3, true, 101), None);
        assert_eq!(l.expansion(3, true, 99 + PROPOSAL_RETRY_BACKOFF_MS), None);
        assert_eq!(
            l.expansion(3, true, 100 + PROPOSAL_RETRY_BACKOFF_MS),
            Some(vec![1, 2, 3])
        );
        // a newer committed ISR ends the back-off at once
        l.propose(vec![1, 2, 3]);
        l.abort_proposal(8, 200);
        assert!(l.commit_image(vec![1, 2], 9));
        assert_eq!(l.expansion(3, true, 201), Some(vec![1, 2, 3]));
    }

    #[test]
    fn an_image_in_our_partition_epoch_leaves_the_proposal_in_flight() {
        let mut l = leader(15);
        l.record_fetch(3, 15, 1, 20, 100);
        l.commit_image(vec![1, 2], 8);
        l.propose(l.expansion(3, true, 100).unwrap());
        // Any other partition's change publishes an image with this partition unchanged.
        assert!(!l.commit_image(vec![1, 2], 8));
        assert_eq!(l.isr.pending, Some(vec![1, 2, 3]));
        assert_eq!(l.expansion(3, true, 101), None, "no duplicate proposal");
        // The controller answers in the same epoch when it had nothing to change.
        assert!(l.commit_answer(vec![1, 2, 3], 8));
        assert_eq!(l.isr.pending, None);
        assert_eq!(l.isr.isr, [1, 2, 3]);
    }

    #[test]
    fn a_refusal_of_a_proposal_from_an_older_partition_epoch_is_ignored() {
        let mut l = leader(15);
        l.record_fetch(3, 15, 1, 20, 100);
        l.commit_image(vec![1, 2], 8);
        l.propose(l.expansion(3, true, 100).unwrap());
        // The controller changed the partition meanwhile; a new proposal goes out.
        assert!(l.commit_image(vec![1, 2], 9));
        l.propose(l.expansion(3, true, 100).unwrap());
        l.abort_proposal(8, 110);
        assert_eq!(
            l.isr.pending,
            Some(vec![1, 2, 3]),
            "still waiting for the new one"
        );
        l.abort_proposal(9, 120);
        assert_eq!(l.isr.pending, None);
    }

    #[test]
    fn max_follower_lag_counts_unknown_positions_from_zero() {
        let mut l = leader(0);
        l.record_fetch(2, 18, 1, 20, 100);
        assert_eq!(l.max_follower_lag(20), 20);
        l.record_fetch(3, 20, 1, 20, 100);
        assert_eq!(l.max_follower_lag(20), 2);
    }
}
