//! gzip-compressed captures: the decompressor runs on its own thread, one chunk ahead of the
//! format reader, and hands over its output through a bounded channel of recycled buffers (so
//! at most [`CHUNKS`] × [`CHUNK`] bytes are in flight, and nothing is allocated per chunk).

use std::io::{self, BufReader, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread;

use super::stream::ByteStream;

/// Buffer between a compressed file and its decompressor.
const GZIP_BUFFER: usize = 256 << 10;

/// Bytes of decompressed output per chunk handed over.
pub(crate) const CHUNK: usize = 1 << 20;

/// Chunks in flight: one being filled, one queued, one being read.
pub(crate) const CHUNKS: usize = 3;

/// Puts a gzip decompressor in front of `stream`, keeping the bytes it already buffered; it
/// runs on its own thread. `cut` is set when the stream stops in the middle of a member.
pub(crate) fn gunzip(stream: ByteStream, cut: &Arc<AtomicBool>) -> ByteStream {
    let (prefix, inner) = stream.into_parts();
    let compressed = io::Cursor::new(prefix).chain(inner);
    let decoder =
        flate2::bufread::MultiGzDecoder::new(BufReader::with_capacity(GZIP_BUFFER, compressed));
    let decoder = CutGzip {
        inner: decoder,
        cut: Arc::clone(cut),
    };
    match Prefetch::spawn(Box::new(decoder)) {
        Ok(p) => ByteStream::new(Box::new(p)),
        // No thread to be had: decompress on this one.
        Err(decoder) => ByteStream::new(decoder),
    }
}

/// Makes a gzip stream that stops in the middle of a member end like an uncompressed file cut at
/// the same place, so the format reader reports the cut record at its own offset; `cut` records
/// that it happened, for when the cut falls between records.
struct CutGzip<R> {
    inner: R,
    cut: Arc<AtomicBool>,
}

impl<R: Read> Read for CutGzip<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                self.cut.store(true, Ordering::Relaxed);
                Ok(0)
            }
            other => other,
        }
    }
}

/// Reads a byte stream on a thread of its own, [`CHUNK`] bytes ahead. The bytes and a read
/// error arrive in the order the inner reader produced them, so offsets in messages do not
/// change; the end of the stream is the thread hanging up. Dropping this ends the thread at its
/// next hand-over.
pub(crate) struct Prefetch {
    full: Receiver<io::Result<Vec<u8>>>,
    empty: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    at: usize,
}

impl Prefetch {
    /// Starts the thread; gives `inner` back if it cannot be started.
    pub(crate) fn spawn(inner: Box<dyn Read + Send>) -> Result<Prefetch, Box<dyn Read + Send>> {
        let (full_tx, full) = mpsc::sync_channel(CHUNKS);
        let (empty, empty_rx) = mpsc::sync_channel(CHUNKS);
        for _ in 0..CHUNKS {
            let _ = empty.send(Vec::with_capacity(CHUNK));
        }
        // The thread takes `inner` only once it runs; until then it waits in this slot.
        let slot = Arc::new(std::sync::Mutex::new(Some(inner)));
        let theirs = Arc::clone(&slot);
        let spawned = thread::Builder::new()
            .name("exflow-gunzip".into())
            .spawn(move || {
                let inner = theirs.lock().ok().and_then(|mut s| s.take());
                if let Some(inner) = inner {
                    produce(inner, &full_tx, &empty_rx);
                }
            });
        match spawned {
            Ok(_) => Ok(Prefetch {
                full,
                empty,
                current: Vec::new(),
                at: 0,
            }),
            Err(_) => match slot.lock().ok().and_then(|mut s| s.take()) {
                Some(inner) => Err(inner),
                None => Err(Box::new(io::empty())),
            },
        }
    }
}

/// The thread's loop: fill a recycled buffer, hand it over, until the end or an error.
fn produce(
    mut inner: Box<dyn Read + Send>,
    full: &SyncSender<io::Result<Vec<u8>>>,
    empty: &Receiver<Vec<u8>>,
) {
    loop {
        let Ok(mut buf) = empty.recv() else { return };
        buf.resize(CHUNK, 0);
        let mut filled = 0;
        let mut error = None;
        let mut ended = false;
        while filled < CHUNK {
            match inner.read(buf.get_mut(filled..).unwrap_or_default()) {
                Ok(0) => {
                    ended = true;
                    break;
                }
                Ok(k) => filled = (filled + k).min(CHUNK),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        buf.truncate(filled);
        if filled > 0 && full.send(Ok(buf)).is_err() {
            return;
        }
        if let Some(e) = error {
            let _ = full.send(Err(e));
            return;
        }
        if ended {
            return;
        }
    }
}

impl Read for Prefetch {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.at >= self.current.len() {
            let used = std::mem::take(&mut self.current);
            if used.capacity() > 0 {
                // The thread may have ended; then the buffer is simply dropped.
                let _ = self.empty.try_send(used);
            }
            self.at = 0;
            match self.full.recv() {
                Ok(Ok(chunk)) => self.current = chunk,
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let rest = self.current.get(self.at..).unwrap_or_default();
        let n = rest.len().min(out.len());
        if let (Some(dst), Some(src)) = (out.get_mut(..n), rest.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Yields `data`, then an error.
    struct Failing {
        data: io::Cursor<Vec<u8>>,
    }

    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.data.read(buf)? {
                0 => Err(io::Error::other("boom")),
                n => Ok(n),
            }
        }
    }

    #[test]
    fn hands_over_every_byte_in_order_then_the_end() {
        let data: Vec<u8> = (0..(CHUNK * 5 + 123)).map(|i| (i % 251) as u8).collect();
        let mut p = Prefetch::spawn(Box::new(io::Cursor::new(data.clone())))
            .ok()
            .unwrap();
        let mut got = Vec::new();
        p.read_to_end(&mut got).unwrap();
        assert_eq!(got, data);
        assert_eq!(p.read(&mut [0; 8]).unwrap(), 0);
    }

    #[test]
    fn the_bytes_before_an_error_come_first() {
        let data = vec![9u8; CHUNK + 10];
        let mut p = Prefetch::spawn(Box::new(Failing {
            data: io::Cursor::new(data),
        }))
        .ok()
        .unwrap();
        let mut got = vec![0u8; CHUNK + 10];
        p.read_exact(&mut got).unwrap();
        assert!(got.iter().all(|&b| b == 9));
        assert_eq!(p.read(&mut [0; 8]).unwrap_err().to_string(), "boom");
    }

    #[test]
    fn dropping_the_reader_ends_the_thread() {
        let p = Prefetch::spawn(Box::new(io::repeat(1))).ok().unwrap();
        drop(p);
    }
}
