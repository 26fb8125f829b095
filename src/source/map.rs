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
