//! Reads: fetch by offset, ListOffsets by timestamp and max timestamp.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;

use super::PartitionLog;
use crate::storage::batch::{BatchHeader, HEADER_LEN, LOG_OVERHEAD};
use crate::storage::segment::Segment;
use crate::storage::StorageError;

impl PartitionLog {
    /// Whole batches from one segment, starting with the batch holding `offset`,
    /// at most `max_bytes` (at least one batch when `min_one_batch`), none at or
    /// past `upper_bound`.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        upper_bound: i64,
        min_one_batch: bool,
    ) -> Result<Bytes, StorageError> {
        let log_end = self.log_end_offset();
        let log_start = self.log_start_offset();
        if offset < log_start || offset > log_end {
            return Err(StorageError::OffsetOutOfRange {
                requested: offset,
                log_start,
                log_end,
            });
        }
        let limit = upper_bound.min(log_end);
        let mut from = offset;
        while from < limit {
            let Some(segment) = self.segment_for(from) else {
                break;
            };
            let Some((position, first)) = segment.find_batch(from)? else {
                // Offset lies past this segment's batches (compacted away): try the next one.
                match self.segment_after(segment.base_offset()) {
                    Some(next) => from = next.base_offset(),
                    None => break,
                }
                continue;
            };
            if first.base_offset >= limit {
                break;
            }
            let mut want = max_bytes;
            if min_one_batch {
                want = want.max(first.total_len());
            }
            let data = segment.read_at(position, want)?;
            return Ok(data.slice(..whole_batches_below(&data, limit)));
        }
        Ok(Bytes::new())
    }

    /// Offset and timestamp of the first record with timestamp >= `ts`.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, StorageError> {
        let log_start = self.log_start_offset();
        for segment in self.segments_snapshot() {
            if segment.max_timestamp() < ts || segment.next_offset() <= log_start {
                continue;
            }
            let mut found = None;
            segment.for_each_header(segment.time_position(ts), |pos, h| {
                if h.max_timestamp >= ts && h.last_offset() >= log_start {
                    found = Some((pos, *h));
                    return false;
                }
                true
            })?;
            if let Some((pos, header)) = found {
                let hit = first_record_at_or_after(&segment, pos, &header, |t| t >= ts, log_start)?;
                if hit.is_some() {
                    return Ok(hit);
                }
            }
        }
        Ok(None)
    }

    /// Offset and timestamp of the record with the largest timestamp.
    pub fn max_timestamp(&self) -> Result<Option<(i64, i64)>, StorageError> {
        let log_start = self.log_start_offset();
        let best = self
            .segments_snapshot()
            .into_iter()
            .filter(|s| s.max_timestamp() >= 0 && s.next_offset() > log_start)
            .fold(None::<Arc<Segment>>, |best, s| match best {
                Some(b) if b.max_timestamp() >= s.max_timestamp() => Some(b),
                _ => Some(s),
            });
        let Some(segment) = best else {
            return Ok(None);
        };
        let max = segment.max_timestamp();
        let Some((pos, header)) = segment.find_batch(segment.offset_of_max_timestamp())? else {
            return Ok(None);
        };
        first_record_at_or_after(&segment, pos, &header, |t| t == max, log_start)
    }

    fn segment_for(&self, offset: i64) -> Option<Arc<Segment>> {
        let segments = self.segments.read();
        segments
            .range(..=offset)
            .next_back()
            .or_else(|| segments.range(offset..).next())
            .map(|(_, s)| s.clone())
    }

    fn segment_after(&self, base: i64) -> Option<Arc<Segment>> {
        self.segments
            .read()
            .range(base + 1..)
            .next()
            .map(|(_, s)| s.clone())
    }
}

/// Length of the prefix of `data` made of whole batches starting below `limit`.
fn whole_batches_below(data: &[u8], limit: i64) -> usize {
    let mut cut = 0;
    while let Some(h) = BatchHeader::parse(&data[cut..]) {
        if h.base_offset >= limit
            || h.batch_length < (HEADER_LEN - LOG_OVERHEAD) as i32
            || cut + h.total_len() > data.len()
        {
            break;
        }
        cut += h.total_len();
    }
    cut
}

/// Decodes the one batch at `pos` and returns its first record matching
/// `wanted(timestamp)` at or above `log_start`.
fn first_record_at_or_after(
    segment: &Segment,
    pos: u64,
    header: &BatchHeader,
    wanted: impl Fn(i64) -> bool,
    log_start: i64,
) -> Result<Option<(i64, i64)>, StorageError> {
    if header.is_log_append_time() {
        // Every record of the batch carries the batch's append time.
        let offset = header.base_offset.max(log_start);
        return Ok(wanted(header.max_timestamp).then_some((offset, header.max_timestamp)));
    }
    let mut raw = segment.read_at(pos, header.total_len())?;
    let set = RecordBatchDecoder::decode(&mut raw)
        .map_err(|e| StorageError::CorruptMessage(format!("cannot decode batch at {pos}: {e}")))?;
    Ok(set
        .records
        .iter()
        .find(|r| r.offset >= log_start && wanted(r.timestamp))
        .map(|r| (r.offset, r.timestamp)))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::storage::batch::testutil::{encode, rec, simple};
    use crate::storage::batch::validate_all;
    use crate::storage::StorageError;
    use kafka_protocol::records::Compression;

    #[test]
    fn read_bounds_and_limits() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config());
        for i in 0..4 {
            log.append(simple(2, i), 0, 0).unwrap();
        }
        assert!(log.read(8, 100, i64::MAX, true).unwrap().is_empty());
        assert!(matches!(
            log.read(9, 100, i64::MAX, true),
            Err(StorageError::OffsetOutOfRange {
                requested: 9,
                log_start: 0,
                log_end: 8
            })
        ));
        // The high watermark excludes batches at or past it.
        let data = log.read(0, 1 << 20, 4, true).unwrap();
        let batches = validate_all(&data, usize::MAX, true).unwrap();
        assert_eq!(batches.last().unwrap().1.next_offset(), 4);
        assert!(log.read(4, 1 << 20, 4, true).unwrap().is_empty());
        // Too small a limit: nothing, unless one batch is required.
        assert!(log.read(0, 10, i64::MAX, false).unwrap().is_empty());
        let one = log.read(0, 10, i64::MAX, true).unwrap();
        assert_eq!(validate_all(&one, usize::MAX, true).unwrap().len(), 1);
    }

    #[test]
    fn offsets_by_timestamp_decode_only_the_matching_batch() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config());
        for i in 0..30i64 {
            let recs = [rec("a", "x", i * 10), rec("b", "y", i * 10 + 5)];
            log.append(encode(&recs, (-1, -1, -1), Compression::Gzip), 0, 0)
                .unwrap();
        }
        assert!(log.segment_count() > 1);
        assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 0)));
        assert_eq!(log.offset_for_timestamp(101).unwrap(), Some((21, 105)));
        assert_eq!(log.offset_for_timestamp(106).unwrap(), Some((22, 110)));
        assert_eq!(log.offset_for_timestamp(296).unwrap(), None);
        assert_eq!(log.max_timestamp().unwrap(), Some((59, 295)));
    }

    #[test]
    fn max_timestamp_prefers_the_first_record_holding_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config());
        assert_eq!(log.max_timestamp().unwrap(), None);
        log.append(
            encode(
                &[rec("a", "x", 50), rec("a", "y", 900), rec("a", "z", 3)],
                (-1, -1, -1),
                Compression::None,
            ),
            0,
            0,
        )
        .unwrap();
        log.append(simple(2, 100), 0, 0).unwrap();
        assert_eq!(log.max_timestamp().unwrap(), Some((1, 900)));
    }
}
