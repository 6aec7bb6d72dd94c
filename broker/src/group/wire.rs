//! Big-endian primitives of Kafka's classic (non-flexible) schemas, as used by the
//! `__consumer_offsets` records and the consumer protocol.

use bytes::{BufMut, Bytes, BytesMut};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("record ends before its {0} field")]
    Truncated(&'static str),
    #[error("field {0} has a negative length")]
    NegativeLength(&'static str),
    #[error("field {0} is not UTF-8")]
    InvalidUtf8(&'static str),
}

/// Reads fields front to back; every read checks the remaining length.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(WireError::Truncated(field));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub fn i16(&mut self, field: &'static str) -> Result<i16, WireError> {
        let b = self.take(2, field)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    pub fn i32(&mut self, field: &'static str) -> Result<i32, WireError> {
        let b = self.take(4, field)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn i64(&mut self, field: &'static str) -> Result<i64, WireError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8, field)?);
        Ok(i64::from_be_bytes(a))
    }

    pub fn nullable_string(&mut self, field: &'static str) -> Result<Option<String>, WireError> {
        let len = self.i16(field)?;
        if len < 0 {
            return Ok(None);
        }
        let raw = self.take(len as usize, field)?;
        let text = std::str::from_utf8(raw).map_err(|_| WireError::InvalidUtf8(field))?;
        Ok(Some(text.to_string()))
    }

    pub fn string(&mut self, field: &'static str) -> Result<String, WireError> {
        self.nullable_string(field)?
            .ok_or(WireError::NegativeLength(field))
    }

    pub fn bytes(&mut self, field: &'static str) -> Result<Bytes, WireError> {
        let len = self.i32(field)?;
        if len < 0 {
            return Err(WireError::NegativeLength(field));
        }
        Ok(Bytes::copy_from_slice(self.take(len as usize, field)?))
    }

    /// An array length; a null array (-1) reads as empty.
    pub fn array_len(&mut self, field: &'static str) -> Result<usize, WireError> {
        Ok(self.i32(field)?.max(0) as usize)
    }
}

/// Writes a nullable string; strings longer than i16::MAX are cut by the caller's
/// validation (group ids and topics come from decoded requests, so they fit).
pub fn put_nullable_string(out: &mut BytesMut, value: Option<&str>) {
    match value {
        None => out.put_i16(-1),
        Some(s) => {
            let bytes = &s.as_bytes()[..s.len().min(i16::MAX as usize)];
            out.put_i16(bytes.len() as i16);
            out.put_slice(bytes);
        }
    }
}

pub fn put_string(out: &mut BytesMut, value: &str) {
    put_nullable_string(out, Some(value));
}

pub fn put_bytes(out: &mut BytesMut, value: &[u8]) {
    out.put_i32(value.len() as i32);
    out.put_slice(value);
}
