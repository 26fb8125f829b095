//! A streaming writer of classic (libpcap 2.4) capture files, little-endian, microsecond or
//! nanosecond timestamps.
//!
//! It writes straight to any [`io::Write`]; wrap files in a [`std::io::BufWriter`] (each record
//! is two small writes). That is enough for tens of millions of records a minute.

use std::io::{self, Write};

use super::Frame;
use crate::packet::Nanos;

/// `LINKTYPE_ETHERNET`.
pub const LINKTYPE_ETHERNET: u32 = 1;

/// Snap length written in the file header by default (libpcap's current maximum).
pub const DEFAULT_SNAPLEN: u32 = 262_144;

/// Resolution of the record timestamps; it picks the file's magic number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TsPrecision {
    /// Magic `0xa1b2c3d4`: the classic format every tool reads.
    #[default]
    Micro,
    /// Magic `0xa1b23c4d`: nanosecond timestamps.
    Nano,
}

impl TsPrecision {
    /// The magic number that announces this precision.
    pub fn magic(self) -> u32 {
        match self {
            TsPrecision::Micro => 0xa1b2_c3d4,
            TsPrecision::Nano => 0xa1b2_3c4d,
        }
    }
}

/// Writes a pcap file header, then one record per call.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    precision: TsPrecision,
    snaplen: u32,
    packets: u64,
    big_endian: bool,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header for Ethernet frames with the default snap length.
    pub fn new(out: W, precision: TsPrecision) -> io::Result<Self> {
        Self::with_options(out, precision, DEFAULT_SNAPLEN, LINKTYPE_ETHERNET)
    }

    /// Writes the file header. Frames longer than `snaplen` are cut to it when written (their
    /// original length is kept in the record), as a capture with `tcpdump -s` would have them.
    pub fn with_options(
        out: W,
        precision: TsPrecision,
        snaplen: u32,
        link_type: u32,
    ) -> io::Result<Self> {
        Self::with_byte_order(out, precision, snaplen, link_type, false)
    }

    /// Like [`with_options`](Self::with_options) in either byte order (readers must take both;
    /// test fixtures use this).
    pub fn with_byte_order(
        mut out: W,
        precision: TsPrecision,
        snaplen: u32,
        link_type: u32,
        big_endian: bool,
    ) -> io::Result<Self> {
        let u16b = |v: u16| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let u32b = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut header = Vec::with_capacity(24);
        header.extend_from_slice(&u32b(precision.magic()));
        header.extend_from_slice(&u16b(2));
        header.extend_from_slice(&u16b(4));
        // thiszone and sigfigs stay 0.
        header.extend_from_slice(&[0; 8]);
        header.extend_from_slice(&u32b(snaplen));
        header.extend_from_slice(&u32b(link_type));
        out.write_all(&header)?;
        Ok(PcapWriter {
            out,
            precision,
            snaplen,
            packets: 0,
            big_endian,
        })
    }

    /// Writes one record exactly as given: seconds, fraction (micro- or nanoseconds), captured
    /// bytes and original length, unchecked (fixtures of malformed files need that).
    pub fn write_record(
        &mut self,
        sec: u32,
        frac: u32,
        data: &[u8],
        orig_len: u32,
    ) -> io::Result<()> {
        let caplen = u32::try_from(data.len()).map_err(|_| invalid("frame longer than 4 GiB"))?;
        for v in [sec, frac, caplen, orig_len] {
            let b = if self.big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            self.out.write_all(&b)?;
        }
        self.out.write_all(data)?;
        self.packets += 1;
        Ok(())
    }

    /// Appends one record. `ts` must lie between 1970 and 2106 (the format's 32-bit seconds).
    pub fn write_packet(&mut self, ts: Nanos, data: &[u8]) -> io::Result<()> {
        let orig_len = u32::try_from(data.len()).map_err(|_| invalid("frame longer than 4 GiB"))?;
        self.write_packet_with_len(ts, data, orig_len)
    }

    /// Appends one record whose frame was `orig_len` bytes long on the wire (at least
    /// `data.len()`): for captures that were cut short by their snap length.
    pub fn write_packet_with_len(
        &mut self,
        ts: Nanos,
        data: &[u8],
        orig_len: u32,
    ) -> io::Result<()> {
        if ts < 0 || ts / 1_000_000_000 > i64::from(u32::MAX) {
            return Err(invalid("timestamp outside the pcap range (1970..2106)"));
        }
        let secs = (ts / 1_000_000_000) as u32;
        let nanos = (ts % 1_000_000_000) as u32;
        let frac = match self.precision {
            TsPrecision::Micro => nanos / 1_000,
            TsPrecision::Nano => nanos,
        };
        let caplen = data.len().min(self.snaplen as usize);
        let kept = data.get(..caplen).unwrap_or(data);
        self.write_record(secs, frac, kept, orig_len.max(caplen as u32))
    }

    /// Appends one [`Frame`].
    pub fn write_frame(&mut self, frame: &Frame) -> io::Result<()> {
        self.write_packet(frame.ts, &frame.data)
    }

    /// How many records have been written.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes and gives the underlying writer back.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}
