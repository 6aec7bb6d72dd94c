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
        }
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
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

    /// Moves the high watermark to the smallest log end offset in the
    /// maximal ISR (the leader's own is `leader_end`); it never goes back.
    /// Returns whether it moved.
    pub fn maybe_advance_high_watermark(&mut self, leader_end: i64) -> bool {
        let lowest = self
            .isr
            .maximal()
            .iter()
            .filter(|id| **id != self.local_id)
            .map(|id| {
                self.followers
                    .get(id)
                    .map_or(UNKNOWN_OFFSET, |f| f.log_end_offset)
            })
            .fold(leader_end, i64::min);
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
    /// shutting down).
    pub fn expansion(&self, id: i32, eligible: bool) -> Option<Vec<i32>> {
        let f = self.followers.get(&id)?;
        let caught_up =
            f.log_end_offset >= self.high_watermark && f.log_end_offset >= self.epoch_start_offset;
        if self.isr.pending.is_some() || self.isr.isr.contains(&id) || !caught_up || !eligible {
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
        if self.isr.pending.is_some() {
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

    /// Forgets a proposal the controller refused, so a later check may retry.
    pub fn abort_proposal(&mut self) {
        self.isr.pending = None;
    }

    /// Takes a committed ISR (from the AlterPartition answer or the metadata
    /// image) unless an equal or newer one is already known. Returns whether
    /// the state changed.
    pub fn commit(&mut self, isr: Vec<i32>, partition_epoch: i32) -> bool {
        if partition_epoch < self.isr.partition_epoch
            || (partition_epoch == self.isr.partition_epoch && self.isr.pending.is_none())
        {
            return false;
        }
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
        true
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
        l.commit(vec![1, 2], 8);
        l.record_fetch(2, 20, 1, 20, 100);
        l.record_fetch(3, 3, 1, 20, 100);
        assert!(l.maybe_advance_high_watermark(20));
        assert_eq!(l.high_watermark(), 20);
    }

    #[test]
    fn a_pending_expansion_holds_back_the_high_watermark() {
        let mut l = leader(0);
        l.commit(vec![1, 2], 8);
        l.record_fetch(2, 20, 1, 20, 100);
        l.record_fetch(3, 12, 1, 20, 100);
        l.maybe_advance_high_watermark(12);
        assert_eq!(l.high_watermark(), 12);
        let expanded = l.expansion(3, true).unwrap();
        assert_eq!(expanded, [1, 2, 3]);
        l.propose(expanded);
        assert!(!l.maybe_advance_high_watermark(20));
        assert_eq!(l.high_watermark(), 12);
        // Until the controller answers, no other change is proposed.
        assert_eq!(l.shrink(20, LAG_MS, 1_000_000), None);
        assert!(l.commit(vec![1, 2, 3], 9));
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
        l.commit(vec![1, 2], 8);
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
        l.commit(vec![1, 2], 8);
        l.record_fetch(3, 14, 1, 20, 100);
        assert_eq!(l.expansion(3, true), None, "below the high watermark");
        let mut early = leader(5);
        early.commit(vec![1, 2], 8);
        early.record_fetch(3, 8, 1, 20, 100);
        assert_eq!(early.expansion(3, true), None, "before the leader's epoch");
        l.record_fetch(3, 15, 1, 20, 100);
        assert_eq!(l.expansion(3, false), None, "fenced or shutting down");
        assert_eq!(l.expansion(3, true), Some(vec![1, 2, 3]));
        assert_eq!(l.expansion(2, true), None, "already in sync");
        assert_eq!(l.expansion(9, true), None, "not a replica");
        assert!(!l.record_fetch(9, 15, 1, 20, 100));
    }

    #[test]
    fn older_or_repeated_commits_are_ignored_and_refusals_allow_retries() {
        let mut l = leader(0);
        assert!(!l.commit(vec![1], 6));
        assert!(!l.commit(vec![1], 7));
        l.propose(vec![1, 2]);
        l.abort_proposal();
        assert_eq!(l.isr.maximal(), [1, 2, 3]);
        assert!(l.commit(vec![1, 3], 8));
        assert!(l.under_replicated());
        assert_eq!(l.isr.isr, [1, 3]);
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
