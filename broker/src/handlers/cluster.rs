//! DescribeCluster: the brokers and the controller, as AdminClient shows them.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use crate::server::listeners::broker_address;
use crate::server::BrokerState;

pub const VERSIONS: &[(ApiKey, i16, i16)] = &[(ApiKey::DescribeCluster, 0, 1)];

pub async fn handle(
    state: &BrokerState,
    _version: i16,
    _request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let image = state.image();
    let brokers = image
        .brokers
        .values()
        .filter_map(|b| {
            // The address on the listener this request came in on.
            let (host, port) = broker_address(b)?;
            Some(
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(b.id))
                    .with_host(StrBytes::from_string(host))
                    .with_port(port as i32)
                    .with_rack(b.rack.clone().map(StrBytes::from_string))
                    .with_is_fenced(b.fenced),
            )
        })
        .collect();
    DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(image.cluster_id.clone()))
        .with_controller_id(BrokerId(state.config.node_id))
        .with_brokers(brokers)
        .with_cluster_authorized_operations(i32::MIN)
}
