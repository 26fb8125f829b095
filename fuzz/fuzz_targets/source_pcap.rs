//! Fuzzes the capture reader on a classic pcap (little-endian, microseconds): the input follows the magic.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "capture_common.rs"]
mod capture_common;

fuzz_target!(|data: &[u8]| {
    let magic: [u8; 4] = [0xd4, 0xc3, 0xb2, 0xa1];
    capture_common::read_with_magic(&magic, data);
});
