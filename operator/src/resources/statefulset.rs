//! StatefulSets of the two pools. `OnDelete` updates: the operator restarts pods itself, in
//! an order that keeps partitions and the quorum available.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
    StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, HTTPGetAction, ObjectFieldSelector, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SeccompProfile,
    SecurityContext, TopologySpreadConstraint, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::configmap::config_hash;
use super::service::pool_ports;
use super::BuildInput;
use crate::config::RACK_ENV;
use crate::crd::{PodTemplateOverrides, PullPolicy, Scheduling, Storage};
use crate::names::{Pool, CONFIG_DIR, CONFIG_HASH_ANNOTATION, DATA_DIR};

/// Unprivileged uid/gid of the distroless-style image.
const RUN_AS: i64 = 65532;
pub const CLUSTER_ID_ENV: &str = "KAFKA_CLUSTER_ID";

pub fn pool(input: &BuildInput, pool: Pool) -> StatefulSet {
    let spec = &input.kc.spec;
    let (resources, storage, scheduling) = match pool {
        Pool::Controller => (
            &spec.controllers.resources,
            &spec.controllers.storage,
            &spec.controllers.scheduling,
        ),
        Pool::Broker => (
            &spec.brokers.resources,
            &spec.brokers.storage,
            &spec.brokers.scheduling,
        ),
    };
    // The operator's labels win: they carry the selector, which must keep matching.
    let mut labels = spec.pod_template.labels.clone();
    labels.extend(input.names.pool_labels(pool));
    let mut annotations = spec.pod_template.annotations.clone();
    annotations.insert(CONFIG_HASH_ANNOTATION.into(), config_hash(input, pool));

    let config_file = format!("{CONFIG_DIR}/$(POD_NAME).properties");
    let main = Container {
        name: "kafka".into(),
        image: Some(spec.image.clone()),
        image_pull_policy: spec.image_pull_policy.map(pull_policy),
        args: Some(vec!["start".into(), "-c".into(), config_file.clone()]),
        env: Some(env(input, pool)),
        ports: Some(
            pool_ports(input, pool)
                .into_iter()
                .map(|(name, port)| ContainerPort {
                    name: Some(name.into()),
                    container_port: port,
                    protocol: Some("TCP".into()),
                    ..Default::default()
                })
                .collect(),
        ),
        resources: resources.clone(),
        liveness_probe: Some(probe("/healthz", 10)),
        readiness_probe: Some(probe("/readyz", 5)),
        // Log recovery after an unclean stop can take long; do not kill the pod meanwhile.
        startup_probe: Some(Probe {
            failure_threshold: Some(60),
            ..probe("/healthz", 10)
        }),
        security_context: Some(container_security()),
        volume_mounts: Some(mounts()),
        ..Default::default()
    };
    // Formatting is idempotent (--ignore-formatted), so it runs on every start.
    let format = Container {
        name: "format-storage".into(),
        args: Some(vec![
            "storage".into(),
            "format".into(),
            "-t".into(),
            format!("$({CLUSTER_ID_ENV})"),
            "-c".into(),
            config_file,
            "--ignore-formatted".into(),
        ]),
        ports: None,
        resources: None,
        liveness_probe: None,
        readiness_probe: None,
        startup_probe: None,
        ..main.clone()
    };

    let pod_spec = PodSpec {
        init_containers: Some(vec![format]),
        containers: vec![main],
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        termination_grace_period_seconds: Some(120),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(RUN_AS),
            run_as_group: Some(RUN_AS),
            fs_group: Some(RUN_AS),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        volumes: Some(vec![
            Volume {
                name: "config".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: input.names.pool(pool),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Volume {
                name: "tmp".into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Default::default()
            },
        ]),
        ..scheduling_fields(input, pool, scheduling, &spec.pod_template)
    };

    StatefulSet {
        metadata: input.meta(input.names.pool(pool), input.names.pool_labels(pool)),
        spec: StatefulSetSpec {
            replicas: Some(input.replicas(pool)),
            service_name: Some(input.names.pool(pool)),
            selector: LabelSelector {
                match_labels: Some(input.names.selector(pool)),
                ..Default::default()
            },
            // All controllers must start together to elect a leader.
            pod_management_policy: Some("Parallel".into()),
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                ..Default::default()
            }),
            // The operator applies the PVC policy itself, after brokers are drained.
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some("Retain".into()),
                    when_scaled: Some("Retain".into()),
                },
            ),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    annotations: Some(annotations),
                    ..Default::default()
                }),
                spec: Some(pod_spec),
            },
            volume_claim_templates: Some(vec![claim(storage, input.names.pool_labels(pool))]),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn pull_policy(p: PullPolicy) -> String {
    match p {
        PullPolicy::Always => "Always",
        PullPolicy::IfNotPresent => "IfNotPresent",
        PullPolicy::Never => "Never",
    }
    .into()
}

fn env(input: &BuildInput, pool: Pool) -> Vec<EnvVar> {
    let field = |name: &str, path: String| EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut env = vec![
        field("POD_NAME", "metadata.name".into()),
        EnvVar {
            name: CLUSTER_ID_ENV.into(),
            value: Some(input.cluster_id.to_string()),
            ..Default::default()
        },
    ];
    if let (Pool::Broker, Some(key)) = (pool, &input.kc.spec.brokers.rack_topology_key) {
        // Node topology labels are copied onto pods by the API server (PodTopologyLabels).
        env.push(field(RACK_ENV, format!("metadata.labels['{key}']")));
    }
    env
}

fn probe(path: &str, period: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("admin".into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(3),
        failure_threshold: Some(3),
        ..Default::default()
    }
}

fn container_security() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn mounts() -> Vec<VolumeMount> {
    let mount = |name: &str, path: &str, read_only: bool| VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: read_only.then_some(true),
        ..Default::default()
    };
    vec![
        mount("config", CONFIG_DIR, true),
        mount("data", DATA_DIR, false),
        mount("tmp", "/tmp", false),
    ]
}

/// Claims carry the cluster labels (copied from the template), which is how the
/// delete-time cleanup finds them.
fn claim(storage: &Storage, labels: BTreeMap<String, String>) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some("data".into()),
            labels: Some(labels),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(storage.size.clone()),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Pool scheduling wins field by field over the cluster-wide pod template; brokers with a
/// rack key and no explicit spread are spread across that key.
fn scheduling_fields(
    input: &BuildInput,
    pool: Pool,
    s: &Scheduling,
    t: &PodTemplateOverrides,
) -> PodSpec {
    let mut spread = s
        .topology_spread_constraints
        .clone()
        .or_else(|| t.topology_spread_constraints.clone());
    if let (Pool::Broker, Some(key), None) =
        (pool, &input.kc.spec.brokers.rack_topology_key, &spread)
    {
        spread = Some(vec![TopologySpreadConstraint {
            max_skew: 1,
            topology_key: key.clone(),
            when_unsatisfiable: "ScheduleAnyway".into(),
            label_selector: Some(LabelSelector {
                match_labels: Some(input.names.selector(pool)),
                ..Default::default()
            }),
            ..Default::default()
        }]);
    }
    PodSpec {
        node_selector: (!s.node_selector.is_empty()).then(|| s.node_selector.clone()),
        tolerations: s.tolerations.clone().or_else(|| t.tolerations.clone()),
        affinity: s.affinity.clone().or_else(|| t.affinity.clone()),
        topology_spread_constraints: spread,
        priority_class_name: s.priority_class_name.clone(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::cluster;

    fn sts(spec: serde_json::Value, pool_kind: Pool) -> StatefulSet {
        let kc = cluster(spec);
        pool(&BuildInput::new(&kc, "cid-1", 3), pool_kind)
    }

    #[test]
    fn pods_are_non_root_with_read_only_root() {
        let s = sts(serde_json::json!({"image": "b:1"}), Pool::Broker);
        let pod = s.spec.template.spec.unwrap();
        assert_eq!(pod.security_context.unwrap().run_as_non_root, Some(true));
        for c in pod
            .containers
            .iter()
            .chain(pod.init_containers.as_ref().unwrap())
        {
            let sc = c.security_context.as_ref().unwrap();
            assert_eq!(sc.read_only_root_filesystem, Some(true), "{}", c.name);
        }
    }

    #[test]
    fn storage_is_formatted_with_the_cluster_id_before_start() {
        let s = sts(serde_json::json!({"image": "b:1"}), Pool::Controller);
        let pod = s.spec.template.spec.unwrap();
        let init = &pod.init_containers.unwrap()[0];
        assert_eq!(
            init.args.as_ref().unwrap().join(" "),
            "storage format -t $(KAFKA_CLUSTER_ID) -c /etc/kafka/$(POD_NAME).properties --ignore-formatted"
        );
        let env = init.env.as_ref().unwrap();
        assert!(env
            .iter()
            .any(|e| e.name == CLUSTER_ID_ENV && e.value.as_deref() == Some("cid-1")));
        assert_eq!(pod.containers[0].args.as_ref().unwrap()[0], "start");
    }

    #[test]
    fn on_delete_updates_and_probes_on_admin_port() {
        let s = sts(serde_json::json!({"image": "b:1"}), Pool::Broker).spec;
        assert_eq!(
            s.update_strategy.unwrap().type_.as_deref(),
            Some("OnDelete")
        );
        let c = &s.template.spec.unwrap().containers[0];
        let ready = c
            .readiness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap();
        assert_eq!(ready.path.as_deref(), Some("/readyz"));
        assert_eq!(ready.port, IntOrString::String("admin".into()));
    }

    #[test]
    fn user_labels_cannot_break_the_selector() {
        let s = sts(
            serde_json::json!({"image": "b:1", "podTemplate": {
                "labels": {"app.kubernetes.io/component": "mine", "team": "a"},
                "annotations": {"streaming.example.dev/config-hash": "x"}}}),
            Pool::Broker,
        );
        let meta = s.spec.template.metadata.unwrap();
        let labels = meta.labels.unwrap();
        assert_eq!(labels["app.kubernetes.io/component"], "broker");
        assert_eq!(labels["team"], "a");
        assert_ne!(meta.annotations.unwrap()[CONFIG_HASH_ANNOTATION], "x");
    }

    #[test]
    fn pool_scheduling_wins_over_template() {
        let s = sts(
            serde_json::json!({"image": "b:1",
                "podTemplate": {"tolerations": [{"key": "a", "operator": "Exists"}]},
                "brokers": {"scheduling": {"tolerations": [{"key": "b", "operator": "Exists"}]},
                            "rackTopologyKey": "topology.kubernetes.io/zone"}}),
            Pool::Broker,
        );
        let pod = s.spec.template.spec.unwrap();
        assert_eq!(pod.tolerations.unwrap()[0].key.as_deref(), Some("b"));
        assert_eq!(
            pod.topology_spread_constraints.unwrap()[0].topology_key,
            "topology.kubernetes.io/zone"
        );
    }
}
