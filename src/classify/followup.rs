//! Follow-up connections: runs the signalling parsers on the flows that carry signalling (H.225 on
//! 1720, H.245 on the learned connection, RAS on 1719, RVP `SUBSCRIBE`s), turns the addresses they
//! announce into expectations, tracks live audio (1731) and undecodable H.323 sessions for
//! inference, and gives new flows that fulfil an expectation their follow-up service.
//!
//! Only signalling flows get per-flow state (a slot with two TPKT reassemblers); for every other
//! packet the cost is one comparison of the flow's service.

use std::collections::HashMap;
use std::net::IpAddr;

use ahash::RandomState;

use super::expect::{Basis, ExpectConfig, ExpectTable, Expectation};
use super::{Catalogue, ServiceId};
use crate::flow::Flow;
use crate::packet::{tcp_flags, Endpoint, Nanos, Packet, Proto};
use crate::signal::{self, rvp, tpkt::TpktStream, AddrKind, Announced, Context, RasKind};

const SECOND: Nanos = 1_000_000_000;
/// How long after an H.323 announcement the connection to it may start.
const H323_WINDOW: Nanos = 300 * SECOND;
/// How long a 1731 or undecodable H.323 session keeps inferring media after its last packet.
const SESSION_GRACE: Nanos = 60 * SECOND;
/// Default and longest RVP subscription honoured.
const RVP_DEFAULT_LIFETIME_S: u64 = 14_400;
const RVP_MAX_LIFETIME_S: u64 = 86_400;
/// Addresses kept from one signalling message.
const MAX_PER_MESSAGE: usize = 32;

/// Counters of the signalling seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignalStats {
    pub h225_messages: u64,
    pub h245_messages: u64,
    pub ras_messages: u64,
    pub rvp_subscribes: u64,
    /// Messages that could not be decoded (their flows fall back to inference).
    pub decode_errors: u64,
}

/// Counts since an earlier snapshot of the same run (never negative).
impl std::ops::Sub for SignalStats {
    type Output = SignalStats;

    fn sub(self, old: SignalStats) -> SignalStats {
        SignalStats {
            h225_messages: self.h225_messages.saturating_sub(old.h225_messages),
            h245_messages: self.h245_messages.saturating_sub(old.h245_messages),
            ras_messages: self.ras_messages.saturating_sub(old.ras_messages),
            rvp_subscribes: self.rvp_subscribes.saturating_sub(old.rvp_subscribes),
            decode_errors: self.decode_errors.saturating_sub(old.decode_errors),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SlotKind {
    H225,
    H245,
    Other,
}

/// Per-flow signalling state.
struct Slot {
    kind: SlotKind,
    /// Client-to-server and server-to-client reassembly.
    streams: [TpktStream; 2],
    /// Expectations this flow announced (for the per-parent cap).
    announced: u32,
}

/// A live session that infers media between two hosts.
#[derive(Clone, Copy, Debug)]
struct Session {
    until: Nanos,
    expectation: u32,
    media: ServiceId,
}

/// The services follow-ups involve.
#[derive(Clone, Copy, Debug)]
struct Ids {
    h323: ServiceId,
    h323_h245: ServiceId,
    h323_ras: ServiceId,
    h323_media: ServiceId,
    rvp: ServiceId,
    rvp_callback: ServiceId,
    audio: ServiceId,
    audio_media: ServiceId,
}

/// Signalling state and expectations of one run.
pub struct Followups {
    pub expect: ExpectTable,
    pub stats: SignalStats,
    ids: Ids,
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    sessions: HashMap<(IpAddr, IpAddr), Session, RandomState>,
}

fn host_pair(a: IpAddr, b: IpAddr) -> (IpAddr, IpAddr) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// Plausible first datagram of an RTP or RTCP stream: version 2 and a payload type RTP uses
/// (0–34 static, 96–127 dynamic) or an RTCP packet type (200–204).
pub fn plausible_rtp(payload: &[u8]) -> bool {
    if payload.len() < 8 || payload[0] >> 6 != 2 {
        return false;
    }
    let pt = payload[1] & 0x7f;
    (200..=204).contains(&payload[1]) || (payload.len() >= 12 && (pt <= 34 || pt >= 96))
}

impl Followups {
    pub fn new(catalogue: &Catalogue, config: ExpectConfig) -> Followups {
        let ids = Ids {
            h323: catalogue.must("h323"),
            h323_h245: catalogue.must("h323_h245"),
            h323_ras: catalogue.must("h323_ras"),
            h323_media: catalogue.must("h323_media"),
            rvp: catalogue.must("rvp"),
            rvp_callback: catalogue.must("rvp_callback"),
            audio: catalogue.must("audio"),
            audio_media: catalogue.must("audio_media"),
        };
        Followups {
            expect: ExpectTable::new(config),
            stats: SignalStats::default(),
            ids,
            slots: Vec::new(),
            free: Vec::new(),
            sessions: HashMap::with_hasher(RandomState::new()),
        }
    }

    /// Gives a new flow its follow-up service if it fulfils an expectation; false otherwise.
    pub fn classify_new(&mut self, flow: &mut Flow, p: &Packet<'_>) -> bool {
        if let Some(id) = self.expect.find(flow.proto, flow.client, flow.server, p.ts) {
            flow.service = self
                .expect
                .list
                .get(&id)
                .map_or(flow.service, |e| e.service);
            flow.followup_of = Some(id);
            return true;
        }
        if flow.proto != Proto::Udp || flow.client.port < 1024 || flow.server.port < 1024 {
            return false;
        }
        let pair = host_pair(flow.client.ip, flow.server.ip);
        let Some(s) = self.sessions.get(&pair).copied() else {
            return false;
        };
        if p.ts > s.until || !plausible_rtp(p.payload) {
            return false;
        }
        flow.service = s.media;
        flow.followup_of = Some(s.expectation);
        true
    }

    /// Looks at one packet of a flow; only signalling flows do any work.
    #[inline]
    pub fn packet(&mut self, flow: &mut Flow, p: &Packet<'_>) {
        // A service guessed from the client's port alone is too weak to infer or expect from.
        if flow.by_client_port {
            return;
        }
        let s = flow.service;
        let ids = self.ids;
        if s == ids.audio {
            self.session(flow, p.ts, ids.audio_media, "1731 session");
        } else if s == ids.h323 || s == ids.h323_h245 {
            self.tpkt(flow, p);
        } else if s == ids.h323_ras && !p.payload.is_empty() {
            self.ras(flow, p);
        } else if s == ids.rvp && !p.payload.is_empty() && flow.from_client(&p.src) {
            self.rvp(flow, p);
        }
    }

    /// A flow left the table: count it on its expectation, free its signalling state.
    pub fn flow_ended(&mut self, f: &Flow) {
        self.expect.flow_ended(f);
        if let Some(slot) = f.signal {
            if let Some(s) = self.slots.get_mut(slot as usize) {
                *s = None;
                self.free.push(slot);
            }
        }
    }

    /// Drops sessions that ended long ago (call now and then; bounded memory in live mode).
    pub fn expire(&mut self, now: Nanos) {
        self.sessions.retain(|_, s| now <= s.until);
    }

    fn slot(&mut self, flow: &mut Flow, kind: SlotKind) -> u32 {
        if let Some(id) = flow.signal {
            return id;
        }
        let slot = Slot {
            kind,
            streams: [TpktStream::new(), TpktStream::new()],
            announced: 0,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = Some(slot);
                id
            }
            None => {
                self.slots.push(Some(slot));
                (self.slots.len() - 1) as u32
            }
        };
        flow.signal = Some(id);
        id
    }

    /// Keeps an inference session alive for the flow's two hosts.
    fn session(&mut self, flow: &mut Flow, ts: Nanos, media: ServiceId, what: &'static str) {
        let pair = host_pair(flow.client.ip, flow.server.ip);
        if let Some(s) = self.sessions.get_mut(&pair) {
            s.until = s.until.max(ts + SESSION_GRACE);
            return;
        }
        let slot = self.slot(flow, SlotKind::Other);
        let e = Expectation {
            basis: Basis::Inferred,
            peer: Some(flow.server.ip),
            ..Expectation::new(
                flow,
                media,
                Proto::Udp,
                Endpoint::new(flow.client.ip, 0),
                "session",
                what,
                ts,
                SESSION_GRACE,
            )
        };
        let Some(slot) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) else {
            return;
        };
        if let Some(id) = self.expect.add(e, &mut slot.announced) {
            self.sessions.insert(
                pair,
                Session {
                    until: ts + SESSION_GRACE,
                    expectation: id,
                    media,
                },
            );
        }
    }

    fn tpkt(&mut self, flow: &mut Flow, p: &Packet<'_>) {
        let syn = p.tcp_flags & tcp_flags::SYN != 0;
        if p.proto != Proto::Tcp || (p.payload.is_empty() && !syn) {
            return;
        }
        let kind = if flow.service == self.ids.h323 {
            SlotKind::H225
        } else {
            SlotKind::H245
        };
        let id = self.slot(flow, kind);
        let dir = usize::from(!flow.from_client(&p.src));
        let mut found = [None; MAX_PER_MESSAGE];
        let mut n = 0;
        let mut tunnelling = false;
        let mut failed = false;
        let stats = &mut self.stats;
        let Some(slot) = self.slots.get_mut(id as usize).and_then(Option::as_mut) else {
            return;
        };
        let stream = &mut slot.streams[dir];
        if syn {
            stream.start(p.seq.wrapping_add(1));
        }
        if p.payload.is_empty() {
            return;
        }
        let slot_kind = slot.kind;
        stream.push(p.seq, p.payload, |frame| {
            let mut sink = |a: Announced| {
                if let Some(cell) = found.get_mut(n) {
                    *cell = Some(a);
                    n += 1;
                }
            };
            let ok = if slot_kind == SlotKind::H225 {
                stats.h225_messages += 1;
                match signal::h225::parse_frame(frame, &mut sink) {
                    Ok(s) => {
                        tunnelling |= s.h245_tunnelling;
                        true
                    }
                    Err(_) => false,
                }
            } else {
                stats.h245_messages += 1;
                signal::h245::parse_frame(frame, &mut sink).is_ok()
            };
            if !ok {
                stats.decode_errors += 1;
                failed = true;
            }
        });
        for a in found.into_iter().take(n).flatten() {
            self.announce(flow, id, a, p.ts, tunnelling);
        }
        if failed && slot_kind == SlotKind::H225 {
            let media = self.ids.h323_media;
            self.session(flow, p.ts, media, "undecodable H.225");
        }
    }

    fn ras(&mut self, flow: &mut Flow, p: &Packet<'_>) {
        let id = self.slot(flow, SlotKind::Other);
        let mut found = [None; MAX_PER_MESSAGE];
        let mut n = 0;
        self.stats.ras_messages += 1;
        let mut sink = |a: Announced| {
            if let Some(cell) = found.get_mut(n) {
                *cell = Some(a);
                n += 1;
            }
        };
        if signal::ras::parse(p.payload, &mut sink).is_err() {
            self.stats.decode_errors += 1;
        }
        for a in found.into_iter().take(n).flatten() {
            self.announce(flow, id, a, p.ts, false);
        }
    }

    fn rvp(&mut self, flow: &mut Flow, p: &Packet<'_>) {
        let Ok(req) = rvp::parse_request(p.payload) else {
            return;
        };
        let Some(cb) = req.call_back.filter(|_| req.is_subscribe()) else {
            return;
        };
        self.stats.rvp_subscribes += 1;
        let host = match cb.host {
            rvp::CallBackHost::Ip(ip) => ip,
            rvp::CallBackHost::Name(_) => flow.client.ip,
        };
        let proto = match cb.proto {
            rvp::CallBackProto::Tcp => Proto::Tcp,
            rvp::CallBackProto::Udp => Proto::Udp,
        };
        let lifetime = req
            .lifetime_s
            .map_or(RVP_DEFAULT_LIFETIME_S, u64::from)
            .min(RVP_MAX_LIFETIME_S);
        let id = self.slot(flow, SlotKind::Other);
        let e = Expectation::new(
            flow,
            self.ids.rvp_callback,
            proto,
            Endpoint::new(host, cb.port),
            "Call-Back",
            "SUBSCRIBE",
            p.ts,
            lifetime as Nanos * SECOND,
        );
        if let Some(slot) = self.slots.get_mut(id as usize).and_then(Option::as_mut) {
            self.expect.add(e, &mut slot.announced);
        }
    }

    /// Turns one announced address into an expectation, if it calls for a connection.
    fn announce(&mut self, flow: &Flow, slot: u32, a: Announced, ts: Nanos, tunnelling: bool) {
        let ids = self.ids;
        let registration = matches!(a.context, Context::Ras(k) if k != RasKind::ADMISSION_CONFIRM && k != RasKind::LOCATION_CONFIRM);
        let (service, optional) = match a.kind {
            AddrKind::H245Address => (ids.h323_h245, tunnelling),
            AddrKind::MediaChannel | AddrKind::MediaControlChannel => (ids.h323_media, false),
            AddrKind::CallSignalAddress => (ids.h323, registration),
            AddrKind::DestCallSignalAddress if matches!(a.context, Context::Ras(k) if k == RasKind::ADMISSION_CONFIRM) => {
                (ids.h323, false)
            }
            _ => return,
        };
        let e = Expectation {
            optional,
            ..Expectation::new(
                flow,
                service,
                a.kind.transport(),
                a.addr,
                a.kind.key(),
                a.context.key(),
                ts,
                H323_WINDOW,
            )
        };
        if let Some(slot) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) {
            self.expect.add(e, &mut slot.announced);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_plausibility() {
        let mut rtp = [0u8; 172];
        rtp[0] = 0x80;
        assert!(plausible_rtp(&rtp), "PCMU");
        rtp[1] = 0x80 | 97;
        assert!(plausible_rtp(&rtp), "dynamic with marker");
        rtp[1] = 72;
        assert!(!plausible_rtp(&rtp), "72 is no RTP payload type");
        assert!(
            plausible_rtp(&[0x81, 200, 0, 6, 0, 0, 0, 1]),
            "RTCP sender report"
        );
        assert!(!plausible_rtp(b"\x00\x01 NetBIOS-ish"), "version 0");
        assert!(!plausible_rtp(&[0x80, 0]), "too short");
    }
}
