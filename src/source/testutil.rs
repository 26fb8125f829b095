//! Builders of small pcap and pcapng byte fixtures for the unit tests.

/// Packets as read back: (timestamp, link type, captured bytes, wire length).
pub(crate) type Packets = Vec<(i64, u32, Vec<u8>, u32)>;

/// One legacy pcap record.
pub(crate) struct PcapRec {
    pub(crate) sec: u32,
    pub(crate) frac: u32,
    pub(crate) data: Vec<u8>,
    pub(crate) orig_len: u32,
}

/// A legacy pcap file with the given byte order, resolution, link type and records, written by
/// the one pcap writer (`synth::pcap`).
pub(crate) fn pcap_file(
    big_endian: bool,
    nanos: bool,
    link_type: u32,
    recs: &[PcapRec],
) -> Vec<u8> {
    use crate::synth::pcap::{PcapWriter, TsPrecision};
    let precision = if nanos {
        TsPrecision::Nano
    } else {
        TsPrecision::Micro
    };
    let mut w = PcapWriter::with_byte_order(Vec::new(), precision, 65535, link_type, big_endian)
        .expect("writing to memory");
    for r in recs {
        w.write_record(r.sec, r.frac, &r.data, r.orig_len)
            .expect("writing to memory");
    }
    w.into_inner().expect("writing to memory")
}

/// Writes integers in one byte order.
pub(crate) struct Writer {
    pub(crate) out: Vec<u8>,
    pub(crate) big_endian: bool,
}

impl Writer {
    pub(crate) fn u16(&mut self, v: u16) {
        let b = if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.out.extend_from_slice(&b);
    }

    pub(crate) fn u32(&mut self, v: u32) {
        let b = if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.out.extend_from_slice(&b);
    }

    pub(crate) fn u64(&mut self, v: u64) {
        let b = if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.out.extend_from_slice(&b);
    }
}

/// Builds a pcapng stream block by block; each section keeps its own byte order.
pub(crate) struct Pcapng {
    pub(crate) out: Vec<u8>,
    big_endian: bool,
}

impl Pcapng {
    /// A stream starting with a section header in the given byte order.
    pub(crate) fn new(big_endian: bool) -> Self {
        let mut p = Pcapng {
            out: Vec::new(),
            big_endian,
        };
        p.section(big_endian);
        p
    }

    /// Appends one block with the given type and body (padded to 4 bytes).
    pub(crate) fn block(&mut self, block_type: u32, body: &[u8]) -> &mut Self {
        let padded = (body.len() + 3) & !3;
        let len = (12 + padded) as u32;
        let mut w = Writer {
            out: Vec::new(),
            big_endian: self.big_endian,
        };
        w.u32(block_type);
        w.u32(len);
        w.out.extend_from_slice(body);
        w.out.resize(8 + padded, 0);
        w.u32(len);
        self.out.extend_from_slice(&w.out);
        self
    }

    /// A writer for a block body in the current byte order.
    pub(crate) fn body(&self) -> Writer {
        Writer {
            out: Vec::new(),
            big_endian: self.big_endian,
        }
    }

    /// Starts a new section in the given byte order.
    pub(crate) fn section(&mut self, big_endian: bool) -> &mut Self {
        self.big_endian = big_endian;
        let mut b = self.body();
        b.u32(0x1a2b_3c4d);
        b.u16(1);
        b.u16(0);
        b.u64(u64::MAX);
        self.block(0x0a0d_0d0a, &b.out)
    }

    /// An interface description; `options` are (code, value) pairs.
    pub(crate) fn interface(
        &mut self,
        link_type: u16,
        snaplen: u32,
        options: &[(u16, &[u8])],
    ) -> &mut Self {
        let mut b = self.body();
        b.u16(link_type);
        b.u16(0);
        b.u32(snaplen);
        for (code, value) in options {
            b.u16(*code);
            b.u16(value.len() as u16);
            b.out.extend_from_slice(value);
            b.out.resize((b.out.len() + 3) & !3, 0);
        }
        if !options.is_empty() {
            b.u32(0);
        }
        self.block(1, &b.out)
    }

    /// An enhanced packet block.
    pub(crate) fn epb(&mut self, iface: u32, ts: u64, data: &[u8], orig_len: u32) -> &mut Self {
        let mut b = self.body();
        b.u32(iface);
        b.u32((ts >> 32) as u32);
        b.u32(ts as u32);
        b.u32(data.len() as u32);
        b.u32(orig_len);
        b.out.extend_from_slice(data);
        self.block(6, &b.out)
    }

    /// A simple packet block.
    pub(crate) fn spb(&mut self, data: &[u8], orig_len: u32) -> &mut Self {
        let mut b = self.body();
        b.u32(orig_len);
        b.out.extend_from_slice(data);
        self.block(3, &b.out)
    }

    /// An obsolete packet block.
    pub(crate) fn pb(&mut self, iface: u16, ts: u64, data: &[u8], orig_len: u32) -> &mut Self {
        let mut b = self.body();
        b.u16(iface);
        b.u16(0);
        b.u32((ts >> 32) as u32);
        b.u32(ts as u32);
        b.u32(data.len() as u32);
        b.u32(orig_len);
        b.out.extend_from_slice(data);
        self.block(2, &b.out)
    }

    /// An interface statistics block with `isb_ifdrop`.
    pub(crate) fn isb(&mut self, iface: u32, ifdrop: u64) -> &mut Self {
        let mut b = self.body();
        b.u32(iface);
        b.u32(0);
        b.u32(0);
        b.u16(5);
        b.u16(8);
        b.u64(ifdrop);
        b.u32(0);
        self.block(5, &b.out)
    }

    /// The bytes so far.
    pub(crate) fn bytes(&self) -> Vec<u8> {
        self.out.clone()
    }
}

/// Resident bytes of the mapping that starts at `start`, from `/proc/self/smaps`.
#[cfg(target_os = "linux")]
pub(crate) fn mapping_rss(start: usize) -> usize {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let head = format!("{start:x}-");
    let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&head));
    lines
        .find_map(|l| l.strip_prefix("Rss:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .map(|kb| kb.trim().parse::<usize>().unwrap() * 1024)
        .unwrap_or_else(|| panic!("no mapping at {start:x}"))
}

/// A directory of its own under the system's temporary directory, removed when dropped (also
/// when the test fails).
pub(crate) struct TempDir(std::path::PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("exflow-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// The path of `file` in the directory.
    pub(crate) fn join(&self, file: &str) -> std::path::PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A file `long.bin` holding `bytes` in a directory of its own (removed when the returned guard
/// is dropped, also when the test fails), opened.
#[cfg(target_os = "linux")]
pub(crate) fn long_file(name: &str, bytes: &[u8]) -> (TempDir, std::fs::File) {
    let dir = TempDir::new(name);
    let path = dir.join("long.bin");
    std::fs::write(&path, bytes).unwrap();
    (dir, std::fs::File::open(&path).unwrap())
}

#[cfg(target_os = "linux")]
pub(crate) use super::map::PAGE_AHEAD;

/// `file` (of `len` bytes) mapped for reading in order, as a regular capture file is.
#[cfg(target_os = "linux")]
pub(crate) fn mapped(file: &std::fs::File, len: usize) -> std::sync::Arc<super::MappedFile> {
    std::sync::Arc::new(super::MappedFile::new(
        super::map::map_file(file, len as u64).unwrap(),
        super::map::RELEASE_LAG,
    ))
}
