//! RAS: real messages from ndpi/h323.pcap and cr_ss101.cap, synthetic ones for the rest.

use super::*;
use crate::signal::test_util::{hex, keys, PerWriter};

fn decode(bytes: &[u8]) -> (RasSummary, Vec<(&'static str, &'static str, String)>) {
    let mut found = Vec::new();
    let summary = parse(bytes, &mut |a| found.push(a)).unwrap();
    (summary, keys(&found))
}

fn one(kind: &'static str, ctx: &'static str, addr: &str) -> (&'static str, &'static str, String) {
    (kind, ctx, addr.to_string())
}

#[test]
fn gatekeeper_discovery() {
    // ndpi/h323.pcap frames 59 (GRQ) and 60 (GCF).
    let grq = hex("02200000060008914a0004001102007c07f22200ae01003d0001030085c89a51208003014000");
    let (s, found) = decode(&grq);
    assert_eq!(s.kind, RasKind::GATEKEEPER_REQUEST);
    assert_eq!(
        found,
        [one(
            "h225:rasAddress",
            "gatekeeperRequest",
            "17.2.0.124:2034"
        )]
    );
    let gcf = hex(
        "04800000060008914a00043e004f00700065006e004800330032003300200047006100740065006b00650065\
         0070006500720020006f006e0020006d0066006f007400740065006b0069006e00110200a106b7",
    );
    let (_, found) = decode(&gcf);
    assert_eq!(
        found,
        [one(
            "h225:rasAddress",
            "gatekeeperConfirm",
            "17.2.0.161:1719"
        )]
    );
}

#[test]
fn registration_request_and_confirm() {
    // ndpi/h323.pcap frames 61 (RRQ) and 62 (RCF).
    let rrq = hex(
        "0ec00001060008914a00048001001102007c06b801001102007c07f22200ae01003d0001840e100340333333\
         33333333333099903e004f00700065006e004800330032003300200047006100740065006b00650065007000\
         6500720020006f006e0020006d0066006f007400740065006b0069006e00ae01003d280b0000010001800180",
    );
    let (s, found) = decode(&rrq);
    assert_eq!((s.kind.key(), s.announced), ("registrationRequest", 2));
    assert_eq!(
        found,
        [
            one(
                "h225:callSignalAddress",
                "registrationRequest",
                "17.2.0.124:1720"
            ),
            one("h225:rasAddress", "registrationRequest", "17.2.0.124:2034"),
        ]
    );
    let rcf = hex(
        "12400001060008914a000401001102007c06b83e004f00700065006e004800330032003300200047006100\
         740065006b006500650070006500720020006f006e0020006d0066006f007400740065006b0069006e160034\
         0037003400610037003400630038003a0032003700340e8e03400e0f018005800802003b0100",
    );
    let (_, found) = decode(&rcf);
    assert_eq!(
        found,
        [one(
            "h225:callSignalAddress",
            "registrationConfirm",
            "17.2.0.124:1720"
        )]
    );
}

#[test]
fn registration_confirm_lists_alternate_gatekeepers() {
    // ndpi/h323.pcap frame 72: three alternateGatekeeper rasAddresses in an extension.
    let rcf = hex(
        "12c04692060008914a000601000a2fd03206b802400b0032003000320030003300400061006d002e0073006f\
         006c018053cb0e0061006d002d007600630073002d00304c00620064003000320030006200380030002d0036\
         006400340031002d0031003100650031002d0061003700660062002d003000300031003000660033003000660\
         036003500610030005f00310037278a80005e03400a2fd03606b7140041006c007400650072006e0061007400\
         650020003181400a2fd03306b7140041006c007400650072006e0061007400650020003281400a2fd03506b71\
         40041006c007400650072006e006100740065002000338102003b010001000100",
    );
    let (_, found) = decode(&rcf);
    let ctx = "registrationConfirm";
    assert_eq!(
        found,
        [
            one("h225:callSignalAddress", ctx, "10.47.208.50:1720"),
            one("h225:rasAddress", ctx, "10.47.208.54:1719"),
            one("h225:rasAddress", ctx, "10.47.208.51:1719"),
            one("h225:rasAddress", ctx, "10.47.208.53:1719"),
        ]
    );
    // cr_ss101.cap frame 37: one alternate gatekeeper.
    let rcf = hex(
        "12001631060008914a00040100c0a8ec0506b84200300030003100310032003300650064003200300030003900\
         31003100310038003100380032003200310033003000300032003400300030003000610062006400370030218e\
         000c0140c0a874ac06b70000300002001d010001100100",
    );
    let (_, found) = decode(&rcf);
    assert_eq!(
        found[1],
        one("h225:rasAddress", ctx, "192.168.116.172:1719")
    );
}

#[test]
fn admission_request_and_confirm() {
    // ndpi/h323.pcap frame 64 (ACF).
    let acf = hex("2b000002400a00001102007a06b8003b1400c001800b9801f80100010001000100");
    let (_, found) = decode(&acf);
    assert_eq!(
        found,
        [one(
            "h225:destCallSignalAddress",
            "admissionConfirm",
            "17.2.0.122:1720"
        )]
    );
    // ARQ with both addresses (synthetic).
    let mut w = PerWriter::new();
    w.choice(25, true, 9)
        .bit(false)
        .bits(0b0110100, 7)
        .constrained(1, 65535, 2);
    w.choice(4, true, 0); // callType
    w.constrained(1, 128, 1).align().octets(&[0, 0x41]); // endpointIdentifier "A"
    w.length(1)
        .choice(2, true, 0)
        .constrained(1, 128, 2)
        .align()
        .octets(&[0x12]);
    w.h225_ipv4([192, 0, 2, 2], 1720);
    w.length(0); // srcInfo
    w.h225_ipv4([192, 0, 2, 1], 1720);
    let (_, found) = decode(&w.finish());
    assert_eq!(
        found,
        [
            one(
                "h225:destCallSignalAddress",
                "admissionRequest",
                "192.0.2.2:1720"
            ),
            one(
                "h225:srcCallSignalAddress",
                "admissionRequest",
                "192.0.2.1:1720"
            ),
        ]
    );
}

#[test]
fn location_unregistration_and_info_messages() {
    // LCF: callSignalAddress, rasAddress.
    let mut w = PerWriter::new();
    w.choice(25, true, 19)
        .bit(false)
        .bit(false)
        .constrained(1, 65535, 7);
    w.h225_ipv4([192, 0, 2, 3], 1720)
        .h225_ipv4([192, 0, 2, 3], 1719);
    let (s, found) = decode(&w.finish());
    assert_eq!(s.kind, RasKind::LOCATION_CONFIRM);
    assert_eq!(
        found[0],
        one(
            "h225:callSignalAddress",
            "locationConfirm",
            "192.0.2.3:1720"
        )
    );
    assert_eq!(
        found[1],
        one("h225:rasAddress", "locationConfirm", "192.0.2.3:1719")
    );
    // LRQ: replyAddress after destinationInfo.
    let mut w = PerWriter::new();
    w.choice(25, true, 18)
        .bit(false)
        .bits(0, 2)
        .constrained(1, 65535, 8);
    w.length(1)
        .choice(2, true, 1)
        .constrained(1, 256, 1)
        .align()
        .octets(&[0, 0x61]);
    w.h225_ipv4([192, 0, 2, 4], 1719);
    let (_, found) = decode(&w.finish());
    assert_eq!(
        found,
        [one(
            "h225:replyAddress",
            "locationRequest",
            "192.0.2.4:1719"
        )]
    );
    // URQ: callSignalAddress list.
    let mut w = PerWriter::new();
    w.choice(25, true, 6)
        .bit(false)
        .bits(0, 3)
        .constrained(1, 65535, 9);
    w.length(2)
        .h225_ipv4([192, 0, 2, 5], 1720)
        .h225_ipv4([192, 0, 2, 6], 1720);
    let (s, found) = decode(&w.finish());
    assert_eq!((s.kind.key(), found.len()), ("unregistrationRequest", 2));
    // IRQ with replyAddress; IRR with rasAddress and callSignalAddress.
    let mut w = PerWriter::new();
    w.choice(25, true, 21)
        .bit(false)
        .bits(0b01, 2)
        .constrained(1, 65535, 1);
    w.constrained(0, 65535, 5).h225_ipv4([192, 0, 2, 7], 1719);
    let (_, found) = decode(&w.finish());
    assert_eq!(
        found,
        [one("h225:replyAddress", "infoRequest", "192.0.2.7:1719")]
    );
    let mut w = PerWriter::new();
    w.choice(25, true, 22)
        .bit(false)
        .bits(0, 3)
        .constrained(1, 65535, 1);
    w.bit(false).bits(0, 6).bit(true).bit(false); // endpointType
    w.constrained(1, 128, 1).align().octets(&[0, 0x42]);
    w.h225_ipv4([192, 0, 2, 8], 1719)
        .length(1)
        .h225_ipv4([192, 0, 2, 8], 1720);
    let (_, found) = decode(&w.finish());
    assert_eq!(found.len(), 2);
    assert_eq!(
        found[1],
        one(
            "h225:callSignalAddress",
            "infoRequestResponse",
            "192.0.2.8:1720"
        )
    );
}

#[test]
fn gatekeeper_confirm_assigned_gatekeeper_extension() {
    let mut alt = PerWriter::new();
    alt.bit(false)
        .bit(false)
        .h225_ipv4([192, 0, 2, 10], 1719)
        .bit(true);
    alt.constrained(0, 127, 1);
    let alt = alt.finish();
    let mut w = PerWriter::new();
    w.choice(25, true, 1)
        .bit(true)
        .bits(0, 2)
        .constrained(1, 65535, 1)
        .oid(&[0]);
    w.h225_ipv4([192, 0, 2, 11], 1719);
    w.ext_bitmap(10, &[2, 9])
        .open_type(&[0x01, 0x00])
        .open_type(&alt);
    let (_, found) = decode(&w.finish());
    assert_eq!(
        found[1],
        one("h225:rasAddress", "gatekeeperConfirm", "192.0.2.10:1719")
    );
}

#[test]
fn other_and_extension_messages_are_named() {
    // disengageConfirm (16): 0 + 10000.
    let (s, found) = decode(&[0b0100_0000]);
    assert_eq!((s.kind.key(), found.len()), ("disengageConfirm", 0));
    // Extension alternative 3: infoRequestAck.
    let (s, _) = decode(&[0b1000_0011, 0x00]);
    assert_eq!(s.kind.key(), "infoRequestAck");
    let (s, _) = decode(&[0b1011_1111, 0x00]);
    assert_eq!(s.kind.key(), "unknown");
    assert!(parse(&[], &mut |_| {}).is_err());
}

#[test]
fn every_prefix_is_handled() {
    let rrq = hex(
        "0e801631060008914a0003000100c0a8ec8e04000100c0a8ec8e040322c0200000810d4d6564696174726978\
         203131303208342e302e31312e3430000240080055004b00430048004d00540030003100328304340656c960",
    );
    let (_, found) = decode(&rrq);
    assert_eq!(
        found[0],
        one(
            "h225:callSignalAddress",
            "registrationRequest",
            "192.168.236.142:1024"
        )
    );
    for cut in 0..rrq.len() {
        let _ = parse(&rrq[..cut], &mut |_| {});
    }
}
