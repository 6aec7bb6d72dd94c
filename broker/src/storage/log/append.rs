//! Appending produce-request batches: validate, check idempotence, assign
//! offsets in patched header copies, roll if needed, write.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;

use super::{index_config, AppendInfo, Appender, PartitionLog};
use crate::storage::batch::{self, BatchError, BatchHeader, PatchableBatch};
use crate::storage::producer_state::{PendingUpdates, SequenceCheck};
use crate::storage::{LogConfig, StorageError};

/// A segment's relative offsets are u32 but Kafka keeps them below i32::MAX.
const MAX_RELATIVE_OFFSET: i64 = i32::MAX as i64;

impl PartitionLog {
    /// Validates every batch, checks idempotence, assigns offsets from the log
    /// end and writes. Nothing is written if any batch is invalid.
    pub fn append(
        &self,
        records: Bytes,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StorageError::LogClosed);
        }
        let config = self.config();
        let mut batches = validate_request(&records, &config)?;
        let mut records = records;
        if let Some(target) = config.compression {
            if let Some(recompressed) =
                crate::storage::recompress::to_codec(&records, &batches, target)?
            {
                batches = validate_request(&recompressed, &config)?;
                records = recompressed;
            }
        }

        let mut appender = self.appender.lock();
        let producers = &appender.producers;
        let mut pending = PendingUpdates::default();
        let mut next = self.log_end_offset();
        let mut assigned: Vec<PatchableBatch<'_>> = Vec::with_capacity(batches.len());
        let mut duplicates = Vec::new();
        for (at, header) in &batches {
            if header.producer_id >= 0 {
                if let SequenceCheck::Duplicate(original) = producers.check(&pending, header)? {
                    duplicates.push(original);
                    continue;
                }
            }
            let raw = &records[*at..*at + header.total_len()];
            let mut patch = PatchableBatch::new(raw)
                .ok_or_else(|| StorageError::CorruptMessage("short batch".into()))?;
            patch.set_base_offset(next);
            patch.set_leader_epoch(leader_epoch);
            if config.timestamp_log_append {
                patch.set_log_append_time(now_ms);
            }
            let header = patch.header();
            if header.producer_id >= 0 {
                producers.stage(&mut pending, &header);
            }
            next = header.next_offset();
            assigned.push(patch);
        }
        if let Some(first) = duplicates.first() {
            if !assigned.is_empty() {
                return Err(StorageError::OutOfOrderSequence(
                    "request mixes duplicate and new batches".into(),
                ));
            }
            let last = duplicates.last().unwrap_or(first);
            return Ok(AppendInfo {
                base_offset: first.first_offset,
                last_offset: last.last_offset,
                log_append_time: -1,
                log_start_offset: self.log_start_offset(),
                duplicate: true,
            });
        }

        let first_offset = self.log_end_offset();
        self.write_at_end(&appender, &assigned, &config, now_ms)?;
        appender.producers.commit(pending);
        self.publish_end(next, &assigned)?;
        drop(appender);
        self.count_unflushed(&assigned, &config)?;
        Ok(AppendInfo {
            base_offset: first_offset,
            last_offset: next - 1,
            log_append_time: if config.timestamp_log_append {
                now_ms
            } else {
                -1
            },
            log_start_offset: self.log_start_offset(),
            duplicate: false,
        })
    }

    /// Writes batches whose offsets are final, the first at or past the log
    /// end, rolling first when the active segment is full, too old, has a
    /// full index or cannot index the batches' offsets. A failed write closes
    /// the log. Caller holds the appender lock.
    pub(super) fn write_at_end(
        &self,
        appender: &Appender,
        batches: &[PatchableBatch<'_>],
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        let (Some(first), Some(last)) = (batches.first(), batches.last()) else {
            return Ok(());
        };
        let (first, last) = (first.header().base_offset, last.header().last_offset());
        if last - first > MAX_RELATIVE_OFFSET {
            return Err(StorageError::InvalidRecord(format!(
                "batches span offsets {first} to {last}, more than one segment can index"
            )));
        }
        let bytes: u64 = batches
            .iter()
            .map(|b| (b.head.len() + b.body.len()) as u64)
            .sum();
        let active = self.active_segment();
        let full = active.size() + bytes > config.segment_bytes;
        let old = now_ms - active.created_ms() >= config.segment_ms;
        let overflow = last - active.base_offset() > MAX_RELATIVE_OFFSET;
        let roll = overflow || active.size() > 0 && (full || old || active.index_full());
        let written = if roll {
            self.roll_at(appender, first, now_ms)
        } else {
            Ok(())
        }
        .and_then(|()| {
            Ok(self
                .active_segment()
                .append(batches, index_config(config))?)
        });
        if let Err(e) = written {
            // A half-done write leaves the segment's tail unknown: like Kafka
            // taking the log dir offline, refuse appends until a restart recovers it.
            tracing::error!(tp = %self.tp, error = %e, "append failed, closing log");
            self.mark_closed();
            return Err(e);
        }
        Ok(())
    }

    /// Counts the appended records towards `flush.messages` and flushes when due.
    pub(super) fn count_unflushed(
        &self,
        batches: &[PatchableBatch<'_>],
        config: &LogConfig,
    ) -> Result<(), StorageError> {
        let records: u64 = batches
            .iter()
            .map(|b| b.header().records_count.max(0) as u64)
            .sum();
        let unflushed = self.unflushed_messages.fetch_add(records, Ordering::AcqRel) + records;
        if config
            .flush_messages
            .is_some_and(|limit| unflushed >= limit)
        {
            self.flush()?;
        }
        Ok(())
    }
}

/// Validates every batch (length, magic, CRC32C, record count) and maps
/// failures to the error a producer or fetcher is answered with.
pub(super) fn checked_batches(
    records: &[u8],
    max_batch_bytes: usize,
    strict: bool,
) -> Result<Vec<(usize, BatchHeader)>, StorageError> {
    batch::validate_all(records, max_batch_bytes, strict).map_err(|e| match e {
        BatchError::Truncated => StorageError::CorruptMessage("truncated record batch".into()),
        BatchError::TooLarge(size) => StorageError::MessageTooLarge(format!(
            "batch of {size} bytes exceeds max.message.bytes {max_batch_bytes}"
        )),
        BatchError::Corrupt(reason) => StorageError::CorruptMessage(reason),
    })
}

/// Checks the request's batches without touching the log.
fn validate_request(
    records: &Bytes,
    config: &LogConfig,
) -> Result<Vec<(usize, BatchHeader)>, StorageError> {
    if records.is_empty() {
        return Err(StorageError::InvalidRecord(
            "produce request without record batches".into(),
        ));
    }
    let batches = checked_batches(records, config.max_message_bytes as usize, true)?;
    for (at, h) in &batches {
        if h.is_transactional() || h.is_control() {
            return Err(StorageError::InvalidRecord(
                "transactional batches are not supported".into(),
            ));
        }
        if h.producer_id >= 0 && (h.producer_epoch < 0 || h.base_sequence < 0) {
            return Err(StorageError::InvalidRecord(format!(
                "idempotent batch of producer {} lacks epoch or sequence",
                h.producer_id
            )));
        }
        if config.cleanup_policy.compact {
            check_keys(records.slice(*at..*at + h.total_len()))?;
        }
    }
    Ok(batches)
}

/// Compacted topics need a key on every record, so those batches are decoded.
fn check_keys(mut raw: Bytes) -> Result<(), StorageError> {
    let set = RecordBatchDecoder::decode(&mut raw)
        .map_err(|e| StorageError::CorruptMessage(format!("cannot decode batch: {e}")))?;
    if set.records.iter().any(|r| r.key.is_none()) {
        return Err(StorageError::InvalidRecord(
            "compacted topic requires a key on every record".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::storage::batch::testutil::{encode, rec, simple, Rec};
    use crate::storage::batch::{validate_all, PatchableBatch};
    use crate::storage::StorageError;
    use bytes::Bytes;
    use kafka_protocol::records::Compression;

    #[test]
    fn append_read_round_trip_across_segment_rolls() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config());
        let mut expected = Vec::new();
        for i in 0..40 {
            let info = log.append(simple(3, i), 5, 1_000).unwrap();
            assert_eq!(info.base_offset, i * 3);
            assert_eq!(info.last_offset, i * 3 + 2);
            assert_eq!(info.log_append_time, -1);
            expected.push(info.base_offset);
        }
        assert!(log.segment_count() > 3, "segment.bytes=1024 must roll");
        assert_eq!(log.log_end_offset(), 120);

        let mut offset = 0;
        let mut seen = Vec::new();
        while offset < log.log_end_offset() {
            let data = log.read(offset, 300, i64::MAX, true).unwrap();
            let batches = validate_all(&data, usize::MAX, true).unwrap();
            assert!(!batches.is_empty());
            for (_, h) in &batches {
                assert_eq!(h.partition_leader_epoch, 5);
                seen.push(h.base_offset);
            }
            offset = batches.last().unwrap().1.next_offset();
        }
        assert_eq!(seen, expected);
        // Reading from the middle of a batch starts with that batch.
        let data = log.read(61, 1, i64::MAX, true).unwrap();
        assert_eq!(
            validate_all(&data, usize::MAX, true).unwrap()[0]
                .1
                .base_offset,
            60
        );
    }

    #[test]
    fn invalid_batches_are_rejected_and_the_log_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config();
        c.max_message_bytes = 200;
        let log = open(dir.path(), c);
        log.append(simple(1, 0), 0, 0).unwrap();
        let size = log.size_bytes();

        let good = simple(2, 0);
        let mut crc = good.to_vec();
        *crc.last_mut().unwrap() ^= 1;
        let mut magic = good.to_vec();
        magic[16] = 1;
        let mut two = good.to_vec();
        two.extend_from_slice(&crc);
        let cases: Vec<(Vec<u8>, i16)> = vec![
            (crc, 2),
            (magic, 2),
            (good[..good.len() - 3].to_vec(), 2),
            (simple(30, 0).to_vec(), 10),
            (two, 2),
            (Vec::new(), 87),
        ];
        for (bytes, code) in cases {
            let err = log.append(Bytes::from(bytes), 0, 0).unwrap_err();
            assert_eq!(err.kafka_error_code(), code, "{err}");
        }
        assert_eq!(log.log_end_offset(), 1);
        assert_eq!(log.size_bytes(), size);
    }

    #[test]
    fn log_append_time_is_stamped() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config();
        c.timestamp_log_append = true;
        let log = open(dir.path(), c);
        let info = log.append(simple(2, 5), 0, 77_777).unwrap();
        assert_eq!(info.log_append_time, 77_777);
        let data = log.read(0, 1 << 20, i64::MAX, true).unwrap();
        let (_, h) = validate_all(&data, usize::MAX, true).unwrap()[0];
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 77_777);
    }

    #[test]
    fn idempotent_appends_answer_duplicates_with_the_original_offset() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config());
        let batch = |epoch, seq| {
            encode(
                &[rec("k", "a", 0), rec("k", "b", 0)],
                (9, epoch, seq),
                Compression::None,
            )
        };
        log.append(simple(1, 0), 0, 0).unwrap();
        let first = log.append(batch(0, 0), 0, 0).unwrap();
        assert_eq!((first.base_offset, first.duplicate), (1, false));
        let dup = log.append(batch(0, 0), 0, 0).unwrap();
        assert_eq!(
            (dup.base_offset, dup.last_offset, dup.duplicate),
            (1, 2, true)
        );
        assert_eq!(log.log_end_offset(), 3);

        let gap = log.append(batch(0, 5), 0, 0).unwrap_err();
        assert!(matches!(gap, StorageError::OutOfOrderSequence(_)));
        assert_eq!(log.append(batch(1, 0), 0, 0).unwrap().base_offset, 3);
        let fenced = log.append(batch(0, 2), 0, 0).unwrap_err();
        assert!(matches!(fenced, StorageError::InvalidProducerEpoch(_)));
        assert_eq!(log.log_end_offset(), 5);
    }

    #[test]
    fn transactional_batches_and_keyless_records_in_compacted_topics_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config();
        c.cleanup_policy.compact = true;
        let log = open(dir.path(), c);
        let keyless = Rec {
            key: None,
            value: Some("v".into()),
            timestamp: 0,
        };
        let err = log
            .append(encode(&[keyless], (-1, -1, -1), Compression::None), 0, 0)
            .unwrap_err();
        assert_eq!(err.kafka_error_code(), 87);

        let raw = simple(1, 0);
        let mut txn = PatchableBatch::new(&raw).unwrap();
        txn.head[22] |= 1 << 4; // low byte of attributes
        txn.set_base_sequence(-1); // recomputes the CRC
        let fixed = txn.to_vec();
        let err = log.append(Bytes::from(fixed), 0, 0).unwrap_err();
        assert_eq!(err.kafka_error_code(), 87);
        assert_eq!(log.log_end_offset(), 0);
    }

    #[test]
    fn flush_messages_triggers_a_flush() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config();
        c.flush_messages = Some(4);
        let log = open(dir.path(), c);
        log.append(simple(3, 0), 0, 0).unwrap();
        assert_eq!(log.recovery_point(), 0);
        log.append(simple(1, 0), 0, 0).unwrap();
        assert_eq!(log.recovery_point(), 4);
    }

    #[test]
    fn rolls_on_segment_ms_and_on_a_full_index() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config();
        c.segment_bytes = 1 << 20;
        c.segment_ms = 1_000;
        let log = open(dir.path(), c.clone());
        log.append(simple(1, 0), 0, 10).unwrap();
        log.append(simple(1, 0), 0, 999).unwrap();
        assert_eq!(log.segment_count(), 1);
        log.append(simple(1, 0), 0, 1_000).unwrap();
        assert_eq!(log.segment_count(), 2);
        assert_eq!(log.segments_snapshot()[1].base_offset(), 2);

        let dir = tempfile::tempdir().unwrap();
        c.segment_ms = i64::MAX;
        c.index_interval_bytes = 0;
        c.segment_index_bytes = 24; // room for two time index entries
        let log = open(dir.path(), c);
        for ts in 0..3 {
            log.append(simple(1, ts), 0, 0).unwrap();
        }
        assert_eq!(log.segment_count(), 1);
        log.append(simple(1, 3), 0, 0).unwrap();
        assert_eq!(log.segment_count(), 2);
        assert_eq!(log.segments_snapshot()[1].base_offset(), 3);
    }

    #[test]
    fn readers_see_only_whole_batches_while_appends_run() {
        let dir = tempfile::tempdir().unwrap();
        let log = std::sync::Arc::new(open(dir.path(), config()));
        let writer = {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..300 {
                    log.append(simple(2, i), 0, 0).unwrap();
                }
            })
        };
        let mut offset = 0;
        while offset < 600 {
            let data = log.read(offset, 500, i64::MAX, true).unwrap();
            for (_, h) in validate_all(&data, usize::MAX, true).unwrap() {
                assert_eq!(h.base_offset, offset, "batches are contiguous");
                offset = h.next_offset();
            }
        }
        writer.join().unwrap();
        assert_eq!(log.log_end_offset(), 600);
    }

    #[test]
    fn a_failed_write_closes_the_log() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("t-0");
        let log = open(&dir, config());
        while log.segment_count() == 1 && log.active_segment().size() < 900 {
            log.append(simple(5, 0), 0, 0).unwrap();
        }
        // The next append must roll, and rolling cannot create files any more.
        std::fs::remove_dir_all(&dir).unwrap();
        let err = log.append(simple(5, 0), 0, 0).unwrap_err();
        assert_eq!(err.kafka_error_code(), 56);
        assert_eq!(
            log.append(simple(1, 0), 0, 0)
                .unwrap_err()
                .kafka_error_code(),
            6
        );
    }
}
