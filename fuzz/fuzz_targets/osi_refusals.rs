//! Fuzzes the X.400 connection parsers (COTP TPDU, session SPDU and its user data, the
//! ACSE/RTSE/P1 bind answer walk) and the POP3/IMAP login line readers.
#![no_main]

use libfuzzer_sys::fuzz_target;

use exflow::signal::{cotp, imap, pop3};

fuzz_target!(|data: &[u8]| {
    if let Ok(cotp::Tpdu::Dt { data: d, .. }) = cotp::parse_tpdu(data) {
        if let Some(s) = cotp::parse_spdu(d) {
            let (_, user) = cotp::spdu_user_data(&s);
            let _ = cotp::bind_answer(user);
        }
    }
    let _ = cotp::bind_answer(data);
    let _ = pop3::command(data);
    let _ = pop3::reply(data);
    let _ = imap::command(data);
    let _ = imap::tagged(data);
});
