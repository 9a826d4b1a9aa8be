//! Kafka's primitive wire types: a bounded [`Reader`], a [`Writer`], and the [`Wire`] trait that
//! encodes one Rust type in its classic or compact (flexible-version) form.
//!
//! Owns the byte-level rules: integer widths, varints, string/bytes/array length prefixes, null
//! markers and tagged-field sections. It does not know any message layout (see `messages/`) and
//! never interprets record data.
//!
//! # Allocation bound
//!
//! The reader never trusts a length from the wire before comparing it with the bytes actually
//! left: a string or byte length must fit in what remains, and an array count must satisfy
//! `count * min_size(element) <= remaining`, checked before anything is allocated. Arrays then
//! grow as elements really decode (pre-allocation is capped at [`PREALLOC_BYTES_MAX`]), so a
//! frame that lies about a count costs at most a small fixed allocation before it is rejected.
//! The decoded value of a frame is at most a constant factor (the in-memory size of its largest
//! element type over that element's minimum wire size) larger than the frame.

use bytes::Bytes;

use super::error::DecodeError;

/// The version a value is encoded at, and whether that version of its message is flexible
/// (compact lengths, tagged fields).
///
/// Carried together because nested structures cannot know their message's flexible versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub number: i16,
    pub flexible: bool,
}

impl Version {
    /// Whether a field that exists in versions `min..=max` is present at this version.
    pub fn within(self, min: i16, max: i16) -> bool {
        min <= self.number && self.number <= max
    }
}

/// A topic id (Kafka's `uuid` type): 16 raw bytes, all zero meaning "no id".
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub struct Uuid(pub [u8; 16]);

impl std::fmt::Debug for Uuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Upper bound on the bytes reserved for an array before its elements have decoded.
pub const PREALLOC_BYTES_MAX: usize = 64 * 1024;

/// A cursor over one frame. Every read is bounds-checked; no read panics.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { rest: buf }
    }

    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Fails with [`DecodeError::TrailingBytes`] unless every byte has been consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }

    /// The next `n` bytes, borrowed from the frame.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.rest.len() {
            return Err(DecodeError::Truncated {
                needed: n,
                remaining: self.rest.len(),
            });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub fn i8(&mut self) -> Result<i8, DecodeError> {
        Ok(i8::from_be_bytes(self.array()?))
    }
    pub fn i16(&mut self) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.array()?))
    }
    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    pub fn f64(&mut self) -> Result<f64, DecodeError> {
        Ok(f64::from_be_bytes(self.array()?))
    }
    /// Any non-zero byte is true, as in Kafka's own decoder.
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.i8()? != 0)
    }
    pub fn uuid(&mut self) -> Result<Uuid, DecodeError> {
        Ok(Uuid(self.array()?))
    }

    /// An unsigned LEB128 varint of at most 5 bytes whose value fits in 32 bits.
    pub fn unsigned_varint(&mut self) -> Result<u32, DecodeError> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let b = self.array::<1>()?[0];
            // The fifth byte carries bits 28..31 only; anything above would be silently lost.
            if i == 4 && b > 0x0f {
                return Err(DecodeError::InvalidVarint);
            }
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::InvalidVarint)
    }

    /// An unsigned LEB128 varlong of at most 10 bytes whose value fits in 64 bits.
    pub fn unsigned_varlong(&mut self) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let b = self.array::<1>()?[0];
            if i == 9 && b > 0x01 {
                return Err(DecodeError::InvalidVarint);
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::InvalidVarint)
    }

    /// A zigzag-encoded signed varint (record fields use these).
    pub fn varint(&mut self) -> Result<i32, DecodeError> {
        let n = self.unsigned_varint()?;
        Ok(((n >> 1) as i32) ^ -((n & 1) as i32))
    }

    /// A zigzag-encoded signed varlong.
    pub fn varlong(&mut self) -> Result<i64, DecodeError> {
        let n = self.unsigned_varlong()?;
        Ok(((n >> 1) as i64) ^ -((n & 1) as i64))
    }

    /// A length prefix: `None` for null, else a length that fits in the bytes left.
    fn length(&mut self, flexible: bool, wide: bool) -> Result<Option<usize>, DecodeError> {
        let raw: i64 = if flexible {
            i64::from(self.unsigned_varint()?) - 1
        } else if wide {
            i64::from(self.i32()?)
        } else {
            i64::from(self.i16()?)
        };
        match raw {
            -1 => Ok(None),
            n if n < -1 => Err(DecodeError::NegativeLength(n)),
            n => {
                let len = usize::try_from(n).map_err(|_| DecodeError::NegativeLength(n))?;
                if len > self.rest.len() {
                    return Err(DecodeError::InvalidLength {
                        length: len as u64,
                        remaining: self.rest.len(),
                    });
                }
                Ok(Some(len))
            }
        }
    }

    fn str_from(&mut self, len: usize) -> Result<String, DecodeError> {
        let raw = self.take(len)?;
        std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|_| DecodeError::InvalidUtf8)
    }

    /// A string: i16 length (classic) or uvarint length+1 (compact); null is an error.
    pub fn string(&mut self, flexible: bool) -> Result<String, DecodeError> {
        self.nullable_string(flexible)?
            .ok_or(DecodeError::UnexpectedNull)
    }

    pub fn nullable_string(&mut self, flexible: bool) -> Result<Option<String>, DecodeError> {
        match self.length(flexible, false)? {
            None => Ok(None),
            Some(len) => self.str_from(len).map(Some),
        }
    }

    /// Bytes: i32 length (classic) or uvarint length+1 (compact); null is an error.
    pub fn bytes(&mut self, flexible: bool) -> Result<Bytes, DecodeError> {
        self.nullable_bytes(flexible)?
            .ok_or(DecodeError::UnexpectedNull)
    }

    pub fn nullable_bytes(&mut self, flexible: bool) -> Result<Option<Bytes>, DecodeError> {
        match self.length(flexible, true)? {
            None => Ok(None),
            Some(len) => Ok(Some(Bytes::copy_from_slice(self.take(len)?))),
        }
    }

    /// An array count (`None` for null), checked against the bytes left: `count` elements of at
    /// least `min_element_size` bytes each must fit, or the count is a lie.
    pub fn array_len(
        &mut self,
        flexible: bool,
        min_element_size: usize,
    ) -> Result<Option<usize>, DecodeError> {
        let raw: i64 = if flexible {
            i64::from(self.unsigned_varint()?) - 1
        } else {
            i64::from(self.i32()?)
        };
        match raw {
            -1 => Ok(None),
            n if n < -1 => Err(DecodeError::NegativeLength(n)),
            n => {
                let count = n as u64;
                let fits = self.rest.len() as u64 / min_element_size.max(1) as u64;
                if count > fits {
                    return Err(DecodeError::InvalidLength {
                        length: count,
                        remaining: self.rest.len(),
                    });
                }
                Ok(Some(count as usize))
            }
        }
    }

    /// Reads a tagged-field section. `on_field(tag, value)` decodes a known tag from a reader
    /// bounded to that field's bytes and returns `Ok(true)`, or returns `Ok(false)` for a tag it
    /// does not know, which is skipped. A known field must consume its bytes exactly.
    pub fn tagged_fields(
        &mut self,
        mut on_field: impl FnMut(u32, &mut Reader<'a>) -> Result<bool, DecodeError>,
    ) -> Result<(), DecodeError> {
        let count = self.unsigned_varint()?;
        // Each tagged field takes at least two bytes (tag, size), which bounds the loop.
        if count as usize > self.rest.len() / 2 {
            return Err(DecodeError::InvalidLength {
                length: u64::from(count),
                remaining: self.rest.len(),
            });
        }
        for _ in 0..count {
            let tag = self.unsigned_varint()?;
            let size = self.unsigned_varint()? as usize;
            if size > self.rest.len() {
                return Err(DecodeError::InvalidLength {
                    length: size as u64,
                    remaining: self.rest.len(),
                });
            }
            let mut field = Reader::new(self.take(size)?);
            if on_field(tag, &mut field)? {
                field.finish()?;
            }
        }
        Ok(())
    }
}

/// An append-only output buffer. Writing cannot fail.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer::default()
    }

    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Overwrites four bytes already written (a length prefix reserved before its body).
    pub fn patch_i32(&mut self, at: usize, value: i32) {
        self.buf[at..at + 4].copy_from_slice(&value.to_be_bytes());
    }

    pub fn i8(&mut self, v: i8) {
        self.raw(&v.to_be_bytes());
    }
    pub fn i16(&mut self, v: i16) {
        self.raw(&v.to_be_bytes());
    }
    pub fn i32(&mut self, v: i32) {
        self.raw(&v.to_be_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.raw(&v.to_be_bytes());
    }
    pub fn u16(&mut self, v: u16) {
        self.raw(&v.to_be_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.raw(&v.to_be_bytes());
    }
    pub fn f64(&mut self, v: f64) {
        self.raw(&v.to_be_bytes());
    }
    pub fn bool(&mut self, v: bool) {
        self.i8(i8::from(v));
    }
    pub fn uuid(&mut self, v: Uuid) {
        self.raw(&v.0);
    }

    pub fn unsigned_varint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    pub fn unsigned_varlong(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    pub fn varint(&mut self, v: i32) {
        self.unsigned_varint(((v << 1) ^ (v >> 31)) as u32);
    }

    pub fn varlong(&mut self, v: i64) {
        self.unsigned_varlong(((v << 1) ^ (v >> 63)) as u64);
    }

    /// A length prefix. Lengths beyond the prefix's range are a Sluice bug (no value we build is
    /// that large), so they are asserted, not truncated into a corrupt frame.
    fn length(&mut self, flexible: bool, wide: bool, len: Option<usize>) {
        if flexible {
            let n = len.map_or(0, |l| l + 1);
            self.unsigned_varint(u32::try_from(n).expect("compact length fits in u32"));
        } else if wide {
            self.i32(len.map_or(-1, |l| i32::try_from(l).expect("length fits in i32")));
        } else {
            self.i16(len.map_or(-1, |l| i16::try_from(l).expect("string fits in i16")));
        }
    }

    pub fn string(&mut self, flexible: bool, s: &str) {
        self.length(flexible, false, Some(s.len()));
        self.raw(s.as_bytes());
    }

    pub fn nullable_string(&mut self, flexible: bool, s: Option<&str>) {
        match s {
            Some(s) => self.string(flexible, s),
            None => self.length(flexible, false, None),
        }
    }

    pub fn bytes(&mut self, flexible: bool, b: &[u8]) {
        self.length(flexible, true, Some(b.len()));
        self.raw(b);
    }

    pub fn nullable_bytes(&mut self, flexible: bool, b: Option<&[u8]>) {
        match b {
            Some(b) => self.bytes(flexible, b),
            None => self.length(flexible, true, None),
        }
    }

    pub fn array_len(&mut self, flexible: bool, len: Option<usize>) {
        self.length(flexible, true, len);
    }

    /// Writes a tagged-field section; `fields` must be in ascending tag order, as Kafka requires.
    pub fn tagged_fields(&mut self, fields: &[(u32, Vec<u8>)]) {
        debug_assert!(fields.windows(2).all(|w| w[0].0 < w[1].0));
        self.unsigned_varint(u32::try_from(fields.len()).expect("few tagged fields"));
        for (tag, value) in fields {
            self.unsigned_varint(*tag);
            self.unsigned_varint(u32::try_from(value.len()).expect("tagged field fits in u32"));
            self.raw(value);
        }
    }
}

/// A type with a Kafka wire form. The form may depend on the version (classic or compact).
pub trait Wire: Sized {
    /// The fewest bytes any value of this type occupies at `v`; bounds array counts.
    fn min_size(v: Version) -> usize;
    fn read(r: &mut Reader<'_>, v: Version) -> Result<Self, DecodeError>;
    fn write(&self, w: &mut Writer, v: Version);
}

/// A wire type with a null marker (strings, bytes, arrays), so `Option<T>` can be encoded.
pub trait Nullable: Wire + Default {
    fn read_nullable(r: &mut Reader<'_>, v: Version) -> Result<Option<Self>, DecodeError>;
    fn write_null(w: &mut Writer, v: Version);
}

impl<T: Nullable> Wire for Option<T> {
    fn min_size(v: Version) -> usize {
        T::min_size(v)
    }
    fn read(r: &mut Reader<'_>, v: Version) -> Result<Self, DecodeError> {
        T::read_nullable(r, v)
    }
    fn write(&self, w: &mut Writer, v: Version) {
        match self {
            Some(x) => x.write(w, v),
            None => T::write_null(w, v),
        }
    }
}

/// A field that is nullable only from some version on. In older versions a `None` has no wire
/// form; the closest value (empty) is written, because a response must always be encodable.
pub trait NullableField {
    fn is_null(&self) -> bool;
    fn write_non_null(&self, w: &mut Writer, v: Version);
}

impl<T: Nullable> NullableField for Option<T> {
    fn is_null(&self) -> bool {
        self.is_none()
    }
    fn write_non_null(&self, w: &mut Writer, v: Version) {
        match self {
            Some(x) => x.write(w, v),
            None => T::default().write(w, v),
        }
    }
}

macro_rules! fixed_width {
    ($($t:ty => $read:ident, $size:expr;)*) => {$(
        impl Wire for $t {
            fn min_size(_: Version) -> usize {
                $size
            }
            fn read(r: &mut Reader<'_>, _: Version) -> Result<Self, DecodeError> {
                r.$read()
            }
            fn write(&self, w: &mut Writer, _: Version) {
                w.$read(*self)
            }
        }
    )*};
}

fixed_width! {
    i8 => i8, 1;
    i16 => i16, 2;
    i32 => i32, 4;
    i64 => i64, 8;
    u16 => u16, 2;
    u32 => u32, 4;
    f64 => f64, 8;
    bool => bool, 1;
    Uuid => uuid, 16;
}

impl Wire for String {
    fn min_size(v: Version) -> usize {
        if v.flexible {
            1
        } else {
            2
        }
    }
    fn read(r: &mut Reader<'_>, v: Version) -> Result<Self, DecodeError> {
        r.string(v.flexible)
    }
    fn write(&self, w: &mut Writer, v: Version) {
        w.string(v.flexible, self)
    }
}

impl Nullable for String {
    fn read_nullable(r: &mut Reader<'_>, v: Version) -> Result<Option<Self>, DecodeError> {
        r.nullable_string(v.flexible)
    }
    fn write_null(w: &mut Writer, v: Version) {
        w.nullable_string(v.flexible, None)
    }
}

impl Wire for Bytes {
    fn min_size(v: Version) -> usize {
        if v.flexible {
            1
        } else {
            4
        }
    }
    fn read(r: &mut Reader<'_>, v: Version) -> Result<Self, DecodeError> {
        r.bytes(v.flexible)
    }
    fn write(&self, w: &mut Writer, v: Version) {
        w.bytes(v.flexible, self)
    }
}

impl Nullable for Bytes {
    fn read_nullable(r: &mut Reader<'_>, v: Version) -> Result<Option<Self>, DecodeError> {
        r.nullable_bytes(v.flexible)
    }
    fn write_null(w: &mut Writer, v: Version) {
        w.nullable_bytes(v.flexible, None)
    }
}

fn read_elements<T: Wire>(
    r: &mut Reader<'_>,
    v: Version,
    count: usize,
) -> Result<Vec<T>, DecodeError> {
    // `count` is already bounded by the bytes left; the reservation is bounded further so that
    // a lying count costs a small allocation at most.
    let reserve = count.min(PREALLOC_BYTES_MAX / std::mem::size_of::<T>().max(1));
    let mut out = Vec::with_capacity(reserve);
    for _ in 0..count {
        out.push(T::read(r, v)?);
    }
    Ok(out)
}

impl<T: Wire> Wire for Vec<T> {
    fn min_size(v: Version) -> usize {
        if v.flexible {
            1
        } else {
            4
        }
    }
    fn read(r: &mut Reader<'_>, v: Version) -> Result<Self, DecodeError> {
        match r.array_len(v.flexible, T::min_size(v))? {
            Some(n) => read_elements(r, v, n),
            None => Err(DecodeError::UnexpectedNull),
        }
    }
    fn write(&self, w: &mut Writer, v: Version) {
        w.array_len(v.flexible, Some(self.len()));
        for x in self {
            x.write(w, v);
        }
    }
}

impl<T: Wire> Nullable for Vec<T> {
    fn read_nullable(r: &mut Reader<'_>, v: Version) -> Result<Option<Self>, DecodeError> {
        match r.array_len(v.flexible, T::min_size(v))? {
            Some(n) => read_elements(r, v, n).map(Some),
            None => Ok(None),
        }
    }
    fn write_null(w: &mut Writer, v: Version) {
        w.array_len(v.flexible, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLASSIC: Version = Version {
        number: 0,
        flexible: false,
    };
    const COMPACT: Version = Version {
        number: 0,
        flexible: true,
    };

    #[test]
    fn unsigned_varints_use_the_fewest_bytes_and_decode_back() {
        for (value, len) in [
            (0u32, 1),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (u32::MAX, 5),
        ] {
            let mut w = Writer::new();
            w.unsigned_varint(value);
            assert_eq!(w.len(), len, "{value}");
            assert_eq!(Reader::new(w.as_slice()).unsigned_varint(), Ok(value));
        }
    }

    #[test]
    fn zigzag_varints_round_trip_at_the_extremes() {
        for value in [0, -1, 1, i32::MIN, i32::MAX] {
            let mut w = Writer::new();
            w.varint(value);
            assert_eq!(Reader::new(w.as_slice()).varint(), Ok(value));
        }
        for value in [0, -1, 1, i64::MIN, i64::MAX] {
            let mut w = Writer::new();
            w.varlong(value);
            assert_eq!(Reader::new(w.as_slice()).varlong(), Ok(value));
        }
    }

    #[test]
    fn a_varint_with_six_continuation_bytes_is_rejected() {
        let bytes = [0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
        assert_eq!(
            Reader::new(&bytes).unsigned_varint(),
            Err(DecodeError::InvalidVarint)
        );
    }

    #[test]
    fn a_varint_whose_fifth_byte_overflows_32_bits_is_rejected() {
        let bytes = [0xff, 0xff, 0xff, 0xff, 0x1f];
        assert_eq!(
            Reader::new(&bytes).unsigned_varint(),
            Err(DecodeError::InvalidVarint)
        );
        let bytes = [0xff, 0xff, 0xff, 0xff, 0x0f];
        assert_eq!(Reader::new(&bytes).unsigned_varint(), Ok(u32::MAX));
    }

    #[test]
    fn a_varlong_longer_than_ten_bytes_is_rejected() {
        let bytes = [0x80; 11];
        assert_eq!(
            Reader::new(&bytes).unsigned_varlong(),
            Err(DecodeError::InvalidVarint)
        );
    }

    #[test]
    fn strings_round_trip_in_classic_and_compact_form() {
        for v in [CLASSIC, COMPACT] {
            let mut w = Writer::new();
            "héllo".to_string().write(&mut w, v);
            Some("x".to_string()).write(&mut w, v);
            None::<String>.write(&mut w, v);
            let mut r = Reader::new(w.as_slice());
            assert_eq!(String::read(&mut r, v).as_deref(), Ok("héllo"));
            assert_eq!(Option::<String>::read(&mut r, v), Ok(Some("x".into())));
            assert_eq!(Option::<String>::read(&mut r, v), Ok(None));
            assert_eq!(r.finish(), Ok(()));
        }
    }

    #[test]
    fn a_null_in_a_non_nullable_string_is_an_error() {
        assert_eq!(
            Reader::new(&[0xff, 0xff]).string(false),
            Err(DecodeError::UnexpectedNull)
        );
        assert_eq!(
            Reader::new(&[0]).string(true),
            Err(DecodeError::UnexpectedNull)
        );
    }

    #[test]
    fn a_string_length_below_minus_one_is_negative() {
        assert_eq!(
            Reader::new(&[0xff, 0xfe]).string(false),
            Err(DecodeError::NegativeLength(-2))
        );
    }

    #[test]
    fn a_string_longer_than_the_frame_is_rejected_before_reading() {
        assert_eq!(
            Reader::new(&[0x7f, 0xff, b'a']).string(false),
            Err(DecodeError::InvalidLength {
                length: 32767,
                remaining: 1
            })
        );
    }

    #[test]
    fn invalid_utf8_is_rejected() {
        assert_eq!(
            Reader::new(&[0, 2, 0xc3, 0x28]).string(false),
            Err(DecodeError::InvalidUtf8)
        );
    }

    #[test]
    fn an_array_count_of_i32_max_is_rejected_before_any_allocation() {
        let mut frame = i32::MAX.to_be_bytes().to_vec();
        frame.extend_from_slice(&[0; 16]);
        assert_eq!(
            Vec::<i32>::read(&mut Reader::new(&frame), CLASSIC),
            Err(DecodeError::InvalidLength {
                length: i32::MAX as u64,
                remaining: 16
            })
        );
    }

    #[test]
    fn a_compact_array_count_of_two_to_the_31_is_rejected_before_any_allocation() {
        let mut w = Writer::new();
        w.unsigned_varint((1u32 << 31) + 1);
        w.raw(&[1; 8]);
        assert_eq!(
            Vec::<String>::read(&mut Reader::new(w.as_slice()), COMPACT),
            Err(DecodeError::InvalidLength {
                length: 1 << 31,
                remaining: 8
            })
        );
    }

    #[test]
    fn an_array_count_is_checked_against_the_minimum_element_size() {
        // Three i64s need 24 bytes; 23 are present.
        let mut frame = 3i32.to_be_bytes().to_vec();
        frame.extend_from_slice(&[0; 23]);
        assert!(matches!(
            Vec::<i64>::read(&mut Reader::new(&frame), CLASSIC),
            Err(DecodeError::InvalidLength { length: 3, .. })
        ));
    }

    #[test]
    fn unknown_tagged_fields_are_skipped_and_known_ones_must_be_exact() {
        let mut w = Writer::new();
        w.tagged_fields(&[(0, vec![0, 0, 0, 7]), (9, vec![1, 2, 3])]);
        let mut seen = None;
        let mut r = Reader::new(w.as_slice());
        r.tagged_fields(|tag, f| {
            if tag == 0 {
                seen = Some(f.i32()?);
                return Ok(true);
            }
            Ok(false)
        })
        .unwrap();
        assert_eq!(seen, Some(7));
        assert_eq!(r.finish(), Ok(()));

        let mut r = Reader::new(w.as_slice());
        let short = r.tagged_fields(|tag, f| {
            if tag == 0 {
                f.i16()?;
                return Ok(true);
            }
            Ok(false)
        });
        assert_eq!(short, Err(DecodeError::TrailingBytes(2)));
    }

    #[test]
    fn a_tagged_field_count_larger_than_the_frame_is_rejected() {
        let mut w = Writer::new();
        w.unsigned_varint(1_000_000);
        w.raw(&[0, 0]);
        let r = Reader::new(w.as_slice()).tagged_fields(|_, _| Ok(false));
        assert!(matches!(r, Err(DecodeError::InvalidLength { .. })));
    }
}
