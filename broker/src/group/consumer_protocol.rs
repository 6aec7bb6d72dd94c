//! Just enough of the consumer protocol (ConsumerProtocolSubscription v0-3) to know
//! which topics a "consumer" group subscribes to: offset retention and OffsetDelete
//! depend on it.

use std::collections::BTreeSet;

use super::wire::{Reader, WireError};

pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// The topics of one member's subscription metadata. Later fields (user data, owned
/// partitions, generation, rack) are not needed here.
pub fn subscribed_topics(metadata: &[u8]) -> Result<Vec<String>, WireError> {
    let mut r = Reader::new(metadata);
    r.i16("subscription version")?;
    let count = r.array_len("topics")?;
    (0..count).map(|_| r.string("topic")).collect()
}

/// The union of the members' topics; `None` when any subscription does not parse,
/// as Kafka then treats the subscriptions as unknown.
pub fn union_of_topics<'a>(
    subscriptions: impl IntoIterator<Item = &'a [u8]>,
) -> Option<BTreeSet<String>> {
    let mut topics = BTreeSet::new();
    for metadata in subscriptions {
        topics.extend(subscribed_topics(metadata).ok()?);
    }
    Some(topics)
}
