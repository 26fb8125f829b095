//! H.245 types that stand between an OpenLogicalChannel's start and its media addresses:
//! skippers for `DataType` (video, audio, data, encryption capabilities) and the H.222, H.223 and
//! V.76 multiplex parameters, plus H.245 `TransportAddress` decoding. Field orders follow
//! MULTIMEDIA-SYSTEM-CONTROL (H.245 v13). Extension alternatives and additions are open types,
//! so only root components need walking.

use super::h225_types::{ipv4, ipv6, skip_null_choice};
use super::per::{Choice, PerReader, Result, Seq, Size};
use crate::packet::Endpoint;

/// H.245 `TransportAddress`: unicast or multicast IPv4 / IPv6 yield an endpoint.
pub(crate) fn transport_address(r: &mut PerReader<'_>) -> Result<Option<Endpoint>> {
    match r.choice(2, true)? {
        Choice::Root(0) => unicast_address(r),
        Choice::Root(_) => multicast_address(r),
        Choice::Ext(_) => r.skip_open_type().map(|()| None),
    }
}

/// `iPAddress` / `iP6Address`: an extensible SEQUENCE of network octets and a TSAP identifier.
fn ip_address(r: &mut PerReader<'_>, octets: u32) -> Result<Endpoint> {
    let seq = r.sequence(true, 0)?;
    let network = r.octet_string(Size::Fixed(octets))?;
    let ip = if octets == 4 {
        ipv4(network)
    } else {
        ipv6(network)
    };
    let port = r.constrained(0, 65535)? as u16;
    r.finish_sequence(&seq)?;
    Ok(Endpoint::new(ip, port))
}

fn unicast_address(r: &mut PerReader<'_>) -> Result<Option<Endpoint>> {
    r.at("UnicastAddress");
    match r.choice(5, true)? {
        Choice::Root(0) => ip_address(r, 4).map(Some),
        Choice::Root(1) => {
            let seq = r.sequence(true, 0)?;
            r.skip_octets(6)?;
            r.skip_octets(4)?;
            r.skip_octet_string(Size::Fixed(2))?;
            r.finish_sequence(&seq).map(|()| None)
        }
        Choice::Root(2) => ip_address(r, 16).map(Some),
        Choice::Root(3) => r.skip_octets(16).map(|()| None),
        Choice::Root(_) => {
            let seq = r.sequence(true, 0)?;
            r.choice(2, false)?; // routing: strict / loose
            r.skip_octets(4)?;
            r.constrained(0, 65535)?;
            let hops = r.count(Size::Unbounded)?;
            for _ in 0..hops {
                r.skip_octets(4)?;
            }
            r.finish_sequence(&seq).map(|()| None)
        }
        Choice::Ext(_) => r.skip_open_type().map(|()| None),
    }
}

fn multicast_address(r: &mut PerReader<'_>) -> Result<Option<Endpoint>> {
    r.at("MulticastAddress");
    match r.choice(2, true)? {
        Choice::Root(0) => ip_address(r, 4).map(Some),
        Choice::Root(_) => ip_address(r, 16).map(Some),
        Choice::Ext(_) => r.skip_open_type().map(|()| None),
    }
}

/// H.245 `NonStandardParameter` (its identifier CHOICE is not extensible, unlike H.225's).
pub(crate) fn skip_nonstandard_parameter(r: &mut PerReader<'_>) -> Result<()> {
    r.at("NonStandardParameter");
    match r.choice(2, false)? {
        Choice::Root(0) => r.skip_object_identifier()?,
        _ => {
            r.constrained(0, 255)?;
            r.constrained(0, 255)?;
            r.constrained(0, 65535)?;
        }
    }
    r.skip_octet_string(Size::Unbounded)
}

/// `SEQUENCE OF NonStandardParameter`.
pub(crate) fn skip_nonstandard_list(r: &mut PerReader<'_>) -> Result<()> {
    let n = r.count(Size::Unbounded)?;
    for _ in 0..n {
        skip_nonstandard_parameter(r)?;
    }
    Ok(())
}

/// `DataType`.
pub(crate) fn skip_data_type(r: &mut PerReader<'_>) -> Result<()> {
    r.at("DataType");
    match r.choice(6, true)? {
        Choice::Root(0) => skip_nonstandard_parameter(r),
        Choice::Root(1) => Ok(()),
        Choice::Root(2) => skip_video_capability(r),
        Choice::Root(3) => skip_audio_capability(r),
        Choice::Root(4) => skip_data_application_capability(r),
        Choice::Root(_) => match r.choice(2, true)? {
            // EncryptionMode
            Choice::Root(0) => skip_nonstandard_parameter(r),
            Choice::Root(_) => Ok(()),
            Choice::Ext(_) => r.skip_open_type(),
        },
        Choice::Ext(_) => r.skip_open_type(),
    }
}

/// `VideoCapability`.
fn skip_video_capability(r: &mut PerReader<'_>) -> Result<()> {
    r.at("VideoCapability");
    match r.choice(5, true)? {
        Choice::Root(0) => skip_nonstandard_parameter(r),
        Choice::Root(1) => {
            // H261VideoCapability
            let seq = r.sequence(true, 2)?;
            for i in 0..2 {
                if seq.has(i) {
                    r.constrained(1, 4)?;
                }
            }
            r.read_bit()?;
            r.constrained(1, 19200)?;
            r.read_bit()?;
            r.finish_sequence(&seq)
        }
        Choice::Root(2) => {
            // H262VideoCapability: 11 BOOLEANs, then six optional integers.
            let seq = r.sequence(true, 6)?;
            r.skip_bits(11)?;
            skip_mpeg_video_numbers(r, &seq)?;
            r.finish_sequence(&seq)
        }
        Choice::Root(3) => skip_h263_video_capability(r),
        Choice::Root(_) => {
            // IS11172VideoCapability: constrainedBitstream, then the same six optional integers.
            let seq = r.sequence(true, 6)?;
            r.read_bit()?;
            skip_mpeg_video_numbers(r, &seq)?;
            r.finish_sequence(&seq)
        }
        Choice::Ext(_) => r.skip_open_type(),
    }
}

/// videoBitRate, vbvBufferSize, samplesPerLine, linesPerFrame, frame/picture rate,
/// luminanceSampleRate: the optional integers H.262 and IS 11172 video share.
fn skip_mpeg_video_numbers(r: &mut PerReader<'_>, seq: &Seq) -> Result<()> {
    const BOUNDS: [(u32, u32); 6] = [
        (0, 1_073_741_823),
        (0, 262_143),
        (0, 16383),
        (0, 16383),
        (0, 15),
        (0, u32::MAX),
    ];
    for (i, &(lb, ub)) in (0..).zip(BOUNDS.iter()) {
        if seq.has(i) {
            r.constrained(lb, ub)?;
        }
    }
    Ok(())
}

fn skip_h263_video_capability(r: &mut PerReader<'_>) -> Result<()> {
    // Optionals: sqcifMPI, qcifMPI, cifMPI, cif4MPI, cif16MPI, hrd-B, bppMaxKb.
    let seq = r.sequence(true, 7)?;
    for i in 0..5 {
        if seq.has(i) {
            r.constrained(1, 32)?;
        }
    }
    r.constrained(1, 192_400)?; // maxBitRate
    r.skip_bits(5)?; // unrestrictedVector .. temporalSpatialTradeOffCapability
    if seq.has(5) {
        r.constrained(0, 524_287)?;
    }
    if seq.has(6) {
        r.constrained(0, 65535)?;
    }
    r.finish_sequence(&seq)
}

/// `AudioCapability`.
fn skip_audio_capability(r: &mut PerReader<'_>) -> Result<()> {
    r.at("AudioCapability");
    match r.choice(14, true)? {
        Choice::Root(0) => skip_nonstandard_parameter(r),
        // g711 / g722 / g728 / g729 variants: frames per packet, INTEGER (1..256).
        Choice::Root(1..=7 | 9..=11) => r.constrained(1, 256).map(|_| ()),
        Choice::Root(8) => {
            // g7231: maxAl-sduAudioFrames, silenceSuppression (not extensible).
            r.constrained(1, 256)?;
            r.read_bit().map(|_| ())
        }
        Choice::Root(12) => {
            // IS11172AudioCapability: 8 BOOLEANs, bitRate (1..448).
            let seq = r.sequence(true, 0)?;
            r.skip_bits(8)?;
            r.constrained(1, 448)?;
            r.finish_sequence(&seq)
        }
        Choice::Root(_) => {
            // IS13818AudioCapability: 20 BOOLEANs, bitRate (1..1130).
            let seq = r.sequence(true, 0)?;
            r.skip_bits(20)?;
            r.constrained(1, 1130)?;
            r.finish_sequence(&seq)
        }
        Choice::Ext(_) => r.skip_open_type(),
    }
}

/// `DataProtocolCapability`: non-standard or NULLs in the root.
fn skip_data_protocol_capability(r: &mut PerReader<'_>) -> Result<()> {
    match r.choice(7, true)? {
        Choice::Root(0) => skip_nonstandard_parameter(r),
        Choice::Root(_) => Ok(()),
        Choice::Ext(_) => r.skip_open_type(),
    }
}

/// `DataApplicationCapability`.
fn skip_data_application_capability(r: &mut PerReader<'_>) -> Result<()> {
    r.at("DataApplicationCapability");
    let seq = r.sequence(true, 0)?;
    match r.choice(10, true)? {
        Choice::Root(0) => skip_nonstandard_parameter(r)?,
        Choice::Root(4) => {
            // t84: protocol and T84Profile (t84Unrestricted NULL | t84Restricted 19 BOOLEANs).
            skip_data_protocol_capability(r)?;
            if let Choice::Root(1) = r.choice(2, false)? {
                let restricted = r.sequence(true, 0)?;
                r.skip_bits(19)?;
                r.finish_sequence(&restricted)?;
            }
        }
        Choice::Root(7) => {
            // nlpid: protocol and data.
            skip_data_protocol_capability(r)?;
            r.skip_octet_string(Size::Unbounded)?;
        }
        Choice::Root(8) => {} // dsvdControl NULL
        Choice::Root(_) => skip_data_protocol_capability(r)?,
        Choice::Ext(_) => r.skip_open_type()?,
    }
    r.constrained(0, u32::MAX)?; // maxBitRate
    r.finish_sequence(&seq)
}

/// `H222LogicalChannelParameters`.
pub(crate) fn skip_h222_parameters(r: &mut PerReader<'_>) -> Result<()> {
    r.at("H222LogicalChannelParameters");
    let seq = r.sequence(true, 3)?;
    r.constrained(0, 65535)?;
    r.constrained(0, 8191)?;
    if seq.has(0) {
        r.constrained(0, 8191)?;
    }
    for i in 1..3 {
        if seq.has(i) {
            r.skip_octet_string(Size::Unbounded)?;
        }
    }
    r.finish_sequence(&seq)
}

/// `H223LogicalChannelParameters`.
pub(crate) fn skip_h223_parameters(r: &mut PerReader<'_>) -> Result<()> {
    r.at("H223LogicalChannelParameters");
    let seq = r.sequence(true, 0)?;
    match r.choice(6, true)? {
        Choice::Root(0) => skip_nonstandard_parameter(r)?,
        Choice::Root(5) => {
            // al3: controlFieldOctets, sendBufferSize (not extensible).
            r.constrained(0, 2)?;
            r.constrained(0, 16_777_215)?;
        }
        Choice::Root(_) => {}
        Choice::Ext(_) => r.skip_open_type()?,
    }
    r.read_bit()?; // segmentableFlag
    r.finish_sequence(&seq)
}

/// `V76LogicalChannelParameters`.
pub(crate) fn skip_v76_parameters(r: &mut PerReader<'_>) -> Result<()> {
    r.at("V76LogicalChannelParameters");
    let seq = r.sequence(true, 0)?;
    let hdlc = r.sequence(true, 0)?;
    skip_null_choice(r, 3, true)?; // crcLength
    r.constrained(1, 4095)?; // n401
    r.read_bit()?; // loopbackTestProcedure
    r.finish_sequence(&hdlc)?;
    skip_null_choice(r, 3, true)?; // suspendResume
    r.read_bit()?; // uIH
    match r.choice(2, true)? {
        Choice::Root(0) => {
            let erm = r.sequence(true, 0)?;
            r.constrained(1, 127)?; // windowSize
            skip_null_choice(r, 3, true)?; // recovery
            r.finish_sequence(&erm)?;
        }
        Choice::Root(_) => {}
        Choice::Ext(_) => r.skip_open_type()?,
    }
    let v75 = r.sequence(true, 0)?;
    r.read_bit()?; // audioHeaderPresent
    r.finish_sequence(&v75)?;
    r.finish_sequence(&seq)
}
