//! Which consumer groups this broker coordinates: those whose
//! `__consumer_offsets` partition it leads, as Kafka assigns them. Follows
//! leadership as the image gives it and the replica manager takes it, and
//! hands partitions to the group coordinator or takes them back.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::BrokerState;
use crate::controller::InternalTopic;
use crate::storage::TopicPartition;

/// The replica manager takes a role just after the image that gives it: look
/// again shortly rather than only on the next image.
const RECHECK: Duration = Duration::from_millis(100);

pub async fn run(state: Arc<BrokerState>, mut stop: watch::Receiver<bool>) {
    let mut images = state.controller.publisher().subscribe();
    let mut tick = tokio::time::interval(RECHECK);
    let mut served: HashSet<i32> = HashSet::new();
    loop {
        tokio::select! {
            changed = images.changed() => if changed.is_err() { return },
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let (led, expected) = led_partitions(&state);
        let lost: Vec<i32> = served.difference(&led).copied().collect();
        if !lost.is_empty() {
            state.groups.release_partitions(&lost);
            served.retain(|p| led.contains(p));
        }
        state
            .groups
            .expect_partitions(expected.difference(&served).copied().collect());
        let gained: Vec<i32> = led.difference(&served).copied().collect();
        if gained.is_empty() {
            continue;
        }
        let groups = state.groups.clone();
        let loading = gained.clone();
        match tokio::task::spawn_blocking(move || groups.serve_partitions(&loading)).await {
            Ok(Ok(())) => served.extend(gained),
            // Tried again on the next tick.
            Ok(Err(error)) => tracing::warn!(%error, ?gained, "loading consumer groups failed"),
            Err(error) => tracing::error!(%error, "loading consumer groups panicked"),
        }
    }
}

/// Partitions of `__consumer_offsets` this node leads in the image's leader
/// epoch with the replica manager already in that role, and those the image
/// alone says it leads.
fn led_partitions(state: &BrokerState) -> (HashSet<i32>, HashSet<i32>) {
    let image = state.image();
    let local = state.config.node_id;
    let name = InternalTopic::ConsumerOffsets.name();
    let Some(topic) = image.topic(name) else {
        return (HashSet::new(), HashSet::new());
    };
    let mut ready = HashSet::new();
    let mut expected = HashSet::new();
    for p in topic.partitions.iter().filter(|p| p.leader == local) {
        expected.insert(p.partition);
        let taken = state
            .replicas
            .partition(&TopicPartition::new(name, p.partition))
            .and_then(|hosted| hosted.leader_epoch())
            == Some(p.leader_epoch);
        if taken {
            ready.insert(p.partition);
        }
    }
    (ready, expected)
}
