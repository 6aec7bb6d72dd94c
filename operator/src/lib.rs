//! Kubernetes operator for `KafkaCluster`: pure builders of the desired objects, the
//! reconciler that applies them, and the broker scale-down state machine.

pub mod broker_api;
pub mod config;
pub mod crd;
pub mod leader;
pub mod metrics;
pub mod names;
pub mod reconcile;
pub mod resources;
pub mod rolling;
pub mod scaling;
pub mod status;
pub mod validate;

#[cfg(test)]
pub(crate) mod test_support {
    use crate::crd::{KafkaCluster, KafkaClusterSpec};

    /// A cluster named `demo` in namespace `ns` with a uid, as the API server returns it.
    pub fn cluster(spec: serde_json::Value) -> KafkaCluster {
        let spec: KafkaClusterSpec = serde_json::from_value(spec).expect("valid spec");
        let mut kc = KafkaCluster::new("demo", spec);
        kc.metadata.namespace = Some("ns".into());
        kc.metadata.uid = Some("0000-uid".into());
        kc
    }
}
