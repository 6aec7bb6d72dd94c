//! Which committed offsets have outlived `offsets.retention.ms` (Kafka's
//! `GroupMetadata.removeExpiredOffsets`).

use super::classic_group::ClassicGroup;
use super::consumer_protocol::CONSUMER_PROTOCOL_TYPE;
use super::records::OffsetCommitValue;
use super::state::GroupState;

impl ClassicGroup {
    /// The offsets to delete at `now_ms`:
    /// - Empty group with a protocol type: retention counts from when it became empty;
    /// - Stable consumer group with known subscriptions: offsets of topics it no longer
    ///   subscribes to, counted from their commit;
    /// - standalone (no protocol type): counted from each commit;
    /// - otherwise nothing expires while members are active.
    ///
    /// An explicit expire timestamp (OffsetCommit v2-4) always wins.
    pub fn expired_offsets(&self, now_ms: i64, retention_ms: i64) -> Vec<(String, i32)> {
        let from_state =
            |v: &OffsetCommitValue| self.state_timestamp_ms.unwrap_or(v.commit_timestamp);
        let from_commit = |v: &OffsetCommitValue| v.commit_timestamp;
        let (base, skip_subscribed): (&dyn Fn(&OffsetCommitValue) -> i64, bool) =
            match self.protocol_type.as_deref() {
                Some(_) if self.state == GroupState::Empty => (&from_state, false),
                Some(CONSUMER_PROTOCOL_TYPE)
                    if self.state == GroupState::Stable && self.subscribed_topics.is_some() =>
                {
                    (&from_commit, true)
                }
                None => (&from_commit, false),
                Some(_) => return Vec::new(),
            };
        self.offsets
            .iter()
            .filter(|((topic, _), _)| !(skip_subscribed && self.is_subscribed_to(topic)))
            .filter(|(_, value)| match value.expire_timestamp {
                Some(expire) => now_ms >= expire,
                None => now_ms - base(value) >= retention_ms,
            })
            .map(|(key, _)| key.clone())
            .collect()
    }
}
