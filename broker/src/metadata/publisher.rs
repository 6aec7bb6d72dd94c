//! Holds the current `MetadataImage` and tells subscribers when it changes.

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::watch;

use super::image::MetadataImage;

/// Readers take one snapshot per request with [`Self::current`]; long-lived
/// parts (log manager, group coordinator) [`Self::subscribe`] to react to changes.
pub struct MetadataPublisher {
    current: ArcSwap<MetadataImage>,
    sender: watch::Sender<Arc<MetadataImage>>,
}

impl MetadataPublisher {
    pub fn new(image: MetadataImage) -> Self {
        let image = Arc::new(image);
        MetadataPublisher {
            current: ArcSwap::from(image.clone()),
            sender: watch::Sender::new(image),
        }
    }

    pub fn current(&self) -> Arc<MetadataImage> {
        self.current.load_full()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.sender.subscribe()
    }

    /// Makes `image` the current one and wakes every subscriber.
    pub fn publish(&self, image: Arc<MetadataImage>) {
        self.current.store(image.clone());
        // send_replace succeeds even when nobody subscribes yet.
        self.sender.send_replace(image);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_see_published_images() {
        let publisher = MetadataPublisher::new(MetadataImage::empty("c"));
        let mut rx = publisher.subscribe();
        assert_eq!(publisher.current().metadata_offset, -1);
        let mut next = MetadataImage::empty("c");
        next.metadata_offset = 4;
        publisher.publish(Arc::new(next));
        rx.changed().await.unwrap();
        assert_eq!(rx.borrow_and_update().metadata_offset, 4);
        assert_eq!(publisher.current().metadata_offset, 4);
    }
}
