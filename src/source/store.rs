//! Random access to a capture whose records must be read out of order (NetMon's frame table,
//! NetXRay's ring buffer): a regular file is read where needed from its memory map, or with seeks
//! when it is not mapped, and never held; a compressed file or a stream is held in memory, but
//! only up to a bounded window.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::stream::ByteStream;

/// A regular file opened for a capture: a second handle to seek with, and the progress counter
/// its sequential reader shares.
pub(crate) struct Seekable {
    pub(crate) file: File,
    pub(crate) len: u64,
    pub(crate) progress: Arc<AtomicU64>,
}

/// The bytes of one capture, from the stream position where its format reader started.
pub(crate) enum Store {
    File(Seekable),
    /// A mapped file, the progress counter to advance as it is read, and the bytes read since
    /// its pages were last given back.
    Mapped(Arc<super::map::MappedFile>, Arc<AtomicU64>, usize),
    Memory(Vec<u8>),
}

/// Why a [`Store`] could not be set up.
pub(crate) enum StoreError {
    Io(io::Error),
    /// A stream longer than the window; the limit in bytes.
    TooLarge(usize),
}

impl Store {
    /// Seeks in `seekable` when there is one; otherwise reads the rest of `stream`, at most
    /// `window` bytes.
    pub(crate) fn open(
        stream: &mut ByteStream,
        seekable: Option<Seekable>,
        window: usize,
    ) -> Result<Store, StoreError> {
        // Format readers only start at the beginning of an uncompressed regular file.
        if stream.offset() == 0 {
            if let Some(map) = stream.map().cloned() {
                // Read out of order from here on: nothing to page ahead of.
                stream.stop_paging();
                let progress = seekable.map(|s| s.progress).unwrap_or_default();
                return Ok(Store::Mapped(map, progress, 0));
            }
            if let Some(s) = seekable {
                return Ok(Store::File(s));
            }
        }
        match stream.take_all(window).map_err(StoreError::Io)? {
            Some(bytes) => Ok(Store::Memory(bytes)),
            None => Err(StoreError::TooLarge(window)),
        }
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> u64 {
        match self {
            Store::File(s) => s.len,
            Store::Mapped(m, ..) => m.len() as u64,
            Store::Memory(v) => v.len() as u64,
        }
    }

    /// Fills `buf` from byte `at`; `Ok(false)` when the store ends first.
    pub(crate) fn read_at(&mut self, at: u64, buf: &mut [u8]) -> io::Result<bool> {
        let Some(end) = at.checked_add(buf.len() as u64) else {
            return Ok(false);
        };
        if end > self.len() {
            return Ok(false);
        }
        match self {
            Store::Memory(v) => Ok(copy_at(v, at, buf)),
            Store::Mapped(m, progress, since) => {
                progress.fetch_max(end, Ordering::Relaxed);
                let read = copy_at(m, at, buf);
                // Records are read out of order (the frame table, a ring buffer's wrap), so
                // there is no "behind" to give back: every RELEASE_EVERY bytes read, all of the
                // file's pages are (the bytes were copied out; what is touched again comes back
                // from the page cache), and the file never counts in the resident set.
                *since = since.saturating_add(buf.len());
                if *since >= super::map::RELEASE_EVERY {
                    m.release_all();
                    *since = 0;
                }
                Ok(read)
            }
            Store::File(s) => {
                s.file.seek(SeekFrom::Start(at))?;
                match s.file.read_exact(buf) {
                    Ok(()) => {
                        s.progress.fetch_max(end, Ordering::Relaxed);
                        Ok(true)
                    }
                    // The file shrank since it was opened.
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
                    Err(e) => Err(e),
                }
            }
        }
    }
}

/// Fills `buf` from `bytes[at..]`; false when that runs past the end.
fn copy_at(bytes: &[u8], at: u64, buf: &mut [u8]) -> bool {
    let src = usize::try_from(at)
        .ok()
        .and_then(|a| bytes.get(a..a.checked_add(buf.len())?));
    match src {
        Some(src) => {
            buf.copy_from_slice(src);
            true
        }
        None => false,
    }
}
