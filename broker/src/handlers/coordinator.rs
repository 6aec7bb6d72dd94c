//! FindCoordinator: this node coordinates every group; the offsets topic is
//! created on the first lookup, as Kafka does.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{ApiKey, BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use crate::server::BrokerState;

pub const VERSIONS: &[(ApiKey, i16, i16)] = &[(ApiKey::FindCoordinator, 0, 6)];

const GROUP_KEY_TYPE: i8 = 0;

pub async fn handle(
    state: &BrokerState,
    version: i16,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let keys = if version >= 4 {
        request.coordinator_keys
    } else {
        vec![request.key]
    };
    let mut coordinators = Vec::with_capacity(keys.len());
    for key in keys {
        coordinators.push(find(state, request.key_type, key).await);
    }
    if version >= 4 {
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let c = coordinators.pop().unwrap_or_default();
    FindCoordinatorResponse::default()
        .with_error_code(c.error_code)
        .with_error_message(c.error_message)
        .with_node_id(c.node_id)
        .with_host(c.host)
        .with_port(c.port)
}

async fn find(state: &BrokerState, key_type: i8, key: StrBytes) -> Coordinator {
    let base = Coordinator::default()
        .with_key(key)
        .with_node_id(BrokerId(-1))
        .with_port(-1);
    if key_type != GROUP_KEY_TYPE {
        return base
            .with_error_code(ResponseError::CoordinatorNotAvailable.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "transactions are not supported by this broker",
            )));
    }
    if let Err(code) = state.ensure_offsets_topic().await {
        return base.with_error_code(code);
    }
    let (host, port) = state.advertised_client_address();
    base.with_node_id(BrokerId(state.config.node_id))
        .with_host(StrBytes::from_string(host))
        .with_port(port as i32)
}
