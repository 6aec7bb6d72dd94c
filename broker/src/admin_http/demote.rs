//! `POST /admin/v1/brokers/{id}/demote`: moves a broker's partition leaderships to other
//! in-sync replicas before it is restarted, with the `broker.demote` action sent to the
//! active controller as an IncrementalAlterConfigs request. It answers with the
//! leaderships the broker still holds; callers poll until none are left.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tokio::time::Instant;

use super::exclusion::{alter_broker_config, refusal, ASK_TIMEOUT};
use super::{error, AdminState};
use crate::controller::{demote as demotion_records, leaderships, DEMOTE_KEY};

/// How long the answer waits for this node's image to show the moves.
const SEE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Demotion {
    broker_id: i32,
    leaders_remaining: usize,
}

/// 200 with the leaderships left; 404 for an unregistered broker; 503 without an active
/// controller.
pub async fn demote(state: &AdminState, broker: i32) -> Response {
    let image = state.publisher.current();
    if !image.brokers.contains_key(&broker) {
        return unknown(broker);
    }
    // What should be left once the moves are visible: leaderships no other replica can take.
    let stays = leaderships(&image, broker) - demotion_records(&image, broker).len();
    let asked = alter_broker_config(
        &state.controllers,
        &broker.to_string(),
        DEMOTE_KEY,
        Some("true"),
        ASK_TIMEOUT,
    )
    .await;
    if let Err(refused) = asked {
        return refusal(refused);
    }
    let deadline = Instant::now() + SEE_TIMEOUT;
    let remaining = loop {
        let held = leaderships(&state.publisher.current(), broker);
        if held <= stays || Instant::now() > deadline {
            break held;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    Json(Demotion {
        broker_id: broker,
        leaders_remaining: remaining,
    })
    .into_response()
}

fn unknown(broker: i32) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "UNKNOWN_BROKER",
        format!("broker {broker} is not registered"),
    )
}
