//! Classification: which Exchange service a flow belongs to.
//!
//! In order: an expectation learned from signalling (a follow-up connection, see
//! [`crate::track`]), then the catalogue by server port, then (rarely) by client port, else
//! `unclassified`. Trackers may then refine a flow from its payload (RVP on port 80 is `rvp`, not
//! `http`). Classification keeps its per-flow data in [`FlowClass`], which the flow table carries
//! for it.
//!
//! The client's port decides only when the capture gives no other way to tell which side is the
//! server: a TCP flow seen mid-stream with neither its SYN nor its SYN-ACK, or a UDP flow (whose
//! first sender is only a guess; e.g. a DNS response known only from the ICMP port-unreachable
//! that quoted it). Even then it does not
//! when the server side's port is well known (below 1024: that side is the server) or the client
//! side's port looks ephemeral (1024–5000, which Windows 2000/XP hand out to clients and which
//! holds 1503, 1720, 1731, 3268 and 3269, or 49152 and up). A flow classified this way is marked
//! [`FlowClass::by_client_port`]; no tracker runs on it, so no inference or expectation is ever
//! made from it.

mod catalogue;
mod expect;
mod pin;

pub use catalogue::{
    Catalogue, CatalogueError, Interface, Origin, Service, ServiceId, ServiceKind, MSRPC_DYNAMIC,
};
pub use expect::{Basis, ExpectConfig, ExpectTable, Expectation, RETIRE_AFTER};
pub use pin::{port_pin, Host, PortPin, DC_SERVICES};

use crate::nonmax::NonMaxU32;
use crate::packet::Proto;

/// What classification keeps per flow (the flow table's per-flow data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowClass {
    pub service: ServiceId,
    /// Id of the expectation this flow fulfilled, if it is a follow-up (4 bytes, not 8:
    /// [`followup_of`](Self::followup_of)).
    followup: Option<NonMaxU32>,
    /// The service was taken from the client's port alone (no other way to tell the server).
    pub by_client_port: bool,
    /// Tracker state slot, if trackers read this flow (4 bytes, not 8).
    pub tracker: Option<NonMaxU32>,
    /// Trackers' payload signatures have had their look (or the flow has trackers).
    pub probed: bool,
}

impl Default for FlowClass {
    fn default() -> Self {
        FlowClass {
            service: ServiceId::PENDING,
            followup: None,
            by_client_port: false,
            tracker: None,
            probed: false,
        }
    }
}

impl FlowClass {
    /// Id of the expectation this flow fulfilled, if it is a follow-up.
    #[inline]
    pub fn followup_of(&self) -> Option<u32> {
        self.followup.map(NonMaxU32::get)
    }

    /// Marks the flow as the follow-up of expectation `id` (expectation ids wrap before
    /// `u32::MAX`, which is never one).
    pub fn set_followup_of(&mut self, id: u32) {
        debug_assert!(id <= expect::MAX_ID);
        self.followup = NonMaxU32::new(id);
    }
}

/// A flow as the stages from classification on see it.
pub type Flow = crate::flow::Flow<FlowClass>;
/// The flow table of a run.
pub type FlowTable = crate::flow::FlowTable<FlowClass>;

/// Decides each flow's service from the catalogue.
pub struct Classifier {
    catalogue: std::sync::Arc<Catalogue>,
    unclassified: ServiceId,
}

impl Classifier {
    pub fn new(catalogue: Catalogue) -> Classifier {
        let unclassified = catalogue.must("unclassified");
        Classifier {
            catalogue: std::sync::Arc::new(catalogue),
            unclassified,
        }
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// The catalogue, shared (reports of a run point at it rather than copy its port tables).
    pub fn shared_catalogue(&self) -> std::sync::Arc<Catalogue> {
        std::sync::Arc::clone(&self.catalogue)
    }

    /// True when `port` is a catalogue port for `proto`.
    #[inline]
    pub fn is_server_port(&self, proto: Proto, port: u16) -> bool {
        self.catalogue.lookup(proto, port).is_some()
    }

    /// Gives a new flow its service from the catalogue (module doc: when the client's port may
    /// decide).
    pub fn classify_new(&self, flow: &mut Flow) {
        if let Some(s) = self.catalogue.lookup(flow.proto, flow.server.port) {
            flow.class.service = s;
            return;
        }
        let by_client = client_port_may_decide(flow)
            .then(|| self.catalogue.lookup(flow.proto, flow.client.port))
            .flatten();
        flow.class.by_client_port = by_client.is_some();
        flow.class.service = by_client.unwrap_or(self.unclassified);
    }
}

/// Ports Windows 2000/XP (1024–5000) and IANA (49152–65535) hand out to clients.
pub fn looks_ephemeral(port: u16) -> bool {
    (1024..=5000).contains(&port) || port >= 49152
}

/// The capture gives no other way to tell the server (TCP mid-stream, no SYN nor SYN-ACK seen;
/// UDP) and neither port says the roles are as taken.
fn client_port_may_decide(flow: &Flow) -> bool {
    let unknown_roles = match flow.proto {
        Proto::Tcp => flow.tcp.midstream() && !flow.tcp.client_syn() && !flow.tcp.synack(),
        Proto::Udp => true,
        _ => false,
    };
    unknown_roles && flow.server.port >= 1024 && !looks_ephemeral(flow.client.port)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::FlowConfig;
    use crate::packet::{tcp_flags, Packet};
    use crate::track::Trackers;

    fn pkt<'a>(src: &str, dst: &str, flags: u8, payload: &'a [u8]) -> Packet<'a> {
        crate::packet::testkit::tcp(1, src, dst, flags, 1, payload)
    }

    fn classify(packets: &[Packet<'_>]) -> String {
        let c = Classifier::new(Catalogue::builtin());
        let mut trackers = Trackers::new(c.catalogue(), ExpectConfig::default(), 1 << 20);
        let mut t = FlowTable::new(FlowConfig::default());
        let mut service = None;
        for p in packets {
            let (touch, f) = t.packet(p, |pr, port| c.is_server_port(pr, port), &mut |_, _| {});
            if touch == crate::flow::Touch::New {
                c.classify_new(f);
                trackers.attach(f);
            }
            trackers.packet(f, p);
            service = Some(f.class.service);
        }
        c.catalogue().id(service.unwrap()).to_string()
    }

    #[test]
    fn client_port_decides_only_mid_stream_and_never_an_ephemeral_port() {
        let c = Classifier::new(Catalogue::builtin());
        let mut t = FlowTable::new(FlowConfig::default());
        // Issue 11: HTTP to 8000 from Windows client port 1731 with its SYN is not `audio`; nor
        // are 1503, 1720 and 3268 as client ports.
        for port in [1731, 1503, 1720, 3268] {
            let syn = pkt(
                &format!("10.0.0.1:{port}"),
                "10.0.0.2:8000",
                tcp_flags::SYN,
                b"",
            );
            let (_, f) = t.packet(&syn, |pr, p| c.is_server_port(pr, p), &mut |_, _| {});
            c.classify_new(f);
            assert_eq!(c.catalogue().id(f.class.service), "unclassified", "{port}");
            assert!(!f.class.by_client_port);
        }
        // The server's own service wins whatever the client port.
        assert_eq!(
            classify(&[pkt("10.0.0.1:3268", "10.0.0.2:80", tcp_flags::SYN, b"")]),
            "http"
        );
        // Mid-stream without SYN: the catalogue port 6667 (not ephemeral) on the side taken for
        // the client decides, and the flow says so.
        let mid = pkt("10.0.0.1:6667", "10.0.0.2:20000", tcp_flags::ACK, b"x");
        let (_, f) = t.packet(&mid, |_, _| false, &mut |_, _| {});
        assert_eq!(f.client.port, 6667);
        c.classify_new(f);
        assert_eq!(c.catalogue().id(f.class.service), "irc");
        assert!(f.class.by_client_port);
        // ... but not when the other side's port is well known, nor from an ephemeral port.
        for (client, server) in [
            ("10.0.0.1:6667", "10.0.0.2:800"),
            ("10.0.0.1:1731", "10.0.0.2:20000"),
        ] {
            let mid = pkt(client, server, tcp_flags::ACK, b"x");
            let (_, f) = t.packet(&mid, |_, _| false, &mut |_, _| {});
            c.classify_new(f);
            assert_eq!(
                c.catalogue().id(f.class.service),
                "unclassified",
                "{client}"
            );
            assert!(!f.class.by_client_port);
        }
    }

    #[test]
    fn by_server_port_then_client_port() {
        assert_eq!(
            classify(&[pkt("10.0.0.1:40000", "10.0.0.2:25", tcp_flags::SYN, b"")]),
            "smtp"
        );
        // Mid-stream, server talks first: source port decides.
        assert_eq!(
            classify(&[pkt("10.0.0.2:389", "10.0.0.1:40000", tcp_flags::ACK, b"x")]),
            "ldap"
        );
        assert_eq!(
            classify(&[pkt("10.0.0.1:40000", "10.0.0.2:1863", tcp_flags::SYN, b"")]),
            "unclassified"
        );
    }

    #[test]
    fn rvp_on_port_80_is_not_http() {
        let syn = pkt("10.0.0.1:40000", "10.0.0.2:80", tcp_flags::SYN, b"");
        let sub =
            b"SUBSCRIBE /instmsg/aliases/bob HTTP/1.1\r\nRVP-Notifications-Version: 0.2\r\n\r\n";
        let data = pkt(
            "10.0.0.1:40000",
            "10.0.0.2:80",
            tcp_flags::ACK | tcp_flags::PSH,
            sub,
        );
        assert_eq!(classify(&[syn, data]), "rvp");
        let get = b"GET /exchange/ HTTP/1.1\r\nHost: x\r\n\r\n";
        let data = pkt(
            "10.0.0.1:40000",
            "10.0.0.2:80",
            tcp_flags::ACK | tcp_flags::PSH,
            get,
        );
        assert_eq!(classify(&[syn, data]), "http");
        let gena = b"SUBSCRIBE /upnp HTTP/1.1\r\nCALLBACK: <http://10.0.0.1:2869/>\r\nNT: upnp:event\r\n\r\n";
        let data = pkt(
            "10.0.0.1:40000",
            "10.0.0.2:80",
            tcp_flags::ACK | tcp_flags::PSH,
            gena,
        );
        assert_eq!(classify(&[syn, data]), "http");
    }
}
