//! Idempotent producer state of one partition: each producer's epoch and the
//! sequence/offset ranges of its last few batches, with CRC-checked snapshots.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::batch::BatchHeader;
use super::segment::{file_name, parse_file_name};
use super::StorageError;

/// How many recent batches per producer are remembered for duplicate detection.
const RETAINED_BATCHES: usize = 5;
const SNAPSHOT_MAGIC: &[u8; 4] = b"PSN1";

/// Sequence and offset range of one appended batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMetadata>,
}

/// The outcome of checking a batch against the producer state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    Append,
    Duplicate(BatchMetadata),
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProducerState {
    producers: HashMap<i64, ProducerEntry>,
}

/// Changes staged while a request's batches are checked, applied only if all pass.
#[derive(Default)]
pub struct PendingUpdates {
    entries: HashMap<i64, ProducerEntry>,
}

fn in_sequence(last: i32, next: i32) -> bool {
    next == last.wrapping_add(1) && next >= 0 || (last == i32::MAX && next == 0)
}

impl ProducerState {
    /// Checks one batch (with staged updates from earlier batches of the same request).
    pub fn check(
        &self,
        pending: &PendingUpdates,
        h: &BatchHeader,
    ) -> Result<SequenceCheck, StorageError> {
        let pid = h.producer_id;
        let Some(entry) = pending
            .entries
            .get(&pid)
            .or_else(|| self.producers.get(&pid))
        else {
            // Unknown producer: its state may have been removed, so any start is accepted.
            return Ok(SequenceCheck::Append);
        };
        if h.producer_epoch < entry.epoch {
            return Err(StorageError::InvalidProducerEpoch(format!(
                "producer {pid} epoch {} is older than current epoch {}",
                h.producer_epoch, entry.epoch
            )));
        }
        if h.producer_epoch > entry.epoch {
            if h.base_sequence != 0 {
                return Err(StorageError::OutOfOrderSequence(format!(
                    "producer {pid} new epoch {} must start at sequence 0, got {}",
                    h.producer_epoch, h.base_sequence
                )));
            }
            return Ok(SequenceCheck::Append);
        }
        let (first, last) = (h.base_sequence, h.last_sequence());
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == first && b.last_seq == last)
        {
            return Ok(SequenceCheck::Duplicate(*dup));
        }
        match entry.batches.back() {
            Some(prev) if !in_sequence(prev.last_seq, first) => {
                Err(StorageError::OutOfOrderSequence(format!(
                    "producer {pid} expected sequence {} but got {first}",
                    prev.last_seq.wrapping_add(1).max(0)
                )))
            }
            _ => Ok(SequenceCheck::Append),
        }
    }

    /// Stages the effect of appending `h` (offsets already assigned).
    pub fn stage(&self, pending: &mut PendingUpdates, h: &BatchHeader) {
        let pid = h.producer_id;
        let entry = pending
            .entries
            .entry(pid)
            .or_insert_with(|| self.producers.get(&pid).cloned().unwrap_or_default());
        apply(entry, h);
    }

    pub fn commit(&mut self, pending: PendingUpdates) {
        self.producers.extend(pending.entries);
    }

    /// Replays a batch already in the log (recovery, after a snapshot).
    pub fn replay(&mut self, h: &BatchHeader) {
        if h.producer_id >= 0 {
            apply(self.producers.entry(h.producer_id).or_default(), h);
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = SNAPSHOT_MAGIC.to_vec();
        out.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        let mut ids: Vec<_> = self.producers.keys().copied().collect();
        ids.sort_unstable();
        for pid in ids {
            let entry = &self.producers[&pid];
            out.extend_from_slice(&pid.to_be_bytes());
            out.extend_from_slice(&entry.epoch.to_be_bytes());
            out.push(entry.batches.len() as u8);
            for b in &entry.batches {
                out.extend_from_slice(&b.first_seq.to_be_bytes());
                out.extend_from_slice(&b.last_seq.to_be_bytes());
                out.extend_from_slice(&b.first_offset.to_be_bytes());
                out.extend_from_slice(&b.last_offset.to_be_bytes());
            }
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    fn decode(raw: &[u8]) -> Option<ProducerState> {
        let (body, crc) = raw.split_at_checked(raw.len().checked_sub(4)?)?;
        if crc32c::crc32c(body) != u32::from_be_bytes(crc.try_into().ok()?) {
            return None;
        }
        let mut r = Reader(body.strip_prefix(SNAPSHOT_MAGIC)?);
        let count = u32::from_be_bytes(r.take()?);
        let mut producers = HashMap::new();
        for _ in 0..count {
            let pid = i64::from_be_bytes(r.take()?);
            let epoch = i16::from_be_bytes(r.take()?);
            let [n] = r.take::<1>()?;
            let mut batches = VecDeque::new();
            for _ in 0..n {
                batches.push_back(BatchMetadata {
                    first_seq: i32::from_be_bytes(r.take()?),
                    last_seq: i32::from_be_bytes(r.take()?),
                    first_offset: i64::from_be_bytes(r.take()?),
                    last_offset: i64::from_be_bytes(r.take()?),
                });
            }
            producers.insert(pid, ProducerEntry { epoch, batches });
        }
        r.0.is_empty().then_some(ProducerState { producers })
    }
}

fn apply(entry: &mut ProducerEntry, h: &BatchHeader) {
    if h.producer_epoch != entry.epoch {
        entry.epoch = h.producer_epoch;
        entry.batches.clear();
    }
    if entry.batches.len() == RETAINED_BATCHES {
        entry.batches.pop_front();
    }
    entry.batches.push_back(BatchMetadata {
        first_seq: h.base_sequence,
        last_seq: h.last_sequence(),
        first_offset: h.base_offset,
        last_offset: h.last_offset(),
    });
}

/// Reads fixed-size big-endian fields, `None` when the input runs out.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_at_checked(N)?;
        self.0 = rest;
        head.try_into().ok()
    }
}

/// Offsets of the snapshot files in `dir`, ascending.
pub fn snapshot_offsets(dir: &Path) -> io::Result<Vec<i64>> {
    let mut offsets: Vec<i64> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| parse_file_name(e.file_name().to_str()?, "snapshot"))
        .collect();
    offsets.sort_unstable();
    Ok(offsets)
}

fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(file_name(offset, "snapshot"))
}

/// Writes the state as of `offset` (the log end offset) atomically.
pub fn write_snapshot(dir: &Path, offset: i64, state: &ProducerState) -> io::Result<()> {
    let tmp = dir.join(format!("{}.tmp", file_name(offset, "snapshot")));
    let mut file = fs::File::create(&tmp)?;
    file.write_all(&state.encode())?;
    file.sync_all()?;
    fs::rename(&tmp, snapshot_path(dir, offset))
}

/// The newest valid snapshot at or below `max_offset`; invalid ones are skipped.
pub fn load_latest_snapshot(
    dir: &Path,
    max_offset: i64,
) -> io::Result<Option<(i64, ProducerState)>> {
    for offset in snapshot_offsets(dir)?
        .into_iter()
        .rev()
        .filter(|o| *o <= max_offset)
    {
        let raw = fs::read(snapshot_path(dir, offset))?;
        match ProducerState::decode(&raw) {
            Some(state) => return Ok(Some((offset, state))),
            None => {
                tracing::warn!(offset, dir = %dir.display(), "skipping corrupt producer snapshot")
            }
        }
    }
    Ok(None)
}

/// Deletes snapshots above `max_offset` (stale after truncation) and all but the
/// newest `keep` of the rest.
pub fn clean_snapshots(dir: &Path, max_offset: i64, keep: usize) -> io::Result<()> {
    let offsets = snapshot_offsets(dir)?;
    let below: Vec<i64> = offsets
        .iter()
        .copied()
        .filter(|o| *o <= max_offset)
        .collect();
    let old = below.len().saturating_sub(keep);
    for offset in below[..old]
        .iter()
        .chain(offsets.iter().filter(|o| **o > max_offset))
    {
        fs::remove_file(snapshot_path(dir, *offset))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::batch::{testutil, validate};
    use super::*;
    use kafka_protocol::records::Compression;

    fn header(pid: i64, epoch: i16, seq: i32, n: usize, offset: i64) -> BatchHeader {
        let recs: Vec<_> = (0..n).map(|_| testutil::rec("k", "v", 0)).collect();
        let mut h = validate(
            &testutil::encode(&recs, (pid, epoch, seq), Compression::None),
            1 << 20,
            true,
        )
        .unwrap();
        h.base_offset = offset;
        h
    }

    fn append(state: &mut ProducerState, h: &BatchHeader) -> Result<SequenceCheck, StorageError> {
        let mut pending = PendingUpdates::default();
        let check = state.check(&pending, h)?;
        if check == SequenceCheck::Append {
            state.stage(&mut pending, h);
            state.commit(pending);
        }
        Ok(check)
    }

    #[test]
    fn duplicates_of_recent_batches_are_detected() {
        let mut s = ProducerState::default();
        for i in 0..6 {
            assert_eq!(
                append(&mut s, &header(7, 0, i * 2, 2, 100 + i as i64 * 2)).unwrap(),
                SequenceCheck::Append
            );
        }
        // Batch 1 (seq 2..3) is among the last five; batch 0 was evicted.
        match append(&mut s, &header(7, 0, 2, 2, 999)).unwrap() {
            SequenceCheck::Duplicate(m) => assert_eq!((m.first_offset, m.last_offset), (102, 103)),
            other => panic!("expected duplicate, got {other:?}"),
        }
        assert!(matches!(
            append(&mut s, &header(7, 0, 0, 2, 999)),
            Err(StorageError::OutOfOrderSequence(_))
        ));
    }

    #[test]
    fn gaps_and_fencing_are_rejected() {
        let mut s = ProducerState::default();
        append(&mut s, &header(1, 3, 0, 1, 0)).unwrap();
        assert!(matches!(
            append(&mut s, &header(1, 3, 2, 1, 1)),
            Err(StorageError::OutOfOrderSequence(_))
        ));
        assert!(matches!(
            append(&mut s, &header(1, 2, 1, 1, 1)),
            Err(StorageError::InvalidProducerEpoch(_))
        ));
        assert!(matches!(
            append(&mut s, &header(1, 4, 5, 1, 1)),
            Err(StorageError::OutOfOrderSequence(_))
        ));
        assert_eq!(
            append(&mut s, &header(1, 4, 0, 1, 1)).unwrap(),
            SequenceCheck::Append
        );
        // The old epoch is now fenced.
        assert!(matches!(
            append(&mut s, &header(1, 3, 1, 1, 2)),
            Err(StorageError::InvalidProducerEpoch(_))
        ));
    }

    #[test]
    fn sequence_wraps_at_i32_max() {
        let mut s = ProducerState::default();
        append(&mut s, &header(1, 0, i32::MAX - 1, 2, 0)).unwrap();
        assert_eq!(
            append(&mut s, &header(1, 0, 0, 1, 2)).unwrap(),
            SequenceCheck::Append
        );
    }

    #[test]
    fn staged_updates_are_seen_by_later_batches_of_the_request() {
        let s = ProducerState::default();
        let mut pending = PendingUpdates::default();
        let first = header(1, 0, 0, 2, 0);
        s.stage(&mut pending, &first);
        assert!(s.check(&pending, &header(1, 0, 5, 1, 2)).is_err());
        assert_eq!(
            s.check(&pending, &header(1, 0, 2, 1, 2)).unwrap(),
            SequenceCheck::Append
        );
        assert!(s.producers.is_empty());
    }

    #[test]
    fn snapshots_round_trip_and_corrupt_ones_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = ProducerState::default();
        append(&mut s, &header(1, 0, 0, 3, 0)).unwrap();
        write_snapshot(dir.path(), 3, &s).unwrap();
        append(&mut s, &header(2, 1, 0, 1, 3)).unwrap();
        write_snapshot(dir.path(), 4, &s).unwrap();

        assert_eq!(
            load_latest_snapshot(dir.path(), 10).unwrap().unwrap(),
            (4, s.clone())
        );
        let mut raw = fs::read(snapshot_path(dir.path(), 4)).unwrap();
        raw[6] ^= 1;
        fs::write(snapshot_path(dir.path(), 4), raw).unwrap();
        let (offset, older) = load_latest_snapshot(dir.path(), 10).unwrap().unwrap();
        assert_eq!(offset, 3);
        assert_eq!(older.producers.len(), 1);

        clean_snapshots(dir.path(), 3, 1).unwrap();
        assert_eq!(snapshot_offsets(dir.path()).unwrap(), vec![3]);
    }
}
