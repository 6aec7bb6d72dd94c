//! Keeps the local logs in step with the metadata image: creates the logs of
//! partitions this node hosts, applies topic config changes, and deletes the
//! logs of partitions it no longer hosts: deleted (or deleted and re-created)
//! topics, and replicas a reassignment moved away (Kafka's StopReplica with
//! delete). A log left over from before a restart goes the same way, as the
//! first sync runs before the replica manager takes any role. Each log records
//! the id of its topic, so a topic re-created under the same name, also while
//! this node was down, is told apart from the old one.

use std::sync::Arc;

use crate::metadata::MetadataImage;
use crate::storage::{HostedLog, TopicPartition};

use super::BrokerState;
use crate::kraft::disk_log::METADATA_TOPIC;

pub async fn run(state: Arc<BrokerState>) {
    let mut images = state.controller.publisher().subscribe();
    loop {
        let image = images.borrow_and_update().clone();
        let state2 = state.clone();
        let synced = tokio::task::spawn_blocking(move || {
            sync(&state2, &image);
            state2.replicas.apply_image(&image);
        })
        .await;
        if let Err(error) = synced {
            tracing::error!(%error, "log sync task failed");
        }
        if images.changed().await.is_err() {
            return;
        }
    }
}

fn sync(state: &BrokerState, image: &MetadataImage) {
    let node = state.config.node_id;
    for HostedLog {
        tp, log, topic_id, ..
    } in state.logs.hosted()
    {
        if tp.topic == METADATA_TOPIC {
            continue;
        }
        let current = image.topic(&tp.topic);
        let recreated = topic_id.is_some_and(|id| current.is_some_and(|t| t.id != id));
        let hosted = current.is_some_and(|t| {
            t.partitions
                .get(tp.partition as usize)
                .is_some_and(|p| p.replicas.contains(&node))
        });
        if !hosted || recreated {
            tracing::info!(partition = %tp, recreated, "deleting log of a partition this node no longer hosts");
            if let Err(error) = state.logs.delete(&tp, &log) {
                tracing::error!(partition = %tp, %error, "cannot delete log");
            }
            continue;
        }
        if let Some(topic) = current {
            if topic_id.is_none() {
                if let Err(error) = state.logs.stamp_topic_id(&tp, &log, topic.id) {
                    tracing::error!(partition = %tp, %error, "cannot record the topic id");
                }
            }
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
                let config = state.topic_log_config(topic);
                if let Err(error) = state.logs.get_or_create(&tp, topic.id, config) {
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
    use crate::controller::{lifecycle_tests, MemoryMetadataLog, NewTopic, TopicRef};
    use crate::server::testing::broker_state_over;
    use crate::storage::batch::testutil::simple;
    use crate::storage::LogConfig;

    /// Syncs as the log sync task does, to the current image.
    fn step(state: &BrokerState) -> Arc<MetadataImage> {
        let image = state.image();
        sync(state, &image);
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
        let first = step(&state);
        let path = state.logs.get(&tp).unwrap().dir().to_path_buf();
        assert!(state.replicas.partition(&tp).is_some());
        let topic_id = first.topic("t").unwrap().id;

        // Shrinking to [2] completes at once: this node is no replica any more.
        let moved = state
            .controller
            .alter_partition_reassignments(
                vec![("t".into(), 0, Some(vec![2]))],
                Duration::from_secs(1),
            )
            .unwrap();
        assert!(moved[0].2.is_ok(), "{moved:?}");
        step(&state);
        assert!(!path.exists(), "the moved replica's directory is gone");
        assert!(state.logs.get(&tp).is_none());
        assert!(state.replicas.partition(&tp).is_none());

        // A directory left behind (a crash before the delete) comes back on restart.
        state
            .logs
            .get_or_create(&tp, topic_id, LogConfig::from_broker(&state.config))
            .unwrap();
        state.logs.shutdown().unwrap();
        drop(state);
        assert!(path.exists());
        let restarted = broker_state_over(dir.path(), &metadata);
        assert!(restarted.logs.get(&tp).is_some(), "opened from disk");
        step(&restarted);
        assert!(restarted.replicas.partition(&tp).is_none());
        assert!(restarted.logs.get(&tp).is_none());
        assert!(!path.exists());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_topic_recreated_under_the_same_name_is_never_served_from_the_old_log() {
        let dir = tempfile::tempdir().unwrap();
        let metadata = MemoryMetadataLog::new();
        let state = broker_state_over(dir.path(), &metadata);
        lifecycle_tests::unfenced(&state.controller, 1, 0);
        let create = || NewTopic {
            assignments: vec![(0, vec![1])],
            ..NewTopic::with_defaults("t")
        };
        state
            .controller
            .create_topics(vec![create()], false)
            .unwrap();
        let first = step(&state);
        let (log, _) = state.leader_log(&first, "t", 0).unwrap();
        log.append(simple(3, 0), 0, 0).unwrap();

        // Deleted and created again while the node's logs were not synced (or it was down).
        state
            .controller
            .delete_topics(vec![TopicRef::Name("t".into())])
            .unwrap();
        state
            .controller
            .create_topics(vec![create()], false)
            .unwrap();
        state.logs.shutdown().unwrap();
        drop((log, state));
        let restarted = broker_state_over(dir.path(), &metadata);
        let image = restarted.image();
        let (log, _) = restarted.leader_log(&image, "t", 0).unwrap();
        assert_eq!(log.log_end_offset(), 0, "a new, empty log");
        let hosted = restarted.logs.hosted();
        assert_eq!(hosted[0].topic_id, Some(image.topic("t").unwrap().id));

        // A request holding the image of before is refused, and the new log stays.
        let refused = restarted.leader_log(&first, "t", 0).err().map(|e| e.code);
        assert_eq!(refused, Some(6), "NOT_LEADER_OR_FOLLOWER");
        let tp = TopicPartition::new("t", 0);
        assert!(Arc::ptr_eq(&restarted.logs.get(&tp).unwrap(), &log));
        step(&restarted);
        assert!(Arc::ptr_eq(&restarted.logs.get(&tp).unwrap(), &log));
    }
}
