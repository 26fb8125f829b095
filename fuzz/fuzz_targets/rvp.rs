//! Fuzzes the RVP request-head parser (method, RVP headers, Call-Back URL, lifetime).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = exflow::signal::rvp::parse_request(data) {
        let _ = req.is_subscribe();
    }
});
