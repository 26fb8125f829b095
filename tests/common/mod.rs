//! What several integration tests share: hex decoding, real DCE/RPC PDUs, the list of the
//! repository's captures, a structural diff of JSON reports and scratch directories removed when
//! the test process exits.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once, TryLockError};

use serde_json::Value;

/// The scratch directories this process made (`scratch`), removed when it exits.
static SCRATCH: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// The scratch directory of this test binary, `exflow-NAME-PID` under the system's temporary
/// directory (created if need be). `name` is the binary's (`tests/mail_flow_scenarios.rs`:
/// `mail-flow-scenarios`), so two binaries never share a directory.
///
/// The tests of one binary run as parallel threads of one process and share the directory (each
/// writes files of its own names in it), so no test may remove it when it finishes. Instead every
/// directory made here is removed when the process exits, whether its tests passed or failed:
/// libtest ends with `std::process::exit` (or `main` returning), and both run the C `atexit`
/// handlers. Only a process killed by a signal leaves its directory behind.
pub fn scratch(name: &str) -> PathBuf {
    static AT_EXIT: Once = Once::new();
    AT_EXIT.call_once(|| {
        // SAFETY: `atexit` only records the function; `remove_scratch` is the `extern "C" fn()`
        // it expects and touches only a static and the file system, both usable during exit (a
        // panic in it would abort, never unwind into C).
        let registered = unsafe { libc::atexit(remove_scratch) };
        assert_eq!(
            registered, 0,
            "atexit failed: scratch directories would stay"
        );
    });
    let dir = std::env::temp_dir().join(format!("exflow-{name}-{}", std::process::id()));
    // Created on every call: cheap, and a test that removed the directory gets it back.
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut dirs = SCRATCH.lock().unwrap_or_else(|e| e.into_inner());
    if !dirs.contains(&dir) {
        dirs.push(dir.clone());
    }
    dir
}

/// Removes the scratch directories (the `atexit` handler of `scratch`). Nothing here may panic:
/// an unwind out of an `extern "C"` function aborts the process.
extern "C" fn remove_scratch() {
    // A lock still held by a thread the exit interrupted is skipped, not waited for: a directory
    // left behind is better than an exit that hangs.
    let dirs = match SCRATCH.try_lock() {
        Ok(dirs) => dirs,
        Err(TryLockError::Poisoned(e)) => e.into_inner(),
        Err(TryLockError::WouldBlock) => return,
    };
    for dir in dirs.iter() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Every capture file below `dir` (sorted; the READMEs, tshark references, scripts and licences
/// beside them left out), appended to `out`.
pub fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            captures(&p, out);
        } else if !p.extension().is_some_and(|e| {
            ["md", "tsv", "sh", "txt", "py", "json"]
                .iter()
                .any(|x| e == *x)
        }) && !p.ends_with("COPYING")
        {
            out.push(p);
        }
    }
}

/// Every capture of the corpus copy (`tests/data/corpus`).
pub fn corpus() -> Vec<PathBuf> {
    let mut files = Vec::new();
    captures(
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/corpus")),
        &mut files,
    );
    assert!(files.len() > 20, "{} captures", files.len());
    files
}

/// The first place where two JSON values differ (`.member[index]...: a -> b`), if any.
pub fn first_difference(a: &Value, b: &Value, at: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => x
            .iter()
            .find_map(|(k, v)| match y.get(k) {
                Some(w) => first_difference(v, w, &format!("{at}.{k}")),
                None => Some(format!("{at}.{k}: missing")),
            })
            .or_else(|| (x.len() != y.len()).then(|| format!("{at}: keys differ"))),
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (v, w))| first_difference(v, w, &format!("{at}[{i}]"))),
        _ => (a != b).then(|| format!("{at}: {a} -> {b}")),
    }
}

/// Bytes from a hex string (white space ignored).
pub fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Real DCE/RPC PDUs from zeek's `Traces/dce-rpc/mapi.pcap`, as hex.
pub mod mapi_pcap {
    /// Frame 397: bind to the endpoint mapper.
    pub const EPM_BIND: &str = "05000b03100000004800000001000000d016d0160000000001000000000001000883afe11f5dc91191a408002b14a0fa03000000045d888aeb1cc9119fe808002b10486002000000";
    /// Frame 398: its bind_ack.
    pub const BIND_ACK: &str = "05000c03100000003c00000001000000d016d016e5c8000004003133350000000100000000000000045d888aeb1cc9119fe808002b10486002000000";
    /// Frame 399: ept_map request for NSPI (call id 1).
    pub const MAP_REQUEST: &str = "05000003100000009c0000000100000084000000000003000100000000000000000000000000000000000000020000004b0000004b000000050013000d185accf564421a108c5908002b2f842638000200000013000d045d888aeb1cc9119fe808002b10486002000200000001000b020000000100070200008701000904000000000000000000000000000000000000000000000000000004000000";
    /// Frame 400: its response, NSPI at 192.168.0.2:4997/tcp.
    pub const MAP_RESPONSE: &str = "050002031000000098000000010000008000000000000000000000000000000000000000000000000000000001000000040000000000000001000000030000004b0000004b000000050013000d185accf564421a108c5908002b2f842638000200000013000d045d888aeb1cc9119fe808002b10486002000200000001000b02000000010007020013850100090400c0a800020000000000";
    /// Frame 505: ept_lookup response, NSPI over ncacn_http (floor 4 is 0x1f, not TCP).
    pub const LOOKUP_RESPONSE: &str = "0500020310000000d400000001000000bc00000000000000000000007cfc5f3b92b07544a3e3e4d53df481df01000000010000000000000001000000000000000000000000000000000000000300000000000000240000004d532045786368616e6765204469726563746f7279204e535020496e74657266616365004b0000004b000000050013000d185accf564421a108c5908002b2f842638000200000013000d045d888aeb1cc9119fe808002b10486002000200000001000b0200000001001f020013880100200400c0a800020000000000";
    /// Frame 711: an NTLM-authenticated bind to EMSMDB (MAPI).
    pub const MAPI_BIND: &str = "05000b03100000008100310001000000d016d01600000000010000000000010000dbf1a447ca6710b31f00dd010662da00005100045d888aeb1cc9119fe808002b104860020000000a020000a8890b004e544c4d535350000100000007b208a0060006002b0000000b000b0020000000414c454f4e4152442d5850434e414d4953";
}

/// Leaves out of a JSON report what a sharded run documents as different from one thread's
/// (README, "Threads"): the peaks (sums of the workers') and the order of the `problems` lists.
pub fn without_shard_differences(v: &mut Value) {
    if let Some(Value::Object(t)) = v.get_mut("flow_table") {
        t.remove("peak");
    }
    if let Some(Value::Object(t)) = v.pointer_mut("/signalling/reassembly") {
        t.remove("peak_bytes");
    }
    if let Some(Value::Array(p)) = v.get_mut("problems") {
        p.sort_by_key(|x| x.to_string());
    }
    if let Some(Value::Object(d)) = v.get_mut("diagnostics") {
        for (_, t) in d.iter_mut() {
            if let Some(Value::Array(p)) = t.get_mut("problems") {
                p.sort_by_key(|x| x.to_string());
            }
        }
    }
}
