//! Appending batches replicated from the leader: offsets and leader epochs
//! are already assigned, so the bytes are written exactly as received.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::append::checked_batches;
use super::{now_ms, AppendInfo, PartitionLog};
use crate::storage::batch::PatchableBatch;
use crate::storage::StorageError;

impl PartitionLog {
    /// Appends the leader's batches as they are (Kafka's `appendAsFollower`).
    ///
    /// Each batch must be a valid v2 batch (CRC32C, length, record count) and
    /// start past the previous one; the first must not start below the log
    /// end, or [`StorageError::UnexpectedAppendOffset`] tells the fetcher to
    /// truncate. Gaps are accepted: the leader's cleaner removes whole batches.
    /// Sizes are not held to `max.message.bytes` (the leader accepted them and
    /// configs may differ), nor are producer sequences checked: producer state
    /// records what the leader wrote. An empty record set appends nothing.
    pub fn append_as_follower(&self, records: Bytes) -> Result<AppendInfo, StorageError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StorageError::LogClosed);
        }
        let config = self.config();
        // Compacted batches hold fewer records than their offset range, so the
        // count check is the lenient one.
        let batches = checked_batches(&records, usize::MAX, false)?;
        if batches.iter().any(|(_, h)| h.is_transactional()) {
            return Err(StorageError::InvalidRecord(
                "transactional batches are not supported".into(),
            ));
        }
        let mut appender = self.appender.lock();
        let mut next = self.log_end_offset();
        let first_offset = batches.first().map_or(next, |(_, h)| h.base_offset);
        let mut replicated = Vec::with_capacity(batches.len());
        for (at, header) in &batches {
            if header.base_offset < next {
                return Err(StorageError::UnexpectedAppendOffset {
                    offset: header.base_offset,
                    expected: next,
                });
            }
            next = header
                .base_offset
                .checked_add(i64::from(header.last_offset_delta) + 1)
                .ok_or_else(|| {
                    StorageError::CorruptMessage(format!(
                        "batch offsets overflow from {}",
                        header.base_offset
                    ))
                })?;
            let raw = &records[*at..*at + header.total_len()];
            replicated.push(
                PatchableBatch::new(raw)
                    .ok_or_else(|| StorageError::CorruptMessage("short batch".into()))?,
            );
        }

        self.write_at_end(&appender, &replicated, &config, now_ms())?;
        for batch in &replicated {
            appender.producers.replay(&batch.header());
        }
        self.publish_end(next, &replicated)?;
        drop(appender);
        self.count_unflushed(&replicated, &config)?;
        Ok(AppendInfo {
            base_offset: first_offset,
            last_offset: next - 1,
            log_append_time: -1,
            log_start_offset: self.log_start_offset(),
            duplicate: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kafka_protocol::records::Compression;

    use super::super::testutil::*;
    use crate::storage::batch::testutil::{encode, rec, simple};
    use crate::storage::batch::{validate_all, PatchableBatch};
    use crate::storage::StorageError;

    /// A batch of `n` records as a leader wrote it: at `base`, stamped with `epoch`.
    fn replicated(base: i64, epoch: i32, n: usize) -> Vec<u8> {
        leader_stamped(&simple(n, base), base, epoch)
    }

    fn leader_stamped(raw: &[u8], base: i64, epoch: i32) -> Vec<u8> {
        let mut batch = PatchableBatch::new(raw).unwrap();
        batch.set_base_offset(base);
        batch.set_leader_epoch(epoch);
        batch.to_vec()
    }

    fn all_bytes(log: &crate::storage::PartitionLog) -> Vec<u8> {
        let mut out = Vec::new();
        let mut offset = log.log_start_offset();
        while offset < log.log_end_offset() {
            let data = log.read(offset, 1 << 20, i64::MAX, true).unwrap();
            let batches = validate_all(&data, usize::MAX, false).unwrap();
            offset = batches.last().unwrap().1.next_offset();
            out.extend_from_slice(&data);
        }
        out
    }

    #[test]
    fn replicated_bytes_are_kept_exactly_across_segment_rolls() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config());
        let mut sent = Vec::new();
        let mut base = 0;
        for epoch in 0..4 {
            let mut request = Vec::new();
            for _ in 0..5 {
                request.extend(replicated(base, epoch, 3));
                base += 3;
            }
            let info = log
                .append_as_follower(Bytes::from(request.clone()))
                .unwrap();
            assert_eq!((info.base_offset, info.last_offset), (base - 15, base - 1));
            assert_eq!(info.log_append_time, -1);
            sent.extend(request);
        }
        assert!(log.segment_count() > 1, "segment.bytes=1024 must roll");
        assert_eq!(log.log_end_offset(), 60);
        assert_eq!(all_bytes(&log), sent);
        assert_eq!(log.latest_epoch(), Some(3));
        assert_eq!(log.end_offset_for_epoch(1), (1, 30));
        assert_eq!(log.end_offset_for_epoch(3), (3, 60));
        // The indexes were built: an offset in the middle is found.
        let data = log.read(31, 1, i64::MAX, true).unwrap();
        let first = validate_all(&data, usize::MAX, false).unwrap()[0].1;
        assert_eq!(first.base_offset, 30);

        // Everything survives a reopen with recovery of every segment.
        drop(log);
        let log = open(dir.path(), config());
        assert_eq!(all_bytes(&log), sent);
        assert_eq!(log.end_offset_for_epoch(2), (2, 45));
    }

    #[test]
    fn overlaps_are_rejected_and_gaps_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config());
        log.append_as_follower(Bytes::from(replicated(0, 1, 5)))
            .unwrap();
        let size = log.size_bytes();
        let overlapping = [
            replicated(4, 1, 2),
            [replicated(5, 1, 2), replicated(6, 1, 2)].concat(),
        ];
        for records in overlapping {
            let err = log.append_as_follower(Bytes::from(records)).unwrap_err();
            assert!(
                matches!(err, StorageError::UnexpectedAppendOffset { .. }),
                "{err}"
            );
            assert_eq!(err.kafka_error_code(), 1);
        }
        assert_eq!((log.log_end_offset(), log.size_bytes()), (5, size));

        // The leader's cleaner removed offsets 5..9 and 12..14 in whole batches.
        let gaps = [replicated(10, 1, 2), replicated(15, 2, 1)].concat();
        let info = log.append_as_follower(Bytes::from(gaps)).unwrap();
        assert_eq!((info.base_offset, info.last_offset), (10, 15));
        assert_eq!(log.log_end_offset(), 16);
        assert_eq!(log.end_offset_for_epoch(1), (1, 15));
        let data = log.read(5, 1 << 20, i64::MAX, true).unwrap();
        assert_eq!(
            validate_all(&data, usize::MAX, false).unwrap()[0]
                .1
                .base_offset,
            10
        );

        // Nothing fetched: nothing appended.
        let info = log.append_as_follower(Bytes::new()).unwrap();
        assert_eq!((info.base_offset, info.last_offset), (16, 15));
    }

    #[test]
    fn invalid_batches_are_rejected_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config();
        c.max_message_bytes = 100;
        let log = open(dir.path(), c);
        // Larger than max.message.bytes: the leader accepted it, so does the follower.
        let big = replicated(0, 0, 30);
        assert!(big.len() > 100);
        log.append_as_follower(Bytes::from(big)).unwrap();

        let good = replicated(30, 0, 2);
        let mut crc = good.clone();
        *crc.last_mut().unwrap() ^= 1;
        let mut magic = good.clone();
        magic[16] = 1;
        let torn = good[..good.len() - 1].to_vec();
        let mut txn = PatchableBatch::new(&good).unwrap();
        txn.head[22] |= 1 << 4; // transactional bit, low byte of attributes
        txn.set_base_sequence(-1); // recomputes the CRC
        for (records, code) in [
            ([good.clone(), crc].concat(), 2),
            (magic, 2),
            ([good.clone(), torn].concat(), 2),
            (txn.to_vec(), 87),
        ] {
            let err = log.append_as_follower(Bytes::from(records)).unwrap_err();
            assert_eq!(err.kafka_error_code(), code, "{err}");
            assert_eq!(log.log_end_offset(), 30);
        }
    }

    #[test]
    fn producer_state_follows_the_leader_without_checks() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config());
        let idempotent = |base, epoch, seq| {
            let raw = encode(
                &[rec("k", "v", 0), rec("k", "w", 0)],
                (7, epoch, seq),
                Compression::None,
            );
            Bytes::from(leader_stamped(&raw, base, 0))
        };
        log.append_as_follower(idempotent(0, 1, 0)).unwrap();
        // A sequence gap and an older producer epoch: the leader accepted
        // them (its state may differ after a fail-over), the follower records them.
        log.append_as_follower(idempotent(2, 1, 10)).unwrap();
        log.append_as_follower(idempotent(4, 0, 0)).unwrap();
        log.append_as_follower(idempotent(6, 1, 2)).unwrap();
        assert_eq!(log.log_end_offset(), 8);
        // As leader, this log now detects the replicated batch as a duplicate.
        let dup = log
            .append(
                encode(
                    &[rec("k", "v", 0), rec("k", "w", 0)],
                    (7, 1, 2),
                    Compression::None,
                ),
                0,
                0,
            )
            .unwrap();
        assert!(dup.duplicate);
        assert_eq!(dup.base_offset, 6);
    }

    #[test]
    fn control_batches_of_the_raft_log_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config());
        let raw = simple(1, 0);
        let mut control = PatchableBatch::new(&raw).unwrap();
        control.head[22] |= 1 << 5; // control bit, low byte of attributes
        control.set_base_sequence(-1); // recomputes the CRC
        let control = leader_stamped(&control.to_vec(), 0, 4);
        log.append_as_follower(Bytes::from(control.clone()))
            .unwrap();
        assert_eq!(all_bytes(&log), control);
        assert_eq!(log.latest_epoch(), Some(4));
    }

    #[test]
    fn truncation_then_append_of_a_new_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config());
        for (base, epoch) in [(0, 1), (5, 1), (10, 2), (15, 2)] {
            log.append_as_follower(Bytes::from(replicated(base, epoch, 5)))
                .unwrap();
        }
        assert_eq!(log.end_offset_for_epoch(1), (1, 10));
        // The new leader's history diverged at 15, in its epoch 3.
        log.truncate_to(15).unwrap();
        assert_eq!(log.end_offset_for_epoch(2), (2, 15));
        log.append_as_follower(Bytes::from(replicated(15, 3, 2)))
            .unwrap();
        assert_eq!(log.latest_epoch(), Some(3));
        assert_eq!(log.end_offset_for_epoch(2), (2, 15));
        assert_eq!(log.end_offset_for_epoch(3), (3, 17));
        // Truncating into epoch 1 forgets epochs 2 and 3.
        log.truncate_to(7).unwrap();
        assert_eq!(log.log_end_offset(), 5);
        assert_eq!(log.latest_epoch(), Some(1));
        assert_eq!(log.end_offset_for_epoch(3), (-1, -1));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("leader-epoch-checkpoint")).unwrap(),
            "0\n1\n1 0\n"
        );
    }

    #[test]
    fn a_gap_too_wide_for_the_active_segment_rolls_there() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config());
        log.append_as_follower(Bytes::from(replicated(0, 0, 2)))
            .unwrap();
        let far = i64::from(i32::MAX) + 10;
        log.append_as_follower(Bytes::from(replicated(far, 0, 2)))
            .unwrap();
        assert_eq!(log.segment_count(), 2);
        assert_eq!(log.segments_snapshot()[1].base_offset(), far);
        let data = log.read(2, 1 << 20, i64::MAX, true).unwrap();
        assert_eq!(
            validate_all(&data, usize::MAX, false).unwrap()[0]
                .1
                .base_offset,
            far
        );

        // One request cannot span more offsets than a segment can index.
        let wide = [replicated(far + 2, 0, 1), replicated(far + 3 + far, 0, 1)].concat();
        let err = log.append_as_follower(Bytes::from(wide)).unwrap_err();
        assert_eq!(err.kafka_error_code(), 87, "{err}");
        assert_eq!(log.log_end_offset(), far + 2);
    }
}
