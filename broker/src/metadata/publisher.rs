//! Holds the current `MetadataImage` and tells subscribers when it changes.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use super::image::MetadataImage;

/// Readers take one snapshot per request with [`Self::current`]; long-lived
/// parts (log manager, group coordinator) [`Self::subscribe`] to react to changes.
pub struct MetadataPublisher {
    current: ArcSwap<MetadataImage>,
    sender: watch::Sender<Arc<MetadataImage>>,
    /// The published offset, for writers that block until their records are applied.
    offset: Mutex<i64>,
    offset_advanced: Condvar,
}

impl MetadataPublisher {
    pub fn new(image: MetadataImage) -> Self {
        let offset = image.metadata_offset;
        let image = Arc::new(image);
        MetadataPublisher {
            current: ArcSwap::from(image.clone()),
            sender: watch::Sender::new(image),
            offset: Mutex::new(offset),
            offset_advanced: Condvar::new(),
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
        let offset = image.metadata_offset;
        self.current.store(image.clone());
        // send_replace succeeds even when nobody subscribes yet.
        self.sender.send_replace(image);
        *self.offset.lock() = offset;
        self.offset_advanced.notify_all();
    }

    /// Blocks until an image at or past `offset` is published; false on timeout.
    pub fn wait_for_offset(&self, offset: i64, timeout: Duration) -> bool {
        let mut published = self.offset.lock();
        let deadline = std::time::Instant::now() + timeout;
        while *published < offset {
            if self
                .offset_advanced
                .wait_until(&mut published, deadline)
                .timed_out()
            {
                return *published >= offset;
            }
        }
        true
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

    #[test]
    fn writers_wait_until_their_offset_is_published() {
        let publisher = Arc::new(MetadataPublisher::new(MetadataImage::empty("c")));
        assert!(!publisher.wait_for_offset(0, Duration::from_millis(10)));
        let later = publisher.clone();
        let waiter = std::thread::spawn(move || later.wait_for_offset(2, Duration::from_secs(10)));
        let mut next = MetadataImage::empty("c");
        next.metadata_offset = 2;
        publisher.publish(Arc::new(next));
        assert!(waiter.join().unwrap());
        assert!(publisher.wait_for_offset(1, Duration::ZERO));
    }
}
