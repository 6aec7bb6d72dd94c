//! `PUT`/`GET`/`DELETE /admin/v1/removals/{id}`: start, follow and cancel a
//! broker removal. Reads come from this node's image, and the bytes still to
//! move from the leaving brokers themselves (DescribeLogDirs); starting and
//! cancelling are IncrementalAlterConfigs SETs of the task's
//! `removal.<id>` key, which the active controller checks before it commits.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kafka_protocol::messages::DescribeLogDirsRequest;
use serde::{Deserialize, Serialize};

use super::error;
use super::exclusion::{alter_broker_config, refusal, ASK_TIMEOUT};
use super::AdminState;
use crate::controller::valid_removal_id;
use crate::metadata::image::{RemovalState, RemovalTask, REMOVAL_KEY_PREFIX};
use crate::metadata::MetadataImage;

/// How long a write waits for this node's image to show what it committed.
const SEE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a leaving broker has to tell the sizes of its logs.
const SIZES_TIMEOUT: Duration = Duration::from_secs(2);

/// `RemovalRequest` of the contract.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RemovalRequest {
    broker_ids: Vec<i32>,
}

/// `Removal` of the contract.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RemovalView {
    pub id: String,
    pub broker_ids: Vec<i32>,
    pub state: RemovalState,
    pub partitions_remaining: i64,
    /// -1 while some leaving broker's share is unknown.
    pub bytes_remaining: i64,
    pub brokers: Vec<BrokerProgress>,
    /// Every partition that still has a replica on a leaving broker.
    pub partitions: Vec<PartitionProgress>,
    pub error: Option<String>,
}

/// `PartitionProgress` of the contract.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PartitionProgress {
    pub topic: String,
    pub partition: i32,
    pub state: MoveState,
    pub replicas: Vec<i32>,
    /// The replicas a move in flight is adding (catching up as followers).
    pub adding_replicas: Vec<i32>,
}

/// Where one partition of a removal stands.
#[derive(Debug, Serialize, PartialEq, Clone, Copy)]
#[serde(rename_all = "camelCase")]
pub enum MoveState {
    /// Not started yet: the removal keeps a cap on concurrent moves per broker.
    Waiting,
    /// A reassignment is in flight.
    Moving,
}

/// `BrokerProgress` of the contract.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BrokerProgress {
    pub broker_id: i32,
    pub partitions_remaining: i64,
    pub bytes_remaining: i64,
}

/// Bytes a broker did not tell (it is down, or slow to answer).
const UNKNOWN_BYTES: i64 = -1;

/// The task's progress as `image` shows it, bytes unknown.
fn view(image: &MetadataImage, id: &str, task: &RemovalTask) -> RemovalView {
    let brokers: Vec<BrokerProgress> = task
        .brokers
        .iter()
        .map(|b| BrokerProgress {
            broker_id: *b,
            partitions_remaining: image.partitions_on(*b) as i64,
            bytes_remaining: UNKNOWN_BYTES,
        })
        .collect();
    RemovalView {
        id: id.to_string(),
        broker_ids: task.brokers.clone(),
        state: task.state,
        partitions_remaining: brokers.iter().map(|b| b.partitions_remaining).sum(),
        bytes_remaining: UNKNOWN_BYTES,
        brokers,
        partitions: partitions_left(image, &task.brokers),
        error: task.error.clone(),
    }
}

/// The partitions with a replica on one of `leaving`, in topic and partition order.
fn partitions_left(image: &MetadataImage, leaving: &[i32]) -> Vec<PartitionProgress> {
    image
        .topics
        .values()
        .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
        .filter(|(_, p)| p.replicas.iter().any(|r| leaving.contains(r)))
        .map(|(t, p)| PartitionProgress {
            topic: t.name.clone(),
            partition: p.partition,
            state: if p.adding_replicas.is_empty() && p.removing_replicas.is_empty() {
                MoveState::Waiting
            } else {
                MoveState::Moving
            },
            replicas: p.replicas.clone(),
            adding_replicas: p.adding_replicas.clone(),
        })
        .collect()
}

/// [`view`] with the bytes each leaving broker still holds of the partitions it is
/// to give up; a broker holding none has 0 without being asked (it may be gone).
async fn progress(
    state: &AdminState,
    image: &MetadataImage,
    id: &str,
    task: &RemovalTask,
) -> RemovalView {
    let mut view = view(image, id, task);
    for b in &mut view.brokers {
        b.bytes_remaining = if b.partitions_remaining == 0 {
            0
        } else {
            held_bytes(state, image, b.broker_id)
                .await
                .unwrap_or(UNKNOWN_BYTES)
        };
    }
    view.bytes_remaining = if view.brokers.iter().any(|b| b.bytes_remaining < 0) {
        UNKNOWN_BYTES
    } else {
        view.brokers.iter().map(|b| b.bytes_remaining).sum()
    };
    view
}

/// The size of the logs `broker` holds of partitions it is still a replica of (a log
/// it was moved off and has not deleted yet does not count), as it tells them.
async fn held_bytes(state: &AdminState, image: &MetadataImage, broker: i32) -> Option<i64> {
    let all = DescribeLogDirsRequest::default().with_topics(None);
    let answer = state
        .brokers
        .send(broker, &all, SIZES_TIMEOUT)
        .await
        .inspect_err(
            |error| tracing::debug!(broker, %error, "cannot ask a leaving broker its log sizes"),
        )
        .ok()?;
    let replica = |topic: &str, partition: i32| {
        image
            .topic(topic)
            .and_then(|t| t.partitions.get(usize::try_from(partition).ok()?))
            .is_some_and(|p| p.replicas.contains(&broker))
    };
    Some(
        answer
            .results
            .iter()
            .filter(|r| r.error_code == 0)
            .flat_map(|r| &r.topics)
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .filter(|p| replica(&t.name.0, p.partition_index))
                    .map(|p| p.partition_size)
            })
            .sum(),
    )
}

fn bad_id(id: &str) -> Option<Response> {
    (!valid_removal_id(id)).then(|| {
        error(
            StatusCode::BAD_REQUEST,
            "INVALID_REMOVAL_ID",
            format!("`{id}` is not a removal id: 1 to 63 lowercase letters, digits or dashes"),
        )
    })
}

fn unknown(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "UNKNOWN_REMOVAL",
        format!("no removal with id {id}"),
    )
}

pub async fn get(state: &AdminState, id: &str) -> Response {
    if let Some(bad) = bad_id(id) {
        return bad;
    }
    let image = state.publisher.current();
    match image.removal(id) {
        Some(task) => Json(progress(state, &image, id, &task).await).into_response(),
        None => unknown(id),
    }
}

/// 201 with the new removal, 200 when it already exists with these brokers.
pub async fn put(state: &AdminState, id: &str, body: &[u8]) -> Response {
    if let Some(bad) = bad_id(id) {
        return bad;
    }
    let request: RemovalRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                format!("expected {{\"brokerIds\": [...]}}: {e}"),
            )
        }
    };
    let mut brokers = request.broker_ids;
    brokers.sort_unstable();
    brokers.dedup();
    if let Some(existing) = state.publisher.current().removal(id) {
        let mut theirs = existing.brokers.clone();
        theirs.sort_unstable();
        if theirs == brokers {
            return get(state, id).await;
        }
    }
    let task = RemovalTask {
        brokers,
        state: RemovalState::Running,
        error: None,
    };
    if let Some(refused) = send(state, id, &task).await {
        return refused;
    }
    match seen(state, id, |_| true).await {
        Some(view) => (StatusCode::CREATED, Json(view)).into_response(),
        None => not_seen(id),
    }
}

/// 200 with the removal cancelled, or as it is when it no longer runs.
pub async fn delete(state: &AdminState, id: &str) -> Response {
    if let Some(bad) = bad_id(id) {
        return bad;
    }
    let Some(task) = state.publisher.current().removal(id) else {
        return unknown(id);
    };
    if task.state == RemovalState::Running {
        let cancel = RemovalTask {
            state: RemovalState::Cancelled,
            ..task
        };
        if let Some(refused) = send(state, id, &cancel).await {
            return refused;
        }
    }
    match seen(state, id, |t| t.state != RemovalState::Running).await {
        Some(view) => Json(view).into_response(),
        None => not_seen(id),
    }
}

fn not_seen(id: &str) -> Response {
    error(
        StatusCode::GATEWAY_TIMEOUT,
        "NOT_YET_VISIBLE",
        format!("removal {id} was committed but this node has not applied it yet; GET it again"),
    )
}

/// The task once this node's image shows it as `done` says, within SEE_TIMEOUT.
async fn seen(
    state: &AdminState,
    id: &str,
    done: impl Fn(&RemovalTask) -> bool,
) -> Option<RemovalView> {
    let deadline = Instant::now() + SEE_TIMEOUT;
    loop {
        let image = state.publisher.current();
        if let Some(task) = image.removal(id).filter(|t| done(t)) {
            return Some(progress(state, &image, id, &task).await);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends the task to the active controller; the error answer when refused.
async fn send(state: &AdminState, id: &str, task: &RemovalTask) -> Option<Response> {
    let key = format!("{REMOVAL_KEY_PREFIX}{id}");
    alter_broker_config(
        &state.controllers,
        "",
        &key,
        Some(&task.to_value()),
        ASK_TIMEOUT,
    )
    .await
    .err()
    .map(refusal)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::error::ResponseError;

    use super::super::exclusion::AlterError;
    use super::*;

    #[test]
    fn refusals_map_to_the_contracts_statuses() {
        let status = |code: ResponseError| {
            refusal(AlterError::Refused {
                code: code.code(),
                message: "m".into(),
            })
            .status()
        };
        assert_eq!(
            status(ResponseError::BrokerIdNotRegistered),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(ResponseError::InvalidReplicationFactor),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            status(ResponseError::ReassignmentInProgress),
            StatusCode::CONFLICT
        );
        assert_eq!(
            status(ResponseError::InvalidRequest),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            refusal(AlterError::NoController("x".into())).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn progress_counts_the_partitions_left_on_each_broker() {
        let image = MetadataImage::empty("c");
        let task = RemovalTask {
            brokers: vec![3, 4],
            state: RemovalState::Running,
            error: Some("why".into()),
        };
        let v = view(&image, "r", &task);
        assert_eq!(v.partitions_remaining, 0);
        assert_eq!(v.brokers.len(), 2);
        assert_eq!(v.error.as_deref(), Some("why"));
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["state"], "running");
        assert_eq!(json["brokerIds"], serde_json::json!([3, 4]));
        assert_eq!(json["brokers"][0]["brokerId"], 3);
        assert_eq!(json["partitions"], serde_json::json!([]));
    }

    #[test]
    fn each_partition_left_on_a_leaving_broker_is_waiting_or_moving() {
        use crate::controller::{lifecycle_tests, MemoryMetadataLog};
        let c = MemoryMetadataLog::new().open_controller(&crate::config::BrokerConfig::default());
        for id in 1..=4 {
            lifecycle_tests::unfenced(&c, id, 0);
        }
        lifecycle_tests::topic(&c, "t", vec![vec![1, 3], vec![3, 4], vec![1, 2]]);
        let moved = c
            .alter_partition_reassignments(
                vec![("t".into(), 0, Some(vec![1, 2]))],
                Duration::from_secs(1),
            )
            .unwrap();
        assert!(moved[0].2.is_ok(), "{moved:?}");
        let task = RemovalTask {
            brokers: vec![3],
            state: RemovalState::Running,
            error: None,
        };
        let json = serde_json::to_value(view(&c.image(), "r", &task)).unwrap();
        assert_eq!(json["partitionsRemaining"], 2);
        assert_eq!(
            json["partitions"],
            serde_json::json!([
                {"topic": "t", "partition": 0, "state": "moving",
                 "replicas": [1, 2, 3], "addingReplicas": [2]},
                {"topic": "t", "partition": 1, "state": "waiting",
                 "replicas": [3, 4], "addingReplicas": []},
            ])
        );
    }
}
