//! Decoding: link layer, IPv4/IPv6, TCP/UDP/ICMP, into a [`Packet`].
//!
//! The pipeline's per-packet hot path. [`decode`] peels one frame in three steps, each in its own
//! file: `link.rs` strips the link layer by hand (Ethernet with VLAN/QinQ/PPPoE/MPLS, Linux SLL
//! and SLL2, raw IP, BSD null/loopback); `ip.rs` reads IPv4/IPv6 with etherparse's header slices
//! and the lax length rule of its `Lax*` slices (packets cut short by the snap length keep what
//! was captured; IPv6 extension headers are skipped); `transport.rs` reads the first bytes of
//! TCP/UDP/ICMP, including the packet quoted by an ICMP destination-unreachable.
//! [`FragmentTracker`] (`fragment.rs`) gives trailing IP fragments the ports of their first
//! fragment.
//!
//! Nothing here allocates or panics: every read goes through a checked slice access, and a frame
//! that cannot be decoded becomes a [`SkipReason`] that the caller counts.

mod fragment;
mod ip;
mod link;
mod transport;

use std::fmt;

use crate::packet::{Packet, RawPacket};

pub use fragment::FragmentTracker;
pub use link::linktype;
pub(crate) use transport::quoted_flow;

/// Protocol layer a packet could not be decoded at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layer {
    /// Ethernet, VLAN tags, PPPoE, MPLS, Linux SLL/SLL2, null/loopback header.
    Link,
    /// IPv4 or IPv6 header, including IPv4 options and IPv6 extension headers.
    Ip,
    /// The TCP, UDP or ICMP header.
    Transport,
}

impl Layer {
    /// Stable lower-case name, used in skip-reason keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Link => "link",
            Layer::Ip => "ip",
            Layer::Transport => "transport",
        }
    }
}

/// Why a frame was not turned into a [`Packet`]. Every such frame is counted by reason.
///
/// The [`Display`](fmt::Display) form is the stable snake_case key the reports use:
/// `link_type_<n>`, `non_ip`, `truncated_link`, `truncated_ip`, `truncated_transport`,
/// `malformed_link`, `malformed_ip`, `malformed_transport`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// The capture's link type is not one exflow decodes.
    UnsupportedLinkType(u32),
    /// Not IP (ARP, LLDP, spanning tree, PPP control, MPLS pseudowire, unknown address family...).
    NonIp,
    /// Cut short before the named layer's header was complete.
    Truncated(Layer),
    /// The named layer's header is invalid.
    Malformed(Layer),
}

impl SkipReason {
    /// The key without the link type number: `unsupported_link_type` for
    /// [`SkipReason::UnsupportedLinkType`], otherwise the same as the [`Display`](fmt::Display)
    /// form. Allocation-free, for hot-path counters keyed by string.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::UnsupportedLinkType(_) => "unsupported_link_type",
            SkipReason::NonIp => "non_ip",
            SkipReason::Truncated(Layer::Link) => "truncated_link",
            SkipReason::Truncated(Layer::Ip) => "truncated_ip",
            SkipReason::Truncated(Layer::Transport) => "truncated_transport",
            SkipReason::Malformed(Layer::Link) => "malformed_link",
            SkipReason::Malformed(Layer::Ip) => "malformed_ip",
            SkipReason::Malformed(Layer::Transport) => "malformed_transport",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::UnsupportedLinkType(n) => write!(f, "link_type_{n}"),
            r => f.write_str(r.as_str()),
        }
    }
}

/// Decodes one frame. Never panics, never allocates.
///
/// `wire_len` is copied from the frame; `payload` is the captured transport payload, bounded by
/// the IP length fields (so Ethernet padding is never included) and by the captured bytes.
/// ICMP echo request/reply carry their identifier as both ports, so a ping and its answer form
/// one flow, and an ICMP error quoting a ping is attributed to it.
#[inline]
pub fn decode<'a>(raw: &RawPacket<'a>) -> Result<Packet<'a>, SkipReason> {
    let (ip_bytes, version) = link::strip(raw.link_type, raw.data)?;
    let l3 = ip::parse(ip_bytes, version)?;
    transport::decode(raw, &l3)
}
