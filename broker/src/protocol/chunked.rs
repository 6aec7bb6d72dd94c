//! Encoding a response as a list of chunks in which large byte fields (fetched
//! record batches) are the very `Bytes` read from the segment files, not
//! copies: the encoder writes everything else into small buffers between them.

use bytes::buf::UninitSlice;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::protocol::buf::ByteBufMut;

/// Byte fields shorter than this are copied: a separate chunk costs more.
const SPLICE_MIN: usize = 4096;

pub struct ChunkedBuf {
    head: BytesMut,
    chunks: Vec<Bytes>,
    /// Bytes already moved into `chunks`, for the offsets the encoder asks about.
    flushed: usize,
    splice: Vec<Bytes>,
}

impl ChunkedBuf {
    /// `splice`: the byte fields to pass through by reference.
    pub fn new(capacity: usize, splice: Vec<Bytes>) -> Self {
        ChunkedBuf {
            head: BytesMut::with_capacity(capacity),
            chunks: Vec::new(),
            flushed: 0,
            splice: splice
                .into_iter()
                .filter(|b| b.len() >= SPLICE_MIN)
                .collect(),
        }
    }

    pub fn into_chunks(mut self) -> Vec<Bytes> {
        if !self.head.is_empty() {
            self.chunks.push(self.head.freeze());
        }
        self.chunks
    }
}

// SAFETY: all writes go to `head`, a BytesMut, through its own BufMut impl.
unsafe impl BufMut for ChunkedBuf {
    fn remaining_mut(&self) -> usize {
        self.head.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        unsafe { self.head.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.head.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        if src.len() >= SPLICE_MIN {
            if let Some(shared) = self
                .splice
                .iter()
                .find(|b| b.as_ptr() == src.as_ptr() && b.len() == src.len())
            {
                let shared = shared.clone();
                let head = self.head.split().freeze();
                self.flushed += head.len() + shared.len();
                if !head.is_empty() {
                    self.chunks.push(head);
                }
                self.chunks.push(shared);
                return;
            }
        }
        self.head.extend_from_slice(src);
    }
}

impl ByteBufMut for ChunkedBuf {
    fn offset(&self) -> usize {
        self.flushed + self.head.len()
    }

    fn seek(&mut self, offset: usize) {
        // Encoders only seek forward over gaps they fill in later, within the
        // current head (never across a spliced chunk).
        self.head.resize(offset.saturating_sub(self.flushed), 0);
    }

    fn range(&mut self, r: std::ops::Range<usize>) -> &mut [u8] {
        let start = r.start.saturating_sub(self.flushed);
        let end = r.end.saturating_sub(self.flushed);
        &mut self.head[start..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{FetchResponse, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    #[test]
    fn spliced_output_equals_the_plain_encoding_at_every_version() {
        let big = Bytes::from((0..10_000u32).map(|i| i as u8).collect::<Vec<_>>());
        let small = Bytes::from_static(b"tiny");
        let partitions = vec![
            PartitionData::default()
                .with_partition_index(0)
                .with_records(Some(big.clone())),
            PartitionData::default()
                .with_partition_index(1)
                .with_records(Some(small)),
            PartitionData::default()
                .with_partition_index(2)
                .with_records(Some(big.slice(100..9000))),
        ];
        let response =
            FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
                .with_topic(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(partitions)]);
        for version in 4..=17 {
            let mut plain = BytesMut::new();
            response.encode(&mut plain, version).unwrap();
            let mut chunked = ChunkedBuf::new(64, vec![big.clone(), big.slice(100..9000)]);
            response.encode(&mut chunked, version).unwrap();
            let chunks = chunked.into_chunks();
            // The two large record sets travel by reference.
            assert!(
                chunks.iter().any(|c| c.as_ptr() == big.as_ptr()),
                "v{version}"
            );
            assert_eq!(chunks.concat(), plain.to_vec(), "v{version}");
        }
    }
}
