//! A forward-only byte stream that knows the offset of every byte it hands out.
//!
//! The capture readers ask for "at least `n` bytes at the current position" and get a borrow:
//! into the memory map of a regular file (no copy at all), or into one reused buffer filled by
//! large reads (1 MiB) from a pipe, stdin or a decompressor. Nothing is allocated per record and
//! the stream never seeks, so pipes and stdin work the same as files (formats read out of order
//! go through `store`).

use std::io::{self, Read};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::map::{MappedFile, Pager, PAGE_STEP};

/// Size of the reused read buffer; it only grows when one record is larger than this.
pub(crate) const BUFFER_SIZE: usize = 1 << 20;

/// Where a [`ByteStream`]'s bytes live.
enum Bytes {
    /// A reused buffer filled from `ByteStream::inner`.
    Owned(Vec<u8>),
    /// The whole file, mapped: every byte is available from the start.
    Mapped(Arc<MappedFile>),
}

impl Bytes {
    #[inline(always)]
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Owned(v) => v,
            Bytes::Mapped(m) => m,
        }
    }
}

/// Buffered reader over any byte stream or a mapped file, tracking the stream offset of its
/// position.
pub(crate) struct ByteStream {
    inner: Box<dyn Read + Send>,
    buf: Bytes,
    /// Start of the unconsumed bytes in `buf`.
    pos: usize,
    /// End of the valid bytes in `buf`.
    end: usize,
    /// Stream offset of `buf[pos]`.
    offset: u64,
    eof: bool,
    /// Mapped streams: the position at which to tell the file's paging where the reader is.
    release_at: usize,
    /// Mapped streams: the thread that maps pages in ahead and gives them back behind.
    pager: Option<Pager>,
}

impl ByteStream {
    /// Wraps `inner`; nothing is read yet.
    pub(crate) fn new(inner: Box<dyn Read + Send>) -> Self {
        ByteStream {
            inner,
            buf: Bytes::Owned(vec![0; BUFFER_SIZE]),
            pos: 0,
            end: 0,
            offset: 0,
            eof: false,
            release_at: usize::MAX,
            pager: None,
        }
    }

    /// A stream over a mapped file: every byte is available at once and none is copied.
    /// With `page_ahead`, a pager thread maps its pages in ahead of the reader and gives them
    /// back behind it; without, the analysis workers do when they wait, or else the reader.
    pub(crate) fn mapped(map: Arc<MappedFile>, page_ahead: bool) -> Self {
        let end = map.len();
        let pager = page_ahead.then(|| Pager::start(Arc::clone(&map))).flatten();
        ByteStream {
            inner: Box::new(io::empty()),
            buf: Bytes::Mapped(map),
            pos: 0,
            end,
            offset: 0,
            eof: true,
            release_at: PAGE_STEP,
            pager,
        }
    }

    /// Ends the pager thread, if there is one: the format reader reads the map out of order
    /// (`store.rs`), so there is no read position to page ahead of.
    pub(crate) fn stop_paging(&mut self) {
        self.pager = None;
    }

    /// The map this stream reads, if it reads one.
    pub(crate) fn map(&self) -> Option<&Arc<MappedFile>> {
        match &self.buf {
            Bytes::Mapped(m) => Some(m),
            Bytes::Owned(_) => None,
        }
    }

    /// Stream offset of the next unconsumed byte.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Number of bytes buffered and not yet consumed.
    pub(crate) fn available(&self) -> usize {
        self.end - self.pos
    }

    /// The unconsumed buffered bytes.
    #[inline]
    pub(crate) fn peek(&self) -> &[u8] {
        self.buf.as_slice().get(self.pos..self.end).unwrap_or(&[])
    }

    /// Makes at least `n` bytes available at the current position, blocking on the underlying
    /// reader as needed. Returns `Ok(false)` when the stream ends first (whatever was read stays
    /// available).
    pub(crate) fn fill(&mut self, n: usize) -> io::Result<bool> {
        if self.available() >= n {
            return Ok(true);
        }
        self.refill(n)
    }

    /// The slow half of [`fill`](Self::fill), kept out of line so the fast path inlines.
    #[cold]
    #[inline(never)]
    fn refill(&mut self, n: usize) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        let Bytes::Owned(buf) = &mut self.buf else {
            return Ok(false);
        };
        // What is left over is less than one record, so moving it to the front is cheap and
        // leaves the whole buffer free for one large read.
        buf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
        if buf.len() < n {
            buf.resize(n.next_power_of_two(), 0);
        }
        while self.end < n {
            let free = buf.get_mut(self.end..).unwrap_or_default();
            match self.inner.read(free) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(k) => self.end += k.min(free_len(buf, self.end)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Reads the rest of the stream, for formats that must be read out of order, and hands it
    /// over (the stream is empty afterwards). `Ok(None)` if it holds more than `limit` bytes: then
    /// at most `limit` + 1 bytes were ever held.
    pub(crate) fn take_all(&mut self, limit: usize) -> io::Result<Option<Vec<u8>>> {
        self.own();
        let Bytes::Owned(buf) = &mut self.buf else {
            return Ok(None);
        };
        buf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
        let cap = limit.saturating_add(1);
        while !self.eof && self.end <= limit {
            if self.end == buf.len() {
                let grown = buf.len().saturating_mul(2).clamp(1, cap);
                buf.resize(grown, 0);
            }
            let free = buf.get_mut(self.end..).unwrap_or_default();
            match self.inner.read(free) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k.min(free_len(buf, self.end)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.end > limit {
            return Ok(None);
        }
        let mut all = std::mem::take(buf);
        all.truncate(self.end);
        self.offset += self.end as u64;
        self.end = 0;
        Ok(Some(all))
    }

    /// Consumes `n` available bytes and returns their position in the buffer, for
    /// [`slice`](Self::slice). The caller must have made them available with `fill`.
    pub(crate) fn consume(&mut self, n: usize) -> Range<usize> {
        let n = n.min(self.available());
        let start = self.pos;
        if start >= self.release_at {
            self.release(start);
        }
        self.pos += n;
        self.offset += n as u64;
        // The next record's header: its cache line loads while this record is analysed (the
        // hardware prefetcher does not follow records across pages; measured, README).
        if let Some(b) = self.buf.as_slice().get(self.pos) {
            crate::bytes::prefetch(b);
        }
        start..self.pos
    }

    /// The record at the current position when all of it is buffered (every record of a
    /// mapped file but one cut short at its end): what `read_header` reads from its `H`-byte
    /// header, and the range of the record's body (as long as `read_header` says) after it,
    /// consumed. `None`, with nothing consumed, when the record is not all there or
    /// `read_header` declines it: the format's reader then takes the
    /// careful path (refills, truncation and corruption faults, warnings). The common case in
    /// one look at the buffer: the careful path looked three times and asked twice whether
    /// enough was buffered (a third of the instructions of reading a record).
    #[inline(always)]
    pub(crate) fn whole_record<const H: usize, T>(
        &mut self,
        read_header: impl FnOnce(&[u8; H]) -> Option<(usize, T)>,
    ) -> Option<(T, Range<usize>)> {
        let buf = self.buf.as_slice();
        let rest = buf.get(self.pos..self.end)?;
        let (body_len, header) = read_header(rest.first_chunk::<H>()?)?;
        let total = H.checked_add(body_len)?;
        if total > rest.len() {
            return None;
        }
        let start = self.pos;
        let end = start + total;
        // The next record's header: its cache line loads while this record is analysed (the
        // hardware prefetcher does not follow records across pages; measured, README).
        if let Some(b) = buf.get(end) {
            crate::bytes::prefetch(b);
        }
        if start >= self.release_at {
            self.release(start);
        }
        self.pos = end;
        self.offset += total as u64;
        Some((header, start + H..end))
    }

    /// Tells the mapped file's paging that the reader is at `at` (it gives back the pages its
    /// lag behind, once the workers the frames went to are done with them) and wakes the pager.
    #[cold]
    #[inline(never)]
    fn release(&mut self, at: usize) {
        if let Bytes::Mapped(m) = &self.buf {
            m.reader_at(at);
        }
        if let Some(p) = &self.pager {
            p.wake();
        }
        self.release_at = at.saturating_add(PAGE_STEP);
    }

    /// Bytes previously returned by [`consume`](Self::consume); valid until the next `fill`.
    #[inline]
    pub(crate) fn slice(&self, range: Range<usize>) -> &[u8] {
        self.buf.as_slice().get(range).unwrap_or(&[])
    }

    /// Takes out the buffered, unconsumed bytes and the reader, to put a decompressor in front.
    pub(crate) fn into_parts(mut self) -> (Vec<u8>, Box<dyn Read + Send>) {
        self.own();
        let Bytes::Owned(mut buf) = self.buf else {
            return (Vec::new(), self.inner);
        };
        buf.truncate(self.end);
        buf.drain(..self.pos);
        (buf, self.inner)
    }

    /// Turns a mapped stream into a buffered one holding the same unconsumed bytes (the rare
    /// paths that need to own them; the hot path never does).
    fn own(&mut self) {
        if let Bytes::Mapped(m) = &self.buf {
            let rest = m.get(self.pos..self.end).unwrap_or_default().to_vec();
            self.end = rest.len();
            self.pos = 0;
            self.buf = Bytes::Owned(rest);
            self.pager = None;
        }
    }
}

/// Room left in `buf` after `end` (guards against a reader reporting more than it was given).
fn free_len(buf: &[u8], end: usize) -> usize {
    buf.len().saturating_sub(end)
}

/// Counts the bytes read from a file, for progress display from another thread.
pub(crate) struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> CountingReader<R> {
    /// Wraps `inner`; `count` is increased by every successful read.
    pub(crate) fn new(inner: R, count: Arc<AtomicU64>) -> Self {
        CountingReader { inner, count }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out its data a few bytes per read, like a slow pipe.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        step: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    #[test]
    fn fill_collects_short_reads_and_tracks_offsets() {
        let data: Vec<u8> = (0..=255).collect();
        let mut s = ByteStream::new(Box::new(Trickle {
            data,
            at: 0,
            step: 3,
        }));
        assert!(s.fill(10).unwrap());
        let r = s.consume(10);
        assert_eq!(s.slice(r), &(0..10).collect::<Vec<u8>>()[..]);
        assert_eq!(s.offset(), 10);
        assert!(s.fill(246).unwrap());
        assert!(!s.fill(247).unwrap());
        assert_eq!(s.available(), 246);
        assert_eq!(s.peek()[0], 10);
    }

    #[test]
    fn grows_for_records_larger_than_the_buffer() {
        let data = vec![7u8; BUFFER_SIZE * 2 + 5];
        let mut s = ByteStream::new(Box::new(io::Cursor::new(data)));
        assert!(s.fill(3).unwrap());
        s.consume(3);
        assert!(s.fill(BUFFER_SIZE * 2 + 2).unwrap());
        let r = s.consume(BUFFER_SIZE * 2 + 2);
        assert_eq!(s.slice(r).len(), BUFFER_SIZE * 2 + 2);
        assert!(!s.fill(1).unwrap());
    }

    #[test]
    fn take_all_keeps_unconsumed_bytes_and_stops_at_the_limit() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| i as u8).collect();
        let mut s = ByteStream::new(Box::new(Trickle {
            data: data.clone(),
            at: 0,
            step: 70_000,
        }));
        assert!(s.fill(10).unwrap());
        s.consume(4);
        let all = s.take_all(usize::MAX).unwrap().unwrap();
        assert_eq!(all, &data[4..]);
        assert_eq!(s.offset(), data.len() as u64);
        assert!(!s.fill(1).unwrap());
        let mut s = ByteStream::new(Box::new(io::Cursor::new(data)));
        assert!(s.take_all(2_000_000).unwrap().is_none());
        assert!(
            s.buf.as_slice().len() <= 2_000_001,
            "held {}",
            s.buf.as_slice().len()
        );
    }

    #[test]
    fn counting_reader_counts() {
        let count = Arc::new(AtomicU64::new(0));
        let mut r = CountingReader::new(io::Cursor::new(vec![1u8; 100]), count.clone());
        let mut v = Vec::new();
        r.read_to_end(&mut v).unwrap();
        assert_eq!(count.load(Ordering::Relaxed), 100);
    }
}
