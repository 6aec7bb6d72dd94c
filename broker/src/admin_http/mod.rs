//! Admin HTTP: `/healthz` (the process is up), `/readyz` (serving clients),
//! `/metrics` (Prometheus), and the admin API (`docs/admin-api.yaml`): the
//! cluster view, the controller quorum, a broker's restart safety, its
//! exclusion and unregistration, and broker removals.

mod cluster_view;
mod demote;
mod exclusion;
mod quorum_view;
mod removal;
mod unregister;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use tokio::sync::watch;

use crate::client::ControllerChannel;
use crate::kraft::{QuorumView, RaftHandle};
use crate::metadata::MetadataPublisher;
use crate::server::metrics::Metrics;
use crate::storage::LogConfig;

#[derive(Clone)]
pub struct AdminState {
    pub metrics: Arc<Metrics>,
    pub ready: Arc<AtomicBool>,
    pub publisher: Arc<MetadataPublisher>,
    pub quorum: watch::Receiver<QuorumView>,
    pub log_defaults: LogConfig,
    pub raft: RaftHandle,
    /// Reaches the quorum leader when this node does not lead.
    pub controllers: Arc<ControllerChannel>,
    /// Reaches brokers (on their inter-broker listener) for what only they know:
    /// the sizes of their logs.
    pub brokers: Arc<crate::client::NodeClients>,
    /// `controller.quorum.fetch.timeout.ms`: how recent "caught up" is.
    pub fetch_timeout_ms: u64,
}

pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/admin/v1/cluster", get(cluster))
        .route("/admin/v1/quorum", get(quorum))
        .route(
            "/admin/v1/brokers/{broker_id}/restart-safety",
            get(restart_safety),
        )
        .route("/admin/v1/brokers/{broker_id}", delete(unregister_broker))
        .route("/admin/v1/brokers/{broker_id}/demote", post(demote_broker))
        .route(
            "/admin/v1/brokers/{broker_id}/exclusion",
            put(exclude).delete(unexclude),
        )
        .route(
            "/admin/v1/removals/{removal_id}",
            put(start_removal).get(get_removal).delete(cancel_removal),
        )
        .with_state(state)
}

async fn readyz(State(state): State<AdminState>) -> (StatusCode, &'static str) {
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
    }
}

async fn metrics(State(state): State<AdminState>) -> String {
    state
        .metrics
        .metadata_last_applied_offset
        .set(state.publisher.current().metadata_offset);
    state.metrics.render()
}

async fn cluster(State(state): State<AdminState>) -> Json<cluster_view::ClusterView> {
    let leader = state.quorum.borrow().leader;
    Json(cluster_view::cluster_view(
        &state.publisher.current(),
        leader,
    ))
}

async fn quorum(State(state): State<AdminState>) -> Response {
    let info = match state.raft.describe().await {
        Some(local) => Ok(local),
        None => quorum_view::ask_leader(&state.controllers).await,
    };
    match info {
        Ok(info) => Json(quorum_view::quorum_status(&info, state.fetch_timeout_ms)).into_response(),
        Err(reason) => error(StatusCode::SERVICE_UNAVAILABLE, "NO_QUORUM_LEADER", reason),
    }
}

async fn restart_safety(State(state): State<AdminState>, Path(broker_id): Path<i32>) -> Response {
    let image = state.publisher.current();
    match cluster_view::restart_safety(&image, &state.log_defaults, broker_id) {
        Some(verdict) => Json(verdict).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "UNKNOWN_BROKER",
            format!("broker {broker_id} is not registered"),
        ),
    }
}

async fn exclude(state: State<AdminState>, broker_id: Path<String>) -> Response {
    set_exclusion(state, broker_id, true).await
}

async fn unexclude(state: State<AdminState>, broker_id: Path<String>) -> Response {
    set_exclusion(state, broker_id, false).await
}

async fn unregister_broker(
    State(state): State<AdminState>,
    Path(broker_id): Path<String>,
) -> Response {
    match parse_broker_id(&broker_id) {
        Some(id) => unregister::unregister(&state.controllers, id).await,
        None => bad_broker_id(&broker_id),
    }
}

async fn demote_broker(State(state): State<AdminState>, Path(broker_id): Path<String>) -> Response {
    match parse_broker_id(&broker_id) {
        Some(id) => demote::demote(&state, id).await,
        None => bad_broker_id(&broker_id),
    }
}

/// Parsed here, not by the extractor, so a bad id gets the contract's JSON body.
fn parse_broker_id(broker_id: &str) -> Option<i32> {
    broker_id.parse::<i32>().ok().filter(|id| *id >= 0)
}

fn bad_broker_id(broker_id: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "INVALID_BROKER_ID",
        format!("`{broker_id}` is not a broker id"),
    )
}

/// 204 once committed: repeating either call changes nothing more.
async fn set_exclusion(
    State(state): State<AdminState>,
    Path(broker_id): Path<String>,
    excluded: bool,
) -> Response {
    let Some(id) = parse_broker_id(&broker_id) else {
        return bad_broker_id(&broker_id);
    };
    match exclusion::set_excluded(&state.controllers, id, excluded, exclusion::ASK_TIMEOUT).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(exclusion::ExclusionError::UnknownBroker(reason)) => {
            error(StatusCode::NOT_FOUND, "UNKNOWN_BROKER", reason)
        }
        Err(exclusion::ExclusionError::NoController(reason)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "NO_ACTIVE_CONTROLLER",
            reason,
        ),
        Err(exclusion::ExclusionError::Refused(reason)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "CONTROLLER_ERROR",
            reason,
        ),
    }
}

async fn start_removal(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    removal::put(&state, &id, &body).await
}

async fn get_removal(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    removal::get(&state, &id).await
}

async fn cancel_removal(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    removal::delete(&state, &id).await
}

/// The contract's `Error` body.
fn error(status: StatusCode, code: &str, reason: String) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": reason, "code": code })),
    )
        .into_response()
}
