//! Test doubles for reconcile tests: an in-memory Kubernetes API server behind kube's
//! `Client::new` (real HTTP requests and responses through a tower-test mock service), a
//! StatefulSet-controller simulation, and an in-memory broker admin API.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use http::{Request, Response};
use http_body_util::BodyExt;
use kube::client::Body;
use kube::runtime::events::{Recorder, Reporter};
use kube::Client;
use operator::broker_api::*;
use operator::crd::KafkaCluster;
use operator::metrics::Metrics;
use operator::reconcile::Context;
use serde_json::{json, Value};

pub const NS: &str = "ns";
pub const KC_PATH: &str = "/apis/streaming.example.dev/v1alpha1/namespaces/ns/kafkaclusters/demo";
const COLLECTIONS: &[&str] = &[
    "configmaps",
    "services",
    "statefulsets",
    "poddisruptionbudgets",
    "pods",
    "persistentvolumeclaims",
    "kafkaclusters",
    "events",
    "leases",
];

#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Value,
}

impl Call {
    /// "METHOD path" with the namespace prefix shortened, for readable assertions.
    pub fn short(&self) -> String {
        let path = self
            .path
            .replace("/api/v1/namespaces/ns/", "")
            .replace("/apis/apps/v1/namespaces/ns/", "")
            .replace("/apis/policy/v1/namespaces/ns/", "")
            .replace("/apis/streaming.example.dev/v1alpha1/namespaces/ns/", "");
        format!("{} {path}", self.method)
    }
}

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Value>,
    calls: Vec<Call>,
    version: u64,
}

#[derive(Clone, Default)]
pub struct FakeApi {
    state: Arc<Mutex<State>>,
}

fn status(code: u16, reason: &str, message: &str) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
               "reason": reason, "message": message, "code": code}),
    )
}

/// RFC 7386 JSON merge patch.
pub fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

fn labels_match(obj: &Value, query: &str) -> bool {
    let Some(selector) = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("labelSelector="))
    else {
        return true;
    };
    let selector = selector
        .replace("%3D", "=")
        .replace("%2C", ",")
        .replace("%2F", "/");
    selector.split(',').all(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        obj["metadata"]["labels"][k].as_str() == Some(v)
    })
}

impl FakeApi {
    pub fn start() -> (Client, FakeApi) {
        let fake = FakeApi::default();
        (fake.client(), fake)
    }

    /// Another client on the same API server, as a restarted operator would have.
    pub fn client(&self) -> Client {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server = self.clone();
        tokio::spawn(async move {
            while let Some((req, send)) = handle.next_request().await {
                let (parts, body) = req.into_parts();
                let bytes = body
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let call = Call {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_string(),
                    query: parts.uri.query().unwrap_or_default().to_string(),
                    content_type: parts
                        .headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string(),
                    body,
                };
                let (code, out) = server.handle(call);
                let resp = Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(Body::from(out.to_string().into_bytes()))
                    .unwrap();
                send.send_response(resp);
            }
        });
        Client::new(service, NS)
    }

    fn handle(&self, call: Call) -> (u16, Value) {
        let mut st = self.state.lock().unwrap();
        st.calls.push(call.clone());
        st.version += 1;
        let rv = st.version.to_string();
        let path = call.path.clone();
        let last = path.rsplit('/').next().unwrap_or_default();
        match call.method.as_str() {
            "GET" if COLLECTIONS.contains(&last) => {
                let prefix = format!("{path}/");
                let items: Vec<Value> = st
                    .objects
                    .iter()
                    .filter(|(k, v)| {
                        k.starts_with(&prefix)
                            && !k[prefix.len()..].contains('/')
                            && labels_match(v, &call.query)
                    })
                    .map(|(_, v)| v.clone())
                    .collect();
                (
                    200,
                    json!({"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": rv}, "items": items}),
                )
            }
            "GET" => match st.objects.get(&path) {
                Some(o) => (200, o.clone()),
                None => status(404, "NotFound", &format!("{path} not found")),
            },
            "POST" => {
                let mut obj = call.body.clone();
                let name = obj["metadata"]["name"]
                    .as_str()
                    .unwrap_or("generated")
                    .to_string();
                obj["metadata"]["resourceVersion"] = json!(rv);
                st.objects.insert(format!("{path}/{name}"), obj.clone());
                (201, obj)
            }
            "DELETE" => match st.objects.remove(&path) {
                Some(o) => (200, o),
                None => status(404, "NotFound", &format!("{path} not found")),
            },
            "PATCH" if call.content_type.starts_with("application/apply-patch") => {
                let mut obj = call.body.clone();
                match st.objects.get(&path) {
                    Some(existing) => {
                        obj["metadata"]["uid"] = existing["metadata"]["uid"].clone();
                        if let Some(s) = existing.get("status") {
                            obj["status"] = s.clone();
                        }
                    }
                    None => obj["metadata"]["uid"] = json!(format!("uid-{rv}")),
                }
                obj["metadata"]["resourceVersion"] = json!(rv);
                st.objects.insert(path, obj.clone());
                (200, obj)
            }
            "PATCH" => {
                let target = path.strip_suffix("/status").unwrap_or(&path).to_string();
                let Some(mut obj) = st.objects.get(&target).cloned() else {
                    return status(404, "NotFound", &format!("{target} not found"));
                };
                let expected = &call.body["metadata"]["resourceVersion"];
                if !expected.is_null() && *expected != obj["metadata"]["resourceVersion"] {
                    return status(409, "Conflict", "the object has been modified");
                }
                let mut patch = call.body.clone();
                if let Some(m) = patch.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("resourceVersion");
                }
                if path.ends_with("/status") {
                    patch = json!({"status": patch["status"].clone()});
                }
                merge(&mut obj, &patch);
                obj["metadata"]["resourceVersion"] = json!(rv);
                st.objects.insert(target, obj.clone());
                (200, obj)
            }
            m => status(405, "MethodNotAllowed", m),
        }
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        self.state.lock().unwrap().objects.get(path).cloned()
    }

    pub fn put(&self, path: &str, obj: Value) {
        self.state
            .lock()
            .unwrap()
            .objects
            .insert(path.to_string(), obj);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    pub fn clear_calls(&self) {
        self.state.lock().unwrap().calls.clear();
    }

    /// Calls that change something, events excluded.
    pub fn mutations(&self) -> Vec<String> {
        self.calls()
            .iter()
            .filter(|c| c.method != "GET" && !c.path.ends_with("/events"))
            .map(Call::short)
            .collect()
    }

    pub fn event_reasons(&self) -> Vec<String> {
        self.calls()
            .iter()
            .filter(|c| c.method == "POST" && c.path.ends_with("/events"))
            .map(|c| c.body["reason"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    pub fn create_cluster(&self, spec: Value) {
        self.put(
            KC_PATH,
            json!({"apiVersion": "streaming.example.dev/v1alpha1", "kind": "KafkaCluster",
                   "metadata": {"name": "demo", "namespace": NS, "uid": "kc-uid", "generation": 1,
                                "resourceVersion": "1"},
                   "spec": spec}),
        );
    }

    /// Edit the spec as `kubectl apply` would: merge and bump the generation.
    pub fn edit_spec(&self, patch: Value) {
        let mut st = self.state.lock().unwrap();
        let kc = st.objects.get_mut(KC_PATH).unwrap();
        merge(&mut kc["spec"], &patch);
        let g = kc["metadata"]["generation"].as_i64().unwrap() + 1;
        kc["metadata"]["generation"] = json!(g);
    }

    pub fn cluster(&self) -> Arc<KafkaCluster> {
        Arc::new(serde_json::from_value(self.get(KC_PATH).unwrap()).unwrap())
    }

    pub fn sts(&self, pool: &str) -> Value {
        self.get(&format!(
            "/apis/apps/v1/namespaces/ns/statefulsets/demo-{pool}"
        ))
        .unwrap()
    }

    /// What the StatefulSet controller and kubelet would do: revisions follow the pod
    /// template, missing pods are created at the update revision and become ready, pods
    /// above the replica count are removed.
    pub fn sync_workloads(&self) {
        let mut st = self.state.lock().unwrap();
        for pool in ["controller", "broker"] {
            let sts_path = format!("/apis/apps/v1/namespaces/ns/statefulsets/demo-{pool}");
            let Some(sts) = st.objects.get(&sts_path).cloned() else {
                continue;
            };
            let replicas = sts["spec"]["replicas"].as_i64().unwrap_or(0);
            let template = &sts["spec"]["template"];
            let revision = format!(
                "r{}",
                operator::resources::stable_hash(&template.to_string())
            );
            let pod_prefix = format!("/api/v1/namespaces/ns/pods/demo-{pool}-");
            let existing: Vec<String> = st
                .objects
                .keys()
                .filter(|k| k.starts_with(&pod_prefix))
                .cloned()
                .collect();
            for key in existing {
                let ordinal: i64 = key[pod_prefix.len()..].parse().unwrap();
                if ordinal >= replicas {
                    st.objects.remove(&key);
                }
            }
            for o in 0..replicas {
                let key = format!("{pod_prefix}{o}");
                let mut labels = template["metadata"]["labels"].clone();
                labels["controller-revision-hash"] = json!(revision);
                labels["statefulset.kubernetes.io/pod-name"] = json!(format!("demo-{pool}-{o}"));
                st.objects.entry(key).or_insert_with(|| {
                    json!({"apiVersion": "v1", "kind": "Pod",
                           "metadata": {"name": format!("demo-{pool}-{o}"), "namespace": NS, "labels": labels},
                           "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
                });
            }
            let sts = st.objects.get_mut(&sts_path).unwrap();
            sts["status"] = json!({"replicas": replicas, "readyReplicas": replicas,
                                   "currentRevision": revision, "updateRevision": revision});
        }
    }

    pub fn pods(&self, pool: &str) -> Vec<String> {
        let prefix = format!("/api/v1/namespaces/ns/pods/demo-{pool}-");
        self.state
            .lock()
            .unwrap()
            .objects
            .keys()
            .filter(|k| k.starts_with(&prefix))
            .map(|k| k.rsplit('/').next().unwrap().to_string())
            .collect()
    }
}

/// In-memory broker admin API with scripted removal progress.
#[derive(Default)]
pub struct FakeBroker {
    pub state: Mutex<BrokerSide>,
}

#[derive(Default)]
pub struct BrokerSide {
    pub topics: Vec<TopicInfo>,
    pub removals: BTreeMap<String, Removal>,
    pub excluded: BTreeSet<i32>,
    pub unregistered: Vec<i32>,
    /// Leaderships each broker still holds after a demote call (default 0).
    pub sticky_leaders: BTreeMap<i32, i64>,
    pub unsafe_brokers: BTreeSet<i32>,
    pub leader: i32,
    pub lagging_voters: BTreeSet<i32>,
    pub calls: Vec<String>,
    /// When set, the cluster view is unreachable.
    pub unreachable: bool,
    /// When set, the cluster view answers 503.
    pub cluster_view_fails: bool,
}

impl FakeBroker {
    pub fn with_topics(topics: &[(&str, i32)]) -> Arc<FakeBroker> {
        let b = FakeBroker::default();
        {
            let mut s = b.state.lock().unwrap();
            s.leader = 1000;
            s.topics = topics
                .iter()
                .map(|(n, rf)| TopicInfo {
                    name: n.to_string(),
                    partitions: 3,
                    replication_factor: *rf,
                })
                .collect();
        }
        Arc::new(b)
    }

    pub fn calls(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.clone()
    }

    pub fn clear_calls(&self) {
        self.state.lock().unwrap().calls.clear();
    }

    /// Reassignment progress: every broker of the removal keeps `partitions` partitions.
    pub fn set_progress(&self, id: &str, partitions: i64, done: bool) {
        let mut s = self.state.lock().unwrap();
        let r = s.removals.get_mut(id).unwrap();
        for b in &mut r.brokers {
            b.partitions_remaining = partitions;
            b.bytes_remaining = partitions * 1024;
        }
        r.partitions_remaining = partitions * r.brokers.len() as i64;
        r.bytes_remaining = r.partitions_remaining * 1024;
        r.state = if done {
            RemovalState::Completed
        } else {
            RemovalState::Running
        };
    }

    fn record(&self, call: String) -> std::sync::MutexGuard<'_, BrokerSide> {
        let mut s = self.state.lock().unwrap();
        s.calls.push(call);
        s
    }
}

impl BrokerAdmin for FakeBroker {
    fn cluster(&self, _base: &str) -> BoxFuture<'_, Result<ClusterView>> {
        let s = self.record("GET cluster".into());
        let result = if s.unreachable {
            Err(BrokerApiError::Transport {
                url: "http://admin.test/admin/v1/cluster".into(),
                message: "connection refused".into(),
            })
        } else if s.cluster_view_fails {
            Err(BrokerApiError::Status {
                method: "GET".into(),
                url: "http://admin.test/admin/v1/cluster".into(),
                status: 503,
                body: "{\"error\":\"no active controller\"}".into(),
            })
        } else {
            Ok(ClusterView {
                cluster_id: "c".into(),
                active_controller_id: Some(s.leader),
                brokers: vec![],
                topics: s.topics.clone(),
            })
        };
        Box::pin(async move { result })
    }
    fn exclude(&self, _base: &str, id: i32) -> BoxFuture<'_, Result<()>> {
        self.record(format!("PUT exclusion {id}"))
            .excluded
            .insert(id);
        Box::pin(async { Ok(()) })
    }
    fn unexclude(&self, _base: &str, id: i32) -> BoxFuture<'_, Result<()>> {
        self.record(format!("DELETE exclusion {id}"))
            .excluded
            .remove(&id);
        Box::pin(async { Ok(()) })
    }
    fn start_removal(&self, _base: &str, id: &str, ids: &[i32]) -> BoxFuture<'_, Result<Removal>> {
        let mut s = self.record(format!("PUT removal {id} {ids:?}"));
        let removal = s
            .removals
            .entry(id.to_string())
            .or_insert_with(|| Removal {
                id: id.to_string(),
                broker_ids: ids.to_vec(),
                state: RemovalState::Running,
                partitions_remaining: 4 * ids.len() as i64,
                bytes_remaining: 4096 * ids.len() as i64,
                brokers: ids
                    .iter()
                    .map(|&b| BrokerProgress {
                        broker_id: b,
                        partitions_remaining: 4,
                        bytes_remaining: 4096,
                    })
                    .collect(),
                partitions: Vec::new(),
                error: None,
            })
            .clone();
        Box::pin(async move { Ok(removal) })
    }
    fn removal(&self, _base: &str, id: &str) -> BoxFuture<'_, Result<Option<Removal>>> {
        let r = self
            .record(format!("GET removal {id}"))
            .removals
            .get(id)
            .cloned();
        Box::pin(async move { Ok(r) })
    }
    fn cancel_removal(&self, _base: &str, id: &str) -> BoxFuture<'_, Result<()>> {
        let mut s = self.record(format!("DELETE removal {id}"));
        if let Some(r) = s.removals.get_mut(id) {
            r.state = RemovalState::Cancelled;
        }
        Box::pin(async { Ok(()) })
    }
    fn unregister(&self, _base: &str, id: i32) -> BoxFuture<'_, Result<()>> {
        self.record(format!("DELETE broker {id}"))
            .unregistered
            .push(id);
        Box::pin(async { Ok(()) })
    }
    fn quorum(&self, _base: &str) -> BoxFuture<'_, Result<QuorumView>> {
        let s = self.record("GET quorum".into());
        let view = QuorumView {
            leader_id: Some(s.leader),
            epoch: 1,
            voters: (1000..1003)
                .map(|id| VoterInfo {
                    id,
                    caught_up: !s.lagging_voters.contains(&id),
                    lag_records: 0,
                })
                .collect(),
        };
        Box::pin(async move { Ok(view) })
    }
    fn restart_safety(&self, _base: &str, id: i32) -> BoxFuture<'_, Result<RestartSafety>> {
        let s = self.record(format!("GET restart-safety {id}"));
        let safe = !s.unsafe_brokers.contains(&id);
        let r = RestartSafety {
            broker_id: id,
            safe,
            partitions_at_min_isr: if safe { 0 } else { 2 },
            reason: None,
        };
        Box::pin(async move { Ok(r) })
    }
    fn demote(&self, _base: &str, id: i32) -> BoxFuture<'_, Result<Demotion>> {
        let s = self.record(format!("POST demote {id}"));
        let left = s.sticky_leaders.get(&id).copied().unwrap_or(0);
        Box::pin(async move {
            Ok(Demotion {
                broker_id: id,
                leaders_remaining: left,
            })
        })
    }
}

pub fn context(client: Client, broker: Arc<FakeBroker>) -> Arc<Context> {
    context_with(client, broker, "http://admin.test")
}

/// A context whose broker admin API is `admin`, reached at `admin_url`.
pub fn context_with(client: Client, admin: Arc<dyn BrokerAdmin>, admin_url: &str) -> Arc<Context> {
    let reporter = Reporter {
        controller: "kafka-operator".into(),
        instance: Some("test".into()),
    };
    Arc::new(Context {
        client: client.clone(),
        admin,
        recorder: Recorder::new(client, reporter),
        metrics: Metrics::default(),
        admin_url_override: Some(admin_url.into()),
    })
}
