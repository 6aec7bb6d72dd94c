//! Per-pool ConfigMap: one `<pod>.properties` file per pod ordinal, so that a container
//! without a shell can pick its own file through `$(POD_NAME)` in its arguments.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;

use super::{stable_hash, BuildInput};
use crate::config::{pod_properties, render};
use crate::names::Pool;

pub fn pool_config(input: &BuildInput, pool: Pool) -> ConfigMap {
    let data: BTreeMap<String, String> = (0..input.replicas(pool))
        .map(|o| {
            let props = pod_properties(&input.kc.spec, &input.names, pool, o);
            (
                format!("{}.properties", input.names.pod(pool, o)),
                render(&props),
            )
        })
        .collect();
    ConfigMap {
        metadata: input.meta(input.names.pool(pool), input.names.pool_labels(pool)),
        data: Some(data),
        ..Default::default()
    }
}

/// Hash of what every pod of the pool is configured with. Ordinal 0's file stands for all:
/// the others differ from it only in ordinal-derived values. Adding pods does not change it,
/// so scaling up restarts nothing.
pub fn config_hash(input: &BuildInput, pool: Pool) -> String {
    let props = pod_properties(&input.kc.spec, &input.names, pool, 0);
    stable_hash(&render(&props))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::cluster;

    #[test]
    fn one_file_per_pod() {
        let kc = cluster(serde_json::json!({"image": "b:1"}));
        let cm = pool_config(&BuildInput::new(&kc, "id", 4), Pool::Broker);
        let keys: Vec<_> = cm.data.unwrap().into_keys().collect();
        assert_eq!(
            keys,
            [
                "demo-broker-0.properties",
                "demo-broker-1.properties",
                "demo-broker-2.properties",
                "demo-broker-3.properties"
            ]
        );
    }

    #[test]
    fn hash_ignores_broker_count_but_not_settings() {
        let kc = cluster(serde_json::json!({"image": "b:1"}));
        let h3 = config_hash(&BuildInput::new(&kc, "id", 3), Pool::Broker);
        assert_eq!(
            h3,
            config_hash(&BuildInput::new(&kc, "id", 5), Pool::Broker)
        );
        let kc2 = cluster(serde_json::json!({"image": "b:1", "topicDefaults": {"partitions": 6}}));
        assert_ne!(
            h3,
            config_hash(&BuildInput::new(&kc2, "id", 3), Pool::Broker)
        );
        // Brokers' voters depend on the controller count: changing it must roll the brokers.
        let kc3 = cluster(serde_json::json!({"image": "b:1", "controllers": {"replicas": 5}}));
        assert_ne!(
            h3,
            config_hash(&BuildInput::new(&kc3, "id", 3), Pool::Broker)
        );
    }
}
