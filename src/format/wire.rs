//! Just enough of the protobuf wire format to walk a message's fields without decoding them: `pprof` reads a
//! profile one top-level element at a time (each element is then decoded by `prost`), so that what a file
//! costs in memory is what it describes once interned, not a decoded copy of every repeated field first.
//!
//! Nothing here allocates: a length is checked against the bytes that remain before the slice is taken, so a
//! length field claiming gigabytes is an error at once.

/// A field's value as it sits in the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// Why a buffer is not a well-formed sequence of fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("a varint runs past the end of the data or past 10 bytes")]
    Varint,
    #[error("field {tag} claims {len} bytes where {left} remain")]
    Length { tag: u32, len: u64, left: usize },
    #[error("field {tag} has wire type {wire_type}, which profiles do not use")]
    WireType { tag: u32, wire_type: u8 },
    #[error("a field number is 0 or too large")]
    Tag,
    #[error("a fixed-width field where integers were expected")]
    NotVarint,
}

/// Reads a varint from the front of `buf`, returning it and the bytes after it.
pub fn varint(buf: &[u8]) -> Result<(u64, &[u8]), WireError> {
    let mut value = 0u64;
    for (i, &b) in buf.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((value, &buf[i + 1..]));
        }
    }
    Err(WireError::Varint)
}

/// The fields of a message, in file order: `(field number, value)`.
#[derive(Clone, Debug)]
pub struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    pub fn new(buf: &'a [u8]) -> Fields<'a> {
        Fields { rest: buf }
    }

    fn next_field(&mut self) -> Result<(u32, Value<'a>), WireError> {
        let (key, rest) = varint(self.rest)?;
        let tag = u32::try_from(key >> 3)
            .ok()
            .filter(|&t| t != 0)
            .ok_or(WireError::Tag)?;
        let wire_type = (key & 7) as u8;
        let (value, rest) = match wire_type {
            0 => {
                let (v, rest) = varint(rest)?;
                (Value::Varint(v), rest)
            }
            1 => {
                let (bytes, rest) = take(rest, 8, tag)?;
                let mut le = [0u8; 8];
                le.copy_from_slice(bytes);
                (Value::Fixed64(u64::from_le_bytes(le)), rest)
            }
            2 => {
                let (len, rest) = varint(rest)?;
                let (bytes, rest) = take(rest, len, tag)?;
                (Value::Bytes(bytes), rest)
            }
            5 => {
                let (bytes, rest) = take(rest, 4, tag)?;
                let mut le = [0u8; 4];
                le.copy_from_slice(bytes);
                (Value::Fixed32(u32::from_le_bytes(le)), rest)
            }
            // Groups (3, 4) are long deprecated and no profile writer emits them; 6 and 7 do not exist.
            _ => return Err(WireError::WireType { tag, wire_type }),
        };
        self.rest = rest;
        Ok((tag, value))
    }
}

fn take(buf: &[u8], len: u64, tag: u32) -> Result<(&[u8], &[u8]), WireError> {
    match usize::try_from(len) {
        Ok(n) if n <= buf.len() => Ok(buf.split_at(n)),
        _ => Err(WireError::Length {
            tag,
            len,
            left: buf.len(),
        }),
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Value<'a>), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let field = self.next_field();
        if field.is_err() {
            // Stop after an error: the position of the next field is unknown.
            self.rest = &[];
        }
        Some(field)
    }
}

/// The values of a repeated integer field, whether written packed (one `Bytes` of varints) or one per field.
pub fn varints(value: Value<'_>) -> impl Iterator<Item = Result<u64, WireError>> + '_ {
    let (mut single, mut packed): (Option<Result<u64, WireError>>, &[u8]) = match value {
        Value::Varint(v) => (Some(Ok(v)), &[]),
        Value::Bytes(b) => (None, b),
        Value::Fixed64(_) | Value::Fixed32(_) => (Some(Err(WireError::NotVarint)), &[]),
    };
    std::iter::from_fn(move || {
        if let Some(v) = single.take() {
            return Some(v);
        }
        if packed.is_empty() {
            return None;
        }
        match varint(packed) {
            Ok((v, rest)) => {
                packed = rest;
                Some(Ok(v))
            }
            Err(e) => {
                packed = &[];
                Some(Err(e))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_fields_and_checks_lengths() {
        // 1: varint 150; 2: bytes "hi"; 3: fixed32; 4: packed [1, 300].
        let buf = [
            0x08, 0x96, 0x01, 0x12, 0x02, b'h', b'i', 0x1d, 1, 0, 0, 0, 0x22, 0x03, 0x01, 0xac,
            0x02,
        ];
        let fields: Vec<_> = Fields::new(&buf).collect::<Result<_, _>>().expect("fields");
        assert_eq!(fields[0], (1, Value::Varint(150)));
        assert_eq!(fields[1], (2, Value::Bytes(b"hi")));
        assert_eq!(fields[2], (3, Value::Fixed32(1)));
        let packed: Vec<u64> = varints(fields[3].1)
            .collect::<Result<_, _>>()
            .expect("packed");
        assert_eq!(packed, [1, 300]);

        // A length past the end is an error before anything is sliced; so are tag 0 and groups.
        let long = [0x12, 0xff, 0xff, 0xff, 0xff, 0x0f, 0];
        assert!(matches!(
            Fields::new(&long).next(),
            Some(Err(WireError::Length { tag: 2, .. }))
        ));
        assert!(matches!(
            Fields::new(&[0x00]).next(),
            Some(Err(WireError::Tag))
        ));
        assert!(matches!(
            Fields::new(&[0x0b]).next(),
            Some(Err(WireError::WireType { .. }))
        ));
        assert_eq!(varint(&[0xff; 11]), Err(WireError::Varint));
    }
}
