//! The broker scale-down state machine, pure. Its state lives in the KafkaCluster status,
//! so a restarted operator continues where the last one stopped. Every action it asks for
//! is idempotent, so repeating the step that was in flight at a crash is harmless.
//!
//! Draining --(removal completed, no replicas left)--> Shrinking --(pods gone)-->
//! Unregistering --(brokers unregistered, claims handled)--> done.
//! A change of the desired size while Draining cancels (un-excludes) the removal.

use serde::{Deserialize, Serialize};

use crate::broker_api::{ClusterView, Removal, RemovalState};
use crate::crd::RetentionPolicy;
use crate::names::Pool;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleDown {
    /// Broker count when the scale-down started; the StatefulSet keeps it while draining.
    pub from: i32,
    /// Target broker count.
    pub to: i32,
    /// Draining, Shrinking or Unregistering.
    pub phase: ScaleDownPhase,
    /// Client-chosen removal id on the broker admin API (idempotent PUT).
    pub removal_id: String,
    /// Progress of each leaving broker.
    pub brokers: Vec<BrokerDrain>,
    /// Why the removal failed, as the brokers report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum ScaleDownPhase {
    Draining,
    Shrinking,
    Unregistering,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrokerDrain {
    /// node.id of the leaving broker.
    pub node_id: i32,
    /// Draining while it still holds replicas, then Drained.
    pub phase: BrokerPhase,
    /// Partition replicas still to move off it.
    pub partitions_remaining: i64,
    /// Bytes still to move off it.
    pub bytes_remaining: i64,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum BrokerPhase {
    Draining,
    Drained,
}

/// Side effects the executor performs, in order, before persisting the next state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Exclude(Vec<i32>),
    StartRemoval { id: String, broker_ids: Vec<i32> },
    CancelRemoval { id: String },
    Unexclude(Vec<i32>),
    ResizeStatefulSet(i32),
    Unregister(Vec<i32>),
    DeleteClaims(Vec<i32>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// No scale-down wanted.
    Idle,
    /// Not started; nothing changed. The message names the reason.
    Refused(String),
    Started(String),
    Progress(String),
    Cancelled(String),
    Failed(String),
    Finished(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub op: Option<ScaleDown>,
    pub actions: Vec<Action>,
    pub outcome: Outcome,
}

/// What the executor observed for an operation in progress.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    pub removal: Option<Removal>,
    /// Broker pods that still exist with an ordinal at or above the target size.
    pub leaving_pods: i32,
}

fn ids(from: i32, to: i32) -> Vec<i32> {
    (to..from).map(|o| Pool::Broker.node_id(o)).collect()
}

fn list(ids: &[i32]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Size the broker StatefulSet must have now: kept at its current size until the leaving
/// brokers hold nothing, and never lowered outside the state machine.
pub fn broker_statefulset_replicas(
    desired: i32,
    current: Option<i32>,
    op: Option<&ScaleDown>,
) -> i32 {
    match (op, current) {
        (Some(op), _) if op.phase == ScaleDownPhase::Draining => op.from,
        (Some(op), _) => op.to,
        (None, Some(current)) => desired.max(current),
        (None, None) => desired,
    }
}

/// Start a scale-down from `current` to `desired` brokers, or refuse it.
pub fn begin(current: i32, desired: i32, cluster: &ClusterView) -> Step {
    if desired >= current {
        return Step {
            op: None,
            actions: vec![],
            outcome: Outcome::Idle,
        };
    }
    let leaving = ids(current, desired);
    if let Some(t) = cluster
        .topics
        .iter()
        .filter(|t| t.replication_factor > desired)
        .max_by_key(|t| t.replication_factor)
    {
        return Step {
            op: None,
            actions: vec![],
            outcome: Outcome::Refused(format!(
                "cannot remove brokers {}: topic {:?} has replication factor {} but only {desired} brokers would remain",
                list(&leaving),
                t.name,
                t.replication_factor
            )),
        };
    }
    let removal_id = format!("scale-down-{current}-to-{desired}");
    let op = ScaleDown {
        from: current,
        to: desired,
        phase: ScaleDownPhase::Draining,
        removal_id: removal_id.clone(),
        brokers: leaving
            .iter()
            .map(|&node_id| BrokerDrain {
                node_id,
                phase: BrokerPhase::Draining,
                // What it holds now, until the removal reports its own progress.
                partitions_remaining: cluster
                    .brokers
                    .iter()
                    .find(|b| b.id == node_id)
                    .map_or(0, |b| b.replicas),
                bytes_remaining: 0,
            })
            .collect(),
        error: None,
    };
    Step {
        op: Some(op),
        actions: vec![
            Action::Exclude(leaving.clone()),
            Action::StartRemoval {
                id: removal_id,
                broker_ids: leaving.clone(),
            },
        ],
        outcome: Outcome::Started(format!(
            "draining brokers {} to scale from {current} to {desired}",
            list(&leaving)
        )),
    }
}

/// Advance an operation in progress.
pub fn advance(op: &ScaleDown, desired: i32, observed: &Observed, claims: RetentionPolicy) -> Step {
    let leaving = ids(op.from, op.to);
    match op.phase {
        ScaleDownPhase::Draining if desired != op.to => Step {
            op: None,
            actions: vec![
                Action::CancelRemoval {
                    id: op.removal_id.clone(),
                },
                Action::Unexclude(leaving.clone()),
            ],
            outcome: Outcome::Cancelled(format!(
                "brokers.replicas changed to {desired} while draining brokers {}; removal cancelled",
                list(&leaving)
            )),
        },
        ScaleDownPhase::Draining => drain(op, leaving, observed),
        ScaleDownPhase::Shrinking if observed.leaving_pods > 0 => Step {
            op: Some(op.clone()),
            actions: vec![Action::ResizeStatefulSet(op.to)],
            outcome: Outcome::Progress(format!("waiting for {} broker pods to stop", observed.leaving_pods)),
        },
        ScaleDownPhase::Shrinking => Step {
            op: Some(ScaleDown {
                phase: ScaleDownPhase::Unregistering,
                ..op.clone()
            }),
            actions: vec![],
            outcome: Outcome::Progress(format!("broker pods {} stopped", list(&leaving))),
        },
        ScaleDownPhase::Unregistering => {
            let mut actions = vec![Action::Unregister(leaving.clone())];
            let claims_note = if claims == RetentionPolicy::Delete {
                actions.push(Action::DeleteClaims((op.to..op.from).collect()));
                "deleted their volume claims"
            } else {
                "kept their volume claims"
            };
            Step {
                op: None,
                actions,
                outcome: Outcome::Finished(format!(
                    "scaled brokers from {} to {}: unregistered brokers {}, {claims_note}",
                    op.from,
                    op.to,
                    list(&leaving)
                )),
            }
        }
    }
}

fn drain(op: &ScaleDown, leaving: Vec<i32>, observed: &Observed) -> Step {
    let restart = || {
        vec![
            Action::Exclude(leaving.clone()),
            Action::StartRemoval {
                id: op.removal_id.clone(),
                broker_ids: leaving.clone(),
            },
        ]
    };
    let Some(removal) = &observed.removal else {
        // The broker lost the removal (or the operator stopped before creating it): re-issue.
        return Step {
            op: Some(op.clone()),
            actions: restart(),
            outcome: Outcome::Progress(format!("removal {} re-issued", op.removal_id)),
        };
    };
    let mut next = op.clone();
    for b in &mut next.brokers {
        if let Some(p) = removal.brokers.iter().find(|p| p.broker_id == b.node_id) {
            b.partitions_remaining = p.partitions_remaining;
            b.bytes_remaining = p.bytes_remaining;
            b.phase = if p.partitions_remaining == 0 {
                BrokerPhase::Drained
            } else {
                BrokerPhase::Draining
            };
        }
    }
    match removal.state {
        RemovalState::Failed => {
            let message = removal
                .error
                .clone()
                .unwrap_or_else(|| "removal failed without a reason".into());
            next.error = Some(message.clone());
            Step {
                op: Some(next),
                actions: vec![],
                outcome: Outcome::Failed(format!(
                    "removing brokers {} failed: {message}; raise brokers.replicas back to {} to cancel",
                    list(&leaving),
                    op.from
                )),
            }
        }
        RemovalState::Cancelled => Step {
            op: Some(next),
            actions: restart(),
            outcome: Outcome::Progress(format!(
                "removal {} was cancelled elsewhere; re-issued",
                op.removal_id
            )),
        },
        RemovalState::Completed if removal.partitions_remaining == 0 => {
            next.error = None;
            next.phase = ScaleDownPhase::Shrinking;
            for b in &mut next.brokers {
                b.phase = BrokerPhase::Drained;
            }
            Step {
                op: Some(next),
                actions: vec![Action::ResizeStatefulSet(op.to)],
                outcome: Outcome::Progress(format!(
                    "brokers {} hold no replicas; shrinking to {}",
                    list(&leaving),
                    op.to
                )),
            }
        }
        _ => {
            next.error = None;
            Step {
                op: Some(next),
                actions: vec![],
                outcome: Outcome::Progress(format!(
                    "draining brokers {}: {} partitions and {} bytes remaining",
                    list(&leaving),
                    removal.partitions_remaining,
                    removal.bytes_remaining
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker_api::{BrokerProgress, TopicInfo};

    fn cluster(rfs: &[i32]) -> ClusterView {
        ClusterView {
            cluster_id: "c".into(),
            active_controller_id: Some(1000),
            brokers: vec![],
            topics: rfs
                .iter()
                .enumerate()
                .map(|(i, &rf)| TopicInfo {
                    name: format!("t{i}"),
                    partitions: 1,
                    replication_factor: rf,
                })
                .collect(),
        }
    }

    fn removal(state: RemovalState, per_broker: &[(i32, i64)]) -> Removal {
        Removal {
            id: "scale-down-5-to-3".into(),
            broker_ids: vec![3, 4],
            state,
            partitions_remaining: per_broker.iter().map(|p| p.1).sum(),
            bytes_remaining: per_broker.iter().map(|p| p.1 * 100).sum(),
            brokers: per_broker
                .iter()
                .map(|&(broker_id, n)| BrokerProgress {
                    broker_id,
                    partitions_remaining: n,
                    bytes_remaining: n * 100,
                })
                .collect(),
            partitions: Vec::new(),
            error: None,
        }
    }

    fn started() -> ScaleDown {
        begin(5, 3, &cluster(&[3, 2])).op.unwrap()
    }

    #[test]
    fn no_scale_down_is_idle() {
        assert_eq!(begin(3, 3, &cluster(&[3])).outcome, Outcome::Idle);
        assert_eq!(begin(3, 4, &cluster(&[3])).outcome, Outcome::Idle);
    }

    #[test]
    fn begin_excludes_and_removes_highest_ordinals() {
        let step = begin(5, 3, &cluster(&[3, 2]));
        assert_eq!(
            step.actions,
            [
                Action::Exclude(vec![3, 4]),
                Action::StartRemoval {
                    id: "scale-down-5-to-3".into(),
                    broker_ids: vec![3, 4]
                }
            ]
        );
        let op = step.op.unwrap();
        assert_eq!((op.from, op.to, op.phase), (5, 3, ScaleDownPhase::Draining));
    }

    #[test]
    fn refuses_when_a_topic_would_lose_replicas() {
        let step = begin(4, 2, &cluster(&[2, 3]));
        assert_eq!(step.op, None);
        assert!(step.actions.is_empty());
        assert_eq!(
            step.outcome,
            Outcome::Refused(
                "cannot remove brokers 2,3: topic \"t1\" has replication factor 3 but only 2 brokers would remain".into()
            )
        );
    }

    #[test]
    fn progress_is_copied_per_broker() {
        let obs = Observed {
            removal: Some(removal(RemovalState::Running, &[(3, 4), (4, 0)])),
            leaving_pods: 2,
        };
        let step = advance(&started(), 3, &obs, RetentionPolicy::Retain);
        let op = step.op.unwrap();
        assert_eq!(op.phase, ScaleDownPhase::Draining);
        assert_eq!(op.brokers[0].partitions_remaining, 4);
        assert_eq!(op.brokers[0].bytes_remaining, 400);
        assert_eq!(op.brokers[0].phase, BrokerPhase::Draining);
        assert_eq!(op.brokers[1].phase, BrokerPhase::Drained);
        assert!(step.actions.is_empty());
    }

    #[test]
    fn full_sequence_to_the_end() {
        let obs = Observed {
            removal: Some(removal(RemovalState::Completed, &[(3, 0), (4, 0)])),
            leaving_pods: 2,
        };
        let step = advance(&started(), 3, &obs, RetentionPolicy::Delete);
        assert_eq!(step.actions, [Action::ResizeStatefulSet(3)]);
        let shrinking = step.op.unwrap();
        assert_eq!(shrinking.phase, ScaleDownPhase::Shrinking);
        assert_eq!(broker_statefulset_replicas(3, Some(5), Some(&shrinking)), 3);

        let waiting = advance(&shrinking, 3, &obs, RetentionPolicy::Delete);
        assert_eq!(waiting.op.as_ref(), Some(&shrinking));

        let gone = Observed::default();
        let unreg = advance(&shrinking, 3, &gone, RetentionPolicy::Delete)
            .op
            .unwrap();
        assert_eq!(unreg.phase, ScaleDownPhase::Unregistering);
        let done = advance(&unreg, 3, &gone, RetentionPolicy::Delete);
        assert_eq!(done.op, None);
        assert_eq!(
            done.actions,
            [
                Action::Unregister(vec![3, 4]),
                Action::DeleteClaims(vec![3, 4])
            ]
        );
        assert_eq!(
            done.outcome,
            Outcome::Finished(
                "scaled brokers from 5 to 3: unregistered brokers 3,4, deleted their volume claims"
                    .into()
            )
        );
        let kept = advance(&unreg, 3, &gone, RetentionPolicy::Retain);
        assert_eq!(kept.actions, [Action::Unregister(vec![3, 4])]);
    }

    #[test]
    fn completed_with_replicas_left_keeps_draining() {
        let obs = Observed {
            removal: Some(removal(RemovalState::Completed, &[(3, 1), (4, 0)])),
            leaving_pods: 2,
        };
        let step = advance(&started(), 3, &obs, RetentionPolicy::Retain);
        assert_eq!(step.op.unwrap().phase, ScaleDownPhase::Draining);
    }

    #[test]
    fn raising_replicas_mid_drain_cancels() {
        let step = advance(&started(), 5, &Observed::default(), RetentionPolicy::Retain);
        assert_eq!(step.op, None);
        assert_eq!(
            step.actions,
            [
                Action::CancelRemoval {
                    id: "scale-down-5-to-3".into()
                },
                Action::Unexclude(vec![3, 4])
            ]
        );
        assert!(matches!(step.outcome, Outcome::Cancelled(_)));
    }

    #[test]
    fn lost_removal_is_reissued_and_failure_is_reported() {
        let step = advance(&started(), 3, &Observed::default(), RetentionPolicy::Retain);
        assert_eq!(step.actions.len(), 2);
        let mut failed = removal(RemovalState::Failed, &[(3, 2), (4, 2)]);
        failed.error = Some("no broker in rack b".into());
        let step = advance(
            &started(),
            3,
            &Observed {
                removal: Some(failed),
                leaving_pods: 2,
            },
            RetentionPolicy::Retain,
        );
        assert_eq!(
            step.op.unwrap().error.as_deref(),
            Some("no broker in rack b")
        );
        assert!(matches!(step.outcome, Outcome::Failed(m) if m.contains("no broker in rack b")));
    }

    #[test]
    fn statefulset_keeps_size_while_draining() {
        let op = started();
        assert_eq!(broker_statefulset_replicas(3, Some(5), Some(&op)), 5);
        assert_eq!(broker_statefulset_replicas(3, Some(5), None), 5);
        assert_eq!(broker_statefulset_replicas(6, Some(5), None), 6);
        assert_eq!(broker_statefulset_replicas(3, None, None), 3);
    }
}
