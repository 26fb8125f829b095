//! Capture sources: pcap / pcapng files (optionally gzip-compressed) and capture streams on stdin.
//!
//! [`CaptureReader`] detects the format from the first bytes (never seeking, so pipes work),
//! then hands out one [`RawPacket`] at a time as a borrow into a reused buffer: nothing is
//! allocated per packet. Besides pcap and pcapng it reads the Windows capture formats of the
//! Exchange 2000 era, Microsoft Network Monitor and NetXRay / Windows Sniffer `.cap` files; those
//! keep their frame index at the end or wrap around, so a regular file is read with seeks and a
//! compressed file or stream is held in memory up to [`ReadLimits::window`].
//!
//! Bad input ends the stream with a one-line [`SourceError`] naming the file and the byte offset
//! (in the uncompressed stream) of the record at fault; every complete packet before it has been
//! yielded by then.

mod error;
mod gzip;
mod map;
mod netmon;
mod netxray;
mod pcap;
mod pcapng;
mod store;
mod stream;

use std::fs::File;
use std::io::{self, Read};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

pub use self::error::{SourceError, SourceErrorKind};

pub(crate) use self::error::Fault;
use self::gzip::gunzip;
pub(crate) use self::map::{MappedFile, Step as PageStep};
use self::netmon::NetmonReader;
use self::netxray::NetxrayReader;
use self::pcap::PcapReader;
use self::pcapng::PcapngReader;
use self::store::Seekable;
use self::stream::{ByteStream, CountingReader};
use crate::packet::RawPacket;

/// Largest captured length accepted for one packet (libpcap's and tshark's usual maximum);
/// a longer one is taken as a corrupt length.
pub const MAX_CAPLEN: u32 = 262_144;

/// Budgets of the readers against hostile input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadLimits {
    /// Most bytes of a NetMon or NetXRay capture held in memory when it cannot be read with
    /// seeks (gzip-compressed, stdin, a pipe); a larger one is an error naming this limit.
    pub window: usize,
    /// Interface Description Blocks kept per pcapng section; more are counted and ignored, and
    /// so are their packets.
    pub interfaces_per_section: usize,
    /// Memory-map uncompressed regular files (the default) instead of reading them like a
    /// stream; see the `map` module for what that risks (`--no-mmap`).
    pub map_files: bool,
    /// Map a mapped file's pages in ahead of the reader, and give them back behind it, on a
    /// thread of its own (`map::Pager`) instead of taking page faults on the reading thread.
    /// It pays when a core is free for it: the analysis turns it off when every core runs an
    /// analysis thread (`analyze::read_files`; README, Benchmarks).
    pub page_ahead: bool,
    /// How far behind the reader a mapped file's pages are given back: what the analysis
    /// threads may still read in place (`shard::release_lag`); 16 MiB by default.
    pub release_lag: usize,
}

/// Default of [`ReadLimits::window`]: 128 MiB.
pub const DEFAULT_WINDOW: usize = 128 << 20;
/// Default of [`ReadLimits::interfaces_per_section`].
pub const DEFAULT_INTERFACES_PER_SECTION: usize = 4096;

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            window: DEFAULT_WINDOW,
            interfaces_per_section: DEFAULT_INTERFACES_PER_SECTION,
            map_files: true,
            page_ahead: true,
            release_lag: map::RELEASE_LAG,
        }
    }
}

/// Budgets reached while reading, for the report's `limits` counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadLimitCounts {
    /// pcapng Interface Description Blocks ignored past [`ReadLimits::interfaces_per_section`].
    pub interfaces_over_cap: u64,
    /// Packets skipped because their interface was one of those.
    pub packets_on_capped_interfaces: u64,
}

impl std::ops::AddAssign for ReadLimitCounts {
    fn add_assign(&mut self, o: Self) {
        self.interfaces_over_cap = self
            .interfaces_over_cap
            .saturating_add(o.interfaces_over_cap);
        self.packets_on_capped_interfaces = self
            .packets_on_capped_interfaces
            .saturating_add(o.packets_on_capped_interfaces);
    }
}

/// The two bytes every gzip member starts with.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The container format of a capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureFormat {
    /// Legacy libpcap, microsecond timestamps.
    Pcap,
    /// Legacy libpcap, nanosecond timestamps.
    PcapNanos,
    /// pcapng.
    Pcapng,
    /// Microsoft Network Monitor 1.x / 2.x.
    NetMon,
    /// NetXRay / Windows Sniffer.
    NetXray,
}

impl CaptureFormat {
    /// A short lowercase name: `pcap`, `pcap-ns`, `pcapng`, `netmon`, `netxray`.
    pub fn as_str(self) -> &'static str {
        match self {
            CaptureFormat::Pcap => "pcap",
            CaptureFormat::PcapNanos => "pcap-ns",
            CaptureFormat::Pcapng => "pcapng",
            CaptureFormat::NetMon => "netmon",
            CaptureFormat::NetXray => "netxray",
        }
    }
}

/// Reads packets from one capture file or stream.
pub struct CaptureReader {
    name: String,
    stream: ByteStream,
    reader: Reader,
    format: CaptureFormat,
    gzip: bool,
    /// Set when the gzip stream stopped in the middle of a member.
    gzip_cut: Arc<AtomicBool>,
    warnings: Warnings,
    /// Bytes read from the file so far, and its size; `None` for streams.
    progress: Option<(Arc<AtomicU64>, u64)>,
}

/// The format-specific state; `Done` once the end or an error was reached.
enum Reader {
    Pcap(PcapReader),
    Pcapng(PcapngReader),
    NetMon(NetmonReader),
    NetXray(NetxrayReader),
    Done,
}

impl CaptureReader {
    /// Opens `path` with the default [`ReadLimits`]; `-` reads stdin.
    pub fn open(path: &str) -> Result<CaptureReader, SourceError> {
        Self::open_with(path, ReadLimits::default())
    }

    /// Opens `path`; `-` reads stdin.
    pub fn open_with(path: &str, limits: ReadLimits) -> Result<CaptureReader, SourceError> {
        if path == "-" {
            return Self::start(path, Box::new(io::stdin()), None, None, limits);
        }
        let io_error = |e| SourceError {
            file: path.to_string(),
            offset: None,
            kind: SourceErrorKind::Io(e),
        };
        let file = File::open(path).map_err(io_error)?;
        let meta = file.metadata().map_err(io_error)?;
        if meta.is_dir() {
            return Err(io_error(io::Error::other("is a directory")));
        }
        if !meta.is_file() {
            // A FIFO or device: a stream with no size.
            return Self::start(path, Box::new(file), None, None, limits);
        }
        let count = Arc::new(AtomicU64::new(0));
        // A second handle for the formats read out of order (it shares the file position,
        // which is only used by one of the two at a time).
        let seekable = file.try_clone().ok().map(|file| Seekable {
            file,
            len: meta.len(),
            progress: Arc::clone(&count),
        });
        let progress = Some((Arc::clone(&count), meta.len()));
        if limits.map_files {
            // A gzip file is decompressed from a stream of reads; anything else is read in place.
            if let Some(map) =
                map::map_file(&file, meta.len()).filter(|m| !m.starts_with(&GZIP_MAGIC))
            {
                let stream = ByteStream::mapped(
                    Arc::new(MappedFile::new(map, limits.release_lag)),
                    limits.page_ahead,
                );
                return Self::start_stream(path, stream, progress, seekable, limits);
            }
        }
        let counted = CountingReader::new(file, count);
        Self::start(path, Box::new(counted), progress, seekable, limits)
    }

    /// Reads a capture from any byte stream; `name` is used in messages.
    pub fn from_reader(
        name: &str,
        reader: Box<dyn Read + Send>,
    ) -> Result<CaptureReader, SourceError> {
        Self::from_reader_with(name, reader, ReadLimits::default())
    }

    /// Reads a capture from any byte stream with the given budgets.
    pub fn from_reader_with(
        name: &str,
        reader: Box<dyn Read + Send>,
        limits: ReadLimits,
    ) -> Result<CaptureReader, SourceError> {
        Self::start(name, reader, None, None, limits)
    }

    /// Detects the format (and gzip) from the first bytes and reads the file header.
    fn start(
        name: &str,
        reader: Box<dyn Read + Send>,
        progress: Option<(Arc<AtomicU64>, u64)>,
        seekable: Option<Seekable>,
        limits: ReadLimits,
    ) -> Result<CaptureReader, SourceError> {
        Self::start_stream(name, ByteStream::new(reader), progress, seekable, limits)
    }

    /// [`start`](Self::start) on a stream already set up.
    fn start_stream(
        name: &str,
        mut stream: ByteStream,
        progress: Option<(Arc<AtomicU64>, u64)>,
        seekable: Option<Seekable>,
        limits: ReadLimits,
    ) -> Result<CaptureReader, SourceError> {
        let cut = Arc::new(AtomicBool::new(false));
        let mut magic = peek_magic(&mut stream).map_err(|e| Fault::io(e, &stream).in_file(name))?;
        let gzip = magic.starts_with(&GZIP_MAGIC);
        if gzip {
            stream = gunzip(stream, &cut);
            magic = peek_magic(&mut stream).map_err(|e| Fault::gzip(e, 0).in_file(name))?;
            if magic.len() < 4 && cut.load(Ordering::Relaxed) {
                return Err(Fault::new(magic.len() as u64, GZIP_CUT).in_file(name));
            }
        }
        let fail = |fault: Fault| gzip_fault(fault, gzip).in_file(name);
        let seekable = if gzip { None } else { seekable };
        let warnings = Warnings {
            interfaces_per_section: limits.interfaces_per_section,
            ..Warnings::default()
        };
        let (reader, format) =
            detect(&magic, &mut stream, seekable, limits.window).map_err(fail)?;
        let mut reader = CaptureReader {
            name: name.to_string(),
            stream,
            reader,
            format,
            gzip,
            gzip_cut: cut,
            warnings,
            progress,
        };
        if let Reader::Pcapng(_) = reader.reader {
            let started = PcapngReader::start(&mut reader.stream, &mut reader.warnings);
            reader.reader = Reader::Pcapng(started.map_err(fail)?);
        }
        Ok(reader)
    }

    /// The mapped file the frames are read from (`None` when it is read as a stream).
    pub(crate) fn map(&self) -> Option<std::sync::Arc<MappedFile>> {
        self.stream.map().cloned()
    }

    /// The next packet, `Ok(None)` at the end. After an error the reader is finished.
    #[inline(always)]
    pub fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, SourceError> {
        // A pcap record that is all buffered and needs no word, in line in the read loop;
        // everything else out of line.
        if let Reader::Pcap(r) = &self.reader {
            if let Some(meta) = r.next_whole(&mut self.stream) {
                return Ok(Some(RawPacket {
                    ts: meta.ts,
                    link_type: meta.link_type,
                    data: self.stream.slice(meta.data),
                    wire_len: meta.wire_len,
                }));
            }
        }
        self.next_record()
    }

    /// [`next_packet`](Self::next_packet) for every format and every case.
    #[inline(never)]
    fn next_record(&mut self) -> Result<Option<RawPacket<'_>>, SourceError> {
        let step = match &mut self.reader {
            Reader::Pcap(r) => r.next(&mut self.stream, &mut self.warnings),
            Reader::Pcapng(r) => r.next(&mut self.stream, &mut self.warnings),
            Reader::NetMon(r) => r.next(&mut self.stream, &mut self.warnings),
            Reader::NetXray(r) => r.next(&mut self.stream, &mut self.warnings),
            Reader::Done => return Ok(None),
        };
        match step {
            Ok(Some(meta)) => {
                let data = match &self.reader {
                    Reader::NetMon(r) => r.frame_bytes(meta.data),
                    Reader::NetXray(r) => r.frame_bytes(meta.data),
                    _ => self.stream.slice(meta.data),
                };
                Ok(Some(RawPacket {
                    ts: meta.ts,
                    link_type: meta.link_type,
                    data,
                    wire_len: meta.wire_len,
                }))
            }
            Ok(None) => {
                self.reader = Reader::Done;
                if self.gzip_cut.load(Ordering::Relaxed) {
                    // The cut fell between records: no record reported it.
                    let at = self.stream.offset() + self.stream.available() as u64;
                    return Err(Fault::new(at, GZIP_CUT).in_file(&self.name));
                }
                Ok(None)
            }
            Err(fault) => {
                self.reader = Reader::Done;
                Err(gzip_fault(fault, self.gzip).in_file(&self.name))
            }
        }
    }

    /// The file name as given (`-` for stdin).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The container format.
    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// Whether the capture is gzip-compressed.
    pub fn is_gzip(&self) -> bool {
        self.gzip
    }

    /// Bytes of the (uncompressed) capture stream consumed so far. NetMon and NetXRay records are
    /// read out of order, so for them this says nothing about progress.
    pub fn offset(&self) -> u64 {
        self.stream.offset()
    }

    /// Bytes of the underlying file read so far and its total size, for progress display
    /// (compressed bytes for a gzip file); `None` for stdin and other streams.
    pub fn progress(&self) -> Option<(u64, u64)> {
        let (count, size) = self.progress.as_ref()?;
        let mut done = count.load(Ordering::Relaxed);
        if self.stream.map().is_some() {
            // A mapped file is not read by anyone: its progress is the reader's position.
            done = done.max(self.stream.offset());
        }
        Some((done, *size))
    }

    /// Whether the file is read in place from a memory map (no copy of its bytes).
    pub fn is_mapped(&self) -> bool {
        self.stream.map().is_some()
    }

    /// Things about the capture worth telling the user that did not stop reading it, one line
    /// each (e.g. drop counts recorded by the capturing tool, lengths that had to be repaired).
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.messages()
    }

    /// Budgets of [`ReadLimits`] reached so far.
    pub fn limit_counts(&self) -> ReadLimitCounts {
        self.warnings.limit_counts()
    }
}

/// Reads up to four bytes at the start of the stream without consuming them.
fn peek_magic(stream: &mut ByteStream) -> io::Result<Vec<u8>> {
    stream.fill(4)?;
    Ok(stream.peek().iter().take(4).copied().collect())
}

/// Picks the format reader for the magic at the start of `stream`.
fn detect(
    magic: &[u8],
    stream: &mut ByteStream,
    seekable: Option<Seekable>,
    window: usize,
) -> Result<(Reader, CaptureFormat), Fault> {
    let Some(&[a, b, c, d]) = magic.first_chunk::<4>() else {
        if magic.is_empty() {
            return Err(Fault::whole_file(SourceErrorKind::Empty));
        }
        let mut padded = [0; 4];
        padded.iter_mut().zip(magic).for_each(|(p, m)| *p = *m);
        return Err(Fault::whole_file(SourceErrorKind::NotACapture {
            magic: padded,
        }));
    };
    let magic = [a, b, c, d];
    Ok(if pcap::is_magic(magic) {
        let reader = PcapReader::start(stream)?;
        let nanos = reader.nanosecond();
        let format = if nanos {
            CaptureFormat::PcapNanos
        } else {
            CaptureFormat::Pcap
        };
        (Reader::Pcap(reader), format)
    } else if magic == pcapng::SHB_MAGIC {
        // The section header is read by the caller, which holds the warnings.
        (
            Reader::Pcapng(PcapngReader::default()),
            CaptureFormat::Pcapng,
        )
    } else if netmon::MAGICS.contains(&magic) {
        (
            Reader::NetMon(NetmonReader::start(stream, seekable, window)?),
            CaptureFormat::NetMon,
        )
    } else if netxray::MAGICS.contains(&magic) {
        (
            Reader::NetXray(NetxrayReader::start(stream, seekable, window)?),
            CaptureFormat::NetXray,
        )
    } else {
        return Err(Fault::whole_file(SourceErrorKind::NotACapture { magic }));
    })
}

/// The error of a gzip stream that ends in the middle of a member.
const GZIP_CUT: SourceErrorKind = SourceErrorKind::Truncated {
    what: "gzip stream",
};

/// Read errors under a gzip layer come from the decompressor.
fn gzip_fault(fault: Fault, gzip: bool) -> Fault {
    match fault.kind {
        SourceErrorKind::Io(e) if gzip => Fault {
            offset: fault.offset,
            kind: SourceErrorKind::Decompress(e),
        },
        _ => fault,
    }
}

/// Where a format reader found one packet: its captured bytes are `data` in the stream buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PacketMeta {
    pub(crate) ts: i64,
    pub(crate) link_type: u32,
    pub(crate) data: Range<usize>,
    pub(crate) wire_len: u32,
}

/// Counters of tolerated oddities, turned into messages on request.
#[derive(Clone, Debug, Default)]
pub(crate) struct Warnings {
    /// Packets whose captured length exceeded the original length.
    pub(crate) wire_len_raised: u64,
    /// Simple Packet Blocks, which carry no timestamp.
    pub(crate) spb_without_ts: u64,
    /// Packets the capturing tool reported dropped (pcapng interface statistics).
    pub(crate) capture_dropped: u64,
    /// NetMon frames that are no network packets (events, filters) or of unsupported media.
    pub(crate) frames_skipped: u64,
    /// NetMon frames skipped because their table entry or header is corrupt, and the first
    /// such problem (with its real byte offset).
    pub(crate) frames_corrupt: u64,
    pub(crate) first_corrupt: Option<String>,
    /// The pcapng interface budget per section, and what went past it.
    pub(crate) interfaces_per_section: usize,
    pub(crate) interfaces_over_cap: u64,
    pub(crate) packets_on_capped_interfaces: u64,
}

impl Warnings {
    fn limit_counts(&self) -> ReadLimitCounts {
        ReadLimitCounts {
            interfaces_over_cap: self.interfaces_over_cap,
            packets_on_capped_interfaces: self.packets_on_capped_interfaces,
        }
    }

    /// Counts a corrupt frame that was skipped, keeping the description of the first.
    pub(crate) fn corrupt_frame(&mut self, fault: Fault, file_kind: &str) {
        self.frames_corrupt = self.frames_corrupt.saturating_add(1);
        if self.first_corrupt.is_none() {
            let at = fault
                .offset
                .map(|o| format!(" at byte {o}"))
                .unwrap_or_default();
            let what = match &fault.kind {
                SourceErrorKind::Truncated { what } => format!("truncated {what}"),
                SourceErrorKind::CorruptLength { what, len } => {
                    format!("corrupt {what} length {len}")
                }
                SourceErrorKind::Malformed { what } => what.clone(),
                other => format!("{other:?}"),
            };
            self.first_corrupt = Some(format!("{file_kind}: {what}{at}"));
        }
    }

    fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.frames_corrupt > 0 {
            out.push(format!(
                "{} corrupt frame(s) skipped (the first: {})",
                self.frames_corrupt,
                self.first_corrupt.as_deref().unwrap_or("?")
            ));
        }
        if self.interfaces_over_cap > 0 {
            out.push(format!(
                "limit reached: {} pcapng interface description block(s) past {} in one \
                 section were ignored, and {} packet(s) on them skipped",
                self.interfaces_over_cap,
                self.interfaces_per_section,
                self.packets_on_capped_interfaces
            ));
        }
        if self.capture_dropped > 0 {
            out.push(format!(
                "the capture's interface statistics report {} packet(s) dropped while capturing",
                self.capture_dropped
            ));
        }
        if self.wire_len_raised > 0 {
            out.push(format!(
                "{} packet(s) had a captured length larger than the original length; \
                 the original length was raised to match",
                self.wire_len_raised
            ));
        }
        if self.frames_skipped > 0 {
            out.push(format!(
                "{} frame(s) that are not network packets, or of a media type exflow cannot \
                 decode, were skipped",
                self.frames_skipped
            ));
        }
        if self.spb_without_ts > 0 {
            out.push(format!(
                "{} simple packet block(s) carry no timestamp; each was given the time of the \
                 packet before it",
                self.spb_without_ts
            ));
        }
        out
    }
}

#[cfg(test)]
pub(crate) mod testutil;

#[cfg(test)]
mod tests;
