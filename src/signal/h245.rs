//! H.245 (`MultimediaSystemControlMessage`) decoding down to media addresses.
//!
//! Only two messages carry the addresses DESIGN.md needs: `request.openLogicalChannel`
//! (`h2250LogicalChannelParameters.mediaChannel` / `mediaControlChannel`, forward and reverse)
//! and `response.openLogicalChannelAck` (reverse parameters and
//! `forwardMultiplexAckParameters.h2250LogicalChannelAckParameters`). Every other message is
//! recognised by its CHOICE index and left undecoded.
//!
//! H.245 arrives three ways: on its own TCP connection (one message per TPKT, [`parse_frame`]),
//! tunnelled in H.225 `h245Control`, and as bare OpenLogicalChannels in H.225 `fastStart`
//! ([`parse_open_logical_channel`]); a [`Carrier`] says which, and becomes the [`Context`].

use super::h245_types::{
    skip_data_type, skip_h222_parameters, skip_h223_parameters, skip_nonstandard_list,
    skip_v76_parameters, transport_address,
};
use super::per::{Choice, PerError, PerReader, Result};
use super::{AddrKind, Announced, Context, Emitter, H245Msg, UuieKind};

/// How an H.245 message reached us.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Carrier {
    /// The separate H.245 TCP connection.
    Direct,
    /// Tunnelled in this H.225 message's `h245Control`.
    Tunnelled(UuieKind),
    /// An element of this H.225 message's `fastStart`.
    FastStart(UuieKind),
}

impl Carrier {
    fn context(self, msg: H245Msg) -> Context {
        match self {
            Carrier::Direct => Context::H245(msg),
            Carrier::Tunnelled(carrier) => Context::Tunnelled { carrier, msg },
            Carrier::FastStart(carrier) => Context::FastStart(carrier),
        }
    }
}

/// What an H.245 message was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct H245Summary {
    /// request (0), response (1), command (2), indication (3), or an extension.
    pub category: Choice,
    /// The message's alternative within its category.
    pub message: Choice,
    /// Set for the messages whose addresses were decoded.
    pub decoded: Option<H245Msg>,
    /// Addresses handed to the sink.
    pub announced: u32,
}

impl H245Summary {
    /// Name of the message, e.g. `terminalCapabilitySet` (`extension` for extension alternatives).
    pub fn name(&self) -> &'static str {
        message_name(self.category, self.message)
    }
}

const REQUESTS: [&str; 11] = [
    "nonStandard",
    "masterSlaveDetermination",
    "terminalCapabilitySet",
    "openLogicalChannel",
    "closeLogicalChannel",
    "requestChannelClose",
    "multiplexEntrySend",
    "requestMultiplexEntry",
    "requestMode",
    "roundTripDelayRequest",
    "maintenanceLoopRequest",
];
const RESPONSES: [&str; 19] = [
    "nonStandard",
    "masterSlaveDeterminationAck",
    "masterSlaveDeterminationReject",
    "terminalCapabilitySetAck",
    "terminalCapabilitySetReject",
    "openLogicalChannelAck",
    "openLogicalChannelReject",
    "closeLogicalChannelAck",
    "requestChannelCloseAck",
    "requestChannelCloseReject",
    "multiplexEntrySendAck",
    "multiplexEntrySendReject",
    "requestMultiplexEntryAck",
    "requestMultiplexEntryReject",
    "requestModeAck",
    "requestModeReject",
    "roundTripDelayResponse",
    "maintenanceLoopAck",
    "maintenanceLoopReject",
];
const COMMANDS: [&str; 7] = [
    "nonStandard",
    "maintenanceLoopOffCommand",
    "sendTerminalCapabilitySet",
    "encryptionCommand",
    "flowControlCommand",
    "endSessionCommand",
    "miscellaneousCommand",
];
const INDICATIONS: [&str; 14] = [
    "nonStandard",
    "functionNotUnderstood",
    "masterSlaveDeterminationRelease",
    "terminalCapabilitySetRelease",
    "openLogicalChannelConfirm",
    "requestChannelCloseRelease",
    "multiplexEntrySendRelease",
    "requestMultiplexEntryRelease",
    "requestModeRelease",
    "miscellaneousIndication",
    "jitterIndication",
    "h223SkewIndication",
    "newATMVCIndication",
    "userInput",
];

fn table(category: u32) -> &'static [&'static str] {
    match category {
        0 => &REQUESTS,
        1 => &RESPONSES,
        2 => &COMMANDS,
        _ => &INDICATIONS,
    }
}

/// Name of a root message alternative; `extension` for anything in an extension.
pub fn message_name(category: Choice, message: Choice) -> &'static str {
    match (category, message) {
        (Choice::Root(c), Choice::Root(m)) => table(c).get(m as usize).copied().unwrap_or("?"),
        _ => "extension",
    }
}

/// Decodes the H.245 messages in one TPKT payload of an H.245 connection. Decoding goes on to
/// a following message only after an OpenLogicalChannel(Ack), the only messages walked to their
/// end; the summary is that of the first message.
pub fn parse_frame(
    tpkt_payload: &[u8],
    sink: &mut dyn FnMut(Announced),
) -> std::result::Result<H245Summary, PerError> {
    let mut out = Emitter::new(sink);
    let mut r = PerReader::new(tpkt_payload);
    let first = message(&mut r, Carrier::Direct, &mut out)?;
    let mut last = first;
    while last.decoded.is_some() && r.remaining_bits() >= 8 {
        r.align();
        last = message(&mut r, Carrier::Direct, &mut out)?;
    }
    Ok(H245Summary {
        announced: out.announced,
        ..first
    })
}

/// Decodes one `MultimediaSystemControlMessage` (e.g. an `h245Control` element).
pub fn parse_message(
    bytes: &[u8],
    carrier: Carrier,
    sink: &mut dyn FnMut(Announced),
) -> std::result::Result<H245Summary, PerError> {
    let mut out = Emitter::new(sink);
    let summary = message(&mut PerReader::new(bytes), carrier, &mut out)?;
    Ok(H245Summary {
        announced: out.announced,
        ..summary
    })
}

/// Decodes a standalone `OpenLogicalChannel` (a `fastStart` element); returns how many
/// addresses were handed to the sink.
pub fn parse_open_logical_channel(
    bytes: &[u8],
    carrier: Carrier,
    sink: &mut dyn FnMut(Announced),
) -> std::result::Result<u32, PerError> {
    let mut out = Emitter::new(sink);
    open_logical_channel(&mut PerReader::new(bytes), carrier, &mut out)?;
    Ok(out.announced)
}

pub(crate) fn message(
    r: &mut PerReader<'_>,
    carrier: Carrier,
    out: &mut Emitter<'_>,
) -> Result<H245Summary> {
    r.at("MultimediaSystemControlMessage");
    let category = r.choice(4, true)?;
    let (message, decoded) = match category {
        Choice::Root(c) => {
            let roots = table(c).len() as u32;
            let message = r.choice(roots, true)?;
            let decoded = match (c, message) {
                (0, Choice::Root(3)) => {
                    open_logical_channel(r, carrier, out)?;
                    Some(H245Msg::OpenLogicalChannel)
                }
                (1, Choice::Root(5)) => {
                    open_logical_channel_ack(r, carrier, out)?;
                    Some(H245Msg::OpenLogicalChannelAck)
                }
                _ => None,
            };
            (message, decoded)
        }
        Choice::Ext(i) => (Choice::Ext(i), None),
    };
    Ok(H245Summary {
        category,
        message,
        decoded,
        announced: 0,
    })
}

/// `OpenLogicalChannel`, to its end.
pub(crate) fn open_logical_channel(
    r: &mut PerReader<'_>,
    carrier: Carrier,
    out: &mut Emitter<'_>,
) -> Result<()> {
    let ctx = carrier.context(H245Msg::OpenLogicalChannel);
    r.at("OpenLogicalChannel");
    let olc = r.sequence(true, 1)?;
    r.constrained(1, 65535)?; // forwardLogicalChannelNumber
    r.at("forwardLogicalChannelParameters");
    let fwd = r.sequence(true, 1)?;
    if fwd.has(0) {
        r.constrained(0, 65535)?; // portNumber
    }
    skip_data_type(r)?;
    r.at("forward multiplexParameters");
    match r.choice(3, true)? {
        Choice::Root(0) => skip_h222_parameters(r)?,
        Choice::Root(1) => skip_h223_parameters(r)?,
        Choice::Root(_) => skip_v76_parameters(r)?,
        Choice::Ext(0) => h2250_parameters(r.open_type()?, ctx, out)?,
        Choice::Ext(_) => r.skip_open_type()?,
    }
    r.finish_sequence(&fwd)?;
    if olc.has(0) {
        r.at("reverseLogicalChannelParameters");
        let rev = r.sequence(true, 1)?;
        skip_data_type(r)?;
        if rev.has(0) {
            r.at("reverse multiplexParameters");
            match r.choice(2, true)? {
                Choice::Root(0) => skip_h223_parameters(r)?,
                Choice::Root(_) => skip_v76_parameters(r)?,
                Choice::Ext(0) => h2250_parameters(r.open_type()?, ctx, out)?,
                Choice::Ext(_) => r.skip_open_type()?,
            }
        }
        r.finish_sequence(&rev)?;
    }
    r.finish_sequence(&olc)
}

/// `H2250LogicalChannelParameters`, up to `mediaControlChannel`.
fn h2250_parameters(bytes: &[u8], ctx: Context, out: &mut Emitter<'_>) -> Result<()> {
    let r = &mut PerReader::new(bytes);
    r.at("H2250LogicalChannelParameters");
    // nonStandard, associatedSessionID, mediaChannel, mediaGuaranteedDelivery,
    // mediaControlChannel, then five more we do not need.
    let seq = r.sequence(true, 10)?;
    if seq.has(0) {
        skip_nonstandard_list(r)?;
    }
    r.constrained(0, 255)?; // sessionID
    if seq.has(1) {
        r.constrained(1, 255)?;
    }
    if seq.has(2) {
        r.at("mediaChannel");
        out.emit(AddrKind::MediaChannel, ctx, transport_address(r)?);
    }
    if seq.has(3) {
        r.read_bit()?;
    }
    if seq.has(4) {
        r.at("mediaControlChannel");
        out.emit(AddrKind::MediaControlChannel, ctx, transport_address(r)?);
    }
    Ok(())
}

/// `OpenLogicalChannelAck`, to its end.
fn open_logical_channel_ack(
    r: &mut PerReader<'_>,
    carrier: Carrier,
    out: &mut Emitter<'_>,
) -> Result<()> {
    let ctx = carrier.context(H245Msg::OpenLogicalChannelAck);
    r.at("OpenLogicalChannelAck");
    let ack = r.sequence(true, 1)?;
    r.constrained(1, 65535)?; // forwardLogicalChannelNumber
    if ack.has(0) {
        r.at("reverseLogicalChannelParameters");
        let rev = r.sequence(true, 2)?;
        r.constrained(1, 65535)?; // reverseLogicalChannelNumber
        if rev.has(0) {
            r.constrained(0, 65535)?; // portNumber
        }
        if rev.has(1) {
            match r.choice(1, true)? {
                Choice::Root(_) => skip_h222_parameters(r)?,
                Choice::Ext(0) => h2250_parameters(r.open_type()?, ctx, out)?,
                Choice::Ext(_) => r.skip_open_type()?,
            }
        }
        r.finish_sequence(&rev)?;
    }
    if ack.extended {
        // separateStack (0), forwardMultiplexAckParameters (1), encryptionSync, ...
        let ext = r.extensions()?;
        for i in 0..ext.count() {
            if !ext.has(i) {
                continue;
            }
            let body = r.open_type()?;
            if i == 1 {
                forward_multiplex_ack(body, ctx, out)?;
            }
        }
    }
    Ok(())
}

/// `forwardMultiplexAckParameters`: `h2250LogicalChannelAckParameters` up to
/// `mediaControlChannel`.
fn forward_multiplex_ack(bytes: &[u8], ctx: Context, out: &mut Emitter<'_>) -> Result<()> {
    let r = &mut PerReader::new(bytes);
    r.at("forwardMultiplexAckParameters");
    if let Choice::Ext(_) = r.choice(1, true)? {
        return Ok(());
    }
    r.at("H2250LogicalChannelAckParameters");
    // nonStandard, sessionID, mediaChannel, mediaControlChannel, dynamicRTPPayloadType.
    let seq = r.sequence(true, 5)?;
    if seq.has(0) {
        skip_nonstandard_list(r)?;
    }
    if seq.has(1) {
        r.constrained(1, 255)?;
    }
    if seq.has(2) {
        r.at("mediaChannel");
        out.emit(AddrKind::MediaChannel, ctx, transport_address(r)?);
    }
    if seq.has(3) {
        r.at("mediaControlChannel");
        out.emit(AddrKind::MediaControlChannel, ctx, transport_address(r)?);
    }
    Ok(())
}

#[cfg(test)]
#[path = "h245_tests.rs"]
mod tests;
