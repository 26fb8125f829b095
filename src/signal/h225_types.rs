//! H.225.0 types shared by call signalling ([`super::h225`]) and RAS ([`super::ras`]):
//! `TransportAddress` decoding and skippers for the structures that stand between a message's
//! start and its addresses (`EndpointType`, `AliasAddress`, `NonStandardParameter`, ...).
//! Field orders follow H323-MESSAGES (H.225.0 v7).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::per::{Choice, PerReader, Result, Size};
use crate::packet::Endpoint;

/// `TransportAddress`: `ipAddress` and `ip6Address` yield an endpoint, other kinds are skipped.
pub(crate) fn transport_address(r: &mut PerReader<'_>) -> Result<Option<Endpoint>> {
    match r.choice(7, true)? {
        Choice::Root(0) => {
            r.at("ipAddress");
            let ip = ipv4(r.octet_string(Size::Fixed(4))?);
            let port = r.constrained(0, 65535)? as u16;
            Ok(Some(Endpoint::new(ip, port)))
        }
        Choice::Root(1) => {
            r.at("ipSourceRoute");
            let seq = r.sequence(true, 0)?;
            r.skip_octets(4)?;
            r.constrained(0, 65535)?;
            let hops = r.count(Size::Unbounded)?;
            for _ in 0..hops {
                r.skip_octets(4)?;
            }
            skip_null_choice(r, 2, true)?;
            r.finish_sequence(&seq)?;
            Ok(None)
        }
        Choice::Root(2) => {
            r.at("ipxAddress");
            r.skip_octets(6)?;
            r.skip_octets(4)?;
            r.skip_octet_string(Size::Fixed(2))?;
            Ok(None)
        }
        Choice::Root(3) => {
            r.at("ip6Address");
            let seq = r.sequence(true, 0)?;
            let ip = ipv6(r.octet_string(Size::Fixed(16))?);
            let port = r.constrained(0, 65535)? as u16;
            r.finish_sequence(&seq)?;
            Ok(Some(Endpoint::new(ip, port)))
        }
        Choice::Root(4) => r.skip_octets(16).map(|()| None),
        Choice::Root(5) => r.skip_octet_string(Size::Range(1, 20)).map(|()| None),
        Choice::Root(_) => skip_nonstandard_parameter(r).map(|()| None),
        Choice::Ext(_) => r.skip_open_type().map(|()| None),
    }
}

pub(crate) fn ipv4(octets: &[u8]) -> IpAddr {
    let mut a = [0u8; 4];
    a.iter_mut().zip(octets).for_each(|(d, s)| *d = *s);
    IpAddr::V4(Ipv4Addr::from(a))
}

pub(crate) fn ipv6(octets: &[u8]) -> IpAddr {
    let mut a = [0u8; 16];
    a.iter_mut().zip(octets).for_each(|(d, s)| *d = *s);
    IpAddr::V6(Ipv6Addr::from(a))
}

/// Skips a CHOICE whose root alternatives are all NULL; extension alternatives are open types.
pub(crate) fn skip_null_choice(r: &mut PerReader<'_>, root: u32, extensible: bool) -> Result<()> {
    match r.choice(root, extensible)? {
        Choice::Root(_) => Ok(()),
        Choice::Ext(_) => r.skip_open_type(),
    }
}

/// `SEQUENCE OF TransportAddress`, every IP address handed to `each`.
pub(crate) fn transport_address_list(
    r: &mut PerReader<'_>,
    mut each: impl FnMut(Endpoint),
) -> Result<()> {
    let n = r.count(Size::Unbounded)?;
    for _ in 0..n {
        if let Some(ep) = transport_address(r)? {
            each(ep);
        }
    }
    Ok(())
}

/// `H221NonStandard` (extensible SEQUENCE of three integers).
fn skip_h221_nonstandard(r: &mut PerReader<'_>) -> Result<()> {
    let seq = r.sequence(true, 0)?;
    r.constrained(0, 255)?;
    r.constrained(0, 255)?;
    r.constrained(0, 65535)?;
    r.finish_sequence(&seq)
}

/// H.225 `NonStandardParameter`.
pub(crate) fn skip_nonstandard_parameter(r: &mut PerReader<'_>) -> Result<()> {
    r.at("NonStandardParameter");
    match r.choice(2, true)? {
        Choice::Root(0) => r.skip_object_identifier()?,
        Choice::Root(_) => skip_h221_nonstandard(r)?,
        Choice::Ext(_) => r.skip_open_type()?,
    }
    r.skip_octet_string(Size::Unbounded)
}

/// `AliasAddress`: dialledDigits or h323-ID in the root, the rest are extensions.
pub(crate) fn skip_alias_address(r: &mut PerReader<'_>) -> Result<()> {
    r.at("AliasAddress");
    match r.choice(2, true)? {
        // IA5String (SIZE (1..128)) FROM ("0123456789#*,"): 13 characters, 4 bits each.
        Choice::Root(0) => r.skip_char_string(Size::Range(1, 128), 4),
        Choice::Root(_) => r.skip_char_string(Size::Range(1, 256), 16),
        Choice::Ext(_) => r.skip_open_type(),
    }
}

/// `SEQUENCE OF AliasAddress`.
pub(crate) fn skip_alias_list(r: &mut PerReader<'_>) -> Result<()> {
    let n = r.count(Size::Unbounded)?;
    for _ in 0..n {
        skip_alias_address(r)?;
    }
    Ok(())
}

/// `GatekeeperIdentifier` / `EndpointIdentifier`: BMPString (SIZE (1..128)).
pub(crate) fn skip_identifier(r: &mut PerReader<'_>) -> Result<()> {
    r.skip_char_string(Size::Range(1, 128), 16)
}

/// The many SEQUENCEs whose only root component is an optional `nonStandardData`
/// (GatekeeperInfo, TerminalInfo, McuInfo, H310Caps ... T120OnlyCaps).
fn skip_nonstandard_only(r: &mut PerReader<'_>) -> Result<()> {
    let seq = r.sequence(true, 1)?;
    if seq.has(0) {
        skip_nonstandard_parameter(r)?;
    }
    r.finish_sequence(&seq)
}

fn skip_vendor_identifier(r: &mut PerReader<'_>) -> Result<()> {
    r.at("VendorIdentifier");
    let seq = r.sequence(true, 2)?;
    skip_h221_nonstandard(r)?;
    for i in 0..2 {
        if seq.has(i) {
            r.skip_octet_string(Size::Range(1, 256))?;
        }
    }
    r.finish_sequence(&seq)
}

fn skip_supported_protocols(r: &mut PerReader<'_>) -> Result<()> {
    match r.choice(9, true)? {
        Choice::Root(0) => skip_nonstandard_parameter(r),
        Choice::Root(_) => skip_nonstandard_only(r),
        Choice::Ext(_) => r.skip_open_type(),
    }
}

fn skip_gateway_info(r: &mut PerReader<'_>) -> Result<()> {
    r.at("GatewayInfo");
    let seq = r.sequence(true, 2)?;
    if seq.has(0) {
        let n = r.count(Size::Unbounded)?;
        for _ in 0..n {
            skip_supported_protocols(r)?;
        }
    }
    if seq.has(1) {
        skip_nonstandard_parameter(r)?;
    }
    r.finish_sequence(&seq)
}

/// `EndpointType`.
pub(crate) fn skip_endpoint_type(r: &mut PerReader<'_>) -> Result<()> {
    r.at("EndpointType");
    let seq = r.sequence(true, 6)?;
    if seq.has(0) {
        skip_nonstandard_parameter(r)?;
    }
    if seq.has(1) {
        skip_vendor_identifier(r)?;
    }
    if seq.has(2) {
        skip_nonstandard_only(r)?; // gatekeeper
    }
    if seq.has(3) {
        skip_gateway_info(r)?;
    }
    if seq.has(4) {
        skip_nonstandard_only(r)?; // mcu
    }
    if seq.has(5) {
        skip_nonstandard_only(r)?; // terminal
    }
    r.read_bit()?; // mc
    r.read_bit()?; // undefinedNode
    r.finish_sequence(&seq)
}

/// `QseriesOptions`: seven BOOLEANs and `Q954Details`.
pub(crate) fn skip_qseries_options(r: &mut PerReader<'_>) -> Result<()> {
    let seq = r.sequence(true, 0)?;
    r.skip_bits(7)?;
    let q954 = r.sequence(true, 0)?;
    r.skip_bits(2)?;
    r.finish_sequence(&q954)?;
    r.finish_sequence(&seq)
}

/// `CallIdentifier` (a GUID in an extensible SEQUENCE).
pub(crate) fn skip_call_identifier(r: &mut PerReader<'_>) -> Result<()> {
    let seq = r.sequence(true, 0)?;
    r.skip_octets(16)?;
    r.finish_sequence(&seq)
}

/// `AlternateGK` (GCF / RCF alternate and assigned gatekeepers): its `rasAddress`.
pub(crate) fn alternate_gk(r: &mut PerReader<'_>) -> Result<Option<Endpoint>> {
    r.at("AlternateGK");
    let seq = r.sequence(true, 1)?;
    let ras = transport_address(r)?;
    if seq.has(0) {
        skip_identifier(r)?;
    }
    r.read_bit()?; // needToRegister
    r.constrained(0, 127)?; // priority
    r.finish_sequence(&seq)?;
    Ok(ras)
}
