//! Keeps the local logs in step with the metadata image: creates the logs of
//! partitions this node hosts, applies topic config changes, and deletes the
//! logs of deleted (or deleted and re-created) topics.

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
            tracing::info!(partition = %tp, "deleting log of a deleted topic");
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
