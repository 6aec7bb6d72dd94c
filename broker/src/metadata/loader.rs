//! The one path by which committed metadata records reach the image: whoever
//! learns that records are committed (the Raft driver, a local log on replay)
//! hands them here in log order; every reader then sees them through the
//! publisher. The controller never applies its own writes: it waits until
//! this path has applied them, so leader and followers build identical images.

use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use super::{ApplyError, DecodeError, MetadataImage, MetadataPublisher, MetadataRecord};

/// A committed record that cannot be applied: the log is corrupt or was
/// written by an incompatible version. Fatal for the node, never skipped.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("metadata record at offset {offset} cannot be decoded: {source}")]
    Decode { offset: i64, source: DecodeError },
    #[error("metadata record at offset {offset} does not fit the metadata: {source}")]
    Apply { offset: i64, source: ApplyError },
    #[error("metadata batch at offset {offset} is out of order: already applied up to {applied}")]
    OutOfOrder { offset: i64, applied: i64 },
}

pub struct MetadataLoader {
    publisher: Arc<MetadataPublisher>,
    /// Serializes loads so two batches never race to publish.
    applying: Mutex<()>,
}

impl MetadataLoader {
    pub fn new(cluster_id: impl Into<String>) -> Self {
        Self::with_image(MetadataImage::empty(cluster_id))
    }

    /// Starts from `image`, e.g. one rebuilt from a snapshot.
    pub fn with_image(image: MetadataImage) -> Self {
        MetadataLoader {
            publisher: Arc::new(MetadataPublisher::new(image)),
            applying: Mutex::new(()),
        }
    }

    pub fn publisher(&self) -> &Arc<MetadataPublisher> {
        &self.publisher
    }

    /// Applies one committed batch whose first record has offset `base_offset`
    /// and publishes the result. Nothing is published if any record fails.
    pub fn apply_batch(&self, base_offset: i64, records: &[Bytes]) -> Result<(), LoadError> {
        let last_offset = base_offset + records.len() as i64 - 1;
        self.apply_range(base_offset, last_offset, records)
    }

    /// Moves the image past offsets that hold no metadata records (Raft
    /// control batches such as leader changes), up to `last_offset`.
    pub fn skip_to(&self, last_offset: i64) -> Result<(), LoadError> {
        let _guard = self.applying.lock();
        let current = self.publisher.current();
        if last_offset <= current.metadata_offset {
            return Ok(());
        }
        let mut next = (*current).clone();
        next.metadata_offset = last_offset;
        self.publisher.publish(Arc::new(next));
        Ok(())
    }

    /// Replaces the image wholesale: a snapshot was installed.
    pub fn reset(&self, image: MetadataImage) {
        let _guard = self.applying.lock();
        self.publisher.publish(Arc::new(image));
    }

    fn apply_range(
        &self,
        base_offset: i64,
        last_offset: i64,
        records: &[Bytes],
    ) -> Result<(), LoadError> {
        let _guard = self.applying.lock();
        let current = self.publisher.current();
        if base_offset <= current.metadata_offset {
            return Err(LoadError::OutOfOrder {
                offset: base_offset,
                applied: current.metadata_offset,
            });
        }
        let mut next = (*current).clone();
        for (offset, bytes) in (base_offset..).zip(records) {
            let record = MetadataRecord::decode(bytes)
                .map_err(|source| LoadError::Decode { offset, source })?;
            next.apply_record(&record)
                .map_err(|source| LoadError::Apply { offset, source })?;
        }
        next.metadata_offset = last_offset.max(current.metadata_offset);
        self.publisher.publish(Arc::new(next));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::records::{PartitionRecord, TopicRecord};

    fn topic_record(name: &str, id: u128) -> Bytes {
        MetadataRecord::Topic(TopicRecord {
            name: name.into(),
            topic_id: uuid::Uuid::from_u128(id),
        })
        .encode()
    }

    #[test]
    fn batches_apply_in_order_and_publish() {
        let loader = MetadataLoader::new("c");
        loader
            .apply_batch(0, &[topic_record("a", 1), topic_record("b", 2)])
            .unwrap();
        loader.skip_to(4).unwrap();
        let image = loader.publisher().current();
        assert_eq!(image.metadata_offset, 4);
        assert!(image.topic("a").is_some() && image.topic("b").is_some());
        let err = loader.apply_batch(3, &[topic_record("c", 3)]).unwrap_err();
        assert!(
            matches!(
                err,
                LoadError::OutOfOrder {
                    offset: 3,
                    applied: 4
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn bad_records_are_clear_errors_and_publish_nothing() {
        let loader = MetadataLoader::new("c");
        let err = loader
            .apply_batch(0, &[Bytes::from_static(&[1, 99, 0])])
            .unwrap_err();
        assert!(matches!(err, LoadError::Decode { offset: 0, .. }), "{err}");

        let orphan = MetadataRecord::Partition(PartitionRecord {
            partition_id: 0,
            topic_id: uuid::Uuid::from_u128(2),
            replicas: vec![1],
            isr: vec![1],
            removing_replicas: vec![],
            adding_replicas: vec![],
            leader: 1,
            leader_recovery_state: 0,
            leader_epoch: 0,
            partition_epoch: 0,
        })
        .encode();
        let err = loader
            .apply_batch(0, &[topic_record("t", 1), orphan])
            .unwrap_err();
        assert!(matches!(err, LoadError::Apply { offset: 1, .. }), "{err}");
        let image = loader.publisher().current();
        assert_eq!(image.metadata_offset, -1);
        assert!(image.topic("t").is_none());
    }
}
