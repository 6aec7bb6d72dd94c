//! Rule-level tests of `RaftNode`: small clusters wired by instant, lossless delivery.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::*;

const CLUSTER: &str = "test-cluster";

fn config(id: i32, voters: &[i32]) -> RaftConfig {
    let mut config = RaftConfig::new(id, voters.iter().copied().collect(), CLUSTER, id as u64);
    config.snapshot_chunk_bytes = 4;
    config
}

fn node(id: i32, voters: &[i32]) -> RaftNode<MemoryRaftLog> {
    RaftNode::new(
        config(id, voters),
        ElectionState::default(),
        MemoryRaftLog::new(),
        0,
    )
    .unwrap()
}

struct Cluster {
    nodes: BTreeMap<i32, RaftNode<MemoryRaftLog>>,
}

impl Cluster {
    /// `voters` plus `observers`, with node 1 elected leader of epoch 1.
    fn with_leader(voters: &[i32], observers: &[i32]) -> Self {
        let ids = voters.iter().chain(observers);
        let nodes = ids.map(|&id| (id, node(id, voters))).collect();
        let mut cluster = Cluster { nodes };
        cluster.node(1).tick(2000).unwrap();
        cluster.deliver_all(2000);
        assert_eq!(cluster.nodes[&1].role(), Role::Leader);
        cluster
    }

    fn node(&mut self, id: i32) -> &mut RaftNode<MemoryRaftLog> {
        self.nodes.get_mut(&id).unwrap()
    }

    /// Delivers messages until none are left (parked fetches stay parked).
    fn deliver_all(&mut self, now: u64) {
        loop {
            let mut sends = Vec::new();
            for (&id, node) in &mut self.nodes {
                for action in node.drain_actions() {
                    if let Action::Send { to, message } = action {
                        sends.push((id, to, message));
                    }
                }
            }
            if sends.is_empty() {
                return;
            }
            for (from, to, message) in sends {
                if let Some(node) = self.nodes.get_mut(&to) {
                    node.handle(from, message, now).unwrap();
                }
            }
        }
    }
}

/// Sends `body` to `node` as request 77 and returns the response, if any was sent.
fn ask(node: &mut RaftNode<MemoryRaftLog>, from: i32, body: Request, now: u64) -> Option<Response> {
    node.drain_actions();
    node.handle(from, Message::Request { id: 77, body }, now)
        .unwrap();
    node.drain_actions()
        .into_iter()
        .find_map(|action| match action {
            Action::Send {
                to,
                message: Message::Response { id: 77, body },
            } if to == from => Some(body),
            _ => None,
        })
}

fn vote(candidate_id: i32, epoch: i32, last: (i32, i64), pre_vote: bool) -> Request {
    Request::Vote(VoteRequest {
        cluster_id: Some(CLUSTER.into()),
        candidate_epoch: epoch,
        candidate_id,
        last_offset_epoch: last.0,
        last_offset: last.1,
        pre_vote,
    })
}

fn vote_result(response: Option<Response>) -> (ErrorCode, ErrorCode, bool) {
    match response {
        Some(Response::Vote(r)) => (r.error, r.partition_error, r.vote_granted),
        other => panic!("expected a vote response, got {other:?}"),
    }
}

fn fetch(replica_id: i32, epoch: i32, offset: i64, last_epoch: i32) -> Request {
    Request::Fetch(FetchRequest {
        cluster_id: Some(CLUSTER.into()),
        replica_id,
        max_wait_ms: 500,
        max_bytes: 1 << 20,
        current_leader_epoch: epoch,
        fetch_offset: offset,
        last_fetched_epoch: last_epoch,
    })
}

fn records(values: &[&'static str]) -> Vec<Bytes> {
    values
        .iter()
        .map(|v| Bytes::from_static(v.as_bytes()))
        .collect()
}

#[test]
fn a_single_voter_elects_itself_and_commits_alone() {
    let mut solo = node(1, &[1]);
    assert_eq!(solo.role(), Role::Unattached);
    solo.drain_actions();
    solo.tick(2000).unwrap();
    assert_eq!((solo.role(), solo.epoch()), (Role::Leader, 1));
    let actions = solo.drain_actions();
    assert!(matches!(
        actions[0],
        Action::Persist(ElectionState {
            epoch: 1,
            voted_for: Some(1),
            leader_id: Some(1)
        })
    ));
    assert!(actions.contains(&Action::LeaderChanged {
        epoch: 1,
        leader: Some(1)
    }));
    assert_eq!(solo.high_watermark(), 1, "the leader-change entry commits");
    assert_eq!(solo.propose(records(&["a", "b"]), 2001).unwrap(), 2);
    assert_eq!(solo.high_watermark(), 3);
    assert!(matches!(
        solo.propose(Vec::new(), 2002),
        Err(RaftError::EmptyProposal)
    ));
}

#[test]
fn a_leader_replicates_and_commits_on_a_majority() {
    let mut cluster = Cluster::with_leader(&[1, 2, 3], &[4]);
    for id in [2, 3] {
        assert_eq!(cluster.nodes[&id].role(), Role::Follower);
        assert_eq!(cluster.nodes[&id].leader_id(), Some(1));
    }
    let last = cluster.node(1).propose(records(&["x"]), 2100).unwrap();
    cluster.deliver_all(2100);
    // Followers learn the new high watermark with their next fetch, at the latest when the
    // parked one expires.
    cluster.node(1).tick(2600).unwrap();
    cluster.deliver_all(2600);
    for id in [1, 2, 3, 4] {
        assert_eq!(cluster.nodes[&id].high_watermark(), last + 1, "node {id}");
    }
    assert_eq!(
        cluster.nodes[&4].leader_id(),
        Some(1),
        "the observer found the leader"
    );
    let info = cluster.nodes[&1].quorum_info(2100).unwrap();
    assert_eq!(info.voters.len(), 3);
    assert_eq!(info.observers[0].replica_id, 4);
    assert_eq!(info.observers[0].log_end_offset, last + 1);
    assert!(cluster.nodes[&2].quorum_info(2100).is_none());
}

#[test]
fn a_vote_is_persisted_before_it_is_sent() {
    let mut voter = node(2, &[1, 2, 3]);
    voter.drain_actions();
    voter
        .handle(
            1,
            Message::Request {
                id: 5,
                body: vote(1, 1, (0, 0), false),
            },
            10,
        )
        .unwrap();
    let actions = voter.drain_actions();
    let persisted = actions
        .iter()
        .position(|a| matches!(a, Action::Persist(s) if s.voted_for == Some(1)));
    let sent = actions
        .iter()
        .position(|a| matches!(a, Action::Send { .. }));
    assert!(persisted.unwrap() < sent.unwrap(), "{actions:?}");
}

#[test]
fn one_vote_per_epoch_and_only_for_an_up_to_date_log() {
    let mut voter = node(2, &[1, 2, 3]);
    assert_eq!(
        vote_result(ask(&mut voter, 1, vote(1, 1, (0, 0), false), 10)),
        (ErrorCode::NONE, ErrorCode::NONE, true)
    );
    assert_eq!(voter.role(), Role::Voted);
    assert!(
        vote_result(ask(&mut voter, 1, vote(1, 1, (0, 0), false), 11)).2,
        "the same candidate again"
    );
    assert!(
        !vote_result(ask(&mut voter, 3, vote(3, 1, (0, 0), false), 12)).2,
        "a second candidate"
    );
    // A later epoch frees the vote, but a candidate must have at least this log.
    let mut voter = node(2, &[1, 2, 3]);
    voter.tick(2000).unwrap(); // becomes prospective; its log stays empty
    let mut leader = Cluster::with_leader(&[1, 2, 3], &[]);
    leader.node(1).propose(records(&["x"]), 2001).unwrap();
    leader.deliver_all(2001);
    let follower = leader.node(2);
    let stale = vote_result(ask(follower, 3, vote(3, 2, (0, 0), false), 2002));
    assert_eq!(stale, (ErrorCode::NONE, ErrorCode::NONE, false));
    assert_eq!(
        follower.epoch(),
        2,
        "a standard vote of a later epoch is adopted"
    );
}

#[test]
fn requests_are_checked_for_epoch_voter_set_and_cluster() {
    let mut cluster = Cluster::with_leader(&[1, 2, 3], &[4]);
    let leader = cluster.node(1);
    assert_eq!(
        vote_result(ask(leader, 2, vote(2, 0, (0, 0), false), 2001)).1,
        ErrorCode::FENCED_LEADER_EPOCH
    );
    assert_eq!(
        vote_result(ask(leader, 4, vote(4, 2, (9, 9), false), 2001)).1,
        ErrorCode::INCONSISTENT_VOTER_SET
    );
    let Request::Vote(mut foreign) = vote(2, 2, (9, 9), false) else {
        unreachable!()
    };
    foreign.cluster_id = Some("other".into());
    assert_eq!(
        vote_result(ask(leader, 2, Request::Vote(foreign), 2001)).0,
        ErrorCode::INCONSISTENT_CLUSTER_ID
    );
    assert_eq!(
        (leader.role(), leader.epoch()),
        (Role::Leader, 1),
        "rejected requests change nothing"
    );
    let observer = cluster.node(4);
    assert_eq!(
        vote_result(ask(observer, 2, vote(2, 2, (9, 9), false), 2001)).1,
        ErrorCode::INCONSISTENT_VOTER_SET
    );
    let follower = cluster.node(2);
    let Some(Response::Fetch(response)) = ask(follower, 3, fetch(3, 1, 0, 0), 2001) else {
        panic!()
    };
    assert_eq!(response.partition_error, ErrorCode::NOT_LEADER_OR_FOLLOWER);
    assert_eq!(
        response.current_leader,
        LeaderAndEpoch {
            leader_id: Some(1),
            epoch: 1
        }
    );
}

#[test]
fn pre_votes_leave_the_epoch_alone_and_respect_a_live_leader() {
    let mut cluster = Cluster::with_leader(&[1, 2, 3], &[]);
    let follower = cluster.node(2);
    let end = (1, follower.log().end_offset());
    assert!(
        !vote_result(ask(follower, 3, vote(3, 2, end, true), 2001)).2,
        "the leader is alive"
    );
    // No successful fetch for the fetch timeout: the leader counts as gone.
    follower.tick(4100).unwrap();
    assert_eq!(follower.role(), Role::Prospective);
    assert!(vote_result(ask(follower, 3, vote(3, 2, end, true), 4101)).2);
    assert_eq!(follower.epoch(), 1, "a pre-vote never bumps the epoch");
}

#[test]
fn a_fetch_with_nothing_new_is_parked_until_data_or_max_wait() {
    let mut cluster = Cluster::with_leader(&[1, 2, 3], &[]);
    let end = cluster.nodes[&1].log().end_offset();
    let leader = cluster.node(1);
    assert_eq!(ask(leader, 9, fetch(9, 1, end, 1), 3000), None, "parked");
    assert!(leader.next_deadline() <= 3500);
    leader
        .handle(
            9,
            Message::Request {
                id: 8,
                body: fetch(9, 1, end, 1),
            },
            3000,
        )
        .unwrap();
    leader.propose(records(&["new"]), 3100).unwrap();
    let answered = leader.drain_actions().into_iter().find_map(|a| match a {
        Action::Send {
            message:
                Message::Response {
                    id: 8,
                    body: Response::Fetch(r),
                },
            ..
        } => Some(r),
        _ => None,
    });
    assert_eq!(answered.unwrap().batches.len(), 1, "woken by the proposal");
    assert_eq!(ask(leader, 9, fetch(9, 1, end + 1, 1), 3200), None);
    leader.tick(3700).unwrap();
    let expired = leader.drain_actions().into_iter().any(|a| {
        matches!(a, Action::Send { message: Message::Response { id: 77, body: Response::Fetch(ref r) }, .. } if r.batches.is_empty())
    });
    assert!(expired, "answered empty at max wait");
}

#[test]
fn the_leader_reports_divergence_and_commits_only_through_its_own_epoch() {
    let mut cluster = Cluster::with_leader(&[1, 2, 3], &[]);
    let leader = cluster.node(1);
    // Epoch 1 started at offset 0 with the leader-change entry; a follower claiming
    // epoch-0 entries up to offset 3 diverges at 0.
    let Some(Response::Fetch(response)) = ask(leader, 2, fetch(2, 1, 3, 0), 2001) else {
        panic!()
    };
    assert_eq!(response.diverging_epoch, Some(OffsetAndEpoch::new(0, 0)));
    let Some(Response::Fetch(response)) = ask(leader, 2, fetch(2, 0, 0, 0), 2001) else {
        panic!()
    };
    assert_eq!(response.partition_error, ErrorCode::FENCED_LEADER_EPOCH);
    let Some(Response::Fetch(response)) = ask(leader, 2, fetch(2, 5, 0, 0), 2001) else {
        panic!()
    };
    assert_eq!(response.partition_error, ErrorCode::UNKNOWN_LEADER_EPOCH);
    let Some(Response::Fetch(response)) = ask(leader, 2, fetch(2, 1, 0, 2), 2001) else {
        panic!()
    };
    assert_eq!(response.partition_error, ErrorCode::INVALID_REQUEST);
}

#[test]
fn a_lagging_observer_catches_up_through_a_snapshot_in_chunks() {
    let mut cluster = Cluster::with_leader(&[1, 2, 3], &[]);
    cluster
        .node(1)
        .propose(records(&["a", "b", "c"]), 2100)
        .unwrap();
    cluster.deliver_all(2100);
    let high_watermark = cluster.nodes[&1].high_watermark();
    let id = cluster
        .node(1)
        .log_mut()
        .create_snapshot(high_watermark, Bytes::from_static(b"snapshot-state"))
        .unwrap();
    cluster.node(1).propose(records(&["d"]), 2200).unwrap();
    cluster.nodes.insert(4, node(4, &[1, 2, 3]));
    cluster.deliver_all(2200);
    let observer = &cluster.nodes[&4];
    assert_eq!(observer.log().start(), id);
    assert_eq!(
        observer.log().snapshot().unwrap().1.as_ref(),
        b"snapshot-state"
    );
    assert_eq!(observer.log().end_offset(), high_watermark + 1);
    assert_eq!(observer.high_watermark(), high_watermark + 1);

    let leader = cluster.node(1);
    let bad = |position, snapshot_id| {
        Request::FetchSnapshot(FetchSnapshotRequest {
            cluster_id: None,
            replica_id: 4,
            max_bytes: 100,
            current_leader_epoch: 1,
            snapshot_id,
            position,
        })
    };
    let Some(Response::FetchSnapshot(r)) = ask(leader, 4, bad(0, SnapshotId::new(1, 1)), 2300)
    else {
        panic!()
    };
    assert_eq!(r.partition_error, ErrorCode::SNAPSHOT_NOT_FOUND);
    let Some(Response::FetchSnapshot(r)) = ask(leader, 4, bad(99, id), 2300) else {
        panic!()
    };
    assert_eq!(r.partition_error, ErrorCode::POSITION_OUT_OF_RANGE);
}

#[test]
fn resigning_hands_over_to_the_best_successor_at_once() {
    let mut cluster = Cluster::with_leader(&[1, 2, 3], &[]);
    cluster.node(1).resign(3000).unwrap();
    assert_eq!(cluster.nodes[&1].role(), Role::Resigned);
    cluster.deliver_all(3000);
    // The first successor's fetch deadline is now: one tick starts its election.
    for id in [2, 3] {
        cluster.node(id).tick(3000).unwrap();
    }
    cluster.deliver_all(3000);
    let leaders: Vec<i32> = cluster
        .nodes
        .values()
        .filter(|n| n.role() == Role::Leader)
        .map(|n| n.node_id())
        .collect();
    assert_eq!(leaders.len(), 1, "{leaders:?}");
    assert_eq!(cluster.nodes[&leaders[0]].epoch(), 2);
    assert!(
        matches!(cluster.node(2).resign(3001), Err(RaftError::NotLeader(_))) || leaders[0] == 2
    );
}

#[test]
fn a_leader_cut_off_from_the_majority_resigns() {
    let mut cluster = Cluster::with_leader(&[1, 2, 3], &[]);
    let leader = cluster.node(1);
    leader.tick(2000 + 2999).unwrap();
    assert_eq!(leader.role(), Role::Leader);
    leader.tick(2000 + 3000).unwrap();
    assert_eq!(leader.role(), Role::Resigned);
}

#[test]
fn restarts_resume_the_persisted_role() {
    let voters = [1, 2, 3];
    let start = |state| {
        RaftNode::new(config(1, &voters), state, MemoryRaftLog::new(), 0)
            .unwrap()
            .role()
    };
    let state = |voted_for, leader_id| ElectionState {
        epoch: 3,
        voted_for,
        leader_id,
    };
    assert_eq!(start(state(Some(1), Some(1))), Role::Resigned);
    assert_eq!(start(state(Some(1), None)), Role::Prospective);
    assert_eq!(start(state(Some(2), None)), Role::Voted);
    assert_eq!(start(state(None, Some(2))), Role::Follower);
    assert!(RaftNode::new(
        config(1, &[]),
        ElectionState::default(),
        MemoryRaftLog::new(),
        0
    )
    .is_err());
}

#[test]
fn observers_never_stand_for_election() {
    let mut observer = node(4, &[1, 2, 3]);
    for now in [2000, 5000, 20_000] {
        observer.tick(now).unwrap();
        assert_eq!(observer.role(), Role::Unattached);
    }
    let asked_votes = observer.drain_actions().iter().any(|a| {
        matches!(
            a,
            Action::Send {
                message: Message::Request {
                    body: Request::Vote(_),
                    ..
                },
                ..
            }
        )
    });
    assert!(!asked_votes);
}

#[test]
fn responses_to_no_request_in_flight_are_ignored() {
    let mut cluster = Cluster::with_leader(&[1, 2, 3], &[]);
    let follower = cluster.node(2);
    let bogus = Response::Vote(VoteResponse {
        error: ErrorCode::NONE,
        partition_error: ErrorCode::NONE,
        leader: LeaderAndEpoch {
            leader_id: Some(3),
            epoch: 9,
        },
        vote_granted: true,
    });
    follower
        .handle(
            3,
            Message::Response {
                id: 12345,
                body: bogus,
            },
            2001,
        )
        .unwrap();
    assert_eq!((follower.epoch(), follower.leader_id()), (1, Some(1)));
}
