//! FindCoordinator: this node coordinates every group; the offsets topic is
//! created on the first lookup, as Kafka does.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{ApiKey, BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use crate::controller::InternalTopic;
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
        // Retriable for the client, as in Kafka: e.g. fewer brokers yet than
        // offsets.topic.replication.factor.
        let cause =
            ResponseError::try_from_code(code).map_or(code.to_string(), |e| format!("{e:?}"));
        return base
            .with_error_code(ResponseError::CoordinatorNotAvailable.code())
            .with_error_message(Some(StrBytes::from_string(format!(
                "the group coordinator is not available: creating __consumer_offsets failed with {cause}"
            ))));
    }
    // The coordinator is the leader of the group's partition of __consumer_offsets.
    let image = state.image();
    let partition = state.groups.partition_of(&base.key);
    let leader = image
        .topic(InternalTopic::ConsumerOffsets.name())
        .and_then(|t| t.partitions.get(partition as usize))
        .map(|p| p.leader);
    let address = leader
        .and_then(|id| image.brokers.get(&id))
        .filter(|b| !b.fenced)
        .and_then(|b| Some((b.id, crate::server::listeners::broker_address(b)?)));
    // Led here but not loaded yet: clients look again shortly.
    let address = address
        .filter(|(id, _)| *id != state.config.node_id || state.groups.serves_partition(partition));
    let Some((id, (host, port))) = address else {
        return base
            .with_error_code(ResponseError::CoordinatorNotAvailable.code())
            .with_error_message(Some(StrBytes::from_string(format!(
                "partition {partition} of __consumer_offsets has no leader yet, or it is loading"
            ))));
    };
    base.with_node_id(BrokerId(id))
        .with_host(StrBytes::from_string(host))
        .with_port(port as i32)
}
