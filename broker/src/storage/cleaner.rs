//! Log compaction (`cleanup.policy=compact`): keep only the latest record per
//! key in the non-active segments, offsets preserved.
//!
//! Runs without the appender lock; only the final swap of each segment takes
//! it. A cleaned segment is written to `<base>.log.cleaned`, renamed to
//! `.swap` once synced, then renamed over the `.log`; recovery completes a
//! `.swap` and discards a `.cleaned`.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, RecordSet,
};

use super::batch::{self, BatchHeader, PatchableBatch};
use super::log::index_config;
use super::segment::{self, file_name, Segment};
use super::{PartitionLog, StorageError};

/// What one cleaning pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanStats {
    pub segments_rewritten: usize,
    pub records_removed: usize,
}

/// Compacts `log` if its policy is compact and its dirty ratio is high enough.
pub fn clean(log: &PartitionLog, now_ms: i64) -> Result<Option<CleanStats>, StorageError> {
    let config = log.config();
    if !config.cleanup_policy.compact {
        return Ok(None);
    }
    let segments = log.segments_snapshot();
    let lag_cutoff = now_ms.saturating_sub(config.min_compaction_lag_ms);
    // Never the active segment, nor anything newer than min.compaction.lag.ms.
    let cleanable: Vec<Arc<Segment>> = segments[..segments.len().saturating_sub(1)]
        .iter()
        .take_while(|s| s.max_timestamp() <= lag_cutoff)
        .cloned()
        .collect();
    let Some(end) = segments.get(cleanable.len()).map(|s| s.base_offset()) else {
        return Ok(None);
    };
    let first_dirty = log.cleaner_offset().max(log.log_start_offset());
    let total: u64 = cleanable.iter().map(|s| s.size()).sum();
    let dirty: u64 = cleanable
        .iter()
        .filter(|s| s.next_offset() > first_dirty)
        .map(|s| s.size())
        .sum();
    if dirty == 0 || (dirty as f64 / total as f64) < config.min_cleanable_dirty_ratio {
        return Ok(None);
    }

    let mut latest: HashMap<Bytes, i64> = HashMap::new();
    for segment in cleanable.iter().filter(|s| s.next_offset() > first_dirty) {
        for_each_batch(segment, |_, set| {
            let records = set.map_or(&[][..], |s| &s.records[..]);
            for r in records.iter().filter(|r| r.offset >= first_dirty) {
                if let Some(key) = &r.key {
                    latest.insert(key.clone(), r.offset);
                }
            }
            Ok(())
        })?;
    }
    let keep = |r: &Record, timestamp: i64| {
        let Some(key) = &r.key else { return false };
        let superseded = latest.get(key).is_some_and(|&o| o > r.offset);
        let expired_tombstone =
            r.value.is_none() && timestamp <= now_ms.saturating_sub(config.delete_retention_ms);
        !superseded && !expired_tombstone
    };

    let mut stats = CleanStats::default();
    for segment in &cleanable {
        if let Some(removed) = clean_segment(log, segment, &keep)? {
            stats.segments_rewritten += 1;
            stats.records_removed += removed;
        }
    }
    log.set_cleaner_offset(end);
    tracing::info!(tp = %log.topic_partition(), ?stats, cleaned_up_to = end, "compacted log");
    Ok(Some(stats))
}

/// Rewrites one segment keeping the records `keep` accepts and swaps it in.
/// Returns the number of records removed, `None` when nothing changed.
fn clean_segment(
    log: &PartitionLog,
    segment: &Arc<Segment>,
    keep: &impl Fn(&Record, i64) -> bool,
) -> Result<Option<usize>, StorageError> {
    let dir = log.dir();
    let base = segment.base_offset();
    let log_name = file_name(base, "log");
    let cleaned = dir.join(format!("{log_name}.cleaned"));
    // Streamed to disk: a segment can be far larger than memory should hold.
    let mut out = BufWriter::new(File::create(&cleaned)?);
    let (mut removed, mut written) = (0, 0);
    for_each_batch(segment, |(header, raw), set| {
        let Some(set) = set else {
            // Control batches are kept as they are.
            out.write_all(&raw)?;
            written += raw.len();
            return Ok(());
        };
        // Records of a LogAppendTime batch all carry the batch's time.
        let time = |r: &Record| {
            if header.is_log_append_time() {
                header.max_timestamp
            } else {
                r.timestamp
            }
        };
        let kept: Vec<Record> = set
            .records
            .iter()
            .filter(|r| keep(r, time(r)))
            .cloned()
            .collect();
        removed += set.records.len() - kept.len();
        let bytes = if kept.len() == set.records.len() {
            raw
        } else if kept.is_empty() {
            return Ok(());
        } else {
            reencode(header, set, &kept)?
        };
        out.write_all(&bytes)?;
        written += bytes.len();
        Ok(())
    })?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    if removed == 0 {
        drop(file);
        fs::remove_file(&cleaned)?;
        return Ok(None);
    }
    file.sync_all()?;
    let config = log.config();
    let swapped = log.replace_segment(segment, || {
        if written == 0 {
            fs::remove_file(&cleaned)?;
            return Ok(None);
        }
        let swap = dir.join(format!("{log_name}.swap"));
        fs::rename(&cleaned, &swap)?;
        // Stale indexes must never describe the new file, even after a crash.
        remove_indexes(dir, base)?;
        fs::rename(&swap, dir.join(&log_name))?;
        let (fresh, _) =
            Segment::open(dir, base, index_config(&config), true, segment.created_ms())?;
        fresh.seal()?;
        Ok(Some(fresh))
    })?;
    if !swapped {
        // The segment went away meanwhile (retention, truncation): drop our copy.
        fs::remove_file(&cleaned)?;
        return Ok(None);
    }
    Ok(Some(removed))
}

/// Encodes the kept records of a batch with the batch's codec and producer
/// fields, then restores what the encoder does not carry over.
fn reencode(header: BatchHeader, set: &RecordSet, kept: &[Record]) -> Result<Bytes, StorageError> {
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: set.compression,
    };
    RecordBatchEncoder::encode(&mut buf, kept, &options)
        .map_err(|e| StorageError::CorruptMessage(format!("cannot re-encode batch: {e}")))?;
    // The encoder yields one batch here: kept records share producer fields
    // and keep their offset-to-sequence distance.
    let whole = batch::validate(&buf, buf.len(), false).is_ok_and(|h| h.total_len() == buf.len());
    let mut patch = PatchableBatch::new(&buf).filter(|_| whole).ok_or_else(|| {
        StorageError::CorruptMessage("re-encoding did not yield one batch".into())
    })?;
    patch.set_leader_epoch(header.partition_leader_epoch);
    if header.base_sequence < 0 {
        patch.set_base_sequence(-1);
    }
    if header.is_log_append_time() {
        patch.set_log_append_time(header.max_timestamp);
    }
    Ok(Bytes::from(patch.to_vec()))
}

/// Every batch of a segment in turn, decoded unless it is a control batch.
fn for_each_batch(
    segment: &Segment,
    mut f: impl FnMut((BatchHeader, Bytes), Option<&RecordSet>) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    let mut position = 0u64;
    while let Some(header) = segment.header_at(position)? {
        let raw = segment.read_at(position, header.total_len())?;
        let checked = batch::validate(&raw, raw.len(), false).map_err(|e| {
            StorageError::CorruptMessage(format!("segment {}: {e:?}", segment.base_offset()))
        })?;
        position += checked.total_len() as u64;
        if checked.is_control() {
            f((checked, raw), None)?;
            continue;
        }
        let set = RecordBatchDecoder::decode(&mut raw.clone())
            .map_err(|e| StorageError::CorruptMessage(format!("cannot decode batch: {e}")))?;
        f((checked, raw), Some(&set))?;
    }
    Ok(())
}

fn remove_indexes(dir: &Path, base: i64) -> io::Result<()> {
    for ext in ["index", "timeindex"] {
        match fs::remove_file(dir.join(file_name(base, ext))) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Completes a swap the cleaner started (`.swap` is whole and synced) and
/// discards half-written `.cleaned` files.
pub fn finish_interrupted_swaps(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(".cleaned") || name.ends_with(".tmp") {
            fs::remove_file(&path)?;
        } else if let Some(log_name) = name.strip_suffix(".swap") {
            if let Some(base) = segment::parse_file_name(log_name, "log") {
                tracing::warn!(dir = %dir.display(), base, "completing interrupted cleaner swap");
                remove_indexes(dir, base)?;
                fs::rename(&path, dir.join(log_name))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::storage::batch::testutil::{encode, rec, Rec};
    use crate::storage::log::testutil::{config, open};
    use crate::storage::LogConfig;
    use kafka_protocol::records::Compression;

    fn compacted() -> LogConfig {
        let mut c = config();
        c.cleanup_policy.compact = true;
        c.cleanup_policy.delete = false;
        c.min_cleanable_dirty_ratio = 0.1;
        c.delete_retention_ms = 1_000;
        c
    }

    /// (offset, key, value) of every record in the log.
    fn contents(log: &PartitionLog) -> Vec<(i64, String, Option<String>)> {
        let mut out = Vec::new();
        let mut offset = log.log_start_offset();
        while offset < log.log_end_offset() {
            let mut data = log.read(offset, 1 << 20, i64::MAX, true).unwrap();
            if data.is_empty() {
                break;
            }
            for set in RecordBatchDecoder::decode_all(&mut data).unwrap() {
                for r in set.records {
                    let text = |b: &Bytes| String::from_utf8(b.to_vec()).unwrap();
                    out.push((
                        r.offset,
                        text(r.key.as_ref().unwrap()),
                        r.value.as_ref().map(text),
                    ));
                    offset = r.offset + 1;
                }
            }
        }
        out
    }

    fn latest_per_key(
        all: &[(i64, String, Option<String>)],
    ) -> BTreeMap<String, (i64, Option<String>)> {
        all.iter()
            .map(|(o, k, v)| (k.clone(), (*o, v.clone())))
            .collect()
    }

    fn fill(log: &PartitionLog, rounds: i64, ts: i64) {
        for i in 0..rounds {
            let recs: Vec<Rec> = (0..4)
                .map(|k| rec(["a", "b", "c", "d"][k], &format!("{i}-{k}"), ts))
                .collect();
            log.append(encode(&recs, (-1, -1, -1), Compression::Gzip), 0, 0)
                .unwrap();
        }
    }

    #[test]
    fn keeps_the_latest_value_per_key_with_offsets_and_codec_preserved() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), compacted());
        fill(&log, 40, 10);
        assert!(log.segment_count() > 3);
        let before = contents(&log);
        let active_base = log.segments_snapshot().last().unwrap().base_offset();

        let stats = clean(&log, 20).unwrap().unwrap();
        assert!(stats.records_removed > 0);
        let after = contents(&log);
        assert!(after.len() < before.len());
        // Every surviving record is unchanged at its original offset.
        for r in &after {
            assert!(before.contains(r), "{r:?} was not in the log before");
        }
        // Below the active segment, each key appears at most once.
        let cleaned: Vec<_> = after.iter().filter(|r| r.0 < active_base).collect();
        let mut keys: Vec<_> = cleaned.iter().map(|r| &r.1).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), cleaned.len());
        assert_eq!(latest_per_key(&after), latest_per_key(&before));
        // Re-encoded batches keep gzip.
        let mut data = log.read(0, 1 << 20, i64::MAX, true).unwrap();
        assert_eq!(
            RecordBatchDecoder::decode(&mut data).unwrap().compression,
            Compression::Gzip
        );

        // Nothing dirty left: a second pass does nothing.
        assert!(clean(&log, 20).unwrap().is_none());
        drop(log);
        let log = open(dir.path(), compacted());
        assert_eq!(contents(&log), after);
        assert_eq!(
            log.append(
                encode(&[rec("a", "x", 0)], (-1, -1, -1), Compression::None),
                0,
                0
            )
            .unwrap()
            .base_offset,
            160
        );
    }

    #[test]
    fn tombstones_are_dropped_once_older_than_delete_retention() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), compacted());
        fill(&log, 20, 10);
        log.append(
            encode(&[rec("z", "old", 10)], (-1, -1, -1), Compression::None),
            0,
            0,
        )
        .unwrap();
        let tomb = Rec {
            key: Some("z"),
            value: None,
            timestamp: 10,
        };
        log.append(encode(&[tomb], (-1, -1, -1), Compression::None), 0, 0)
            .unwrap();
        fill(&log, 20, 5_000);

        // The tombstone is recent: it stays and hides the older value of "z".
        let mut c = compacted();
        c.delete_retention_ms = 10_000;
        log.update_config(c.clone());
        clean(&log, 6_000).unwrap().unwrap();
        let after = contents(&log);
        let z: Vec<_> = after.iter().filter(|r| r.1 == "z").collect();
        assert_eq!(z, vec![&(81, "z".to_string(), None)]);

        // Later it is past delete.retention.ms and goes away.
        fill(&log, 20, 6_000);
        c.min_cleanable_dirty_ratio = 0.0;
        log.update_config(c);
        clean(&log, 20_000).unwrap().unwrap();
        assert!(!contents(&log).iter().any(|r| r.1 == "z"));
    }

    #[test]
    fn min_ratio_and_lag_hold_cleaning_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = compacted();
        c.min_compaction_lag_ms = 1_000;
        let log = open(dir.path(), c);
        fill(&log, 40, 10);
        assert!(
            clean(&log, 500).unwrap().is_none(),
            "records younger than the lag"
        );
        let mut c = compacted();
        c.min_cleanable_dirty_ratio = 1.0;
        log.update_config(c.clone());
        fill(&log, 1, 10);
        assert!(
            clean(&log, 5_000).unwrap().is_some(),
            "all dirty: ratio 1.0 is met"
        );
        fill(&log, 40, 10);
        assert!(
            clean(&log, 5_000).unwrap().is_none(),
            "the cleaned part lowers the ratio"
        );
        c.cleanup_policy.compact = false;
        log.update_config(c);
        assert!(clean(&log, 5_000).unwrap().is_none());
    }

    #[test]
    fn appends_continue_while_cleaning_runs() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(open(dir.path(), compacted()));
        fill(&log, 60, 10);
        let writer = {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    log.append(
                        encode(
                            &[rec("w", &i.to_string(), 10)],
                            (-1, -1, -1),
                            Compression::None,
                        ),
                        0,
                        0,
                    )
                    .unwrap();
                }
            })
        };
        for _ in 0..5 {
            clean(&log, 20).unwrap();
        }
        writer.join().unwrap();
        assert_eq!(log.log_end_offset(), 440);
        let after = contents(&log);
        assert_eq!(latest_per_key(&after)["w"], (439, Some("199".to_string())));
        assert_eq!(latest_per_key(&after)["a"].0, 236);
    }

    #[test]
    fn recovery_completes_a_swap_and_discards_a_half_written_copy() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), compacted());
        fill(&log, 40, 10);
        let first = log.segments_snapshot()[0].clone();
        let original = fs::read(dir.path().join(file_name(0, "log"))).unwrap();
        drop(log);

        // A `.swap` holding only the first batch replaces the segment.
        let batch_len = BatchHeader::parse(&original).unwrap().total_len();
        fs::write(
            dir.path().join(format!("{}.swap", file_name(0, "log"))),
            &original[..batch_len],
        )
        .unwrap();
        fs::write(
            dir.path()
                .join(format!("{}.cleaned", file_name(first.next_offset(), "log"))),
            b"junk",
        )
        .unwrap();
        let log = open(dir.path(), compacted());
        assert_eq!(log.segments_snapshot()[0].size(), batch_len as u64);
        assert_eq!(log.segments_snapshot()[0].next_offset(), 4);
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names
                .iter()
                .any(|n| n.ends_with(".swap") || n.ends_with(".cleaned")),
            "{names:?}"
        );
        // The gap left in offsets is skipped by reads.
        let data = log.read(4, 100, i64::MAX, true).unwrap();
        assert_eq!(
            BatchHeader::parse(&data).unwrap().base_offset,
            first.next_offset()
        );
    }

    #[test]
    fn log_append_time_and_producer_fields_survive_reencoding() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = compacted();
        c.timestamp_log_append = true;
        let log = open(dir.path(), c);
        for seq in 0..30 {
            let recs = [rec("a", "1", 0), rec("b", "2", 0)];
            log.append(encode(&recs, (3, 1, seq * 2), Compression::Lz4), 7, 50)
                .unwrap();
        }
        clean(&log, 60).unwrap().unwrap();
        let mut data = log.read(0, 1 << 20, i64::MAX, true).unwrap();
        let header = batch::validate(&data, usize::MAX, false).unwrap();
        assert!(header.is_log_append_time());
        assert_eq!(header.max_timestamp, 50);
        assert_eq!(
            (
                header.producer_id,
                header.producer_epoch,
                header.partition_leader_epoch
            ),
            (3, 1, 7)
        );
        assert_eq!(
            RecordBatchDecoder::decode(&mut data).unwrap().compression,
            Compression::Lz4
        );
    }

    #[test]
    fn tombstone_age_uses_log_append_time_when_the_topic_stamps_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = compacted();
        c.timestamp_log_append = true;
        let log = open(dir.path(), c);
        log.append(
            encode(&[rec("z", "v", 0)], (-1, -1, -1), Compression::None),
            0,
            1_500,
        )
        .unwrap();
        let tomb = Rec {
            key: Some("z"),
            value: None,
            timestamp: 0, // the producer's clock says "ancient"
        };
        log.append(encode(&[tomb], (-1, -1, -1), Compression::None), 0, 1_500)
            .unwrap();
        fill(&log, 30, 0);
        // Appended at 1500 with delete.retention.ms=1000: still due at 2000.
        clean(&log, 2_000).unwrap().unwrap();
        let z: Vec<_> = contents(&log).into_iter().filter(|r| r.1 == "z").collect();
        assert_eq!(z, vec![(1, "z".to_string(), None)]);
    }
}
