//! Reading and writing whole logs of key/value records, for the broker's own
//! internal topics (the metadata log and `__consumer_offsets`). Client data
//! never goes through here: it stays in the batches producers sent.

use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};

use crate::storage::batch::{self, BatchFrame};
use crate::storage::{PartitionLog, StorageError};

/// One record read back: offset, key, value (None = tombstone).
pub type StoredRecord = (i64, Option<Bytes>, Option<Bytes>);

/// Encodes key/value pairs as one v2 batch; the log assigns offsets.
pub fn encode_batch(
    records: &[(Option<Bytes>, Option<Bytes>)],
    now_ms: i64,
    compression: Compression,
) -> Result<Bytes, anyhow::Error> {
    let frame = BatchFrame {
        base_offset: 0,
        leader_epoch: -1,
        control: false,
        timestamp: now_ms,
        compression,
    };
    batch::encode(records, frame)
}

#[derive(Debug, thiserror::Error)]
pub enum ReadLogError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("undecodable batch at offset {offset}: {reason}")]
    Decode { offset: i64, reason: String },
}

/// Every record of the log from its start, in order.
pub fn read_all(log: &PartitionLog) -> Result<Vec<StoredRecord>, ReadLogError> {
    const CHUNK: usize = 1 << 20;
    // Offsets of the v2 batch header fields we need to step over a batch.
    const LENGTH_END: usize = 12;
    const LAST_OFFSET_DELTA: usize = 23;
    let end = log.log_end_offset();
    let mut offset = log.log_start_offset();
    let mut out = Vec::new();
    while offset < end {
        let mut chunk = log.read(offset, CHUNK, end, true)?;
        if chunk.is_empty() {
            break;
        }
        let before = offset;
        while chunk.len() >= LAST_OFFSET_DELTA + 4 {
            let bad = |reason: &str| ReadLogError::Decode {
                offset,
                reason: reason.to_string(),
            };
            let base = i64::from_be_bytes(chunk[0..8].try_into().expect("8 bytes"));
            let length = i32::from_be_bytes(chunk[8..12].try_into().expect("4 bytes"));
            let delta = i32::from_be_bytes(
                chunk[LAST_OFFSET_DELTA..LAST_OFFSET_DELTA + 4]
                    .try_into()
                    .expect("4 bytes"),
            );
            let size =
                usize::try_from(length).map_err(|_| bad("negative batch length"))? + LENGTH_END;
            if size > chunk.len() {
                break;
            }
            let mut batch = chunk.split_to(size);
            let sets =
                RecordBatchDecoder::decode_all(&mut batch).map_err(|e| bad(&format!("{e:#}")))?;
            out.extend(
                sets.into_iter()
                    .flat_map(|set| set.records)
                    .filter(|r| r.offset >= offset)
                    .map(|r| (r.offset, r.key, r.value)),
            );
            // Step by the header, not the records: compaction may have emptied a batch.
            offset = offset.max(base + delta as i64 + 1);
        }
        if offset == before {
            return Err(ReadLogError::Decode {
                offset,
                reason: "the log returned no whole batch".into(),
            });
        }
    }
    Ok(out)
}
