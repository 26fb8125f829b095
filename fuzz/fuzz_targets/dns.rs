//! Fuzzes the DNS message parser (header, first question, compressed names).
#![no_main]

use exflow::signal::dns;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut name = [0u8; dns::MAX_NAME];
    if let Ok(m) = dns::parse(data, &mut name) {
        let _ = dns::rcode_name(m.rcode);
        if let Some(q) = m.question {
            assert!(q.name_len <= dns::MAX_NAME);
            let _ = dns::type_name(q.qtype);
        }
    }
});
