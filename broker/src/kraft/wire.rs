//! The Raft core's messages as Kafka RPCs on `__cluster_metadata-0`: requests
//! and responses in both directions. Outbound requests fill the newest
//! version's fields (peers run this binary, and the client sends the highest
//! version both sides serve); inbound ones accept every version we advertise.

use kafka_protocol::messages::{
    begin_quorum_epoch_request as bqe_req, begin_quorum_epoch_response as bqe_resp,
    end_quorum_epoch_request as eqe_req, end_quorum_epoch_response as eqe_resp,
    fetch_request as fetch_req, fetch_response as fetch_resp, fetch_snapshot_request as fs_req,
    fetch_snapshot_response as fs_resp, vote_request as vote_req, vote_response as vote_resp,
    ApiKey, BeginQuorumEpochRequest, BeginQuorumEpochResponse, BrokerId, EndQuorumEpochRequest,
    EndQuorumEpochResponse, FetchRequest, FetchResponse, FetchSnapshotRequest,
    FetchSnapshotResponse, TopicName, VoteRequest, VoteResponse,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::disk_log::METADATA_TOPIC;
use super::records::{decode_batches, encode_batches};
use crate::raft::{self, ErrorCode, LeaderAndEpoch, OffsetAndEpoch};

/// Kafka's fixed topic id of `__cluster_metadata` ("AAAAAAAAAAAAAAAAAAAAAQ").
pub const METADATA_TOPIC_ID: Uuid = Uuid::from_u128(1);

/// The Raft RPC versions the controller listener serves.
pub const RAFT_API_VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Vote, 0, 2),
    (ApiKey::BeginQuorumEpoch, 0, 1),
    (ApiKey::EndQuorumEpoch, 0, 1),
    (ApiKey::FetchSnapshot, 0, 1),
];

/// Fetch versions of the metadata partition: topic ids (13+) and the replica
/// state field (15+), so replica ids are always explicit.
pub const RAFT_FETCH_VERSIONS: (i16, i16) = (15, 17);

/// A message that does not address `__cluster_metadata-0` exactly once.
#[derive(Debug, thiserror::Error)]
#[error("raft {api:?} message does not address {METADATA_TOPIC}-0: {reason}")]
pub struct WireError {
    pub api: ApiKey,
    pub reason: String,
}

fn wire_error(api: ApiKey, reason: impl Into<String>) -> WireError {
    WireError {
        api,
        reason: reason.into(),
    }
}

/// The one partition of a one-topic message.
fn only<'a, T, P>(
    api: ApiKey,
    topics: &'a [T],
    partitions: impl Fn(&'a T) -> &'a [P],
    index: impl Fn(&P) -> i32,
) -> Result<&'a P, WireError> {
    match topics {
        [topic] => match partitions(topic) {
            [partition] if index(partition) == 0 => Ok(partition),
            _ => Err(wire_error(api, "expected partition 0 only")),
        },
        _ => Err(wire_error(api, "expected exactly one topic")),
    }
}

fn cluster_id(id: &Option<StrBytes>) -> Option<String> {
    id.as_ref().map(|s| s.to_string())
}

fn str(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn topic_name() -> TopicName {
    TopicName(StrBytes::from_static_str(METADATA_TOPIC))
}

fn leader(leader_id: BrokerId, epoch: i32) -> LeaderAndEpoch {
    LeaderAndEpoch {
        leader_id: (leader_id.0 >= 0).then_some(leader_id.0),
        epoch,
    }
}

fn leader_id(leader: LeaderAndEpoch) -> BrokerId {
    BrokerId(leader.leader_id.unwrap_or(-1))
}

// ---- Vote ----

pub fn vote_request_out(r: &raft::VoteRequest, voter_id: i32) -> VoteRequest {
    VoteRequest::default()
        .with_cluster_id(r.cluster_id.as_deref().map(str))
        .with_voter_id(BrokerId(voter_id))
        .with_topics(vec![vote_req::TopicData::default()
            .with_topic_name(topic_name())
            .with_partitions(vec![vote_req::PartitionData::default()
                .with_replica_epoch(r.candidate_epoch)
                .with_replica_id(BrokerId(r.candidate_id))
                .with_last_offset_epoch(r.last_offset_epoch)
                .with_last_offset(r.last_offset)
                .with_pre_vote(r.pre_vote)])])
}

pub fn vote_request_in(r: &VoteRequest) -> Result<raft::VoteRequest, WireError> {
    let p = only(
        ApiKey::Vote,
        &r.topics,
        |t| &t.partitions,
        |p| p.partition_index,
    )?;
    Ok(raft::VoteRequest {
        cluster_id: cluster_id(&r.cluster_id),
        candidate_epoch: p.replica_epoch,
        candidate_id: p.replica_id.0,
        last_offset_epoch: p.last_offset_epoch,
        last_offset: p.last_offset,
        pre_vote: p.pre_vote,
    })
}

pub fn vote_response_out(r: &raft::VoteResponse) -> VoteResponse {
    VoteResponse::default()
        .with_error_code(r.error.0)
        .with_topics(vec![vote_resp::TopicData::default()
            .with_topic_name(topic_name())
            .with_partitions(vec![vote_resp::PartitionData::default()
                .with_error_code(r.partition_error.0)
                .with_leader_id(leader_id(r.leader))
                .with_leader_epoch(r.leader.epoch)
                .with_vote_granted(r.vote_granted)])])
}

pub fn vote_response_in(r: &VoteResponse) -> Result<raft::VoteResponse, WireError> {
    let p = top_level_or_partition(ApiKey::Vote, r.error_code, &r.topics, |t| &t.partitions)?;
    Ok(match p {
        None => raft::VoteResponse {
            error: ErrorCode(r.error_code),
            partition_error: ErrorCode::NONE,
            leader: leader(BrokerId(-1), -1),
            vote_granted: false,
        },
        Some(p) => raft::VoteResponse {
            error: ErrorCode(r.error_code),
            partition_error: ErrorCode(p.error_code),
            leader: leader(p.leader_id, p.leader_epoch),
            vote_granted: p.vote_granted,
        },
    })
}

/// A response's one partition, or none when a top-level error left them out.
fn top_level_or_partition<'a, T, P: HasIndex>(
    api: ApiKey,
    error_code: i16,
    topics: &'a [T],
    partitions: impl Fn(&'a T) -> &'a [P],
) -> Result<Option<&'a P>, WireError> {
    if error_code != 0 && topics.is_empty() {
        return Ok(None);
    }
    only(api, topics, partitions, HasIndex::index).map(Some)
}

trait HasIndex {
    fn index(&self) -> i32;
}

impl HasIndex for vote_resp::PartitionData {
    fn index(&self) -> i32 {
        self.partition_index
    }
}

impl HasIndex for bqe_resp::PartitionData {
    fn index(&self) -> i32 {
        self.partition_index
    }
}

impl HasIndex for eqe_resp::PartitionData {
    fn index(&self) -> i32 {
        self.partition_index
    }
}

impl HasIndex for fetch_resp::PartitionData {
    fn index(&self) -> i32 {
        self.partition_index
    }
}

impl HasIndex for fs_resp::PartitionSnapshot {
    fn index(&self) -> i32 {
        self.index
    }
}

// ---- BeginQuorumEpoch ----

pub fn begin_request_out(
    r: &raft::BeginQuorumEpochRequest,
    voter_id: i32,
) -> BeginQuorumEpochRequest {
    BeginQuorumEpochRequest::default()
        .with_cluster_id(r.cluster_id.as_deref().map(str))
        .with_voter_id(BrokerId(voter_id))
        .with_topics(vec![bqe_req::TopicData::default()
            .with_topic_name(topic_name())
            .with_partitions(vec![bqe_req::PartitionData::default()
                .with_leader_id(BrokerId(r.leader_id))
                .with_leader_epoch(r.leader_epoch)])])
}

pub fn begin_request_in(
    r: &BeginQuorumEpochRequest,
) -> Result<raft::BeginQuorumEpochRequest, WireError> {
    let p = only(
        ApiKey::BeginQuorumEpoch,
        &r.topics,
        |t| &t.partitions,
        |p| p.partition_index,
    )?;
    Ok(raft::BeginQuorumEpochRequest {
        cluster_id: cluster_id(&r.cluster_id),
        leader_id: p.leader_id.0,
        leader_epoch: p.leader_epoch,
    })
}

pub fn begin_response_out(r: &raft::BeginQuorumEpochResponse) -> BeginQuorumEpochResponse {
    BeginQuorumEpochResponse::default()
        .with_error_code(r.error.0)
        .with_topics(vec![bqe_resp::TopicData::default()
            .with_topic_name(topic_name())
            .with_partitions(vec![bqe_resp::PartitionData::default()
                .with_error_code(r.partition_error.0)
                .with_leader_id(leader_id(r.leader))
                .with_leader_epoch(r.leader.epoch)])])
}

pub fn begin_response_in(
    r: &BeginQuorumEpochResponse,
) -> Result<raft::BeginQuorumEpochResponse, WireError> {
    let p = top_level_or_partition(ApiKey::BeginQuorumEpoch, r.error_code, &r.topics, |t| {
        &t.partitions
    })?;
    Ok(raft::BeginQuorumEpochResponse {
        error: ErrorCode(r.error_code),
        partition_error: ErrorCode(p.map_or(0, |p| p.error_code)),
        leader: p.map_or(leader(BrokerId(-1), -1), |p| {
            leader(p.leader_id, p.leader_epoch)
        }),
    })
}

// ---- EndQuorumEpoch ----

pub fn end_request_out(r: &raft::EndQuorumEpochRequest) -> EndQuorumEpochRequest {
    EndQuorumEpochRequest::default()
        .with_cluster_id(r.cluster_id.as_deref().map(str))
        .with_topics(vec![eqe_req::TopicData::default()
            .with_topic_name(topic_name())
            .with_partitions(vec![eqe_req::PartitionData::default()
                .with_leader_id(BrokerId(r.leader_id))
                .with_leader_epoch(r.leader_epoch)
                .with_preferred_candidates(
                    r.preferred_successors
                        .iter()
                        .map(|&id| eqe_req::ReplicaInfo::default().with_candidate_id(BrokerId(id)))
                        .collect(),
                )])])
}

pub fn end_request_in(r: &EndQuorumEpochRequest) -> Result<raft::EndQuorumEpochRequest, WireError> {
    let p = only(
        ApiKey::EndQuorumEpoch,
        &r.topics,
        |t| &t.partitions,
        |p| p.partition_index,
    )?;
    // v0 lists ids, v1 candidates with directory ids.
    let preferred_successors = if p.preferred_candidates.is_empty() {
        p.preferred_successors.clone()
    } else {
        p.preferred_candidates
            .iter()
            .map(|c| c.candidate_id.0)
            .collect()
    };
    Ok(raft::EndQuorumEpochRequest {
        cluster_id: cluster_id(&r.cluster_id),
        leader_id: p.leader_id.0,
        leader_epoch: p.leader_epoch,
        preferred_successors,
    })
}

pub fn end_response_out(r: &raft::EndQuorumEpochResponse) -> EndQuorumEpochResponse {
    EndQuorumEpochResponse::default()
        .with_error_code(r.error.0)
        .with_topics(vec![eqe_resp::TopicData::default()
            .with_topic_name(topic_name())
            .with_partitions(vec![eqe_resp::PartitionData::default()
                .with_error_code(r.partition_error.0)
                .with_leader_id(leader_id(r.leader))
                .with_leader_epoch(r.leader.epoch)])])
}

pub fn end_response_in(
    r: &EndQuorumEpochResponse,
) -> Result<raft::EndQuorumEpochResponse, WireError> {
    let p = top_level_or_partition(ApiKey::EndQuorumEpoch, r.error_code, &r.topics, |t| {
        &t.partitions
    })?;
    Ok(raft::EndQuorumEpochResponse {
        error: ErrorCode(r.error_code),
        partition_error: ErrorCode(p.map_or(0, |p| p.error_code)),
        leader: p.map_or(leader(BrokerId(-1), -1), |p| {
            leader(p.leader_id, p.leader_epoch)
        }),
    })
}

// ---- Fetch ----

pub fn fetch_request_out(r: &raft::FetchRequest) -> FetchRequest {
    FetchRequest::default()
        .with_cluster_id(r.cluster_id.as_deref().map(str))
        .with_replica_state(
            fetch_req::ReplicaState::default().with_replica_id(BrokerId(r.replica_id)),
        )
        .with_max_wait_ms(r.max_wait_ms as i32)
        .with_min_bytes(0)
        .with_max_bytes(r.max_bytes as i32)
        .with_topics(vec![fetch_req::FetchTopic::default()
            .with_topic_id(METADATA_TOPIC_ID)
            .with_partitions(vec![fetch_req::FetchPartition::default()
                .with_current_leader_epoch(r.current_leader_epoch)
                .with_fetch_offset(r.fetch_offset)
                .with_last_fetched_epoch(r.last_fetched_epoch)
                .with_partition_max_bytes(r.max_bytes as i32)])])
}

/// Whether a Fetch addresses the metadata partition (the controller
/// listener serves no other).
pub fn is_metadata_fetch(r: &FetchRequest) -> bool {
    r.topics
        .iter()
        .any(|t| t.topic_id == METADATA_TOPIC_ID || t.topic.0.as_str() == METADATA_TOPIC)
}

pub fn fetch_request_in(r: &FetchRequest, version: i16) -> Result<raft::FetchRequest, WireError> {
    let p = only(ApiKey::Fetch, &r.topics, |t| &t.partitions, |p| p.partition)?;
    let replica_id = if version >= 15 {
        r.replica_state.replica_id.0
    } else {
        r.replica_id.0
    };
    Ok(raft::FetchRequest {
        cluster_id: cluster_id(&r.cluster_id),
        replica_id,
        max_wait_ms: r.max_wait_ms.max(0) as u32,
        max_bytes: r.max_bytes.min(p.partition_max_bytes).max(0) as u32,
        current_leader_epoch: p.current_leader_epoch,
        fetch_offset: p.fetch_offset,
        last_fetched_epoch: p.last_fetched_epoch,
    })
}

pub fn fetch_response_out(
    r: &raft::FetchResponse,
    now_ms: i64,
) -> Result<FetchResponse, WireError> {
    let records =
        encode_batches(&r.batches, now_ms).map_err(|e| wire_error(ApiKey::Fetch, e.to_string()))?;
    let diverging = r.diverging_epoch.unwrap_or(OffsetAndEpoch::new(-1, -1));
    let snapshot = r.snapshot_id.unwrap_or(OffsetAndEpoch::new(-1, -1));
    Ok(FetchResponse::default()
        .with_error_code(r.error.0)
        .with_responses(vec![fetch_resp::FetchableTopicResponse::default()
            .with_topic(topic_name())
            .with_topic_id(METADATA_TOPIC_ID)
            .with_partitions(vec![fetch_resp::PartitionData::default()
                .with_error_code(r.partition_error.0)
                .with_high_watermark(r.high_watermark)
                .with_log_start_offset(r.log_start_offset)
                .with_diverging_epoch(
                    fetch_resp::EpochEndOffset::default()
                        .with_epoch(diverging.epoch)
                        .with_end_offset(diverging.offset),
                )
                .with_current_leader(
                    fetch_resp::LeaderIdAndEpoch::default()
                        .with_leader_id(leader_id(r.current_leader))
                        .with_leader_epoch(r.current_leader.epoch),
                )
                .with_snapshot_id(
                    fetch_resp::SnapshotId::default()
                        .with_end_offset(snapshot.offset)
                        .with_epoch(snapshot.epoch),
                )
                .with_records(Some(records))])]))
}

pub fn fetch_response_in(r: FetchResponse) -> Result<raft::FetchResponse, WireError> {
    let error = ErrorCode(r.error_code);
    let p = top_level_or_partition(ApiKey::Fetch, r.error_code, &r.responses, |t| &t.partitions)?;
    let Some(p) = p else {
        return Ok(raft::FetchResponse {
            error,
            partition_error: ErrorCode::NONE,
            high_watermark: -1,
            log_start_offset: -1,
            diverging_epoch: None,
            current_leader: leader(BrokerId(-1), -1),
            snapshot_id: None,
            batches: Vec::new(),
        });
    };
    let batches = match &p.records {
        Some(bytes) if !bytes.is_empty() => {
            decode_batches(bytes.clone()).map_err(|e| wire_error(ApiKey::Fetch, e.to_string()))?
        }
        _ => Vec::new(),
    };
    let set = |offset: i64, epoch: i32| {
        (offset >= 0 && epoch >= 0).then_some(OffsetAndEpoch::new(offset, epoch))
    };
    Ok(raft::FetchResponse {
        error,
        partition_error: ErrorCode(p.error_code),
        high_watermark: p.high_watermark,
        log_start_offset: p.log_start_offset,
        diverging_epoch: set(p.diverging_epoch.end_offset, p.diverging_epoch.epoch),
        current_leader: leader(p.current_leader.leader_id, p.current_leader.leader_epoch),
        snapshot_id: set(p.snapshot_id.end_offset, p.snapshot_id.epoch),
        batches,
    })
}

// ---- FetchSnapshot ----

pub fn fetch_snapshot_request_out(r: &raft::FetchSnapshotRequest) -> FetchSnapshotRequest {
    FetchSnapshotRequest::default()
        .with_cluster_id(r.cluster_id.as_deref().map(str))
        .with_replica_id(BrokerId(r.replica_id))
        .with_max_bytes(r.max_bytes as i32)
        .with_topics(vec![fs_req::TopicSnapshot::default()
            .with_name(topic_name())
            .with_partitions(vec![fs_req::PartitionSnapshot::default()
                .with_current_leader_epoch(r.current_leader_epoch)
                .with_snapshot_id(
                    fs_req::SnapshotId::default()
                        .with_end_offset(r.snapshot_id.offset)
                        .with_epoch(r.snapshot_id.epoch),
                )
                .with_position(r.position)])])
}

pub fn fetch_snapshot_request_in(
    r: &FetchSnapshotRequest,
) -> Result<raft::FetchSnapshotRequest, WireError> {
    let p = only(
        ApiKey::FetchSnapshot,
        &r.topics,
        |t| &t.partitions,
        |p| p.partition,
    )?;
    Ok(raft::FetchSnapshotRequest {
        cluster_id: cluster_id(&r.cluster_id),
        replica_id: r.replica_id.0,
        max_bytes: r.max_bytes.max(0) as u32,
        current_leader_epoch: p.current_leader_epoch,
        snapshot_id: OffsetAndEpoch::new(p.snapshot_id.end_offset, p.snapshot_id.epoch),
        position: p.position,
    })
}

pub fn fetch_snapshot_response_out(r: &raft::FetchSnapshotResponse) -> FetchSnapshotResponse {
    FetchSnapshotResponse::default()
        .with_error_code(r.error.0)
        .with_topics(vec![fs_resp::TopicSnapshot::default()
            .with_name(topic_name())
            .with_partitions(vec![fs_resp::PartitionSnapshot::default()
                .with_error_code(r.partition_error.0)
                .with_snapshot_id(
                    fs_resp::SnapshotId::default()
                        .with_end_offset(r.snapshot_id.offset)
                        .with_epoch(r.snapshot_id.epoch),
                )
                .with_current_leader(
                    fs_resp::LeaderIdAndEpoch::default()
                        .with_leader_id(leader_id(r.current_leader))
                        .with_leader_epoch(r.current_leader.epoch),
                )
                .with_size(r.size)
                .with_position(r.position)
                .with_unaligned_records(r.bytes.clone())])])
}

pub fn fetch_snapshot_response_in(
    r: FetchSnapshotResponse,
) -> Result<raft::FetchSnapshotResponse, WireError> {
    let p = top_level_or_partition(ApiKey::FetchSnapshot, r.error_code, &r.topics, |t| {
        &t.partitions
    })?;
    Ok(match p {
        None => raft::FetchSnapshotResponse {
            error: ErrorCode(r.error_code),
            partition_error: ErrorCode::NONE,
            snapshot_id: OffsetAndEpoch::new(-1, -1),
            current_leader: leader(BrokerId(-1), -1),
            size: -1,
            position: -1,
            bytes: Default::default(),
        },
        Some(p) => raft::FetchSnapshotResponse {
            error: ErrorCode(r.error_code),
            partition_error: ErrorCode(p.error_code),
            snapshot_id: OffsetAndEpoch::new(p.snapshot_id.end_offset, p.snapshot_id.epoch),
            current_leader: leader(p.current_leader.leader_id, p.current_leader.leader_epoch),
            size: p.size,
            position: p.position,
            bytes: p.unaligned_records.clone(),
        },
    })
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::protocol::{Decodable, Encodable};

    use super::*;
    use crate::raft::{Batch, BatchKind};

    /// Encodes at `version` and decodes again, as the peer would see it.
    fn over_the_wire<T: Encodable + Decodable>(message: &T, version: i16) -> T {
        let mut buf = BytesMut::new();
        message.encode(&mut buf, version).unwrap();
        T::decode(&mut buf.freeze(), version).unwrap()
    }

    fn leader_2() -> LeaderAndEpoch {
        LeaderAndEpoch {
            leader_id: Some(2),
            epoch: 5,
        }
    }

    #[test]
    fn votes_round_trip_at_every_version_with_pre_vote_at_v2() {
        let request = raft::VoteRequest {
            cluster_id: Some("c".into()),
            candidate_epoch: 6,
            candidate_id: 3,
            last_offset_epoch: 4,
            last_offset: 99,
            pre_vote: true,
        };
        let wire = over_the_wire(&vote_request_out(&request, 1), 2);
        assert_eq!(vote_request_in(&wire).unwrap(), request);
        let response = raft::VoteResponse {
            error: ErrorCode::NONE,
            partition_error: ErrorCode::FENCED_LEADER_EPOCH,
            leader: leader_2(),
            vote_granted: true,
        };
        for version in 0..=2 {
            let wire = over_the_wire(&vote_response_out(&response), version);
            assert_eq!(vote_response_in(&wire).unwrap(), response, "v{version}");
        }
    }

    #[test]
    fn quorum_epoch_messages_round_trip() {
        let begin = raft::BeginQuorumEpochRequest {
            cluster_id: Some("c".into()),
            leader_id: 2,
            leader_epoch: 5,
        };
        let wire = over_the_wire(&begin_request_out(&begin, 1), 1);
        assert_eq!(begin_request_in(&wire).unwrap(), begin);
        let ack = raft::BeginQuorumEpochResponse {
            error: ErrorCode::NONE,
            partition_error: ErrorCode::NONE,
            leader: leader_2(),
        };
        let wire = over_the_wire(&begin_response_out(&ack), 1);
        assert_eq!(begin_response_in(&wire).unwrap(), ack);

        let end = raft::EndQuorumEpochRequest {
            cluster_id: None,
            leader_id: 2,
            leader_epoch: 5,
            preferred_successors: vec![3, 1],
        };
        let wire = over_the_wire(&end_request_out(&end), 1);
        assert_eq!(end_request_in(&wire).unwrap(), end);
        // v0 peers list plain ids.
        let mut v0 = end_request_out(&end);
        let p = &mut v0.topics[0].partitions[0];
        p.preferred_successors = vec![3, 1];
        p.preferred_candidates.clear();
        assert_eq!(end_request_in(&over_the_wire(&v0, 0)).unwrap(), end);
        let ended = raft::EndQuorumEpochResponse {
            error: ErrorCode::NONE,
            partition_error: ErrorCode::NONE,
            leader: leader_2(),
        };
        let wire = over_the_wire(&end_response_out(&ended), 1);
        assert_eq!(end_response_in(&wire).unwrap(), ended);
    }

    #[test]
    fn fetches_round_trip_with_batches_divergence_and_snapshot_ids() {
        let request = raft::FetchRequest {
            cluster_id: Some("c".into()),
            replica_id: 7,
            max_wait_ms: 500,
            max_bytes: 1 << 20,
            current_leader_epoch: 5,
            fetch_offset: 10,
            last_fetched_epoch: 4,
        };
        for version in RAFT_FETCH_VERSIONS.0..=RAFT_FETCH_VERSIONS.1 {
            let wire = over_the_wire(&fetch_request_out(&request), version);
            assert!(is_metadata_fetch(&wire));
            assert_eq!(fetch_request_in(&wire, version).unwrap(), request);
        }
        let response = raft::FetchResponse {
            error: ErrorCode::NONE,
            partition_error: ErrorCode::NONE,
            high_watermark: 8,
            log_start_offset: 0,
            diverging_epoch: Some(OffsetAndEpoch::new(9, 3)),
            current_leader: leader_2(),
            snapshot_id: None,
            batches: vec![Batch {
                base_offset: 10,
                epoch: 5,
                kind: BatchKind::Data(vec![Bytes::from_static(b"r")]),
            }],
        };
        let wire = over_the_wire(&fetch_response_out(&response, 0).unwrap(), 17);
        assert_eq!(fetch_response_in(wire).unwrap(), response);
        let snapshot = raft::FetchResponse {
            diverging_epoch: None,
            snapshot_id: Some(OffsetAndEpoch::new(100, 4)),
            batches: Vec::new(),
            ..response
        };
        let wire = over_the_wire(&fetch_response_out(&snapshot, 0).unwrap(), 17);
        assert_eq!(fetch_response_in(wire).unwrap(), snapshot);
    }

    #[test]
    fn snapshot_chunks_round_trip() {
        let request = raft::FetchSnapshotRequest {
            cluster_id: Some("c".into()),
            replica_id: 7,
            max_bytes: 4096,
            current_leader_epoch: 5,
            snapshot_id: OffsetAndEpoch::new(100, 4),
            position: 4096,
        };
        let wire = over_the_wire(&fetch_snapshot_request_out(&request), 1);
        assert_eq!(fetch_snapshot_request_in(&wire).unwrap(), request);
        let response = raft::FetchSnapshotResponse {
            error: ErrorCode::NONE,
            partition_error: ErrorCode::NONE,
            snapshot_id: OffsetAndEpoch::new(100, 4),
            current_leader: leader_2(),
            size: 10_000,
            position: 4096,
            bytes: Bytes::from_static(b"chunk"),
        };
        let wire = over_the_wire(&fetch_snapshot_response_out(&response), 1);
        assert_eq!(fetch_snapshot_response_in(wire).unwrap(), response);
    }

    #[test]
    fn messages_for_other_partitions_are_errors() {
        let mut request = vote_request_out(
            &raft::VoteRequest {
                cluster_id: None,
                candidate_epoch: 1,
                candidate_id: 1,
                last_offset_epoch: 0,
                last_offset: 0,
                pre_vote: false,
            },
            2,
        );
        request.topics[0].partitions[0].partition_index = 3;
        assert!(vote_request_in(&request).is_err());
        request.topics.clear();
        assert!(vote_request_in(&request).is_err());
        // A top-level error may come without partitions.
        let refused = VoteResponse::default().with_error_code(ErrorCode::INCONSISTENT_CLUSTER_ID.0);
        let parsed = vote_response_in(&refused).unwrap();
        assert_eq!(parsed.error, ErrorCode::INCONSISTENT_CLUSTER_ID);
        assert!(!parsed.vote_granted);
    }
}
