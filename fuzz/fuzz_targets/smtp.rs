//! Fuzzes the SMTP line parsers (reply lines, command lines and their arguments).
#![no_main]

use exflow::signal::smtp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for line in data.split(|&b| b == b'\n') {
        let _ = smtp::parse_reply(line);
        if let Ok(c) = smtp::parse_command(line) {
            let _ = smtp::path_arg(c.arg, b"FROM:");
            let _ = smtp::length_arg(c.arg);
            let _ = smtp::bdat_last(c.arg);
        }
        let _ = smtp::is_server_hello(line);
    }
});
