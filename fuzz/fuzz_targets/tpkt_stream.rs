//! Fuzzes `TpktStream` with a sequence of segments: each is a 2-byte little-endian sequence
//! offset, a 1-byte length, then that many payload bytes. Every emitted frame also goes to the
//! H.225 and H.245 decoders, as on a real connection.
#![no_main]

use exflow::track::TpktStream;
use exflow::signal::{h225, h245};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&[a, b, c, d, cap_hi], mut rest)) = data.split_first_chunk::<5>() else {
        return;
    };
    let isn = u32::from_le_bytes([a, b, c, d]);
    let mut stream = TpktStream::with_capacity(usize::from(cap_hi) * 512);
    if cap_hi & 1 == 1 {
        stream.start(isn);
    }
    while let Some((&[lo, hi, len], tail)) = rest.split_first_chunk::<3>() {
        let len = usize::from(len).min(tail.len());
        let (payload, next) = tail.split_at(len);
        let seq = isn.wrapping_add(u32::from(u16::from_le_bytes([lo, hi])));
        stream.push(seq, payload, |frame| {
            let _ = h225::parse_frame(frame, &mut |_| {});
            let _ = h245::parse_frame(frame, &mut |_| {});
        });
        rest = next;
    }
    stream.skip_hole(|_| {});
    drop(stream);
});
