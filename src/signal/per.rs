//! Bounds-checked reader for ALIGNED PER (ITU-T X.691), the encoding of H.225 and H.245.
//!
//! The H.323 decoders walk only the paths that lead to transport addresses and skip the rest,
//! the approach of the Linux kernel's `nf_conntrack_h323_asn1.c`. This module supplies the
//! primitives: bits, constrained whole numbers, length determinants, CHOICE indices, SEQUENCE
//! preambles and extension bitmaps, open types, strings, and `skip_*` helpers. Every read checks
//! the remaining input first and returns [`PerError`] (what failed, at which bit) instead of
//! panicking.

use std::fmt;

/// Result of a PER read.
pub type Result<T> = std::result::Result<T, PerError>;

/// What went wrong in a PER read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PerErrorKind {
    /// The input ended before the value did.
    Truncated,
    /// A fragmented length determinant (16K items or more); no H.323 message we decode needs one.
    FragmentedLength,
    /// A value lies outside its constraint.
    OutOfRange,
    /// An encoding this reader does not implement.
    Unsupported,
}

impl fmt::Display for PerErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PerErrorKind::Truncated => "truncated",
            PerErrorKind::FragmentedLength => "fragmented length",
            PerErrorKind::OutOfRange => "value out of range",
            PerErrorKind::Unsupported => "unsupported encoding",
        })
    }
}

/// A PER decoding error: what failed, the bit offset in the buffer being read, and the last
/// field the decoder announced with [`PerReader::at`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("PER {kind} at bit {bit} (in {field})")]
pub struct PerError {
    pub kind: PerErrorKind,
    pub bit: usize,
    pub field: &'static str,
}

/// Size constraint of a string or SEQUENCE OF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// `SIZE (n)`.
    Fixed(u32),
    /// `SIZE (lb..ub)`.
    Range(u32, u32),
    /// No upper bound (or none below 64K): a general length determinant.
    Unbounded,
}

/// The alternative chosen by a CHOICE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// A root alternative, by index. Its value follows directly.
    Root(u32),
    /// An extension alternative, by index among the additions. Its value follows as an open type.
    Ext(u32),
}

/// The preamble of a SEQUENCE: the extension bit and the presence bitmap of the OPTIONAL root
/// components.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seq {
    /// The extension bit: extension additions follow the root components.
    pub extended: bool,
    present: u64,
    count: u32,
}

impl Seq {
    /// Whether the `i`th OPTIONAL root component (counting from 0, in order) is present.
    pub fn has(&self, i: u32) -> bool {
        i < self.count && (self.present >> (self.count - 1 - i)) & 1 == 1
    }
}

/// The presence bitmap of a SEQUENCE's extension additions. The additions follow it as open
/// types, in order, one per set bit.
#[derive(Clone, Copy, Debug)]
pub struct Extensions<'a> {
    data: &'a [u8],
    start: usize,
    count: usize,
}

impl Extensions<'_> {
    /// Number of extension additions the bitmap describes.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Whether addition `i` is present.
    pub fn has(&self, i: usize) -> bool {
        i < self.count && bit_at(self.data, self.start + i)
    }
}

fn bit_at(data: &[u8], pos: usize) -> bool {
    data.get(pos / 8)
        .is_some_and(|b| (b >> (7 - pos % 8)) & 1 == 1)
}

/// Bits needed to write `v` (0 for 0).
fn bits_for(v: u64) -> u32 {
    64 - v.leading_zeros()
}

/// A cursor over an aligned-PER encoding. `Copy`, so a decoder can look ahead cheaply.
#[derive(Clone, Copy, Debug)]
pub struct PerReader<'a> {
    data: &'a [u8],
    /// Bit offset of the next read; never beyond `data.len() * 8`.
    pos: usize,
    field: &'static str,
}

impl<'a> PerReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        PerReader {
            data,
            pos: 0,
            field: "",
        }
    }

    /// Names the field being decoded, for error messages.
    pub fn at(&mut self, field: &'static str) -> &mut Self {
        self.field = field;
        self
    }

    /// Bit offset of the next read.
    pub fn bit_pos(&self) -> usize {
        self.pos
    }

    /// Bits left to read.
    pub fn remaining_bits(&self) -> usize {
        (self.data.len() * 8).saturating_sub(self.pos)
    }

    /// The error `kind` at the current position.
    pub fn error(&self, kind: PerErrorKind) -> PerError {
        PerError {
            kind,
            bit: self.pos,
            field: self.field,
        }
    }

    fn need(&self, bits: usize) -> Result<()> {
        if bits <= self.remaining_bits() {
            Ok(())
        } else {
            Err(self.error(PerErrorKind::Truncated))
        }
    }

    /// One bit (a BOOLEAN, an extension bit, a presence bit).
    pub fn read_bit(&mut self) -> Result<bool> {
        self.need(1)?;
        let bit = bit_at(self.data, self.pos);
        self.pos += 1;
        Ok(bit)
    }

    /// A BOOLEAN.
    pub fn boolean(&mut self) -> Result<bool> {
        self.read_bit()
    }

    /// `n` bits (at most 32), most significant first.
    pub fn read_bits(&mut self, n: u32) -> Result<u32> {
        if n > 32 {
            return Err(self.error(PerErrorKind::Unsupported));
        }
        self.need(n as usize)?;
        let mut v = 0u32;
        for _ in 0..n {
            v = (v << 1) | u32::from(bit_at(self.data, self.pos));
            self.pos += 1;
        }
        Ok(v)
    }

    /// Skips `n` bits.
    pub fn skip_bits(&mut self, n: usize) -> Result<()> {
        self.need(n)?;
        self.pos += n;
        Ok(())
    }

    /// Moves to the next octet boundary (no-op when aligned).
    pub fn align(&mut self) {
        let aligned = self.pos.div_ceil(8) * 8;
        self.pos = aligned.min(self.data.len() * 8);
    }

    /// Aligns, then takes `n` whole octets.
    pub fn read_octets(&mut self, n: usize) -> Result<&'a [u8]> {
        self.align();
        let start = self.pos / 8;
        let end = start
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| self.error(PerErrorKind::Truncated))?;
        self.pos = end * 8;
        self.data
            .get(start..end)
            .ok_or_else(|| self.error(PerErrorKind::Truncated))
    }

    /// Aligns, then skips `n` whole octets.
    pub fn skip_octets(&mut self, n: usize) -> Result<()> {
        self.read_octets(n).map(|_| ())
    }

    /// A constrained whole number `lb..=ub` (X.691 10.5): a minimal bit-field for ranges up to
    /// 255, one aligned octet for 256, two for up to 64K, else a length-prefixed octet count.
    pub fn constrained(&mut self, lb: u32, ub: u32) -> Result<u32> {
        if ub < lb {
            return Err(self.error(PerErrorKind::Unsupported));
        }
        let span = u64::from(ub - lb);
        let offset = match span + 1 {
            1 => 0,
            2..=255 => u64::from(self.read_bits(bits_for(span))?),
            256 => {
                self.align();
                u64::from(self.read_bits(8)?)
            }
            257..=65536 => {
                self.align();
                u64::from(self.read_bits(16)?)
            }
            _ => {
                let max_octets = bits_for(span).div_ceil(8);
                let n = self.read_bits(bits_for(u64::from(max_octets - 1)))? + 1;
                if n > max_octets {
                    return Err(self.error(PerErrorKind::OutOfRange));
                }
                self.align();
                u64::from(self.read_bits(8 * n)?)
            }
        };
        if offset > span {
            return Err(self.error(PerErrorKind::OutOfRange));
        }
        // offset <= span <= u32::MAX - lb, so this cannot overflow.
        Ok(lb + offset as u32)
    }

    /// An unconstrained length determinant (X.691 10.9.3.5-8): aligned, one or two octets.
    pub fn length(&mut self) -> Result<usize> {
        self.align();
        let first = self.read_bits(8)?;
        if first & 0x80 == 0 {
            Ok(first as usize)
        } else if first & 0x40 == 0 {
            let second = self.read_bits(8)?;
            Ok((((first & 0x3f) << 8) | second) as usize)
        } else {
            Err(self.error(PerErrorKind::FragmentedLength))
        }
    }

    /// A length under a size constraint.
    pub fn sized_length(&mut self, size: Size) -> Result<usize> {
        match size {
            Size::Fixed(n) => Ok(n as usize),
            Size::Range(lb, ub) if ub < 65536 => Ok(self.constrained(lb, ub)? as usize),
            Size::Range(lb, _) => {
                let n = self.length()?;
                if n < lb as usize {
                    return Err(self.error(PerErrorKind::OutOfRange));
                }
                Ok(n)
            }
            Size::Unbounded => self.length(),
        }
    }

    /// A normally small non-negative whole number (X.691 10.6): CHOICE extension indices.
    pub fn normally_small(&mut self) -> Result<u32> {
        if !self.read_bit()? {
            return self.read_bits(6);
        }
        let n = self.length()?;
        if n == 0 || n > 4 {
            return Err(self.error(PerErrorKind::Unsupported));
        }
        let octets = self.read_octets(n)?;
        Ok(octets.iter().fold(0u32, |v, &b| (v << 8) | u32::from(b)))
    }

    /// A CHOICE index among `root` root alternatives (plus the extension bit if `extensible`).
    pub fn choice(&mut self, root: u32, extensible: bool) -> Result<Choice> {
        if extensible && self.read_bit()? {
            return Ok(Choice::Ext(self.normally_small()?));
        }
        if root == 0 {
            return Err(self.error(PerErrorKind::OutOfRange));
        }
        Ok(Choice::Root(self.constrained(0, root - 1)?))
    }

    /// A SEQUENCE preamble: the extension bit (if `extensible`) and `optionals` presence bits.
    pub fn sequence(&mut self, extensible: bool, optionals: u32) -> Result<Seq> {
        if optionals > 64 {
            return Err(self.error(PerErrorKind::Unsupported));
        }
        let extended = extensible && self.read_bit()?;
        let mut present = 0u64;
        for _ in 0..optionals {
            present = (present << 1) | u64::from(self.read_bit()?);
        }
        Ok(Seq {
            extended,
            present,
            count: optionals,
        })
    }

    /// The extension-addition bitmap of a SEQUENCE whose extension bit was set (X.691 19.7-8).
    pub fn extensions(&mut self) -> Result<Extensions<'a>> {
        let count = if self.read_bit()? {
            self.length()?
        } else {
            self.read_bits(6)? as usize + 1
        };
        let start = self.pos;
        self.skip_bits(count)?;
        Ok(Extensions {
            data: self.data,
            start,
            count,
        })
    }

    /// Reads an extension bitmap and skips every addition present.
    pub fn skip_extensions(&mut self) -> Result<()> {
        let ext = self.extensions()?;
        for i in 0..ext.count() {
            if ext.has(i) {
                self.skip_open_type()?;
            }
        }
        Ok(())
    }

    /// Skips the extension additions if the SEQUENCE preamble said there are some.
    pub fn finish_sequence(&mut self, seq: &Seq) -> Result<()> {
        if seq.extended {
            self.skip_extensions()?;
        }
        Ok(())
    }

    /// An open type: a length determinant and that many octets, returned for a nested reader.
    pub fn open_type(&mut self) -> Result<&'a [u8]> {
        let n = self.length()?;
        self.read_octets(n)
    }

    pub fn skip_open_type(&mut self) -> Result<()> {
        self.open_type().map(|_| ())
    }

    /// The item count of a SEQUENCE OF / SET OF.
    pub fn count(&mut self, size: Size) -> Result<usize> {
        self.sized_length(size)
    }

    /// An OCTET STRING of at least 3 octets or of variable size, as a slice. Fixed sizes of one
    /// or two octets are not octet-aligned in PER and cannot be returned as a slice: use
    /// [`PerReader::skip_octet_string`] for those.
    pub fn octet_string(&mut self, size: Size) -> Result<&'a [u8]> {
        match size {
            Size::Fixed(1 | 2) => Err(self.error(PerErrorKind::Unsupported)),
            Size::Fixed(n) => self.read_octets(n as usize),
            _ => {
                let n = self.sized_length(size)?;
                if n == 0 {
                    Ok(&[])
                } else {
                    self.read_octets(n)
                }
            }
        }
    }

    pub fn skip_octet_string(&mut self, size: Size) -> Result<()> {
        match size {
            Size::Fixed(n @ (1 | 2)) => self.skip_bits(8 * n as usize),
            _ => self.octet_string(size).map(|_| ()),
        }
    }

    /// Skips a BIT STRING.
    pub fn skip_bit_string(&mut self, size: Size) -> Result<()> {
        let (n, aligned) = match size {
            Size::Fixed(n) => (n as usize, n > 16),
            Size::Range(_, ub) => (self.sized_length(size)?, ub > 16),
            Size::Unbounded => (self.length()?, true),
        };
        if aligned && n > 0 {
            self.align();
        }
        self.skip_bits(n)
    }

    /// Skips a known-multiplier character string (IA5String, BMPString, NumericString, ...)
    /// whose characters take `char_bits` bits each in the aligned variant.
    pub fn skip_char_string(&mut self, size: Size, char_bits: u32) -> Result<()> {
        let bits = char_bits as usize;
        let (n, aligned) = match size {
            Size::Fixed(n) => (n as usize, n as usize * bits > 16),
            Size::Range(_, ub) => (self.sized_length(size)?, ub as usize * bits > 16),
            Size::Unbounded => (self.length()?, true),
        };
        if aligned && n > 0 {
            self.align();
        }
        let total = n
            .checked_mul(bits)
            .ok_or_else(|| self.error(PerErrorKind::OutOfRange))?;
        self.skip_bits(total)
    }

    /// An OBJECT IDENTIFIER's contents octets.
    pub fn object_identifier(&mut self) -> Result<&'a [u8]> {
        let n = self.length()?;
        self.read_octets(n)
    }

    pub fn skip_object_identifier(&mut self) -> Result<()> {
        self.object_identifier().map(|_| ())
    }

    /// Skips an unconstrained or semi-constrained INTEGER (length-prefixed octets).
    pub fn skip_unconstrained_integer(&mut self) -> Result<()> {
        let n = self.length()?;
        self.skip_octets(n)
    }
}

#[cfg(test)]
#[path = "per_tests.rs"]
mod tests;
