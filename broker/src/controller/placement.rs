//! Where replicas go: rack-aware round-robin placement and checks of manual assignments.

use std::collections::{BTreeMap, HashSet};

use kafka_protocol::error::ResponseError;

use super::error::ApiError;
use crate::metadata::MetadataImage;

/// Replica lists for `count` new partitions, `replication_factor` replicas
/// each, over the active brokers (unfenced, not shutting down) that are not
/// excluded. Each
/// partition's replicas spread over as many racks as possible (a broker
/// without a rack is a rack of its own kind); `start` rotates the first
/// broker so leaders spread across partitions, topics and added partitions.
pub fn place(
    image: &MetadataImage,
    count: usize,
    replication_factor: i16,
    start: usize,
) -> Result<Vec<Vec<i32>>, ApiError> {
    let brokers = rack_alternating(image);
    let rf = usize::try_from(replication_factor).unwrap_or(0);
    if rf == 0 {
        return Err(ApiError::new(
            ResponseError::InvalidReplicationFactor,
            "Replication factor must be larger than 0, or -1 to use the default value.",
        ));
    }
    if rf > brokers.len() {
        return Err(ApiError::new(
            ResponseError::InvalidReplicationFactor,
            format!(
                "Unable to replicate the partition {rf} time(s): the target replication factor \
                 of {rf} cannot be reached because only {} broker(s) are registered, unfenced, \
                 not shutting down and not excluded.",
                brokers.len()
            ),
        ));
    }
    Ok((0..count)
        .map(|p| replicas_from(&brokers, (start + p) % brokers.len(), rf))
        .collect())
}

/// The placeable brokers ordered so that consecutive ones are on different racks
/// where possible: the first broker of each rack, then the second of each, ...
fn rack_alternating(image: &MetadataImage) -> Vec<(i32, Option<&str>)> {
    let mut racks: BTreeMap<Option<&str>, Vec<i32>> = BTreeMap::new();
    for broker in image.placeable_brokers() {
        racks
            .entry(broker.rack.as_deref())
            .or_default()
            .push(broker.id);
    }
    let deepest = racks.values().map(Vec::len).max().unwrap_or(0);
    (0..deepest)
        .flat_map(|i| {
            racks
                .iter()
                .filter_map(move |(rack, ids)| ids.get(i).map(|id| (*id, *rack)))
        })
        .collect()
}

/// `rf` brokers walking `brokers` from `first`: first one per rack not yet
/// used, then (with more replicas than racks) the remaining brokers in order.
fn replicas_from(brokers: &[(i32, Option<&str>)], first: usize, rf: usize) -> Vec<i32> {
    let walk = || (0..brokers.len()).map(|i| brokers[(first + i) % brokers.len()]);
    let mut replicas = Vec::with_capacity(rf);
    let mut racks = HashSet::new();
    for (id, rack) in walk() {
        if replicas.len() < rf && racks.insert(rack) {
            replicas.push(id);
        }
    }
    for (id, _) in walk() {
        if replicas.len() < rf && !replicas.contains(&id) {
            replicas.push(id);
        }
    }
    replicas
}

/// Checks one list of replicas a client chose (`what` names it in the message): not
/// empty, no broker twice, every broker registered.
pub fn check_replica_list(
    image: &MetadataImage,
    what: &str,
    replicas: &[i32],
) -> Result<(), ApiError> {
    let bad = |message: String| ApiError::new(ResponseError::InvalidReplicaAssignment, message);
    if replicas.is_empty() {
        return Err(bad(format!("{what} is empty.")));
    }
    let mut seen = HashSet::new();
    for id in replicas {
        if !seen.insert(*id) {
            return Err(bad(format!("{what} lists broker {id} twice.")));
        }
        if !image.brokers.contains_key(id) {
            return Err(bad(format!(
                "{what} includes broker {id}, but no such broker is registered."
            )));
        }
    }
    Ok(())
}

/// Checks manual assignments: each non-empty, no duplicate brokers, every
/// broker registered, one unfenced broker per partition to lead, and the same
/// replication factor everywhere. `first` is the partition id of the first list.
pub fn validate_assignments(
    image: &MetadataImage,
    first: usize,
    assignments: &[Vec<i32>],
) -> Result<(), ApiError> {
    let bad = |message: String| ApiError::new(ResponseError::InvalidReplicaAssignment, message);
    let expected = assignments.first().map_or(0, Vec::len);
    for (i, replicas) in assignments.iter().enumerate() {
        let partition = first + i;
        check_replica_list(
            image,
            &format!("The manual partition assignment for partition {partition}"),
            replicas,
        )?;
        if replicas.len() != expected {
            return Err(bad(format!(
                "Partition {partition} has {} replica(s), but earlier partitions have {expected}.",
                replicas.len()
            )));
        }
        if !replicas.iter().any(|id| !image.brokers[id].fenced) {
            return Err(bad(format!(
                "All brokers in the manual partition assignment for partition {partition} are fenced."
            )));
        }
    }
    Ok(())
}

/// The in-sync replicas of a new partition (its unfenced replicas) and its
/// leader: the first of them that is not shutting down.
pub fn isr_and_leader(image: &MetadataImage, replicas: &[i32]) -> (Vec<i32>, i32) {
    let isr: Vec<i32> = replicas
        .iter()
        .copied()
        .filter(|id| image.brokers.get(id).is_some_and(|b| !b.fenced))
        .collect();
    let leader = isr
        .iter()
        .copied()
        .find(|id| image.brokers.get(id).is_some_and(|b| b.is_active()))
        .unwrap_or(-1);
    (isr, leader)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::BrokerImage;

    fn brokers(ids: &[(i32, bool)]) -> MetadataImage {
        let racks: Vec<_> = ids.iter().map(|&(id, fenced)| (id, fenced, None)).collect();
        brokers_in_racks(&racks)
    }

    fn brokers_in_racks(ids: &[(i32, bool, Option<&str>)]) -> MetadataImage {
        let mut image = MetadataImage::empty("c");
        for &(id, fenced, rack) in ids {
            image.brokers.insert(
                id,
                BrokerImage {
                    id,
                    epoch: 0,
                    host: "h".into(),
                    port: 9092,
                    rack: rack.map(String::from),
                    fenced,
                    in_controlled_shutdown: false,
                    incarnation_id: uuid::Uuid::nil(),
                    endpoints: Vec::new(),
                    features: Vec::new(),
                },
            );
        }
        image
    }

    #[test]
    fn round_robin_skips_fenced_brokers() {
        let image = brokers(&[(1, false), (2, true), (3, false), (4, false)]);
        let placed = place(&image, 4, 2, 0).unwrap();
        assert_eq!(placed, vec![vec![1, 3], vec![3, 4], vec![4, 1], vec![1, 3]]);
        assert_eq!(place(&image, 1, 1, 1).unwrap(), vec![vec![3]]);
        let err = place(&image, 1, 4, 0).unwrap_err();
        assert_eq!(err.error, ResponseError::InvalidReplicationFactor);
        let err = place(&image, 1, 0, 0).unwrap_err();
        assert_eq!(err.error, ResponseError::InvalidReplicationFactor);
    }

    #[test]
    fn replicas_spread_over_racks_and_leaders_over_brokers() {
        let image = brokers_in_racks(&[
            (1, false, Some("a")),
            (2, false, Some("a")),
            (3, false, Some("a")),
            (4, false, Some("b")),
            (5, false, Some("b")),
            (6, true, Some("c")),
        ]);
        let rack = |id: i32| image.brokers[&id].rack.clone();
        let placed = place(&image, 10, 2, 0).unwrap();
        let mut leaders = BTreeMap::new();
        for replicas in &placed {
            assert_ne!(rack(replicas[0]), rack(replicas[1]), "{replicas:?}");
            *leaders.entry(replicas[0]).or_insert(0) += 1;
        }
        // Every active broker leads, each twice; the fenced one holds nothing.
        assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![2; 5]);
        assert!(placed.iter().flatten().all(|id| *id != 6));
        // More replicas than racks: both racks, then the rest.
        for replicas in place(&image, 5, 3, 0).unwrap() {
            let racks: HashSet<_> = replicas.iter().map(|id| rack(*id)).collect();
            assert_eq!((replicas.len(), racks.len()), (3, 2), "{replicas:?}");
        }
        let err = place(&image, 1, 6, 0).unwrap_err();
        assert_eq!(err.error, ResponseError::InvalidReplicationFactor);
    }

    #[test]
    fn brokers_in_controlled_shutdown_get_no_new_replicas_or_leaderships() {
        let mut image = brokers(&[(1, false), (2, false)]);
        image.brokers.get_mut(&2).unwrap().in_controlled_shutdown = true;
        assert_eq!(place(&image, 2, 1, 0).unwrap(), vec![vec![1], vec![1]]);
        assert_eq!(
            place(&image, 1, 2, 0).unwrap_err().error,
            ResponseError::InvalidReplicationFactor
        );
        assert_eq!(isr_and_leader(&image, &[2, 1]), (vec![2, 1], 1));
    }

    #[test]
    fn excluded_brokers_get_no_new_replicas() {
        let mut image = brokers(&[(1, false), (2, false), (3, false)]);
        image
            .broker_configs
            .entry(2)
            .or_default()
            .insert(crate::metadata::image::EXCLUDED_KEY.into(), "true".into());
        let placed = place(&image, 4, 2, 0).unwrap();
        assert_eq!(placed, vec![vec![1, 3], vec![3, 1], vec![1, 3], vec![3, 1]]);
        let err = place(&image, 1, 3, 0).unwrap_err();
        assert_eq!(err.error, ResponseError::InvalidReplicationFactor);
        assert!(err.message.contains("not excluded"), "{}", err.message);
    }

    #[test]
    fn manual_assignments_are_checked() {
        let image = brokers(&[(1, false), (2, true)]);
        assert_eq!(
            validate_assignments(&image, 0, &[vec![1, 2], vec![2, 1]]),
            Ok(())
        );
        for bad in [
            vec![vec![]],
            vec![vec![1, 1]],
            vec![vec![1, 9]],
            vec![vec![2]],
            vec![vec![1, 2], vec![1]],
        ] {
            let err = validate_assignments(&image, 0, &bad).unwrap_err();
            assert_eq!(
                err.error,
                ResponseError::InvalidReplicaAssignment,
                "{bad:?}"
            );
        }
        assert_eq!(isr_and_leader(&image, &[2, 1]), (vec![1], 1));
    }
}
