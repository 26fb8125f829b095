//! Memory maps of regular capture files: the one place that needs `unsafe`.
//!
//! Mapping a file lets the format readers hand out packets as slices of the page cache, with no
//! copy into a user-space buffer (the copy was a fifth of the time of a run). Two costs come
//! with it, and both are handled here:
//! - **A file that shrinks while mapped.** Reading a page past its new end raises SIGBUS, which
//!   kills the process. Only regular files are mapped, with the length read once when opened;
//!   appending to the file is harmless (the new bytes are not read), truncating it while exflow
//!   reads it is not. `--no-mmap` reads regular files like a stream instead, for captures that
//!   another program may truncate (e.g. a ring buffer being rotated in place).
//! - **Resident size.** Touched file pages count in the process's RSS; the pages already read
//!   are given back every [`RELEASE_EVERY`] bytes (they stay in the page cache), so a run's
//!   peak RSS does not grow with the file.

use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use memmap2::{Mmap, MmapOptions};

/// Bytes read between two releases of the pages behind the read position.
pub(crate) const RELEASE_EVERY: usize = 8 << 20;
/// How far behind the read position pages are released: far enough that the analysis workers of
/// `--threads`, which read payloads in place a few batches behind the reader, do not fault
/// released pages back in.
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

/// Gives back the pages of `map` in `from..to` (rounded inward to whole pages): they leave the
/// process's resident set and come back from the page cache if touched again.
#[allow(unsafe_code)]
pub(crate) fn release(map: &Mmap, from: usize, to: usize) {
    #[cfg(unix)]
    {
        const PAGE: usize = 4096;
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

/// How far ahead of the read position the pager maps file pages in.
pub(crate) const PAGE_AHEAD: usize = 32 << 20;
/// Bytes the pager maps in per call (one `madvise`), and the step at which the reader tells it
/// where it is.
pub(crate) const PAGE_STEP: usize = 4 << 20;

/// The pages of a mapped file, managed off the reading thread: a thread of its own maps the
/// pages ahead of the read position into the process (`MADV_POPULATE_READ`, one call per
/// [`PAGE_STEP`] instead of one page fault per 64 KiB in the reader) and gives back the pages
/// [`RELEASE_LAG`] behind it. Page faults were a fifth of a one-thread run (README, Benchmarks).
pub(crate) struct Pager {
    state: Arc<PagerState>,
    thread: Option<JoinHandle<()>>,
}

struct PagerState {
    /// The reader's position, as last told.
    read_at: AtomicUsize,
    /// Pages before this offset were given back (by the pager, or by the reader when the pager
    /// falls behind).
    released: AtomicUsize,
    stop: AtomicBool,
}

impl PagerState {
    /// Gives back the pages of `map` before `to` not given back yet.
    fn release_to(&self, map: &Mmap, to: usize) {
        let from = self.released.fetch_max(to, Ordering::AcqRel);
        if to > from {
            release(map, from, to);
        }
    }
}

impl Pager {
    /// Starts paging `map`; `None` if the thread cannot be started (then the reader faults the
    /// pages in itself and releases them, as without a pager).
    pub(crate) fn start(map: Arc<Mmap>) -> Option<Pager> {
        let state = Arc::new(PagerState {
            read_at: AtomicUsize::new(0),
            released: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let shared = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("exflow-pager".into())
            .spawn(move || page(&map, &shared))
            .ok()?;
        Some(Pager {
            state,
            thread: Some(thread),
        })
    }

    /// Tells the pager the reader of `map` is at `at`. Should the pager be more than a release
    /// step late giving pages back (no core to run on), the reader gives them back itself, so
    /// what is resident stays bounded however the threads are scheduled.
    pub(crate) fn reader_at(&self, map: &Mmap, at: usize) {
        let behind = at.saturating_sub(RELEASE_LAG);
        if behind > self.state.released.load(Ordering::Acquire) + 2 * RELEASE_EVERY {
            self.state.release_to(map, behind);
        }
        self.state.read_at.store(at, Ordering::Release);
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
    }
}

impl Drop for Pager {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// The pager thread: keeps `PAGE_AHEAD` bytes mapped in ahead of the reader and releases what
/// is `RELEASE_LAG` behind it, until told to stop.
fn page(map: &Mmap, state: &PagerState) {
    let mut populated = 0usize;
    let mut populate_works = true;
    while !state.stop.load(Ordering::Acquire) {
        let at = state.read_at.load(Ordering::Acquire);
        let behind = at.saturating_sub(RELEASE_LAG);
        if behind >= state.released.load(Ordering::Acquire) + RELEASE_EVERY {
            state.release_to(map, behind);
        }
        let want = at.saturating_add(PAGE_AHEAD).min(map.len());
        if populated < want {
            let end = populated.saturating_add(PAGE_STEP).min(want);
            if populate_works {
                populate_works = populate(map, populated, end);
            }
            if !populate_works {
                touch(map, populated, end);
            }
            populated = end;
            continue;
        }
        std::thread::park();
    }
}

/// Maps in the pages of `map` in `from..to`; false if the kernel cannot (before Linux 5.14).
fn populate(map: &Mmap, from: usize, to: usize) -> bool {
    #[cfg(target_os = "linux")]
    {
        map.advise_range(memmap2::Advice::PopulateRead, from, to - from)
            .is_ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (map, from, to);
        false
    }
}

/// Maps in the pages of `map` in `from..to` by reading a byte of each.
fn touch(map: &Mmap, from: usize, to: usize) {
    if let Some(bytes) = map.get(from..to) {
        for b in bytes.iter().step_by(4096) {
            std::hint::black_box(*b);
        }
    }
}
