//! The Raft node: roles, transitions and the step/poll cycle every entry point goes through.

use std::collections::BTreeSet;
use std::io;
use std::mem;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::config::{ConfigError, RaftConfig};
use super::log::{Batch, BatchKind, RaftLog, SnapshotId};
use super::messages::{ErrorCode, LeaderAndEpoch, Message, Request, Response};
use super::quorum::{LeaderState, QuorumInfo};
use super::requests::RequestTracker;
use super::state::{ElectionState, Role};

/// What the driver must do after a call, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Write the election state durably before performing any later action.
    Persist(ElectionState),
    Send {
        to: i32,
        message: Message,
    },
    /// The known leadership changed (also emitted once at start-up).
    LeaderChanged {
        epoch: i32,
        leader: Option<i32>,
    },
    /// Entries below this offset are committed.
    HighWatermark(i64),
}

#[derive(Debug, thiserror::Error)]
pub enum RaftError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The log failed; the node must not be used any more.
    #[error("raft log: {0}")]
    Log(#[from] io::Error),
    #[error("not the leader (leader {:?} in epoch {})", .0.leader_id, .0.epoch)]
    NotLeader(LeaderAndEpoch),
    #[error("a proposal needs at least one record")]
    EmptyProposal,
}

/// Votes collected by a prospective (pre-vote) or candidate.
#[derive(Debug)]
pub(super) struct ElectionRound {
    pub granted: BTreeSet<i32>,
    pub rejected: BTreeSet<i32>,
    pub deadline: u64,
    /// A candidate that lost waits until then before trying again.
    pub backoff_until: Option<u64>,
}

/// A snapshot being downloaded from the leader.
#[derive(Debug)]
pub(super) struct SnapshotDownload {
    pub id: SnapshotId,
    pub position: u64,
    pub size: Option<u64>,
}

#[derive(Debug)]
pub(super) struct FollowerState {
    /// Without a successful fetch by then, the leader is presumed gone.
    pub fetch_deadline: u64,
    /// A fetch succeeded in this state: only then does the leader count as alive for
    /// pre-votes (a follower re-entered after a lost pre-vote has no such evidence).
    pub fetched: bool,
    /// The leader announced its resignation (EndQuorumEpoch).
    pub leader_resigned: bool,
    pub download: Option<SnapshotDownload>,
}

#[derive(Debug)]
pub(super) struct ResignedState {
    pub deadline: u64,
    pub successors: Vec<i32>,
    /// Voters that have not acknowledged EndQuorumEpoch yet.
    pub unacknowledged: BTreeSet<i32>,
}

#[derive(Debug)]
pub(super) enum RoleState {
    Unattached { election_deadline: u64 },
    Prospective(ElectionRound),
    Candidate(ElectionRound),
    Leader(LeaderState),
    Follower(FollowerState),
    Resigned(ResignedState),
}

/// Marks the start of a step so that persistence can be ordered ahead of its sends.
struct Step {
    actions_len: usize,
    election: ElectionState,
}

/// One member of the quorum; see the module documentation for how to drive it.
pub struct RaftNode<L> {
    pub(super) config: RaftConfig,
    pub(super) rng: StdRng,
    pub(super) log: L,
    pub(super) election: ElectionState,
    pub(super) role: RoleState,
    pub(super) high_watermark: i64,
    pub(super) requests: RequestTracker,
    /// Lost elections in a row; grows the backoff.
    pub(super) election_retries: u32,
    actions: Vec<Action>,
    announced: Option<(i32, Option<i32>)>,
    /// Counts role changes so that `poll` can run again after one.
    transitions: u64,
}

impl<L: RaftLog> RaftNode<L> {
    /// Starts a node from its persisted election state and its log, in the role Kafka's
    /// QuorumState picks: a former leader resigns, a former candidate asks for pre-votes, a
    /// follower resumes following.
    pub fn new(
        config: RaftConfig,
        persisted: ElectionState,
        log: L,
        now: u64,
    ) -> Result<Self, RaftError> {
        config.validate()?;
        let mut rng = StdRng::seed_from_u64(config.seed);
        let requests = RequestTracker::new(rng.random());
        let high_watermark = log.start().offset;
        let mut node = RaftNode {
            config,
            rng,
            log,
            election: persisted,
            role: RoleState::Unattached {
                election_deadline: now,
            },
            high_watermark,
            requests,
            election_retries: 0,
            actions: vec![Action::HighWatermark(high_watermark)],
            announced: None,
            transitions: 0,
        };
        node.run_step(now, |node| {
            node.resume(persisted, now);
            Ok(())
        })?;
        Ok(node)
    }

    fn resume(&mut self, persisted: ElectionState, now: u64) {
        let id = self.config.node_id;
        let log_epoch = self.log.last_epoch();
        if log_epoch > persisted.epoch {
            // The state file lags the log; Kafka trusts the log's epoch.
            self.become_unattached(log_epoch, None, now);
        } else if persisted.leader_id == Some(id) && self.is_voter() {
            self.become_resigned(now);
        } else if persisted.voted_for == Some(id) && self.is_voter() {
            self.become_prospective(now);
        } else if let Some(leader) = persisted.leader_id.filter(|&leader| leader != id) {
            self.become_follower(persisted.epoch, leader, now);
        } else {
            self.become_unattached(persisted.epoch, persisted.voted_for, now);
        }
    }

    /// Handles a message from node `from`.
    pub fn handle(&mut self, from: i32, message: Message, now: u64) -> Result<(), RaftError> {
        self.run_step(now, |node| match message {
            Message::Request { id, body } => node.handle_request(from, id, body, now),
            Message::Response { id, body } => node.handle_response(from, id, body, now),
        })
    }

    /// Lets timers fire; call at `next_deadline()` (calling earlier or more often is harmless).
    pub fn tick(&mut self, now: u64) -> Result<(), RaftError> {
        self.run_step(now, |_| Ok(()))
    }

    /// The request `request_id` sent to `to` cannot be delivered (e.g. connection refused):
    /// retry after the backoff instead of waiting for the request timeout.
    pub fn request_failed(&mut self, to: i32, request_id: u64, now: u64) -> Result<(), RaftError> {
        let until = now + self.config.retry_backoff_ms;
        self.run_step(now, |node| {
            node.requests.fail(to, request_id, until);
            Ok(())
        })
    }

    /// Appends `records` as one batch of the current epoch; returns the offset of the last
    /// record. It is committed once the high watermark passes that offset.
    pub fn propose(&mut self, records: Vec<Bytes>, now: u64) -> Result<i64, RaftError> {
        if records.is_empty() {
            return Err(RaftError::EmptyProposal);
        }
        if !matches!(self.role, RoleState::Leader(_)) {
            return Err(RaftError::NotLeader(self.leader_and_epoch()));
        }
        self.run_step(now, |node| {
            let batch = Batch {
                base_offset: node.log.end_offset(),
                epoch: node.election.epoch,
                kind: BatchKind::Data(records),
            };
            node.append_as_leader(batch, now)?;
            Ok(node.log.end_offset() - 1)
        })
    }

    /// Graceful hand-over: the leader stops leading and asks the voters to elect a successor
    /// at once (EndQuorumEpoch), the most up-to-date one first.
    pub fn resign(&mut self, now: u64) -> Result<(), RaftError> {
        if !matches!(self.role, RoleState::Leader(_)) {
            return Err(RaftError::NotLeader(self.leader_and_epoch()));
        }
        self.run_step(now, |node| {
            node.become_resigned(now);
            Ok(())
        })
    }

    /// When `tick` must be called next; `u64::MAX` when only a message can change anything.
    pub fn next_deadline(&self) -> u64 {
        let role = match &self.role {
            RoleState::Unattached { election_deadline } => {
                self.is_voter().then_some(*election_deadline)
            }
            RoleState::Prospective(round) | RoleState::Candidate(round) => {
                Some(round.backoff_until.unwrap_or(round.deadline))
            }
            RoleState::Leader(leader) => {
                let parked = leader.parked.iter().map(|fetch| fetch.deadline).min();
                let quorum = leader.check_quorum_deadline(self.check_quorum_timeout());
                parked.into_iter().chain(quorum).min()
            }
            RoleState::Follower(follower) => Some(follower.fetch_deadline),
            RoleState::Resigned(resigned) => Some(resigned.deadline),
        };
        role.into_iter()
            .chain(self.requests.next_deadline())
            .min()
            .unwrap_or(u64::MAX)
    }

    /// Takes the actions produced so far, oldest first.
    pub fn drain_actions(&mut self) -> Vec<Action> {
        mem::take(&mut self.actions)
    }

    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }

    pub fn role(&self) -> Role {
        match &self.role {
            RoleState::Unattached { .. } if self.election.voted_for.is_some() => Role::Voted,
            RoleState::Unattached { .. } => Role::Unattached,
            RoleState::Prospective(_) => Role::Prospective,
            RoleState::Candidate(_) => Role::Candidate,
            RoleState::Leader(_) => Role::Leader,
            RoleState::Follower(_) => Role::Follower,
            RoleState::Resigned(_) => Role::Resigned,
        }
    }

    pub fn epoch(&self) -> i32 {
        self.election.epoch
    }

    pub fn leader_id(&self) -> Option<i32> {
        self.election.leader_id
    }

    pub fn election_state(&self) -> ElectionState {
        self.election
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    pub fn log(&self) -> &L {
        &self.log
    }

    /// For the driver's snapshotting only: it may replace a prefix below the high watermark
    /// with a snapshot; any other change breaks Raft.
    pub fn log_mut(&mut self) -> &mut L {
        &mut self.log
    }

    pub fn into_log(self) -> L {
        self.log
    }

    /// DescribeQuorum as the leader sees it; `None` on other nodes.
    pub fn quorum_info(&self, now: u64) -> Option<QuorumInfo> {
        let RoleState::Leader(leader) = &self.role else {
            return None;
        };
        let (mut voters, observers) = leader.replicas();
        if let Some(local) = voters
            .iter_mut()
            .find(|r| r.replica_id == self.config.node_id)
        {
            local.last_fetch_ms = Some(now);
            local.last_caught_up_ms = Some(now);
        }
        Some(QuorumInfo {
            leader_id: self.config.node_id,
            leader_epoch: self.election.epoch,
            high_watermark: self.high_watermark,
            voters,
            observers,
        })
    }

    // ---- steps ----

    fn run_step<T>(
        &mut self,
        now: u64,
        work: impl FnOnce(&mut Self) -> Result<T, RaftError>,
    ) -> Result<T, RaftError> {
        let step = Step {
            actions_len: self.actions.len(),
            election: self.election,
        };
        let result = work(self).and_then(|value| {
            self.poll(now)?;
            Ok(value)
        });
        if self.election != step.election {
            self.actions
                .insert(step.actions_len, Action::Persist(self.election));
        }
        let leadership = (self.election.epoch, self.election.leader_id);
        if self.announced != Some(leadership) {
            self.announced = Some(leadership);
            self.actions.push(Action::LeaderChanged {
                epoch: leadership.0,
                leader: leadership.1,
            });
        }
        result
    }

    fn handle_request(
        &mut self,
        from: i32,
        id: u64,
        body: Request,
        now: u64,
    ) -> Result<(), RaftError> {
        let response = match body {
            Request::Vote(request) => Response::Vote(self.handle_vote_request(&request, now)),
            Request::BeginQuorumEpoch(request) => {
                Response::BeginQuorumEpoch(self.handle_begin_quorum_epoch_request(&request, now))
            }
            Request::EndQuorumEpoch(request) => {
                Response::EndQuorumEpoch(self.handle_end_quorum_epoch_request(&request, now))
            }
            Request::Fetch(request) => return self.handle_fetch_request(from, id, request, now),
            Request::FetchSnapshot(request) => {
                Response::FetchSnapshot(self.handle_fetch_snapshot_request(&request, now)?)
            }
        };
        self.respond(from, id, response);
        Ok(())
    }

    fn handle_response(
        &mut self,
        from: i32,
        id: u64,
        body: Response,
        now: u64,
    ) -> Result<(), RaftError> {
        if !self.requests.complete(from, id) {
            tracing::debug!(from, id, "dropping a response to no request in flight");
            return Ok(());
        }
        match body {
            Response::Vote(response) => self.handle_vote_response(from, &response, now),
            Response::BeginQuorumEpoch(response) => {
                self.handle_begin_quorum_epoch_response(from, &response, now)
            }
            Response::EndQuorumEpoch(response) => {
                self.handle_end_quorum_epoch_response(from, &response, now)
            }
            Response::Fetch(response) => return self.handle_fetch_response(from, response, now),
            Response::FetchSnapshot(response) => {
                return self.handle_fetch_snapshot_response(from, response, now)
            }
        }
        Ok(())
    }

    /// Runs the current role's timers and sends; again after each role change.
    fn poll(&mut self, now: u64) -> Result<(), RaftError> {
        self.requests
            .expire(now, now + self.config.retry_backoff_ms);
        loop {
            let transitions = self.transitions;
            match &self.role {
                RoleState::Unattached { election_deadline } => {
                    if !self.is_voter() {
                        self.fetch_from_any_voter(now);
                    } else if now >= *election_deadline {
                        self.become_prospective(now);
                    }
                }
                RoleState::Prospective(_) | RoleState::Candidate(_) => self.poll_election(now)?,
                RoleState::Leader(_) => self.poll_leader(now)?,
                RoleState::Follower(follower) => {
                    if now < follower.fetch_deadline {
                        self.fetch_from_leader(now);
                    } else if self.is_voter() {
                        self.become_prospective(now);
                    } else {
                        self.become_unattached(self.election.epoch, None, now);
                    }
                }
                RoleState::Resigned(resigned) => {
                    if now < resigned.deadline {
                        self.send_end_quorum_epoch(now);
                    } else if self.is_voter() {
                        self.become_prospective(now);
                    } else {
                        self.become_unattached(self.election.epoch, None, now);
                    }
                }
            }
            if self.transitions == transitions {
                return Ok(());
            }
        }
    }

    // ---- transitions ----

    fn transition(&mut self, election: ElectionState, role: RoleState) {
        let parked = match &mut self.role {
            RoleState::Leader(leader) => mem::take(&mut leader.parked),
            _ => Vec::new(),
        };
        self.election = election;
        self.role = role;
        self.requests.reset();
        self.transitions += 1;
        // Fetches parked by a former leader are answered with where leadership went.
        for fetch in parked {
            let error = self
                .validate_leader_only(fetch.request.current_leader_epoch)
                .unwrap_or(ErrorCode::NOT_LEADER_OR_FOLLOWER);
            let response = self.fetch_error(ErrorCode::NONE, error);
            self.respond(fetch.from, fetch.id, Response::Fetch(response));
        }
    }

    pub(super) fn become_unattached(&mut self, epoch: i32, voted_for: Option<i32>, now: u64) {
        let election_deadline = now + self.random_election_timeout();
        let election = ElectionState {
            epoch,
            voted_for,
            leader_id: None,
        };
        self.transition(election, RoleState::Unattached { election_deadline });
    }

    pub(super) fn become_follower(&mut self, epoch: i32, leader: i32, now: u64) {
        let voted_for = if epoch == self.election.epoch {
            self.election.voted_for
        } else {
            None
        };
        let election = ElectionState {
            epoch,
            voted_for,
            leader_id: Some(leader),
        };
        self.election_retries = 0;
        let follower = FollowerState {
            fetch_deadline: now + self.config.fetch_timeout_ms,
            fetched: false,
            leader_resigned: false,
            download: None,
        };
        self.transition(election, RoleState::Follower(follower));
    }

    pub(super) fn become_prospective(&mut self, now: u64) {
        let round = self.new_round(now);
        self.transition(self.election, RoleState::Prospective(round));
    }

    pub(super) fn become_candidate(&mut self, now: u64) {
        let election = ElectionState {
            epoch: self.election.epoch + 1,
            voted_for: Some(self.config.node_id),
            leader_id: None,
        };
        let round = self.new_round(now);
        self.transition(election, RoleState::Candidate(round));
    }

    /// Takes the lead: writes the leader-change entry that opens the epoch.
    pub(super) fn become_leader(&mut self, now: u64) -> Result<(), RaftError> {
        let id = self.config.node_id;
        let election = ElectionState {
            leader_id: Some(id),
            ..self.election
        };
        let epoch_start = self.log.end_offset();
        let leader = LeaderState::new(id, &self.config.voters, epoch_start, now);
        self.election_retries = 0;
        self.transition(election, RoleState::Leader(leader));
        tracing::info!(node = id, epoch = election.epoch, "elected leader");
        let batch = Batch {
            base_offset: epoch_start,
            epoch: election.epoch,
            kind: BatchKind::LeaderChange {
                leader_id: id,
                voters: self.config.voters.iter().copied().collect(),
            },
        };
        self.append_as_leader(batch, now)
    }

    pub(super) fn become_resigned(&mut self, now: u64) {
        let id = self.config.node_id;
        let successors = match &self.role {
            RoleState::Leader(leader) => leader.successors(),
            _ => self.other_voters().collect(),
        };
        let resigned = ResignedState {
            deadline: now + self.random_election_timeout(),
            successors,
            unacknowledged: self.other_voters().collect(),
        };
        let election = ElectionState {
            leader_id: Some(id),
            ..self.election
        };
        self.transition(election, RoleState::Resigned(resigned));
    }

    /// Moves to a newer epoch, or learns the leader of the current one, as a response or
    /// request reports it (Kafka's `maybeTransition`).
    pub(super) fn observe_leader(&mut self, leader: LeaderAndEpoch, now: u64) {
        let leader_id = leader.leader_id.filter(|&l| l != self.config.node_id);
        if leader.epoch > self.election.epoch {
            match leader_id {
                Some(l) => self.become_follower(leader.epoch, l, now),
                None => self.become_unattached(leader.epoch, None, now),
            }
        } else if leader.epoch == self.election.epoch {
            match (leader_id, self.election.leader_id) {
                (Some(l), None) => self.become_follower(leader.epoch, l, now),
                (Some(l), Some(known)) if l != known => {
                    tracing::warn!(
                        epoch = leader.epoch,
                        l,
                        known,
                        "conflicting leaders reported"
                    )
                }
                _ => {}
            }
        }
    }

    // ---- helpers shared by the role files ----

    pub(super) fn is_voter(&self) -> bool {
        self.config.is_voter(self.config.node_id)
    }

    pub(super) fn other_voters(&self) -> impl Iterator<Item = i32> + '_ {
        let id = self.config.node_id;
        self.config.voters.iter().copied().filter(move |&v| v != id)
    }

    pub(super) fn leader_and_epoch(&self) -> LeaderAndEpoch {
        LeaderAndEpoch {
            leader_id: self.election.leader_id,
            epoch: self.election.epoch,
        }
    }

    pub(super) fn cluster_id_matches(&self, cluster_id: &Option<String>) -> bool {
        cluster_id
            .as_deref()
            .is_none_or(|id| id == self.config.cluster_id)
    }

    /// Kafka's `validateVoterOnlyRequest`.
    pub(super) fn validate_voter_only(&self, remote: i32, epoch: i32) -> Option<ErrorCode> {
        if epoch < self.election.epoch {
            Some(ErrorCode::FENCED_LEADER_EPOCH)
        } else if remote < 0 {
            Some(ErrorCode::INVALID_REQUEST)
        } else if !self.is_voter() || !self.config.is_voter(remote) {
            Some(ErrorCode::INCONSISTENT_VOTER_SET)
        } else {
            None
        }
    }

    /// Kafka's `validateLeaderOnlyRequest`.
    pub(super) fn validate_leader_only(&self, epoch: i32) -> Option<ErrorCode> {
        if epoch < self.election.epoch {
            Some(ErrorCode::FENCED_LEADER_EPOCH)
        } else if epoch > self.election.epoch {
            Some(ErrorCode::UNKNOWN_LEADER_EPOCH)
        } else if !matches!(self.role, RoleState::Leader(_)) {
            Some(ErrorCode::NOT_LEADER_OR_FOLLOWER)
        } else {
            None
        }
    }

    /// Kafka's `maybeHandleCommonResponse`: applies what a response says about epochs and
    /// leaders. Returns true when the response needs no further handling.
    pub(super) fn handle_common_response(
        &mut self,
        error: ErrorCode,
        leader: LeaderAndEpoch,
        now: u64,
    ) -> bool {
        if leader.epoch < self.election.epoch || error == ErrorCode::UNKNOWN_LEADER_EPOCH {
            true
        } else if leader.epoch > self.election.epoch
            || error == ErrorCode::FENCED_LEADER_EPOCH
            || error == ErrorCode::NOT_LEADER_OR_FOLLOWER
        {
            self.observe_leader(leader, now);
            true
        } else if leader.leader_id.is_some() && self.election.leader_id.is_none() {
            self.observe_leader(leader, now);
            !error.is_none()
        } else {
            false
        }
    }

    pub(super) fn respond(&mut self, to: i32, id: u64, body: Response) {
        let message = Message::Response { id, body };
        self.actions.push(Action::Send { to, message });
    }

    pub(super) fn send_request(&mut self, to: i32, body: Request, now: u64) {
        let id = self.requests.start(to, now, self.config.request_timeout_ms);
        let message = Message::Request { id, body };
        self.actions.push(Action::Send { to, message });
    }

    pub(super) fn back_off(&mut self, to: i32, now: u64) {
        self.requests
            .back_off(to, now + self.config.retry_backoff_ms);
    }

    /// Raises the high watermark; it never moves back within a node's lifetime.
    pub(super) fn advance_high_watermark(&mut self, offset: i64) {
        if offset > self.high_watermark {
            self.high_watermark = offset;
            self.actions.push(Action::HighWatermark(offset));
        }
    }

    pub(super) fn check_quorum_timeout(&self) -> u64 {
        self.config.fetch_timeout_ms * 3 / 2
    }

    pub(super) fn random_election_timeout(&mut self) -> u64 {
        let base = self.config.election_timeout_ms;
        base + self.rng.random_range(0..base)
    }

    /// Randomized, growing with the lost elections in a row, capped by the config; at least
    /// 1 ms so that it always ends in a later tick.
    pub(super) fn random_election_backoff(&mut self) -> u64 {
        let shift = self.election_retries.min(20);
        let cap = (self.config.retry_backoff_ms << shift).min(self.config.election_backoff_max_ms);
        self.rng.random_range(1..=cap.max(1))
    }

    fn new_round(&mut self, now: u64) -> ElectionRound {
        ElectionRound {
            granted: [self.config.node_id].into(),
            rejected: BTreeSet::new(),
            deadline: now + self.random_election_timeout(),
            backoff_until: None,
        }
    }
}
