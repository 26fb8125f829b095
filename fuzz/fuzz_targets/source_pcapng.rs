//! Fuzzes the capture reader on a pcapng stream (the section header's magic): the input follows the magic.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "capture_common.rs"]
mod capture_common;

fuzz_target!(|data: &[u8]| {
    let magic: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
    capture_common::read_with_magic(&magic, data);
});
