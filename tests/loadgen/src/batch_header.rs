//! Reading record batch v2 headers from fetched bytes without decoding records.
//!
//! Layout (big endian): baseOffset i64 @0, batchLength i32 @8, partitionLeaderEpoch
//! i32 @12, magic i8 @16, crc u32 @17, attributes i16 @21, lastOffsetDelta i32 @23,
//! ..., recordCount i32 @57; the header is 61 bytes.

const HEADER_LEN: usize = 61;
/// Bytes before the batch length field's coverage starts (baseOffset + batchLength).
const LOG_OVERHEAD: usize = 12;
const CONTROL_FLAG: u16 = 1 << 5;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Complete batches seen.
    pub batches: u64,
    /// Records in complete, non-control batches.
    pub records: u64,
    /// Bytes of complete batches (wire size).
    pub bytes: u64,
    /// Offset to fetch next, if any complete batch was seen.
    pub next_offset: Option<i64>,
    /// Batches with a magic other than 2 (skipped but counted so they are not silent).
    pub unsupported: u64,
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// Byte ranges of the complete batches in `data` (a fetch response may end with a
/// partial batch, which is ignored as Kafka consumers do).
pub fn batch_ranges(data: &[u8]) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let rest = data.get(pos..)?;
        if rest.len() < LOG_OVERHEAD {
            return None;
        }
        let len = be_i32(rest, 8);
        if len < 0 {
            return None;
        }
        let total = LOG_OVERHEAD + len as usize;
        // Too short to hold even the magic byte: malformed, stop here.
        if rest.len() < total || total <= 16 {
            return None;
        }
        let range = pos..pos + total;
        pos += total;
        Some(range)
    })
}

pub fn scan(data: &[u8]) -> Scan {
    let mut s = Scan::default();
    for r in batch_ranges(data) {
        let b = &data[r];
        s.batches += 1;
        s.bytes += b.len() as u64;
        if b[16] != 2 || b.len() < HEADER_LEN {
            s.unsupported += 1;
            continue;
        }
        let base = be_i64(b, 0);
        let last_delta = be_i32(b, 23);
        s.next_offset = Some(base + last_delta as i64 + 1);
        let attributes = u16::from_be_bytes([b[21], b[22]]);
        if attributes & CONTROL_FLAG == 0 {
            s.records += be_i32(b, 57).max(0) as u64;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::encode_batch;
    use bytes::Bytes;
    use kafka_protocol::records::Compression;

    fn batch(n: usize) -> Vec<u8> {
        let vals: Vec<Bytes> = (0..n).map(|_| Bytes::from_static(b"hello")).collect();
        encode_batch(&vals, 0, Compression::None).unwrap().to_vec()
    }

    fn with_base_offset(mut b: Vec<u8>, base: i64) -> Vec<u8> {
        b[0..8].copy_from_slice(&base.to_be_bytes());
        b
    }

    #[test]
    fn counts_consecutive_batches() {
        let mut data = with_base_offset(batch(3), 100);
        data.extend(with_base_offset(batch(4), 103));
        let s = scan(&data);
        assert_eq!(s.batches, 2);
        assert_eq!(s.records, 7);
        assert_eq!(s.next_offset, Some(107));
        assert_eq!(s.bytes, data.len() as u64);
    }

    #[test]
    fn ignores_trailing_partial_batch() {
        let mut data = batch(2);
        let full = data.len();
        let second = batch(5);
        data.extend_from_slice(&second[..second.len() - 3]);
        let s = scan(&data);
        assert_eq!((s.batches, s.records), (1, 2));
        assert_eq!(s.bytes, full as u64);
        assert_eq!(scan(&data[..10]), Scan::default());
        assert_eq!(scan(&[]), Scan::default());
    }

    #[test]
    fn skips_control_batches_and_bad_lengths() {
        let mut b = batch(1);
        b[22] |= CONTROL_FLAG as u8;
        let s = scan(&b);
        assert_eq!((s.batches, s.records), (1, 0));
        assert_eq!(s.next_offset, Some(1));
        let mut bad = batch(1);
        bad[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert_eq!(scan(&bad).batches, 0);
    }

    #[test]
    fn old_magic_is_counted_not_parsed() {
        let mut b = batch(2);
        b[16] = 1;
        let s = scan(&b);
        assert_eq!((s.unsupported, s.records, s.next_offset), (1, 0, None));
    }
}
