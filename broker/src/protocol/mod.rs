//! Kafka wire framing and the request/response codec glue around the
//! `kafka-protocol` message types. Knows no API semantics.

pub mod chunked;
pub mod codec;
pub mod frame;
pub mod versions;

pub use codec::{decode_request, encode_response, peek_header, CodecError, RawHeader};
pub use frame::{read_frame, FrameError};
pub use versions::ApiVersionTable;
