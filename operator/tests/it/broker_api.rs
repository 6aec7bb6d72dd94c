//! The typed broker admin client against `docs/admin-api.yaml`: its requests hit the
//! documented paths (served by a stub on loopback), and its types carry exactly the
//! documented fields.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{any, get};
use operator::broker_api::*;
use serde_json::{json, Value};

fn contract() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/admin-api.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn removal_json(state: &str) -> Value {
    json!({"id": "scale-down-4-to-3", "brokerIds": [3], "state": state, "partitionsRemaining": 2,
           "bytesRemaining": 2048, "brokers": [{"brokerId": 3, "partitionsRemaining": 2, "bytesRemaining": 2048}],
           "partitions": [{"topic": "t", "partition": 0, "state": "moving", "replicas": [1, 2, 3],
                           "addingReplicas": [2]}],
           "error": null})
}

/// Canned answers keyed by "METHOD /template", recording each request.
async fn stub(seen: Arc<Mutex<Vec<String>>>) -> String {
    let handler = move |path: MatchedPath, req: Request| {
        let seen = seen.clone();
        async move {
            let key = format!("{} {}", req.method(), path.as_str());
            seen.lock().unwrap().push(key.clone());
            let body = match key.as_str() {
                "GET /admin/v1/cluster" => json!({"clusterId": "c1", "activeControllerId": 1000,
                    "brokers": [{"id": 0, "state": "running", "excluded": false, "replicas": 12, "leaders": 4, "rack": "a"}],
                    "topics": [{"name": "orders", "partitions": 6, "replicationFactor": 3}]}),
                "GET /admin/v1/quorum" => json!({"leaderId": 1000, "epoch": 7,
                    "voters": [{"id": 1000, "caughtUp": true, "lagRecords": 0}]}),
                "PUT /admin/v1/removals/{id}" => removal_json("running"),
                "GET /admin/v1/removals/{id}" if req.uri().path().ends_with("missing") => {
                    return (StatusCode::NOT_FOUND, "").into_response()
                }
                "GET /admin/v1/removals/{id}" | "DELETE /admin/v1/removals/{id}" => {
                    removal_json("completed")
                }
                "GET /admin/v1/brokers/{id}/restart-safety" => {
                    json!({"brokerId": 2, "safe": false, "partitionsAtMinIsr": 3, "reason": "isr"})
                }
                "POST /admin/v1/brokers/{id}/demote" => {
                    json!({"brokerId": 2, "leadersRemaining": 1})
                }
                "DELETE /admin/v1/brokers/{id}" if req.uri().path().ends_with("/9") => {
                    return (StatusCode::CONFLICT, r#"{"error":"broker 9 is running"}"#)
                        .into_response()
                }
                _ => return StatusCode::NO_CONTENT.into_response(),
            };
            axum::Json(body).into_response()
        }
    };
    let app = axum::Router::new()
        .route("/admin/v1/cluster", get(handler.clone()))
        .route("/admin/v1/quorum", get(handler.clone()))
        .route("/admin/v1/removals/{id}", any(handler.clone()))
        .route("/admin/v1/brokers/{id}", any(handler.clone()))
        .route("/admin/v1/brokers/{id}/exclusion", any(handler.clone()))
        .route("/admin/v1/brokers/{id}/demote", any(handler.clone()))
        .route("/admin/v1/brokers/{id}/restart-safety", any(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn client_calls_documented_paths_and_decodes_answers() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let base = stub(seen.clone()).await;
    let c = HttpBrokerAdmin::default();

    let view = c.cluster(&base).await.unwrap();
    assert_eq!(view.topics[0].replication_factor, 3);
    assert_eq!(view.brokers[0].state, BrokerState::Running);
    c.exclude(&base, 3).await.unwrap();
    c.unexclude(&base, 3).await.unwrap();
    let r = c
        .start_removal(&base, "scale-down-4-to-3", &[3])
        .await
        .unwrap();
    assert_eq!(r.state, RemovalState::Running);
    assert_eq!(r.brokers[0].bytes_remaining, 2048);
    assert_eq!(
        c.removal(&base, "scale-down-4-to-3")
            .await
            .unwrap()
            .unwrap()
            .state,
        RemovalState::Completed
    );
    assert_eq!(c.removal(&base, "missing").await.unwrap(), None);
    c.cancel_removal(&base, "scale-down-4-to-3").await.unwrap();
    c.unregister(&base, 3).await.unwrap();
    let err = c.unregister(&base, 9).await.unwrap_err();
    assert!(
        matches!(&err, BrokerApiError::Status { status: 409, body, .. } if body.contains("running")),
        "{err}"
    );
    assert_eq!(c.quorum(&base).await.unwrap().voters[0].id, 1000);
    let safety = c.restart_safety(&base, 2).await.unwrap();
    assert!(!safety.safe);
    assert_eq!(safety.partitions_at_min_isr, 3);
    assert_eq!(c.demote(&base, 2).await.unwrap().leaders_remaining, 1);

    let used: BTreeSet<String> = seen.lock().unwrap().iter().cloned().collect();
    let doc = contract();
    for call in &used {
        let (method, path) = call.split_once(' ').unwrap();
        let documented = path.replace(
            "{id}",
            if path.contains("removals") {
                "{removalId}"
            } else {
                "{brokerId}"
            },
        );
        assert!(
            doc["paths"][&documented][method.to_lowercase()].is_object(),
            "{method} {documented} is used by the client but not documented"
        );
    }
    assert_eq!(
        used.len(),
        10,
        "every operation of the client was exercised: {used:?}"
    );
}

#[tokio::test]
async fn unreachable_admin_api_is_a_transport_error() {
    let c = HttpBrokerAdmin::default();
    let err = c.cluster("http://127.0.0.1:1").await.unwrap_err();
    assert!(matches!(err, BrokerApiError::Transport { .. }), "{err}");
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn rust_types_carry_exactly_the_documented_fields() {
    let doc = contract();
    let schemas = &doc["components"]["schemas"];
    let samples: Vec<(&str, Value)> = vec![
        (
            "ClusterView",
            serde_json::to_value(ClusterView {
                cluster_id: "c".into(),
                active_controller_id: None,
                brokers: vec![],
                topics: vec![],
            })
            .unwrap(),
        ),
        (
            "BrokerInfo",
            serde_json::to_value(BrokerInfo {
                id: 1,
                state: BrokerState::Fenced,
                excluded: true,
                replicas: 0,
                leaders: 0,
                rack: None,
            })
            .unwrap(),
        ),
        (
            "TopicInfo",
            serde_json::to_value(TopicInfo {
                name: "t".into(),
                partitions: 1,
                replication_factor: 1,
            })
            .unwrap(),
        ),
        (
            "RemovalRequest",
            serde_json::to_value(RemovalRequest {
                broker_ids: vec![1],
            })
            .unwrap(),
        ),
        ("Removal", removal_json("failed")),
        (
            "BrokerProgress",
            serde_json::to_value(BrokerProgress {
                broker_id: 1,
                partitions_remaining: 0,
                bytes_remaining: 0,
            })
            .unwrap(),
        ),
        (
            "PartitionProgress",
            serde_json::to_value(PartitionProgress {
                topic: "t".into(),
                partition: 0,
                state: MoveState::Waiting,
                replicas: vec![3],
                adding_replicas: vec![],
            })
            .unwrap(),
        ),
        (
            "QuorumView",
            serde_json::to_value(QuorumView {
                leader_id: None,
                epoch: 0,
                voters: vec![],
            })
            .unwrap(),
        ),
        (
            "VoterInfo",
            serde_json::to_value(VoterInfo {
                id: 1,
                caught_up: true,
                lag_records: 0,
            })
            .unwrap(),
        ),
        (
            "RestartSafety",
            serde_json::to_value(RestartSafety {
                broker_id: 1,
                safe: true,
                partitions_at_min_isr: 0,
                reason: None,
            })
            .unwrap(),
        ),
        (
            "Demotion",
            serde_json::to_value(Demotion {
                broker_id: 1,
                leaders_remaining: 0,
            })
            .unwrap(),
        ),
    ];
    for (name, sample) in samples {
        let schema = &schemas[name];
        assert_eq!(
            keys(&schema["properties"]),
            keys(&sample),
            "{name}: fields differ from the contract"
        );
        // The documented examples decode into the Rust types.
        if name == "Removal" {
            serde_json::from_value::<Removal>(sample.clone()).unwrap();
        }
    }
    let states: Vec<String> = schemas["Removal"]["properties"]["state"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    for s in &states {
        serde_json::from_value::<RemovalState>(json!(s)).unwrap();
    }
    let broker_states = schemas["BrokerInfo"]["properties"]["state"]["enum"]
        .as_array()
        .unwrap();
    for s in broker_states {
        serde_json::from_value::<BrokerState>(s.clone()).unwrap();
    }
}
