//! Fuzzes the capture reader on a NetXRay / Windows Sniffer file (ring-buffer wrap): the input
//! follows the magic.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "capture_common.rs"]
mod capture_common;

fuzz_target!(|data: &[u8]| {
    let magic: [u8; 4] = *b"XCP\0";
    capture_common::read_with_magic(&magic, data);
});
