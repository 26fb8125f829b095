//! H.245 decoding: real OpenLogicalChannel(Ack)s from the corpus, fastStart elements, and
//! synthetic messages for each DataType and multiplex alternative the decoder must skip.

use super::*;
use crate::signal::test_util::{hex, keys, PerWriter};
use crate::signal::{AddrKind, UuieKind};

fn decode(bytes: &[u8]) -> (H245Summary, Vec<Announced>) {
    let mut found = Vec::new();
    let summary = parse_frame(bytes, &mut |a| found.push(a)).unwrap();
    (summary, found)
}

/// rtp_example.raw.gz frames 28, 29, 31, 32 (TPKT headers removed).
const OLC_28: &str = "030000640c201d800b0d0001000a01038f138980";
const OLC_29: &str = "0300003c0c201d800a040001000a01061207d7";
const ACK_31: &str = "22c0003c0280135c00000a01038f1388000a01038f1389010100";
const ACK_32: &str = "22c000640480145c00000a01061207d6000a01061207d703000180";

#[test]
fn open_logical_channel_forward_media_control_channel() {
    let (summary, found) = decode(&hex(OLC_28));
    assert_eq!(summary.decoded, Some(H245Msg::OpenLogicalChannel));
    assert_eq!(
        (summary.name(), summary.announced),
        ("openLogicalChannel", 1)
    );
    assert_eq!(
        keys(&found),
        [("mediaControlChannel", "OLC", "10.1.3.143:5001".into())]
    );
    let (_, found) = decode(&hex(OLC_29));
    assert_eq!(
        keys(&found),
        [("mediaControlChannel", "OLC", "10.1.6.18:2007".into())]
    );
}

#[test]
fn open_logical_channel_ack_forward_multiplex_ack_parameters() {
    let (summary, found) = decode(&hex(ACK_31));
    assert_eq!(summary.name(), "openLogicalChannelAck");
    assert_eq!(
        keys(&found),
        [
            ("mediaChannel", "OLCAck", "10.1.3.143:5000".into()),
            ("mediaControlChannel", "OLCAck", "10.1.3.143:5001".into()),
        ]
    );
    let (_, found) = decode(&hex(ACK_32));
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].addr.to_string(), "10.1.6.18:2006");
    assert_eq!(found[1].kind, AddrKind::MediaControlChannel);
}

#[test]
fn tunnelled_messages_carry_their_h225_message() {
    let mut found = Vec::new();
    let carrier = Carrier::Tunnelled(UuieKind::Facility);
    let summary = parse_message(&hex(ACK_31), carrier, &mut |a| found.push(a)).unwrap();
    assert_eq!(summary.announced, 2);
    assert_eq!(
        found[0].context,
        Context::Tunnelled {
            carrier: UuieKind::Facility,
            msg: H245Msg::OpenLogicalChannelAck
        }
    );
    assert_eq!(found[0].context.key(), "tunnelled");
}

/// tel2.dump frame 188: two fastStart elements of a gateway's Setup.
const FAST_START_FORWARD: &str = "0000640c2013800b0f0001000a4e00030a4100";
const FAST_START_REVERSE: &str = "400064060401004c20138012150001000a4e00030a40000a4e00030a4100";

#[test]
fn fast_start_elements_are_bare_open_logical_channels() {
    let mut found = Vec::new();
    let carrier = Carrier::FastStart(UuieKind::Setup);
    let n = parse_open_logical_channel(&hex(FAST_START_FORWARD), carrier, &mut |a| found.push(a));
    assert_eq!(n, Ok(1));
    let n = parse_open_logical_channel(&hex(FAST_START_REVERSE), carrier, &mut |a| found.push(a));
    assert_eq!(n, Ok(2));
    assert_eq!(
        keys(&found),
        [
            (
                "mediaControlChannel",
                "fastStart,setup",
                "10.78.0.3:2625".into()
            ),
            ("mediaChannel", "fastStart,setup", "10.78.0.3:2624".into()),
            (
                "mediaControlChannel",
                "fastStart,setup",
                "10.78.0.3:2625".into()
            ),
        ]
    );
}

#[test]
fn other_messages_are_named_not_decoded() {
    // request (00) . terminalCapabilitySet (0010), then junk we never read.
    let (summary, found) = decode(&[0x02, 0xff, 0xff]);
    assert_eq!(summary.name(), "terminalCapabilitySet");
    assert_eq!(summary.decoded, None);
    assert!(found.is_empty());
    // indication (11) . userInput (1101).
    assert_eq!(decode(&[0b0110_1101]).0.name(), "userInput");
    // command (10) . endSessionCommand (101).
    assert_eq!(decode(&[0b0100_1010]).0.name(), "endSessionCommand");
    // An extension category.
    assert_eq!(decode(&[0x80, 0x00]).0.name(), "extension");
}

#[test]
fn two_open_logical_channels_in_one_tpkt() {
    let mut both = hex(OLC_28);
    both.extend(hex(OLC_29));
    let (summary, found) = decode(&both);
    assert_eq!(summary.announced, 2);
    assert_eq!(found[1].addr.to_string(), "10.1.6.18:2007");
}

#[test]
fn every_prefix_is_an_error_not_a_panic() {
    for msg in [OLC_28, OLC_29, ACK_31, ACK_32, FAST_START_REVERSE] {
        let bytes = hex(msg);
        for cut in 0..bytes.len() {
            let mut sink = |_: Announced| {};
            let _ = parse_frame(&bytes[..cut], &mut sink);
            let _ = parse_open_logical_channel(&bytes[..cut], Carrier::Direct, &mut sink);
        }
    }
    assert!(parse_frame(&[], &mut |_| {}).is_err());
}

/// H2250LogicalChannelParameters with an IPv6 mediaChannel and a multicast mediaControlChannel.
fn h2250_v6_and_multicast() -> Vec<u8> {
    let mut w = PerWriter::new();
    w.bit(false).bits(0b00101_00000, 10); // mediaChannel, mediaControlChannel present
    w.constrained(0, 255, 1); // sessionID
    w.choice(2, true, 0).choice(5, true, 2).bit(false); // unicast iP6Address
    w.octets(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    w.constrained(0, 65535, 6000);
    w.choice(2, true, 1).choice(2, true, 0).bit(false); // multicast iPAddress
    w.octets(&[224, 1, 2, 3]).constrained(0, 65535, 6001);
    w.finish()
}

/// H2250LogicalChannelParameters with only an IPv4 mediaControlChannel.
fn h2250_rtcp(port: u16) -> Vec<u8> {
    let mut w = PerWriter::new();
    w.bit(false).bits(0b00001_00000, 10).constrained(0, 255, 1);
    w.h245_ipv4([192, 0, 2, 1], port);
    w.finish()
}

/// An OpenLogicalChannel message whose forward DataType is written by `data_type`.
fn olc_with(data_type: impl Fn(&mut PerWriter)) -> Vec<u8> {
    let mut w = PerWriter::new();
    w.choice(4, true, 0).choice(11, true, 3); // request.openLogicalChannel
    w.bit(false).bit(false).constrained(1, 65535, 1); // no reverse parameters
    w.bit(false).bit(true).constrained(0, 65535, 9); // forward, with portNumber
    data_type(&mut w);
    w.ext_choice(0, &h2250_rtcp(7001));
    w.finish()
}

fn nonstandard(w: &mut PerWriter) {
    w.choice(2, false, 1)
        .constrained(0, 255, 181)
        .constrained(0, 255, 0);
    w.constrained(0, 65535, 0x5566).length(2).octets(&[1, 2]);
}

#[test]
fn every_data_type_alternative_is_skipped() {
    type Writer = fn(&mut PerWriter);
    let cases: [(&str, Writer); 19] = [
        ("nonStandard", |w| {
            w.choice(6, true, 0);
            nonstandard(w);
        }),
        ("nullData", |w| {
            w.choice(6, true, 1);
        }),
        ("h261", |w| {
            w.choice(6, true, 2)
                .choice(5, true, 1)
                .bit(false)
                .bits(0b10, 2);
            w.constrained(1, 4, 2)
                .bit(true)
                .constrained(1, 19200, 3000)
                .bit(false);
        }),
        ("h262", |w| {
            w.choice(6, true, 2)
                .choice(5, true, 2)
                .bit(false)
                .bits(0b100011, 6);
            w.bits(0, 11).constrained(0, 1_073_741_823, 70000);
            w.constrained(0, 15, 3).constrained(0, u32::MAX.into(), 1);
        }),
        ("h263", |w| {
            w.choice(6, true, 2)
                .choice(5, true, 3)
                .bit(false)
                .bits(0b0110001, 7);
            w.constrained(1, 32, 2)
                .constrained(1, 32, 2)
                .constrained(1, 192_400, 3000);
            w.bits(0b10101, 5).constrained(0, 65535, 12);
        }),
        ("is11172Video", |w| {
            w.choice(6, true, 2)
                .choice(5, true, 4)
                .bit(false)
                .bits(0b001100, 6);
            w.bit(true)
                .constrained(0, 16383, 352)
                .constrained(0, 16383, 288);
        }),
        ("videoNonStandard", |w| {
            w.choice(6, true, 2).choice(5, true, 0);
            nonstandard(w);
        }),
        ("videoExtension", |w| {
            w.choice(6, true, 2).ext_choice(0, &[0xde, 0xad]);
        }),
        ("g711Ulaw64k", |w| {
            w.choice(6, true, 3)
                .choice(14, true, 3)
                .constrained(1, 256, 20);
        }),
        ("g7231", |w| {
            w.choice(6, true, 3)
                .choice(14, true, 8)
                .constrained(1, 256, 1)
                .bit(true);
        }),
        ("is11172Audio", |w| {
            w.choice(6, true, 3)
                .choice(14, true, 12)
                .bit(false)
                .bits(0xff, 8);
            w.constrained(1, 448, 128);
        }),
        ("is13818Audio", |w| {
            w.choice(6, true, 3)
                .choice(14, true, 13)
                .bit(false)
                .bits(0xfffff, 20);
            w.constrained(1, 1130, 128);
        }),
        ("audioExtension", |w| {
            w.choice(6, true, 3).ext_choice(0, &[20]);
        }),
        ("t120", |w| {
            w.choice(6, true, 4)
                .bit(false)
                .choice(10, true, 1)
                .choice(7, true, 3);
            w.constrained(0, u32::MAX.into(), 640);
        }),
        ("t84", |w| {
            w.choice(6, true, 4)
                .bit(false)
                .choice(10, true, 4)
                .choice(7, true, 0);
            nonstandard(w);
            w.choice(2, false, 1).bit(false).bits(0x7ffff, 19);
            w.constrained(0, u32::MAX.into(), 64);
        }),
        ("nlpid", |w| {
            w.choice(6, true, 4)
                .bit(false)
                .choice(10, true, 7)
                .choice(7, true, 1);
            w.length(3)
                .octets(&[1, 2, 3])
                .constrained(0, u32::MAX.into(), 64);
        }),
        ("dsvdControl", |w| {
            w.choice(6, true, 4).bit(false).choice(10, true, 8);
            w.constrained(0, u32::MAX.into(), 1);
        }),
        ("h233Encryption", |w| {
            w.choice(6, true, 5).choice(2, true, 1);
        }),
        ("dataTypeExtension", |w| {
            w.ext_choice(1, &[1, 2, 3, 4]);
        }),
    ];
    for (name, data_type) in cases {
        let (summary, found) = decode(&olc_with(data_type));
        assert_eq!(summary.announced, 1, "{name}");
        assert_eq!(found[0].addr.to_string(), "192.0.2.1:7001", "{name}");
    }
}

#[test]
fn h223_forward_and_h2250_reverse_with_ipv6_and_multicast() {
    let mut w = PerWriter::new();
    w.choice(4, true, 0).choice(11, true, 3);
    w.bit(false).bit(true).constrained(1, 65535, 2); // reverse present
    w.bit(false).bit(false).choice(6, true, 1); // forward: nullData
                                                // H.223 parameters: al3, then segmentableFlag.
    w.choice(3, true, 1).bit(false).choice(6, true, 5);
    w.constrained(0, 2, 1)
        .constrained(0, 16_777_215, 1024)
        .bit(true);
    w.bit(false).bit(true).choice(6, true, 1); // reverse: nullData, multiplex present
    w.ext_choice(0, &h2250_v6_and_multicast());
    let (_, found) = decode(&w.finish());
    assert_eq!(
        keys(&found),
        [
            ("mediaChannel", "OLC", "[2001:db8::1]:6000".into()),
            ("mediaControlChannel", "OLC", "224.1.2.3:6001".into()),
        ]
    );
}

#[test]
fn h222_and_v76_multiplex_parameters_are_skipped() {
    let mut w = PerWriter::new();
    w.choice(4, true, 0).choice(11, true, 3);
    w.bit(false).bit(true).constrained(1, 65535, 2);
    w.bit(false).bit(false).choice(6, true, 1);
    // H.222: resourceID, subChannelID, pcr-pid, programDescriptors.
    w.choice(3, true, 0)
        .bit(false)
        .bits(0b110, 3)
        .constrained(0, 65535, 1);
    w.constrained(0, 8191, 2)
        .constrained(0, 8191, 3)
        .length(1)
        .octets(&[9]);
    // Reverse: V.76, then an extension addition (replacementFor) to skip.
    w.bit(true).bit(true).choice(6, true, 1).choice(2, true, 1);
    w.bit(false)
        .bit(false)
        .choice(3, true, 1)
        .constrained(1, 4095, 100)
        .bit(true);
    w.choice(3, true, 2)
        .bit(false)
        .choice(2, true, 0)
        .bit(false);
    w.constrained(1, 127, 7)
        .choice(3, true, 1)
        .bit(false)
        .bit(true);
    w.ext_bitmap(2, &[1]).open_type(&[0x00, 0x05]);
    w.ext_bitmap(1, &[0]).open_type(&hex("1e"));
    let (summary, found) = decode(&w.finish());
    assert_eq!(summary.decoded, Some(H245Msg::OpenLogicalChannel));
    assert!(found.is_empty());
}

#[test]
fn open_logical_channel_ack_reverse_parameters() {
    let mut w = PerWriter::new();
    w.choice(4, true, 1).choice(19, true, 5); // response.openLogicalChannelAck
    w.bit(false).bit(true).constrained(1, 65535, 1);
    w.bit(false)
        .bits(0b11, 2)
        .constrained(1, 65535, 2)
        .constrained(0, 65535, 3);
    w.ext_choice(0, &h2250_rtcp(9001));
    let (summary, found) = decode(&w.finish());
    assert_eq!(summary.decoded, Some(H245Msg::OpenLogicalChannelAck));
    assert_eq!(
        keys(&found),
        [("mediaControlChannel", "OLCAck", "192.0.2.1:9001".into())]
    );
}
