//! H.225.0 RAS (registration, admission and status, UDP/1719): the `RasMessage` CHOICE decoded
//! down to the call-signalling and RAS addresses endpoints and gatekeepers announce.
//!
//! Decoded: GRQ/GCF (`rasAddress`, GCF's alternate and assigned gatekeepers), RRQ
//! (`callSignalAddress`, `rasAddress` lists), RCF (`callSignalAddress`, alternate and assigned
//! gatekeepers' `rasAddress`), URQ (`callSignalAddress`), ARQ (`destCallSignalAddress`,
//! `srcCallSignalAddress`), ACF (`destCallSignalAddress`), LRQ (`replyAddress`), LCF
//! (`callSignalAddress`, `rasAddress`), IRQ (`replyAddress`), IRR (`rasAddress`,
//! `callSignalAddress`). Other messages are only named.

use super::h225_types::{
    alternate_gk, skip_alias_list, skip_endpoint_type, skip_identifier, skip_nonstandard_parameter,
    skip_null_choice, transport_address, transport_address_list,
};
use super::per::{Choice, PerError, PerReader, Result, Seq, Size};
use super::{AddrKind, Announced, Context, Emitter};

/// The `RasMessage` alternative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RasKind(u8);

const NAMES: [&str; 33] = [
    "gatekeeperRequest",
    "gatekeeperConfirm",
    "gatekeeperReject",
    "registrationRequest",
    "registrationConfirm",
    "registrationReject",
    "unregistrationRequest",
    "unregistrationConfirm",
    "unregistrationReject",
    "admissionRequest",
    "admissionConfirm",
    "admissionReject",
    "bandwidthRequest",
    "bandwidthConfirm",
    "bandwidthReject",
    "disengageRequest",
    "disengageConfirm",
    "disengageReject",
    "locationRequest",
    "locationConfirm",
    "locationReject",
    "infoRequest",
    "infoRequestResponse",
    "nonStandardMessage",
    "unknownMessageResponse",
    // extension alternatives
    "requestInProgress",
    "resourcesAvailableIndicate",
    "resourcesAvailableConfirm",
    "infoRequestAck",
    "infoRequestNak",
    "serviceControlIndication",
    "serviceControlResponse",
    "admissionConfirmSequence",
];
const ROOT_COUNT: u32 = 25;
const UNKNOWN: u8 = NAMES.len() as u8;

impl RasKind {
    pub const GATEKEEPER_REQUEST: RasKind = RasKind(0);
    pub const GATEKEEPER_CONFIRM: RasKind = RasKind(1);
    pub const REGISTRATION_REQUEST: RasKind = RasKind(3);
    pub const REGISTRATION_CONFIRM: RasKind = RasKind(4);
    pub const UNREGISTRATION_REQUEST: RasKind = RasKind(6);
    pub const ADMISSION_REQUEST: RasKind = RasKind(9);
    pub const ADMISSION_CONFIRM: RasKind = RasKind(10);
    pub const LOCATION_REQUEST: RasKind = RasKind(18);
    pub const LOCATION_CONFIRM: RasKind = RasKind(19);
    pub const INFO_REQUEST: RasKind = RasKind(21);
    pub const INFO_REQUEST_RESPONSE: RasKind = RasKind(22);

    fn from_choice(c: Choice) -> RasKind {
        let index = match c {
            Choice::Root(i) => i,
            Choice::Ext(i) => ROOT_COUNT.saturating_add(i),
        };
        RasKind(u8::try_from(index).unwrap_or(UNKNOWN).min(UNKNOWN))
    }

    /// The ASN.1 alternative name (`registrationRequest`, ...); `unknown` past H.225.0 v7.
    pub fn key(self) -> &'static str {
        NAMES.get(usize::from(self.0)).copied().unwrap_or("unknown")
    }
}

/// What a RAS message was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RasSummary {
    pub kind: RasKind,
    /// Addresses handed to the sink.
    pub announced: u32,
}

/// Decodes one RAS message (a UDP payload on port 1719).
pub fn parse(
    udp_payload: &[u8],
    sink: &mut dyn FnMut(Announced),
) -> std::result::Result<RasSummary, PerError> {
    let mut out = Emitter::new(sink);
    let r = &mut PerReader::new(udp_payload);
    r.at("RasMessage");
    let kind = RasKind::from_choice(r.choice(ROOT_COUNT, true)?);
    let ctx = Context::Ras(kind);
    r.at(kind.key());
    match kind {
        RasKind::GATEKEEPER_REQUEST => gatekeeper_request(r, ctx, &mut out)?,
        RasKind::GATEKEEPER_CONFIRM => gatekeeper_confirm(r, ctx, &mut out)?,
        RasKind::REGISTRATION_REQUEST => registration_request(r, ctx, &mut out)?,
        RasKind::REGISTRATION_CONFIRM => registration_confirm(r, ctx, &mut out)?,
        RasKind::UNREGISTRATION_REQUEST => {
            r.sequence(true, 3)?;
            r.constrained(1, 65535)?;
            call_signal_list(r, ctx, &mut out)?;
        }
        RasKind::ADMISSION_REQUEST => admission_request(r, ctx, &mut out)?,
        RasKind::ADMISSION_CONFIRM => {
            r.sequence(true, 2)?;
            r.constrained(1, 65535)?;
            r.constrained(0, u32::MAX)?; // bandWidth
            skip_null_choice(r, 2, true)?; // callModel
            emit(r, AddrKind::DestCallSignalAddress, ctx, &mut out)?;
        }
        RasKind::LOCATION_REQUEST => location_request(r, ctx, &mut out)?,
        RasKind::LOCATION_CONFIRM => {
            r.sequence(true, 1)?;
            r.constrained(1, 65535)?;
            emit(r, AddrKind::CallSignalAddress, ctx, &mut out)?;
            emit(r, AddrKind::RasAddress, ctx, &mut out)?;
        }
        RasKind::INFO_REQUEST => {
            let seq = r.sequence(true, 2)?;
            r.constrained(1, 65535)?;
            r.constrained(0, 65535)?; // callReferenceValue
            if seq.has(0) {
                skip_nonstandard_parameter(r)?;
            }
            if seq.has(1) {
                emit(r, AddrKind::ReplyAddress, ctx, &mut out)?;
            }
        }
        RasKind::INFO_REQUEST_RESPONSE => info_request_response(r, ctx, &mut out)?,
        _ => {}
    }
    Ok(RasSummary {
        kind,
        announced: out.announced,
    })
}

fn emit(r: &mut PerReader<'_>, kind: AddrKind, ctx: Context, out: &mut Emitter<'_>) -> Result<()> {
    out.emit(kind, ctx, transport_address(r)?);
    Ok(())
}

fn call_signal_list(r: &mut PerReader<'_>, ctx: Context, out: &mut Emitter<'_>) -> Result<()> {
    r.at("callSignalAddress");
    transport_address_list(r, |ep| out.emit(AddrKind::CallSignalAddress, ctx, Some(ep)))
}

fn ras_list(r: &mut PerReader<'_>, ctx: Context, out: &mut Emitter<'_>) -> Result<()> {
    r.at("rasAddress");
    transport_address_list(r, |ep| out.emit(AddrKind::RasAddress, ctx, Some(ep)))
}

/// `requestSeqNum`, `protocolIdentifier` and an optional `nonStandardData` (presence bit 0),
/// the start of GRQ, GCF, RRQ and RCF.
fn ras_header(r: &mut PerReader<'_>, seq: &Seq) -> Result<()> {
    r.constrained(1, 65535)?;
    r.skip_object_identifier()?;
    if seq.has(0) {
        skip_nonstandard_parameter(r)?;
    }
    Ok(())
}

fn gatekeeper_request(r: &mut PerReader<'_>, ctx: Context, out: &mut Emitter<'_>) -> Result<()> {
    let seq = r.sequence(true, 4)?;
    ras_header(r, &seq)?;
    emit(r, AddrKind::RasAddress, ctx, out)
}

fn gatekeeper_confirm(r: &mut PerReader<'_>, ctx: Context, out: &mut Emitter<'_>) -> Result<()> {
    let seq = r.sequence(true, 2)?;
    ras_header(r, &seq)?;
    if seq.has(1) {
        skip_identifier(r)?;
    }
    emit(r, AddrKind::RasAddress, ctx, out)?;
    // alternateGatekeeper (0) ... assignedGatekeeper (9)
    gatekeeper_extensions(r, &seq, 0, 9, ctx, out)
}

fn registration_request(r: &mut PerReader<'_>, ctx: Context, out: &mut Emitter<'_>) -> Result<()> {
    let seq = r.sequence(true, 3)?;
    ras_header(r, &seq)?;
    r.read_bit()?; // discoveryComplete
    call_signal_list(r, ctx, out)?;
    ras_list(r, ctx, out)
}

fn registration_confirm(r: &mut PerReader<'_>, ctx: Context, out: &mut Emitter<'_>) -> Result<()> {
    // nonStandardData, terminalAlias, gatekeeperIdentifier.
    let seq = r.sequence(true, 3)?;
    ras_header(r, &seq)?;
    call_signal_list(r, ctx, out)?;
    if seq.has(1) {
        skip_alias_list(r)?;
    }
    if seq.has(2) {
        skip_identifier(r)?;
    }
    skip_identifier(r)?; // endpointIdentifier
                         // alternateGatekeeper (0) ... assignedGatekeeper (17)
    gatekeeper_extensions(r, &seq, 0, 17, ctx, out)
}

/// The `alternateGatekeeper` list and `assignedGatekeeper` extension additions of GCF / RCF.
fn gatekeeper_extensions(
    r: &mut PerReader<'_>,
    seq: &Seq,
    alternates: usize,
    assigned: usize,
    ctx: Context,
    out: &mut Emitter<'_>,
) -> Result<()> {
    if !seq.extended {
        return Ok(());
    }
    let ext = r.extensions()?;
    for i in 0..ext.count() {
        if !ext.has(i) {
            continue;
        }
        let bytes = r.open_type()?;
        let nested = &mut PerReader::new(bytes);
        let decoded = if i == alternates {
            nested.count(Size::Unbounded).and_then(|n| {
                (0..n).try_for_each(|_| {
                    alternate_gk(nested).map(|ep| out.emit(AddrKind::RasAddress, ctx, ep))
                })
            })
        } else if i == assigned {
            alternate_gk(nested).map(|ep| out.emit(AddrKind::RasAddress, ctx, ep))
        } else {
            Ok(())
        };
        if decoded.is_err() {
            out.nested_errors += 1;
        }
    }
    Ok(())
}

fn admission_request(r: &mut PerReader<'_>, ctx: Context, out: &mut Emitter<'_>) -> Result<()> {
    // callModel, destinationInfo, destCallSignalAddress, destExtraCallInfo,
    // srcCallSignalAddress, nonStandardData, callServices.
    let seq = r.sequence(true, 7)?;
    r.constrained(1, 65535)?;
    skip_null_choice(r, 4, true)?; // callType
    if seq.has(0) {
        skip_null_choice(r, 2, true)?;
    }
    skip_identifier(r)?; // endpointIdentifier
    if seq.has(1) {
        skip_alias_list(r)?;
    }
    if seq.has(2) {
        emit(r, AddrKind::DestCallSignalAddress, ctx, out)?;
    }
    if seq.has(3) {
        skip_alias_list(r)?;
    }
    skip_alias_list(r)?; // srcInfo
    if seq.has(4) {
        emit(r, AddrKind::SrcCallSignalAddress, ctx, out)?;
    }
    Ok(())
}

fn location_request(r: &mut PerReader<'_>, ctx: Context, out: &mut Emitter<'_>) -> Result<()> {
    // endpointIdentifier, nonStandardData.
    let seq = r.sequence(true, 2)?;
    r.constrained(1, 65535)?;
    if seq.has(0) {
        skip_identifier(r)?;
    }
    skip_alias_list(r)?; // destinationInfo
    if seq.has(1) {
        skip_nonstandard_parameter(r)?;
    }
    emit(r, AddrKind::ReplyAddress, ctx, out)
}

fn info_request_response(r: &mut PerReader<'_>, ctx: Context, out: &mut Emitter<'_>) -> Result<()> {
    // nonStandardData, endpointAlias, perCallInfo.
    let seq = r.sequence(true, 3)?;
    if seq.has(0) {
        skip_nonstandard_parameter(r)?;
    }
    r.constrained(1, 65535)?;
    skip_endpoint_type(r)?;
    skip_identifier(r)?;
    emit(r, AddrKind::RasAddress, ctx, out)?;
    call_signal_list(r, ctx, out)
}

#[cfg(test)]
#[path = "ras_tests.rs"]
mod tests;
