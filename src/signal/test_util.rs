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
