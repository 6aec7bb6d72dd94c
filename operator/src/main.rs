//! `operator run` (the default) runs the controller with leader election and /metrics;
//! `operator crd` prints the CRD YAML; `operator render FILE [CLUSTER_ID]` prints the
//! objects the operator would create for a KafkaCluster manifest (for review and for tests
//! that run the broker image with exactly the generated configuration).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::NamespaceResourceScope;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{watcher, Controller};
use kube::{Api, Client, Resource};
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
        Some("render") => render(args.get(1), args.get(2)),
        Some("run") | None => run().await,
        Some(other) => anyhow::bail!(
            "unknown command {other:?}; use `run`, `crd` or `render FILE [CLUSTER_ID]`"
        ),
    }
}

fn render(file: Option<&String>, cluster_id: Option<&String>) -> anyhow::Result<()> {
    let file = file.context("usage: operator render FILE [CLUSTER_ID]")?;
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
    let id = cluster_id
        .cloned()
        .unwrap_or_else(operator::config::new_cluster_id);
    print!(
        "{}",
        render_text(&text, &id).with_context(|| format!("rendering {file}"))?
    );
    Ok(())
}

/// The desired objects of a KafkaCluster manifest as YAML; refuses specs that cannot work.
fn render_text(manifest: &str, cluster_id: &str) -> anyhow::Result<String> {
    let mut kc: KafkaCluster = serde_yaml::from_str(manifest)?;
    kc.metadata
        .namespace
        .get_or_insert_with(|| "default".into());
    let problems = operator::validate::problems(&kc.spec);
    anyhow::ensure!(
        problems.is_empty(),
        "invalid KafkaCluster: {}",
        problems.join("; ")
    );
    let input = operator::resources::BuildInput::new(&kc, cluster_id, kc.spec.brokers.replicas);
    Ok(operator::resources::to_yaml(
        &operator::resources::desired(&input),
    )?)
}

/// `WATCH_NAMESPACES` is a comma-separated list; empty means every namespace.
fn watch_scopes(value: &str) -> Vec<Option<String>> {
    let namespaces: Vec<Option<String>> = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Some(s.to_string()))
        .collect();
    if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces
    }
}

fn scoped<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
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
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let server = tokio::spawn(operator::metrics::serve(metrics.clone(), listener));

    let identity = env_or("POD_NAME", "kafka-operator-local");
    let lease_ns = env_or("POD_NAMESPACE", "default");
    let elector = Elector::new(
        client.clone(),
        &lease_ns,
        "kafka-operator-leader",
        &identity,
    );
    elector.acquire().await;

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
    // Children are found through their owner references; the label keeps the caches small.
    let owned = watcher::Config::default().labels("app.kubernetes.io/managed-by=kafka-operator");
    let scopes = watch_scopes(&env_or("WATCH_NAMESPACES", ""));
    info!(?scopes, "operator running (None = all namespaces)");
    let controllers = scopes.iter().map(|scope| {
        let ns = scope.as_deref();
        Controller::new(
            scoped::<KafkaCluster>(&client, ns),
            watcher::Config::default(),
        )
        .owns(scoped::<ConfigMap>(&client, ns), owned.clone())
        .owns(scoped::<Service>(&client, ns), owned.clone())
        .owns(scoped::<StatefulSet>(&client, ns), owned.clone())
        .owns(scoped::<PodDisruptionBudget>(&client, ns), owned.clone())
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => {
                    info!(cluster = %obj.name, namespace = ?obj.namespace, "reconciled")
                }
                Err(e) => warn!(error = %e, "reconcile error"),
            }
        })
    });
    tokio::select! {
        _ = futures::future::join_all(controllers) => info!("controllers stopped"),
        _ = elector.hold() => warn!("lost leadership; exiting so that another replica takes over"),
        r = server => warn!(result = ?r, "metrics server stopped"),
    }
    elector.release().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{render_text, watch_scopes};

    #[test]
    fn render_prints_the_objects_or_the_problems() {
        let manifest = "apiVersion: streaming.example.dev/v1alpha1\nkind: KafkaCluster\n\
                        metadata: {name: demo}\nspec: {image: b:1}\n";
        let yaml = render_text(manifest, "fixed-id").unwrap();
        assert!(yaml.contains("demo-broker-2.properties"));
        assert!(yaml.contains("value: fixed-id"));
        assert!(yaml.contains("namespace: default"));
        let bad = manifest.replace("{image: b:1}", "{image: b:1, controllers: {replicas: 2}}");
        let err = render_text(&bad, "x").unwrap_err().to_string();
        assert!(err.contains("controllers.replicas is 2"), "{err}");
    }

    #[test]
    fn watch_scopes_parse_a_list_or_mean_everything() {
        assert_eq!(watch_scopes(""), vec![None]);
        assert_eq!(watch_scopes(" , "), vec![None]);
        assert_eq!(
            watch_scopes("a, b"),
            vec![Some("a".to_string()), Some("b".to_string())]
        );
    }
}
