//! MS-RPC trackers. `epm` reads the endpoint mapper on tcp/135: it matches `ept_map` and
//! `ept_lookup` requests to their responses by call id and turns every TCP or UDP tower of a
//! successful response into an expected connection to that server endpoint, from any client, of
//! the interface's catalogue service. `rpc` reads an RPC service's binds: a bind naming a
//! catalogued interface gives the flow that interface's service (on any port, by its
//! [`signature`](TrackerKind::signature) when nothing else classified the flow) and makes the
//! server endpoint expected, so later flows to it, mid-stream ones included, take the service.

use std::net::IpAddr;
use std::sync::Arc;

use super::framing::{drive, DceRpc, FrameStats};
use super::{Announcement, Cx, Dir, EndCx, FlowInfo, Tracker, TrackerKind, SECOND};
use crate::classify::{Catalogue, Interface, ServiceId, MSRPC_DYNAMIC};
use crate::packet::{Endpoint, Nanos, Proto};
use crate::signal::dcerpc::{self, ptype, Order, SyntaxId, Tower, Transport};

/// How long an endpoint the mapper handed out (or a bind proved) stays expected. Exchange
/// registers its interfaces when its services start and keeps their ports until they stop, so an
/// answer holds for as long as the server runs; 8 hours covers a working day of clients that
/// asked once, and every new answer or bind refreshes it.
pub(super) const ENDPOINT_LIFETIME: Nanos = 8 * 3600 * SECOND;
/// Largest PDU framed (`frag_len` is 16 bits: every PDU fits).
const MAX_PDU: usize = u16::MAX as usize;
/// Largest response stub reassembled from fragments.
const MAX_STUB: usize = 256 * 1024;
/// Requests remembered per flow while their responses are awaited.
const MAX_PENDING: usize = 32;
/// Client PDUs of an RPC service flow read for binds before the tracker lets go.
const MAX_BIND_PDUS: u8 = 8;

/// The catalogue's RPC interfaces, shared by every tracker of a run.
#[derive(Clone)]
struct Interfaces {
    list: Arc<[Interface]>,
    dynamic: ServiceId,
}

impl Interfaces {
    fn new(c: &Catalogue) -> Interfaces {
        Interfaces {
            list: c.interfaces().to_vec().into(),
            dynamic: c.must(MSRPC_DYNAMIC),
        }
    }

    fn find(&self, s: &SyntaxId) -> Option<&Interface> {
        self.list.iter().find(|i| i.uuid == s.uuid)
    }

    /// The service and the attributes a follow-up to interface `s` is reported with.
    fn describe(&self, s: &SyntaxId) -> (ServiceId, Vec<(&'static str, String)>) {
        let known = self.find(s);
        let attrs = vec![
            ("interface_uuid", s.uuid.to_string()),
            ("interface_version", s.version()),
            (
                "interface_name",
                known.map_or_else(String::new, |i| i.name.clone()),
            ),
        ];
        (known.map_or(self.dynamic, |i| i.service), attrs)
    }
}

pub(super) struct EpmKind(Interfaces);

impl EpmKind {
    pub fn new(c: &Catalogue) -> Self {
        EpmKind(Interfaces::new(c))
    }
}

/// A response being reassembled from fragments.
struct Partial {
    call_id: u32,
    order: Order,
    stub: Vec<u8>,
}

/// The endpoint mapper on one TCP flow.
struct Epm {
    ifaces: Interfaces,
    framers: [DceRpc; 2],
    frames: FrameStats,
    /// `(call_id, opnum)` of lookups awaiting their response, oldest first.
    pending: Vec<(u32, u16)>,
    partial: Option<Partial>,
}

impl Tracker for Epm {
    fn stream(&mut self, dir: Dir, bytes: &[u8], cx: &mut Cx<'_>) -> usize {
        let Epm {
            ifaces,
            framers,
            frames,
            pending,
            partial,
        } = self;
        drive(&mut framers[dir as usize], frames, bytes, &mut |pdu| {
            match dir {
                Dir::ToServer => on_request(pdu, pending, cx),
                Dir::ToClient => on_response(pdu, ifaces, pending, partial, cx),
            }
            true
        })
    }

    fn max_unit(&self) -> usize {
        MAX_PDU
    }

    fn end(&mut self, cx: &mut EndCx<'_>) -> Option<serde_json::Value> {
        frame_errors(&self.frames, cx);
        cx.stats
            .errors
            .add("unanswered_lookups", self.pending.len() as u64);
        None
    }
}

fn frame_errors(frames: &FrameStats, cx: &mut EndCx<'_>) {
    cx.stats.errors.add("garbage_bytes", frames.garbage_bytes);
    cx.stats.errors.add("oversize_pdus", frames.oversize);
}

fn on_request(pdu: &[u8], pending: &mut Vec<(u32, u16)>, cx: &mut Cx<'_>) {
    let Ok(h) = dcerpc::parse_header(pdu) else {
        cx.error("bad_pdu");
        return;
    };
    match h.ptype {
        ptype::BIND | ptype::ALTER_CONTEXT => match dcerpc::parse_bind(pdu) {
            Ok(_) => cx.count("binds"),
            Err(_) => cx.error("bad_bind"),
        },
        ptype::REQUEST => match dcerpc::parse_request(pdu) {
            Ok((h, r)) => {
                cx.count("requests");
                let lookup = matches!(r.opnum, dcerpc::OPNUM_EPT_MAP | dcerpc::OPNUM_EPT_LOOKUP);
                if h.first_frag() && lookup {
                    pending.retain(|&(id, _)| id != h.call_id);
                    if pending.len() >= MAX_PENDING {
                        pending.remove(0);
                        cx.error("lookups_forgotten");
                    }
                    pending.push((h.call_id, r.opnum));
                }
            }
            Err(_) => cx.error("bad_request"),
        },
        _ => {}
    }
}

fn take_pending(pending: &mut Vec<(u32, u16)>, call_id: u32) -> Option<u16> {
    let i = pending.iter().position(|&(id, _)| id == call_id)?;
    Some(pending.remove(i).1)
}

fn on_response(
    pdu: &[u8],
    ifaces: &Interfaces,
    pending: &mut Vec<(u32, u16)>,
    partial: &mut Option<Partial>,
    cx: &mut Cx<'_>,
) {
    let Ok(h) = dcerpc::parse_header(pdu) else {
        cx.error("bad_pdu");
        return;
    };
    match h.ptype {
        ptype::RESPONSE => {}
        ptype::FAULT => {
            cx.count("faults");
            take_pending(pending, h.call_id);
            return;
        }
        _ => return,
    }
    let Ok((h, stub)) = dcerpc::parse_response(pdu) else {
        cx.error("bad_response");
        return;
    };
    if !pending.iter().any(|&(id, _)| id == h.call_id) {
        // Not a lookup (or its request was not seen): nothing to learn from it.
        return;
    }
    if h.first_frag() {
        *partial = None;
        if h.last_frag() {
            finish(h.call_id, h.order, stub, ifaces, pending, cx);
            return;
        }
        *partial = Some(Partial {
            call_id: h.call_id,
            order: h.order,
            stub: stub.to_vec(),
        });
        cx.count("fragments");
        return;
    }
    let Some(p) = partial.as_mut().filter(|p| p.call_id == h.call_id) else {
        cx.error("fragment_without_first");
        return;
    };
    cx.count("fragments");
    if p.stub.len() + stub.len() > MAX_STUB {
        *partial = None;
        take_pending(pending, h.call_id);
        cx.error("response_too_long");
        return;
    }
    p.stub.extend_from_slice(stub);
    if h.last_frag() {
        if let Some(p) = partial.take() {
            finish(p.call_id, p.order, &p.stub, ifaces, pending, cx);
        }
    }
}

/// A whole lookup response: every usable tower becomes an expectation.
fn finish(
    call_id: u32,
    order: Order,
    stub: &[u8],
    ifaces: &Interfaces,
    pending: &mut Vec<(u32, u16)>,
    cx: &mut Cx<'_>,
) {
    let Some(opnum) = take_pending(pending, call_id) else {
        return;
    };
    let by = if opnum == dcerpc::OPNUM_EPT_MAP {
        "ept_map"
    } else {
        "ept_lookup"
    };
    let r = match dcerpc::parse_epm_response(stub, opnum, order) {
        Ok(r) => r,
        Err(_) => {
            cx.error("bad_epm_response");
            return;
        }
    };
    cx.count(by);
    if r.status != 0 {
        cx.count("lookups_failed");
        return;
    }
    cx.stats.errors.add("bad_towers", u64::from(r.bad_towers));
    for t in &r.towers {
        announce_tower(t, by, ifaces, cx);
    }
}

fn announce_tower(t: &Tower, by: &'static str, ifaces: &Interfaces, cx: &mut Cx<'_>) {
    let Some((transport, port)) = t.transport.filter(|&(_, port)| port != 0) else {
        cx.count("towers_not_ip");
        return;
    };
    cx.count("towers");
    let host: IpAddr = match t.ip {
        Some(ip) if !ip.is_unspecified() => ip.into(),
        _ => cx.flow.server.ip,
    };
    let proto = match transport {
        Transport::Tcp => Proto::Tcp,
        Transport::Udp => Proto::Udp,
    };
    let (service, attrs) = ifaces.describe(&t.interface);
    cx.announce(Announcement {
        attrs,
        ..Announcement::new(
            service,
            proto,
            Endpoint::new(host, port),
            "tower",
            by,
            ENDPOINT_LIFETIME,
        )
    });
}

impl TrackerKind for EpmKind {
    fn name(&self) -> &'static str {
        "epm"
    }

    fn attach(&self, _: &FlowInfo) -> Box<dyn Tracker> {
        Box::new(Epm {
            ifaces: self.0.clone(),
            framers: [DceRpc { cap: MAX_PDU }; 2],
            frames: FrameStats::default(),
            pending: Vec::new(),
            partial: None,
        })
    }
}

pub(super) struct RpcKind(Interfaces);

impl RpcKind {
    pub fn new(c: &Catalogue) -> Self {
        RpcKind(Interfaces::new(c))
    }
}

/// The catalogued interface a bind or alter_context PDU names first.
fn bound(ifaces: &Interfaces, pdu: &[u8]) -> Option<(SyntaxId, &'static str)> {
    let (h, contexts) = dcerpc::parse_bind(pdu).ok()?;
    let by = if h.ptype == ptype::BIND {
        "bind"
    } else {
        "alter_context"
    };
    contexts
        .into_iter()
        .find(|s| ifaces.find(s).is_some())
        .map(|s| (s, by))
}

/// Binds on one flow of an RPC service.
struct Rpc {
    ifaces: Interfaces,
    framer: DceRpc,
    frames: FrameStats,
    read: u8,
    /// The first catalogued interface bound (the flow record's `rpc_interface`).
    interface: Option<SyntaxId>,
    announced: Vec<ServiceId>,
}

impl Tracker for Rpc {
    fn stream(&mut self, dir: Dir, bytes: &[u8], cx: &mut Cx<'_>) -> usize {
        if dir != Dir::ToServer || self.done() {
            return bytes.len();
        }
        let Rpc {
            ifaces,
            framer,
            frames,
            read,
            interface,
            announced,
        } = self;
        drive(framer, frames, bytes, &mut |pdu| {
            *read = read.saturating_add(1);
            if let Some((s, by)) = bound(ifaces, pdu) {
                cx.count("binds");
                let (service, attrs) = ifaces.describe(&s);
                interface.get_or_insert(s);
                if service != cx.flow.service {
                    cx.reclassify(service);
                }
                if !announced.contains(&service) {
                    announced.push(service);
                    let server = cx.flow.server;
                    cx.announce(Announcement {
                        optional: true,
                        attrs,
                        ..Announcement::new(
                            service,
                            Proto::Tcp,
                            server,
                            "bind",
                            by,
                            ENDPOINT_LIFETIME,
                        )
                    });
                }
            }
            *read < MAX_BIND_PDUS
        })
    }

    fn done(&self) -> bool {
        self.read >= MAX_BIND_PDUS
    }

    fn max_unit(&self) -> usize {
        MAX_PDU
    }

    fn end(&mut self, cx: &mut EndCx<'_>) -> Option<serde_json::Value> {
        frame_errors(&self.frames, cx);
        let s = self.interface?;
        let name = self.ifaces.find(&s).map_or("", |i| i.name.as_str());
        Some(serde_json::json!({
            "rpc_interface": { "uuid": s.uuid.to_string(), "version": s.version(), "name": name }
        }))
    }
}

impl TrackerKind for RpcKind {
    fn name(&self) -> &'static str {
        "rpc"
    }

    fn attach(&self, _: &FlowInfo) -> Box<dyn Tracker> {
        Box::new(Rpc {
            ifaces: self.0.clone(),
            framer: DceRpc { cap: MAX_PDU },
            frames: FrameStats::default(),
            read: 0,
            interface: None,
            announced: Vec::new(),
        })
    }

    fn has_signature(&self) -> bool {
        !self.0.list.is_empty()
    }

    fn signature(&self, payload: &[u8]) -> Option<ServiceId> {
        match payload {
            [5, 0 | 1, ptype::BIND | ptype::ALTER_CONTEXT, ..] => {}
            _ => return None,
        }
        let (s, _) = bound(&self.0, payload)?;
        self.0.find(&s).map(|i| i.service)
    }
}
