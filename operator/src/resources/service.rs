//! Services: a headless Service per pool for stable pod DNS, the `<cluster>-bootstrap`
//! Service for clients (and the operator's admin API calls), and optional per-broker
//! external Services.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::BuildInput;
use crate::crd::ExternalType;
use crate::names::{Pool, ADMIN_PORT, CONTROLLER_PORT, REPLICATION_PORT};

fn port(name: &str, port: i32) -> ServicePort {
    ServicePort {
        name: Some(name.to_string()),
        port,
        target_port: Some(IntOrString::String(name.to_string())),
        protocol: Some("TCP".into()),
        ..Default::default()
    }
}

/// Container ports of a pool; the Services refer to them by name.
pub fn pool_ports(input: &BuildInput, pool: Pool) -> Vec<(&'static str, i32)> {
    match pool {
        Pool::Controller => vec![("controller", CONTROLLER_PORT), ("admin", ADMIN_PORT)],
        Pool::Broker => {
            let mut ports = vec![
                ("client", input.kc.spec.listeners.client_port),
                ("replication", REPLICATION_PORT),
                ("admin", ADMIN_PORT),
            ];
            if let Some(ext) = &input.kc.spec.listeners.external {
                ports.push(("external", ext.port));
            }
            ports
        }
    }
}

pub fn headless(input: &BuildInput, pool: Pool) -> Service {
    Service {
        metadata: input.meta(input.names.pool(pool), input.names.pool_labels(pool)),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            // Controllers must resolve each other before any is ready, or no quorum forms.
            publish_not_ready_addresses: Some(true),
            selector: Some(input.names.selector(pool)),
            ports: Some(
                pool_ports(input, pool)
                    .into_iter()
                    .map(|(n, p)| port(n, p))
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn bootstrap(input: &BuildInput) -> Service {
    let mut labels = input.names.cluster_labels();
    labels.insert("app.kubernetes.io/component".into(), "bootstrap".into());
    Service {
        metadata: input.meta(input.names.bootstrap_service(), labels),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(input.names.selector(Pool::Broker)),
            ports: Some(vec![
                port("client", input.kc.spec.listeners.client_port),
                port("admin", ADMIN_PORT),
            ]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// One Service per broker so that each is reachable at the address it advertises.
pub fn external(input: &BuildInput) -> Vec<Service> {
    let Some(ext) = &input.kc.spec.listeners.external else {
        return Vec::new();
    };
    (0..input.broker_replicas)
        .map(|o| {
            let pod = input.names.pod(Pool::Broker, o);
            let mut labels = input.names.cluster_labels();
            labels.insert("app.kubernetes.io/component".into(), "external".into());
            let mut meta = input.meta(input.names.external_service(o), labels);
            if !ext.annotations.is_empty() {
                meta.annotations = Some(ext.annotations.clone());
            }
            let mut p = port("external", ext.port);
            if let (ExternalType::NodePort, Some(base)) = (ext.type_, ext.node_port_base) {
                p.node_port = Some(base + o);
            }
            Service {
                metadata: meta,
                spec: Some(ServiceSpec {
                    type_: Some(
                        match ext.type_ {
                            ExternalType::NodePort => "NodePort",
                            ExternalType::LoadBalancer => "LoadBalancer",
                        }
                        .into(),
                    ),
                    selector: Some(BTreeMap::from([(
                        "statefulset.kubernetes.io/pod-name".to_string(),
                        pod,
                    )])),
                    ports: Some(vec![p]),
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::cluster;

    #[test]
    fn bootstrap_selects_brokers_only() {
        let kc = cluster(serde_json::json!({"image": "b:1"}));
        let s = bootstrap(&BuildInput::new(&kc, "id", 3));
        let sel = s.spec.unwrap().selector.unwrap();
        assert_eq!(sel["app.kubernetes.io/component"], "broker");
        assert_eq!(s.metadata.name.unwrap(), "demo-bootstrap");
    }

    #[test]
    fn external_services_follow_broker_count() {
        let kc = cluster(
            serde_json::json!({"image": "b:1", "listeners": {"external": {
            "type": "NodePort", "advertisedHostTemplate": "n{ordinal}.test", "nodePortBase": 31000}}}),
        );
        let svcs = external(&BuildInput::new(&kc, "id", 2));
        assert_eq!(svcs.len(), 2);
        let p = &svcs[1].spec.as_ref().unwrap().ports.as_ref().unwrap()[0];
        assert_eq!(p.node_port, Some(31001));
        assert!(external(&BuildInput::new(
            &cluster(serde_json::json!({"image": "b:1"})),
            "id",
            2
        ))
        .is_empty());
    }
}
