//! Fuzzes the Q.931 message walk.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = exflow::signal::q931::parse(data);
});
