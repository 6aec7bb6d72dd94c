use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;

use super::id::FileKind;
use super::*;
use crate::storage::batch::{validate_all, BatchHeader};

fn values(n: usize, size: usize) -> Vec<Bytes> {
    (0..n)
        .map(|i| Bytes::from(format!("{i:0size$}").into_bytes()))
        .collect()
}

fn write(dir: &Path, id: SnapshotId, values: &[Bytes], max_batch: usize) -> u64 {
    let mut writer = SnapshotWriter::create(dir, id, 1_234)
        .unwrap()
        .with_max_batch_bytes(max_batch);
    for value in values {
        writer.append(value.clone()).unwrap();
    }
    writer.finish().unwrap()
}

fn file(dir: &Path, id: SnapshotId) -> PathBuf {
    id.path(dir, FileKind::Complete)
}

/// Every batch of the file with its start position.
fn batches(path: &Path) -> Vec<(usize, BatchHeader)> {
    validate_all(&fs::read(path).unwrap(), MAX_BATCH_BYTES, true).unwrap()
}

/// A snapshot of a few hundred records in 2 KiB batches, to damage.
struct Damageable {
    dir: tempfile::TempDir,
    id: SnapshotId,
    path: PathBuf,
    batches: Vec<(usize, BatchHeader)>,
    bytes: Vec<u8>,
}

fn damageable() -> Damageable {
    let dir = tempfile::tempdir().unwrap();
    let id = SnapshotId::new(100, 1);
    write(dir.path(), id, &values(300, 20), 2_048);
    let path = file(dir.path(), id);
    Damageable {
        batches: batches(&path),
        bytes: fs::read(&path).unwrap(),
        dir,
        id,
        path,
    }
}

impl Damageable {
    /// Replaces the file's content with `bytes`.
    fn store(&self, bytes: &[u8]) {
        fs::write(&self.path, bytes).unwrap();
    }

    /// Opening the snapshot fails as corrupt at `expected_position`, saying `text`.
    fn assert_corrupt(&self, expected_position: u64, text: &str) {
        assert_corrupt(
            SnapshotReader::open(self.dir.path(), self.id),
            expected_position,
            text,
        );
    }
}

fn assert_corrupt(
    result: Result<SnapshotReader, SnapshotError>,
    expected_position: u64,
    text: &str,
) {
    match result {
        Err(SnapshotError::Corrupt {
            path,
            position,
            reason,
        }) => {
            assert!(path.to_string_lossy().ends_with(".checkpoint"), "{path:?}");
            assert_eq!(position, expected_position, "{reason}");
            assert!(reason.contains(text), "{reason:?} lacks {text:?}");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn file_names_follow_kafka() {
    let id = SnapshotId::new(12_345, 7);
    assert_eq!(
        id.path(Path::new("d"), FileKind::Complete),
        Path::new("d/00000000000000012345-0000000007.checkpoint")
    );
    for kind in [FileKind::Complete, FileKind::Partial, FileKind::Deleted] {
        let path = id.path(Path::new("d"), kind);
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(SnapshotId::parse(name), Some((id, kind)));
    }
    for other in [
        "leader-epoch-checkpoint",
        "00000000000000000000.log",
        "0000000000000001234-0000000007.checkpoint",
        "0000000000000001234x-0000000007.checkpoint",
        "quorum-state",
    ] {
        assert_eq!(SnapshotId::parse(other), None, "{other}");
    }
}

#[test]
fn round_trip_with_kafka_framing() {
    let dir = tempfile::tempdir().unwrap();
    let id = SnapshotId::new(500, 3);
    let data = values(1_000, 40);
    let size = write(dir.path(), id, &data, 4_096);
    assert!(!id.path(dir.path(), FileKind::Partial).exists());
    let path = file(dir.path(), id);
    assert_eq!(fs::metadata(&path).unwrap().len(), size);

    let reader = SnapshotReader::open(dir.path(), id).unwrap();
    assert_eq!(reader.last_contained_log_timestamp(), 1_234);
    let read: Vec<Bytes> = reader.records().iter().map(|r| r.value.clone()).collect();
    assert_eq!(read, data);
    let offsets: Vec<i64> = reader.records().iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (1..=1_000).collect::<Vec<i64>>());

    // Header batch, bounded data batches, footer batch; contiguous offsets
    // from 0; every batch stamped with the snapshot's epoch.
    let headers = batches(&path);
    assert!(headers.len() > 10, "{} batches", headers.len());
    let (first, last) = (headers[0].1, headers[headers.len() - 1].1);
    assert!(first.is_control() && last.is_control());
    assert_eq!((first.base_offset, first.records_count), (0, 1));
    assert_eq!((last.base_offset, last.records_count), (1_001, 1));
    let mut next = 0;
    for (_, header) in &headers {
        assert_eq!(header.base_offset, next);
        assert_eq!(header.partition_leader_epoch, 3);
        assert!(header.total_len() <= 4_096);
        next = header.next_offset();
    }
    for (_, header) in &headers[1..headers.len() - 1] {
        assert!(!header.is_control());
    }
    // The control records' keys are (version 0, type 3) and (version 0, type 4).
    let mut bytes = Bytes::from(fs::read(&path).unwrap());
    let sets = RecordBatchDecoder::decode_all(&mut bytes).unwrap();
    let key = |set: usize| sets[set].records[0].key.clone().unwrap();
    assert_eq!(key(0).as_ref(), [0, 0, 0, 3]);
    assert_eq!(key(sets.len() - 1).as_ref(), [0, 0, 0, 4]);
    // SnapshotHeader value: version 0, LastContainedLogTimestamp, no tags.
    let header_value = sets[0].records[0].value.clone().unwrap();
    assert_eq!(
        header_value.as_ref(),
        [&[0, 0][..], &1_234i64.to_be_bytes(), &[0]].concat()
    );
}

#[test]
fn an_empty_snapshot_has_only_header_and_footer() {
    let dir = tempfile::tempdir().unwrap();
    let id = SnapshotId::new(0, 0);
    write(dir.path(), id, &[], 1 << 20);
    assert_eq!(batches(&file(dir.path(), id)).len(), 2);
    assert!(SnapshotReader::open(dir.path(), id)
        .unwrap()
        .records()
        .is_empty());
}

#[test]
fn corrupt_crc_is_detected_with_file_and_position() {
    let d = damageable();
    let (start, header) = d.batches[3];
    let mut bytes = d.bytes.clone();
    bytes[start + header.total_len() - 5] ^= 0x40;
    d.store(&bytes);
    d.assert_corrupt(start as u64, "CRC");
}

#[test]
fn truncated_file_is_detected() {
    let d = damageable();
    let (start, _) = d.batches[2];
    d.store(&d.bytes[..start + 100]);
    d.assert_corrupt(start as u64, "truncated");
    d.store(&d.bytes[..start + 5]);
    d.assert_corrupt(start as u64, "truncated");
    d.store(b"");
    d.assert_corrupt(0, "no SnapshotHeader");
}

#[test]
fn missing_footer_or_header_is_detected() {
    let d = damageable();
    let bytes = &d.bytes;

    // Whole batches, but the footer's is gone.
    let (footer_start, _) = d.batches[d.batches.len() - 1];
    d.store(&bytes[..footer_start]);
    d.assert_corrupt(footer_start as u64, "no SnapshotFooter");

    // Data batches without the header batch before them start at the wrong offset,
    // and renumbered they are still not a header.
    let (data_start, _) = d.batches[1];
    d.store(&bytes[data_start..]);
    d.assert_corrupt(0, "offset");
    let mut headless = bytes[data_start..].to_vec();
    headless[..8].copy_from_slice(&0i64.to_be_bytes());
    d.store(&headless);
    d.assert_corrupt(0, "SnapshotHeader");

    // Anything after the footer.
    let mut trailing = bytes.clone();
    trailing.extend_from_slice(&bytes[footer_start..]);
    d.store(&trailing);
    d.assert_corrupt(bytes.len() as u64, "after the SnapshotFooter");
}

#[test]
fn chunked_transfer_reassembles_a_multi_megabyte_snapshot() {
    let leader_dir = tempfile::tempdir().unwrap();
    let follower_dir = tempfile::tempdir().unwrap();
    let id = SnapshotId::new(80_001, 4);
    let data = values(40_000, 100);
    write(leader_dir.path(), id, &data, 1 << 20);

    let raw = RawSnapshot::open(leader_dir.path(), id).unwrap();
    assert!(raw.size() > 4 << 20, "{} bytes", raw.size());
    let mut incoming = IncomingSnapshot::create(follower_dir.path(), id, raw.size()).unwrap();
    // An odd chunk size, so chunks end inside batches.
    while !incoming.is_complete() {
        let chunk = raw.read_chunk(incoming.position(), 300_007).unwrap();
        incoming.append(incoming.position(), &chunk).unwrap();
    }
    assert!(id.path(follower_dir.path(), FileKind::Partial).exists());
    let reader = incoming.finish().unwrap();
    assert_eq!(reader.records().len(), data.len());
    assert_eq!(reader.path(), file(follower_dir.path(), id));
    assert!(!id.path(follower_dir.path(), FileKind::Partial).exists());
    assert_eq!(
        fs::read(file(follower_dir.path(), id)).unwrap(),
        fs::read(file(leader_dir.path(), id)).unwrap()
    );
}

#[test]
fn chunks_out_of_order_or_out_of_range_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let id = SnapshotId::new(10, 1);
    write(dir.path(), id, &values(10, 10), 1 << 20);
    let raw = RawSnapshot::open(dir.path(), id).unwrap();
    assert!(matches!(
        raw.read_chunk(raw.size(), 10),
        Err(SnapshotError::PositionOutOfRange { .. })
    ));
    assert_eq!(raw.read_chunk(raw.size() - 3, 10).unwrap().len(), 3);

    let other = tempfile::tempdir().unwrap();
    let mut incoming = IncomingSnapshot::create(other.path(), id, raw.size()).unwrap();
    let chunk = raw.read_chunk(0, 50).unwrap();
    incoming.append(0, &chunk).unwrap();
    assert!(matches!(
        incoming.append(0, &chunk),
        Err(SnapshotError::UnexpectedPosition { expected: 50, .. })
    ));
    let too_long = vec![0u8; raw.size() as usize];
    assert!(matches!(
        incoming.append(50, &too_long),
        Err(SnapshotError::SizeMismatch { .. })
    ));
    assert!(matches!(
        incoming.finish(),
        Err(SnapshotError::SizeMismatch { received: 50, .. })
    ));
    // Finishing early dropped the transfer and its file.
    assert!(!id.path(other.path(), FileKind::Partial).exists());
}

#[test]
fn a_damaged_transfer_is_removed_never_installed() {
    let leader = tempfile::tempdir().unwrap();
    let follower = tempfile::tempdir().unwrap();
    let id = SnapshotId::new(10, 1);
    write(leader.path(), id, &values(100, 10), 1 << 20);
    let raw = RawSnapshot::open(leader.path(), id).unwrap();
    let mut bytes = raw.read_chunk(0, raw.size() as usize).unwrap().to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    let mut incoming = IncomingSnapshot::create(follower.path(), id, raw.size()).unwrap();
    incoming.append(0, &bytes).unwrap();
    let err = incoming.finish().unwrap_err();
    assert!(matches!(err, SnapshotError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains(".checkpoint.part"), "{err}");
    assert_eq!(fs::read_dir(follower.path()).unwrap().count(), 0);
}

#[test]
fn listing_deleting_and_cleaning_up() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(latest_snapshot(&dir.path().join("missing")).unwrap(), None);
    let ids = [
        SnapshotId::new(100, 1),
        SnapshotId::new(200, 1),
        SnapshotId::new(200, 2),
        SnapshotId::new(300, 2),
    ];
    for id in ids.iter().rev() {
        write(dir.path(), *id, &values(3, 5), 1 << 20);
    }
    fs::write(dir.path().join("leader-epoch-checkpoint"), b"0\n0\n").unwrap();
    assert_eq!(list_snapshots(dir.path()).unwrap(), ids);
    assert_eq!(latest_snapshot(dir.path()).unwrap(), Some(ids[3]));

    assert_eq!(delete_before(dir.path(), ids[2]).unwrap(), &ids[..2]);
    assert_eq!(list_snapshots(dir.path()).unwrap(), &ids[2..]);
    delete_snapshot(dir.path(), ids[3]).unwrap();
    assert_eq!(list_snapshots(dir.path()).unwrap(), &ids[2..3]);
    assert!(!ids[3].path(dir.path(), FileKind::Deleted).exists());

    // What a crash leaves: a half-written snapshot and one marked for deletion.
    let partial = SnapshotId::new(400, 2).path(dir.path(), FileKind::Partial);
    fs::write(&partial, b"half").unwrap();
    let deleted = ids[0].path(dir.path(), FileKind::Deleted);
    fs::write(&deleted, b"old").unwrap();
    assert_eq!(list_snapshots(dir.path()).unwrap(), &ids[2..3]);
    assert_eq!(clean_up_partial(dir.path()).unwrap(), 2);
    assert!(!partial.exists() && !deleted.exists());
    assert!(dir.path().join("leader-epoch-checkpoint").exists());
    assert_eq!(list_snapshots(dir.path()).unwrap(), &ids[2..3]);
}

#[test]
fn an_abandoned_writer_leaves_nothing_and_ids_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let id = SnapshotId::new(7, 1);
    let mut writer = SnapshotWriter::create(dir.path(), id, 0).unwrap();
    writer.append(Bytes::from_static(b"x")).unwrap();
    assert!(id.path(dir.path(), FileKind::Partial).exists());
    drop(writer);
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);

    assert!(matches!(
        SnapshotWriter::create(dir.path(), SnapshotId::new(-1, 0), 0),
        Err(SnapshotError::InvalidId(_))
    ));
    write(dir.path(), id, &[], 1 << 20);
    assert!(matches!(
        SnapshotWriter::create(dir.path(), id, 0),
        Err(SnapshotError::AlreadyExists(_))
    ));
    let too_big = Bytes::from(vec![0u8; MAX_BATCH_BYTES]);
    let mut writer = SnapshotWriter::create(dir.path(), SnapshotId::new(8, 1), 0).unwrap();
    assert!(matches!(
        writer.append(too_big),
        Err(SnapshotError::RecordTooLarge(_))
    ));
}
