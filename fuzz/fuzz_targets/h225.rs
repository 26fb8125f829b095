//! Fuzzes H.225 call signalling: as a whole TPKT payload (Q.931 first) and as bare
//! `H323-UserInformation` PER.
#![no_main]

use exflow::signal::h225;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = h225::parse_frame(data, &mut |_| {});
    let _ = h225::parse_user_information(data, &mut |_| {});
});
