//! The broker's Kafka listeners. Every listener that is not a controller
//! listener is served, as Kafka does: e.g. CLIENT inside a Kubernetes cluster,
//! REPLICATION between brokers, EXTERNAL for clients outside it. A request
//! knows the listener it arrived on, so the addresses a response names
//! (Metadata, DescribeCluster, FindCoordinator) are the ones its client can
//! reach: an external client is told external addresses.

use std::sync::Arc;

use bytes::Bytes;

use crate::config::BrokerConfig;
use crate::handlers::DispatchError;
use crate::metadata::BrokerImage;
use crate::network::Service;
use crate::server::metrics::Metrics;
use crate::server::BrokerState;

tokio::task_local! {
    /// Name of the listener the request being handled arrived on.
    static LISTENER: Arc<str>;
}

/// The broker's request handling, as served on one named listener.
pub struct ListenerService {
    state: Arc<BrokerState>,
    name: Arc<str>,
}

impl ListenerService {
    pub fn new(state: Arc<BrokerState>, name: &str) -> Self {
        ListenerService {
            state,
            name: name.into(),
        }
    }
}

impl Service for ListenerService {
    fn max_frame_bytes(&self) -> u32 {
        self.state.config.socket_request_max_bytes
    }

    fn metrics(&self) -> &Metrics {
        &self.state.metrics
    }

    async fn dispatch(
        &self,
        client_host: &str,
        frame: Bytes,
    ) -> Result<Option<Vec<Bytes>>, DispatchError> {
        let handled = crate::handlers::dispatch(&self.state, client_host, frame);
        LISTENER.scope(self.name.clone(), handled).await
    }
}

/// The listener of the request being handled; `None` outside one (internal
/// callers, unit tests), which then get the client listener's addresses.
pub fn current_listener() -> Option<Arc<str>> {
    LISTENER.try_with(Arc::clone).ok()
}

/// Where the current request's client reaches broker `b`: its endpoint of the
/// request's listener. `None` when `b` registered no such listener (Kafka leaves
/// such brokers out of its answer); outside a request, the first endpoint.
pub fn broker_address(b: &BrokerImage) -> Option<(String, u16)> {
    let by_name = |name: &str| {
        b.endpoints
            .iter()
            .find(|e| e.name == name)
            .map(|e| (e.host.clone(), e.port))
    };
    match current_listener() {
        // A registration without endpoints only has the address it was built with.
        Some(name) if !b.endpoints.is_empty() => by_name(&name),
        _ => Some((b.host.clone(), b.port)),
    }
}

/// Where other nodes reach broker `b`: its endpoint of `listener`
/// (`inter.broker.listener.name`), or its first one when unset or not registered.
pub fn inter_broker_address(b: &BrokerImage, listener: Option<&str>) -> (String, u16) {
    listener
        .and_then(|name| b.endpoints.iter().find(|e| e.name == name))
        .map_or((b.host.clone(), b.port), |e| (e.host.clone(), e.port))
}

/// Where the current request's client reaches this broker.
pub fn own_address(config: &BrokerConfig) -> (String, u16) {
    let current = current_listener();
    let listener = config
        .listeners
        .iter()
        .find(|l| current.as_deref() == Some(l.name.as_str()))
        .or_else(|| config.client_listener())
        .expect("validated at config load: a broker has a client listener");
    config.advertised_address(listener)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::records::BrokerEndpoint;

    fn endpoint(name: &str, host: &str, port: u16) -> BrokerEndpoint {
        BrokerEndpoint {
            name: name.into(),
            host: host.into(),
            port,
            security_protocol: 0,
        }
    }

    fn broker() -> BrokerImage {
        BrokerImage {
            id: 1,
            epoch: 1,
            host: "kc-broker-1.kc-broker.ns.svc".into(),
            port: 9092,
            rack: None,
            fenced: false,
            in_controlled_shutdown: false,
            incarnation_id: uuid::Uuid::nil(),
            endpoints: vec![
                endpoint("CLIENT", "kc-broker-1.kc-broker.ns.svc", 9092),
                endpoint("REPLICATION", "kc-broker-1.kc-broker.ns.svc", 9091),
                endpoint("EXTERNAL", "node-1.example.test", 31001),
            ],
            features: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_request_is_told_the_addresses_of_its_own_listener() {
        let b = broker();
        let on = |name: &'static str| {
            let b = b.clone();
            LISTENER.scope(name.into(), async move { broker_address(&b) })
        };
        assert_eq!(
            on("EXTERNAL").await,
            Some(("node-1.example.test".into(), 31001))
        );
        assert_eq!(
            on("CLIENT").await,
            Some(("kc-broker-1.kc-broker.ns.svc".into(), 9092))
        );
        assert_eq!(on("OTHER").await, None, "a broker without the listener");
        assert_eq!(
            broker_address(&b),
            Some(("kc-broker-1.kc-broker.ns.svc".into(), 9092)),
            "outside a request: the client listener"
        );
    }

    #[tokio::test]
    async fn own_address_follows_the_listener() {
        let text = "process.roles=broker\nnode.id=1\n\
                    controller.quorum.voters=1000@c:9093\ncontroller.listener.names=CONTROLLER\n\
                    listeners=CLIENT://0.0.0.0:9092,EXTERNAL://0.0.0.0:9094\n\
                    advertised.listeners=CLIENT://b1:9092,EXTERNAL://127.0.1.1:31001\n\
                    listener.security.protocol.map=CLIENT:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT\n";
        let config =
            BrokerConfig::from_properties(&crate::config::parse_properties(text).unwrap()).unwrap();
        let external = LISTENER
            .scope("EXTERNAL".into(), async { own_address(&config) })
            .await;
        assert_eq!(external, ("127.0.1.1".into(), 31001));
        assert_eq!(own_address(&config), ("b1".into(), 9092));
    }
}
