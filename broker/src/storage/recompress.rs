//! Topic-level `compression.type`: batches a producer compressed with another
//! codec are re-encoded with the topic's, as Kafka does. This is the one
//! per-record decode on the produce path, and only topics that ask pay for it.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
};

use super::batch::BatchHeader;
use super::StorageError;

/// `records` with every batch in the `target` codec; `None` when all already are.
pub fn to_codec(
    records: &Bytes,
    batches: &[(usize, BatchHeader)],
    target: Compression,
) -> Result<Option<Bytes>, StorageError> {
    if batches
        .iter()
        .all(|(_, h)| h.compression_codec() == target as i16)
    {
        return Ok(None);
    }
    let mut out = BytesMut::with_capacity(records.len());
    for (at, header) in batches {
        let mut raw = records.slice(*at..*at + header.total_len());
        if header.compression_codec() == target as i16 {
            out.extend_from_slice(&raw);
            continue;
        }
        let set = RecordBatchDecoder::decode(&mut raw).map_err(|e| {
            StorageError::CorruptMessage(format!("cannot decode batch to recompress it: {e:#}"))
        })?;
        let options = RecordEncodeOptions {
            version: 2,
            compression: target,
        };
        RecordBatchEncoder::encode(&mut out, &set.records, &options)
            .map_err(|e| StorageError::InvalidRecord(format!("cannot recompress batch: {e:#}")))?;
    }
    Ok(Some(out.freeze()))
}

/// Parses a topic's `compression.type`: `None` keeps what the producer sent.
pub fn parse_compression_type(value: &str) -> Result<Option<Compression>, String> {
    Ok(Some(match value {
        "producer" => return Ok(None),
        "uncompressed" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        _ => return Err("expected producer, uncompressed, gzip, snappy, lz4 or zstd".into()),
    }))
}

/// The config value naming `compression`, as DescribeConfigs shows it.
pub fn compression_type_name(compression: Option<Compression>) -> &'static str {
    match compression {
        None => "producer",
        Some(Compression::None) => "uncompressed",
        Some(Compression::Gzip) => "gzip",
        Some(Compression::Snappy) => "snappy",
        Some(Compression::Lz4) => "lz4",
        Some(Compression::Zstd) => "zstd",
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::records::{Compression, RecordBatchDecoder};

    use crate::storage::batch::testutil::{encode, rec};
    use crate::storage::batch::BatchHeader;
    use crate::storage::log::testutil::{config, open};

    #[test]
    fn batches_are_stored_in_the_topics_codec_with_their_records_and_producer_fields() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config();
        c.segment_bytes = 1 << 20;
        c.compression = Some(Compression::Gzip);
        let log = open(dir.path(), c);
        let sent = encode(
            &[rec("a", "one", 5), rec("b", "two", 7)],
            (9, 0, 0),
            Compression::Lz4,
        );
        let info = log.append(sent, 0, 100).unwrap();
        assert_eq!((info.base_offset, info.last_offset), (0, 1));

        let mut stored = log.read(0, 1 << 20, log.log_end_offset(), true).unwrap();
        let header = BatchHeader::parse(&stored).unwrap();
        assert_eq!(header.compression_codec(), Compression::Gzip as i16);
        assert_eq!((header.producer_id, header.base_sequence), (9, 0));
        let set = RecordBatchDecoder::decode(&mut stored).unwrap();
        let values: Vec<_> = set
            .records
            .iter()
            .map(|r| (r.offset, r.value.clone().unwrap(), r.timestamp))
            .collect();
        assert_eq!(values, vec![(0, "one".into(), 5), (1, "two".into(), 7)]);

        // The idempotence window still recognises a retry of the original batch.
        let retry = encode(
            &[rec("a", "one", 5), rec("b", "two", 7)],
            (9, 0, 0),
            Compression::Lz4,
        );
        assert!(log.append(retry, 0, 100).unwrap().duplicate);
    }

    #[test]
    fn topic_config_values_round_trip() {
        for name in ["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"] {
            let parsed = super::parse_compression_type(name).unwrap();
            assert_eq!(super::compression_type_name(parsed), name);
        }
        assert!(super::parse_compression_type("brotli").is_err());
    }
}
