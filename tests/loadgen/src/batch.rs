//! Encoding a partition's pending records as one record batch v2.

use anyhow::{Context, Result};
use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};

/// Encodes `values` as one batch with CreateTime `timestamp_ms` (no keys, no headers).
pub fn encode_batch(
    values: &[Bytes],
    timestamp_ms: i64,
    compression: Compression,
) -> Result<Bytes> {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder starts a new batch whenever offset - sequence changes, and
            // writes base sequence = first sequence. Sequence = offset - 1 keeps one
            // batch and gives base sequence -1 (no sequence), as a plain producer sends.
            sequence: i as i32 - 1,
            timestamp: timestamp_ms,
            key: None,
            value: Some(v.clone()),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::with_capacity(values.iter().map(Bytes::len).sum::<usize>() + 128);
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).context("encoding record batch")?;
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch_header::scan;
    use kafka_protocol::records::RecordBatchDecoder;

    fn values(n: usize, size: usize) -> Vec<Bytes> {
        (0..n)
            .map(|i| Bytes::from(vec![b'A' + (i % 26) as u8; size]))
            .collect()
    }

    #[test]
    fn one_batch_with_all_records() {
        let vals = values(10, 100);
        let bytes = encode_batch(&vals, 1234, Compression::None).unwrap();
        let s = scan(&bytes);
        assert_eq!(s.batches, 1);
        assert_eq!(s.records, 10);
        assert_eq!(s.next_offset, Some(10));
        assert_eq!(s.bytes, bytes.len() as u64);
        // Header fields a plain (non-idempotent) producer sends.
        assert_eq!(&bytes[53..57], &(-1i32).to_be_bytes(), "base sequence");
        assert_eq!(&bytes[43..51], &(-1i64).to_be_bytes(), "producer id");
    }

    #[test]
    fn compressed_batches_round_trip() {
        let vals = values(50, 1024);
        for c in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let bytes = encode_batch(&vals, 1, c).unwrap();
            assert!(bytes.len() < 50 * 1024, "{c:?} compresses");
            let s = scan(&bytes);
            assert_eq!((s.batches, s.records), (1, 50), "{c:?}");
            let mut buf = bytes.clone();
            let set = RecordBatchDecoder::decode(&mut buf).unwrap();
            assert_eq!(set.records.len(), 50);
            assert_eq!(set.records[49].value.as_ref().unwrap(), &vals[49]);
            assert_eq!(set.records[49].offset, 49);
        }
    }
}
