//! `GET /admin/v1/quorum`: the controller quorum as its leader sees it. The
//! leader answers from its Raft state; any other node asks the leader with
//! DescribeQuorum over the controller channel.

use std::time::Duration;

use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::describe_quorum_response::ReplicaState;
use kafka_protocol::messages::{DescribeQuorumRequest, DescribeQuorumResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use crate::client::ControllerChannel;
use crate::kraft::disk_log::METADATA_TOPIC;
use crate::raft::{QuorumInfo, ReplicaInfo};

/// How long a node waits for the quorum leader's answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// `QuorumView` of the contract.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QuorumStatus {
    pub leader_id: Option<i32>,
    pub epoch: i64,
    pub voters: Vec<VoterStatus>,
}

/// `VoterInfo` of the contract.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VoterStatus {
    pub id: i32,
    pub caught_up: bool,
    pub lag_records: i64,
}

/// The contract's view of `info`. A voter is caught up when it reached the
/// leader's high watermark within `fetch_timeout_ms` of the leader's clock,
/// which is the leader's own last-fetch time (the leader stamps its row with
/// "now"), so the answer holds whichever node asked.
pub fn quorum_status(info: &QuorumInfo, fetch_timeout_ms: u64) -> QuorumStatus {
    let now = info
        .voters
        .iter()
        .find(|v| v.replica_id == info.leader_id)
        .and_then(|v| v.last_fetch_ms);
    let voters = info
        .voters
        .iter()
        .map(|v| VoterStatus {
            id: v.replica_id,
            caught_up: match (now, v.last_caught_up_ms) {
                (Some(now), Some(at)) => at.saturating_add(fetch_timeout_ms) >= now,
                _ => false,
            },
            // A voter that never fetched in this epoch is behind by the whole log.
            lag_records: (info.high_watermark - v.log_end_offset.max(0)).max(0),
        })
        .collect();
    QuorumStatus {
        leader_id: Some(info.leader_id),
        epoch: i64::from(info.leader_epoch),
        voters,
    }
}

/// The quorum leader's DescribeQuorum answer, asked over the controller channel.
pub async fn ask_leader(controllers: &ControllerChannel) -> Result<QuorumInfo, String> {
    let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    let response = controllers
        .send(&request, ASK_TIMEOUT)
        .await
        .map_err(|e| format!("asking the quorum leader: {e}"))?;
    from_response(&response)
}

fn from_response(response: &DescribeQuorumResponse) -> Result<QuorumInfo, String> {
    let partition = response
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .ok_or("the quorum leader answered DescribeQuorum without the metadata partition")?;
    if partition.error_code != 0 {
        return Err(format!(
            "the quorum leader answered DescribeQuorum with error {}",
            partition.error_code
        ));
    }
    let replica = |r: &ReplicaState| ReplicaInfo {
        replica_id: r.replica_id.0,
        log_end_offset: r.log_end_offset,
        last_fetch_ms: u64::try_from(r.last_fetch_timestamp).ok(),
        last_caught_up_ms: u64::try_from(r.last_caught_up_timestamp).ok(),
    };
    Ok(QuorumInfo {
        leader_id: partition.leader_id.0,
        leader_epoch: partition.leader_epoch,
        high_watermark: partition.high_watermark,
        voters: partition.current_voters.iter().map(replica).collect(),
        observers: partition.observers.iter().map(replica).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voter(id: i32, end: i64, caught_up_at: Option<u64>) -> ReplicaInfo {
        ReplicaInfo {
            replica_id: id,
            log_end_offset: end,
            last_fetch_ms: caught_up_at.map(|t| t + 10),
            last_caught_up_ms: caught_up_at,
        }
    }

    #[test]
    fn voters_are_caught_up_within_the_fetch_timeout_of_the_leaders_clock() {
        let mut leader = voter(1, 500, Some(10_000));
        leader.last_fetch_ms = Some(10_000);
        let info = QuorumInfo {
            leader_id: 1,
            leader_epoch: 7,
            high_watermark: 500,
            voters: vec![
                leader,
                voter(2, 480, Some(9_000)),
                voter(3, 100, Some(7_999)),
                voter(4, -1, None),
            ],
            observers: vec![voter(9, 500, Some(10_000))],
        };
        let status = quorum_status(&info, 2_000);
        assert_eq!(status.leader_id, Some(1));
        assert_eq!(status.epoch, 7);
        let rows: Vec<(i32, bool, i64)> = status
            .voters
            .iter()
            .map(|v| (v.id, v.caught_up, v.lag_records))
            .collect();
        assert_eq!(
            rows,
            [
                (1, true, 0),
                (2, true, 20),
                (3, false, 400),
                (4, false, 500)
            ]
        );
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["leaderId"], 1);
        assert_eq!(json["voters"][1]["caughtUp"], true);
        assert_eq!(json["voters"][2]["lagRecords"], 400);
    }

    #[test]
    fn an_answer_without_a_leader_is_an_error() {
        let mut response = DescribeQuorumResponse::default();
        assert!(from_response(&response).is_err());
        response.topics = vec![Default::default()];
        response.topics[0].partitions = vec![Default::default()];
        response.topics[0].partitions[0].error_code = 6;
        let err = from_response(&response).unwrap_err();
        assert!(err.contains("error 6"), "{err}");
    }
}
