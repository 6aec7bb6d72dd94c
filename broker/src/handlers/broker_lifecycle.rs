//! BrokerRegistration (v0-4) and BrokerHeartbeat (v0-1): controller APIs
//! that brokers call; the rules live in the controller.

use kafka_protocol::messages::{
    ApiKey, BrokerHeartbeatRequest, BrokerHeartbeatResponse, BrokerRegistrationRequest,
    BrokerRegistrationResponse,
};

use crate::controller::{monotonic_ms, BrokerHeartbeat, BrokerRegistration, Controller};
use crate::metadata::records::{BrokerEndpoint, BrokerFeature};

pub const VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::BrokerRegistration, 0, 4),
    (ApiKey::BrokerHeartbeat, 0, 1),
];

pub async fn broker_registration(
    controller: &Controller,
    _version: i16,
    request: BrokerRegistrationRequest,
) -> BrokerRegistrationResponse {
    let registration = BrokerRegistration {
        broker_id: request.broker_id.0,
        cluster_id: request.cluster_id.to_string(),
        incarnation_id: request.incarnation_id,
        listeners: request
            .listeners
            .iter()
            .map(|l| BrokerEndpoint {
                name: l.name.to_string(),
                host: l.host.to_string(),
                port: l.port,
                security_protocol: l.security_protocol,
            })
            .collect(),
        features: request
            .features
            .iter()
            .map(|f| BrokerFeature {
                name: f.name.to_string(),
                min_supported_version: f.min_supported_version,
                max_supported_version: f.max_supported_version,
            })
            .collect(),
        rack: request.rack.as_ref().map(|r| r.to_string()),
        is_migrating_zk_broker: request.is_migrating_zk_broker,
    };
    match controller.register_broker(registration, monotonic_ms()) {
        Ok(epoch) => BrokerRegistrationResponse::default().with_broker_epoch(epoch),
        Err(e) => {
            let error = e.to_api_error();
            tracing::info!(broker = request.broker_id.0, %error, "broker registration refused");
            BrokerRegistrationResponse::default()
                .with_error_code(error.code())
                .with_broker_epoch(-1)
        }
    }
}

pub async fn broker_heartbeat(
    controller: &Controller,
    _version: i16,
    request: BrokerHeartbeatRequest,
) -> BrokerHeartbeatResponse {
    let heartbeat = BrokerHeartbeat {
        broker_id: request.broker_id.0,
        broker_epoch: request.broker_epoch,
        current_metadata_offset: request.current_metadata_offset,
        want_fence: request.want_fence,
        want_shut_down: request.want_shut_down,
    };
    match controller.broker_heartbeat(heartbeat, monotonic_ms()) {
        Ok(reply) => BrokerHeartbeatResponse::default()
            .with_is_caught_up(reply.is_caught_up)
            .with_is_fenced(reply.is_fenced)
            .with_should_shut_down(reply.should_shut_down),
        Err(e) => BrokerHeartbeatResponse::default()
            .with_error_code(e.to_api_error().code())
            .with_is_fenced(true),
    }
}
