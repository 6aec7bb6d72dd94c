//! The API verbs the operator uses, derived from what the reconciler and leader election
//! actually send (plus the controller's watches), checked in as `rbac-verbs.json`. The Helm
//! test compares the chart's RBAC rules with that file, so RBAC grants exactly these.
//! Refresh after a reviewed change with `UPDATE_RBAC=1 cargo test -p operator --test it rbac`.

use std::collections::{BTreeMap, BTreeSet};

use crate::support::{context, Call, FakeApi, FakeBroker, KC_PATH};
use operator::leader::Elector;
use operator::reconcile::reconcile;
use serde_json::json;

type Verbs = BTreeMap<String, BTreeSet<String>>;

/// "group/resource[/subresource]" and the RBAC verbs of one HTTP call.
fn verbs_of(call: &Call) -> (String, Vec<&'static str>) {
    let segs: Vec<&str> = call.path.trim_start_matches('/').split('/').collect();
    // /api/v1/... has the core group; /apis/<group>/<version>/...
    let (group, rest) = if segs[0] == "api" {
        ("", &segs[2..])
    } else {
        (segs[1], &segs[3..])
    };
    let rest = if rest.first() == Some(&"namespaces") {
        &rest[2..]
    } else {
        rest
    };
    let resource = match rest {
        [r] | [r, _] => r.to_string(),
        [r, _, sub, ..] => format!("{r}/{sub}"),
        [] => String::new(),
    };
    let collection = rest.len() == 1;
    let verbs = match (call.method.as_str(), collection) {
        ("GET", true) if call.query.contains("watch=true") => vec!["watch"],
        ("GET", true) => vec!["list"],
        ("GET", false) => vec!["get"],
        ("POST", _) => vec!["create"],
        ("DELETE", _) => vec!["delete"],
        // Server-side apply creates the object when it is absent.
        ("PATCH", _) if call.content_type.starts_with("application/apply-patch") => {
            vec!["create", "patch"]
        }
        ("PATCH", _) => vec!["patch"],
        _ => vec!["unknown"],
    };
    (format!("{group}/{resource}"), verbs)
}

fn record(out: &mut Verbs, api: &FakeApi) {
    for call in api.calls() {
        let (resource, verbs) = verbs_of(&call);
        out.entry(resource)
            .or_default()
            .extend(verbs.into_iter().map(String::from));
    }
}

async fn settle(api: &FakeApi, ctx: &std::sync::Arc<operator::reconcile::Context>, rounds: usize) {
    for _ in 0..rounds {
        reconcile(api.cluster(), ctx.clone()).await.unwrap();
        api.sync_workloads();
    }
}

#[tokio::test]
async fn rbac_verbs_file_matches_the_calls_made() {
    let mut used = Verbs::new();

    // Lifecycle of a cluster: create, restart for a new image, scale down with claim
    // deletion, delete with claim deletion.
    let (client, api) = FakeApi::start();
    let broker = FakeBroker::with_topics(&[("orders", 3)]);
    api.create_cluster(json!({"image": "b:1", "brokers": {"replicas": 4},
        "pvcRetention": {"whenScaled": "Delete", "whenDeleted": "Delete"},
        "listeners": {"external": {"type": "LoadBalancer", "advertisedHostTemplate": "k{ordinal}.example.test"}}}));
    let ctx = context(client, broker.clone());
    settle(&api, &ctx, 2).await;
    api.edit_spec(json!({"image": "b:2"}));
    settle(&api, &ctx, 10).await;
    api.edit_spec(json!({"brokers": {"replicas": 3}}));
    reconcile(api.cluster(), ctx.clone()).await.unwrap();
    broker.set_progress("scale-down-4-to-3", 0, true);
    settle(&api, &ctx, 4).await;
    let mut kc = api.get(KC_PATH).unwrap();
    kc["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    api.put(KC_PATH, kc);
    reconcile(api.cluster(), ctx.clone()).await.unwrap();
    assert!(api
        .calls()
        .iter()
        .any(|c| c.method == "DELETE" && c.path.contains("persistentvolumeclaims")));
    record(&mut used, &api);

    let (client, api) = FakeApi::start();
    let elector = Elector::new(client, "ops", "kafka-operator-leader", "a");
    assert!(elector.try_acquire().await.unwrap());
    assert!(elector.try_acquire().await.unwrap());
    record(&mut used, &api);

    // The controller (main.rs) lists and watches the KafkaClusters and the kinds it owns.
    for r in [
        "streaming.example.dev/kafkaclusters",
        "/configmaps",
        "/services",
        "apps/statefulsets",
        "policy/poddisruptionbudgets",
    ] {
        used.entry(r.into())
            .or_default()
            .extend(["list".to_string(), "watch".to_string()]);
    }

    let text = serde_json::to_string_pretty(&used).unwrap() + "\n";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/rbac-verbs.json");
    if std::env::var_os("UPDATE_RBAC").is_some() {
        std::fs::write(path, &text).unwrap();
    }
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        on_disk == text,
        "tests/rbac-verbs.json is stale; the operator now uses:\n{text}"
    );
}
