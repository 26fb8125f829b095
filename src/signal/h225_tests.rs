//! H.225 call signalling: real messages from the corpus (TPKT header removed) and synthetic ones
//! for the UUIEs and extension paths the corpus lacks.

use super::*;
use crate::signal::q931::msg;
use crate::signal::test_util::{hex, keys, PerWriter};

fn decode(bytes: &[u8]) -> (H225Summary, Vec<(&'static str, &'static str, String)>) {
    let mut found = Vec::new();
    let summary = parse_frame(bytes, &mut |a| found.push(a)).unwrap();
    (summary, keys(&found))
}

/// rtp_example.raw.gz frame 4: NetMeeting Setup with both call-signalling addresses.
const NETMEETING_SETUP: &str = "080277f40504038090a528086d2e6a656d6563007e00850520a8060008914a\
    0004014006006d002e006a0065006d0065006322c00900003d1443616c6c67656e33323320706f67616373616d\
    00000a302e39616c706861340000000a01061206b800f8fdf93ecd9ed6119ab2000476222017005d0d8007000a\
    01038f80231100c0fef93ecd9ed6119ab2000476222017010001000100010002800100";
/// rtp_example.raw.gz frame 10: the Connect with h245Address.
const NETMEETING_CONNECT: &str = "0802f7f40728074d2e4a454d45437e004c0522c0060008914a0003000a01\
    061204d022c0000000000333313069005200f8fdf93ecd9ed6119ab2000476222017170c001100c0fef93ecd9e\
    d6119ab20004762220170100010008800100";

#[test]
fn netmeeting_setup_announces_both_call_signal_addresses() {
    let (s, found) = decode(&hex(NETMEETING_SETUP));
    assert_eq!(
        (s.message_type, s.body),
        (msg::SETUP, Some(UuieKind::Setup))
    );
    assert!(!s.h245_tunnelling);
    assert_eq!((s.announced, s.fast_start, s.nested_errors), (2, 0, 0));
    assert_eq!(
        found,
        [
            (
                "h225:destCallSignalAddress",
                "setup",
                "10.1.6.18:1720".into()
            ),
            (
                "h225:sourceCallSignalAddress",
                "setup",
                "10.1.3.143:32803".into()
            ),
        ]
    );
}

#[test]
fn netmeeting_connect_announces_h245_address() {
    let (s, found) = decode(&hex(NETMEETING_CONNECT));
    assert_eq!(s.body, Some(UuieKind::Connect));
    assert_eq!(found, [("h245Address", "connect", "10.1.6.18:1232".into())]);
}

#[test]
fn setup_through_a_gatekeeper_with_aliases_and_vendor() {
    // ndpi/h323.pcap frame 65: dialledDigits and email aliases, gateway vendor strings.
    let bytes = hex(
        "080200010504039090a26c08c1353239353637327008c1393234363532367e00730520a8060008914a000401\
         030085c89a5220ae01003d001102007a06b800003dfd3000004833800005040302010000cd0d80020700110\
         2007c06b81100004091fb7289f911802a050403020100010001000100010019017820140011696e666f4061\
         73656c73616e2e636f6d6f6d2810800100a1",
    );
    let (s, found) = decode(&bytes);
    assert_eq!(s.nested_errors, 0);
    assert_eq!(
        found,
        [
            (
                "h225:destCallSignalAddress",
                "setup",
                "17.2.0.122:1720".into()
            ),
            (
                "h225:sourceCallSignalAddress",
                "setup",
                "17.2.0.124:1720".into()
            ),
        ]
    );
}

/// tel2.dump frames 182 + 188: a gateway Setup split over two segments, with fastStart.
const GATEWAY_SETUP: &str = "0802155605a104039090a51e0281836c0c218034393539383138313030700b81\
    343935343831383035357e012c052090060008914a00053cc0b5004c54114176617961204d756c746976616e7461\
    67650f52303133782e30312e322e3633322e311003140504010000c02c0504010000c03c0504010000c020010480\
    7c87b4b3880080dc843fc45cdd01b26f47ede2c8000000d51d800007000a4e000206b8110080dc843fc45cdd01b2\
    6f47ede2c80000809a06130000640d4001800b0f0001000a4e00030a41001e400064060401004d40018012150001\
    000a4e00030a40000a4e00030a4100130000640c6013800b0f0001000a4e00030a41001e400064060401004c6013\
    8012150001000a4e00030a40000a4e00030a4100130000640c2013800b0f0001000a4e00030a41001e4000640604\
    01004c20138012150001000a4e00030a40000a4e00030a4100010001800100010010800180";

#[test]
fn gateway_setup_with_fast_start() {
    let (s, found) = decode(&hex(GATEWAY_SETUP));
    assert!(s.h245_tunnelling);
    assert_eq!((s.fast_start, s.nested_errors), (6, 0));
    assert_eq!(
        found[0],
        (
            "h225:sourceCallSignalAddress",
            "setup",
            "10.78.0.2:1720".into()
        )
    );
    let media: std::collections::BTreeSet<_> = found[1..].iter().cloned().collect();
    assert_eq!(
        media.into_iter().collect::<Vec<_>>(),
        [
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
fn connect_with_h245_address_and_fast_start() {
    // tel2.dump frame 2655.
    let bytes = hex(
        "08028f93077e00a60532c0060008914a0004004d25fedefa9e28c0b500002806476174657761790c342e383041\
         2e3032352e303034008082223dc45cdd01ad6f47ede2c800001d1cc011008082223dc45cdd01ad6f47ede2c8\
         0000340217400080060401004d4001800b050001004d25fede1325001a0000640d400180121f0001004d25fe\
         de1324004d25fede1325000100018001000140000b2b06010401946bce1001010456443d3010800180",
    );
    let (s, found) = decode(&bytes);
    assert_eq!((s.body, s.fast_start), (Some(UuieKind::Connect), 2));
    assert_eq!(
        found,
        [
            ("h245Address", "connect", "77.37.254.222:64158".into()),
            (
                "mediaControlChannel",
                "fastStart,connect",
                "77.37.254.222:4901".into()
            ),
            (
                "mediaChannel",
                "fastStart,connect",
                "77.37.254.222:4900".into()
            ),
            (
                "mediaControlChannel",
                "fastStart,connect",
                "77.37.254.222:4901".into()
            ),
        ]
    );
}

#[test]
fn facility_h245_address_is_an_extension_addition() {
    // tel2.dump frame 310.
    let bytes = hex(
        "0802db48621c007e0040052680060008914a00048601001f058011000058ad27c45cdd018d6f47ede2c80000\
         07004d25fedecdbb0100018010c001800d02080480008000800100024a40",
    );
    let (s, found) = decode(&bytes);
    assert_eq!(
        (s.message_type, s.body),
        (msg::FACILITY, Some(UuieKind::Facility))
    );
    assert_eq!(
        found,
        [("h245Address", "facility", "77.37.254.222:52667".into())]
    );
}

#[test]
fn facility_with_tunnelled_h245() {
    // tel2.dump frame 3143: h245Tunnelling set, two tunnelled messages (no addresses in them).
    let bytes = hex(
        "08028f93621c007e008d052680060008914a00048601001f058011008082223dc45cdd01ad6f47ede2c80000\
         07004d25fedefa9e0100018010c001805a01580270010600088175000a800d00003c00010000010000010000\
         0480000032800180000132c0018000023040138000034a0811860100807c0100014007c00200c80148400090\
         80000483011000800000030000000100020003",
    );
    let (s, found) = decode(&bytes);
    assert!(s.h245_tunnelling);
    assert_eq!((s.h245_control, s.nested_errors), (1, 0));
    assert_eq!(
        found,
        [("h245Address", "facility", "77.37.254.222:64158".into())]
    );
}

#[test]
fn frames_without_h225_user_information() {
    // Release complete with a Cause and no User-user element.
    let (s, found) = decode(&hex("0802000a5a08028090"));
    assert_eq!((s.message_type, s.body), (msg::RELEASE_COMPLETE, None));
    assert!(found.is_empty());
    // A User-user element with another protocol discriminator is not decoded.
    let (s, _) = decode(&hex("0802000a5a7e00030401ff"));
    assert_eq!(s.body, None);
    assert!(matches!(
        parse_frame(&hex("0300"), &mut |_| {}),
        Err(SignalError::Q931(_))
    ));
}

#[test]
fn every_prefix_and_every_bit_flip_is_handled() {
    let bytes = hex(GATEWAY_SETUP);
    for cut in 0..bytes.len() {
        let _ = parse_frame(&bytes[..cut], &mut |_| {});
    }
    for i in 0..bytes.len() * 8 {
        let mut flipped = bytes.clone();
        flipped[i / 8] ^= 0x80 >> (i % 8);
        let _ = parse_frame(&flipped, &mut |_| {});
    }
}

/// `H323-UserInformation` with a root body written by `body`, h245Tunnelling and optionally
/// one tunnelled H.245 message.
fn user_information(body: impl Fn(&mut PerWriter), tunnelled: Option<&[u8]>) -> Vec<u8> {
    let mut w = PerWriter::new();
    w.bit(false).bit(false); // H323-UserInformation: no extensions, no user-data
    w.bit(true).bit(false); // H323-UU-PDU: extended, no nonStandardData
    body(&mut w);
    let present: &[usize] = if tunnelled.is_some() { &[1, 2] } else { &[1] };
    w.ext_bitmap(3, present).open_type(&[0x80]);
    if let Some(msg) = tunnelled {
        let mut list = PerWriter::new();
        list.length(1).length(msg.len()).octets(msg);
        w.open_type(&list.finish());
    }
    w.finish()
}

const OID: [u8; 6] = [0x00, 0x08, 0x91, 0x4a, 0x00, 0x04];

/// A minimal EndpointType: no optional parts, mc and undefinedNode false.
fn endpoint_type(w: &mut PerWriter) {
    w.bit(false).bits(0, 6).bit(false).bit(false);
}

#[test]
fn call_proceeding_and_alerting_h245_address() {
    for (index, key) in [(1, "callProceeding"), (3, "alerting")] {
        let bytes = user_information(
            |w| {
                w.choice(7, true, index).bit(false).bit(true).oid(&OID);
                endpoint_type(w);
                w.h225_ipv4([192, 0, 2, 7], 1503);
            },
            None,
        );
        let mut found = Vec::new();
        let s = parse_user_information(&bytes, &mut |a| found.push(a)).unwrap();
        assert!(s.h245_tunnelling);
        assert_eq!(
            keys(&found),
            [("h245Address", key, "192.0.2.7:1503".into())]
        );
    }
}

#[test]
fn tunnelled_open_logical_channel_and_ipv6_h245_address() {
    let olc = hex("030000640c201d800b0d0001000a01038f138980");
    let bytes = user_information(
        |w| {
            // Facility with alternativeAddress (ip6Address), reason startH245 (an extension).
            w.choice(7, true, 6).bit(false).bits(0b100, 3).oid(&OID);
            w.choice(7, true, 3).bit(false);
            w.octets(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
            w.constrained(0, 65535, 1720);
            w.ext_choice(1, &[]);
        },
        Some(&olc),
    );
    let mut found = Vec::new();
    let s = parse_user_information(&bytes, &mut |a| found.push(a)).unwrap();
    assert_eq!((s.body, s.h245_control), (Some(UuieKind::Facility), 1));
    assert_eq!(
        keys(&found),
        [
            (
                "h225:alternativeAddress",
                "facility",
                "[2001:db8::2]:1720".into()
            ),
            ("mediaControlChannel", "tunnelled", "10.1.3.143:5001".into()),
        ]
    );
}

#[test]
fn progress_is_an_extension_alternative_with_fast_start() {
    let olc = hex("0000640c2013800b0f0001000a4e00030a4100");
    let mut p = PerWriter::new();
    // h245Address and fastStart present; no h245SecurityMode, tokens or cryptoTokens.
    p.bit(false).bits(0b10001, 5).oid(&OID);
    endpoint_type(&mut p);
    p.h225_ipv4([192, 0, 2, 9], 1300);
    p.bit(false).octets(&[7; 16]); // callIdentifier
    p.length(1).length(olc.len()).octets(&olc);
    let progress = p.finish();
    let bytes = user_information(
        |w| {
            w.ext_choice(0, &progress);
        },
        None,
    );
    let mut found = Vec::new();
    let s = parse_user_information(&bytes, &mut |a| found.push(a)).unwrap();
    assert_eq!((s.body, s.fast_start), (Some(UuieKind::Progress), 1));
    assert_eq!(
        keys(&found),
        [
            ("h245Address", "progress", "192.0.2.9:1300".into()),
            (
                "mediaControlChannel",
                "fastStart,progress",
                "10.78.0.3:2625".into()
            ),
        ]
    );
}

#[test]
fn broken_fast_start_element_is_counted_and_the_rest_decoded() {
    // Information-UUIE with fastStart (extension 3) holding a junk element and a good one.
    let good = hex("0000640c2013800b0f0001000a4e00030a4100");
    let mut list = PerWriter::new();
    list.length(2)
        .length(2)
        .octets(&[0xff, 0xff])
        .length(good.len())
        .octets(&good);
    let list = list.finish();
    let bytes = user_information(
        |w| {
            w.choice(7, true, 4).bit(true).oid(&OID);
            w.ext_bitmap(4, &[3]).open_type(&list);
        },
        None,
    );
    let mut found = Vec::new();
    let s = parse_user_information(&bytes, &mut |a| found.push(a)).unwrap();
    assert_eq!((s.fast_start, s.nested_errors, s.announced), (2, 1, 1));
    assert_eq!(found[0].context.key(), "fastStart,information");
}

#[test]
fn release_complete_with_reason_and_empty_body() {
    let bytes = user_information(
        |w| {
            w.choice(7, true, 5)
                .bit(false)
                .bit(true)
                .oid(&OID)
                .choice(12, true, 11);
        },
        None,
    );
    let s = parse_user_information(&bytes, &mut |_| {}).unwrap();
    assert_eq!(s.body, Some(UuieKind::ReleaseComplete));
    let bytes = user_information(
        |w| {
            w.ext_choice(1, &[]);
        },
        None,
    );
    let s = parse_user_information(&bytes, &mut |_| {}).unwrap();
    assert_eq!((s.body, s.h245_tunnelling), (Some(UuieKind::Empty), true));
}
