//! Classification: which Exchange service a flow belongs to.
//!
//! In order: an expectation learned from signalling (a follow-up connection, see
//! [`crate::track`]), then the catalogue by server port, then by client port (mid-stream captures
//! may have the roles backwards), else `unclassified`. Trackers may then refine a flow from its
//! payload (RVP on port 80 is `rvp`, not `http`). Classification keeps its per-flow data in
//! [`FlowClass`], which the flow table carries for it.

mod catalogue;
mod expect;

pub use catalogue::{
    Catalogue, CatalogueError, Interface, Origin, Service, ServiceId, ServiceKind, MSRPC_DYNAMIC,
};
pub use expect::{Basis, ExpectConfig, ExpectTable, Expectation};

use crate::packet::Proto;

/// What classification keeps per flow (the flow table's per-flow data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowClass {
    pub service: ServiceId,
    /// Id of the expectation this flow fulfilled, if it is a follow-up.
    pub followup_of: Option<u32>,
    /// The service was taken from the client's port alone (no other way to tell the server).
    pub by_client_port: bool,
    /// Tracker state slot, if trackers read this flow.
    pub tracker: Option<u32>,
    /// Trackers' payload signatures have had their look (or the flow has trackers).
    pub probed: bool,
}

impl Default for FlowClass {
    fn default() -> Self {
        FlowClass {
            service: ServiceId::PENDING,
            followup_of: None,
            by_client_port: false,
            tracker: None,
            probed: false,
        }
    }
}

/// A flow as the stages from classification on see it.
pub type Flow = crate::flow::Flow<FlowClass>;
/// The flow table of a run.
pub type FlowTable = crate::flow::FlowTable<FlowClass>;

/// Decides each flow's service from the catalogue.
pub struct Classifier {
    catalogue: Catalogue,
    unclassified: ServiceId,
}

impl Classifier {
    pub fn new(catalogue: Catalogue) -> Classifier {
        let unclassified = catalogue.must("unclassified");
        Classifier {
            catalogue,
            unclassified,
        }
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// True when `port` is a catalogue port for `proto`.
    #[inline]
    pub fn is_server_port(&self, proto: Proto, port: u16) -> bool {
        self.catalogue.lookup(proto, port).is_some()
    }

    /// Gives a new flow its service from the catalogue.
    pub fn classify_new(&self, flow: &mut Flow) {
        if let Some(s) = self.catalogue.lookup(flow.proto, flow.server.port) {
            flow.class.service = s;
        } else if let Some(s) = self.catalogue.lookup(flow.proto, flow.client.port) {
            flow.class.service = s;
            flow.class.by_client_port = true;
        } else {
            flow.class.service = self.unclassified;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::FlowConfig;
    use crate::packet::{tcp_flags, Endpoint, Packet};
    use crate::track::Trackers;

    fn pkt<'a>(src: &str, dst: &str, flags: u8, payload: &'a [u8]) -> Packet<'a> {
        let ep = |s: &str| {
            let (ip, port) = s.rsplit_once(':').unwrap();
            Endpoint::new(ip.parse().unwrap(), port.parse().unwrap())
        };
        Packet {
            ts: 1,
            wire_len: 60 + payload.len() as u32,
            proto: Proto::Tcp,
            src: ep(src),
            dst: ep(dst),
            tcp_flags: flags,
            seq: 1,
            ack: 0,
            payload,
            unreachable: None,
            fragment: None,
        }
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
