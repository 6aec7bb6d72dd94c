//! Keeps the local logs in step with the metadata image: creates the logs of
//! partitions this node hosts, applies topic config changes, and deletes the
//! logs of partitions it no longer hosts: deleted (or deleted and re-created)
//! topics, and replicas a reassignment moved away (Kafka's StopReplica with
//! delete). A log left over from before a restart goes the same way, as the
//! first sync runs before the replica manager takes any role.

use std::sync::Arc;

use crate::metadata::MetadataImage;
use crate::storage::TopicPartition;

use super::BrokerState;
use crate::kraft::disk_log::METADATA_TOPIC;

pub async fn run(state: Arc<BrokerState>) {
    let mut images = state.controller.publisher().subscribe();
    let mut previous: Option<Arc<MetadataImage>> = None;
    loop {
        let image = images.borrow_and_update().clone();
        let state2 = state.clone();
        let prev = previous.clone();
        let image2 = image.clone();
        let synced = tokio::task::spawn_blocking(move || {
            sync(&state2, prev.as_deref(), &image2);
            state2.replicas.apply_image(&image2);
        })
        .await;
        if let Err(error) = synced {
            tracing::error!(%error, "log sync task failed");
        }
        previous = Some(image);
        if images.changed().await.is_err() {
            return;
        }
    }
}

fn sync(state: &BrokerState, previous: Option<&MetadataImage>, image: &MetadataImage) {
    let node = state.config.node_id;
    for (tp, log) in state.logs.partitions() {
        if tp.topic == METADATA_TOPIC {
            continue;
        }
        let current = image.topic(&tp.topic);
        let recreated = match (previous.and_then(|p| p.topic(&tp.topic)), current) {
            (Some(old), Some(new)) => old.id != new.id,
            _ => false,
        };
        let hosted = current.is_some_and(|t| {
            t.partitions
                .get(tp.partition as usize)
                .is_some_and(|p| p.replicas.contains(&node))
        });
        if !hosted || recreated {
            tracing::info!(partition = %tp, "deleting log of a partition this node no longer hosts");
            if let Err(error) = state.logs.delete(&tp) {
                tracing::error!(partition = %tp, %error, "cannot delete log");
            }
            continue;
        }
        if let Some(topic) = current {
            let config = state.topic_log_config(topic);
            if log.config() != config {
                log.update_config(config);
            }
        }
    }
    for topic in image.topics.values() {
        for p in topic
            .partitions
            .iter()
            .filter(|p| p.replicas.contains(&node))
        {
            let tp = TopicPartition::new(topic.name.clone(), p.partition);
            if state.logs.get(&tp).is_none() {
                if let Err(error) = state.logs.get_or_create(&tp, state.topic_log_config(topic)) {
                    tracing::error!(partition = %tp, %error, "cannot create log");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::controller::{lifecycle_tests, MemoryMetadataLog, NewTopic};
    use crate::server::testing::broker_state_over;
    use crate::storage::LogConfig;

    /// Syncs as the log sync task does, from `previous` to the current image.
    fn step(state: &BrokerState, previous: Option<&MetadataImage>) -> Arc<MetadataImage> {
        let image = state.image();
        sync(state, previous, &image);
        state.replicas.apply_image(&image);
        image
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_replica_moved_away_is_deleted_and_a_leftover_is_never_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let metadata = MemoryMetadataLog::new();
        let state = broker_state_over(dir.path(), &metadata);
        lifecycle_tests::unfenced(&state.controller, 2, 0);
        let topic = NewTopic {
            assignments: vec![(0, vec![1, 2])],
            ..NewTopic::with_defaults("t")
        };
        state.controller.create_topics(vec![topic], false).unwrap();
        let tp = TopicPartition::new("t", 0);
        let first = step(&state, None);
        let path = state.logs.get(&tp).unwrap().dir().to_path_buf();
        assert!(state.replicas.partition(&tp).is_some());

        // Shrinking to [2] completes at once: this node is no replica any more.
        let moved = state
            .controller
            .alter_partition_reassignments(
                vec![("t".into(), 0, Some(vec![2]))],
                Duration::from_secs(1),
            )
            .unwrap();
        assert!(moved[0].2.is_ok(), "{moved:?}");
        step(&state, Some(&first));
        assert!(!path.exists(), "the moved replica's directory is gone");
        assert!(state.logs.get(&tp).is_none());
        assert!(state.replicas.partition(&tp).is_none());

        // A directory left behind (a crash before the delete) comes back on restart.
        state
            .logs
            .get_or_create(&tp, LogConfig::from_broker(&state.config))
            .unwrap();
        state.logs.shutdown().unwrap();
        drop(state);
        assert!(path.exists());
        let restarted = broker_state_over(dir.path(), &metadata);
        assert!(restarted.logs.get(&tp).is_some(), "opened from disk");
        step(&restarted, None);
        assert!(restarted.replicas.partition(&tp).is_none());
        assert!(restarted.logs.get(&tp).is_none());
        assert!(!path.exists());
    }
}
