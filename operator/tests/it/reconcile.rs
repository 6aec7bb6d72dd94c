//! Reconcile against a mocked API server: the HTTP calls made for create, scale up, the
//! whole scale-down sequence, refusal, resume after an operator restart, cancel, and the
//! order of a rolling restart.

use crate::support::{context, FakeApi, FakeBroker, KC_PATH};
use operator::reconcile::reconcile;
use serde_json::json;

const APPLY_QUERY: &str = "fieldManager=kafka-operator&force=true";

fn created_cluster_calls() -> Vec<&'static str> {
    vec![
        "PATCH kafkaclusters/demo",
        "PATCH kafkaclusters/demo/status",
        "PATCH configmaps/demo-controller",
        "PATCH configmaps/demo-broker",
        "PATCH services/demo-controller",
        "PATCH services/demo-broker",
        "PATCH services/demo-bootstrap",
        "PATCH statefulsets/demo-controller",
        "PATCH statefulsets/demo-broker",
        "PATCH poddisruptionbudgets/demo-controller",
        "PATCH poddisruptionbudgets/demo-broker",
        "PATCH kafkaclusters/demo/status",
    ]
}

/// A running 3+`brokers` cluster whose pods are all ready.
async fn running(
    brokers: i64,
    topics: &[(&str, i32)],
    extra: serde_json::Value,
) -> (
    FakeApi,
    std::sync::Arc<FakeBroker>,
    std::sync::Arc<operator::reconcile::Context>,
) {
    let (client, api) = FakeApi::start();
    let broker = FakeBroker::with_topics(topics);
    let mut spec = json!({"image": "broker:1", "brokers": {"replicas": brokers}});
    crate::support::merge(&mut spec, &extra);
    api.create_cluster(spec);
    let ctx = context(client, broker.clone());
    reconcile(api.cluster(), ctx.clone()).await.unwrap();
    api.sync_workloads();
    reconcile(api.cluster(), ctx.clone()).await.unwrap();
    api.clear_calls();
    broker.clear_calls();
    (api, broker, ctx)
}

fn scale_down(api: &FakeApi) -> serde_json::Value {
    api.get(KC_PATH).unwrap()["status"]["operation"]["scaleDown"].clone()
}

#[tokio::test]
async fn create_applies_every_object_server_side_in_order() {
    let (client, api) = FakeApi::start();
    let broker = FakeBroker::with_topics(&[]);
    api.create_cluster(json!({"image": "broker:1"}));
    let ctx = context(client, broker.clone());
    reconcile(api.cluster(), ctx).await.unwrap();

    assert_eq!(api.mutations(), created_cluster_calls());
    for c in api
        .calls()
        .iter()
        .filter(|c| c.content_type.starts_with("application/apply-patch"))
    {
        for part in APPLY_QUERY.split('&') {
            assert!(
                c.query.split('&').any(|q| q == part),
                "{} lacks {part}",
                c.path
            );
        }
        assert_eq!(
            c.body["metadata"]["ownerReferences"][0]["uid"], "kc-uid",
            "{}",
            c.path
        );
        assert_eq!(c.body["metadata"]["ownerReferences"][0]["controller"], true);
    }
    let kc = api.get(KC_PATH).unwrap();
    assert_eq!(
        kc["metadata"]["finalizers"][0],
        "streaming.example.dev/pvc-retention"
    );
    let status = &kc["status"];
    let id = status["clusterId"].as_str().unwrap();
    assert_eq!(id.len(), 22);
    assert_eq!(status["bootstrap"], "demo-bootstrap.ns.svc:9092");
    assert_eq!(status["observedGeneration"], 1);
    let env = &api.sts("broker")["spec"]["template"]["spec"]["containers"][0]["env"];
    assert!(
        env.as_array().unwrap().iter().any(|e| e["value"] == id),
        "pods format with the stored id"
    );
    assert_eq!(api.event_reasons(), ["ClusterIdGenerated", "Created"]);
    // No broker admin call is needed to create a cluster.
    assert!(broker.calls().is_empty());
}

#[tokio::test]
async fn cluster_id_is_kept_across_reconciles() {
    let (api, _broker, ctx) = running(3, &[], json!({})).await;
    let id = api.get(KC_PATH).unwrap()["status"]["clusterId"].clone();
    reconcile(api.cluster(), ctx).await.unwrap();
    assert_eq!(api.get(KC_PATH).unwrap()["status"]["clusterId"], id);
    let status = api.get(KC_PATH).unwrap()["status"].clone();
    let ready = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap()
        .clone();
    assert_eq!(ready["status"], "True", "{status}");
}

#[tokio::test]
async fn scale_up_grows_the_statefulset_and_restarts_nothing() {
    let (api, broker, ctx) = running(3, &[("orders", 3)], json!({})).await;
    api.edit_spec(json!({"brokers": {"replicas": 5}}));
    reconcile(api.cluster(), ctx.clone()).await.unwrap();

    assert_eq!(api.sts("broker")["spec"]["replicas"], 5);
    let cm = api
        .get("/api/v1/namespaces/ns/configmaps/demo-broker")
        .unwrap();
    assert!(cm["data"]["demo-broker-4.properties"]
        .as_str()
        .unwrap()
        .contains("node.id=4\n"));
    assert!(
        !api.mutations().iter().any(|m| m.starts_with("DELETE")),
        "no pod is restarted"
    );
    assert!(broker.calls().is_empty());
    api.sync_workloads();
    reconcile(api.cluster(), ctx).await.unwrap();
    assert_eq!(api.pods("broker").len(), 5);
    let status = api.get(KC_PATH).unwrap()["status"].clone();
    assert_eq!(
        status["brokers"],
        json!({"replicas": 5, "readyReplicas": 5})
    );
    assert!(api.event_reasons().contains(&"ScaleUp".to_string()));
}

#[tokio::test]
async fn scale_down_drains_shrinks_unregisters_and_deletes_claims() {
    let (api, broker, ctx) = running(
        5,
        &[("orders", 3)],
        json!({"pvcRetention": {"whenScaled": "Delete"}}),
    )
    .await;
    api.edit_spec(json!({"brokers": {"replicas": 3}}));

    // 1: exclude and start the removal; the StatefulSet keeps its size.
    reconcile(api.cluster(), ctx.clone()).await.unwrap();
    assert_eq!(
        broker.calls(),
        [
            "GET cluster",
            "PUT exclusion 3",
            "PUT exclusion 4",
            "PUT removal scale-down-5-to-3 [3, 4]"
        ]
    );
    assert_eq!(api.sts("broker")["spec"]["replicas"], 5);
    assert_eq!(scale_down(&api)["phase"], "Draining");
    assert!(api
        .event_reasons()
        .contains(&"ScaleDownStarted".to_string()));

    // 2: progress lands in status per broker.
    broker.clear_calls();
    broker.set_progress("scale-down-5-to-3", 2, false);
    reconcile(api.cluster(), ctx.clone()).await.unwrap();
    assert_eq!(broker.calls(), ["GET removal scale-down-5-to-3"]);
    let op = scale_down(&api);
    assert_eq!(
        op["brokers"][0],
        json!({"nodeId": 3, "phase": "Draining", "partitionsRemaining": 2, "bytesRemaining": 2048})
    );
    assert_eq!(api.sts("broker")["spec"]["replicas"], 5);
    let status = api.get(KC_PATH).unwrap()["status"].clone();
    let progressing = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Progressing")
        .unwrap()
        .clone();
    assert_eq!(progressing["reason"], "ScalingDown");
    assert!(
        progressing["message"]
            .as_str()
            .unwrap()
            .contains("4 partitions"),
        "{progressing}"
    );

    // 3: drained -> the StatefulSet is lowered.
    broker.set_progress("scale-down-5-to-3", 0, true);
    api.clear_calls();
    reconcile(api.cluster(), ctx.clone()).await.unwrap();
    let muts = api.mutations();
    let resize = muts
        .iter()
        .position(|m| m == "PATCH statefulsets/demo-broker")
        .unwrap();
    let resize_call = api
        .calls()
        .into_iter()
        .find(|c| c.method == "PATCH" && c.path.ends_with("statefulsets/demo-broker"))
        .unwrap();
    assert_eq!(
        resize_call.body,
        json!({"spec": {"replicas": 3}}),
        "first a plain resize (mutation {resize})"
    );
    assert_eq!(api.sts("broker")["spec"]["replicas"], 3);
    assert_eq!(scale_down(&api)["phase"], "Shrinking");
    let cm = api
        .get("/api/v1/namespaces/ns/configmaps/demo-broker")
        .unwrap();
    assert!(cm["data"].get("demo-broker-3.properties").is_none());

    // 4: pods gone -> unregister; 5: unregister and delete claims, operation cleared.
    api.sync_workloads();
    reconcile(api.cluster(), ctx.clone()).await.unwrap();
    assert_eq!(scale_down(&api)["phase"], "Unregistering");
    api.clear_calls();
    broker.clear_calls();
    reconcile(api.cluster(), ctx.clone()).await.unwrap();
    assert_eq!(broker.calls(), ["DELETE broker 3", "DELETE broker 4"]);
    let muts = api.mutations();
    assert_eq!(
        &muts[..3],
        [
            "DELETE persistentvolumeclaims/data-demo-broker-3",
            "DELETE persistentvolumeclaims/data-demo-broker-4",
            "PATCH kafkaclusters/demo/status"
        ]
    );
    assert!(api.get(KC_PATH).unwrap()["status"]
        .get("operation")
        .is_none());
    assert!(api
        .event_reasons()
        .contains(&"ScaleDownFinished".to_string()));
}

#[tokio::test]
async fn scale_down_is_refused_when_a_topic_needs_more_brokers() {
    let (api, broker, ctx) = running(
        3,
        &[("orders", 3)],
        json!({"topicDefaults": {"replicationFactor": 2, "minInsyncReplicas": 1}}),
    )
    .await;
    api.edit_spec(json!({"brokers": {"replicas": 2}}));
    reconcile(api.cluster(), ctx).await.unwrap();

    assert_eq!(
        broker.calls(),
        ["GET cluster"],
        "nothing asked of the brokers"
    );
    assert_eq!(api.sts("broker")["spec"]["replicas"], 3);
    let status = api.get(KC_PATH).unwrap()["status"].clone();
    assert!(status.get("operation").is_none());
    let degraded = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Degraded")
        .unwrap()
        .clone();
    assert_eq!(degraded["status"], "True");
    assert_eq!(degraded["reason"], "ScaleDownRefused");
    assert_eq!(
        degraded["message"],
        "cannot remove brokers 2: topic \"orders\" has replication factor 3 but only 2 brokers would remain"
    );
    assert!(api
        .event_reasons()
        .contains(&"ScaleDownRefused".to_string()));
}

#[tokio::test]
async fn invalid_spec_is_degraded_and_nothing_is_applied() {
    let (client, api) = FakeApi::start();
    api.create_cluster(
        json!({"image": "broker:1", "brokers": {"config": {"log.retension.ms": "1"}}}),
    );
    let ctx = context(client, FakeBroker::with_topics(&[]));
    reconcile(api.cluster(), ctx).await.unwrap();
    assert_eq!(
        api.mutations(),
        [
            "PATCH kafkaclusters/demo",
            "PATCH kafkaclusters/demo/status"
        ]
    );
    let status = api.get(KC_PATH).unwrap()["status"].clone();
    let degraded = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Degraded")
        .unwrap()
        .clone();
    assert_eq!(degraded["reason"], "InvalidSpec");
    assert_eq!(
        degraded["message"],
        "brokers.config: unknown config key \"log.retension.ms\""
    );
    assert!(status.get("clusterId").is_none());
}

#[tokio::test]
async fn scale_down_resumes_after_operator_restart() {
    let (api, broker, ctx) = running(4, &[("orders", 3)], json!({})).await;
    api.edit_spec(json!({"brokers": {"replicas": 3}}));
    reconcile(api.cluster(), ctx).await.unwrap();
    assert_eq!(scale_down(&api)["phase"], "Draining");

    // A new operator process: fresh context, same API server and brokers.
    let ctx2 = context(api.client(), broker.clone());
    broker.clear_calls();
    broker.set_progress("scale-down-4-to-3", 0, true);
    reconcile(api.cluster(), ctx2.clone()).await.unwrap();
    assert_eq!(
        broker.calls(),
        ["GET removal scale-down-4-to-3"],
        "continues, does not start again"
    );
    assert_eq!(scale_down(&api)["phase"], "Shrinking");
    api.sync_workloads();
    reconcile(api.cluster(), ctx2.clone()).await.unwrap();
    reconcile(api.cluster(), ctx2).await.unwrap();
    assert!(broker.calls().contains(&"DELETE broker 3".to_string()));
    assert_eq!(api.pods("broker").len(), 3);
}

#[tokio::test]
async fn raising_replicas_mid_drain_cancels_cleanly() {
    let (api, broker, ctx) = running(5, &[("orders", 3)], json!({})).await;
    api.edit_spec(json!({"brokers": {"replicas": 3}}));
    reconcile(api.cluster(), ctx.clone()).await.unwrap();
    broker.clear_calls();
    api.edit_spec(json!({"brokers": {"replicas": 5}}));
    reconcile(api.cluster(), ctx).await.unwrap();
    assert_eq!(
        broker.calls(),
        [
            "GET removal scale-down-5-to-3",
            "DELETE removal scale-down-5-to-3",
            "DELETE exclusion 3",
            "DELETE exclusion 4"
        ]
    );
    assert!(broker.state.lock().unwrap().excluded.is_empty());
    assert_eq!(api.sts("broker")["spec"]["replicas"], 5);
    assert!(api.get(KC_PATH).unwrap()["status"]
        .get("operation")
        .is_none());
    assert!(api
        .event_reasons()
        .contains(&"ScaleDownCancelled".to_string()));
}

#[tokio::test]
async fn rolling_restart_order_controllers_first_active_last_then_brokers() {
    let (api, broker, ctx) = running(3, &[("orders", 3)], json!({})).await;
    api.edit_spec(json!({"image": "broker:2"}));
    let mut restarted = Vec::new();
    for _ in 0..12 {
        api.clear_calls();
        reconcile(api.cluster(), ctx.clone()).await.unwrap();
        restarted.extend(
            api.mutations()
                .into_iter()
                .filter_map(|m| m.strip_prefix("DELETE pods/").map(String::from)),
        );
        api.sync_workloads();
    }
    assert_eq!(
        restarted,
        [
            "demo-controller-1",
            "demo-controller-2",
            "demo-controller-0",
            "demo-broker-0",
            "demo-broker-1",
            "demo-broker-2"
        ]
    );
    let calls = broker.calls();
    let demote = calls.iter().position(|c| c == "POST demote 0").unwrap();
    let safety = calls
        .iter()
        .position(|c| c == "GET restart-safety 0")
        .unwrap();
    assert!(safety < demote, "safety is checked before leadership moves");
}

#[tokio::test]
async fn rolling_restart_waits_while_unsafe() {
    let (api, broker, ctx) = running(3, &[("orders", 3)], json!({})).await;
    broker.state.lock().unwrap().unsafe_brokers.insert(0);
    broker.state.lock().unwrap().lagging_voters.insert(1002);
    api.edit_spec(json!({"image": "broker:2"}));
    let progressing = |api: &FakeApi| {
        let status = api.get(KC_PATH).unwrap()["status"].clone();
        status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Progressing")
            .unwrap()["message"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // The StatefulSet controller publishes the new revision after the apply.
    reconcile(api.cluster(), ctx.clone()).await.unwrap();
    api.sync_workloads();
    api.clear_calls();
    reconcile(api.cluster(), ctx.clone()).await.unwrap();
    assert!(
        !api.mutations()
            .iter()
            .any(|m| m.starts_with("DELETE pods/")),
        "voter 1002 lags"
    );
    assert!(
        progressing(&api).contains("caught up"),
        "{}",
        progressing(&api)
    );

    broker.state.lock().unwrap().lagging_voters.clear();
    let mut restarted = Vec::new();
    for _ in 0..6 {
        api.clear_calls();
        reconcile(api.cluster(), ctx.clone()).await.unwrap();
        restarted.extend(
            api.mutations()
                .into_iter()
                .filter_map(|m| m.strip_prefix("DELETE pods/").map(String::from)),
        );
        api.sync_workloads();
    }
    assert_eq!(
        restarted,
        [
            "demo-controller-1",
            "demo-controller-2",
            "demo-controller-0"
        ]
    );
    assert!(
        progressing(&api).contains("min.insync.replicas"),
        "{}",
        progressing(&api)
    );
    assert!(
        !broker.calls().contains(&"POST demote 0".to_string()),
        "leadership stays while unsafe"
    );
}

#[tokio::test]
async fn delete_applies_the_claim_policy_then_releases_the_finalizer() {
    let (api, _broker, ctx) =
        running(3, &[], json!({"pvcRetention": {"whenDeleted": "Delete"}})).await;
    for name in [
        "data-demo-broker-0",
        "data-demo-controller-0",
        "data-other-broker-0",
    ] {
        api.put(
            &format!("/api/v1/namespaces/ns/persistentvolumeclaims/{name}"),
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                   "metadata": {"name": name, "namespace": "ns",
                                "labels": {"app.kubernetes.io/name": "kafka", "app.kubernetes.io/instance": "demo",
                                           "app.kubernetes.io/managed-by": "kafka-operator"}}}),
        );
    }
    let mut kc = api.get(KC_PATH).unwrap();
    kc["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    api.put(KC_PATH, kc);
    reconcile(api.cluster(), ctx).await.unwrap();
    assert_eq!(
        api.mutations(),
        [
            "DELETE persistentvolumeclaims/data-demo-broker-0",
            "DELETE persistentvolumeclaims/data-demo-controller-0",
            "PATCH kafkaclusters/demo"
        ]
    );
    assert_eq!(
        api.get(KC_PATH).unwrap()["metadata"]["finalizers"],
        json!([])
    );
    assert!(api
        .get("/api/v1/namespaces/ns/persistentvolumeclaims/data-other-broker-0")
        .is_some());
}

#[tokio::test]
async fn delete_keeps_claims_by_default() {
    let (api, _broker, ctx) = running(3, &[], json!({})).await;
    let mut kc = api.get(KC_PATH).unwrap();
    kc["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    api.put(KC_PATH, kc);
    reconcile(api.cluster(), ctx).await.unwrap();
    assert_eq!(api.mutations(), ["PATCH kafkaclusters/demo"]);
}

#[tokio::test]
async fn external_services_follow_the_broker_count() {
    let external = json!({"listeners": {"external": {"type": "NodePort", "nodePortBase": 31000,
        "advertisedHostTemplate": "node{ordinal}.example.test"}}});
    let (api, broker, ctx) = running(4, &[("orders", 3)], external).await;
    let svc = |n: i32| {
        api.get(&format!(
            "/api/v1/namespaces/ns/services/demo-broker-{n}-external"
        ))
    };
    assert_eq!(svc(3).unwrap()["spec"]["ports"][0]["nodePort"], 31003);
    api.edit_spec(json!({"brokers": {"replicas": 3}}));
    reconcile(api.cluster(), ctx.clone()).await.unwrap();
    assert!(svc(3).is_some(), "kept while broker 3 drains");
    broker.set_progress("scale-down-4-to-3", 0, true);
    reconcile(api.cluster(), ctx.clone()).await.unwrap();
    assert!(svc(3).is_none(), "removed with broker 3");
    assert!(svc(2).is_some());
    api.edit_spec(json!({"listeners": {"external": null}}));
    reconcile(api.cluster(), ctx).await.unwrap();
    assert!(
        svc(0).is_none(),
        "disabling external access removes every external service"
    );
}

#[tokio::test]
async fn unreachable_admin_api_is_reported_and_changes_nothing() {
    let (api, broker, ctx) = running(4, &[("orders", 3)], json!({})).await;
    broker.state.lock().unwrap().unreachable = true;
    api.edit_spec(json!({"brokers": {"replicas": 3}}));
    let err = reconcile(api.cluster(), ctx.clone()).await.unwrap_err();
    assert_eq!(err.metric_label(), "broker_api");
    assert_eq!(api.sts("broker")["spec"]["replicas"], 4);
    let status = api.get(KC_PATH).unwrap()["status"].clone();
    let degraded = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Degraded")
        .unwrap()
        .clone();
    assert_eq!(degraded["reason"], "AdminApiUnavailable");
    assert!(degraded["message"]
        .as_str()
        .unwrap()
        .contains("connection refused"));
    assert!(status.get("operation").is_none());
    assert!(api
        .event_reasons()
        .contains(&"AdminApiUnavailable".to_string()));
    assert!(ctx.metrics.render().contains("error=\"broker_api\"} 1"));

    // Once it answers again the scale-down starts and Degraded clears.
    broker.state.lock().unwrap().unreachable = false;
    reconcile(api.cluster(), ctx).await.unwrap();
    let status = api.get(KC_PATH).unwrap()["status"].clone();
    let degraded = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Degraded")
        .unwrap()
        .clone();
    assert_eq!(degraded["status"], "False");
    assert_eq!(status["operation"]["scaleDown"]["phase"], "Draining");
}

#[tokio::test]
async fn broker_restart_waits_until_its_leadership_has_moved() {
    let (api, broker, ctx) = running(3, &[("orders", 3)], json!({})).await;
    broker.state.lock().unwrap().sticky_leaders.insert(0, 2);
    api.edit_spec(json!({"brokers": {"config": {"num.io.threads": "16"}}}));
    let mut restarted = Vec::new();
    for _ in 0..4 {
        api.clear_calls();
        reconcile(api.cluster(), ctx.clone()).await.unwrap();
        restarted.extend(
            api.mutations()
                .into_iter()
                .filter_map(|m| m.strip_prefix("DELETE pods/").map(String::from)),
        );
        api.sync_workloads();
    }
    assert!(
        restarted.is_empty(),
        "only broker config changed, and broker 0 still leads: {restarted:?}"
    );
    assert!(broker.calls().contains(&"POST demote 0".to_string()));
    let status = api.get(KC_PATH).unwrap()["status"].clone();
    let progressing = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Progressing")
        .unwrap()
        .clone();
    assert_eq!(
        progressing["message"],
        "moving 2 leaderships off demo-broker-0 before restarting it"
    );

    broker.state.lock().unwrap().sticky_leaders.clear();
    api.clear_calls();
    reconcile(api.cluster(), ctx).await.unwrap();
    assert!(api
        .mutations()
        .contains(&"DELETE pods/demo-broker-0".to_string()));
}

#[tokio::test]
async fn an_outdated_broker_that_is_down_is_restarted_without_checks() {
    let (api, broker, ctx) = running(3, &[("orders", 3)], json!({})).await;
    broker.state.lock().unwrap().unsafe_brokers.insert(2);
    api.edit_spec(json!({"brokers": {"config": {"num.io.threads": "16"}}}));
    reconcile(api.cluster(), ctx.clone()).await.unwrap();
    api.sync_workloads();
    let pod = "/api/v1/namespaces/ns/pods/demo-broker-2";
    let mut down = api.get(pod).unwrap();
    down["status"]["conditions"][0]["status"] = json!("False");
    api.put(pod, down);
    api.clear_calls();
    broker.clear_calls();
    reconcile(api.cluster(), ctx).await.unwrap();
    assert!(api
        .mutations()
        .contains(&"DELETE pods/demo-broker-2".to_string()));
    assert!(
        broker.calls().is_empty(),
        "no safety check or demotion for a pod that is down"
    );
}

#[tokio::test]
async fn admin_api_errors_are_told_apart_from_unreachability() {
    let (api, broker, ctx) = running(4, &[("orders", 3)], json!({})).await;
    broker.state.lock().unwrap().cluster_view_fails = true;
    api.edit_spec(json!({"brokers": {"replicas": 3}}));
    reconcile(api.cluster(), ctx).await.unwrap_err();
    let status = api.get(KC_PATH).unwrap()["status"].clone();
    let degraded = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Degraded")
        .unwrap()
        .clone();
    assert_eq!(degraded["reason"], "AdminApiError");
    assert!(
        degraded["message"]
            .as_str()
            .unwrap()
            .contains("no active controller"),
        "{degraded}"
    );
}
