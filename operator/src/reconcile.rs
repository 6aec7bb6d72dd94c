//! The reconcile pipeline of one KafkaCluster, in a fixed order: finalizer, validation
//! (pure; a bad spec changes nothing), cluster id, scale-down step, server-side apply of the
//! desired objects (config before workloads), rolling restart, status.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::{info, warn};

use crate::broker_api::{BrokerAdmin, BrokerApiError};
use crate::crd::{KafkaCluster, RetentionPolicy};
use crate::metrics::Metrics;
use crate::names::{ordinal_from_pod_name, ClusterNames, Pool, FINALIZER, MANAGER};
use crate::resources::{desired, BuildInput};
use crate::rolling::{self, PodState};
use crate::scaling;
use crate::status::{build_status, condition, merge_conditions, pools_ready, RestartState};
use crate::validate;

pub struct Context {
    pub client: Client,
    pub admin: Arc<dyn BrokerAdmin>,
    pub recorder: Recorder,
    pub metrics: Metrics,
    /// Overrides the in-cluster admin API address (tests, or an operator outside the cluster).
    pub admin_url_override: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("broker admin API: {0}")]
    Broker(#[from] BrokerApiError),
    #[error("KafkaCluster has no namespace")]
    NoNamespace,
}

impl Error {
    /// Low-cardinality label for the error metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Broker(_) => "broker_api",
            Error::NoNamespace => "no_namespace",
        }
    }
}

impl Context {
    pub fn admin_url(&self, names: &ClusterNames) -> String {
        self.admin_url_override
            .clone()
            .unwrap_or_else(|| names.admin_url())
    }

    /// Events are best effort: failing to record one must not fail the reconcile.
    pub async fn event(&self, kc: &KafkaCluster, type_: EventType, reason: &str, note: &str) {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(note.into()),
            action: reason.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &kc.object_ref(&())).await {
            warn!(cluster = %kc.name_any(), error = %e, "could not publish event {reason}");
        }
    }
}

pub fn label_selector(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Entry point for the controller runtime.
pub async fn reconcile(kc: Arc<KafkaCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = kc.name_any();
    let _timer = ctx.metrics.reconcile_started(&name);
    let result = if kc.meta().deletion_timestamp.is_some() {
        cleanup(&kc, &ctx).await
    } else {
        apply(&kc, &ctx).await
    };
    if let Err(e) = &result {
        ctx.metrics.reconcile_failed(&name, e.metric_label());
        if let Error::Broker(broker) = e {
            report_admin_api_failure(&kc, &ctx, broker).await;
        }
    }
    result
}

/// A failing admin API stalls scaling and restarts; say so in status and events rather than
/// only in the operator's log. Best effort: the reconcile error stands anyway.
async fn report_admin_api_failure(kc: &KafkaCluster, ctx: &Context, error: &BrokerApiError) {
    let Ok(names) = names_of(kc) else { return };
    let reason = match error {
        BrokerApiError::Transport { .. } => "AdminApiUnavailable",
        // The brokers answered but refused or sent something unreadable.
        BrokerApiError::Status { .. } | BrokerApiError::Decode { .. } => "AdminApiError",
    };
    let message = error.to_string();
    ctx.event(kc, EventType::Warning, reason, &message).await;
    let old = kc.status.clone().unwrap_or_default();
    let degraded = condition(
        &old,
        kc.meta().generation,
        "Degraded",
        true,
        reason,
        &message,
    );
    let status =
        serde_json::json!({"conditions": merge_conditions(&old.conditions, vec![degraded])});
    let api: Api<KafkaCluster> = Api::namespaced(ctx.client.clone(), &names.namespace);
    if let Err(e) = patch_status(&api, &names.cluster, status).await {
        warn!(cluster = %names.cluster, error = %e, "could not record the admin API failure in status");
    }
}

pub fn error_policy(kc: Arc<KafkaCluster>, error: &Error, _ctx: Arc<Context>) -> Action {
    warn!(cluster = %kc.name_any(), %error, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(15))
}

fn names_of(kc: &KafkaCluster) -> Result<ClusterNames, Error> {
    let ns = kc.namespace().ok_or(Error::NoNamespace)?;
    Ok(ClusterNames::new(&kc.name_any(), &ns))
}

/// The reconcile pass of a live cluster: a flat list of named steps.
async fn apply(kc: &KafkaCluster, ctx: &Context) -> Result<Action, Error> {
    let names = names_of(kc)?;
    let api: Api<KafkaCluster> = Api::namespaced(ctx.client.clone(), &names.namespace);
    ensure_finalizer(kc, &api, &names).await?;
    if let Some(action) = reject_invalid(kc, ctx, &api, &names).await? {
        return Ok(action);
    }
    let cluster_id = ensure_cluster_id(kc, ctx, &api, &names).await?;
    let sts_api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &names.namespace);
    let current_brokers = sts_api
        .get_opt(&names.pool(Pool::Broker))
        .await?
        .and_then(|s| s.spec.replicas);
    let scaling = scaling::step(ctx, kc, &names, current_brokers).await?;
    let applied = apply_desired(
        ctx,
        &names,
        &BuildInput::new(kc, &cluster_id, scaling.broker_replicas),
    )
    .await?;
    announce_changes(ctx, kc, current_brokers, scaling.broker_replicas).await;
    let restarting = if scaling.op.is_none() {
        rolling_restart(ctx, kc, &names, &applied).await?
    } else {
        RestartState::Blocked("a broker scale-down is in progress".into())
    };
    let old = kc.status.clone().unwrap_or_default();
    let status = build_status(kc, &names, &old, &applied, &scaling, &restarting);
    let busy = status.operation.is_some() || !pools_ready(&status);
    let mut body = serde_json::to_value(&status).unwrap_or_default();
    // A merge patch only removes what it names: clear a finished operation explicitly.
    body["operation"] = serde_json::to_value(&status.operation).unwrap_or_default();
    patch_status(&api, &names.cluster, body).await?;
    Ok(Action::requeue(Duration::from_secs(if busy {
        10
    } else {
        300
    })))
}

async fn ensure_finalizer(
    kc: &KafkaCluster,
    api: &Api<KafkaCluster>,
    names: &ClusterNames,
) -> Result<(), Error> {
    if kc.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(());
    }
    let mut finalizers = kc.finalizers().to_vec();
    finalizers.push(FINALIZER.into());
    // resourceVersion makes this fail instead of overwriting a concurrent change.
    let patch = serde_json::json!({"metadata": {
        "finalizers": finalizers, "resourceVersion": kc.resource_version()}});
    api.patch(
        &names.cluster,
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

/// A spec that cannot work gets a Degraded condition and nothing else: no object changes.
async fn reject_invalid(
    kc: &KafkaCluster,
    ctx: &Context,
    api: &Api<KafkaCluster>,
    names: &ClusterNames,
) -> Result<Option<Action>, Error> {
    let problems = validate::problems(&kc.spec);
    if problems.is_empty() {
        return Ok(None);
    }
    let message = problems.join("; ");
    warn!(cluster = %names.cluster, %message, "invalid spec; nothing changed");
    ctx.event(kc, EventType::Warning, "InvalidSpec", &message)
        .await;
    let old = kc.status.clone().unwrap_or_default();
    let generation = kc.meta().generation;
    let conditions = vec![
        condition(&old, generation, "Degraded", true, "InvalidSpec", &message),
        condition(
            &old,
            generation,
            "Progressing",
            false,
            "InvalidSpec",
            "waiting for a valid spec",
        ),
    ];
    let status = serde_json::json!({
        "observedGeneration": generation,
        "conditions": merge_conditions(&old.conditions, conditions),
    });
    patch_status(api, &names.cluster, status).await?;
    // A fix of the spec is a change, which triggers the next reconcile.
    Ok(Some(Action::await_change()))
}

async fn ensure_cluster_id(
    kc: &KafkaCluster,
    ctx: &Context,
    api: &Api<KafkaCluster>,
    names: &ClusterNames,
) -> Result<String, Error> {
    if let Some(id) = kc.status.as_ref().and_then(|s| s.cluster_id.clone()) {
        return Ok(id);
    }
    let id = crate::config::new_cluster_id();
    // Persisted before any pod can be formatted with it.
    patch_status(api, &names.cluster, serde_json::json!({"clusterId": id})).await?;
    info!(cluster = %names.cluster, %id, "generated cluster id");
    ctx.event(
        kc,
        EventType::Normal,
        "ClusterIdGenerated",
        &format!("cluster id {id}"),
    )
    .await;
    Ok(id)
}

/// Server-side apply in dependency order (config before the workloads reading it), then
/// removal of per-broker external Services no longer wanted. Returns the StatefulSets as
/// the API server stored them (controller pool first).
async fn apply_desired(
    ctx: &Context,
    names: &ClusterNames,
    input: &BuildInput<'_>,
) -> Result<Vec<StatefulSet>, Error> {
    let want = desired(input);
    for o in &want.config_maps {
        server_side_apply::<ConfigMap>(ctx, names, o).await?;
    }
    for o in &want.services {
        server_side_apply::<Service>(ctx, names, o).await?;
    }
    prune_external_services(ctx, names, &want.services).await?;
    let mut applied = Vec::new();
    for o in &want.stateful_sets {
        applied.push(server_side_apply::<StatefulSet>(ctx, names, o).await?);
    }
    for o in &want.pdbs {
        server_side_apply::<PodDisruptionBudget>(ctx, names, o).await?;
    }
    Ok(applied)
}

/// External Services of removed brokers (or of a disabled external listener) would keep
/// load balancers and node ports allocated; they are the only objects apply cannot remove.
async fn prune_external_services(
    ctx: &Context,
    names: &ClusterNames,
    wanted: &[Service],
) -> Result<(), Error> {
    let api: Api<Service> = Api::namespaced(ctx.client.clone(), &names.namespace);
    let mut labels = names.cluster_labels();
    labels.insert("app.kubernetes.io/component".into(), "external".into());
    let lp = ListParams::default().labels(&label_selector(&labels));
    for svc in api.list(&lp).await?.items {
        let name = svc.name_any();
        if !wanted
            .iter()
            .any(|w| w.metadata.name.as_deref() == Some(name.as_str()))
        {
            info!(cluster = %names.cluster, service = %name, "deleting external service no longer wanted");
            scaling::delete_ignoring_absent(&api, &name).await?;
        }
    }
    Ok(())
}

async fn announce_changes(
    ctx: &Context,
    kc: &KafkaCluster,
    current_brokers: Option<i32>,
    brokers: i32,
) {
    let old = kc.status.as_ref().and_then(|s| s.observed_generation);
    let generation = kc.meta().generation;
    match current_brokers {
        None => {
            let note = "created the controller and broker pools";
            ctx.event(kc, EventType::Normal, "Created", note).await;
        }
        Some(current) if brokers > current => {
            let note = format!("adding brokers {current} to {}", brokers - 1);
            ctx.event(kc, EventType::Normal, "ScaleUp", &note).await;
        }
        Some(_) if old != generation => {
            let note = format!("applied generation {}", generation.unwrap_or(0));
            ctx.event(kc, EventType::Normal, "Applied", &note).await;
        }
        Some(_) => {}
    }
}

async fn server_side_apply<K>(ctx: &Context, names: &ClusterNames, obj: &K) -> Result<K, Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &names.namespace);
    let name = obj.meta().name.clone().unwrap_or_default();
    let params = PatchParams::apply(MANAGER).force();
    Ok(api.patch(&name, &params, &Patch::Apply(obj)).await?)
}

async fn patch_status(
    api: &Api<KafkaCluster>,
    name: &str,
    status: serde_json::Value,
) -> Result<(), Error> {
    let patch = serde_json::json!({ "status": status });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// Restart at most one outdated pod per pass, following `rolling::next`.
async fn rolling_restart(
    ctx: &Context,
    kc: &KafkaCluster,
    names: &ClusterNames,
    sets: &[StatefulSet],
) -> Result<RestartState, Error> {
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &names.namespace);
    let mut pods = Vec::new();
    for (pool, sts) in [Pool::Controller, Pool::Broker].into_iter().zip(sets) {
        let revision = sts.status.as_ref().and_then(|s| s.update_revision.clone());
        let lp = ListParams::default().labels(&label_selector(&names.selector(pool)));
        for p in pods_api.list(&lp).await?.items {
            let Some(ordinal) = ordinal_from_pod_name(&p.name_any()) else {
                continue;
            };
            let pod_revision = p.labels().get("controller-revision-hash").cloned();
            pods.push(PodState {
                name: p.name_any(),
                pool,
                ordinal,
                ready: is_ready(&p),
                outdated: revision.is_some() && pod_revision != revision,
            });
        }
    }
    let base = ctx.admin_url(names);
    let needs_quorum = pods
        .iter()
        .any(|p| p.outdated && p.pool == Pool::Controller);
    let quorum = if needs_quorum {
        ctx.admin.quorum(&base).await.ok()
    } else {
        None
    };
    match rolling::next(&pods, quorum.as_ref()) {
        rolling::Plan::UpToDate => Ok(RestartState::Idle),
        rolling::Plan::Wait(reason) => Ok(RestartState::Blocked(reason)),
        rolling::Plan::Restart {
            pod,
            pool,
            node_id,
            ready,
        } => {
            if pool == Pool::Broker && ready {
                let safety = ctx.admin.restart_safety(&base, node_id).await?;
                if !safety.safe {
                    let reason = safety.reason.unwrap_or_else(|| {
                        format!(
                            "{} partitions would drop below min.insync.replicas",
                            safety.partitions_at_min_isr
                        )
                    });
                    return Ok(RestartState::Blocked(format!(
                        "not restarting {pod}: {reason}"
                    )));
                }
                let demotion = ctx.admin.demote(&base, node_id).await?;
                if demotion.leaders_remaining > 0 {
                    return Ok(RestartState::Blocked(format!(
                        "moving {} leaderships off {pod} before restarting it",
                        demotion.leaders_remaining
                    )));
                }
            }
            scaling::delete_ignoring_absent(&pods_api, &pod).await?;
            info!(cluster = %names.cluster, %pod, "restarted pod for its new configuration");
            ctx.event(
                kc,
                EventType::Normal,
                "PodRestarted",
                &format!("restarted {pod} to apply its new configuration"),
            )
            .await;
            Ok(RestartState::Restarting(pod))
        }
    }
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// On delete: owner references remove the workloads; claims outlive them unless the policy
/// says to delete them.
async fn cleanup(kc: &KafkaCluster, ctx: &Context) -> Result<Action, Error> {
    let names = names_of(kc)?;
    if !kc.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    if kc.spec.pvc_retention.when_deleted == RetentionPolicy::Delete {
        let pvcs: Api<PersistentVolumeClaim> =
            Api::namespaced(ctx.client.clone(), &names.namespace);
        let lp = ListParams::default().labels(&label_selector(&names.cluster_labels()));
        let prefixes = [
            format!("data-{}-", names.pool(Pool::Controller)),
            format!("data-{}-", names.pool(Pool::Broker)),
        ];
        for pvc in pvcs.list(&lp).await?.items {
            let name = pvc.name_any();
            if prefixes.iter().any(|p| name.starts_with(p.as_str())) {
                scaling::delete_ignoring_absent(&pvcs, &name).await?;
            }
        }
        ctx.event(
            kc,
            EventType::Normal,
            "ClaimsDeleted",
            "deleted the data volumes as pvcRetention.whenDeleted asks",
        )
        .await;
    }
    let api: Api<KafkaCluster> = Api::namespaced(ctx.client.clone(), &names.namespace);
    let finalizers: Vec<String> = kc
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    let patch = serde_json::json!({"metadata": {"finalizers": finalizers, "resourceVersion": kc.resource_version()}});
    api.patch(
        &names.cluster,
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(Action::await_change())
}
