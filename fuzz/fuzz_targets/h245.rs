//! Fuzzes H.245: a TPKT payload of an H.245 connection, a tunnelled message and a fastStart
//! OpenLogicalChannel.
#![no_main]

use exflow::signal::h245::{self, Carrier};
use exflow::signal::UuieKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = h245::parse_frame(data, &mut |_| {});
    let _ = h245::parse_message(data, Carrier::Tunnelled(UuieKind::Facility), &mut |_| {});
    let _ =
        h245::parse_open_logical_channel(data, Carrier::FastStart(UuieKind::Setup), &mut |_| {});
});
