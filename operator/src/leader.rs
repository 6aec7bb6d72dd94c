//! Leader election on a coordination.k8s.io Lease, so that two operator replicas can run
//! and only one reconciles. The decision of who may hold the lease is pure (`may_acquire`).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use tracing::{info, warn};

pub const LEASE_SECONDS: i32 = 15;
const RETRY: Duration = Duration::from_secs(5);

/// May `me` take or renew the lease at `now`? Yes when free, already ours, or expired.
pub fn may_acquire(spec: Option<&LeaseSpec>, me: &str, now: Timestamp) -> bool {
    let Some(spec) = spec else { return true };
    match (&spec.holder_identity, &spec.renew_time) {
        (None, _) => true,
        (Some(holder), _) if holder == me => true,
        (Some(_), None) => true,
        (Some(_), Some(renewed)) => {
            let ttl = SignedDuration::from_secs(i64::from(
                spec.lease_duration_seconds.unwrap_or(LEASE_SECONDS),
            ));
            renewed.0 + ttl < now
        }
    }
}

pub struct Elector {
    api: Api<Lease>,
    name: String,
    me: String,
}

impl Elector {
    pub fn new(client: Client, namespace: &str, name: &str, me: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.into(),
            me: me.into(),
        }
    }

    /// One attempt to take or renew the lease; `Ok(true)` when we hold it afterwards.
    pub async fn try_acquire(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let existing = self.api.get_opt(&self.name).await?;
        if !may_acquire(
            existing.as_ref().and_then(|l| l.spec.as_ref()),
            &self.me,
            now,
        ) {
            return Ok(false);
        }
        let previous = existing
            .as_ref()
            .and_then(|l| l.spec.clone())
            .unwrap_or_default();
        let ours = previous.holder_identity.as_deref() == Some(self.me.as_str());
        let spec = LeaseSpec {
            holder_identity: Some(self.me.clone()),
            lease_duration_seconds: Some(LEASE_SECONDS),
            renew_time: Some(MicroTime(now)),
            acquire_time: if ours {
                previous.acquire_time
            } else {
                Some(MicroTime(now))
            },
            lease_transitions: Some(previous.lease_transitions.unwrap_or(0) + i32::from(!ours)),
            ..Default::default()
        };
        let result = match existing {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..Default::default()
                    },
                    spec: Some(spec),
                };
                self.api
                    .create(&PostParams::default(), &lease)
                    .await
                    .map(drop)
            }
            Some(l) => {
                // The resourceVersion makes two candidates racing for an expired lease conflict.
                let patch = serde_json::json!({
                    "metadata": {"resourceVersion": l.metadata.resource_version},
                    "spec": spec,
                });
                self.api
                    .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(drop)
            }
        };
        match result {
            Ok(()) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Wait until we are the leader.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire().await {
                Ok(true) => {
                    info!(identity = %self.me, lease = %self.name, "became leader");
                    return;
                }
                Ok(false) => {}
                Err(e) => warn!(error = %e, "leader election attempt failed"),
            }
            tokio::time::sleep(RETRY).await;
        }
    }

    /// Give the lease up on a clean shutdown so that a standby takes over at once instead of
    /// waiting for it to expire. Best effort.
    pub async fn release(&self) {
        let Ok(Some(lease)) = self.api.get_opt(&self.name).await else {
            return;
        };
        if lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            != Some(self.me.as_str())
        {
            return;
        }
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": lease.metadata.resource_version},
            "spec": {"holderIdentity": null, "renewTime": null},
        });
        match self
            .api
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => info!(identity = %self.me, "released leadership"),
            Err(e) => warn!(error = %e, "could not release the lease"),
        }
    }

    /// Keep renewing; returns when leadership is lost so the caller can stop reconciling.
    pub async fn hold(&self) {
        let mut last_renewed = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(RETRY).await;
            match self.try_acquire().await {
                Ok(true) => last_renewed = tokio::time::Instant::now(),
                Ok(false) => return,
                Err(e) => {
                    warn!(error = %e, "lease renewal failed");
                    if last_renewed.elapsed() >= Duration::from_secs(LEASE_SECONDS as u64) {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(holder: &str, renewed: Timestamp) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            renew_time: Some(MicroTime(renewed)),
            lease_duration_seconds: Some(15),
            ..Default::default()
        }
    }

    #[test]
    fn only_free_own_or_expired_leases_are_taken() {
        let now = Timestamp::now();
        assert!(may_acquire(None, "a", now));
        assert!(may_acquire(Some(&held_by("a", now)), "a", now));
        assert!(!may_acquire(Some(&held_by("b", now)), "a", now));
        let old = now - SignedDuration::from_secs(16);
        assert!(may_acquire(Some(&held_by("b", old)), "a", now));
    }
}
