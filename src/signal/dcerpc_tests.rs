//! Byte-array tests of the DCE/RPC parser: real PDUs from `zeek/Traces/dce-rpc/mapi.pcap`
//! (frames 397, 398, 400, 505) and built ones (big-endian, authenticated, truncated, absurd).

use super::*;
use crate::signal::test_util::hex;
use crate::signal::test_util::mapi_pcap::{
    BIND_ACK, EPM_BIND as BIND, LOOKUP_RESPONSE, MAP_RESPONSE,
};

const NSPI: &str = "f5cc5a18-4264-101a-8c59-08002b2f8426";

fn put16(v: &mut Vec<u8>, o: Order, x: u16) {
    v.extend(match o {
        Order::Big => x.to_be_bytes(),
        Order::Little => x.to_le_bytes(),
    });
}

fn put32(v: &mut Vec<u8>, o: Order, x: u32) {
    v.extend(match o {
        Order::Big => x.to_be_bytes(),
        Order::Little => x.to_le_bytes(),
    });
}

/// A PDU of `ptype` around `body`, with an auth trailer of `auth` bytes if non-zero.
fn pdu(ptype: u8, o: Order, call_id: u32, body: &[u8], auth: u16) -> Vec<u8> {
    let mut v = vec![5, 0, ptype, PFC_FIRST_FRAG | PFC_LAST_FRAG];
    v.extend([if o == Order::Little { 0x10 } else { 0 }, 0, 0, 0]);
    let trailer = if auth > 0 { 8 + usize::from(auth) } else { 0 };
    put16(&mut v, o, (HEADER_LEN + body.len() + trailer) as u16);
    put16(&mut v, o, auth);
    put32(&mut v, o, call_id);
    v.extend(body);
    if auth > 0 {
        v.extend([10, 6, 0, 0, 0, 0, 0, 0]);
        v.extend(std::iter::repeat_n(0xaa, usize::from(auth)));
    }
    v
}

/// A tower for `uuid` v`major`: ncacn, TCP `port`, IP `ip`.
fn tower(uuid: &str, major: u16, ip: [u8; 4], port: u16) -> Vec<u8> {
    let u: Uuid = uuid.parse().unwrap();
    let mut le = u.0;
    le[0..4].reverse();
    le[4..6].reverse();
    le[6..8].reverse();
    let mut t = 5u16.to_le_bytes().to_vec();
    let mut floor = |lhs: &[u8], rhs: &[u8]| {
        t.extend((lhs.len() as u16).to_le_bytes());
        t.extend(lhs);
        t.extend((rhs.len() as u16).to_le_bytes());
        t.extend(rhs);
    };
    let mut f1 = vec![floor::UUID];
    f1.extend(le);
    f1.extend(major.to_le_bytes());
    floor(&f1, &[0, 0]);
    let mut f2 = vec![floor::UUID];
    f2.extend(hex("045d888aeb1cc9119fe808002b104860"));
    f2.extend(2u16.to_le_bytes());
    floor(&f2, &[0, 0]);
    floor(&[floor::NCACN], &[0, 0]);
    floor(&[floor::TCP], &port.to_be_bytes());
    floor(&[floor::IP], &ip);
    t
}

/// An ept_map response stub holding `towers`, then `status`.
fn map_stub(o: Order, towers: &[Vec<u8>], status: u32) -> Vec<u8> {
    let mut s = vec![0; 20];
    let n = towers.len() as u32;
    for x in [n, n, 0, n] {
        put32(&mut s, o, x);
    }
    for i in 0..n {
        put32(&mut s, o, i + 1);
    }
    for t in towers {
        put32(&mut s, o, t.len() as u32);
        put32(&mut s, o, t.len() as u32);
        s.extend(t);
        while !s.len().is_multiple_of(4) {
            s.push(0);
        }
    }
    put32(&mut s, o, status);
    s
}

fn response_body(o: Order, stub: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    put32(&mut b, o, stub.len() as u32);
    b.extend([0, 0, 0, 0]);
    b.extend(stub);
    b
}

#[test]
fn uuids_print_and_parse_the_usual_way() {
    let u: Uuid = "a4f1db00-ca47-1067-b31f-00dd010662da".parse().unwrap();
    assert_eq!(u.to_string(), "a4f1db00-ca47-1067-b31f-00dd010662da");
    assert_eq!(
        Uuid::read(&hex("00dbf1a447ca6710b31f00dd010662da"), Order::Little),
        Some(u)
    );
    assert_eq!(
        Uuid::read(&hex("a4f1db00ca471067b31f00dd010662da"), Order::Big),
        Some(u)
    );
    assert!("a4f1db00-ca47-1067-b31f".parse::<Uuid>().is_err());
    assert!("g4f1db00-ca47-1067-b31f-00dd010662da"
        .parse::<Uuid>()
        .is_err());
    assert_eq!(EPM.to_string(), "e1af8308-5d1f-11c9-91a4-08002b14a0fa");
}

#[test]
fn a_real_bind_and_bind_ack() {
    let (h, ctx) = parse_bind(&hex(BIND)).unwrap();
    assert_eq!(
        (h.ptype, h.order, h.call_id, h.frag_len),
        (11, Order::Little, 1, 72)
    );
    assert!(h.first_frag() && h.last_frag());
    assert_eq!(ctx.len(), 1);
    assert_eq!((ctx[0].uuid, ctx[0].version()), (EPM, "3.0".to_string()));
    let (h, results) = parse_bind_ack(&hex(BIND_ACK)).unwrap();
    assert_eq!((h.ptype, results), (ptype::BIND_ACK, vec![0]));
}

#[test]
fn a_real_ept_map_response() {
    let b = hex(MAP_RESPONSE);
    let (h, stub) = parse_response(&b).unwrap();
    assert_eq!(h.call_id, 1);
    let r = parse_epm_response(stub, OPNUM_EPT_MAP, h.order).unwrap();
    assert_eq!((r.status, r.bad_towers, r.towers.len()), (0, 0, 1));
    let t = r.towers[0];
    assert_eq!(t.interface.uuid.to_string(), NSPI);
    assert_eq!(t.interface.version(), "56.0");
    assert_eq!(t.rpc_protocol, floor::NCACN);
    assert_eq!(t.transport, Some((Transport::Tcp, 4997)));
    assert_eq!(t.ip, Some(Ipv4Addr::new(192, 168, 0, 2)));
}

#[test]
fn a_real_ept_lookup_response_over_http() {
    let b = hex(LOOKUP_RESPONSE);
    let (h, stub) = parse_response(&b).unwrap();
    let r = parse_epm_response(stub, OPNUM_EPT_LOOKUP, h.order).unwrap();
    assert_eq!(r.towers.len(), 1);
    assert_eq!(r.towers[0].interface.uuid.to_string(), NSPI);
    assert_eq!(r.towers[0].transport, None, "ncacn_http is not TCP");
}

#[test]
fn a_big_endian_response_with_several_towers() {
    let o = Order::Big;
    let towers = [
        tower(NSPI, 56, [10, 0, 0, 1], 1026),
        tower(NSPI, 56, [192, 168, 1, 6], 1026),
    ];
    let p = pdu(
        ptype::RESPONSE,
        o,
        7,
        &response_body(o, &map_stub(o, &towers, 0)),
        0,
    );
    let (h, stub) = parse_response(&p).unwrap();
    assert_eq!((h.order, h.call_id), (Order::Big, 7));
    let r = parse_epm_response(stub, OPNUM_EPT_MAP, h.order).unwrap();
    let ips: Vec<_> = r.towers.iter().map(|t| t.ip.unwrap().to_string()).collect();
    assert_eq!(ips, ["10.0.0.1", "192.168.1.6"]);
    assert!(r.towers.iter().all(
        |t| t.transport == Some((Transport::Tcp, 1026)) && t.interface.uuid.to_string() == NSPI
    ));
}

#[test]
fn the_auth_trailer_is_not_stub() {
    let o = Order::Little;
    let stub = map_stub(o, &[tower(NSPI, 56, [10, 0, 0, 1], 1026)], 0);
    let p = pdu(ptype::RESPONSE, o, 3, &response_body(o, &stub), 16);
    let (h, got) = parse_response(&p).unwrap();
    assert_eq!(h.auth_len, 16);
    assert_eq!(got, &stub[..], "stub without sec_trailer and credentials");
    assert_eq!(
        parse_epm_response(got, OPNUM_EPT_MAP, o)
            .unwrap()
            .towers
            .len(),
        1
    );
}

#[test]
fn a_failed_lookup_hands_out_nothing() {
    let o = Order::Little;
    let stub = map_stub(o, &[tower(NSPI, 56, [10, 0, 0, 1], 1026)], 0x16c9a0d6);
    let r = parse_epm_response(&stub, OPNUM_EPT_MAP, o).unwrap();
    assert_eq!((r.status, r.towers.len()), (0x16c9a0d6, 0));
}

#[test]
fn truncated_pdus_are_errors_not_panics() {
    for pdu in [MAP_RESPONSE, LOOKUP_RESPONSE, BIND, BIND_ACK] {
        let b = hex(pdu);
        for n in 0..b.len() {
            let cut = &b[..n];
            assert!(split(cut).is_err(), "{n}");
            let _ = parse_bind(cut);
            let _ = parse_bind_ack(cut);
            // A stub cut short must not panic either.
            if n > 24 {
                let _ = parse_epm_response(&b[24..n], OPNUM_EPT_MAP, Order::Little);
                let _ = parse_epm_response(&b[24..n], OPNUM_EPT_LOOKUP, Order::Little);
            }
        }
    }
    assert!(matches!(
        parse_header(&hex("04000b03100000004800000001000000")),
        Err(Error::Version(4, 0))
    ));
    assert!(matches!(
        parse_header(&hex("05000b03100000000800000001000000")),
        Err(Error::FragLen(8))
    ));
}

#[test]
fn absurd_counts_are_rejected() {
    let o = Order::Little;
    let mut stub = map_stub(o, &[tower(NSPI, 56, [10, 0, 0, 1], 1026)], 0);
    stub[32..36].copy_from_slice(&100_000u32.to_le_bytes());
    assert!(matches!(
        parse_epm_response(&stub, OPNUM_EPT_MAP, o),
        Err(Error::TooMany { what: "tower", .. })
    ));
    let mut t = tower(NSPI, 56, [10, 0, 0, 1], 1026);
    t[0..2].copy_from_slice(&1000u16.to_le_bytes());
    assert!(matches!(
        parse_tower(&t),
        Err(Error::TooMany { what: "floor", .. })
    ));
    let mut b = hex(BIND);
    b[24] = 200;
    assert!(parse_bind(&b).is_err());
}

#[test]
fn a_request_and_its_opnum() {
    let o = Order::Big;
    let mut body = Vec::new();
    put32(&mut body, o, 4);
    put16(&mut body, o, 0);
    put16(&mut body, o, OPNUM_EPT_MAP);
    body.extend([1, 2, 3, 4]);
    let p = pdu(ptype::REQUEST, o, 9, &body, 0);
    let (h, r) = parse_request(&p).unwrap();
    assert_eq!((h.call_id, r.opnum, r.stub), (9, 3, &[1u8, 2, 3, 4][..]));
}
