//! RVP (Exchange 2000 Instant Messaging) on tcp/80: tells RVP apart from HTTP by the first client
//! requests' RVP headers (reclassifying the flow), then turns every `SUBSCRIBE`'s `Call-Back` into
//! an expected callback connection from the server.

use super::{Announcement, Cx, Dir, FlowInfo, Tracker, TrackerKind, SECOND};
use crate::classify::{Catalogue, ServiceId};
use crate::packet::{Endpoint, Nanos, Proto};
use crate::signal::rvp;

/// Client payloads of an `http` flow looked at before deciding it is plain HTTP.
const MAX_INSPECT: u8 = 4;
/// Default and longest RVP subscription honoured.
const RVP_DEFAULT_LIFETIME_S: u64 = 14_400;
const RVP_MAX_LIFETIME_S: u64 = 86_400;

#[derive(Clone, Copy, Debug)]
struct Ids {
    rvp: ServiceId,
    rvp_callback: ServiceId,
}

pub(super) struct RvpKind(Ids);

impl RvpKind {
    pub fn new(c: &Catalogue) -> Self {
        RvpKind(Ids {
            rvp: c.must("rvp"),
            rvp_callback: c.must("rvp_callback"),
        })
    }
}

struct Rvp {
    ids: Ids,
    /// The flow is RVP (by its service or its requests).
    is_rvp: bool,
    inspected: u8,
    done: bool,
}

impl Tracker for Rvp {
    fn stream(&mut self, dir: Dir, bytes: &[u8], cx: &mut Cx<'_>) -> usize {
        if dir != Dir::ToServer || self.done {
            return bytes.len();
        }
        if !self.is_rvp {
            self.inspected += 1;
            if rvp::looks_like_rvp(bytes) {
                self.is_rvp = true;
                cx.reclassify(self.ids.rvp);
            } else {
                self.done = self.inspected >= MAX_INSPECT;
                return bytes.len();
            }
        }
        self.subscribe(bytes, cx);
        bytes.len()
    }

    fn done(&self) -> bool {
        self.done
    }
}

impl Rvp {
    fn subscribe(&self, bytes: &[u8], cx: &mut Cx<'_>) {
        let Ok(req) = rvp::parse_request(bytes) else {
            return;
        };
        let Some(cb) = req.call_back.filter(|_| req.is_subscribe()) else {
            return;
        };
        cx.count("subscribes");
        let host = match cb.host {
            rvp::CallBackHost::Ip(ip) => ip,
            rvp::CallBackHost::Name(_) => cx.flow.client.ip,
        };
        let proto = match cb.proto {
            rvp::CallBackProto::Tcp => Proto::Tcp,
            rvp::CallBackProto::Udp => Proto::Udp,
        };
        let lifetime = req
            .lifetime_s
            .map_or(RVP_DEFAULT_LIFETIME_S, u64::from)
            .min(RVP_MAX_LIFETIME_S);
        cx.announce(Announcement::new(
            self.ids.rvp_callback,
            proto,
            Endpoint::new(host, cb.port),
            "Call-Back",
            "SUBSCRIBE",
            lifetime as Nanos * SECOND,
        ));
    }
}

impl TrackerKind for RvpKind {
    fn name(&self) -> &'static str {
        "rvp"
    }

    fn attach(&self, flow: &FlowInfo) -> Box<dyn Tracker> {
        Box::new(Rvp {
            ids: self.0,
            is_rvp: flow.service == self.0.rvp,
            inspected: 0,
            done: false,
        })
    }
}
