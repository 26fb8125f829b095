//! H.225.0 call signalling: `H323-UserInformation` -> `h323-uu-pdu` -> `h323-message-body`,
//! decoded down to the transport addresses it announces.
//!
//! Reported: `h245Address` (Setup, CallProceeding, Connect, Alerting, Facility, Progress),
//! `sourceCallSignalAddress` / `destCallSignalAddress` (Setup), Facility's
//! `alternativeAddress`, the media addresses of every `fastStart` OpenLogicalChannel, and those of
//! H.245 tunnelled in `h245Control`. The decoder walks each UUIE's root fully (it must, to reach
//! the PDU's `h245Tunnelling` and `h245Control` extensions) and picks what it needs from the
//! extension additions.

use super::h225_types::{
    skip_alias_list, skip_call_identifier, skip_endpoint_type, skip_nonstandard_parameter,
    skip_null_choice, skip_qseries_options, transport_address,
};
use super::h245::{self, Carrier};
use super::per::{Choice, PerReader, Result, Seq, Size};
use super::{q931, AddrKind, Announced, Context, Emitter, SignalError};

/// The `h323-message-body` alternative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UuieKind {
    Setup,
    CallProceeding,
    Connect,
    Alerting,
    Information,
    ReleaseComplete,
    Facility,
    Progress,
    Empty,
    Status,
    StatusInquiry,
    SetupAcknowledge,
    Notify,
    /// An extension alternative newer than H.225.0 v7.
    Unknown,
}

const ROOT_BODIES: [UuieKind; 7] = [
    UuieKind::Setup,
    UuieKind::CallProceeding,
    UuieKind::Connect,
    UuieKind::Alerting,
    UuieKind::Information,
    UuieKind::ReleaseComplete,
    UuieKind::Facility,
];
const EXT_BODIES: [UuieKind; 6] = [
    UuieKind::Progress,
    UuieKind::Empty,
    UuieKind::Status,
    UuieKind::StatusInquiry,
    UuieKind::SetupAcknowledge,
    UuieKind::Notify,
];

impl UuieKind {
    /// The ASN.1 alternative name (`setup`, `callProceeding`, ...).
    pub fn key(self) -> &'static str {
        self.keys().0
    }

    /// `fastStart,<key>`, the context of addresses in this message's fastStart elements.
    pub fn fast_start_key(self) -> &'static str {
        self.keys().1
    }

    fn keys(self) -> (&'static str, &'static str) {
        match self {
            UuieKind::Setup => ("setup", "fastStart,setup"),
            UuieKind::CallProceeding => ("callProceeding", "fastStart,callProceeding"),
            UuieKind::Connect => ("connect", "fastStart,connect"),
            UuieKind::Alerting => ("alerting", "fastStart,alerting"),
            UuieKind::Information => ("information", "fastStart,information"),
            UuieKind::ReleaseComplete => ("releaseComplete", "fastStart,releaseComplete"),
            UuieKind::Facility => ("facility", "fastStart,facility"),
            UuieKind::Progress => ("progress", "fastStart,progress"),
            UuieKind::Empty => ("empty", "fastStart,empty"),
            UuieKind::Status => ("status", "fastStart,status"),
            UuieKind::StatusInquiry => ("statusInquiry", "fastStart,statusInquiry"),
            UuieKind::SetupAcknowledge => ("setupAcknowledge", "fastStart,setupAcknowledge"),
            UuieKind::Notify => ("notify", "fastStart,notify"),
            UuieKind::Unknown => ("unknown", "fastStart,unknown"),
        }
    }
}

/// What one H.225 call-signalling message was.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct H225Summary {
    /// Q.931 message type (see [`q931::msg`]).
    pub message_type: u8,
    /// The H.225 message body; `None` without an X.208-coded User-user element.
    pub body: Option<UuieKind>,
    /// `h245Tunnelling`: H.245 travels inside H.225, so no separate connection need follow.
    pub h245_tunnelling: bool,
    /// Addresses handed to the sink.
    pub announced: u32,
    /// fastStart elements seen.
    pub fast_start: u32,
    /// Tunnelled H.245 messages seen.
    pub h245_control: u32,
    /// Nested encodings (fastStart or h245Control elements, extension additions) that failed to
    /// decode; the rest of the message was still decoded.
    pub nested_errors: u32,
}

/// Decodes one TPKT payload of an H.225 call-signalling connection (tcp/1720): Q.931, then the
/// User-user element's `H323-UserInformation`.
pub fn parse_frame(
    tpkt_payload: &[u8],
    sink: &mut dyn FnMut(Announced),
) -> std::result::Result<H225Summary, SignalError> {
    let q = q931::parse(tpkt_payload)?;
    let info = match (q.uu_protocol, q.user_user) {
        (Some(q931::UU_PROTOCOL_X208), Some(uu)) => parse_user_information(uu, sink)?,
        _ => H225Summary::default(),
    };
    Ok(H225Summary {
        message_type: q.message_type,
        ..info
    })
}

/// Decodes a PER-encoded `H323-UserInformation`. `message_type` is left 0.
pub fn parse_user_information(
    bytes: &[u8],
    sink: &mut dyn FnMut(Announced),
) -> std::result::Result<H225Summary, SignalError> {
    let mut out = Emitter::new(sink);
    let (body, h245_tunnelling) = user_information(&mut PerReader::new(bytes), &mut out)?;
    Ok(H225Summary {
        message_type: 0,
        body: Some(body),
        h245_tunnelling,
        announced: out.announced,
        fast_start: out.fast_start,
        h245_control: out.h245_control,
        nested_errors: out.nested_errors,
    })
}

/// `H323-UserInformation` up to the end of `h323-uu-pdu`; returns the body kind and
/// `h245Tunnelling`.
fn user_information(r: &mut PerReader<'_>, out: &mut Emitter<'_>) -> Result<(UuieKind, bool)> {
    r.at("H323-UserInformation");
    r.sequence(true, 1)?; // user-data is never needed
    r.at("H323-UU-PDU");
    let pdu = r.sequence(true, 1)?;
    let body = match r.choice(7, true)? {
        Choice::Root(i) => {
            let kind = ROOT_BODIES
                .get(i as usize)
                .copied()
                .unwrap_or(UuieKind::Unknown);
            root_body(r, kind, out)?;
            kind
        }
        Choice::Ext(i) => {
            let kind = EXT_BODIES
                .get(i as usize)
                .copied()
                .unwrap_or(UuieKind::Unknown);
            let bytes = r.open_type()?;
            if kind == UuieKind::Progress && progress(bytes, out).is_err() {
                out.nested_errors += 1;
            }
            kind
        }
    };
    if pdu.has(0) {
        skip_nonstandard_parameter(r)?;
    }
    let mut tunnelling = false;
    if pdu.extended {
        // h4501SupplementaryService (0), h245Tunnelling (1), h245Control (2), ...
        let ext = r.extensions()?;
        for i in 0..ext.count() {
            if !ext.has(i) {
                continue;
            }
            let bytes = r.at("H323-UU-PDU extension").open_type()?;
            match i {
                1 => tunnelling = bytes.first().is_some_and(|b| b & 0x80 != 0),
                2 => octet_string_list(bytes, out, |item, out| {
                    out.h245_control += 1;
                    h245::message(&mut PerReader::new(item), Carrier::Tunnelled(body), out)
                        .map(|_| ())
                }),
                _ => {}
            }
        }
    }
    Ok((body, tunnelling))
}

/// Where a UUIE keeps the extension additions we read.
#[derive(Default)]
struct ExtFields {
    source_call_signal_address: Option<usize>,
    h245_address: Option<usize>,
    fast_start: Option<usize>,
}

fn root_body(r: &mut PerReader<'_>, kind: UuieKind, out: &mut Emitter<'_>) -> Result<()> {
    let ctx = Context::H225(kind);
    r.at(kind.key());
    let (seq, fields) = match kind {
        UuieKind::Setup => (
            setup(r, ctx, out)?,
            ExtFields {
                source_call_signal_address: Some(0),
                fast_start: Some(6),
                ..ExtFields::default()
            },
        ),
        UuieKind::CallProceeding | UuieKind::Alerting => {
            let seq = r.sequence(true, 1)?;
            r.skip_object_identifier()?;
            skip_endpoint_type(r)?; // destinationInfo
            if seq.has(0) {
                out.emit(AddrKind::H245Address, ctx, transport_address(r)?);
            }
            (seq, fast_start_at(4))
        }
        UuieKind::Connect => {
            let seq = r.sequence(true, 1)?;
            r.skip_object_identifier()?;
            if seq.has(0) {
                out.emit(AddrKind::H245Address, ctx, transport_address(r)?);
            }
            skip_endpoint_type(r)?; // destinationInfo
            r.skip_octets(16)?; // conferenceID
            (seq, fast_start_at(4))
        }
        UuieKind::Information => {
            let seq = r.sequence(true, 0)?;
            r.skip_object_identifier()?;
            (seq, fast_start_at(3))
        }
        UuieKind::ReleaseComplete => {
            let seq = r.sequence(true, 1)?;
            r.skip_object_identifier()?;
            if seq.has(0) {
                skip_null_choice(r, 12, true)?; // reason
            }
            (seq, ExtFields::default())
        }
        // Facility, the last root alternative (no other kind reaches here).
        _ => (
            facility(r, ctx, out)?,
            ExtFields {
                h245_address: Some(6),
                fast_start: Some(7),
                ..ExtFields::default()
            },
        ),
    };
    uuie_extensions(r, &seq, kind, &fields, out)
}

fn fast_start_at(i: usize) -> ExtFields {
    ExtFields {
        fast_start: Some(i),
        ..ExtFields::default()
    }
}

/// `Setup-UUIE` root components.
fn setup(r: &mut PerReader<'_>, ctx: Context, out: &mut Emitter<'_>) -> Result<Seq> {
    // h245Address, sourceAddress, destinationAddress, destCallSignalAddress,
    // destExtraCallInfo, destExtraCRV, callServices.
    let seq = r.sequence(true, 7)?;
    r.skip_object_identifier()?;
    if seq.has(0) {
        out.emit(AddrKind::H245Address, ctx, transport_address(r)?);
    }
    if seq.has(1) {
        skip_alias_list(r)?;
    }
    skip_endpoint_type(r)?; // sourceInfo
    if seq.has(2) {
        skip_alias_list(r)?;
    }
    if seq.has(3) {
        r.at("destCallSignalAddress");
        out.emit(AddrKind::DestCallSignalAddress, ctx, transport_address(r)?);
    }
    if seq.has(4) {
        skip_alias_list(r)?;
    }
    if seq.has(5) {
        let n = r.count(Size::Unbounded)?;
        for _ in 0..n {
            r.constrained(0, 65535)?;
        }
    }
    r.read_bit()?; // activeMC
    r.skip_octets(16)?; // conferenceID
    skip_null_choice(r, 3, true)?; // conferenceGoal
    if seq.has(6) {
        skip_qseries_options(r)?;
    }
    skip_null_choice(r, 4, true)?; // callType
    Ok(seq)
}

/// `Facility-UUIE` root components.
fn facility(r: &mut PerReader<'_>, ctx: Context, out: &mut Emitter<'_>) -> Result<Seq> {
    // alternativeAddress, alternativeAliasAddress, conferenceID.
    let seq = r.sequence(true, 3)?;
    r.skip_object_identifier()?;
    if seq.has(0) {
        out.emit(AddrKind::AlternativeAddress, ctx, transport_address(r)?);
    }
    if seq.has(1) {
        skip_alias_list(r)?;
    }
    if seq.has(2) {
        r.skip_octets(16)?;
    }
    skip_null_choice(r, 4, true)?; // reason
    Ok(seq)
}

/// A UUIE's extension additions: the ones named in `fields` are decoded, the rest skipped.
fn uuie_extensions(
    r: &mut PerReader<'_>,
    seq: &Seq,
    kind: UuieKind,
    fields: &ExtFields,
    out: &mut Emitter<'_>,
) -> Result<()> {
    if !seq.extended {
        return Ok(());
    }
    let ctx = Context::H225(kind);
    let ext = r.extensions()?;
    for i in 0..ext.count() {
        if !ext.has(i) {
            continue;
        }
        let bytes = r.at("UUIE extension").open_type()?;
        let addr_kind = if Some(i) == fields.source_call_signal_address {
            AddrKind::SourceCallSignalAddress
        } else if Some(i) == fields.h245_address {
            AddrKind::H245Address
        } else {
            if Some(i) == fields.fast_start {
                fast_start(bytes, kind, out);
            }
            continue;
        };
        match transport_address(&mut PerReader::new(bytes)) {
            Ok(addr) => out.emit(addr_kind, ctx, addr),
            Err(_) => out.nested_errors += 1,
        }
    }
    Ok(())
}

/// `fastStart`: each element is an encoded OpenLogicalChannel.
fn fast_start(bytes: &[u8], kind: UuieKind, out: &mut Emitter<'_>) {
    octet_string_list(bytes, out, |item, out| {
        out.fast_start += 1;
        h245::open_logical_channel(&mut PerReader::new(item), Carrier::FastStart(kind), out)
    });
}

/// `SEQUENCE OF OCTET STRING` in an open type; `each` decodes one item. A failing item is
/// counted and the others are still decoded.
fn octet_string_list(
    bytes: &[u8],
    out: &mut Emitter<'_>,
    mut each: impl FnMut(&[u8], &mut Emitter<'_>) -> Result<()>,
) {
    let r = &mut PerReader::new(bytes);
    let Ok(n) = r.count(Size::Unbounded) else {
        out.nested_errors += 1;
        return;
    };
    for _ in 0..n {
        let Ok(item) = r.octet_string(Size::Unbounded) else {
            out.nested_errors += 1;
            return;
        };
        if each(item, out).is_err() {
            out.nested_errors += 1;
        }
    }
}

/// `Progress-UUIE` (an extension alternative, so its own open type). Its root has `tokens` and
/// `cryptoTokens` before `fastStart`; when either is present, decoding stops after
/// `h245Address`.
fn progress(bytes: &[u8], out: &mut Emitter<'_>) -> Result<()> {
    let ctx = Context::H225(UuieKind::Progress);
    let r = &mut PerReader::new(bytes);
    r.at("progress");
    // h245Address, h245SecurityMode, tokens, cryptoTokens, fastStart.
    let seq = r.sequence(true, 5)?;
    r.skip_object_identifier()?;
    skip_endpoint_type(r)?;
    if seq.has(0) {
        out.emit(AddrKind::H245Address, ctx, transport_address(r)?);
    }
    skip_call_identifier(r)?;
    if seq.has(1) {
        skip_h245_security(r)?;
    }
    if seq.has(2) || seq.has(3) {
        return Ok(());
    }
    if seq.has(4) {
        let n = r.count(Size::Unbounded)?;
        for _ in 0..n {
            let item = r.octet_string(Size::Unbounded)?;
            out.fast_start += 1;
            let carrier = Carrier::FastStart(UuieKind::Progress);
            if h245::open_logical_channel(&mut PerReader::new(item), carrier, out).is_err() {
                out.nested_errors += 1;
            }
        }
    }
    Ok(())
}

/// `H245Security`.
fn skip_h245_security(r: &mut PerReader<'_>) -> Result<()> {
    match r.choice(4, true)? {
        Choice::Root(0) => skip_nonstandard_parameter(r),
        Choice::Root(1) => Ok(()),
        Choice::Root(_) => {
            // SecurityCapabilities: nonStandard?, encryption, authenticaton, integrity.
            let seq = r.sequence(true, 1)?;
            if seq.has(0) {
                skip_nonstandard_parameter(r)?;
            }
            for _ in 0..3 {
                match r.choice(3, true)? {
                    Choice::Root(0) => skip_nonstandard_parameter(r)?,
                    Choice::Root(_) => {}
                    Choice::Ext(_) => r.skip_open_type()?,
                }
            }
            r.finish_sequence(&seq)
        }
        Choice::Ext(_) => r.skip_open_type(),
    }
}

#[cfg(test)]
#[path = "h225_tests.rs"]
mod tests;
