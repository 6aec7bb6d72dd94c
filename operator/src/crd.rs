//! The `KafkaCluster` custom resource: spec (what the user asks for) and status (what the
//! operator observed and is doing). Schema validation lives here as schemars attributes and
//! CEL rules so that the API server rejects obviously wrong objects before we see them.

// kube's printcolumn(...) entries repeat keys such as `type_` by design.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, ResourceRequirements, Toleration, TopologySpreadConstraint,
};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::scaling::Operation;

/// A Kafka-compatible cluster in KRaft external mode: a controller-only pool and a broker-only pool.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "streaming.example.dev",
    version = "v1alpha1",
    kind = "KafkaCluster",
    namespaced,
    shortname = "kc",
    status = "KafkaClusterStatus",
    // `kubectl scale kafkacluster/NAME --replicas=N` sets the broker count.
    scale(
        spec_replicas_path = ".spec.brokers.replicas",
        status_replicas_path = ".status.brokers.replicas"
    ),
    doc = "A Kafka-compatible cluster in KRaft mode with separate controller and broker pools",
    printcolumn(
        name = "Controllers",
        type_ = "integer",
        json_path = ".spec.controllers.replicas"
    ),
    printcolumn(
        name = "Brokers",
        type_ = "integer",
        json_path = ".spec.brokers.replicas"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new(
    "self.topicDefaults.minInsyncReplicas <= self.topicDefaults.replicationFactor"
).message("topicDefaults.minInsyncReplicas must not exceed topicDefaults.replicationFactor"))]
#[serde(rename_all = "camelCase")]
pub struct KafkaClusterSpec {
    /// Container image holding the `broker` binary, used by both pools.
    #[schemars(length(min = 1))]
    pub image: String,
    /// Image pull policy for both pools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,
    /// The KRaft controller quorum (process.roles=controller).
    #[serde(default)]
    pub controllers: ControllerPool,
    /// The brokers serving clients (process.roles=broker).
    #[serde(default)]
    pub brokers: BrokerPool,
    /// Ports and external access of the brokers.
    #[serde(default)]
    pub listeners: Listeners,
    /// Defaults for topics created without explicit settings.
    #[serde(default)]
    pub topic_defaults: TopicDefaults,
    /// What happens to PersistentVolumeClaims of removed pods.
    #[serde(default)]
    pub pvc_retention: PvcRetention,
    /// Metadata and scheduling applied to the pods of both pools; a pool's `scheduling` wins.
    #[serde(default)]
    pub pod_template: PodTemplateOverrides,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.replicas % 2 == 1")
    .message("controllers.replicas must be odd so that a majority survives a failure"))]
#[serde(rename_all = "camelCase")]
pub struct ControllerPool {
    /// Number of KRaft voters; odd, so that a majority survives a failure.
    #[serde(default = "default_controller_replicas")]
    #[schemars(range(min = 1, max = 9))]
    pub replicas: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default)]
    pub storage: Storage,
    /// Extra server properties for this pool; operator-managed keys are rejected.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// Where the pool's pods run; each field set here replaces the podTemplate's.
    #[serde(default)]
    pub scheduling: Scheduling,
}

impl Default for ControllerPool {
    fn default() -> Self {
        Self {
            replicas: default_controller_replicas(),
            resources: None,
            storage: Storage::default(),
            config: BTreeMap::new(),
            scheduling: Scheduling::default(),
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrokerPool {
    /// Number of brokers. Lowering it drains the highest-numbered brokers before removing them.
    #[serde(default = "default_broker_replicas")]
    #[schemars(range(min = 1, max = 999))]
    pub replicas: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default)]
    pub storage: Storage,
    /// Extra server properties for this pool; operator-managed keys are rejected.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// Where the pool's pods run; each field set here replaces the podTemplate's.
    #[serde(default)]
    pub scheduling: Scheduling,
    /// Node label whose value becomes `broker.rack` (e.g. topology.kubernetes.io/zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack_topology_key: Option<String>,
}

impl Default for BrokerPool {
    fn default() -> Self {
        Self {
            replicas: default_broker_replicas(),
            resources: None,
            storage: Storage::default(),
            config: BTreeMap::new(),
            scheduling: Scheduling::default(),
            rack_topology_key: None,
        }
    }
}

/// Persistent storage of one pod. Immutable: StatefulSet volume claim templates cannot change.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self == oldSelf")
    .message("storage is immutable once the cluster exists"))]
#[serde(rename_all = "camelCase")]
pub struct Storage {
    /// Requested size, a Kubernetes quantity such as `10Gi`.
    #[serde(default = "default_storage_size")]
    #[schemars(
        regex(pattern = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"),
        length(max = 32)
    )]
    pub size: String,
    /// StorageClass of the claims; the cluster default when unset.
    // Bounded lengths keep the CEL cost estimate of the immutability rule small.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub storage_class_name: Option<String>,
}

impl Default for Storage {
    fn default() -> Self {
        Self {
            size: default_storage_size(),
            storage_class_name: None,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Scheduling {
    /// Node labels the pool's pods require.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations of the pool's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    /// Affinity of the pool's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Topology spread of the pool's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,
    /// PriorityClass of the pool's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplateOverrides {
    /// Extra labels of every pod (the operator's own labels win on conflict).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Extra annotations of every pod.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Tolerations of every pod unless its pool sets its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    /// Affinity of every pod unless its pool sets its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Topology spread of every pod unless its pool sets its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Listeners {
    /// Port clients connect to (the bootstrap Service and every broker).
    #[serde(default = "default_client_port")]
    #[schemars(range(min = 1024, max = 65535))]
    pub client_port: i32,
    /// Optional access from outside the cluster through one Service per broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalAccess>,
}

impl Default for Listeners {
    fn default() -> Self {
        Self {
            client_port: default_client_port(),
            external: None,
        }
    }
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.type != 'NodePort' || has(self.nodePortBase)")
    .message("external.nodePortBase is required when external.type is NodePort"))]
#[serde(rename_all = "camelCase")]
pub struct ExternalAccess {
    /// Kind of the per-broker Services.
    #[serde(rename = "type")]
    pub type_: ExternalType,
    /// Port of the EXTERNAL listener inside the pod and of a LoadBalancer Service.
    #[serde(default = "default_external_port")]
    #[schemars(range(min = 1024, max = 65535))]
    pub port: i32,
    /// Host advertised to external clients; `{ordinal}` is replaced by the broker's pod ordinal.
    #[x_kube(validation = Rule::new("self.contains('{ordinal}')")
        .message("advertisedHostTemplate must contain {ordinal} so that every broker is distinct"))]
    #[schemars(length(min = 1, max = 253))]
    pub advertised_host_template: String,
    /// NodePort of broker 0; broker N uses nodePortBase + N.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 30000, max = 32767))]
    pub node_port_base: Option<i32>,
    /// Annotations for the per-broker Services (e.g. load balancer settings).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum ExternalType {
    NodePort,
    LoadBalancer,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicDefaults {
    /// num.partitions of auto-created topics.
    #[serde(default = "default_partitions")]
    #[schemars(range(min = 1))]
    pub partitions: i32,
    /// default.replication.factor; also used for the internal offsets and transaction topics.
    #[serde(default = "default_replication_factor")]
    #[schemars(range(min = 1))]
    pub replication_factor: i32,
    /// min.insync.replicas.
    #[serde(default = "default_min_insync")]
    #[schemars(range(min = 1))]
    pub min_insync_replicas: i32,
    /// log.retention.ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_ms: Option<i64>,
    /// log.retention.bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_bytes: Option<i64>,
    /// log.segment.bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1048576))]
    pub segment_bytes: Option<i64>,
}

impl Default for TopicDefaults {
    fn default() -> Self {
        Self {
            partitions: default_partitions(),
            replication_factor: default_replication_factor(),
            min_insync_replicas: default_min_insync(),
            retention_ms: None,
            retention_bytes: None,
            segment_bytes: None,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PvcRetention {
    /// Claims of pods removed by lowering replicas.
    #[serde(default)]
    pub when_scaled: RetentionPolicy,
    /// Claims of all pods when the KafkaCluster is deleted.
    #[serde(default)]
    pub when_deleted: RetentionPolicy,
}

/// Keeping data is the safe default: deleting a claim cannot be undone.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum RetentionPolicy {
    #[default]
    Retain,
    Delete,
}

/// What the operator observed and is doing.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaClusterStatus {
    /// Generated once; every node formats its storage with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Progressing and Degraded, each with a reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Replicas of the controller StatefulSet and how many are ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controllers: Option<PoolStatus>,
    /// Replicas of the broker StatefulSet and how many are ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brokers: Option<PoolStatus>,
    /// host:port clients bootstrap from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<String>,
    /// The multi-step operation in progress; persisted so that it resumes after a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PoolStatus {
    /// Pods the StatefulSet is asked to run.
    pub replicas: i32,
    /// Pods passing their readiness probe.
    pub ready_replicas: i32,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Ready, Progressing or Degraded.
    #[serde(rename = "type")]
    pub type_: String,
    /// "True", "False" or "Unknown".
    pub status: String,
    pub reason: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The CRD as YAML, exactly as checked in under `crds/` and shipped in the Helm chart.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    use kube::CustomResourceExt;
    serde_yaml::to_string(&KafkaCluster::crd())
}

fn default_controller_replicas() -> i32 {
    3
}
fn default_broker_replicas() -> i32 {
    3
}
fn default_storage_size() -> String {
    "10Gi".into()
}
fn default_client_port() -> i32 {
    9092
}
fn default_external_port() -> i32 {
    9094
}
fn default_partitions() -> i32 {
    3
}
fn default_replication_factor() -> i32 {
    3
}
fn default_min_insync() -> i32 {
    2
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    fn schema() -> serde_json::Value {
        let crd = serde_json::to_value(KafkaCluster::crd()).unwrap();
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
    }

    #[test]
    fn defaults_fill_an_almost_empty_spec() {
        let spec: KafkaClusterSpec =
            serde_json::from_value(serde_json::json!({"image": "broker:1"})).unwrap();
        assert_eq!(spec.controllers.replicas, 3);
        assert_eq!(spec.brokers.replicas, 3);
        assert_eq!(spec.listeners.client_port, 9092);
        assert_eq!(spec.topic_defaults.min_insync_replicas, 2);
        assert_eq!(spec.pvc_retention.when_deleted, RetentionPolicy::Retain);
    }

    #[test]
    fn schema_carries_cel_rules() {
        let s = schema().to_string();
        for rule in [
            "self.replicas % 2 == 1",
            "self == oldSelf",
            "self.type != 'NodePort' || has(self.nodePortBase)",
            "self.topicDefaults.minInsyncReplicas <= self.topicDefaults.replicationFactor",
        ] {
            assert!(s.contains(rule), "missing CEL rule {rule}");
        }
    }

    #[test]
    fn crd_has_status_subresource_short_name_and_columns() {
        let crd = serde_json::to_value(KafkaCluster::crd()).unwrap();
        assert_eq!(crd["spec"]["names"]["shortNames"][0], "kc");
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        let v = &crd["spec"]["versions"][0];
        assert!(v["subresources"]["status"].is_object());
        assert_eq!(
            v["subresources"]["scale"]["specReplicasPath"],
            ".spec.brokers.replicas"
        );
        let cols: Vec<&str> = v["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(cols, ["Controllers", "Brokers", "Ready", "Age"]);
    }

    #[test]
    fn replica_bounds_are_in_the_schema() {
        let s = schema();
        let spec = &s["properties"]["spec"]["properties"];
        assert_eq!(
            spec["controllers"]["properties"]["replicas"]["minimum"].as_f64(),
            Some(1.0)
        );
        assert_eq!(
            spec["brokers"]["properties"]["replicas"]["minimum"].as_f64(),
            Some(1.0)
        );
        assert_eq!(spec["brokers"]["properties"]["replicas"]["default"], 3);
    }
}
