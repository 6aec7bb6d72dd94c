//! Elections: pre-votes (KIP-996), votes, and the BeginQuorumEpoch / EndQuorumEpoch
//! announcements around a leader's term.

use super::log::RaftLog;
use super::messages::{
    BeginQuorumEpochRequest, BeginQuorumEpochResponse, EndQuorumEpochRequest,
    EndQuorumEpochResponse, ErrorCode, LeaderAndEpoch, Request, VoteRequest, VoteResponse,
};
use super::node::{RaftError, RaftNode, RoleState};

impl<L: RaftLog> RaftNode<L> {
    pub(super) fn handle_vote_request(&mut self, request: &VoteRequest, now: u64) -> VoteResponse {
        if !self.cluster_id_matches(&request.cluster_id) {
            return self.vote_response(ErrorCode::INCONSISTENT_CLUSTER_ID, ErrorCode::NONE, false);
        }
        if let Some(error) = self.validate_voter_only(request.candidate_id, request.candidate_epoch)
        {
            return self.vote_response(ErrorCode::NONE, error, false);
        }
        // A pre-vote asks a hypothetical question and must not disturb the epoch.
        if !request.pre_vote && request.candidate_epoch > self.election.epoch {
            self.become_unattached(request.candidate_epoch, None, now);
        }
        let granted = self.can_grant_vote(request, now);
        if granted && !request.pre_vote && self.election.voted_for.is_none() {
            self.become_unattached(self.election.epoch, Some(request.candidate_id), now);
        }
        self.vote_response(ErrorCode::NONE, ErrorCode::NONE, granted)
    }

    fn can_grant_vote(&self, request: &VoteRequest, now: u64) -> bool {
        // Logs compare by last epoch, then by end offset.
        let up_to_date = (request.last_offset_epoch, request.last_offset)
            >= (self.log.last_epoch(), self.log.end_offset());
        if request.pre_vote {
            return up_to_date && !self.has_live_leader(now);
        }
        // A known leader of this epoch (possibly this node) or a vote already cast decides.
        if self.election.leader_id.is_some() {
            return false;
        }
        match self.election.voted_for {
            Some(voted) => voted == request.candidate_id,
            None => up_to_date,
        }
    }

    /// Whether this node heard from a working leader within the fetch timeout.
    fn has_live_leader(&self, now: u64) -> bool {
        match &self.role {
            RoleState::Leader(_) => true,
            RoleState::Follower(follower) => {
                follower.fetched && !follower.leader_resigned && now < follower.fetch_deadline
            }
            _ => false,
        }
    }

    fn vote_response(
        &self,
        error: ErrorCode,
        partition_error: ErrorCode,
        granted: bool,
    ) -> VoteResponse {
        VoteResponse {
            error,
            partition_error,
            leader: self.leader_and_epoch(),
            vote_granted: granted,
        }
    }

    pub(super) fn handle_vote_response(&mut self, from: i32, response: &VoteResponse, now: u64) {
        if !response.error.is_none() {
            tracing::warn!(
                from,
                error = response.error.0,
                "vote rejected at the top level"
            );
            self.back_off(from, now);
            return;
        }
        if self.handle_common_response(response.partition_error, response.leader, now) {
            return;
        }
        if !self.config.is_voter(from) {
            return;
        }
        if let RoleState::Prospective(round) | RoleState::Candidate(round) = &mut self.role {
            if response.vote_granted {
                round.granted.insert(from);
            } else {
                round.rejected.insert(from);
            }
        }
    }

    /// Counts votes, handles timeouts and asks the voters not heard from yet.
    pub(super) fn poll_election(&mut self, now: u64) -> Result<(), RaftError> {
        let voters = self.config.voters.len();
        let majority = self.config.majority();
        let (pre_vote, granted, rejected, deadline, backoff_until) = match &self.role {
            RoleState::Prospective(r) => {
                (true, r.granted.len(), r.rejected.len(), r.deadline, None)
            }
            RoleState::Candidate(r) => (
                false,
                r.granted.len(),
                r.rejected.len(),
                r.deadline,
                r.backoff_until,
            ),
            _ => return Ok(()),
        };
        let lost = voters - rejected < majority || now >= deadline;
        if granted >= majority {
            if pre_vote {
                self.become_candidate(now);
            } else {
                self.become_leader(now)?;
            }
        } else if let Some(until) = backoff_until {
            if now >= until {
                self.election_retries += 1;
                self.become_prospective(now);
            }
        } else if lost && pre_vote {
            // A resigned leader keeps itself as the epoch's leader; it cannot follow itself.
            match self
                .election
                .leader_id
                .filter(|&l| l != self.config.node_id)
            {
                Some(leader) => self.become_follower(self.election.epoch, leader, now),
                None => self.become_unattached(self.election.epoch, self.election.voted_for, now),
            }
        } else if lost {
            let until = now + self.random_election_backoff();
            if let RoleState::Candidate(round) = &mut self.role {
                round.backoff_until = Some(until);
            }
        } else {
            self.send_vote_requests(pre_vote, now);
        }
        Ok(())
    }

    fn send_vote_requests(&mut self, pre_vote: bool, now: u64) {
        let (RoleState::Prospective(round) | RoleState::Candidate(round)) = &self.role else {
            return;
        };
        let pending: Vec<i32> = self
            .other_voters()
            .filter(|v| !round.granted.contains(v) && !round.rejected.contains(v))
            .filter(|&v| self.requests.is_ready(v, now))
            .collect();
        let request = VoteRequest {
            cluster_id: Some(self.config.cluster_id.clone()),
            candidate_epoch: self.election.epoch + i32::from(pre_vote),
            candidate_id: self.config.node_id,
            last_offset_epoch: self.log.last_epoch(),
            last_offset: self.log.end_offset(),
            pre_vote,
        };
        for voter in pending {
            self.send_request(voter, Request::Vote(request.clone()), now);
        }
    }

    pub(super) fn handle_begin_quorum_epoch_request(
        &mut self,
        request: &BeginQuorumEpochRequest,
        now: u64,
    ) -> BeginQuorumEpochResponse {
        let error = if !self.cluster_id_matches(&request.cluster_id) {
            return BeginQuorumEpochResponse {
                error: ErrorCode::INCONSISTENT_CLUSTER_ID,
                partition_error: ErrorCode::NONE,
                leader: self.leader_and_epoch(),
            };
        } else if let Some(error) =
            self.validate_voter_only(request.leader_id, request.leader_epoch)
        {
            error
        } else {
            self.observe_leader(announced(request.leader_id, request.leader_epoch), now);
            ErrorCode::NONE
        };
        BeginQuorumEpochResponse {
            error: ErrorCode::NONE,
            partition_error: error,
            leader: self.leader_and_epoch(),
        }
    }

    pub(super) fn handle_begin_quorum_epoch_response(
        &mut self,
        from: i32,
        response: &BeginQuorumEpochResponse,
        now: u64,
    ) {
        if self.acknowledged(
            from,
            response.error,
            response.partition_error,
            response.leader,
            now,
        ) {
            if let RoleState::Leader(leader) = &mut self.role {
                leader.acknowledge(from);
            }
        }
    }

    /// Tells voters that have not followed yet about this leader's epoch.
    pub(super) fn send_begin_quorum_epoch(&mut self, now: u64) {
        let RoleState::Leader(leader) = &self.role else {
            return;
        };
        let request = BeginQuorumEpochRequest {
            cluster_id: Some(self.config.cluster_id.clone()),
            leader_id: self.config.node_id,
            leader_epoch: self.election.epoch,
        };
        for voter in leader.unacknowledged() {
            if self.requests.is_ready(voter, now) {
                self.send_request(voter, Request::BeginQuorumEpoch(request.clone()), now);
            }
        }
    }

    pub(super) fn handle_end_quorum_epoch_request(
        &mut self,
        request: &EndQuorumEpochRequest,
        now: u64,
    ) -> EndQuorumEpochResponse {
        if !self.cluster_id_matches(&request.cluster_id) {
            return EndQuorumEpochResponse {
                error: ErrorCode::INCONSISTENT_CLUSTER_ID,
                partition_error: ErrorCode::NONE,
                leader: self.leader_and_epoch(),
            };
        }
        let error = self.validate_voter_only(request.leader_id, request.leader_epoch);
        if error.is_none() {
            self.observe_leader(announced(request.leader_id, request.leader_epoch), now);
            let backoff = self.end_epoch_backoff(&request.preferred_successors);
            let same_leader = self.election.epoch == request.leader_epoch
                && self.election.leader_id == Some(request.leader_id);
            if let (RoleState::Follower(follower), true) = (&mut self.role, same_leader) {
                follower.leader_resigned = true;
                follower.fetch_deadline = follower.fetch_deadline.min(now + backoff);
            }
        }
        EndQuorumEpochResponse {
            error: ErrorCode::NONE,
            partition_error: error.unwrap_or(ErrorCode::NONE),
            leader: self.leader_and_epoch(),
        }
    }

    /// The first preferred successor stands at once, later ones after growing backoffs, so
    /// the best log usually wins without a split vote.
    fn end_epoch_backoff(&self, successors: &[i32]) -> u64 {
        let max = self.config.election_backoff_max_ms;
        match successors.iter().position(|&id| id == self.config.node_id) {
            Some(0) => 0,
            Some(position) => (self.config.retry_backoff_ms << (position - 1).min(20)).min(max),
            None => max,
        }
    }

    pub(super) fn handle_end_quorum_epoch_response(
        &mut self,
        from: i32,
        response: &EndQuorumEpochResponse,
        now: u64,
    ) {
        if self.acknowledged(
            from,
            response.error,
            response.partition_error,
            response.leader,
            now,
        ) {
            if let RoleState::Resigned(resigned) = &mut self.role {
                resigned.unacknowledged.remove(&from);
            }
        }
    }

    /// Whether a BeginQuorumEpoch or EndQuorumEpoch response acknowledges the announcement
    /// in the current epoch.
    fn acknowledged(
        &mut self,
        from: i32,
        error: ErrorCode,
        partition_error: ErrorCode,
        leader: LeaderAndEpoch,
        now: u64,
    ) -> bool {
        if !error.is_none() {
            self.back_off(from, now);
            return false;
        }
        !self.handle_common_response(partition_error, leader, now)
    }

    pub(super) fn send_end_quorum_epoch(&mut self, now: u64) {
        let RoleState::Resigned(resigned) = &self.role else {
            return;
        };
        let request = EndQuorumEpochRequest {
            cluster_id: Some(self.config.cluster_id.clone()),
            leader_id: self.config.node_id,
            leader_epoch: self.election.epoch,
            preferred_successors: resigned.successors.clone(),
        };
        let pending: Vec<i32> = resigned.unacknowledged.iter().copied().collect();
        for voter in pending {
            if self.requests.is_ready(voter, now) {
                self.send_request(voter, Request::EndQuorumEpoch(request.clone()), now);
            }
        }
    }
}

fn announced(leader_id: i32, epoch: i32) -> LeaderAndEpoch {
    LeaderAndEpoch {
        leader_id: Some(leader_id),
        epoch,
    }
}
