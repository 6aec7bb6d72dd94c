//! Where replicas go: round-robin placement and checks of manual assignments.

use std::collections::HashSet;

use kafka_protocol::error::ResponseError;

use super::error::ApiError;
use crate::metadata::MetadataImage;

/// Replica lists for `count` new partitions, `replication_factor` replicas
/// each, round-robin over unfenced brokers. `start` rotates the first broker
/// so leaders spread across topics and added partitions.
pub fn place(
    image: &MetadataImage,
    count: usize,
    replication_factor: i16,
    start: usize,
) -> Result<Vec<Vec<i32>>, ApiError> {
    let brokers: Vec<i32> = image.unfenced_brokers().map(|b| b.id).collect();
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
                 of {rf} cannot be reached because only {} broker(s) are registered and unfenced.",
                brokers.len()
            ),
        ));
    }
    Ok((0..count)
        .map(|p| {
            (0..rf)
                .map(|i| brokers[(start + p + i) % brokers.len()])
                .collect()
        })
        .collect())
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
        if replicas.is_empty() {
            return Err(bad(format!(
                "The manual partition assignment for partition {partition} is empty."
            )));
        }
        if replicas.len() != expected {
            return Err(bad(format!(
                "Partition {partition} has {} replica(s), but earlier partitions have {expected}.",
                replicas.len()
            )));
        }
        let mut seen = HashSet::new();
        for id in replicas {
            if !seen.insert(*id) {
                return Err(bad(format!(
                    "The manual partition assignment for partition {partition} lists broker {id} twice."
                )));
            }
            if !image.brokers.contains_key(id) {
                return Err(bad(format!(
                    "The manual partition assignment for partition {partition} includes broker {id}, \
                     but no such broker is registered."
                )));
            }
        }
        if !replicas.iter().any(|id| !image.brokers[id].fenced) {
            return Err(bad(format!(
                "All brokers in the manual partition assignment for partition {partition} are fenced."
            )));
        }
    }
    Ok(())
}

/// The in-sync replicas of a new partition (its unfenced replicas) and its leader.
pub fn isr_and_leader(image: &MetadataImage, replicas: &[i32]) -> (Vec<i32>, i32) {
    let isr: Vec<i32> = replicas
        .iter()
        .copied()
        .filter(|id| image.brokers.get(id).is_some_and(|b| !b.fenced))
        .collect();
    let leader = isr.first().copied().unwrap_or(-1);
    (isr, leader)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::BrokerImage;

    fn brokers(ids: &[(i32, bool)]) -> MetadataImage {
        let mut image = MetadataImage::empty("c");
        for &(id, fenced) in ids {
            image.brokers.insert(
                id,
                BrokerImage {
                    id,
                    epoch: 0,
                    host: "h".into(),
                    port: 9092,
                    rack: None,
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
