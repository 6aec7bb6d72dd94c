//! Pure builders: a KafkaCluster (plus what the reconciler decided, such as the cluster id
//! and the broker StatefulSet size) in, desired Kubernetes objects out. One file per kind.

pub mod configmap;
pub mod pdb;
pub mod service;
pub mod statefulset;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};

use crate::crd::KafkaCluster;
use crate::names::{ClusterNames, Pool};

/// Everything that varies between reconciles besides the spec.
#[derive(Clone, Debug)]
pub struct BuildInput<'a> {
    pub kc: &'a KafkaCluster,
    pub names: ClusterNames,
    /// Generated once and kept in status.
    pub cluster_id: &'a str,
    /// Broker StatefulSet size: the spec's, except while a scale-down is draining brokers.
    pub broker_replicas: i32,
}

impl<'a> BuildInput<'a> {
    pub fn new(kc: &'a KafkaCluster, cluster_id: &'a str, broker_replicas: i32) -> Self {
        let names = ClusterNames::new(&kc.name_any(), &kc.namespace().unwrap_or_default());
        Self {
            kc,
            names,
            cluster_id,
            broker_replicas,
        }
    }

    pub fn replicas(&self, pool: Pool) -> i32 {
        match pool {
            Pool::Controller => self.kc.spec.controllers.replicas,
            Pool::Broker => self.broker_replicas,
        }
    }

    /// Metadata with our labels and a controller owner reference, so that deleting the
    /// KafkaCluster garbage-collects everything and changes to children trigger a reconcile.
    pub fn meta(&self, name: String, labels: BTreeMap<String, String>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.names.namespace.clone()),
            labels: Some(labels),
            owner_references: self.kc.controller_owner_ref(&()).map(|o| vec![o]),
            ..Default::default()
        }
    }
}

/// All desired objects, in the order they are applied: config before the workloads using it.
#[derive(Clone, Debug, Default)]
pub struct Desired {
    pub config_maps: Vec<ConfigMap>,
    pub services: Vec<Service>,
    pub stateful_sets: Vec<StatefulSet>,
    pub pdbs: Vec<PodDisruptionBudget>,
}

pub fn desired(input: &BuildInput) -> Desired {
    let pools = [Pool::Controller, Pool::Broker];
    let mut services: Vec<Service> = pools.iter().map(|p| service::headless(input, *p)).collect();
    services.push(service::bootstrap(input));
    services.extend(service::external(input));
    Desired {
        config_maps: pools
            .iter()
            .map(|p| configmap::pool_config(input, *p))
            .collect(),
        services,
        stateful_sets: pools.iter().map(|p| statefulset::pool(input, *p)).collect(),
        pdbs: pools.iter().map(|p| pdb::pool(input, *p)).collect(),
    }
}

/// Multi-document YAML of all desired objects, for golden files and review.
/// (k8s-openapi serializes apiVersion and kind itself.)
pub fn to_yaml(d: &Desired) -> Result<String, serde_yaml::Error> {
    let mut docs = Vec::new();
    for cm in &d.config_maps {
        docs.push(serde_yaml::to_string(cm)?);
    }
    for s in &d.services {
        docs.push(serde_yaml::to_string(s)?);
    }
    for s in &d.stateful_sets {
        docs.push(serde_yaml::to_string(s)?);
    }
    for p in &d.pdbs {
        docs.push(serde_yaml::to_string(p)?);
    }
    Ok(docs.join("---\n"))
}

/// Stable 64-bit FNV-1a, hex encoded: unlike std's hasher it never changes between Rust
/// releases, so upgrading the operator does not restart every pod.
pub fn stable_hash(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_hash_is_fnv1a() {
        assert_eq!(stable_hash(""), "cbf29ce484222325");
        assert_eq!(stable_hash("a"), "af63dc4c8601ec8c");
    }
}
