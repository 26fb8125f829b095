//! Signalling parsers: pure functions from bytes to messages and the transport addresses they
//! announce (H.323: TPKT, Q.931/H.225, H.245, RAS; RVP). The expectation table turns their output
//! into expected follow-up connections.
//!
//! The H.323 parsers share one output type, [`Announced`]: which address, what kind of address it
//! is and which message carried it. They hand each one to a caller-supplied sink as soon as it is
//! decoded, so nothing is allocated per message. The string keys ([`AddrKind::key`],
//! [`Context::key`]) match the columns of the corpus ground truth (`H323_TRUTH.tsv`), which was
//! made from tshark's field names.

pub mod cotp;
pub mod dcerpc;
pub mod dns;
pub mod h225;
mod h225_types;
pub mod h245;
mod h245_types;
pub mod imap;
pub mod ldap;
pub mod per;
pub mod pop3;
pub mod q931;
pub mod ras;
pub mod rvp;
pub mod smtp;
pub mod tpkt;

#[cfg(test)]
pub(crate) mod test_util;

use crate::packet::{Endpoint, Proto};

pub use h225::UuieKind;
pub use ras::RasKind;

/// One transport address announced by a signalling message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Announced {
    pub kind: AddrKind,
    pub context: Context,
    pub addr: Endpoint,
}

/// What an announced address is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AddrKind {
    /// H.225 `h245Address`: the peer will accept the H.245 control connection here (TCP).
    H245Address,
    /// H.245 `mediaChannel`: RTP is to be sent here (UDP).
    MediaChannel,
    /// H.245 `mediaControlChannel`: RTCP is to be sent here (UDP).
    MediaControlChannel,
    /// RAS `callSignalAddress` (RRQ/RCF/URQ/LCF/IRR): an endpoint's H.225 call signalling (TCP).
    CallSignalAddress,
    /// RAS `rasAddress` (GRQ/GCF/RRQ/RCF/LCF/IRR, alternate gatekeepers) (UDP).
    RasAddress,
    /// Setup `sourceCallSignalAddress` (TCP).
    SourceCallSignalAddress,
    /// Setup / ARQ / ACF `destCallSignalAddress` (TCP).
    DestCallSignalAddress,
    /// ARQ `srcCallSignalAddress` (TCP).
    SrcCallSignalAddress,
    /// LRQ / IRQ `replyAddress` (UDP).
    ReplyAddress,
    /// Facility `alternativeAddress`: where to re-send the call (TCP).
    AlternativeAddress,
}

impl AddrKind {
    /// Stable key, as in the ground-truth file (`h245Address`, `h225:rasAddress`, ...).
    pub fn key(self) -> &'static str {
        match self {
            AddrKind::H245Address => "h245Address",
            AddrKind::MediaChannel => "mediaChannel",
            AddrKind::MediaControlChannel => "mediaControlChannel",
            AddrKind::CallSignalAddress => "h225:callSignalAddress",
            AddrKind::RasAddress => "h225:rasAddress",
            AddrKind::SourceCallSignalAddress => "h225:sourceCallSignalAddress",
            AddrKind::DestCallSignalAddress => "h225:destCallSignalAddress",
            AddrKind::SrcCallSignalAddress => "h225:srcCallSignalAddress",
            AddrKind::ReplyAddress => "h225:replyAddress",
            AddrKind::AlternativeAddress => "h225:alternativeAddress",
        }
    }

    /// The transport a connection to this address would use.
    pub fn transport(self) -> Proto {
        match self {
            AddrKind::MediaChannel
            | AddrKind::MediaControlChannel
            | AddrKind::RasAddress
            | AddrKind::ReplyAddress => Proto::Udp,
            _ => Proto::Tcp,
        }
    }
}

/// Which H.245 message carried an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum H245Msg {
    OpenLogicalChannel,
    OpenLogicalChannelAck,
}

impl H245Msg {
    pub fn key(self) -> &'static str {
        match self {
            H245Msg::OpenLogicalChannel => "OLC",
            H245Msg::OpenLogicalChannelAck => "OLCAck",
        }
    }
}

/// The message that carried an announced address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Context {
    /// A field of the H.225 call-signalling message itself.
    H225(UuieKind),
    /// An OpenLogicalChannel in the `fastStart` list of this H.225 message.
    FastStart(UuieKind),
    /// H.245 tunnelled in this H.225 message's `h245Control`.
    Tunnelled { carrier: UuieKind, msg: H245Msg },
    /// H.245 on its own TCP connection.
    H245(H245Msg),
    /// A RAS message (UDP/1719).
    Ras(RasKind),
}

impl Context {
    /// Stable key, as in the ground-truth file (`setup`, `fastStart,setup`, `tunnelled`, `OLC`,
    /// `registrationRequest`, ...).
    pub fn key(self) -> &'static str {
        match self {
            Context::H225(k) => k.key(),
            Context::FastStart(k) => k.fast_start_key(),
            Context::Tunnelled { .. } => "tunnelled",
            Context::H245(m) => m.key(),
            Context::Ras(k) => k.key(),
        }
    }
}

/// Why a signalling message could not be decoded. Addresses handed to the sink before the error
/// was hit were fully decoded and remain valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    #[error(transparent)]
    Q931(#[from] q931::Q931Error),
    #[error(transparent)]
    Per(#[from] per::PerError),
}

/// Hands decoded addresses to the caller's sink and counts what the decoders saw.
pub(crate) struct Emitter<'s> {
    sink: &'s mut dyn FnMut(Announced),
    pub(crate) announced: u32,
    /// Nested encodings (fastStart, h245Control elements, extension open types) that failed.
    pub(crate) nested_errors: u32,
    pub(crate) fast_start: u32,
    pub(crate) h245_control: u32,
}

impl<'s> Emitter<'s> {
    pub(crate) fn new(sink: &'s mut dyn FnMut(Announced)) -> Self {
        Emitter {
            sink,
            announced: 0,
            nested_errors: 0,
            fast_start: 0,
            h245_control: 0,
        }
    }

    /// Reports `addr` if the address decoded to an IP endpoint.
    pub(crate) fn emit(&mut self, kind: AddrKind, context: Context, addr: Option<Endpoint>) {
        if let Some(addr) = addr {
            self.announced += 1;
            (self.sink)(Announced {
                kind,
                context,
                addr,
            });
        }
    }
}
