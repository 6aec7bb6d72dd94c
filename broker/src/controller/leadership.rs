//! Leader and ISR changes when a broker stops leading or may lead again.

use uuid::Uuid;

use crate::metadata::records::{PartitionChangeRecord, NO_LEADER_CHANGE};
use crate::metadata::{BrokerImage, MetadataImage, MetadataRecord, PartitionImage};

/// Leader id of a partition without one.
const NO_LEADER: i32 = -1;

/// Takes `broker` out of every ISR and leadership (it was fenced or is
/// shutting down). A partition's new leader is the first replica left in its
/// ISR that may lead. The last ISR member stays in the ISR, and the partition
/// is left without a leader, so it comes back when that broker does.
pub fn remove_broker(image: &MetadataImage, broker: i32) -> Vec<MetadataRecord> {
    partition_changes(image, |p| {
        if !p.isr.contains(&broker) {
            return None;
        }
        let isr: Vec<i32> = p.isr.iter().copied().filter(|id| *id != broker).collect();
        if isr.is_empty() {
            return (p.leader != NO_LEADER).then_some((None, NO_LEADER));
        }
        let leader = if p.leader != broker && can_lead(image, p.leader) {
            p.leader
        } else {
            first_leader(image, &p.replicas, &isr, None)
        };
        Some((Some(isr), leader))
    })
}

/// Leaders for the leaderless partitions that `broker`, just unfenced, may lead.
pub fn elect_leaderless(image: &MetadataImage, broker: i32) -> Vec<MetadataRecord> {
    partition_changes(image, |p| {
        if p.leader != NO_LEADER {
            return None;
        }
        let leader = first_leader(image, &p.replicas, &p.isr, Some(broker));
        (leader != NO_LEADER).then_some((None, leader))
    })
}

/// New leaders for the partitions `broker` leads, so that it can restart without a
/// leader moving under load: the first other ISR replica that may lead. A partition
/// whose ISR holds no other such replica keeps its leader. The ISR is unchanged.
pub fn demote(image: &MetadataImage, broker: i32) -> Vec<MetadataRecord> {
    partition_changes(image, |p| {
        if p.leader != broker {
            return None;
        }
        let others: Vec<i32> = p.isr.iter().copied().filter(|id| *id != broker).collect();
        let leader = first_leader(image, &p.replicas, &others, None);
        (leader != NO_LEADER).then_some((None, leader))
    })
}

/// How many partitions `broker` leads.
pub fn leaderships(image: &MetadataImage, broker: i32) -> usize {
    image
        .topics
        .values()
        .flat_map(|t| &t.partitions)
        .filter(|p| p.leader == broker)
        .count()
}

/// Whether `broker` leads any partition.
pub fn leads_any(image: &MetadataImage, broker: i32) -> bool {
    image
        .topics
        .values()
        .any(|t| t.partitions.iter().any(|p| p.leader == broker))
}

/// Whether `broker` is registered, unfenced and not shutting down.
pub fn can_lead(image: &MetadataImage, broker: i32) -> bool {
    image
        .brokers
        .get(&broker)
        .is_some_and(BrokerImage::is_active)
}

/// The first replica, in replica order, that is in `isr` and may lead
/// (`also` may lead even if the image does not say so yet).
fn first_leader(image: &MetadataImage, replicas: &[i32], isr: &[i32], also: Option<i32>) -> i32 {
    replicas
        .iter()
        .copied()
        .find(|id| isr.contains(id) && (Some(*id) == also || can_lead(image, *id)))
        .unwrap_or(NO_LEADER)
}

/// A PartitionChangeRecord for each partition `change` gives a new
/// (ISR if changed, leader) to; an unchanged leader is left out of the record.
fn partition_changes(
    image: &MetadataImage,
    change: impl Fn(&PartitionImage) -> Option<(Option<Vec<i32>>, i32)>,
) -> Vec<MetadataRecord> {
    image
        .topics
        .values()
        .flat_map(|topic| {
            let change = &change;
            topic.partitions.iter().filter_map(move |p| {
                let (isr, leader) = change(p)?;
                Some(leader_and_isr_change(topic.id, p, leader, isr, -1))
            })
        })
        .collect()
}

/// A PartitionChangeRecord giving `p` the leader `leader` (left out when
/// unchanged), the ISR `isr` when given, and `recovery_state` unless it is -1.
pub fn leader_and_isr_change(
    topic_id: Uuid,
    p: &PartitionImage,
    leader: i32,
    isr: Option<Vec<i32>>,
    recovery_state: i8,
) -> MetadataRecord {
    MetadataRecord::PartitionChange(PartitionChangeRecord {
        partition_id: p.partition,
        topic_id,
        isr,
        leader: if leader == p.leader {
            NO_LEADER_CHANGE
        } else {
            leader
        },
        replicas: None,
        removing_replicas: None,
        adding_replicas: None,
        leader_recovery_state: recovery_state,
    })
}
