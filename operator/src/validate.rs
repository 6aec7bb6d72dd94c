//! Checks of a spec the API server accepted but that cannot work. Each problem is a sentence
//! for the Degraded condition; any problem stops the reconcile before anything is changed.

use crate::config::check_user_key;
use crate::crd::{ExternalType, KafkaClusterSpec};
use crate::names::{ADMIN_PORT, CONTROLLER_PORT, REPLICATION_PORT};

pub fn problems(spec: &KafkaClusterSpec) -> Vec<String> {
    let mut out = Vec::new();
    let c = spec.controllers.replicas;
    if c < 1 || c % 2 == 0 {
        out.push(format!(
            "controllers.replicas is {c}; it must be odd and at least 1"
        ));
    }
    let b = spec.brokers.replicas;
    if b < 1 {
        out.push(format!("brokers.replicas is {b}; it must be at least 1"));
    }
    let t = &spec.topic_defaults;
    if t.replication_factor > b {
        out.push(format!(
            "topicDefaults.replicationFactor is {} but brokers.replicas is only {b}",
            t.replication_factor
        ));
    }
    if t.min_insync_replicas > t.replication_factor {
        out.push(format!(
            "topicDefaults.minInsyncReplicas ({}) exceeds topicDefaults.replicationFactor ({})",
            t.min_insync_replicas, t.replication_factor
        ));
    }
    for key in [
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
    ] {
        if let Some(v) = spec.brokers.config.get(key) {
            match v.parse::<i32>() {
                Ok(rf) if rf > b => out.push(format!(
                    "brokers.config: {key} is {rf} but brokers.replicas is only {b}"
                )),
                Ok(rf) if rf < 1 => out.push(format!("brokers.config: {key} must be at least 1")),
                Ok(_) => {}
                Err(_) => out.push(format!("brokers.config: {key} must be a number, not {v:?}")),
            }
        }
    }
    for (pool, config) in [
        ("controllers", &spec.controllers.config),
        ("brokers", &spec.brokers.config),
    ] {
        out.extend(
            config
                .keys()
                .filter_map(|k| check_user_key(k))
                .map(|p| format!("{pool}.config: {p}")),
        );
    }
    let reserved = [
        (REPLICATION_PORT, "replication"),
        (CONTROLLER_PORT, "controller"),
        (ADMIN_PORT, "admin"),
    ];
    let mut ports = vec![("listeners.clientPort", spec.listeners.client_port)];
    if let Some(ext) = &spec.listeners.external {
        ports.push(("listeners.external.port", ext.port));
    }
    for (field, port) in ports {
        if let Some((_, what)) = reserved.iter().find(|(p, _)| *p == port) {
            out.push(format!("{field} {port} is taken by the {what} listener"));
        }
    }
    if let Some(ext) = &spec.listeners.external {
        if ext.type_ == ExternalType::NodePort && ext.node_port_base.is_none() {
            out.push("listeners.external.nodePortBase is required for NodePort".into());
        }
        if !ext.advertised_host_template.contains("{ordinal}") {
            out.push("listeners.external.advertisedHostTemplate must contain {ordinal}".into());
        }
        if ext.port == spec.listeners.client_port {
            out.push("listeners.external.port must differ from listeners.clientPort".into());
        }
    }
    if spec.image.trim().is_empty() {
        out.push("image must not be empty".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> KafkaClusterSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn default_spec_is_valid() {
        assert!(problems(&spec(serde_json::json!({"image": "b:1"}))).is_empty());
    }

    #[test]
    fn each_problem_is_named() {
        let p = problems(&spec(serde_json::json!({
            "image": "b:1",
            "controllers": {"replicas": 2},
            "brokers": {"replicas": 2, "config": {"node.id": "7", "bogus.key": "x"}},
            "topicDefaults": {"replicationFactor": 3, "minInsyncReplicas": 4}
        })));
        assert_eq!(
            p,
            [
                "controllers.replicas is 2; it must be odd and at least 1",
                "topicDefaults.replicationFactor is 3 but brokers.replicas is only 2",
                "topicDefaults.minInsyncReplicas (4) exceeds topicDefaults.replicationFactor (3)",
                "brokers.config: unknown config key \"bogus.key\"",
                "brokers.config: config key \"node.id\" is managed by the operator and cannot be overridden",
            ]
        );
    }

    #[test]
    fn external_access_problems_are_named() {
        let p = problems(&spec(serde_json::json!({
            "image": " ",
            "listeners": {"clientPort": 9094, "external": {
                "type": "NodePort", "port": 9094, "advertisedHostTemplate": "kafka.example.test"}}
        })));
        assert_eq!(
            p,
            [
                "listeners.external.nodePortBase is required for NodePort",
                "listeners.external.advertisedHostTemplate must contain {ordinal}",
                "listeners.external.port must differ from listeners.clientPort",
                "image must not be empty",
            ]
        );
    }

    #[test]
    fn internal_topic_replication_must_fit_the_brokers() {
        let p = problems(&spec(serde_json::json!({
            "image": "b:1",
            "brokers": {"config": {"offsets.topic.replication.factor": "5",
                                   "transaction.state.log.replication.factor": "three"}}
        })));
        assert_eq!(
            p,
            [
                "brokers.config: offsets.topic.replication.factor is 5 but brokers.replicas is only 3",
                "brokers.config: transaction.state.log.replication.factor must be a number, not \"three\"",
            ]
        );
    }

    #[test]
    fn ports_of_the_operator_listeners_are_reserved() {
        let p = problems(&spec(
            serde_json::json!({"image": "b:1", "listeners": {"clientPort": 9091,
            "external": {"type": "LoadBalancer", "port": 8080, "advertisedHostTemplate": "k{ordinal}.test"}}}),
        ));
        assert_eq!(
            p,
            [
                "listeners.clientPort 9091 is taken by the replication listener",
                "listeners.external.port 8080 is taken by the admin listener",
            ]
        );
    }
}
