//! Fuzzes the LDAP message parser (BER envelope, operation, LDAPResult).
#![no_main]

use exflow::signal::ldap;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = ldap::parse(data) {
        let _ = ldap::op_name(m.op);
        if let Some(r) = m.result {
            let _ = (ldap::result_name(r.code), ldap::is_problem(r.code));
        }
    }
});
