//! Fuzzes RAS message decoding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = exflow::signal::ras::parse(data, &mut |_| {});
});
