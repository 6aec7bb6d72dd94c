//! Kafka framing: size-prefixed requests and responses.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Refuse frames larger than this instead of allocating whatever a broken peer claims.
pub const MAX_FRAME: usize = 256 * 1024 * 1024;

#[derive(Debug, Error)]
pub enum WireError {
    #[error("connection closed by the broker")]
    Closed,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("broker sent a frame of {0} bytes (limit {MAX_FRAME})")]
    FrameTooLarge(i64),
    #[error("could not encode {api:?} v{version}: {source}")]
    Encode {
        api: ApiKey,
        version: i16,
        source: anyhow::Error,
    },
    #[error("could not decode {api:?} v{version} response: {source}")]
    Decode {
        api: ApiKey,
        version: i16,
        source: anyhow::Error,
    },
    #[error("response correlation id {got} does not match request {expected}")]
    CorrelationMismatch { expected: i32, got: i32 },
}

fn api_key<R: Request>() -> ApiKey {
    // R::KEY always comes from kafka-protocol's own table, so this cannot fail in practice.
    ApiKey::try_from(R::KEY).unwrap_or(ApiKey::ApiVersions)
}

/// Appends one size-prefixed request frame to `out`.
pub fn encode_request<R: Request>(
    out: &mut BytesMut,
    correlation_id: i32,
    version: i16,
    client_id: &StrBytes,
    req: &R,
) -> Result<(), WireError> {
    let api = api_key::<R>();
    let err = |source| WireError::Encode {
        api,
        version,
        source,
    };
    let mut header = RequestHeader::default();
    header.request_api_key = R::KEY;
    header.request_api_version = version;
    header.correlation_id = correlation_id;
    header.client_id = Some(client_id.clone());
    let start = out.len();
    out.put_i32(0); // patched below
    header
        .encode(out, api.request_header_version(version))
        .map_err(err)?;
    req.encode(out, version).map_err(err)?;
    let len = (out.len() - start - 4) as i32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Decodes a response frame (without its size prefix) and checks the correlation id.
pub fn decode_response<R: Request>(
    mut frame: Bytes,
    version: i16,
    expected_correlation_id: i32,
) -> Result<R::Response, WireError> {
    let api = api_key::<R>();
    let err = |source| WireError::Decode {
        api,
        version,
        source,
    };
    let header =
        ResponseHeader::decode(&mut frame, api.response_header_version(version)).map_err(err)?;
    if header.correlation_id != expected_correlation_id {
        return Err(WireError::CorrelationMismatch {
            expected: expected_correlation_id,
            got: header.correlation_id,
        });
    }
    R::Response::decode(&mut frame, version).map_err(err)
}

/// Splits complete frames out of a read buffer. `next_frame` is cancel-safe.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: BytesMut,
}

impl FrameReader {
    /// Returns a complete frame if the buffer holds one.
    pub fn try_frame(&mut self) -> Result<Option<Bytes>, WireError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let len = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        if len < 0 || len as usize > MAX_FRAME {
            return Err(WireError::FrameTooLarge(len as i64));
        }
        let len = len as usize;
        if self.buf.len() < 4 + len {
            self.buf.reserve(4 + len - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(4);
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    pub async fn next_frame<R: AsyncRead + Unpin>(
        &mut self,
        rd: &mut R,
    ) -> Result<Bytes, WireError> {
        loop {
            if let Some(frame) = self.try_frame()? {
                return Ok(frame);
            }
            if self.buf.capacity() - self.buf.len() < 8192 {
                self.buf.reserve(64 * 1024);
            }
            if rd.read_buf(&mut self.buf).await? == 0 {
                return Err(WireError::Closed);
            }
        }
    }

    #[cfg(test)]
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest, MetadataResponse};

    #[test]
    fn request_frame_has_size_and_header() {
        let mut out = BytesMut::new();
        let cid = StrBytes::from_static_str("lg");
        encode_request(&mut out, 42, 3, &cid, &ApiVersionsRequest::default()).unwrap();
        let len = i32::from_be_bytes(out[0..4].try_into().unwrap()) as usize;
        assert_eq!(len, out.len() - 4);
        assert_eq!(&out[4..6], &18i16.to_be_bytes(), "api key");
        assert_eq!(&out[6..8], &3i16.to_be_bytes(), "api version");
        assert_eq!(&out[8..12], &42i32.to_be_bytes(), "correlation id");
    }

    #[test]
    fn response_round_trip_and_mismatch() {
        let version = 12;
        let mut body = BytesMut::new();
        let mut h = ResponseHeader::default();
        h.correlation_id = 7;
        h.encode(&mut body, ApiKey::Metadata.response_header_version(version))
            .unwrap();
        let mut resp = MetadataResponse::default();
        resp.controller_id = 1.into();
        resp.encode(&mut body, version).unwrap();
        let frame = body.freeze();
        let got = decode_response::<MetadataRequest>(frame.clone(), version, 7).unwrap();
        assert_eq!(got.controller_id.0, 1);
        assert!(matches!(
            decode_response::<MetadataRequest>(frame.clone(), version, 8),
            Err(WireError::CorrelationMismatch { .. })
        ));
        // Truncated bodies are an error, never a panic.
        let cut = frame.slice(0..frame.len() / 2);
        assert!(decode_response::<MetadataRequest>(cut, version, 7).is_err());
    }

    #[test]
    fn frames_split_across_reads() {
        let mut r = FrameReader::default();
        r.feed(&[0, 0, 0, 3, b'a']);
        assert!(r.try_frame().unwrap().is_none());
        r.feed(&[b'b', b'c', 0, 0]);
        assert_eq!(r.try_frame().unwrap().unwrap(), Bytes::from_static(b"abc"));
        assert!(r.try_frame().unwrap().is_none());
        r.feed(&[0, 0]);
        assert_eq!(r.try_frame().unwrap().unwrap(), Bytes::new());
    }

    #[test]
    fn rejects_absurd_sizes() {
        let mut r = FrameReader::default();
        r.feed(&(-1i32).to_be_bytes());
        assert!(matches!(r.try_frame(), Err(WireError::FrameTooLarge(-1))));
    }
}
