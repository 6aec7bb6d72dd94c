//! Zero-copy view over record batch v2 bytes: header fields, validation and
//! in-place rewrites of the fields the broker owns.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// Bytes before the part covered by `batchLength`: baseOffset + batchLength.
pub const LOG_OVERHEAD: usize = 12;
/// Size of the fixed v2 batch header.
pub const HEADER_LEN: usize = 61;

const LENGTH_AT: usize = 8;
const LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const RECORDS_COUNT_AT: usize = 57;

/// Smallest encoded record: seven one-byte varints and attributes.
const MIN_RECORD_LEN: usize = 7;

const TIMESTAMP_TYPE_BIT: i16 = 1 << 3;
const TRANSACTIONAL_BIT: i16 = 1 << 4;
const CONTROL_BIT: i16 = 1 << 5;

/// The decoded fixed header of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

/// Why bytes are not a valid batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// The bytes end before the batch does (a torn write or a short buffer).
    Truncated,
    /// The batch is larger than allowed.
    TooLarge(usize),
    Corrupt(String),
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

impl BatchHeader {
    /// Reads the header fields; `None` when fewer than [`HEADER_LEN`] bytes.
    pub fn parse(b: &[u8]) -> Option<BatchHeader> {
        b.first_chunk().map(BatchHeader::from_head)
    }

    /// Reads the header fields of exactly one header's bytes.
    pub fn from_head(b: &[u8; HEADER_LEN]) -> BatchHeader {
        BatchHeader {
            base_offset: i64_at(b, 0),
            batch_length: i32_at(b, LENGTH_AT),
            partition_leader_epoch: i32_at(b, LEADER_EPOCH_AT),
            magic: b[MAGIC_AT] as i8,
            crc: i32_at(b, CRC_AT) as u32,
            attributes: i16_at(b, ATTRIBUTES_AT),
            last_offset_delta: i32_at(b, LAST_OFFSET_DELTA_AT),
            base_timestamp: i64_at(b, BASE_TIMESTAMP_AT),
            max_timestamp: i64_at(b, MAX_TIMESTAMP_AT),
            producer_id: i64_at(b, PRODUCER_ID_AT),
            producer_epoch: i16_at(b, PRODUCER_EPOCH_AT),
            base_sequence: i32_at(b, BASE_SEQUENCE_AT),
            records_count: i32_at(b, RECORDS_COUNT_AT),
        }
    }

    /// Bytes the whole batch occupies, log overhead included.
    pub fn total_len(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    pub fn compression_codec(&self) -> i16 {
        self.attributes & 0x7
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }

    /// Last sequence number, wrapping at `i32::MAX` as producers do.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return -1;
        }
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        (last % (i64::from(i32::MAX) + 1)) as i32
    }
}

/// Checks the batch at the start of `b`: length, magic, CRC32C and record count.
///
/// `strict` also demands `recordsCount == lastOffsetDelta + 1`, which holds for
/// batches from producers but not for batches the cleaner has compacted.
pub fn validate(b: &[u8], max_size: usize, strict: bool) -> Result<BatchHeader, BatchError> {
    if b.len() < LOG_OVERHEAD {
        return Err(BatchError::Truncated);
    }
    let length = i32_at(b, LENGTH_AT);
    if length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
        return Err(BatchError::Corrupt(format!(
            "batch length {length} too small"
        )));
    }
    let total = LOG_OVERHEAD + length as usize;
    if total > max_size {
        return Err(BatchError::TooLarge(total));
    }
    if b.len() < total {
        return Err(BatchError::Truncated);
    }
    let header = BatchHeader::parse(b).ok_or(BatchError::Truncated)?;
    if header.magic != 2 {
        return Err(BatchError::Corrupt(format!(
            "unsupported magic {}",
            header.magic
        )));
    }
    let actual = crc32c::crc32c(&b[ATTRIBUTES_AT..total]);
    if actual != header.crc {
        return Err(BatchError::Corrupt(format!(
            "CRC mismatch: stored {:#x}, computed {actual:#x}",
            header.crc
        )));
    }
    let count = header.records_count;
    let delta = header.last_offset_delta;
    let count_ok = if strict {
        count >= 1 && delta >= 0 && i64::from(count) == i64::from(delta) + 1
    } else {
        count >= 0 && delta >= 0 && i64::from(count) <= i64::from(delta) + 1
    };
    if !count_ok {
        return Err(BatchError::Corrupt(format!(
            "records count {count} inconsistent with last offset delta {delta}"
        )));
    }
    // Without decoding, an uncompressed batch can still be checked to have
    // room for its records, so a tiny batch cannot claim a huge offset range.
    let body = total - HEADER_LEN;
    if header.compression_codec() == 0 && count.max(0) as usize > body / MIN_RECORD_LEN {
        return Err(BatchError::Corrupt(format!(
            "{count} records cannot fit in {body} bytes"
        )));
    }
    Ok(header)
}

/// Validates every batch in `records`; returns each batch's start and header.
pub fn validate_all(
    records: &[u8],
    max_size: usize,
    strict: bool,
) -> Result<Vec<(usize, BatchHeader)>, BatchError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < records.len() {
        let header = validate(&records[pos..], max_size, strict)?;
        out.push((pos, header));
        pos += header.total_len();
    }
    Ok(out)
}

/// A batch split into its fixed header, copied out so the broker can patch
/// it, and the records after it, borrowed untouched: the record bytes are
/// never copied on the append path.
#[derive(Debug, Clone)]
pub struct PatchableBatch<'a> {
    pub head: [u8; HEADER_LEN],
    pub body: &'a [u8],
}

impl<'a> PatchableBatch<'a> {
    /// `raw` must be exactly one batch; `None` when shorter than a header.
    pub fn new(raw: &'a [u8]) -> Option<Self> {
        let (head, body) = raw.split_first_chunk::<HEADER_LEN>()?;
        Some(PatchableBatch { head: *head, body })
    }

    pub fn header(&self) -> BatchHeader {
        BatchHeader::from_head(&self.head)
    }

    /// The whole patched batch (copies; for tests and the cleaner's small batches).
    pub fn to_vec(&self) -> Vec<u8> {
        [&self.head[..], self.body].concat()
    }

    /// Sets the base offset; not covered by the CRC, so the CRC stays valid.
    pub fn set_base_offset(&mut self, offset: i64) {
        self.head[..8].copy_from_slice(&offset.to_be_bytes());
    }

    /// Sets the partition leader epoch; not covered by the CRC either.
    pub fn set_leader_epoch(&mut self, epoch: i32) {
        self.head[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&epoch.to_be_bytes());
    }

    /// Marks the batch as LogAppendTime with `ts` as its timestamp; fixes the CRC.
    pub fn set_log_append_time(&mut self, ts: i64) {
        let attributes = i16_at(&self.head, ATTRIBUTES_AT) | TIMESTAMP_TYPE_BIT;
        self.head[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
        self.head[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&ts.to_be_bytes());
        self.update_crc();
    }

    /// Sets the base sequence (the cleaner restores it after re-encoding); fixes the CRC.
    pub fn set_base_sequence(&mut self, sequence: i32) {
        self.head[BASE_SEQUENCE_AT..BASE_SEQUENCE_AT + 4].copy_from_slice(&sequence.to_be_bytes());
        self.update_crc();
    }

    fn update_crc(&mut self) {
        let crc = crc32c::crc32c_append(crc32c::crc32c(&self.head[ATTRIBUTES_AT..]), self.body);
        self.head[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    }
}

/// How the broker frames a batch it writes itself (its internal topics and
/// metadata snapshots); client batches are never re-encoded.
#[derive(Debug, Clone, Copy)]
pub struct BatchFrame {
    pub base_offset: i64,
    pub leader_epoch: i32,
    /// Marks the batch as holding control records (`key` = version + type).
    pub control: bool,
    pub timestamp: i64,
    pub compression: Compression,
}

/// Encodes key/value pairs as one v2 batch with offsets from `frame.base_offset`.
pub fn encode(
    records: &[(Option<Bytes>, Option<Bytes>)],
    frame: BatchFrame,
) -> Result<Bytes, anyhow::Error> {
    let records: Vec<Record> = records
        .iter()
        .zip(frame.base_offset..)
        .map(|((key, value), offset)| Record {
            transactional: false,
            control: frame.control,
            delete_horizon: false,
            partition_leader_epoch: frame.leader_epoch,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset,
            // The encoder starts a new batch whenever offset - sequence changes;
            // this keeps one batch whose base sequence is -1 (no producer).
            sequence: (offset - frame.base_offset) as i32 - 1,
            timestamp: frame.timestamp,
            key: key.clone(),
            value: value.clone(),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: frame.compression,
        },
    )?;
    Ok(buf.freeze())
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Builds real batches with kafka-protocol's encoder for tests.
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    /// One record of a test batch.
    pub struct Rec {
        pub key: Option<&'static str>,
        pub value: Option<String>,
        pub timestamp: i64,
    }

    pub fn rec(key: &'static str, value: &str, timestamp: i64) -> Rec {
        Rec {
            key: Some(key),
            value: Some(value.to_string()),
            timestamp,
        }
    }

    /// Producer fields of a test batch: (producer id, epoch, base sequence).
    pub type Producer = (i64, i16, i32);

    pub fn encode(recs: &[Rec], producer: Producer, compression: Compression) -> Bytes {
        let records: Vec<Record> = recs
            .iter()
            .enumerate()
            .map(|(i, r)| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: producer.0,
                producer_epoch: producer.1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // offset - sequence must stay constant or the encoder splits the batch.
                sequence: producer.2.wrapping_add(i as i32),
                timestamp: r.timestamp,
                key: r.key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
                value: r
                    .value
                    .as_ref()
                    .map(|v| Bytes::copy_from_slice(v.as_bytes())),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encodable");
        buf.freeze()
    }

    /// An uncompressed batch of `n` keyed records without a producer id.
    pub fn simple(n: usize, timestamp: i64) -> Bytes {
        let recs: Vec<Rec> = (0..n)
            .map(|i| rec("k", &format!("v{i}"), timestamp))
            .collect();
        encode(&recs, (-1, -1, -1), Compression::None)
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::simple;
    use super::*;

    #[test]
    fn parses_a_valid_batch() {
        let b = simple(3, 1_000);
        let h = validate(&b, 1 << 20, true).unwrap();
        assert_eq!(h.records_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.total_len(), b.len());
        assert_eq!(h.max_timestamp, 1_000);
        assert_eq!(h.producer_id, -1);
    }

    #[test]
    fn rejects_crc_mismatch_bad_magic_truncation_and_oversize() {
        let b = simple(2, 5);
        let mut crc = b.to_vec();
        let last = crc.len() - 1;
        crc[last] ^= 0xff;
        assert!(matches!(
            validate(&crc, 1 << 20, true),
            Err(BatchError::Corrupt(_))
        ));

        let mut magic = b.to_vec();
        magic[MAGIC_AT] = 1;
        assert!(matches!(
            validate(&magic, 1 << 20, true),
            Err(BatchError::Corrupt(_))
        ));

        assert_eq!(
            validate(&b[..b.len() - 1], 1 << 20, true),
            Err(BatchError::Truncated)
        );
        assert_eq!(validate(&b[..5], 1 << 20, true), Err(BatchError::Truncated));
        assert_eq!(
            validate(&b, b.len() - 1, true),
            Err(BatchError::TooLarge(b.len()))
        );

        let mut short = b.to_vec();
        short[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&3i32.to_be_bytes());
        assert!(matches!(
            validate(&short, 1 << 20, true),
            Err(BatchError::Corrupt(_))
        ));
    }

    #[test]
    fn strict_mode_demands_count_matching_delta() {
        let raw = simple(2, 5);
        let mut p = PatchableBatch::new(&raw).unwrap();
        p.head[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4].copy_from_slice(&4i32.to_be_bytes());
        p.update_crc();
        let b = p.to_vec();
        assert!(matches!(
            validate(&b, 1 << 20, true),
            Err(BatchError::Corrupt(_))
        ));
        assert!(validate(&b, 1 << 20, false).is_ok());

        // A record count the uncompressed body has no room for.
        let mut p = PatchableBatch::new(&raw).unwrap();
        p.head[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4]
            .copy_from_slice(&999i32.to_be_bytes());
        p.head[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&1000i32.to_be_bytes());
        p.update_crc();
        assert!(matches!(
            validate(&p.to_vec(), 1 << 20, true),
            Err(BatchError::Corrupt(_))
        ));
    }

    #[test]
    fn offset_and_epoch_rewrite_keeps_crc_valid() {
        let raw = simple(2, 5);
        let mut p = PatchableBatch::new(&raw).unwrap();
        p.set_base_offset(1234);
        p.set_leader_epoch(7);
        assert_eq!(p.body, &raw[HEADER_LEN..], "records are borrowed untouched");
        let h = validate(&p.to_vec(), 1 << 20, true).unwrap();
        assert_eq!(h, p.header());
        assert_eq!(h.base_offset, 1234);
        assert_eq!(h.partition_leader_epoch, 7);
        assert_eq!(h.last_offset(), 1235);
    }

    #[test]
    fn log_append_time_rewrite_sets_bit_timestamp_and_crc() {
        let raw = simple(2, 5);
        let mut p = PatchableBatch::new(&raw).unwrap();
        assert!(!p.header().is_log_append_time());
        p.set_log_append_time(99_999);
        let h = validate(&p.to_vec(), 1 << 20, true).unwrap();
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 99_999);
    }

    #[test]
    fn validate_all_walks_concatenated_batches() {
        let mut all = simple(1, 1).to_vec();
        all.extend_from_slice(&simple(4, 2));
        let batches = validate_all(&all, 1 << 20, true).unwrap();
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[1].0, simple(1, 1).len());
        assert_eq!(batches[1].1.records_count, 4);
        all.push(0);
        assert_eq!(
            validate_all(&all, 1 << 20, true),
            Err(BatchError::Truncated)
        );
    }

    #[test]
    fn last_sequence_wraps_at_i32_max() {
        let mut h = BatchHeader::parse(&simple(3, 0)).unwrap();
        h.base_sequence = i32::MAX - 1;
        assert_eq!(h.last_sequence(), 0);
        h.base_sequence = 5;
        assert_eq!(h.last_sequence(), 7);
    }

    #[test]
    fn encode_frames_all_records_as_one_batch() {
        let records: Vec<(Option<Bytes>, Option<Bytes>)> = (0..3)
            .map(|i| (None, Some(Bytes::from(vec![i; 4]))))
            .collect();
        let frame = BatchFrame {
            base_offset: 40,
            leader_epoch: 6,
            control: true,
            timestamp: 1_000,
            compression: Compression::None,
        };
        let bytes = encode(&records, frame).unwrap();
        let batches = validate_all(&bytes, 1 << 20, true).unwrap();
        assert_eq!(batches.len(), 1);
        let h = batches[0].1;
        assert_eq!(
            (h.base_offset, h.last_offset(), h.records_count),
            (40, 42, 3)
        );
        assert_eq!(
            (h.partition_leader_epoch, h.base_sequence, h.producer_id),
            (6, -1, -1)
        );
        assert!(h.is_control() && !h.is_transactional());
    }
}
