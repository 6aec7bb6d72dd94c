//! The CEL rules of the checked-in CRD, evaluated client-side the way the API server would:
//! objects that cannot work are rejected before the operator sees them.

use kube::core::cel::Validator;
use serde_json::{json, Value};

fn schema() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/kafkacluster.yaml");
    let crd: Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

fn object(spec: Value) -> Value {
    json!({"apiVersion": "streaming.example.dev/v1alpha1", "kind": "KafkaCluster",
           "metadata": {"name": "demo"}, "spec": spec})
}

/// Specs as stored after defaulting (the API server applies defaults before CEL).
fn full(extra: Value) -> Value {
    let mut spec = json!({
        "image": "b:1",
        "controllers": {"replicas": 3, "storage": {"size": "10Gi"}, "scheduling": {}},
        "brokers": {"replicas": 3, "storage": {"size": "10Gi"}, "scheduling": {}},
        "listeners": {"clientPort": 9092},
        "topicDefaults": {"partitions": 3, "replicationFactor": 3, "minInsyncReplicas": 2},
        "pvcRetention": {"whenScaled": "Retain", "whenDeleted": "Retain"},
        "podTemplate": {}
    });
    merge(&mut spec, &extra);
    spec
}

fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        _ => *target = patch.clone(),
    }
}

fn errors(spec: Value, old: Option<Value>) -> String {
    let old = old.map(object);
    match Validator::new().validate(&schema(), &object(spec), old.as_ref()) {
        Ok(()) => String::new(),
        Err(e) => format!("{e:?}"),
    }
}

#[test]
fn a_defaulted_spec_passes() {
    assert_eq!(errors(full(json!({})), None), "");
}

#[test]
fn even_controller_counts_are_rejected() {
    let e = errors(full(json!({"controllers": {"replicas": 4}})), None);
    assert!(e.contains("must be odd"), "{e}");
}

#[test]
fn min_insync_above_replication_factor_is_rejected() {
    let e = errors(
        full(json!({"topicDefaults": {"minInsyncReplicas": 4}})),
        None,
    );
    assert!(e.contains("must not exceed"), "{e}");
}

#[test]
fn node_port_needs_a_base_and_hosts_need_the_ordinal() {
    let e = errors(
        full(
            json!({"listeners": {"external": {"type": "NodePort", "port": 9094, "advertisedHostTemplate": "k.example.test"}}}),
        ),
        None,
    );
    assert!(e.contains("nodePortBase is required"), "{e}");
    assert!(e.contains("must contain {ordinal}"), "{e}");
}

#[test]
fn storage_cannot_change_but_replicas_can() {
    let old = full(json!({}));
    let e = errors(
        full(json!({"brokers": {"storage": {"storageClassName": "fast"}}})),
        Some(old.clone()),
    );
    assert!(e.contains("storage is immutable"), "{e}");
    assert_eq!(
        errors(full(json!({"brokers": {"replicas": 5}})), Some(old)),
        ""
    );
}
