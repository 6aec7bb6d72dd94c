//! Which pod to restart next under `OnDelete`, pure. One pod at a time, only outdated pods
//! (their StatefulSet revision differs from the update revision, i.e. their generated config
//! or image changed), controllers before brokers, the active controller last, and a
//! controller only while a majority of the other voters is caught up.

use crate::broker_api::QuorumView;
use crate::names::Pool;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodState {
    pub name: String,
    pub pool: Pool,
    pub ordinal: i32,
    pub ready: bool,
    /// Running a revision older than the StatefulSet's update revision.
    pub outdated: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Every pod runs the current revision.
    UpToDate,
    /// Outdated pods exist but restarting one now would be unsafe.
    Wait(String),
    /// Restart this pod. A ready broker first has its safety checked and its leadership
    /// moved; a pod that is not ready serves nothing, so it is restarted as it is.
    Restart {
        pod: String,
        pool: Pool,
        node_id: i32,
        ready: bool,
    },
}

/// `quorum` is needed only when a controller is outdated; `None` means it could not be read.
pub fn next(pods: &[PodState], quorum: Option<&QuorumView>) -> Plan {
    if !pods.iter().any(|p| p.outdated) {
        return Plan::UpToDate;
    }
    if let Some(p) = pods.iter().find(|p| !p.ready) {
        // An outdated pod that is down (e.g. crash-looping on its old config) only gets well
        // with the new one; restarting it costs no availability.
        if p.outdated {
            return Plan::Restart {
                pod: p.name.clone(),
                pool: p.pool,
                node_id: p.pool.node_id(p.ordinal),
                ready: false,
            };
        }
        return Plan::Wait(format!("pod {} is not ready", p.name));
    }
    let mut controllers: Vec<&PodState> = pods
        .iter()
        .filter(|p| p.outdated && p.pool == Pool::Controller)
        .collect();
    if !controllers.is_empty() {
        let Some(q) = quorum else {
            return Plan::Wait("controller quorum state unknown".into());
        };
        let leader = q.leader_id;
        // Followers by ordinal, the active controller last: one leader change at most.
        controllers.sort_by_key(|p| {
            (
                Some(Pool::Controller.node_id(p.ordinal)) == leader,
                p.ordinal,
            )
        });
        let pod = controllers[0];
        let id = Pool::Controller.node_id(pod.ordinal);
        let others: Vec<_> = q.voters.iter().filter(|v| v.id != id).collect();
        let caught_up = others
            .iter()
            .filter(|v| v.caught_up || Some(v.id) == leader)
            .count();
        let majority = if others.is_empty() {
            0
        } else {
            others.len() / 2 + 1
        };
        if caught_up < majority {
            return Plan::Wait(format!(
                "not restarting {}: only {caught_up} of the other {} voters are caught up",
                pod.name,
                others.len()
            ));
        }
        return Plan::Restart {
            pod: pod.name.clone(),
            pool: Pool::Controller,
            node_id: id,
            ready: true,
        };
    }
    let Some(broker) = pods
        .iter()
        .filter(|p| p.outdated && p.pool == Pool::Broker)
        .min_by_key(|p| p.ordinal)
    else {
        return Plan::UpToDate;
    };
    Plan::Restart {
        pod: broker.name.clone(),
        pool: Pool::Broker,
        node_id: Pool::Broker.node_id(broker.ordinal),
        ready: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker_api::VoterInfo;

    fn pod(pool: Pool, ordinal: i32, outdated: bool) -> PodState {
        PodState {
            name: format!("kc-{}-{ordinal}", pool.as_str()),
            pool,
            ordinal,
            ready: true,
            outdated,
        }
    }

    fn quorum(leader: i32, caught_up: &[i32]) -> QuorumView {
        QuorumView {
            leader_id: Some(leader),
            epoch: 3,
            voters: (1000..1003)
                .map(|id| VoterInfo {
                    id,
                    caught_up: caught_up.contains(&id),
                    lag_records: if caught_up.contains(&id) { 0 } else { 500 },
                })
                .collect(),
        }
    }

    fn all(outdated: bool) -> Vec<PodState> {
        let mut pods: Vec<_> = (0..3).map(|o| pod(Pool::Controller, o, outdated)).collect();
        pods.extend((0..3).map(|o| pod(Pool::Broker, o, outdated)));
        pods
    }

    #[test]
    fn nothing_outdated_is_up_to_date() {
        assert_eq!(next(&all(false), None), Plan::UpToDate);
    }

    #[test]
    fn active_controller_goes_last() {
        let q = quorum(1000, &[1000, 1001, 1002]);
        let Plan::Restart { pod, .. } = next(&all(true), Some(&q)) else {
            panic!("expected a restart")
        };
        assert_eq!(pod, "kc-controller-1");
        let mut pods = all(true);
        pods[1].outdated = false;
        pods[2].outdated = false;
        assert!(
            matches!(next(&pods, Some(&q)), Plan::Restart { pod, .. } if pod == "kc-controller-0")
        );
    }

    #[test]
    fn controller_waits_for_caught_up_majority() {
        let q = quorum(1000, &[1000]);
        assert!(matches!(next(&all(true), Some(&q)), Plan::Wait(m) if m.contains("caught up")));
        assert!(matches!(next(&all(true), None), Plan::Wait(_)));
    }

    #[test]
    fn brokers_after_controllers_one_at_a_time() {
        let mut pods = all(false);
        pods[4].outdated = true;
        pods[5].outdated = true;
        assert_eq!(
            next(&pods, None),
            Plan::Restart {
                pod: "kc-broker-1".into(),
                pool: Pool::Broker,
                node_id: 1,
                ready: true,
            }
        );
        pods[3].ready = false;
        assert_eq!(
            next(&pods, None),
            Plan::Wait("pod kc-broker-0 is not ready".into())
        );
    }

    #[test]
    fn an_outdated_pod_that_is_down_is_restarted_first() {
        let mut pods = all(true);
        pods[5].ready = false;
        assert_eq!(
            next(&pods, None),
            Plan::Restart {
                pod: "kc-broker-2".into(),
                pool: Pool::Broker,
                node_id: 2,
                ready: false,
            }
        );
    }
}
