use std::time::Instant;

use bytes::Bytes;
use uuid::Uuid;

use super::*;
use crate::metadata::image::testutil::{large_image, random_image};
use crate::storage::snapshot::latest_snapshot;

#[test]
fn images_round_trip_through_snapshot_files() {
    for seed in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let image = random_image(seed, 400);
        let id = write_image_snapshot(dir.path(), &image, 5, 1_000 + seed as i64).unwrap();
        assert_eq!(id, SnapshotId::new(image.metadata_offset + 1, 5));
        assert_eq!(latest_snapshot(dir.path()).unwrap(), Some(id));
        let loaded = read_image_snapshot(dir.path(), id, &image.cluster_id).unwrap();
        assert_eq!(loaded, image, "seed {seed}");
    }
}

#[test]
fn ten_thousand_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let image = large_image(1_000, 10);
    let started = Instant::now();
    let id = write_image_snapshot(dir.path(), &image, 9, 0).unwrap();
    let written = started.elapsed();
    let started = Instant::now();
    let loaded = read_image_snapshot(dir.path(), id, "cluster").unwrap();
    let read = started.elapsed();
    assert_eq!(loaded, image);
    let size = std::fs::metadata(dir.path().join(format!("{id}.checkpoint")))
        .unwrap()
        .len();
    eprintln!("10,000 partitions: {size} bytes, written in {written:?}, read in {read:?}");
}

fn snapshot_of(dir: &std::path::Path, values: &[Bytes]) -> SnapshotId {
    let id = SnapshotId::new(values.len() as i64, 1);
    let mut writer = SnapshotWriter::create(dir, id, 0).unwrap();
    for value in values {
        writer.append(value.clone()).unwrap();
    }
    writer.finish().unwrap();
    id
}

#[test]
fn undecodable_or_unfitting_records_are_errors_naming_the_offset() {
    let image = random_image(1, 200);
    let mut values: Vec<Bytes> = image.to_records().iter().map(|r| r.encode()).collect();
    assert!(values.len() > 3);

    let dir = tempfile::tempdir().unwrap();
    let mut garbled = values.clone();
    garbled[2] = Bytes::from_static(&[1, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    let id = snapshot_of(dir.path(), &garbled);
    match read_image_snapshot(dir.path(), id, "c") {
        Err(MetadataSnapshotError::Decode { path, offset, .. }) => {
            assert_eq!(offset, 3);
            assert!(path.ends_with(format!("{id}.checkpoint")));
        }
        other => panic!("expected a decode error, got {other:?}"),
    }

    let dir = tempfile::tempdir().unwrap();
    // A partition of a topic the snapshot never created.
    let orphan = large_image(1, 1)
        .to_records()
        .into_iter()
        .find_map(|r| match r {
            MetadataRecord::Partition(mut p) => {
                p.topic_id = Uuid::from_u128(u128::MAX);
                Some(MetadataRecord::Partition(p))
            }
            _ => None,
        })
        .unwrap();
    values.push(orphan.encode());
    let id = snapshot_of(dir.path(), &values);
    assert!(matches!(
        read_image_snapshot(dir.path(), id, "c"),
        Err(MetadataSnapshotError::Apply { offset, source: ApplyError::UnknownTopicId(_), .. })
            if offset == values.len() as i64
    ));
}
