//! The pcapng file format: a sequence of blocks, grouped into sections that each start with a
//! Section Header Block (SHB) setting the byte order. Interface Description Blocks (IDB) give
//! each interface its link type and timestamp resolution/offset; packets come in Enhanced (EPB),
//! Simple (SPB) or obsolete Packet Blocks (PB). Interface Statistics Blocks contribute drop
//! counts; every other block type is skipped.

use super::stream::ByteStream;
use super::{Fault, PacketMeta, Warnings, MAX_CAPLEN};
use crate::bytes::read_u32;
use crate::source::SourceErrorKind;

/// The SHB block type; a palindrome, so it reads the same in both byte orders.
pub(crate) const SHB_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

const BLOCK_PB: u32 = 2;
const BLOCK_IDB: u32 = 1;
const BLOCK_SPB: u32 = 3;
const BLOCK_ISB: u32 = 5;
const BLOCK_EPB: u32 = 6;
const BLOCK_SHB: u32 = 0x0a0d_0d0a;

/// Largest block accepted, as libpcap does; anything longer is taken as a corrupt length.
const MAX_BLOCK_LEN: u32 = 16 << 20;

const OPT_END: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;
const OPT_ISB_IFDROP: u16 = 5;
const OPT_ISB_OSDROP: u16 = 7;

/// How an interface's raw 64-bit timestamps turn into nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TsScale {
    /// Units of 10^-n s with n <= 9: multiply.
    Mul(u64),
    /// Units of 10^-n s with n > 9: divide.
    Div(u128),
    /// Units of 2^-n s.
    Shift(u32),
    /// Units so small every timestamp rounds to zero nanoseconds.
    Zero,
}

impl TsScale {
    /// The default resolution when an IDB has no `if_tsresol`: microseconds.
    const MICROS: TsScale = TsScale::Mul(1_000);

    /// From the `if_tsresol` option byte.
    fn from_tsresol(r: u8) -> TsScale {
        let n = u32::from(r & 0x7f);
        if r & 0x80 != 0 {
            TsScale::Shift(n)
        } else if n <= 9 {
            TsScale::Mul(10u64.pow(9 - n))
        } else {
            10u128
                .checked_pow(n - 9)
                .map_or(TsScale::Zero, TsScale::Div)
        }
    }
}

/// What an IDB said about one interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Interface {
    link_type: u32,
    snaplen: u32,
    scale: TsScale,
    /// `if_tsoffset` in nanoseconds.
    offset_ns: i128,
    /// Latest ISB drop count (interface + OS), which is cumulative.
    dropped: u64,
}

impl Interface {
    /// A raw timestamp from a packet block, in nanoseconds since the epoch (saturating).
    #[inline]
    fn nanos(&self, hi: u32, lo: u32) -> i64 {
        let raw = (u64::from(hi) << 32) | u64::from(lo);
        let ns: i128 = match self.scale {
            TsScale::Mul(m) => i128::from(raw) * i128::from(m),
            TsScale::Div(d) => (u128::from(raw) / d) as i128,
            TsScale::Shift(n) => ((u128::from(raw) * 1_000_000_000) >> n) as i128,
            TsScale::Zero => 0,
        };
        (ns + self.offset_ns).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }
}

/// State carried from block to block: the current section's byte order and interfaces.
#[derive(Debug, Default)]
pub(crate) struct PcapngReader {
    big_endian: bool,
    interfaces: Vec<Interface>,
    /// Interface Description Blocks seen in this section, kept or not.
    section_idbs: u32,
    /// Time of the last packet, given to Simple Packet Blocks, which carry none.
    last_ts: i64,
}

/// One block's outcome.
enum Step {
    Packet(PacketMeta),
    Skipped,
    End,
}

impl PcapngReader {
    /// Reads the first Section Header Block; the caller has checked its magic.
    pub(crate) fn start(stream: &mut ByteStream, warnings: &mut Warnings) -> Result<Self, Fault> {
        let mut reader = PcapngReader::default();
        match reader.block(stream, warnings)? {
            Step::Skipped => Ok(reader),
            // The magic check means the first block is an SHB, which yields no packet.
            Step::Packet(_) | Step::End => Err(Fault::new(
                0,
                SourceErrorKind::Malformed {
                    what: "pcapng file does not start with a section header".into(),
                },
            )),
        }
    }

    /// Reads blocks up to the next packet; `Ok(None)` at a clean end of the stream.
    pub(crate) fn next(
        &mut self,
        stream: &mut ByteStream,
        warnings: &mut Warnings,
    ) -> Result<Option<PacketMeta>, Fault> {
        loop {
            match self.block(stream, warnings)? {
                Step::Packet(p) => return Ok(Some(p)),
                Step::Skipped => {}
                Step::End => return Ok(None),
            }
        }
    }

    /// Reads and handles one block.
    #[inline]
    fn block(&mut self, stream: &mut ByteStream, warnings: &mut Warnings) -> Result<Step, Fault> {
        let at = stream.offset();
        if !stream.fill(8).map_err(|e| Fault::io(e, stream))? {
            if stream.available() == 0 {
                return Ok(Step::End);
            }
            return Err(truncated(at));
        }
        if stream.peek().starts_with(&SHB_MAGIC) {
            self.big_endian = section_byte_order(stream, at)?;
        }
        let be = self.big_endian;
        let Some(h) = stream.peek().first_chunk::<8>() else {
            return Err(truncated(at));
        };
        let block_type = read_u32([h[0], h[1], h[2], h[3]], be);
        let len = read_u32([h[4], h[5], h[6], h[7]], be);
        if len < 12 || !len.is_multiple_of(4) || len > MAX_BLOCK_LEN {
            return Err(corrupt_block_len(at, len));
        }
        let len = len as usize;
        if !stream.fill(len).map_err(|e| Fault::io(e, stream))? {
            return Err(truncated(at));
        }
        let range = stream.consume(len);
        let base = range.start;
        let block = stream.slice(range);
        let trailer = u32_at(block, len - 4, be);
        if trailer as usize != len {
            return Err(Fault::new(
                at,
                SourceErrorKind::CorruptLength {
                    what: "pcapng block trailing",
                    len: trailer.into(),
                },
            ));
        }
        let body = block.get(..len - 4).unwrap_or_default();
        match block_type {
            BLOCK_EPB => self.enhanced_packet(body, base, at, warnings),
            BLOCK_SPB => self
                .simple_packet(body, base, at, warnings)
                .map(Step::Packet),
            BLOCK_PB => self.obsolete_packet(body, base, at, warnings),
            BLOCK_IDB => self.interface(body, at, warnings).map(|()| Step::Skipped),
            BLOCK_SHB => self.section(body, at).map(|()| Step::Skipped),
            BLOCK_ISB => {
                self.statistics(body, warnings);
                Ok(Step::Skipped)
            }
            _ => Ok(Step::Skipped),
        }
    }

    /// A new section: its interfaces replace the previous section's.
    fn section(&mut self, body: &[u8], at: u64) -> Result<(), Fault> {
        if body.len() < 24 {
            return Err(corrupt_block_len(at, body.len() as u32 + 4));
        }
        let major = u16_at(body, 12, self.big_endian);
        let minor = u16_at(body, 14, self.big_endian);
        if major != 1 {
            return Err(malformed(
                at,
                format!("unsupported pcapng version {major}.{minor}"),
            ));
        }
        self.interfaces.clear();
        self.section_idbs = 0;
        Ok(())
    }

    /// An Interface Description Block; past the budget of interfaces per section it is counted and
    /// forgotten (its packets are skipped and counted too).
    fn interface(&mut self, body: &[u8], at: u64, warnings: &mut Warnings) -> Result<(), Fault> {
        let be = self.big_endian;
        if body.len() < 16 {
            return Err(corrupt_block_len(at, body.len() as u32 + 4));
        }
        let mut iface = Interface {
            link_type: u16_at(body, 8, be).into(),
            snaplen: u32_at(body, 12, be),
            scale: TsScale::MICROS,
            offset_ns: 0,
            dropped: 0,
        };
        for opt in Options::new(body.get(16..).unwrap_or_default(), be) {
            let (code, value) =
                opt.map_err(|what| malformed(at, format!("interface description {what}")))?;
            match (code, value) {
                (OPT_IF_TSRESOL, &[r]) => iface.scale = TsScale::from_tsresol(r),
                (OPT_IF_TSOFFSET, &[a, b, c, d, e, f, g, h]) => {
                    let bytes = [a, b, c, d, e, f, g, h];
                    let secs = if be {
                        i64::from_be_bytes(bytes)
                    } else {
                        i64::from_le_bytes(bytes)
                    };
                    iface.offset_ns = i128::from(secs) * 1_000_000_000;
                }
                _ => {}
            }
        }
        self.section_idbs = self.section_idbs.saturating_add(1);
        if self.interfaces.len() < warnings.interfaces_per_section {
            self.interfaces.push(iface);
        } else {
            warnings.interfaces_over_cap = warnings.interfaces_over_cap.saturating_add(1);
        }
        Ok(())
    }

    /// An Interface Statistics Block: drop counters are cumulative, so add what is new.
    /// Statistics are informative only, so a malformed block is ignored rather than fatal.
    fn statistics(&mut self, body: &[u8], warnings: &mut Warnings) {
        let be = self.big_endian;
        if body.len() < 20 {
            return;
        }
        let id = u32_at(body, 8, be) as usize;
        let mut dropped = 0u64;
        for (code, value) in
            Options::new(body.get(20..).unwrap_or_default(), be).map_while(Result::ok)
        {
            if let (OPT_ISB_IFDROP | OPT_ISB_OSDROP, Some(v)) = (code, value.first_chunk::<8>()) {
                let n = if be {
                    u64::from_be_bytes(*v)
                } else {
                    u64::from_le_bytes(*v)
                };
                dropped = dropped.saturating_add(n);
            }
        }
        if let Some(iface) = self.interfaces.get_mut(id) {
            warnings.capture_dropped = warnings
                .capture_dropped
                .saturating_add(dropped.saturating_sub(iface.dropped));
            iface.dropped = iface.dropped.max(dropped);
        }
    }

    /// An Enhanced Packet Block.
    #[inline]
    fn enhanced_packet(
        &mut self,
        body: &[u8],
        base: usize,
        at: u64,
        warnings: &mut Warnings,
    ) -> Result<Step, Fault> {
        let be = self.big_endian;
        if body.len() < 28 {
            return Err(corrupt_block_len(at, body.len() as u32 + 4));
        }
        let id = u32_at(body, 8, be);
        self.packet(body, base, at, id, warnings)
    }

    /// An obsolete Packet Block: an EPB with a 16-bit interface id and a drop count.
    fn obsolete_packet(
        &mut self,
        body: &[u8],
        base: usize,
        at: u64,
        warnings: &mut Warnings,
    ) -> Result<Step, Fault> {
        if body.len() < 28 {
            return Err(corrupt_block_len(at, body.len() as u32 + 4));
        }
        let id = u16_at(body, 8, self.big_endian);
        self.packet(body, base, at, id.into(), warnings)
    }

    /// The common layout of EPB and PB: timestamp, lengths, then data at byte 28.
    #[inline]
    fn packet(
        &mut self,
        body: &[u8],
        base: usize,
        at: u64,
        id: u32,
        warnings: &mut Warnings,
    ) -> Result<Step, Fault> {
        let be = self.big_endian;
        let Some(iface) = self.interfaces.get(id as usize) else {
            if id < self.section_idbs {
                warnings.packets_on_capped_interfaces += 1;
                return Ok(Step::Skipped);
            }
            return Err(malformed(
                at,
                format!("packet for undefined interface {id}"),
            ));
        };
        let caplen = u32_at(body, 20, be);
        let orig_len = u32_at(body, 24, be);
        if caplen > MAX_CAPLEN || caplen as usize > body.len() - 28 {
            return Err(Fault::new(
                at,
                SourceErrorKind::CorruptLength {
                    what: "captured",
                    len: caplen.into(),
                },
            ));
        }
        let ts = iface.nanos(u32_at(body, 12, be), u32_at(body, 16, be));
        self.last_ts = ts;
        if orig_len < caplen {
            warnings.wire_len_raised += 1;
        }
        let start = base + 28;
        Ok(Step::Packet(PacketMeta {
            ts,
            link_type: iface.link_type,
            data: start..start + caplen as usize,
            wire_len: orig_len.max(caplen),
        }))
    }

    /// A Simple Packet Block: interface 0, no timestamp, captured length implied by the block.
    fn simple_packet(
        &mut self,
        body: &[u8],
        base: usize,
        at: u64,
        warnings: &mut Warnings,
    ) -> Result<PacketMeta, Fault> {
        let Some(iface) = self.interfaces.first() else {
            return Err(malformed(
                at,
                "simple packet block before any interface description".into(),
            ));
        };
        let orig_len = u32_at(body, 8, self.big_endian);
        let room = body.len().saturating_sub(12);
        let mut caplen = (orig_len as usize).min(room);
        if iface.snaplen != 0 {
            caplen = caplen.min(iface.snaplen as usize);
        }
        if caplen > MAX_CAPLEN as usize {
            return Err(Fault::new(
                at,
                SourceErrorKind::CorruptLength {
                    what: "captured",
                    len: caplen as u64,
                },
            ));
        }
        warnings.spb_without_ts += 1;
        let start = base + 12;
        Ok(PacketMeta {
            ts: self.last_ts,
            link_type: iface.link_type,
            data: start..start + caplen,
            wire_len: orig_len,
        })
    }
}

/// Reads the byte-order magic of the SHB at the stream position.
fn section_byte_order(stream: &mut ByteStream, at: u64) -> Result<bool, Fault> {
    if !stream.fill(12).map_err(|e| Fault::io(e, stream))? {
        return Err(truncated(at));
    }
    match stream.peek().get(8..12) {
        Some([0x1a, 0x2b, 0x3c, 0x4d]) => Ok(true),
        Some([0x4d, 0x3c, 0x2b, 0x1a]) => Ok(false),
        Some(&[a, b, c, d]) => Err(malformed(
            at,
            format!("bad pcapng byte-order magic {:02x?}", [a, b, c, d]),
        )),
        _ => Err(truncated(at)),
    }
}

/// Iterates over the options of a block (code, value), stopping at `opt_endofopt`.
struct Options<'a> {
    rest: &'a [u8],
    big_endian: bool,
}

impl<'a> Options<'a> {
    fn new(rest: &'a [u8], big_endian: bool) -> Self {
        Options { rest, big_endian }
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<(u16, &'a [u8]), &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.len() < 4 {
            return None;
        }
        let code = u16_at(self.rest, 0, self.big_endian);
        let len = usize::from(u16_at(self.rest, 2, self.big_endian));
        if code == OPT_END {
            return None;
        }
        let padded = (len + 3) & !3;
        let value = self.rest.get(4..4 + len);
        let (Some(value), Some(rest)) = (value, self.rest.get(4 + padded..)) else {
            self.rest = &[];
            return Some(Err("option overruns its block"));
        };
        self.rest = rest;
        Some(Ok((code, value)))
    }
}

/// A `u32` at `i`; 0 if out of range (callers check lengths first).
fn u32_at(b: &[u8], i: usize, be: bool) -> u32 {
    crate::bytes::u32_at(b, i, be).unwrap_or(0)
}

/// A `u16` at `i`; 0 if out of range (callers check lengths first).
fn u16_at(b: &[u8], i: usize, be: bool) -> u16 {
    crate::bytes::u16_at(b, i, be).unwrap_or(0)
}

fn truncated(at: u64) -> Fault {
    Fault::new(
        at,
        SourceErrorKind::Truncated {
            what: "pcapng block",
        },
    )
}

fn corrupt_block_len(at: u64, len: u32) -> Fault {
    Fault::new(
        at,
        SourceErrorKind::CorruptLength {
            what: "pcapng block",
            len: len.into(),
        },
    )
}

fn malformed(at: u64, what: String) -> Fault {
    Fault::new(at, SourceErrorKind::Malformed { what })
}

#[cfg(test)]
mod tests;
