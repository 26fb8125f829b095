//! Test helpers: a minimal aligned-PER writer to build messages the corpus lacks, hex decoding,
//! and a collecting sink.

use super::Announced;

/// Writes aligned PER, mirroring the [`super::per::PerReader`] primitives the tests need.
#[derive(Default)]
pub struct PerWriter {
    bytes: Vec<u8>,
    bits: usize,
}

impl PerWriter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn bit(&mut self, b: bool) -> &mut Self {
        if self.bits & 7 == 0 {
            self.bytes.push(0);
        }
        if b {
            let last = self.bytes.len() - 1;
            self.bytes[last] |= 0x80 >> (self.bits % 8);
        }
        self.bits += 1;
        self
    }

    pub fn bits(&mut self, v: u64, n: u32) -> &mut Self {
        for i in (0..n).rev() {
            self.bit((v >> i) & 1 == 1);
        }
        self
    }

    pub fn align(&mut self) -> &mut Self {
        self.bits = self.bytes.len() * 8;
        self
    }

    pub fn octets(&mut self, o: &[u8]) -> &mut Self {
        self.align();
        self.bytes.extend_from_slice(o);
        self.bits = self.bytes.len() * 8;
        self
    }

    pub fn constrained(&mut self, lb: u64, ub: u64, v: u64) -> &mut Self {
        let span = ub - lb;
        let off = v - lb;
        let width = |x: u64| 64 - x.leading_zeros();
        match span + 1 {
            1 => self,
            2..=255 => self.bits(off, width(span)),
            256 => self.align().bits(off, 8),
            257..=65536 => self.align().bits(off, 16),
            _ => {
                let max = width(span).div_ceil(8);
                let n = width(off).div_ceil(8).max(1);
                self.bits(u64::from(n - 1), width(u64::from(max - 1)));
                self.align().bits(off, 8 * n)
            }
        }
    }

    pub fn length(&mut self, n: usize) -> &mut Self {
        self.align();
        if n < 128 {
            self.bits(n as u64, 8)
        } else {
            self.bits(0x8000 | n as u64, 16)
        }
    }

    /// CHOICE root index.
    pub fn choice(&mut self, root: u64, extensible: bool, index: u64) -> &mut Self {
        if extensible {
            self.bit(false);
        }
        self.constrained(0, root - 1, index)
    }

    /// CHOICE extension alternative `index` whose value is `body`.
    pub fn ext_choice(&mut self, index: u64, body: &[u8]) -> &mut Self {
        self.bit(true).bit(false).bits(index, 6);
        self.open_type(body)
    }

    pub fn open_type(&mut self, body: &[u8]) -> &mut Self {
        self.length(body.len()).octets(body)
    }

    /// Extension-addition bitmap of `count` additions with `present` set.
    pub fn ext_bitmap(&mut self, count: usize, present: &[usize]) -> &mut Self {
        self.bit(false).bits(count as u64 - 1, 6);
        for i in 0..count {
            self.bit(present.contains(&i));
        }
        self
    }

    pub fn oid(&mut self, contents: &[u8]) -> &mut Self {
        self.length(contents.len()).octets(contents)
    }

    /// H.225 TransportAddress ipAddress.
    pub fn h225_ipv4(&mut self, ip: [u8; 4], port: u16) -> &mut Self {
        self.choice(7, true, 0)
            .octets(&ip)
            .constrained(0, 65535, u64::from(port))
    }

    /// H.245 TransportAddress unicastAddress iPAddress.
    pub fn h245_ipv4(&mut self, ip: [u8; 4], port: u16) -> &mut Self {
        self.choice(2, true, 0)
            .choice(5, true, 0)
            .bit(false)
            .octets(&ip)
            .constrained(0, 65535, u64::from(port))
    }

    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }
}

pub fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// `(kind key, context key, "ip:port")` of each announcement, in order.
pub fn keys(found: &[Announced]) -> Vec<(&'static str, &'static str, String)> {
    found
        .iter()
        .map(|a| (a.kind.key(), a.context.key(), a.addr.to_string()))
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
