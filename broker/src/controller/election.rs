//! Leader elections asked for by ElectLeaders (KIP-460) or run by the
//! controller itself: preferred leaders back on each partition's first
//! replica that is not excluded, and unclean leaders for partitions whose
//! whole ISR is gone when `unclean.leader.election.enable` allows it.

use kafka_protocol::error::ResponseError;

use super::error::{ApiError, ControllerError};
use super::leadership::{can_lead, leader_and_isr_change};
use super::quorum::Controller;
use crate::metadata::{MetadataImage, MetadataRecord, PartitionImage, TopicImage};

/// Leader id of a partition without one.
const NO_LEADER: i32 = -1;
/// KIP-704: an unclean leader recovers its state before followers rejoin.
const RECOVERING: i8 = 1;

/// ElectLeaders' election types, by their wire codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionType {
    /// The first replica that is not excluded, if it is in the ISR and may lead.
    Preferred,
    /// Any live replica for a partition that has no leader, outside the ISR if need be.
    Unclean,
}

impl ElectionType {
    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            0 => Some(ElectionType::Preferred),
            1 => Some(ElectionType::Unclean),
            _ => None,
        }
    }
}

/// One partition's outcome: `Ok` when a new leader was committed.
pub type ElectionResult = (String, i32, Result<(), ApiError>);

impl Controller {
    /// ElectLeaders: elects `kind` leaders for `partitions` (every partition
    /// when `None`), in one commit. Results keep the request's order; for
    /// `None`, partitions that needed no election are left out, as in Kafka.
    pub fn elect_leaders(
        &self,
        kind: ElectionType,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Result<Vec<ElectionResult>, ControllerError> {
        let _writer = self.write();
        let image = self.image();
        let everything = partitions.is_none();
        let wanted = partitions.unwrap_or_else(|| all_partitions(&image));
        let mut records = Vec::new();
        let mut results = Vec::with_capacity(wanted.len());
        for (topic, partition) in wanted {
            let planned = find(&image, &topic, partition).and_then(|(t, p)| match kind {
                ElectionType::Preferred => preferred_election(&image, t, p),
                ElectionType::Unclean => unclean_election(&image, t, p),
            });
            if everything
                && matches!(&planned, Err(e) if e.error == ResponseError::ElectionNotNeeded)
            {
                continue;
            }
            results.push((topic, partition, planned.map(|r| records.push(r))));
        }
        if !records.is_empty() {
            self.commit(&image, records)?;
        }
        Ok(results)
    }

    /// `auto.leader.rebalance.enable`: moves leadership back to every
    /// partition's preferred replica that may take it. Returns how many moved.
    pub fn balance_leaders(&self) -> Result<usize, ControllerError> {
        self.elect_where(|image, topic, p| preferred_election(image, topic, p).ok())
    }

    /// Unclean elections for leaderless partitions of topics (or a broker
    /// default) that allow them; without one such a partition waits for its
    /// last ISR member. Returns how many got a leader.
    pub fn elect_unclean_leaders(&self) -> Result<usize, ControllerError> {
        let allowed = |topic: &TopicImage| {
            self.log_defaults()
                .for_topic(&topic.name, &topic.configs)
                .unclean_leader_election
        };
        self.elect_where(|image, topic, p| {
            if p.leader != NO_LEADER || !allowed(topic) {
                return None;
            }
            let record = unclean_election(image, topic, p).ok()?;
            tracing::warn!(
                topic = %topic.name,
                partition = p.partition,
                "unclean leader election: records only the lost ISR had are gone"
            );
            Some(record)
        })
    }

    /// Commits the elections `elect` plans, looking first without the
    /// writer lock since usually there is nothing to do.
    pub(super) fn elect_where(
        &self,
        elect: impl Fn(&MetadataImage, &TopicImage, &PartitionImage) -> Option<MetadataRecord>,
    ) -> Result<usize, ControllerError> {
        let plan = |image: &MetadataImage| -> Vec<MetadataRecord> {
            image
                .topics
                .values()
                .flat_map(|t| t.partitions.iter().filter_map(|p| elect(image, t, p)))
                .collect()
        };
        if plan(&self.image()).is_empty() {
            return Ok(0);
        }
        let _writer = self.write();
        let image = self.image();
        let records = plan(&image);
        let count = records.len();
        if count > 0 {
            self.commit(&image, records)?;
        }
        Ok(count)
    }
}

fn all_partitions(image: &MetadataImage) -> Vec<(String, i32)> {
    image
        .topics
        .values()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.clone(), p.partition)))
        .collect()
}

pub(super) fn find<'a>(
    image: &'a MetadataImage,
    topic: &str,
    partition: i32,
) -> Result<(&'a TopicImage, &'a PartitionImage), ApiError> {
    let unknown = || {
        ApiError::new(
            ResponseError::UnknownTopicOrPartition,
            format!("Partition {topic}-{partition} does not exist."),
        )
    };
    let t = image.topic(topic).ok_or_else(unknown)?;
    let p = usize::try_from(partition)
        .ok()
        .and_then(|i| t.partitions.get(i))
        .ok_or_else(unknown)?;
    Ok((t, p))
}

fn preferred_election(
    image: &MetadataImage,
    topic: &TopicImage,
    p: &PartitionImage,
) -> Result<MetadataRecord, ApiError> {
    let name = format!("{}-{}", topic.name, p.partition);
    // An excluded first replica gives way to the next one not excluded.
    let Some(preferred) = image.preferred_leader(p) else {
        return Err(ApiError::new(
            ResponseError::PreferredLeaderNotAvailable,
            format!("Partition {name} has no replicas."),
        ));
    };
    if p.leader == preferred {
        return Err(ApiError::new(
            ResponseError::ElectionNotNeeded,
            format!("Leader of {name} is already its preferred replica {preferred}."),
        ));
    }
    if !p.isr.contains(&preferred) || !can_lead(image, preferred) {
        return Err(ApiError::new(
            ResponseError::PreferredLeaderNotAvailable,
            format!(
                "Preferred replica {preferred} of {name} is not in the ISR {:?} or cannot lead now.",
                p.isr
            ),
        ));
    }
    Ok(leader_change(topic, p, preferred, None))
}

fn unclean_election(
    image: &MetadataImage,
    topic: &TopicImage,
    p: &PartitionImage,
) -> Result<MetadataRecord, ApiError> {
    let name = format!("{}-{}", topic.name, p.partition);
    if p.leader != NO_LEADER {
        return Err(ApiError::new(
            ResponseError::ElectionNotNeeded,
            format!("Partition {name} has a leader, broker {}.", p.leader),
        ));
    }
    // An ISR member is still the safe choice when one can lead.
    let live = |id: &&i32| can_lead(image, **id);
    if let Some(&clean) = p.replicas.iter().filter(|id| p.isr.contains(id)).find(live) {
        return Ok(leader_change(topic, p, clean, None));
    }
    match p.replicas.iter().find(live) {
        Some(&leader) => Ok(leader_change(topic, p, leader, Some(vec![leader]))),
        None => Err(ApiError::new(
            ResponseError::EligibleLeadersNotAvailable,
            format!("No replica of {name} ({:?}) is alive.", p.replicas),
        )),
    }
}

/// `leader` takes over; `unclean_isr` replaces the ISR of an unclean election.
fn leader_change(
    topic: &TopicImage,
    p: &PartitionImage,
    leader: i32,
    unclean_isr: Option<Vec<i32>>,
) -> MetadataRecord {
    let recovery_state = if unclean_isr.is_some() {
        RECOVERING
    } else {
        -1
    };
    leader_and_isr_change(topic.id, p, leader, unclean_isr, recovery_state)
}
