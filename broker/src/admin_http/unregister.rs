//! `DELETE /admin/v1/brokers/{id}`: an UnregisterBroker request to the active
//! controller over this node's controller channel.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{BrokerId, UnregisterBrokerRequest};

use super::error;
use super::exclusion::ASK_TIMEOUT;
use crate::client::{ClientError, ControllerChannel};

/// 204 once unregistered; 404 when not registered; 409 while it still runs
/// or holds replicas.
pub async fn unregister(controllers: &ControllerChannel, id: i32) -> Response {
    let request = UnregisterBrokerRequest::default().with_broker_id(BrokerId(id));
    let response = match controllers.send(&request, ASK_TIMEOUT).await {
        Ok(response) => response,
        Err(e @ (ClientError::NoController(_) | ClientError::Timeout(_))) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "NO_ACTIVE_CONTROLLER",
                format!("asking the active controller: {e}"),
            )
        }
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "CONTROLLER_ERROR",
                format!("asking the active controller: {e}"),
            )
        }
    };
    let message = response
        .error_message
        .as_ref()
        .map_or_else(String::new, |m| m.to_string());
    match ResponseError::try_from_code(response.error_code) {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(ResponseError::BrokerIdNotRegistered) => {
            error(StatusCode::NOT_FOUND, "UNKNOWN_BROKER", message)
        }
        Some(ResponseError::InvalidRequest) => {
            error(StatusCode::CONFLICT, "BROKER_IN_USE", message)
        }
        Some(other) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "CONTROLLER_ERROR",
            format!("the controller refused with {other:?}: {message}"),
        ),
    }
}
