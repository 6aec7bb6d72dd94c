//! Status of a KafkaCluster from what one reconcile pass observed and did. Pure.

use k8s_openapi::api::apps::v1::StatefulSet;
use kube::Resource;

use crate::crd::{Condition, KafkaCluster, KafkaClusterStatus, PoolStatus};
use crate::names::ClusterNames;
use crate::scaling::machine::Outcome;
use crate::scaling::{Operation, Scaling};

/// Where the rolling restart stands after this pass.
pub enum RestartState {
    Idle,
    Blocked(String),
    Restarting(String),
}

pub fn pools_ready(s: &KafkaClusterStatus) -> bool {
    [&s.controllers, &s.brokers].iter().all(|p| {
        p.as_ref()
            .is_some_and(|p| p.replicas > 0 && p.ready_replicas == p.replicas)
    })
}

pub fn build_status(
    kc: &KafkaCluster,
    names: &ClusterNames,
    old: &KafkaClusterStatus,
    sets: &[StatefulSet],
    scaling: &Scaling,
    restart: &RestartState,
) -> KafkaClusterStatus {
    let generation = kc.meta().generation;
    let pool = |sts: Option<&StatefulSet>| {
        sts.map(|s| PoolStatus {
            replicas: s.spec.replicas.unwrap_or(0),
            ready_replicas: s
                .status
                .as_ref()
                .and_then(|st| st.ready_replicas)
                .unwrap_or(0),
        })
    };
    let mut status = KafkaClusterStatus {
        cluster_id: old.cluster_id.clone(),
        observed_generation: generation,
        conditions: Vec::new(),
        controllers: pool(sets.first()),
        brokers: pool(sets.get(1)),
        bootstrap: Some(names.bootstrap_address(kc.spec.listeners.client_port)),
        operation: None,
    };
    let restarting_pod = match restart {
        RestartState::Restarting(p) => Some(p.clone()),
        _ => None,
    };
    if scaling.op.is_some() || restarting_pod.is_some() {
        status.operation = Some(Operation {
            scale_down: scaling.op.clone(),
            restarting_pod,
        });
    }
    let (degraded, d_reason, d_msg) = match &scaling.outcome {
        Outcome::Refused(m) => (true, "ScaleDownRefused", m.clone()),
        Outcome::Failed(m) => (true, "ScaleDownFailed", m.clone()),
        _ => (
            false,
            "AsExpected",
            "the cluster matches its spec or is converging".to_string(),
        ),
    };
    let ready = pools_ready(&status);
    let (progressing, p_reason, p_msg) = match (&scaling.op, restart) {
        (Some(_), _) => (true, "ScalingDown", progress_message(&scaling.outcome)),
        (None, RestartState::Restarting(p)) => (true, "RollingRestart", format!("restarting {p}")),
        (None, RestartState::Blocked(r)) => (true, "RollingRestart", r.clone()),
        (None, RestartState::Idle) if !ready => (
            true,
            "PodsStarting",
            "waiting for pods to become ready".into(),
        ),
        (None, RestartState::Idle) => (
            false,
            "Stable",
            "all pods run the current configuration".into(),
        ),
    };
    let conditions = vec![
        condition(
            old,
            generation,
            "Ready",
            ready,
            if ready { "PoolsReady" } else { "PoolsNotReady" },
            &pool_message(&status),
        ),
        condition(
            old,
            generation,
            "Progressing",
            progressing,
            p_reason,
            &p_msg,
        ),
        condition(old, generation, "Degraded", degraded, d_reason, &d_msg),
    ];
    status.conditions = merge_conditions(&old.conditions, conditions);
    status
}

fn progress_message(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Started(m) | Outcome::Progress(m) | Outcome::Failed(m) => m.clone(),
        _ => "scaling down brokers".into(),
    }
}

fn pool_message(s: &KafkaClusterStatus) -> String {
    let f = |p: &Option<PoolStatus>| {
        p.as_ref()
            .map(|p| format!("{}/{}", p.ready_replicas, p.replicas))
            .unwrap_or_else(|| "0/0".into())
    };
    format!(
        "controllers {} ready, brokers {} ready",
        f(&s.controllers),
        f(&s.brokers)
    )
}

/// A condition whose transition time only moves when its status changes.
pub fn condition(
    old: &KafkaClusterStatus,
    generation: Option<i64>,
    type_: &str,
    on: bool,
    reason: &str,
    message: &str,
) -> Condition {
    let status = if on { "True" } else { "False" };
    let last = old
        .conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| k8s_openapi::jiff::Timestamp::now().to_string());
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        last_transition_time: Some(last),
        observed_generation: generation,
    }
}

/// New conditions replace old ones of the same type; others are kept.
pub fn merge_conditions(old: &[Condition], new: Vec<Condition>) -> Vec<Condition> {
    let mut out: Vec<Condition> = old
        .iter()
        .filter(|o| !new.iter().any(|n| n.type_ == o.type_))
        .cloned()
        .collect();
    out.extend(new);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::scaling::machine::{begin, broker_statefulset_replicas};
    use crate::test_support::cluster;

    fn sts(replicas: i32, ready: i32) -> StatefulSet {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x"},
            "spec": {"replicas": replicas, "selector": {}, "template": {}},
            "status": {"replicas": replicas, "readyReplicas": ready}
        }))
        .unwrap()
    }

    fn find<'a>(s: &'a KafkaClusterStatus, t: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == t).unwrap()
    }

    fn idle(replicas: i32) -> Scaling {
        Scaling {
            op: None,
            broker_replicas: replicas,
            outcome: Outcome::Idle,
        }
    }

    #[test]
    fn ready_and_stable_when_all_pods_are_ready() {
        let kc = cluster(serde_json::json!({"image": "b:1"}));
        let names = ClusterNames::new("demo", "ns");
        let s = build_status(
            &kc,
            &names,
            &Default::default(),
            &[sts(3, 3), sts(3, 3)],
            &idle(3),
            &RestartState::Idle,
        );
        assert_eq!(find(&s, "Ready").status, "True");
        assert_eq!(find(&s, "Progressing").reason, "Stable");
        assert_eq!(find(&s, "Degraded").status, "False");
        assert_eq!(s.bootstrap.as_deref(), Some("demo-bootstrap.ns.svc:9092"));
        assert_eq!(
            s.brokers,
            Some(PoolStatus {
                replicas: 3,
                ready_replicas: 3
            })
        );
        assert!(s.operation.is_none());
    }

    #[test]
    fn refusal_is_degraded_and_restart_is_progressing() {
        let kc = cluster(serde_json::json!({"image": "b:1"}));
        let names = ClusterNames::new("demo", "ns");
        let refused = Scaling {
            op: None,
            broker_replicas: 3,
            outcome: Outcome::Refused("topic t needs 3".into()),
        };
        let s = build_status(
            &kc,
            &names,
            &Default::default(),
            &[sts(3, 3), sts(3, 2)],
            &refused,
            &RestartState::Restarting("demo-broker-1".into()),
        );
        assert_eq!(find(&s, "Degraded").reason, "ScaleDownRefused");
        assert_eq!(find(&s, "Degraded").message, "topic t needs 3");
        assert_eq!(find(&s, "Ready").status, "False");
        assert_eq!(find(&s, "Progressing").reason, "RollingRestart");
        assert_eq!(
            s.operation.unwrap().restarting_pod.as_deref(),
            Some("demo-broker-1")
        );
    }

    #[test]
    fn scale_down_in_progress_is_shown() {
        let kc = cluster(serde_json::json!({"image": "b:1"}));
        let names = ClusterNames::new("demo", "ns");
        let view = crate::broker_api::ClusterView {
            cluster_id: "c".into(),
            active_controller_id: None,
            brokers: vec![],
            topics: vec![],
        };
        let step = begin(4, 3, &view);
        let scaling = Scaling {
            broker_replicas: broker_statefulset_replicas(3, Some(4), step.op.as_ref()),
            op: step.op,
            outcome: step.outcome,
        };
        let s = build_status(
            &kc,
            &names,
            &Default::default(),
            &[sts(3, 3), sts(4, 4)],
            &scaling,
            &RestartState::Idle,
        );
        assert_eq!(find(&s, "Progressing").reason, "ScalingDown");
        assert!(find(&s, "Progressing")
            .message
            .contains("draining brokers 3"));
        assert_eq!(s.operation.unwrap().scale_down.unwrap().from, 4);
    }

    #[test]
    fn conditions_keep_transition_time_while_unchanged() {
        let mut old = KafkaClusterStatus::default();
        let first = condition(&old, Some(1), "Ready", true, "PoolsReady", "m");
        old.conditions = vec![Condition {
            last_transition_time: Some("2020-01-01T00:00:00Z".into()),
            ..first
        }];
        let again = condition(&old, Some(2), "Ready", true, "PoolsReady", "m");
        assert_eq!(
            again.last_transition_time.as_deref(),
            Some("2020-01-01T00:00:00Z")
        );
        let flipped = condition(&old, Some(2), "Ready", false, "PoolsNotReady", "m");
        assert_ne!(
            flipped.last_transition_time.as_deref(),
            Some("2020-01-01T00:00:00Z")
        );
    }
}
