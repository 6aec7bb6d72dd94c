//! Request decoding and response encoding with `kafka-protocol`'s types.

use bytes::{BufMut, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("request of {0} bytes is too short for a request header")]
    ShortHeader(usize),
    #[error("malformed {api:?} v{version} request: {reason}")]
    Malformed {
        api: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("cannot encode {api:?} v{version} response: {reason}")]
    Encode {
        api: ApiKey,
        version: i16,
        reason: String,
    },
}

/// The fixed leading fields every request header version shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawHeader {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

/// Reads api key, version and correlation id without decoding anything else,
/// so an unknown key or version can still be answered or logged.
pub fn peek_header(frame: &[u8]) -> Result<RawHeader, CodecError> {
    if frame.len() < 8 {
        return Err(CodecError::ShortHeader(frame.len()));
    }
    Ok(RawHeader {
        api_key: i16::from_be_bytes([frame[0], frame[1]]),
        api_version: i16::from_be_bytes([frame[2], frame[3]]),
        correlation_id: i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]),
    })
}

/// Decodes the request header and the body of a request whose key and version
/// are known to be supported. Byte fields of the body (e.g. produce records)
/// are slices of `frame`, not copies.
pub fn decode_request<T: Decodable>(
    api: ApiKey,
    version: i16,
    mut frame: Bytes,
) -> Result<(RequestHeader, T), CodecError> {
    let malformed = |e: anyhow::Error| CodecError::Malformed {
        api,
        version,
        reason: format!("{e:#}"),
    };
    let header = RequestHeader::decode(&mut frame, api.request_header_version(version))
        .map_err(malformed)?;
    let body = T::decode(&mut frame, version).map_err(malformed)?;
    Ok((header, body))
}

/// Encodes a size-prefixed response as chunks, passing the `splice` byte
/// fields (fetched records) through by reference instead of copying them.
pub fn encode_response<T: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
    splice: Vec<Bytes>,
) -> Result<Vec<Bytes>, CodecError> {
    let fail = |e: anyhow::Error| CodecError::Encode {
        api,
        version,
        reason: format!("{e:#}"),
    };
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = api.response_header_version(version);
    let size = header.compute_size(header_version).map_err(fail)?
        + body.compute_size(version).map_err(fail)?;
    let mut out = super::chunked::ChunkedBuf::new(4096, splice);
    out.put_u32(size as u32);
    header.encode(&mut out, header_version).map_err(fail)?;
    body.encode(&mut out, version).map_err(fail)?;
    Ok(out.into_chunks())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};

    use bytes::BytesMut;

    fn request_frame<T: Encodable>(api: ApiKey, version: i16, body: &T) -> Bytes {
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(42);
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, api.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    #[test]
    fn header_is_peeked_and_request_decoded() {
        let frame = request_frame(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
        let raw = peek_header(&frame).unwrap();
        assert_eq!(
            (raw.api_key, raw.api_version, raw.correlation_id),
            (18, 3, 42)
        );
        let (header, _): (_, ApiVersionsRequest) =
            decode_request(ApiKey::ApiVersions, 3, frame).unwrap();
        assert_eq!(header.correlation_id, 42);
    }

    #[test]
    fn truncated_bodies_are_errors_not_panics() {
        let frame = request_frame(ApiKey::Metadata, 12, &MetadataRequest::default());
        for cut in 0..frame.len() {
            let _ = decode_request::<MetadataRequest>(ApiKey::Metadata, 12, frame.slice(..cut));
        }
        assert!(peek_header(&frame[..7]).is_err());
    }
}
