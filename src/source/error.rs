//! The error type of capture sources: what went wrong, in which file, at which byte.

use std::fmt;
use std::io;

use super::stream::ByteStream;

/// What went wrong reading a capture, with the file and byte offset it happened at.
#[derive(Debug)]
pub struct SourceError {
    /// The file name as the user gave it (`-` for stdin).
    pub file: String,
    /// Byte offset in the (uncompressed) capture stream where the problem was found.
    pub offset: Option<u64>,
    /// What the problem is.
    pub kind: SourceErrorKind,
}

/// The kinds of [`SourceError`].
#[derive(Debug)]
pub enum SourceErrorKind {
    /// The file could not be opened or read.
    Io(std::io::Error),
    /// The file holds no bytes at all (after decompression, for gzip).
    Empty,
    /// The first four bytes are no magic of a known capture format.
    NotACapture {
        /// The first four bytes (zero-padded when the file is shorter).
        magic: [u8; 4],
    },
    /// The stream ended inside the named structure.
    Truncated {
        /// The structure cut short, e.g. `packet record`.
        what: &'static str,
    },
    /// A length field holds an impossible value.
    CorruptLength {
        /// Which length, e.g. `captured` or `pcapng block`.
        what: &'static str,
        /// The value found.
        len: u64,
    },
    /// Any other structural problem, described in full.
    Malformed {
        /// The description.
        what: String,
    },
    /// The gzip compression layer is corrupt (a gzip stream cut short is `Truncated`).
    Decompress(std::io::Error),
    /// A capture that must be held in memory (NetMon or NetXRay, compressed or from a stream)
    /// is larger than the window (`--stream-window`).
    WindowExceeded {
        /// `NetMon` or `NetXRay`.
        format: &'static str,
        /// The window in bytes.
        limit: usize,
    },
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // stdin is named as the report's header names it.
        let file = if self.file == "-" {
            "(stdin)"
        } else {
            &self.file
        };
        write!(f, "{file}: ")?;
        match &self.kind {
            SourceErrorKind::Io(e) => write!(f, "{e}")?,
            SourceErrorKind::Empty => write!(f, "empty file")?,
            SourceErrorKind::NotACapture { magic } => {
                write!(
                    f,
                    "not a pcap, pcapng, NetMon or Sniffer capture (starts with"
                )?;
                for b in magic.iter() {
                    write!(f, " {b:02x}")?;
                }
                let text: String = magic
                    .iter()
                    .map(|&b| {
                        if b.is_ascii_graphic() || b == b' ' {
                            char::from(b)
                        } else {
                            '.'
                        }
                    })
                    .collect();
                write!(f, ", \"{text}\")")?
            }
            SourceErrorKind::Truncated { what } => write!(f, "truncated {what}")?,
            SourceErrorKind::CorruptLength { what, len } => {
                write!(f, "corrupt {what} length {len}")?
            }
            SourceErrorKind::Malformed { what } => write!(f, "{what}")?,
            SourceErrorKind::Decompress(e) => write!(f, "corrupt gzip data ({e})")?,
            SourceErrorKind::WindowExceeded { format, limit } => write!(
                f,
                "limit reached: a compressed or streamed {format} capture is read into memory, \
                 and this one is larger than the {} MiB window (--stream-window); \
                 decompress it to a file first",
                limit >> 20
            )?,
        }
        if let Some(off) = self.offset {
            write!(f, " at byte {off}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SourceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            SourceErrorKind::Io(e) | SourceErrorKind::Decompress(e) => Some(e),
            _ => None,
        }
    }
}

/// A problem found by a format reader: a [`SourceError`] without the file name.
#[derive(Debug)]
pub(crate) struct Fault {
    pub(crate) offset: Option<u64>,
    pub(crate) kind: SourceErrorKind,
}

impl Fault {
    /// A problem with the record that starts at stream offset `at`.
    pub(crate) fn new(at: u64, kind: SourceErrorKind) -> Self {
        Fault {
            offset: Some(at),
            kind,
        }
    }

    /// The [`SourceError`] for this problem in `file`.
    pub(crate) fn in_file(self, file: &str) -> SourceError {
        SourceError {
            file: file.to_string(),
            offset: self.offset,
            kind: self.kind,
        }
    }

    /// A problem with the file as a whole, at no particular offset.
    pub(crate) fn whole_file(kind: SourceErrorKind) -> Self {
        Fault { offset: None, kind }
    }

    /// A decompression error at uncompressed stream offset `at`.
    pub(crate) fn gzip(e: io::Error, at: u64) -> Self {
        Fault {
            offset: Some(at),
            kind: SourceErrorKind::Decompress(e),
        }
    }

    /// A read error, at the offset of the first byte that could not be read.
    pub(crate) fn io(e: io::Error, stream: &ByteStream) -> Self {
        Fault {
            offset: Some(stream.offset() + stream.available() as u64),
            kind: SourceErrorKind::Io(e),
        }
    }
}
