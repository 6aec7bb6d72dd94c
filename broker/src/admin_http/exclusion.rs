//! `PUT`/`DELETE /admin/v1/brokers/{id}/exclusion`: sets or lifts the
//! broker's `broker.excluded` config with an IncrementalAlterConfigs request
//! to the active controller, over this node's controller channel, so every
//! node (broker-only, standby controller or the active one) serves it alike.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::error;
use crate::client::{ClientError, ControllerChannel};
use crate::metadata::image::EXCLUDED_KEY;
use crate::metadata::records::BROKER_RESOURCE;

/// How long a node looks for the active controller and waits for the commit.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(10);

/// IncrementalAlterConfigs' SET and DELETE operations.
const SET: i8 = 0;
const DELETE: i8 = 1;

/// Why an exclusion change did not happen.
#[derive(Debug, PartialEq)]
pub enum ExclusionError {
    /// The controller has no such broker registered.
    UnknownBroker(String),
    /// No active controller answered in time.
    NoController(String),
    /// The controller refused for another reason (a bug on one side or the other).
    Refused(String),
}

/// Why a dynamic broker config change did not happen.
#[derive(Debug, PartialEq)]
pub enum AlterError {
    /// The controller refused it with this Kafka error code and message.
    Refused { code: i16, message: String },
    /// No active controller answered in time.
    NoController(String),
}

/// Excludes `broker` (`excluded`) or lifts its exclusion, once committed,
/// giving up when no active controller answers within `timeout`.
pub async fn set_excluded(
    controllers: &ControllerChannel,
    broker: i32,
    excluded: bool,
    timeout: Duration,
) -> Result<(), ExclusionError> {
    let value = excluded.then_some("true");
    alter_broker_config(
        controllers,
        &broker.to_string(),
        EXCLUDED_KEY,
        value,
        timeout,
    )
    .await
    .map_err(|e| match e {
        AlterError::Refused { code, message }
            if code == ResponseError::BrokerIdNotRegistered.code() =>
        {
            ExclusionError::UnknownBroker(message)
        }
        AlterError::Refused { code, message } => ExclusionError::Refused(format!(
            "the controller refused with error {code}: {message}"
        )),
        AlterError::NoController(reason) => ExclusionError::NoController(reason),
    })
}

/// Sets `key` of the BROKER resource `resource` (a broker id, or empty for the
/// cluster default) to `value`, or deletes it for `None`, once committed.
pub async fn alter_broker_config(
    controllers: &ControllerChannel,
    resource: &str,
    key: &str,
    value: Option<&str>,
    timeout: Duration,
) -> Result<(), AlterError> {
    let response = controllers
        .send(&request(resource, key, value), timeout)
        .await
        .map_err(|e| match e {
            ClientError::NoController(_) | ClientError::Timeout(_) => {
                AlterError::NoController(format!("asking the active controller: {e}"))
            }
            other => AlterError::Refused {
                code: ResponseError::UnknownServerError.code(),
                message: format!("asking the active controller: {other}"),
            },
        })?;
    outcome(&response)
}

fn request(resource: &str, key: &str, value: Option<&str>) -> IncrementalAlterConfigsRequest {
    let config = AlterableConfig::default().with_name(StrBytes::from_string(key.to_string()));
    let config = match value {
        Some(value) => config
            .with_config_operation(SET)
            .with_value(Some(StrBytes::from_string(value.to_string()))),
        None => config.with_config_operation(DELETE).with_value(None),
    };
    IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(BROKER_RESOURCE)
        .with_resource_name(StrBytes::from_string(resource.to_string()))
        .with_configs(vec![config])])
}

fn outcome(response: &IncrementalAlterConfigsResponse) -> Result<(), AlterError> {
    let Some(result) = response.responses.first() else {
        return Err(AlterError::Refused {
            code: ResponseError::UnknownServerError.code(),
            message: "the controller answered IncrementalAlterConfigs without a result".into(),
        });
    };
    match result.error_code {
        0 => Ok(()),
        code => Err(AlterError::Refused {
            code,
            message: result
                .error_message
                .as_ref()
                .map_or_else(String::new, |m| m.to_string()),
        }),
    }
}

/// The contract's status and code for a broker config change the controller refused
/// (removal, demotion).
pub fn refusal(e: AlterError) -> Response {
    let (code, message) = match e {
        AlterError::NoController(reason) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "NO_ACTIVE_CONTROLLER",
                reason,
            )
        }
        AlterError::Refused { code, message } => (code, message),
    };
    let (status, name) = match ResponseError::try_from_code(code) {
        Some(ResponseError::BrokerIdNotRegistered) => (StatusCode::NOT_FOUND, "UNKNOWN_BROKER"),
        Some(ResponseError::InvalidReplicationFactor) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "REPLICATION_FACTOR_UNSATISFIABLE",
        ),
        Some(ResponseError::ReassignmentInProgress) => (StatusCode::CONFLICT, "REMOVAL_CONFLICT"),
        Some(ResponseError::InvalidRequest) => (StatusCode::BAD_REQUEST, "INVALID_REQUEST"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "CONTROLLER_ERROR"),
    };
    error(status, name, message)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
    use tokio::sync::watch;

    use super::*;
    use crate::client::ClientOptions;

    #[tokio::test]
    async fn no_controller_answering_is_reported_as_such() {
        // A voter address with nothing listening.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (_tx, leader) = watch::channel(Some(1000));
        let channel = ControllerChannel::new(
            &[(1000, "127.0.0.1".into(), port)],
            leader,
            ClientOptions::default(),
        );
        let outcome = set_excluded(&channel, 2, true, Duration::from_millis(300)).await;
        assert!(
            matches!(outcome, Err(ExclusionError::NoController(_))),
            "{outcome:?}"
        );
    }

    fn answer(code: i16, message: &str) -> IncrementalAlterConfigsResponse {
        IncrementalAlterConfigsResponse::default().with_responses(vec![
            AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(Some(StrBytes::from_string(message.into()))),
        ])
    }

    #[test]
    fn put_sets_the_key_and_delete_removes_it() {
        let put = request("2", EXCLUDED_KEY, Some("true"));
        let resource = &put.resources[0];
        assert_eq!(
            (resource.resource_type, resource.resource_name.as_str()),
            (4, "2")
        );
        let config = &resource.configs[0];
        assert_eq!(
            (
                config.name.as_str(),
                config.config_operation,
                config.value.as_deref()
            ),
            (EXCLUDED_KEY, SET, Some("true"))
        );
        let delete = request("2", EXCLUDED_KEY, None);
        let config = &delete.resources[0].configs[0];
        assert_eq!(
            (config.config_operation, config.value.as_deref()),
            (DELETE, None)
        );
    }

    #[test]
    fn answers_map_to_outcomes() {
        assert_eq!(outcome(&answer(0, "")), Ok(()));
        assert_eq!(
            outcome(&answer(102, "Broker 9 is not registered.")),
            Err(AlterError::Refused {
                code: 102,
                message: "Broker 9 is not registered.".into()
            })
        );
        assert!(matches!(
            outcome(&IncrementalAlterConfigsResponse::default()),
            Err(AlterError::Refused { code: -1, .. })
        ));
    }
}
