//! LDAP and the Global Catalog (tcp/389, 3268, 390, 379): BER `LDAPMessage`s, several per segment
//! or one split over segments; per operation the count, and per (operation, result code) the
//! count and the first diagnostic message. SASL-wrapped (signed or sealed) buffers and TLS after
//! StartTLS are counted as such, not decoded.

use std::collections::BTreeMap;

use super::counts::SmallCounts;
use super::framing::{drive, Frame, FrameStats, Framer};
use super::smtp::text;
use super::{Cx, Dir, EndCx, FlowInfo, Limits, Tracker, TrackerKind};
use crate::signal::ldap;

/// Largest LDAP message or SASL buffer kept (bigger ones are skipped by length).
const MAX_MESSAGE: usize = 256 * 1024;
/// Operation tags counted (RFC 4511 uses 0..=25).
const OPS: usize = 26;

/// LDAP messages (BER SEQUENCE) or SASL buffers (4-byte length, RFC 4422 3.7). Anything else up
/// to the next SEQUENCE tag is garbage.
#[derive(Clone, Copy, Debug, Default)]
struct LdapFramer;

impl Framer for LdapFramer {
    fn next(&mut self, bytes: &[u8]) -> Frame {
        match bytes {
            [0x30, ..] => match super::framing::ber_header(bytes) {
                Ok(None) => Frame::More { skip: 0 },
                Err(_) => Frame::Oversize { skip: 0, len: 1 },
                Ok(Some((head, len))) => unit(head.saturating_add(len), bytes.len()),
            },
            // A SASL buffer: its length's first octet is 0 for anything under 16 MiB.
            [0, a, b, c, ..] => {
                let len = 4 + (usize::from(*a) << 16 | usize::from(*b) << 8 | usize::from(*c));
                unit(len, bytes.len())
            }
            [0] | [0, _] | [0, _, _] => Frame::More { skip: 0 },
            _ => Frame::More {
                skip: memchr::memchr(0x30, bytes).unwrap_or(bytes.len()),
            },
        }
    }
}

fn unit(total: usize, have: usize) -> Frame {
    if total > MAX_MESSAGE {
        Frame::Oversize {
            skip: 0,
            len: total,
        }
    } else if have >= total {
        Frame::Unit {
            skip: 0,
            len: total,
            head: 0,
        }
    } else {
        Frame::More { skip: 0 }
    }
}

#[derive(Clone, Debug)]
struct ResultCount {
    op: u8,
    code: u32,
    count: u32,
    message: String,
    /// The first one's `matchedDN`.
    matched_dn: String,
}

pub(super) struct LdapKind(pub Limits);

impl TrackerKind for LdapKind {
    fn name(&self) -> &'static str {
        "ldap"
    }

    fn attach(&self, _: &FlowInfo) -> Box<dyn Tracker> {
        Box::new(Ldap {
            max_results: self.0.per_flow,
            framers: [LdapFramer; 2],
            frames: FrameStats::default(),
            ops: SmallCounts::new(),
            results: Vec::new(),
            sasl: 0,
            tls: false,
            undecodable: 0,
        })
    }

    fn diagnostics(&self) -> Option<Box<dyn super::Diagnostics>> {
        Some(Box::new(super::ldap_diag::LdapDiag::with_cap(
            self.0.problems,
        )))
    }
}

struct Ldap {
    /// Distinct (operation, result code) pairs kept.
    max_results: usize,
    framers: [LdapFramer; 2],
    frames: FrameStats,
    /// Messages by operation (of the first [`OPS`]).
    ops: SmallCounts<u8, 4>,
    results: Vec<ResultCount>,
    /// SASL-wrapped buffers (signed or sealed LDAP).
    sasl: u32,
    /// TLS records after StartTLS: the rest is encrypted.
    tls: bool,
    undecodable: u32,
}

impl Ldap {
    fn unit(&mut self, u: &[u8], cx: &mut Cx<'_>) {
        if u.first() == Some(&0) {
            self.sasl = self.sasl.saturating_add(1);
            cx.count("sasl_wrapped");
            return;
        }
        let m = match ldap::parse(u) {
            Ok(m) => m,
            Err(_) => {
                self.undecodable = self.undecodable.saturating_add(1);
                cx.error("undecodable");
                return;
            }
        };
        cx.count("messages");
        if usize::from(m.op) < OPS {
            self.ops.add(m.op);
        }
        let Some(r) = m.result else {
            return;
        };
        if let Some(e) = self
            .results
            .iter_mut()
            .find(|e| e.op == m.op && e.code == r.code)
        {
            e.count = e.count.saturating_add(1);
        } else if self.results.len() < self.max_results {
            super::push_first_alone(
                &mut self.results,
                ResultCount {
                    op: m.op,
                    code: r.code,
                    count: 1,
                    message: text(r.diagnostic),
                    matched_dn: text(r.matched_dn),
                },
            );
        } else {
            cx.error("results_cap");
        }
    }

    fn operations(&self) -> BTreeMap<&'static str, u32> {
        self.ops
            .iter()
            .map(|(op, n)| (ldap::op_name(op), n))
            .collect()
    }

    fn fold(&self, cx: &mut EndCx<'_>) {
        let Some(d) = cx
            .diagnostics
            .as_mut()
            .and_then(|d| d.as_any_mut().downcast_mut::<super::ldap_diag::LdapDiag>())
        else {
            return;
        };
        for (name, n) in self.operations() {
            *d.operations.entry(name).or_insert(0) += u64::from(n);
        }
        d.sasl_wrapped += u64::from(self.sasl);
        d.tls_flows += u64::from(self.tls);
        for r in &self.results {
            *d.results.entry((r.op, r.code)).or_insert(0) += u64::from(r.count);
            if ldap::is_problem(r.code) {
                d.problem(
                    (r.op, r.code, cx.flow.server.to_string()),
                    u64::from(r.count),
                    &r.message,
                    cx.flow.client.ip,
                );
            }
        }
    }
}

impl Tracker for Ldap {
    fn stream(&mut self, dir: Dir, bytes: &[u8], cx: &mut Cx<'_>) -> usize {
        if !self.tls && matches!(bytes, [0x16, 3, ..]) {
            self.tls = true;
            cx.count("tls");
        }
        if self.tls {
            return bytes.len();
        }
        let d = dir as usize;
        let mut framer = self.framers[d];
        let mut frames = self.frames;
        let used = drive(&mut framer, &mut frames, bytes, &mut |u| {
            self.unit(u, cx);
            true
        });
        self.framers[d] = framer;
        self.frames = frames;
        used
    }

    fn max_unit(&self) -> usize {
        MAX_MESSAGE
    }

    fn end(&mut self, cx: &mut EndCx<'_>) -> Option<serde_json::Value> {
        if self.ops.is_empty() && self.sasl == 0 && !self.tls && self.undecodable == 0 {
            return None;
        }
        self.fold(cx);
        cx.want_record.then(|| {
            serde_json::json!({
                "operations": self.operations(),
                "results": self.results.iter().map(|r| serde_json::json!({
                    "op": ldap::op_name(r.op),
                    "code": r.code,
                    "name": ldap::result_name(r.code),
                    "count": r.count,
                    "message": r.message,
                    "matched_dn": r.matched_dn,
                })).collect::<Vec<_>>(),
                "sasl_wrapped": self.sasl,
                "tls": self.tls,
            })
        })
    }
}

/// The LDAP tracker's size (`track::tests::per_flow_state_stays_small`).
#[cfg(test)]
pub(super) fn size() -> (&'static str, usize) {
    ("Ldap", std::mem::size_of::<Ldap>())
}
