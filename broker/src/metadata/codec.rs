//! Kafka's flexible ("compact") field encoding, as used by every metadata record:
//! unsigned varints, compact strings and arrays (length + 1), tagged fields.

use bytes::BufMut;
use uuid::Uuid;

/// Why a record's bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record ends early: needed {needed} more byte(s) at position {at}")]
    UnexpectedEnd { at: usize, needed: usize },
    #[error("unsigned varint longer than 5 bytes at position {0}")]
    VarintTooLong(usize),
    #[error("string at position {0} is not valid UTF-8")]
    InvalidUtf8(usize),
    #[error("null {0} where the schema does not allow null")]
    UnexpectedNull(&'static str),
    #[error("unsupported frame version {0}")]
    FrameVersion(u32),
    #[error("unknown metadata record type {0}")]
    UnknownApiKey(u32),
    #[error("unsupported version {version} of metadata record type {api_key}")]
    UnsupportedVersion { api_key: u16, version: u32 },
    #[error("{0} trailing byte(s) after the record")]
    TrailingBytes(usize),
    #[error("tagged field {tag} has {left} unread byte(s)")]
    TaggedFieldSize { tag: u32, left: usize },
}

/// Reads flexible-encoded fields from a byte slice; every read is bounds-checked.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Fails unless every byte was consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::UnexpectedEnd {
                at: self.pos,
                needed: n - self.remaining(),
            });
        }
        let slice = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub fn uvarint(&mut self) -> Result<u32, DecodeError> {
        let start = self.pos;
        let mut value: u32 = 0;
        for shift in (0..35).step_by(7) {
            let [byte] = self.array::<1>()?;
            value |= u32::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::VarintTooLong(start))
    }

    pub fn i8(&mut self) -> Result<i8, DecodeError> {
        Ok(i8::from_be_bytes(self.array()?))
    }

    pub fn i16(&mut self) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.i8()? != 0)
    }

    pub fn uuid(&mut self) -> Result<Uuid, DecodeError> {
        Ok(Uuid::from_bytes(self.array()?))
    }

    /// A compact length: `None` for null (0), else the element count.
    fn compact_len(&mut self) -> Result<Option<usize>, DecodeError> {
        Ok(match self.uvarint()? {
            0 => None,
            n => Some(n as usize - 1),
        })
    }

    pub fn nullable_string(&mut self) -> Result<Option<String>, DecodeError> {
        let Some(len) = self.compact_len()? else {
            return Ok(None);
        };
        let at = self.pos;
        let bytes = self.take(len)?;
        let text = std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8(at))?;
        Ok(Some(text.to_string()))
    }

    pub fn string(&mut self) -> Result<String, DecodeError> {
        self.nullable_string()?
            .ok_or(DecodeError::UnexpectedNull("string"))
    }

    /// A compact array whose elements are read by `item`, each at least `min_size` bytes.
    pub fn nullable_array<T>(
        &mut self,
        min_size: usize,
        mut item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<Vec<T>>, DecodeError> {
        let Some(len) = self.compact_len()? else {
            return Ok(None);
        };
        // Check before allocating so a garbled length cannot ask for gigabytes.
        let needed = len.saturating_mul(min_size);
        if needed > self.remaining() {
            return Err(DecodeError::UnexpectedEnd {
                at: self.pos,
                needed: needed - self.remaining(),
            });
        }
        let mut out = Vec::with_capacity(len);
        for _ in 0..len {
            out.push(item(self)?);
        }
        Ok(Some(out))
    }

    pub fn array_of<T>(
        &mut self,
        min_size: usize,
        item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        self.nullable_array(min_size, item)?
            .ok_or(DecodeError::UnexpectedNull("array"))
    }

    pub fn i32_array(&mut self) -> Result<Vec<i32>, DecodeError> {
        self.array_of(4, Self::i32)
    }

    pub fn nullable_i32_array(&mut self) -> Result<Option<Vec<i32>>, DecodeError> {
        self.nullable_array(4, Self::i32)
    }

    /// Reads the tagged-field section; `known` decodes the tags it understands
    /// from a reader over exactly that field's bytes and returns false for
    /// tags it does not know, which are skipped as Kafka does.
    pub fn tagged_fields(
        &mut self,
        mut known: impl FnMut(u32, &mut Reader<'a>) -> Result<bool, DecodeError>,
    ) -> Result<(), DecodeError> {
        let count = self.uvarint()?;
        for _ in 0..count {
            let tag = self.uvarint()?;
            let size = self.uvarint()? as usize;
            let mut field = Reader::new(self.take(size)?);
            if known(tag, &mut field)? && field.remaining() != 0 {
                return Err(DecodeError::TaggedFieldSize {
                    tag,
                    left: field.remaining(),
                });
            }
        }
        Ok(())
    }
}

/// Writes flexible-encoded fields.
#[derive(Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }

    pub fn uvarint(&mut self, mut value: u32) {
        while value >= 0x80 {
            self.buf.put_u8((value as u8 & 0x7f) | 0x80);
            value >>= 7;
        }
        self.buf.put_u8(value as u8);
    }

    pub fn i8(&mut self, v: i8) {
        self.buf.put_i8(v);
    }

    pub fn i16(&mut self, v: i16) {
        self.buf.put_i16(v);
    }

    pub fn u16(&mut self, v: u16) {
        self.buf.put_u16(v);
    }

    pub fn i32(&mut self, v: i32) {
        self.buf.put_i32(v);
    }

    pub fn i64(&mut self, v: i64) {
        self.buf.put_i64(v);
    }

    pub fn bool(&mut self, v: bool) {
        self.buf.put_u8(u8::from(v));
    }

    pub fn uuid(&mut self, v: &Uuid) {
        self.buf.put_slice(v.as_bytes());
    }

    fn compact_len(&mut self, len: Option<usize>) {
        // Lengths come from in-memory values far below u32::MAX.
        self.uvarint(len.map_or(0, |n| n as u32 + 1));
    }

    pub fn nullable_string(&mut self, v: Option<&str>) {
        self.compact_len(v.map(str::len));
        if let Some(s) = v {
            self.buf.put_slice(s.as_bytes());
        }
    }

    pub fn string(&mut self, v: &str) {
        self.nullable_string(Some(v));
    }

    pub fn array_of<T>(&mut self, items: &[T], mut item: impl FnMut(&mut Self, &T)) {
        self.compact_len(Some(items.len()));
        for x in items {
            item(self, x);
        }
    }

    pub fn i32_array(&mut self, items: &[i32]) {
        self.array_of(items, |w, x| w.i32(*x));
    }

    /// Writes a tagged-field section; `fields` must be sorted by tag.
    pub fn tagged_fields(&mut self, fields: Vec<(u32, Writer)>) {
        self.uvarint(fields.len() as u32);
        for (tag, field) in fields {
            self.uvarint(tag);
            self.uvarint(field.buf.len() as u32);
            self.buf.put_slice(&field.buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_byte_boundaries() {
        for value in [0, 1, 127, 128, 16_383, 16_384, u32::MAX] {
            let mut w = Writer::default();
            w.uvarint(value);
            let bytes = w.into_inner();
            let mut r = Reader::new(&bytes);
            assert_eq!(r.uvarint().unwrap(), value);
            r.finish().unwrap();
        }
        let mut w = Writer::default();
        w.uvarint(300);
        assert_eq!(w.into_inner(), vec![0xac, 0x02]);
    }

    #[test]
    fn overlong_varint_and_huge_arrays_are_errors() {
        let bytes = [0xff; 6];
        assert_eq!(
            Reader::new(&bytes).uvarint(),
            Err(DecodeError::VarintTooLong(0))
        );
        // Claims 2^28 ints with nothing behind it.
        let bytes = [0x81, 0x80, 0x80, 0x80, 0x01];
        assert!(matches!(
            Reader::new(&bytes).i32_array(),
            Err(DecodeError::UnexpectedEnd { .. })
        ));
    }

    #[test]
    fn null_where_not_allowed_is_an_error() {
        assert_eq!(
            Reader::new(&[0]).string(),
            Err(DecodeError::UnexpectedNull("string"))
        );
        assert_eq!(Reader::new(&[0]).nullable_string(), Ok(None));
    }

    #[test]
    fn tagged_fields_skip_unknown_and_check_known_sizes() {
        let mut w = Writer::default();
        let mut known = Writer::default();
        known.i32(7);
        let mut unknown = Writer::default();
        unknown.i64(1);
        w.tagged_fields(vec![(0, known), (9, unknown)]);
        let bytes = w.into_inner();
        let mut seen = None;
        let mut r = Reader::new(&bytes);
        r.tagged_fields(|tag, f| {
            if tag == 0 {
                seen = Some(f.i32()?);
                return Ok(true);
            }
            Ok(false)
        })
        .unwrap();
        r.finish().unwrap();
        assert_eq!(seen, Some(7));
        // A known tag whose bytes are not all consumed is garbled.
        let mut r = Reader::new(&bytes);
        let err = r.tagged_fields(|_, _| Ok(true)).unwrap_err();
        assert_eq!(err, DecodeError::TaggedFieldSize { tag: 0, left: 4 });
    }
}
