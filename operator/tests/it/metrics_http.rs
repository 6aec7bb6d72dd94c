//! The operator's /metrics endpoint over real HTTP on loopback.

use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use operator::metrics::{serve, Metrics};

async fn get(url: String) -> (u16, String) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let resp = client.get(url.parse().unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn metrics_and_health_are_served() {
    let metrics = Metrics::default();
    drop(metrics.reconcile_started("demo"));
    metrics.reconcile_failed("demo", "broker_api");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(metrics, listener));

    let (status, body) = get(format!("http://{addr}/metrics")).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("kafka_operator_reconciles_total{cluster=\"demo\"} 1"),
        "{body}"
    );
    assert!(body.contains(
        "kafka_operator_reconcile_errors_total{cluster=\"demo\",error=\"broker_api\"} 1"
    ));
    assert!(body.contains("kafka_operator_reconcile_duration_seconds_bucket"));
    assert_eq!(get(format!("http://{addr}/healthz")).await.0, 200);
    assert_eq!(get(format!("http://{addr}/nope")).await.0, 404);
}
