//! Names, labels, ports and node ids derived from a cluster. Kept in one place so that the
//! resource builders, the config generator and the reconciler can never disagree.

use std::collections::BTreeMap;

pub const CONTROLLER_PORT: i32 = 9093;
pub const REPLICATION_PORT: i32 = 9091;
pub const ADMIN_PORT: i32 = 8080;
pub const DATA_DIR: &str = "/var/lib/kafka/data";
pub const CONFIG_DIR: &str = "/etc/kafka";
pub const MANAGER: &str = "kafka-operator";
pub const FINALIZER: &str = "streaming.example.dev/pvc-retention";
/// Pod template annotation holding the hash of the pool's generated config; a change makes a
/// new StatefulSet revision, which is how outdated pods are found under `OnDelete`.
pub const CONFIG_HASH_ANNOTATION: &str = "streaming.example.dev/config-hash";

/// Controller node ids start here so they never collide with broker ids (brokers are capped
/// below this by the schema).
pub const CONTROLLER_ID_BASE: i32 = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pool {
    Controller,
    Broker,
}

impl Pool {
    pub fn as_str(self) -> &'static str {
        match self {
            Pool::Controller => "controller",
            Pool::Broker => "broker",
        }
    }

    /// Node id of the pod with this ordinal: stable across restarts, distinct across pools.
    pub fn node_id(self, ordinal: i32) -> i32 {
        match self {
            Pool::Controller => CONTROLLER_ID_BASE + ordinal,
            Pool::Broker => ordinal,
        }
    }
}

/// Naming for one KafkaCluster in one namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterNames {
    pub cluster: String,
    pub namespace: String,
}

impl ClusterNames {
    pub fn new(cluster: &str, namespace: &str) -> Self {
        Self {
            cluster: cluster.to_string(),
            namespace: namespace.to_string(),
        }
    }

    /// StatefulSet, headless Service, ConfigMap and PDB of a pool share this name.
    pub fn pool(&self, pool: Pool) -> String {
        format!("{}-{}", self.cluster, pool.as_str())
    }

    pub fn pod(&self, pool: Pool, ordinal: i32) -> String {
        format!("{}-{}", self.pool(pool), ordinal)
    }

    /// Stable DNS name a pod gets through its pool's headless Service.
    pub fn pod_host(&self, pool: Pool, ordinal: i32) -> String {
        format!(
            "{}.{}.{}.svc",
            self.pod(pool, ordinal),
            self.pool(pool),
            self.namespace
        )
    }

    pub fn bootstrap_service(&self) -> String {
        format!("{}-bootstrap", self.cluster)
    }

    pub fn external_service(&self, ordinal: i32) -> String {
        format!("{}-external", self.pod(Pool::Broker, ordinal))
    }

    pub fn bootstrap_address(&self, client_port: i32) -> String {
        format!(
            "{}.{}.svc:{}",
            self.bootstrap_service(),
            self.namespace,
            client_port
        )
    }

    /// Base URL of the admin API, served by every broker behind the bootstrap Service.
    pub fn admin_url(&self) -> String {
        format!(
            "http://{}.{}.svc:{}",
            self.bootstrap_service(),
            self.namespace,
            ADMIN_PORT
        )
    }

    /// Claim created by the StatefulSet's `data` volume claim template for one pod.
    pub fn pvc(&self, pool: Pool, ordinal: i32) -> String {
        format!("data-{}", self.pod(pool, ordinal))
    }

    /// Labels every object of the cluster carries.
    pub fn cluster_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".to_string(), "kafka".to_string()),
            (
                "app.kubernetes.io/instance".to_string(),
                self.cluster.clone(),
            ),
            (
                "app.kubernetes.io/managed-by".to_string(),
                MANAGER.to_string(),
            ),
        ])
    }

    /// Selector of one pool's pods; must never change for an existing StatefulSet.
    pub fn selector(&self, pool: Pool) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".to_string(), "kafka".to_string()),
            (
                "app.kubernetes.io/instance".to_string(),
                self.cluster.clone(),
            ),
            (
                "app.kubernetes.io/component".to_string(),
                pool.as_str().to_string(),
            ),
        ])
    }

    pub fn pool_labels(&self, pool: Pool) -> BTreeMap<String, String> {
        let mut labels = self.cluster_labels();
        labels.extend(self.selector(pool));
        labels
    }
}

/// Ordinal of a StatefulSet pod from its name (`<sts>-<n>`).
pub fn ordinal_from_pod_name(name: &str) -> Option<i32> {
    name.rsplit_once('-').and_then(|(_, n)| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_distinct_across_pools() {
        let controllers: Vec<i32> = (0..9).map(|o| Pool::Controller.node_id(o)).collect();
        let brokers: Vec<i32> = (0..999).map(|o| Pool::Broker.node_id(o)).collect();
        assert!(controllers.iter().all(|c| !brokers.contains(c)));
        assert_eq!(Pool::Controller.node_id(4), 1004);
    }

    #[test]
    fn pod_host_uses_headless_service() {
        let n = ClusterNames::new("kc", "prod");
        assert_eq!(
            n.pod_host(Pool::Broker, 2),
            "kc-broker-2.kc-broker.prod.svc"
        );
        assert_eq!(n.pvc(Pool::Controller, 0), "data-kc-controller-0");
        assert_eq!(ordinal_from_pod_name("kc-broker-12"), Some(12));
        assert_eq!(ordinal_from_pod_name("nope"), None);
    }
}
