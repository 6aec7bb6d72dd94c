//! Pull replication: the leader answers fetches (with long polling) and tracks the high
//! watermark; followers and observers fetch, truncate on divergence and append.

use std::mem;

use rand::Rng;

use super::log::{Batch, OffsetAndEpoch, RaftLog, SnapshotId};
use super::messages::{ErrorCode, FetchRequest, FetchResponse, Request, Response};
use super::node::{FollowerState, RaftError, RaftNode, RoleState, SnapshotDownload};
use super::quorum::ParkedFetch;

/// How a fetch position relates to the leader's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FetchPosition {
    Valid,
    /// The follower's log differs from this point: truncate to it.
    Diverging(OffsetAndEpoch),
    /// The position is no longer in the log: fetch this snapshot.
    Snapshot(SnapshotId),
}

/// Kafka's `validateOffsetAndEpoch`, plus its shortcut of sending an empty follower
/// straight to the latest snapshot.
pub(super) fn validate_fetch_position(
    log: &impl RaftLog,
    offset: i64,
    epoch: i32,
) -> FetchPosition {
    let start = log.start();
    let latest = log.latest_snapshot().unwrap_or(start);
    if offset == 0 && latest.offset > 0 {
        return FetchPosition::Snapshot(latest);
    }
    if offset == 0 && start.offset == 0 {
        return FetchPosition::Valid;
    }
    let before_start = offset < start.offset
        || (offset == start.offset && epoch != start.epoch)
        || epoch < start.epoch;
    if start.offset > 0 && before_start {
        return FetchPosition::Snapshot(latest);
    }
    let end = log.end_offset_for_epoch(epoch);
    if end.epoch != epoch || end.offset < offset {
        FetchPosition::Diverging(end)
    } else {
        FetchPosition::Valid
    }
}

/// Where a follower truncates when the leader reports `diverging` (Kafka's
/// `truncateToEndOffset`): the end of the last epoch both logs share.
pub(super) fn truncation_offset(log: &impl RaftLog, diverging: OffsetAndEpoch) -> i64 {
    let end = log.end_offset();
    let offset = if diverging.epoch == 0 {
        diverging.offset
    } else {
        let local = log.end_offset_for_epoch(diverging.epoch);
        if local.epoch == diverging.epoch {
            local.offset.min(diverging.offset)
        } else {
            local.offset
        }
    };
    offset.clamp(log.start().offset, end)
}

impl<L: RaftLog> RaftNode<L> {
    // ---- leader side ----

    pub(super) fn handle_fetch_request(
        &mut self,
        from: i32,
        id: u64,
        request: FetchRequest,
        now: u64,
    ) -> Result<(), RaftError> {
        let response = if !self.cluster_id_matches(&request.cluster_id) {
            self.fetch_error(ErrorCode::INCONSISTENT_CLUSTER_ID, ErrorCode::NONE)
        } else if request.fetch_offset < 0
            || request.last_fetched_epoch < 0
            || request.last_fetched_epoch > request.current_leader_epoch
        {
            self.fetch_error(ErrorCode::NONE, ErrorCode::INVALID_REQUEST)
        } else {
            self.record_fetch_arrival(&request, now);
            let response = self.try_complete_fetch(&request)?;
            let answer_now = !response.partition_error.is_none()
                || !response.batches.is_empty()
                || response.diverging_epoch.is_some()
                || response.snapshot_id.is_some()
                || request.max_wait_ms == 0;
            let high_watermark = self.high_watermark;
            match &mut self.role {
                RoleState::Leader(leader) if !answer_now => {
                    let deadline = now + u64::from(request.max_wait_ms);
                    leader.parked.push(ParkedFetch {
                        from,
                        id,
                        request,
                        deadline,
                        high_watermark,
                    });
                    return Ok(());
                }
                _ => response,
            }
        };
        self.respond(from, id, Response::Fetch(response));
        Ok(())
    }

    /// A fetch reached the leader: the replica is alive, and if its position matches this
    /// log, its log end is known to match up to there.
    fn record_fetch_arrival(&mut self, request: &FetchRequest, now: u64) {
        let current = self
            .validate_leader_only(request.current_leader_epoch)
            .is_none();
        if !current || request.replica_id < 0 {
            return;
        }
        let position =
            validate_fetch_position(&self.log, request.fetch_offset, request.last_fetched_epoch);
        let matched_end = (position == FetchPosition::Valid).then_some(request.fetch_offset);
        let leader_end = self.log.end_offset();
        if let RoleState::Leader(leader) = &mut self.role {
            leader.record_fetch(request.replica_id, matched_end, leader_end, now);
        }
        self.maybe_advance_leader_high_watermark();
    }

    /// Kafka's `tryCompleteFetchRequest`: the answer to a fetch as of now.
    fn try_complete_fetch(&self, request: &FetchRequest) -> Result<FetchResponse, RaftError> {
        if let Some(error) = self.validate_leader_only(request.current_leader_epoch) {
            return Ok(self.fetch_error(ErrorCode::NONE, error));
        }
        let mut response = self.fetch_error(ErrorCode::NONE, ErrorCode::NONE);
        match validate_fetch_position(&self.log, request.fetch_offset, request.last_fetched_epoch) {
            FetchPosition::Valid => {
                let max_bytes = request.max_bytes.min(self.config.fetch_max_bytes) as usize;
                response.batches = self.log.read(request.fetch_offset, max_bytes)?;
            }
            FetchPosition::Diverging(end) => response.diverging_epoch = Some(end),
            FetchPosition::Snapshot(id) => response.snapshot_id = Some(id),
        }
        Ok(response)
    }

    /// A fetch response carrying only errors and this node's view of the leadership.
    pub(super) fn fetch_error(
        &self,
        error: ErrorCode,
        partition_error: ErrorCode,
    ) -> FetchResponse {
        FetchResponse {
            error,
            partition_error,
            high_watermark: self.high_watermark,
            log_start_offset: self.log.start().offset,
            diverging_epoch: None,
            current_leader: self.leader_and_epoch(),
            snapshot_id: None,
            batches: Vec::new(),
        }
    }

    pub(super) fn append_as_leader(&mut self, batch: Batch, now: u64) -> Result<(), RaftError> {
        self.log.append(batch)?;
        let end = self.log.end_offset();
        if let RoleState::Leader(leader) = &mut self.role {
            leader.update_local_end(end, now);
        }
        self.maybe_advance_leader_high_watermark();
        Ok(())
    }

    fn maybe_advance_leader_high_watermark(&mut self) {
        let RoleState::Leader(leader) = &self.role else {
            return;
        };
        let committed = leader
            .majority_end_offset()
            .filter(|&offset| offset > leader.epoch_start_offset);
        if let Some(offset) = committed {
            self.advance_high_watermark(offset);
        }
    }

    /// Check-quorum, BeginQuorumEpoch retries, and parked fetches that are due.
    pub(super) fn poll_leader(&mut self, now: u64) -> Result<(), RaftError> {
        let timeout = self.check_quorum_timeout();
        let RoleState::Leader(leader) = &self.role else {
            return Ok(());
        };
        if leader
            .check_quorum_deadline(timeout)
            .is_some_and(|deadline| now >= deadline)
        {
            tracing::warn!(
                node = self.config.node_id,
                epoch = self.election.epoch,
                "lost contact with a majority; resigning"
            );
            self.become_resigned(now);
            return Ok(());
        }
        self.send_begin_quorum_epoch(now);
        let end = self.log.end_offset();
        let high_watermark = self.high_watermark;
        let RoleState::Leader(leader) = &mut self.role else {
            return Ok(());
        };
        let (due, waiting): (Vec<ParkedFetch>, Vec<ParkedFetch>) = mem::take(&mut leader.parked)
            .into_iter()
            .partition(|fetch| {
                now >= fetch.deadline
                    || end > fetch.request.fetch_offset
                    || high_watermark != fetch.high_watermark
            });
        leader.parked = waiting;
        for fetch in due {
            let response = self.try_complete_fetch(&fetch.request)?;
            self.respond(fetch.from, fetch.id, Response::Fetch(response));
        }
        Ok(())
    }

    // ---- follower and observer side ----

    pub(super) fn fetch_from_leader(&mut self, now: u64) {
        let Some(leader) = self.election.leader_id else {
            return;
        };
        if self.requests.is_ready(leader, now) {
            let request = match &self.role {
                RoleState::Follower(FollowerState {
                    download: Some(download),
                    ..
                }) => Request::FetchSnapshot(self.fetch_snapshot_request(download)),
                _ => Request::Fetch(self.fetch_request()),
            };
            self.send_request(leader, request, now);
        }
    }

    /// An observer that knows no leader asks a random voter, which answers with the leader.
    pub(super) fn fetch_from_any_voter(&mut self, now: u64) {
        if self.requests.has_in_flight() {
            return;
        }
        let ready: Vec<i32> = self
            .other_voters()
            .filter(|&voter| self.requests.is_ready(voter, now))
            .collect();
        if ready.is_empty() {
            return;
        }
        let voter = ready[self.rng.random_range(0..ready.len())];
        let request = Request::Fetch(self.fetch_request());
        self.send_request(voter, request, now);
    }

    fn fetch_request(&self) -> FetchRequest {
        FetchRequest {
            cluster_id: Some(self.config.cluster_id.clone()),
            replica_id: self.config.node_id,
            max_wait_ms: u32::try_from(self.config.fetch_max_wait_ms).unwrap_or(u32::MAX),
            max_bytes: self.config.fetch_max_bytes,
            current_leader_epoch: self.election.epoch,
            fetch_offset: self.log.end_offset(),
            last_fetched_epoch: self.log.last_epoch(),
        }
    }

    pub(super) fn handle_fetch_response(
        &mut self,
        from: i32,
        response: FetchResponse,
        now: u64,
    ) -> Result<(), RaftError> {
        let error = response.partition_error;
        if !response.error.is_none() {
            tracing::warn!(from, error = response.error.0, "fetch rejected");
            self.back_off(from, now);
            return Ok(());
        }
        let handled = self.handle_common_response(error, response.current_leader, now);
        if handled || !error.is_none() {
            if !error.is_none() {
                self.back_off(from, now);
            }
            return Ok(());
        }
        if self.election.leader_id != Some(from) || !matches!(self.role, RoleState::Follower(_)) {
            return Ok(());
        }
        if let Some(diverging) = response.diverging_epoch {
            self.truncate_diverging(diverging)?;
        } else if let Some(id) = response.snapshot_id {
            self.start_snapshot_download(id);
        } else {
            self.append_fetched(response.batches)?;
            if response.high_watermark >= 0 {
                self.advance_high_watermark(response.high_watermark.min(self.log.end_offset()));
            }
        }
        self.reset_fetch_timeout(now);
        Ok(())
    }

    /// A successful exchange with the leader proves it alive, unless it said it resigned.
    pub(super) fn reset_fetch_timeout(&mut self, now: u64) {
        let deadline = now + self.config.fetch_timeout_ms;
        if let RoleState::Follower(follower) = &mut self.role {
            if !follower.leader_resigned {
                follower.fetch_deadline = deadline;
                follower.fetched = true;
            }
        }
    }

    fn truncate_diverging(&mut self, diverging: OffsetAndEpoch) -> Result<(), RaftError> {
        let offset = truncation_offset(&self.log, diverging);
        if offset < self.high_watermark {
            // Committed entries are never truncated; a leader asking for it is broken.
            tracing::error!(
                offset,
                high_watermark = self.high_watermark,
                "refusing to truncate below the high watermark"
            );
            return Ok(());
        }
        if offset < self.log.end_offset() {
            tracing::info!(offset, ?diverging, "truncating a diverging log");
            self.log.truncate_to(offset)?;
        }
        Ok(())
    }

    fn append_fetched(&mut self, batches: Vec<Batch>) -> Result<(), RaftError> {
        for batch in batches {
            let end = self.log.end_offset();
            if batch.next_offset() <= end {
                continue;
            }
            let continues = batch.base_offset == end
                && batch.epoch >= self.log.last_epoch()
                && batch.epoch <= self.election.epoch;
            if !continues {
                tracing::warn!(
                    base_offset = batch.base_offset,
                    end,
                    "fetched batch does not continue the log"
                );
                break;
            }
            self.log.append(batch)?;
        }
        Ok(())
    }

    fn start_snapshot_download(&mut self, id: SnapshotId) {
        if id.offset <= 0 || id.epoch < 0 {
            tracing::warn!(?id, "leader sent an invalid snapshot id");
            return;
        }
        if let RoleState::Follower(follower) = &mut self.role {
            follower.download = Some(SnapshotDownload {
                id,
                position: 0,
                size: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::raft::log::test_batch as data;
    use crate::raft::MemoryRaftLog;

    /// Epoch 1 at [0, 4), epoch 3 at [4, 7), epoch 5 at [7, 9).
    fn leader_log() -> MemoryRaftLog {
        let mut log = MemoryRaftLog::new();
        for batch in [data(0, 1, 4), data(4, 3, 3), data(7, 5, 2)] {
            log.append(batch).unwrap();
        }
        log
    }

    #[test]
    fn positions_on_the_leaders_log_are_valid() {
        let log = leader_log();
        assert_eq!(validate_fetch_position(&log, 0, 0), FetchPosition::Valid);
        assert_eq!(validate_fetch_position(&log, 6, 3), FetchPosition::Valid);
        assert_eq!(validate_fetch_position(&log, 9, 5), FetchPosition::Valid);
    }

    #[test]
    fn divergence_reports_the_end_of_the_last_common_epoch() {
        let log = leader_log();
        // The follower wrote epoch-3 entries past where the leader's epoch 3 ended.
        assert_eq!(
            validate_fetch_position(&log, 9, 3),
            FetchPosition::Diverging(OffsetAndEpoch::new(7, 3))
        );
        // The follower has an epoch (2) the leader never had: fall back to epoch 1.
        assert_eq!(
            validate_fetch_position(&log, 6, 2),
            FetchPosition::Diverging(OffsetAndEpoch::new(4, 1))
        );
    }

    #[test]
    fn positions_before_the_log_start_need_the_snapshot() {
        let mut log = leader_log();
        let id = log.create_snapshot(7, Bytes::from_static(b"s")).unwrap();
        assert_eq!(
            validate_fetch_position(&log, 0, 0),
            FetchPosition::Snapshot(id)
        );
        assert_eq!(
            validate_fetch_position(&log, 5, 3),
            FetchPosition::Snapshot(id)
        );
        assert_eq!(
            validate_fetch_position(&log, 7, 2),
            FetchPosition::Snapshot(id)
        );
        assert_eq!(validate_fetch_position(&log, 7, 3), FetchPosition::Valid);
        assert_eq!(validate_fetch_position(&log, 8, 5), FetchPosition::Valid);
    }

    #[test]
    fn truncation_keeps_the_common_prefix() {
        // Follower: epoch 1 at [0, 4), epoch 2 at [4, 8).
        let mut follower = MemoryRaftLog::new();
        follower.append(data(0, 1, 4)).unwrap();
        follower.append(data(4, 2, 4)).unwrap();
        assert_eq!(truncation_offset(&follower, OffsetAndEpoch::new(4, 1)), 4);
        assert_eq!(truncation_offset(&follower, OffsetAndEpoch::new(6, 2)), 6);
        // The leader's epoch 3 is unknown here: keep what precedes it locally.
        assert_eq!(truncation_offset(&follower, OffsetAndEpoch::new(5, 3)), 8);
        assert_eq!(truncation_offset(&follower, OffsetAndEpoch::new(2, 0)), 2);
    }
}
