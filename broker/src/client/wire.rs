//! Request frames out, response frames in: the client's half of the codec
//! whose server half is `protocol::codec`.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};

use super::ClientError;

/// A size-prefixed request frame: header (v1 or v2, as the API's flexible
/// versions require) then the body.
pub fn encode_request<R: Request>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &StrBytes,
    request: &R,
) -> Result<Bytes, ClientError> {
    let fail = |e: anyhow::Error| ClientError::Encode {
        api,
        version,
        reason: format!("{e:#}"),
    };
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(client_id.clone()));
    let header_version = api.request_header_version(version);
    let size = header.compute_size(header_version).map_err(fail)?
        + request.compute_size(version).map_err(fail)?;
    let size = u32::try_from(size).map_err(|_| fail(anyhow::anyhow!("{size} bytes")))?;
    let mut buf = BytesMut::with_capacity(4 + size as usize);
    buf.put_u32(size);
    header.encode(&mut buf, header_version).map_err(fail)?;
    request.encode(&mut buf, version).map_err(fail)?;
    Ok(buf.freeze())
}

/// The correlation id a response frame starts with.
pub fn peek_correlation_id(frame: &[u8]) -> Option<i32> {
    let bytes: [u8; 4] = frame.get(..4)?.try_into().ok()?;
    Some(i32::from_be_bytes(bytes))
}

/// Decodes a response frame (size prefix already removed) of `api` at `version`.
pub fn decode_response<T: Decodable>(
    addr: &str,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    mut frame: Bytes,
) -> Result<T, ClientError> {
    let malformed = |reason: String| ClientError::Malformed {
        addr: addr.to_string(),
        api,
        version,
        reason,
    };
    let header = ResponseHeader::decode(&mut frame, api.response_header_version(version))
        .map_err(|e| malformed(format!("{e:#}")))?;
    if header.correlation_id != correlation_id {
        return Err(malformed(format!(
            "correlation id {} answers a request sent as {correlation_id}",
            header.correlation_id
        )));
    }
    T::decode(&mut frame, version).map_err(|e| malformed(format!("{e:#}")))
}
