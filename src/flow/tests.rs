//! Flow table tests: client/server, outcomes, SYN retransmissions, reuse, expiry, eviction.

use super::*;
use crate::packet::tcp_flags::{ACK, FIN, PSH, RST, SYN};
use crate::packet::{FiveTuple, IcmpUnreachable};

const S: Nanos = 1_000_000_000;

fn ep(s: &str) -> Endpoint {
    let (ip, port) = s.rsplit_once(':').unwrap();
    Endpoint::new(ip.parse().unwrap(), port.parse().unwrap())
}

fn tcp(ts: Nanos, src: &str, dst: &str, flags: u8, seq: u32) -> Packet<'static> {
    Packet {
        ts,
        wire_len: 60,
        proto: Proto::Tcp,
        src: ep(src),
        dst: ep(dst),
        tcp_flags: flags,
        seq,
        ack: 0,
        payload: b"",
        unreachable: None,
        fragment: None,
    }
}

fn udp(ts: Nanos, src: &str, dst: &str) -> Packet<'static> {
    Packet {
        proto: Proto::Udp,
        ..tcp(ts, src, dst, 0, 0)
    }
}

fn is_server(proto: Proto, port: u16) -> bool {
    matches!(
        (proto, port),
        (Proto::Tcp, 25) | (Proto::Udp, 53) | (Proto::Tcp, 389)
    )
}

/// Runs packets through a table and returns the flows in the order they ended.
fn run(cfg: FlowConfig, packets: &[Packet<'_>]) -> Vec<(Flow, EndReason)> {
    let mut t = FlowTable::new(cfg);
    let mut out = Vec::new();
    let mut ended = |f: Flow, why: EndReason| out.push((f, why));
    for p in packets {
        match &p.unreachable {
            Some(u) => {
                t.icmp_unreachable(p, u, &mut ended);
            }
            None => {
                t.packet(p, is_server, &mut ended);
            }
        }
    }
    t.flush(&mut ended);
    out
}

const C: &str = "10.0.0.5:40001";
const SRV: &str = "10.0.0.25:25";

#[test]
fn established_with_rtt() {
    let f = run(
        FlowConfig::default(),
        &[
            tcp(0, C, SRV, SYN, 100),
            tcp(S / 100, SRV, C, SYN | ACK, 900),
            tcp(S / 50, C, SRV, ACK, 101),
            tcp(S, SRV, C, ACK | PSH, 901),
        ],
    );
    assert_eq!(f.len(), 1);
    let f = &f[0].0;
    assert_eq!((f.client, f.server), (ep(C), ep(SRV)));
    assert_eq!(f.outcome(), Outcome::Established);
    assert_eq!(f.tcp.handshake_rtt, Some(S / 50));
    assert_eq!((f.to_server.packets, f.to_client.packets), (2, 2));
    assert!(!f.midstream);
}

#[test]
fn syn_retransmissions_are_one_unanswered_flow() {
    let f = run(
        FlowConfig::default(),
        &[
            tcp(0, C, SRV, SYN, 7),
            tcp(3 * S, C, SRV, SYN, 7),
            tcp(9 * S, C, SRV, SYN, 7),
        ],
    );
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].0.outcome(), Outcome::Unanswered);
    assert_eq!(f[0].0.tcp.syns, 3);
}

#[test]
fn refused_then_new_isn_is_a_new_flow() {
    let f = run(
        FlowConfig::default(),
        &[
            tcp(0, C, SRV, SYN, 7),
            tcp(1, SRV, C, RST | ACK, 0),
            tcp(S / 2, C, SRV, SYN, 7), // retransmission, same ISN: same flow
            tcp(2 * S, C, SRV, SYN, 5000),
            tcp(2 * S + 1, SRV, C, SYN | ACK, 1),
        ],
    );
    assert_eq!(f.len(), 2);
    assert_eq!(f[0].1, EndReason::Reused);
    assert_eq!(f[0].0.outcome(), Outcome::Refused);
    assert_eq!(f[0].0.tcp.syns, 2);
    assert_eq!(f[1].0.outcome(), Outcome::Established);
}

#[test]
fn new_syn_after_fin_starts_new_flow() {
    let f = run(
        FlowConfig::default(),
        &[
            tcp(0, C, SRV, SYN, 1),
            tcp(1, SRV, C, SYN | ACK, 1),
            tcp(2, C, SRV, ACK | FIN, 2),
            tcp(3, SRV, C, ACK | FIN, 2),
            tcp(4, C, SRV, SYN, 99),
        ],
    );
    assert_eq!(f.len(), 2);
    assert_eq!(f[1].0.outcome(), Outcome::Unanswered);
}

#[test]
fn icmp_blocked_syn() {
    let u = IcmpUnreachable {
        v6: false,
        code: 13,
        quoted: FiveTuple {
            proto: Proto::Tcp,
            src: ep(C),
            dst: ep(SRV),
        },
    };
    let mut icmp = tcp(S / 10, "10.0.0.1:0", "10.0.0.5:0", 0, 0);
    icmp.proto = Proto::Icmp;
    icmp.unreachable = Some(u);
    let f = run(FlowConfig::default(), &[tcp(0, C, SRV, SYN, 1), icmp]);
    assert_eq!(f.len(), 1);
    let f = &f[0].0;
    assert_eq!(f.outcome(), Outcome::IcmpUnreachable);
    let i = f.icmp.unwrap();
    assert!(i.is_admin_prohibited());
    assert_eq!(i.reporter.to_string(), "10.0.0.1");
    assert_eq!(
        f.packets(),
        1,
        "the ICMP error is not one of the flow's packets"
    );
    // ICMP for a flow whose packet was not captured: a flow with no packets.
    let f = run(FlowConfig::default(), &[icmp]);
    assert_eq!(f[0].0.outcome(), Outcome::IcmpUnreachable);
    assert_eq!((f[0].0.client, f[0].0.packets()), (ep(C), 0));
}

#[test]
fn udp_client_and_outcomes() {
    // The server answers first in the capture: the catalogue port decides who the client is.
    let f = run(
        FlowConfig::default(),
        &[udp(0, "10.0.0.53:53", "10.0.0.5:5353")],
    );
    assert_eq!(f[0].0.client, ep("10.0.0.5:5353"));
    assert_eq!(f[0].0.outcome(), Outcome::OneWay);
    let f = run(
        FlowConfig::default(),
        &[
            udp(0, "10.0.0.5:5353", "10.0.0.53:53"),
            udp(1, "10.0.0.53:53", "10.0.0.5:5353"),
        ],
    );
    assert_eq!(f[0].0.outcome(), Outcome::Established);
}

#[test]
fn midstream_one_side() {
    let f = run(
        FlowConfig::default(),
        &[tcp(0, SRV, C, ACK | PSH, 5), tcp(1, SRV, C, ACK | PSH, 6)],
    );
    let f = &f[0].0;
    assert!(f.midstream);
    assert_eq!(
        f.client,
        ep(C),
        "the catalogue port is the server even when it talks first"
    );
    assert_eq!(f.outcome(), Outcome::OneWay);
    // A one-sided capture of a working session: SYN then ACKed data, no reply seen.
    let f = run(
        FlowConfig::default(),
        &[tcp(0, C, SRV, SYN, 5), tcp(1, C, SRV, ACK | PSH, 6)],
    );
    assert_eq!(f[0].0.outcome(), Outcome::OneWay);
}

#[test]
fn idle_expiry_uses_capture_time() {
    let cfg = FlowConfig {
        udp_timeout: 10 * S,
        ..FlowConfig::default()
    };
    let f = run(
        cfg,
        &[
            udp(0, C, "10.0.0.53:53"),
            udp(60 * S, "10.0.0.7:1", "10.0.0.8:2"),
            udp(61 * S, "10.0.0.7:1", "10.0.0.8:2"),
        ],
    );
    // Idle 60 s > 10 s: expired at the sweep the second packet past the sweep time runs.
    assert_eq!(f.len(), 2);
    assert_eq!(f[0].1, EndReason::Expired);
    assert_eq!(f[1].1, EndReason::Flushed);
}

#[test]
fn eviction_keeps_counts() {
    let cfg = FlowConfig {
        max_flows: 16,
        ..FlowConfig::default()
    };
    let packets: Vec<Packet<'static>> = (0..100u16)
        .map(|i| {
            let mut p = udp(Nanos::from(i), C, "10.0.0.53:53");
            p.src.port = 1000 + i;
            p
        })
        .collect();
    let mut t = FlowTable::new(cfg);
    let mut n = 0;
    let mut packets_seen = 0;
    let mut ended = |f: Flow, _| {
        n += 1;
        packets_seen += f.packets();
    };
    for p in &packets {
        t.packet(p, is_server, &mut ended);
        assert!(t.len() <= 16);
    }
    let evicted = t.evicted;
    t.flush(&mut ended);
    assert_eq!((n, packets_seen), (100, 100));
    assert!(evicted >= 84, "{evicted}");
}

#[test]
fn one_bogus_timestamp_does_not_expire_the_table() {
    // pop-ssl.pcapng: the SYN-ACK is stamped 48 years after the SYN, the ACK is back in time.
    let year = 365 * 24 * 3600 * S;
    let f = run(
        FlowConfig::default(),
        &[
            tcp(0, C, SRV, SYN, 1),
            tcp(48 * year, SRV, C, SYN | ACK, 1),
            tcp(S / 1000, C, SRV, ACK, 2),
        ],
    );
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].0.outcome(), Outcome::Established);
}
