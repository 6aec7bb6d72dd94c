//! `operator crd` prints the CRD YAML; `operator run` runs the controller (with leader
//! election, /metrics and health endpoints).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{watcher, Controller};
use kube::{Api, Client};
use operator::broker_api::HttpBrokerAdmin;
use operator::crd::KafkaCluster;
use operator::leader::Elector;
use operator::metrics::Metrics;
use operator::reconcile::{error_policy, reconcile, Context};
use tracing::{info, warn};

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_string())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("crd") => {
            print!(
                "{}",
                operator::crd::crd_yaml().context("rendering the CRD")?
            );
            Ok(())
        }
        Some("run") | None => run().await,
        Some(other) => anyhow::bail!("unknown command {other:?}; use `crd` or `run`"),
    }
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(env_or(
            "LOG_LEVEL",
            "info",
        )))
        .json()
        .init();
    let client = Client::try_default()
        .await
        .context("connecting to the Kubernetes API")?;
    let metrics = Metrics::default();
    let addr: SocketAddr = env_or("METRICS_ADDR", "0.0.0.0:8080")
        .parse()
        .context("METRICS_ADDR")?;
    let server = tokio::spawn(operator::metrics::serve(metrics.clone(), addr));

    let identity = env_or("POD_NAME", "kafka-operator-local");
    let lease_ns = env_or("POD_NAMESPACE", "default");
    let elector = Elector::new(
        client.clone(),
        &lease_ns,
        "kafka-operator-leader",
        &identity,
    );
    elector.acquire().await;

    // WATCH_NAMESPACE empty: all namespaces (ClusterRole); otherwise one namespace (Role).
    let watch_ns = env_or("WATCH_NAMESPACE", "");
    let api = |ns: &str| -> Api<KafkaCluster> {
        if ns.is_empty() {
            Api::all(client.clone())
        } else {
            Api::namespaced(client.clone(), ns)
        }
    };
    macro_rules! child_api {
        ($k:ty) => {
            if watch_ns.is_empty() {
                Api::<$k>::all(client.clone())
            } else {
                Api::<$k>::namespaced(client.clone(), &watch_ns)
            }
        };
    }
    let reporter = Reporter {
        controller: "kafka-operator".into(),
        instance: Some(identity.clone()),
    };
    let ctx = Arc::new(Context {
        client: client.clone(),
        admin: Arc::new(HttpBrokerAdmin::default()),
        recorder: Recorder::new(client.clone(), reporter),
        metrics,
        admin_url_override: std::env::var("ADMIN_URL_OVERRIDE").ok(),
    });
    let owned = watcher::Config::default().labels("app.kubernetes.io/managed-by=kafka-operator");
    let controller = Controller::new(api(&watch_ns), watcher::Config::default())
        .owns(child_api!(ConfigMap), owned.clone())
        .owns(child_api!(Service), owned.clone())
        .owns(child_api!(StatefulSet), owned.clone())
        .owns(child_api!(PodDisruptionBudget), owned)
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => info!(cluster = %obj.name, "reconciled"),
                Err(e) => warn!(error = %e, "reconcile error"),
            }
        });
    info!(namespace = %if watch_ns.is_empty() { "<all>" } else { &watch_ns }, "operator running");
    tokio::select! {
        _ = controller => info!("controller stopped"),
        _ = elector.hold() => warn!("lost leadership; exiting so that another replica takes over"),
        r = server => warn!(result = ?r, "metrics server stopped"),
    }
    Ok(())
}
