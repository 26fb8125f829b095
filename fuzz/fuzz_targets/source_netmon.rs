//! Fuzzes the capture reader on a NetMon 2.x file (frame table, per-frame media): the input follows the magic.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "capture_common.rs"]
mod capture_common;

fuzz_target!(|data: &[u8]| {
    let magic: [u8; 4] = *b"GMBU";
    capture_common::read_with_magic(&magic, data);
});
