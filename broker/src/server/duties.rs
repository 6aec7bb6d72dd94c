//! Background duties that follow the quorum: what the active controller does
//! besides answering requests, when a broker's metadata counts as caught up,
//! and what `/readyz` reports.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::lifecycle::LifecycleState;
use super::metrics::Metrics;
use crate::config::LeadershipConfig;
use crate::controller::{monotonic_ms, Controller, ControllerError};
use crate::kraft::QuorumView;
use crate::metadata::MetadataPublisher;

/// How often the active controller looks for brokers whose session expired.
const FENCING_CHECK: Duration = Duration::from_millis(250);

/// On becoming active: bootstrap a new cluster and restart broker sessions;
/// while active: fence brokers that stopped heartbeating, elect unclean
/// leaders where allowed, complete partition reassignments, advance a broker
/// removal and, every `leader.imbalance.check.interval.seconds`,
/// move leaderships back to preferred replicas.
pub async fn run_controller(
    controller: Arc<Controller>,
    metrics: Arc<Metrics>,
    mut view: watch::Receiver<QuorumView>,
    mut stop: watch::Receiver<bool>,
) {
    let mut activated = false;
    let mut tick = tokio::time::interval(FENCING_CHECK);
    let leadership = controller.config().leadership;
    let mut last_balance = monotonic_ms();
    loop {
        tokio::select! {
            changed = view.changed() => if changed.is_err() { return },
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let active = view.borrow_and_update().active;
        metrics
            .controller
            .update(active.then(|| controller.image()).as_deref());
        if !active {
            activated = false;
            continue;
        }
        let duty = controller.clone();
        let balance = leadership.auto_leader_rebalance
            && monotonic_ms() - last_balance >= leadership.imbalance_check_interval_ms as i64;
        if balance {
            last_balance = monotonic_ms();
        }
        let outcome = if activated {
            tokio::task::spawn_blocking(move || leadership_duties(&duty, balance, &leadership))
                .await
        } else {
            tracing::info!("this node is now the active controller");
            tokio::task::spawn_blocking(move || duty.activate()).await
        };
        match outcome {
            Ok(Ok(())) => activated = true,
            // Lost leadership meanwhile, or the log failed: tried again next tick.
            Ok(Err(error)) => tracing::warn!(%error, "controller duty failed"),
            Err(error) => tracing::error!(%error, "controller duty panicked"),
        }
    }
}

/// One round of the active controller's leadership duties.
fn leadership_duties(
    controller: &Controller,
    balance: bool,
    leadership: &LeadershipConfig,
) -> Result<(), ControllerError> {
    let fenced = controller.fence_stale_brokers(monotonic_ms())?;
    if !fenced.is_empty() {
        tracing::warn!(?fenced, "fenced brokers whose session expired");
    }
    controller.elect_unclean_leaders()?;
    // Usually done on the ISR change itself; this catches a failover in between.
    let completed = controller.complete_reassignments()?;
    if completed > 0 {
        tracing::info!(partitions = completed, "completed partition reassignments");
    }
    controller.advance_removal(leadership.removal_max_moves_per_broker)?;
    if balance {
        let moved = controller.balance_leaders()?;
        if moved > 0 {
            tracing::info!(
                partitions = moved,
                "moved leaderships back to preferred replicas"
            );
        }
    }
    Ok(())
}

/// Whether the image holds everything the quorum has committed, as far as
/// this node knows, for a bootstrapped cluster.
fn caught_up(view: &QuorumView, publisher: &MetadataPublisher) -> bool {
    let image = publisher.current();
    view.leader.is_some()
        && view.high_watermark > 0
        && image.metadata_version > 0
        && image.metadata_offset >= view.high_watermark - 1
}

/// Waits until the image has caught up with the quorum.
pub async fn wait_for_metadata(
    mut view: watch::Receiver<QuorumView>,
    publisher: &MetadataPublisher,
) {
    let mut logged = false;
    loop {
        if caught_up(&view.borrow_and_update(), publisher) {
            return;
        }
        if !logged {
            tracing::info!("waiting for the metadata quorum");
            logged = true;
        }
        // The image can lag the view by one apply; poll briefly as well.
        let _ = tokio::time::timeout(Duration::from_millis(50), view.changed()).await;
    }
}

/// Mirrors the quorum view into the `raft-metrics` gauges.
pub async fn export_quorum_metrics(
    metrics: Arc<Metrics>,
    mut view: watch::Receiver<QuorumView>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let current = *view.borrow_and_update();
        metrics
            .raft_current_leader
            .set(current.leader.map_or(-1, i64::from));
        metrics.raft_current_epoch.set(i64::from(current.epoch));
        metrics.raft_high_watermark.set(current.high_watermark);
        tokio::select! {
            changed = view.changed() => if changed.is_err() { return },
            _ = stop.changed() => return,
        }
    }
}

/// Keeps `ready` current: a broker is ready once registered, unfenced and
/// caught up; a controller-only node once it follows a leader and caught up.
pub async fn track_readiness(
    ready: Arc<AtomicBool>,
    mut view: watch::Receiver<QuorumView>,
    publisher: Arc<MetadataPublisher>,
    lifecycle: Option<watch::Receiver<LifecycleState>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut lifecycle = lifecycle;
    loop {
        let now_ready = match &lifecycle {
            Some(state) => state.borrow().is_ready(),
            None => caught_up(&view.borrow(), &publisher),
        };
        ready.store(now_ready, Ordering::Release);
        let lifecycle_changed = async {
            match lifecycle.as_mut() {
                Some(state) => state.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = view.changed() => {}
            _ = lifecycle_changed => {}
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = stop.changed() => {
                ready.store(false, Ordering::Release);
                return;
            }
        }
    }
}
