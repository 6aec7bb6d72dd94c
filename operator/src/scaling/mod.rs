//! Broker scale-down: the persisted operation and the executor of the state machine.

pub mod machine;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::crd::KafkaCluster;
use crate::names::{ordinal_from_pod_name, ClusterNames, Pool};
use crate::reconcile::{label_selector, Context, Error};
use machine::{Action, Observed, Outcome};

pub use machine::ScaleDown;

/// The operation in progress, as shown in status.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// Broker scale-down in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<ScaleDown>,
    /// Pod being restarted by the rolling update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarting_pod: Option<String>,
}

/// What the reconcile pass needs to know after the scale-down step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scaling {
    pub op: Option<ScaleDown>,
    /// Size to apply to the broker StatefulSet.
    pub broker_replicas: i32,
    pub outcome: Outcome,
}

/// Run one step of the scale-down state machine: observe, perform its actions, persist.
pub async fn step(
    ctx: &Context,
    kc: &KafkaCluster,
    names: &ClusterNames,
    current: Option<i32>,
) -> Result<Scaling, Error> {
    let desired = kc.spec.brokers.replicas;
    let base = ctx.admin_url(names);
    let persisted = kc
        .status
        .as_ref()
        .and_then(|s| s.operation.as_ref())
        .and_then(|o| o.scale_down.clone());
    let step = match (&persisted, current) {
        (None, Some(current)) if desired < current => {
            let view = ctx.admin.cluster(&base).await?;
            machine::begin(current, desired, &view)
        }
        (None, _) => machine::Step {
            op: None,
            actions: vec![],
            outcome: Outcome::Idle,
        },
        (Some(op), _) => {
            let removal = match op.phase {
                machine::ScaleDownPhase::Draining => {
                    ctx.admin.removal(&base, &op.removal_id).await?
                }
                _ => None,
            };
            let observed = Observed {
                removal,
                leaving_pods: leaving_pods(ctx, names, op.to).await?,
            };
            machine::advance(op, desired, &observed, kc.spec.pvc_retention.when_scaled)
        }
    };
    for action in &step.actions {
        perform(ctx, names, &base, action).await?;
    }
    if step.op != persisted {
        // Persist before anything else builds on the new state.
        let api: Api<KafkaCluster> = Api::namespaced(ctx.client.clone(), &names.namespace);
        let operation = step.op.as_ref().map(|op| Operation {
            scale_down: Some(op.clone()),
            restarting_pod: None,
        });
        let patch = serde_json::json!({ "status": { "operation": operation } });
        api.patch_status(
            &kc.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    }
    announce(ctx, kc, &step.outcome).await;
    Ok(Scaling {
        broker_replicas: machine::broker_statefulset_replicas(desired, current, step.op.as_ref()),
        op: step.op,
        outcome: step.outcome,
    })
}

async fn announce(ctx: &Context, kc: &KafkaCluster, outcome: &Outcome) {
    let (type_, reason, note) = match outcome {
        Outcome::Idle | Outcome::Progress(_) => return,
        Outcome::Refused(m) => (EventType::Warning, "ScaleDownRefused", m),
        Outcome::Failed(m) => (EventType::Warning, "ScaleDownFailed", m),
        Outcome::Started(m) => (EventType::Normal, "ScaleDownStarted", m),
        Outcome::Cancelled(m) => (EventType::Normal, "ScaleDownCancelled", m),
        Outcome::Finished(m) => (EventType::Normal, "ScaleDownFinished", m),
    };
    info!(cluster = %kc.name_any(), reason, "{note}");
    ctx.event(kc, type_, reason, note).await;
}

/// Broker pods that still exist at or above the target ordinal.
async fn leaving_pods(ctx: &Context, names: &ClusterNames, to: i32) -> Result<i32, Error> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &names.namespace);
    let lp = ListParams::default().labels(&label_selector(&names.selector(Pool::Broker)));
    let list = pods.list(&lp).await?;
    Ok(list
        .items
        .iter()
        .filter_map(|p| ordinal_from_pod_name(&p.name_any()))
        .filter(|&o| o >= to)
        .count() as i32)
}

async fn perform(
    ctx: &Context,
    names: &ClusterNames,
    base: &str,
    action: &Action,
) -> Result<(), Error> {
    info!(cluster = %names.cluster, ?action, "scale-down action");
    match action {
        Action::Exclude(ids) => {
            for &id in ids {
                ctx.admin.exclude(base, id).await?;
            }
        }
        Action::Unexclude(ids) => {
            for &id in ids {
                ctx.admin.unexclude(base, id).await?;
            }
        }
        Action::StartRemoval { id, broker_ids } => {
            ctx.admin.start_removal(base, id, broker_ids).await?;
        }
        Action::CancelRemoval { id } => ctx.admin.cancel_removal(base, id).await?,
        Action::Unregister(ids) => {
            for &id in ids {
                ctx.admin.unregister(base, id).await?;
            }
        }
        Action::ResizeStatefulSet(replicas) => {
            let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &names.namespace);
            let patch = serde_json::json!({ "spec": { "replicas": replicas } });
            api.patch(
                &names.pool(Pool::Broker),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        }
        Action::DeleteClaims(ordinals) => {
            let api: Api<PersistentVolumeClaim> =
                Api::namespaced(ctx.client.clone(), &names.namespace);
            for &o in ordinals {
                delete_ignoring_absent(&api, &names.pvc(Pool::Broker, o)).await?;
            }
        }
    }
    Ok(())
}

/// Delete that treats "already gone" as done, so a repeated step is harmless.
pub async fn delete_ignoring_absent<K>(api: &Api<K>, name: &str) -> Result<(), Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
