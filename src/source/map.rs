//! Memory maps of regular capture files: the one place that needs `unsafe` beyond two single
//! calls (a prefetch hint in `bytes`, giving freed memory back in `mem`).
//!
//! Mapping a file lets the format readers hand out packets as slices of the page cache, with no
//! copy into a user-space buffer (the copy was a fifth of the time of a run). Three costs come
//! with it, and all are handled here:
//! - **A file that shrinks while mapped.** Reading a page past its new end raises SIGBUS, which
//!   kills the process. Only regular files are mapped, with the length read once when opened;
//!   appending to the file is harmless (the new bytes are not read), truncating it while exflow
//!   reads it is not. `--no-mmap` reads regular files like a stream instead, for captures that
//!   another program may truncate (e.g. a ring buffer being rotated in place).
//! - **Resident size.** Touched file pages count in the process's RSS; the pages already read
//!   are given back a lag behind the reader (what the analysis threads may still read in place,
//!   at most [`RELEASE_LAG`]), every [`RELEASE_EVERY`] bytes (they stay in the page cache), so a
//!   run's peak RSS does not grow with the file.
//! - **Page faults.** Mapping each page in on first touch, and unmapping it behind, was a fifth
//!   of a one-thread run on the reading thread. [`MappedFile`] lets another thread with time do
//!   both: a [`Pager`] of its own, or an analysis worker waiting for frames.

use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use memmap2::{Mmap, MmapOptions};

/// Bytes read between two releases of the pages behind the read position.
pub(crate) const RELEASE_EVERY: usize = 2 << 20;
/// How far behind the read position pages are released by default (`ReadLimits::release_lag`):
/// far enough that the analysis workers of `--threads`, which read payloads in place a few
/// batches behind the reader, do not fault released pages back in. A run sets what its workers
/// need (`shard::release_lag`).
pub(crate) const RELEASE_LAG: usize = 16 << 20;

/// Maps the first `len` bytes of `file` read-only; `None` if it cannot be mapped (then the file
/// is read like a stream).
#[allow(unsafe_code)]
pub(crate) fn map_file(file: &File, len: u64) -> Option<Mmap> {
    let len = usize::try_from(len).ok().filter(|&l| l > 0)?;
    // SAFETY: the map is read-only. Its contents can change under us only if another process writes to the file, which changes bytes (parsed as hostile input
    // anyway, never trusted) or shrinks it (SIGBUS, documented above), but never breaks Rust's
    // aliasing rules for the bytes we read: they are plain `u8`s with no validity invariant.
    let map = unsafe { MmapOptions::new().len(len).map(file) }.ok()?;
    #[cfg(unix)]
    {
        // Only a hint: read-ahead is larger and pages behind are dropped sooner.
        let _ = map.advise(memmap2::Advice::Sequential);
    }
    Some(map)
}

/// How far behind the last release pages are given back again (`MappedFile::release_to`).
const REFAULT_WINDOW: usize = 4 << 20;

/// The page size `release` rounds to (4 KiB: a larger page holds whole 4 KiB pages).
const PAGE: usize = 4096;

/// Gives back the pages of `map` in `from..to` (rounded inward to whole pages): they leave the
/// process's resident set and come back from the page cache if touched again.
#[allow(unsafe_code)]
pub(crate) fn release(map: &Mmap, from: usize, to: usize) {
    #[cfg(unix)]
    {
        let start = from.div_ceil(PAGE) * PAGE;
        let end = (to / PAGE) * PAGE;
        if end > start && end <= map.len() {
            // SAFETY: MADV_DONTNEED on a shared read-only file mapping drops our page-table
            // entries only; a later access faults the same file bytes back in, so no slice
            // into the range (there is none: the readers are past it) could see other data.
            let _ = unsafe {
                map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
            };
        }
    }
    #[cfg(not(unix))]
    let _ = (map, from, to);
}

/// How far ahead of the read position pages are mapped in.
pub(crate) const PAGE_AHEAD: usize = 2 << 20;
/// Bytes mapped in per step (one `madvise`), and the step at which the reader tells where it
/// is.
pub(crate) const PAGE_STEP: usize = 1 << 20;

/// A capture file mapped for reading in order, and the paging of it. Pages are mapped in ahead
/// of the read position (`MADV_POPULATE_READ`, one call per [`PAGE_STEP`]) and given back
/// its lag behind it by whichever thread has time: a pager thread of its own when a core
/// is free ([`Pager`]), or an analysis worker waiting for frames (`shard::worker`). Page faults
/// taken by the reading thread were a fifth of a one-thread run (README, Benchmarks); when no
/// other thread has time, the reader still faults pages in and gives them back itself.
pub(crate) struct MappedFile {
    map: Mmap,
    /// How far behind the reader pages are given back.
    lag: usize,
    /// The reader's position, as last told.
    read_at: AtomicUsize,
    /// Pages before this offset were mapped in (or read: the reader went past them).
    populated: AtomicUsize,
    /// Pages before this offset were given back.
    released: AtomicUsize,
    /// A thread is taking a paging step.
    busy: AtomicBool,
    /// The kernel has no `MADV_POPULATE_READ` (before Linux 5.14): pages are mapped in by
    /// reading a byte.
    no_populate: AtomicBool,
}

/// What a paging step did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Mapped pages in or gave pages back: there may be more to do.
    Worked,
    /// Nothing to do until the reader moves on (or another thread is taking a step).
    Idle,
    /// The whole file has been mapped in: nothing ahead will be left to do.
    Done,
}

impl std::fmt::Debug for MappedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedFile")
            .field("len", &self.map.len())
            .field("read_at", &self.read_at)
            .field("populated", &self.populated)
            .field("released", &self.released)
            .finish()
    }
}

impl std::ops::Deref for MappedFile {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.map
    }
}

impl MappedFile {
    /// `lag`: how far behind the reader its pages are given back.
    pub(crate) fn new(map: Mmap, lag: usize) -> MappedFile {
        MappedFile {
            map,
            lag,
            read_at: AtomicUsize::new(0),
            populated: AtomicUsize::new(0),
            released: AtomicUsize::new(0),
            busy: AtomicBool::new(false),
            no_populate: AtomicBool::new(false),
        }
    }

    /// The reader is at `at`. Should nobody else have given back the pages well behind it
    /// (no thread had time), the reader does, so what is resident stays bounded however the
    /// threads are scheduled.
    pub(crate) fn reader_at(&self, at: usize) {
        self.read_at.fetch_max(at, Ordering::AcqRel);
        let behind = at.saturating_sub(self.lag);
        if behind
            > self
                .released
                .load(Ordering::Acquire)
                .saturating_add(2 * RELEASE_EVERY)
        {
            self.release_to(behind);
        }
    }

    /// Whether this kernel has `MADV_POPULATE_READ` (tests).
    #[cfg(test)]
    pub(crate) fn can_populate(&self) -> bool {
        populate(&self.map, 0, self.map.len().min(4096)) != Populated::Unsupported
    }

    /// Gives back every page of the file (readers that read out of order: `store.rs`).
    pub(crate) fn release_all(&self) {
        release(&self.map, 0, self.map.len());
    }

    /// Gives back the pages before `to` not given back yet. What is given back ends at a page
    /// boundary: the page `to` falls in goes with the next release. (Recording `to` itself
    /// kept that page for good, as the next release starts at the page after it: 4 KiB every
    /// release, 3.5 MiB over the generated benchmark capture.)
    ///
    /// Each release gives back the [`REFAULT_WINDOW`] before it again: a frame read in place a
    /// little behind the reader (decoded ahead, or in a worker's batch) faults its page back in
    /// after it was given back, with the pages around it (the kernel maps up to 64 KiB per
    /// fault), and nothing gave those back again. On the generated benchmark capture at one
    /// thread that kept 8 MiB more of the file by the end of reading.
    fn release_to(&self, to: usize) {
        let to = to / PAGE * PAGE;
        let from = self.released.fetch_max(to, Ordering::AcqRel);
        if to > from {
            release(&self.map, from.saturating_sub(REFAULT_WINDOW), to);
        }
    }

    /// One step of paging, if there is one and no other thread is taking one: gives back what
    /// is a release step behind the lag, else maps in the next [`PAGE_STEP`] within
    /// [`PAGE_AHEAD`] of the reader.
    pub(crate) fn page_step(&self) -> Step {
        if self.busy.swap(true, Ordering::Acquire) {
            return Step::Idle;
        }
        let step = self.step();
        self.busy.store(false, Ordering::Release);
        step
    }

    fn step(&self) -> Step {
        let at = self.read_at.load(Ordering::Acquire);
        let behind = at.saturating_sub(self.lag);
        if behind
            >= self
                .released
                .load(Ordering::Acquire)
                .saturating_add(RELEASE_EVERY)
        {
            self.release_to(behind);
            return Step::Worked;
        }
        let len = self.map.len();
        // Never behind the reader: what it read, it mapped in itself.
        let from = self.populated.load(Ordering::Acquire).max(at);
        if from >= len {
            return Step::Done;
        }
        let to = at.saturating_add(PAGE_AHEAD).min(len);
        if from >= to {
            return Step::Idle;
        }
        let to = from.saturating_add(PAGE_STEP).min(to);
        if self.no_populate.load(Ordering::Relaxed)
            || populate(&self.map, from, to) == Populated::Unsupported
        {
            self.no_populate.store(true, Ordering::Relaxed);
            touch(&self.map, from, to);
        }
        self.populated.store(to, Ordering::Release);
        Step::Worked
    }
}

/// A thread that pages a [`MappedFile`] for its reader: it takes paging steps until there is
/// nothing to do, and then waits for the reader to move on. For when a core is free: on a
/// core shared with an analysis thread it cost 19 % of a run (README, Benchmarks).
pub(crate) struct Pager {
    thread: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Pager {
    /// Starts paging `file`; `None` if the thread cannot be started (then the reader faults the
    /// pages in itself and gives them back, as without a pager).
    pub(crate) fn start(file: Arc<MappedFile>) -> Option<Pager> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("exflow-pager".into())
            .spawn(move || {
                while !stopped.load(Ordering::Acquire) {
                    if file.page_step() != Step::Worked {
                        std::thread::park();
                    }
                }
            })
            .ok()?;
        Some(Pager {
            thread: Some(thread),
            stop,
        })
    }

    /// Wakes the pager: the reader moved on.
    pub(crate) fn wake(&self) {
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
    }
}

impl Drop for Pager {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// Maps in the pages of `map` in `from..to`; false if the kernel cannot (before Linux 5.14).
fn populate(map: &Mmap, from: usize, to: usize) -> Populated {
    #[cfg(target_os = "linux")]
    {
        match map.advise_range(memmap2::Advice::PopulateRead, from, to - from) {
            Ok(()) => Populated::Yes,
            // Linux before 5.14 does not know the advice.
            Err(e) if e.raw_os_error() == Some(libc_einval()) => Populated::Unsupported,
            // E.g. the file shrank under the map: leave the pages to the reader, which meets
            // the shrunk file where it reads (README, "Reading captures"); touching them here
            // would raise SIGBUS ahead of it.
            Err(_) => Populated::Failed,
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (map, from, to);
        Populated::Unsupported
    }
}

/// What a `MADV_POPULATE_READ` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Populated {
    Yes,
    /// The kernel does not have it: map pages in by reading a byte of each.
    Unsupported,
    /// It failed for this range.
    Failed,
}

/// `EINVAL` (22 on Linux), without a dependency on `libc`.
#[cfg(target_os = "linux")]
fn libc_einval() -> i32 {
    22
}

/// Maps in the pages of `map` in `from..to` by reading a byte of each.
fn touch(map: &Mmap, from: usize, to: usize) {
    if let Some(bytes) = map.get(from..to) {
        for b in bytes.iter().step_by(4096) {
            std::hint::black_box(*b);
        }
    }
}
