//! Flow table tests: client/server, outcomes, SYN retransmissions, reuse, expiry, eviction.

use super::*;
use crate::packet::tcp_flags::{ACK, FIN, PSH, RST, SYN};
use crate::packet::{FiveTuple, IcmpUnreachable, IcmpVersion};
use std::net::IpAddr;

const S: Nanos = 1_000_000_000;

use crate::packet::testkit::ep;

fn tcp(ts: Nanos, src: &str, dst: &str, flags: u8, seq: u32) -> Packet<'static> {
    crate::packet::testkit::tcp(ts, src, dst, flags, seq, b"")
}

fn udp(ts: Nanos, src: &str, dst: &str) -> Packet<'static> {
    Packet {
        proto: Proto::Udp,
        ..tcp(ts, src, dst, 0, 0)
    }
}

/// An ICMPv4 destination-unreachable from `src` to `dst` quoting `u`'s packet (an IPv4 header
/// and the first 8 bytes of its transport header), as the decoder gives it.
fn unreachable(ts: Nanos, src: &str, dst: &str, u: IcmpUnreachable) -> Packet<'static> {
    let (IpAddr::V4(a), IpAddr::V4(b)) = (u.quoted.src.ip, u.quoted.dst.ip) else {
        panic!("IPv4 quotes only");
    };
    let number = match u.quoted.proto {
        Proto::Tcp => 6,
        Proto::Udp => 17,
        p => panic!("{p:?}"),
    };
    let mut quote = vec![0x45, 0, 0, 40, 0, 0, 0, 0, 64, number, 0, 0];
    quote.extend(a.octets());
    quote.extend(b.octets());
    quote.extend(u.quoted.src.port.to_be_bytes());
    quote.extend(u.quoted.dst.port.to_be_bytes());
    quote.extend([0; 4]);
    let p = Packet {
        proto: Proto::Icmp,
        payload: Box::leak(quote.into_boxed_slice()),
        unreachable: Some(IcmpVersion::V4),
        icmp: Some((3, u.code)),
        ..udp(ts, src, dst)
    };
    assert_eq!(p.quoted(), Some(u), "the quote reads back");
    p
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
        match &p.quoted() {
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
    assert_eq!(f.tcp.handshake_rtt(), Some(S / 50));
    assert_eq!((f.to_server.packets, f.to_client.packets), (2, 2));
    assert!(!f.tcp.midstream());
}

#[test]
fn handshake_time_to_the_microsecond_and_when_it_completed() {
    let ack_at = 2 * S + 1_234_567;
    let f = run(
        FlowConfig::default(),
        &[
            tcp(0, C, SRV, SYN, 100),
            tcp(S, C, SRV, SYN, 100),
            tcp(2 * S, SRV, C, SYN | ACK, 900),
            tcp(ack_at, C, SRV, ACK, 101),
            // A stray SYN after the handshake moves neither.
            tcp(3 * S, C, SRV, SYN, 100),
        ],
    );
    assert_eq!(f.len(), 1);
    let t = &f[0].0.tcp;
    // From the last SYN before the SYN-ACK, floored to the microsecond.
    assert_eq!(t.handshake_rtt(), Some(S + 1_234_000));
    assert_eq!(t.handshake_done(), Some(ack_at));
    assert_eq!(t.syns, 3);
    // Slower than any SYN retransmission schedule: not a handshake.
    let slow = run(
        FlowConfig::default(),
        &[
            tcp(0, C, SRV, SYN, 100),
            tcp(S, SRV, C, SYN | ACK, 900),
            tcp(state::MAX_HANDSHAKE_RTT + 1, C, SRV, ACK, 101),
        ],
    );
    assert_eq!(slow[0].0.tcp.handshake_rtt(), None);
    assert_eq!(slow[0].0.tcp.handshake_done(), None);
    assert_eq!(slow[0].0.outcome(), Outcome::Established);
}

#[test]
fn refused_only_when_the_server_sent_nothing_but_rsts() {
    let refused = run(
        FlowConfig::default(),
        &[
            tcp(0, C, SRV, SYN, 7),
            tcp(1, SRV, C, RST | ACK, 0),
            tcp(2, SRV, C, RST | ACK, 0),
        ],
    );
    let t = &refused[0].0.tcp;
    assert!(t.server_rst() && !t.client_rst() && t.only_rsts_back() && t.closed());
    assert_eq!(refused[0].0.outcome(), Outcome::Refused);
    // A RST after something else from the server is not a refusal.
    let reset = run(
        FlowConfig::default(),
        &[
            tcp(0, C, SRV, SYN, 7),
            tcp(1, SRV, C, ACK, 0),
            tcp(2, SRV, C, RST | ACK, 0),
        ],
    );
    assert!(!reset[0].0.tcp.only_rsts_back());
    assert_eq!(reset[0].0.outcome(), Outcome::Established);
    // The server's RST captured before the SYN it answers, on ports that do not tell the server:
    // its sender is taken for the client, then the roles are swapped and the RST is the server's.
    let (client, server) = ("10.0.0.7:40002", "10.0.0.9:5555");
    let early = run(
        FlowConfig::default(),
        &[
            tcp(0, server, client, RST | ACK, 0),
            tcp(1, client, server, SYN, 7),
        ],
    );
    assert_eq!(early.len(), 1);
    let f = &early[0].0;
    assert_eq!((f.client, f.server), (ep(client), ep(server)));
    assert!(f.tcp.server_rst() && !f.tcp.client_rst() && f.tcp.client_syn());
    assert_eq!(f.outcome(), Outcome::Refused);
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
    let icmp = unreachable(S / 10, "10.0.0.1:0", "10.0.0.5:0", u);
    let f = run(FlowConfig::default(), &[tcp(0, C, SRV, SYN, 1), icmp]);
    assert_eq!(f.len(), 1);
    let f = &f[0].0;
    assert_eq!(f.outcome(), Outcome::IcmpUnreachable);
    let i = f.icmp_seen().unwrap();
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
    assert!(f.tcp.midstream());
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

/// A segment with an acknowledgement, window and payload.
fn seg(
    ts: Nanos,
    src: &str,
    dst: &str,
    flags: u8,
    seq: u32,
    ack: u32,
    data: &'static [u8],
) -> Packet<'static> {
    Packet {
        ack,
        window: 8760,
        payload: data,
        ..tcp(ts, src, dst, flags, seq)
    }
}

const MS: Nanos = 1_000_000;

/// Handshake C(isn 100) ↔ SRV(isn 900) at 0..2 ms.
fn handshake() -> Vec<Packet<'static>> {
    vec![
        tcp(0, C, SRV, SYN, 100),
        seg(MS, SRV, C, SYN | ACK, 900, 101, b""),
        seg(2 * MS, C, SRV, ACK, 101, 901, b""),
    ]
}

fn health_of(packets: &[Packet<'_>]) -> TcpHealth {
    let f = run(FlowConfig::default(), packets);
    assert_eq!(f.len(), 1);
    f[0].0.tcp.health
}

#[test]
fn clean_session_has_no_tcp_trouble() {
    let mut p = handshake();
    p.push(seg(10 * MS, SRV, C, ACK | PSH, 901, 101, b"+OK ready\r\n"));
    p.push(seg(20 * MS, C, SRV, ACK | PSH, 101, 912, b"QUIT\r\n"));
    p.push(seg(30 * MS, SRV, C, ACK | FIN, 912, 107, b""));
    p.push(seg(31 * MS, C, SRV, ACK | FIN, 107, 913, b""));
    p.push(seg(32 * MS, SRV, C, ACK, 913, 108, b""));
    let h = health_of(&p);
    assert!(!h.troubled(), "{h:?}");
    assert_eq!(h.longest_silence(), 10 * MS);
}

#[test]
fn retransmissions_reordering_dup_acks_zero_window() {
    let mut p = handshake();
    // Server sends 3 segments of 4 bytes; the second is seen after the third, within 1 ms.
    p.push(seg(10 * MS, SRV, C, ACK, 901, 101, b"aaaa"));
    p.push(seg(11 * MS, SRV, C, ACK, 909, 101, b"cccc"));
    p.push(seg(11 * MS + MS / 2, SRV, C, ACK, 905, 101, b"bbbb"));
    // The client acknowledges 905 three times (two duplicates), then a zero window.
    p.push(seg(12 * MS, C, SRV, ACK, 101, 905, b""));
    p.push(seg(13 * MS, C, SRV, ACK, 101, 905, b""));
    p.push(seg(14 * MS, C, SRV, ACK, 101, 905, b""));
    // The server sends the first segment again, 200 ms later: a retransmission.
    p.push(seg(214 * MS, SRV, C, ACK, 901, 101, b"aaaa"));
    let mut zero = seg(215 * MS, C, SRV, ACK, 101, 913, b"");
    zero.window = 0;
    p.push(zero);
    // A keep-alive (one byte below the next) is not a retransmission.
    p.push(seg(300 * MS, C, SRV, ACK, 100, 913, b"\0"));
    let h = health_of(&p);
    assert_eq!(
        (h.retransmitted, h.out_of_order, h.dup_acks, h.zero_windows),
        (1, 1, 2, 1),
        "{h:?}"
    );
    assert!(!h.broken());
}

#[test]
fn reset_mid_session_and_stall() {
    let mut p = handshake();
    p.push(seg(10 * MS, SRV, C, ACK | PSH, 901, 101, b"+OK\r\n"));
    // The server's data is not acknowledged for 15 s: a stall; then the client resets.
    p.push(seg(15 * S, SRV, C, ACK | PSH, 901, 101, b"+OK\r\n"));
    p.push(seg(15 * S + MS, C, SRV, RST | ACK, 101, 906, b""));
    let h = health_of(&p);
    assert_eq!(h.reset_mid_session, Some(Side::Client));
    assert!(h.stalled);
    assert_eq!(h.retransmitted, 1);
    assert!(h.longest_silence() >= 14 * S);

    // A refused SYN is not a mid-session reset; a RST after FIN is not either.
    let refused = health_of(&[tcp(0, C, SRV, SYN, 7), tcp(MS, SRV, C, RST | ACK, 0)]);
    assert_eq!(refused.reset_mid_session, None);
    let mut p = handshake();
    p.push(seg(10 * MS, C, SRV, ACK | FIN, 101, 901, b""));
    p.push(seg(11 * MS, SRV, C, RST | ACK, 901, 102, b""));
    assert_eq!(health_of(&p).reset_mid_session, None);
    // A long quiet time with everything acknowledged is no stall.
    let mut p = handshake();
    p.push(seg(60 * S, C, SRV, ACK | PSH, 101, 901, b"NOOP\r\n"));
    let h = health_of(&p);
    assert!(!h.stalled && h.longest_silence() >= 59 * S);
}

#[test]
fn sequence_numbers_wrap() {
    let p = vec![
        tcp(0, C, SRV, SYN, u32::MAX - 2),
        seg(MS, SRV, C, SYN | ACK, 900, u32::MAX - 1, b""),
        seg(2 * MS, C, SRV, ACK | PSH, u32::MAX - 1, 901, b"abcd"),
        seg(3 * MS, C, SRV, ACK | PSH, 2, 901, b"efgh"),
        seg(300 * MS, C, SRV, ACK | PSH, u32::MAX - 1, 901, b"abcd"),
    ];
    let h = health_of(&p);
    assert_eq!((h.retransmitted, h.out_of_order), (1, 0), "{h:?}");
}

#[test]
fn tcp_health_stays_small() {
    // Every flow carries it: a budget, not a hope.
    assert!(
        std::mem::size_of::<TcpHealth>() <= 56,
        "{}",
        std::mem::size_of::<TcpHealth>()
    );
}

/// One step of a random table history for the sweep property test.
#[derive(Clone, Debug)]
enum Op {
    /// A packet `dt` after the previous step (negative: the capture clock went back), between
    /// client `c` and server `s` of a small set (so flows repeat, close and reuse their tuples).
    Packet {
        dt: Nanos,
        udp: bool,
        c: u8,
        s: u8,
        to_server: bool,
        flags: u8,
        seq: u32,
    },
    /// An ICMP unreachable quoting a flow of the set.
    Unreachable { dt: Nanos, c: u8, s: u8 },
    /// A sweep at `now + ahead` (`manual_sweeps`: the shard and live callers sweep at any time,
    /// earlier than a previous sweep too).
    Sweep { ahead: Nanos },
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    let dt = prop_oneof![
        8 => 0..4 * S,
        1 => -20 * S..0,
        1 => 0..200 * S,
    ];
    let flags = prop_oneof![
        Just(SYN),
        Just(SYN | ACK),
        Just(ACK),
        Just(FIN | ACK),
        Just(RST),
        Just(PSH | ACK)
    ];
    prop_oneof![
        10 => (dt.clone(), any::<bool>(), 0..6u8, 0..3u8, any::<bool>(), flags, 0..3u32).prop_map(
            |(dt, udp, c, s, to_server, flags, seq)| Op::Packet { dt, udp, c, s, to_server, flags, seq }
        ),
        1 => (dt, 0..6u8, 0..3u8).prop_map(|(dt, c, s)| Op::Unreachable { dt, c, s }),
        2 => (-30 * S..120 * S).prop_map(|ahead| Op::Sweep { ahead }),
    ]
}

/// Runs `ops` through a table; `full_walk` sweeps by walking the whole table (the reference).
/// Returns, per step, the flows that ended at it (Debug text: `Flow` has no `PartialEq`).
fn history(ops: &[Op], full_walk: bool, max_flows: usize) -> Vec<Vec<String>> {
    let cfg = FlowConfig {
        max_flows,
        tcp_timeout: 60 * S,
        udp_timeout: 25 * S,
        closed_timeout: 7 * S,
    };
    let mut t: FlowTable = FlowTable::new(cfg);
    t.manual_sweeps();
    let mut now: Nanos = 1_000 * S;
    let mut steps = Vec::new();
    for op in ops {
        let mut out = Vec::new();
        let mut ended = |f: Flow, why: EndReason| out.push(format!("{why:?} {f:?}"));
        let ends = |c: u8, s: u8| {
            (
                format!("10.0.0.{c}:{}", 40000 + u16::from(c)),
                format!("10.0.1.{s}:25"),
            )
        };
        match *op {
            Op::Packet {
                dt,
                udp: is_udp,
                c,
                s,
                to_server,
                flags,
                seq,
            } => {
                now = now.saturating_add(dt);
                let (a, b) = ends(c, s);
                let (src, dst) = if to_server { (&a, &b) } else { (&b, &a) };
                let p = if is_udp {
                    udp(now, src, dst)
                } else {
                    tcp(now, src, dst, flags, seq)
                };
                t.packet(&p, is_server, &mut ended);
            }
            Op::Unreachable { dt, c, s } => {
                now = now.saturating_add(dt);
                let (a, b) = ends(c, s);
                let u = IcmpUnreachable {
                    v6: false,
                    code: 3,
                    quoted: FiveTuple {
                        proto: Proto::Tcp,
                        src: ep(&a),
                        dst: ep(&b),
                    },
                };
                let p = unreachable(now, "192.0.2.1:0", &a, u);
                t.icmp_unreachable(&p, &u, &mut ended);
            }
            Op::Sweep { ahead } => {
                if full_walk {
                    t.sweep_full_walk(now.saturating_add(ahead), &mut ended);
                } else {
                    t.sweep(now.saturating_add(ahead), &mut ended);
                }
            }
        }
        if !full_walk {
            // The invariant itself (deadline.rs): every open flow is registered by its deadline.
            for (i, f) in t.slab.iter().enumerate() {
                if let Some(f) = f {
                    assert!(
                        t.deadlines.has_by(i as u32, cfg.deadline(f)),
                        "slot {i} unregistered: {f:?}"
                    );
                }
            }
            // Entries stay bounded: a few per open flow.
            assert!(
                t.deadlines.len() <= 4 * t.slab.len() + 4,
                "{} entries",
                t.deadlines.len()
            );
        }
        steps.push(out);
    }
    let mut out = Vec::new();
    t.flush(&mut |f: Flow, why: EndReason| out.push(format!("{why:?} {f:?}")));
    steps.push(out);
    steps
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(512))]
    /// The deadline queue's sweep removes exactly the flows a walk of the whole table removes, in
    /// the same order, at every sweep (and evictions, reuses and the flush agree too).
    #[test]
    fn wheel_sweep_matches_full_walk(ops in proptest::collection::vec(op(), 1..300), small in proptest::bool::ANY) {
        let max_flows = if small { 5 } else { 1000 };
        let reference = history(&ops, true, max_flows);
        let wheel = history(&ops, false, max_flows);
        proptest::prop_assert_eq!(reference, wheel);
    }
}

/// The sweep rule driven by packets alone (`maybe_sweep`), over a long quiet gap and a clock
/// step back: the same flows expire at the same packets as with the full walk.
#[test]
fn wheel_sweep_matches_full_walk_through_maybe_sweep() {
    let cfg = FlowConfig::default();
    let mut a: FlowTable = FlowTable::new(cfg);
    let mut b: FlowTable = FlowTable::new(cfg);
    b.manual_sweeps();
    let mut b_next = Nanos::MIN;
    let mut b_armed = None;
    let mut ea = Vec::new();
    let mut eb = Vec::new();
    let mut ts = 0;
    for k in 0..20_000u32 {
        ts += match k % 997 {
            0 => 700 * S,
            500 => -50 * S,
            _ => S / 10,
        };
        let c = format!("10.0.{}.{}:{}", k % 7, k % 251, 1024 + k % 300);
        let flags = match k % 5 {
            0 => SYN,
            1 => FIN | ACK,
            2 => RST,
            _ => ACK,
        };
        let p = if k % 3 == 0 {
            udp(ts, &c, "10.9.9.9:53")
        } else {
            tcp(ts, &c, SRV, flags, k % 4)
        };
        a.packet(&p, is_server, &mut |f: Flow, why| {
            ea.push(format!("{why:?} {f:?}"))
        });
        // `maybe_sweep`'s rule, run by hand for the reference table.
        if b_next == Nanos::MIN {
            b_next = ts + SWEEP_EVERY;
        } else if ts < b_next {
            b_armed = None;
        } else if let Some(first) = b_armed {
            let now = Nanos::min(ts, first);
            b.sweep_full_walk(now, &mut |f: Flow, why| eb.push(format!("{why:?} {f:?}")));
            b_armed = None;
            b_next = now + SWEEP_EVERY;
        } else {
            b_armed = Some(ts);
        }
        b.packet(&p, is_server, &mut |f: Flow, why| {
            eb.push(format!("{why:?} {f:?}"))
        });
        assert_eq!(ea, eb, "packet {k}");
    }
    assert!(a.expired > 0 && a.expired == b.expired);
}

/// The order flows leave the table in is the full sort by (first time, protocol, client,
/// server), though `oldest_first` reads each flow once and compares keys only within a first
/// time: many flows share one here, some slots are vacant, and the slots come in scrambled.
#[test]
fn oldest_first_is_the_full_key_order() {
    let mut slab: Vec<Option<Flow>> = Vec::new();
    for i in 0..600u32 {
        let ts = Nanos::from(i % 7) * S;
        let proto = if i % 3 == 0 { Proto::Udp } else { Proto::Tcp };
        let client = ep(&format!("10.0.{}.{}:{}", i % 5, i % 11, 1000 + i % 13));
        let server = ep(&format!("10.1.0.{}:{}", i % 4, 25 + i));
        slab.push((i % 10 != 0).then(|| blank_flow(proto, client, server, ts)));
    }
    let mut slots: Vec<u32> = (0..600u32).map(|i| (i * 347) % 600).collect();
    let mut want: Vec<u32> = slots
        .iter()
        .copied()
        .filter(|&i| slab[i as usize].is_some())
        .collect();
    want.sort_by_key(|&i| {
        let f = slab[i as usize].as_ref().unwrap();
        (f.first_ts, f.proto, f.client, f.server)
    });
    oldest_first(&slab, &mut slots, &mut Vec::new());
    assert_eq!(slots.len(), 540, "the vacant slots are dropped");
    assert_eq!(slots, want);
}

/// The final flush ends flows in the full key order, whether it packs each flow's first time
/// and slot in one word (a capture of a few hours) or not (first times too far apart).
#[test]
fn the_flush_ends_flows_in_the_full_key_order_packed_or_not() {
    const HOUR: Nanos = 3600 * S;
    for late in [0, 10_000 * HOUR] {
        let mut packets = Vec::new();
        for i in 0..300u32 {
            let ts = Nanos::from(i % 5) * S + if i == 150 { late } else { 0 };
            let client = format!("10.0.{}.{}:{}", i % 5, i % 11, 1000 + i % 13);
            let server = format!("10.1.0.{}:{}", i % 4, 2000 + i);
            packets.push(udp(ts, &client, &server));
        }
        packets.sort_by_key(|p| p.ts);
        let cfg = FlowConfig {
            udp_timeout: 100_000 * HOUR,
            ..FlowConfig::default()
        };
        let ended = run(cfg, &packets);
        assert_eq!(ended.len(), 300);
        assert!(ended.iter().all(|(_, why)| *why == EndReason::Flushed));
        let got: Vec<_> = ended
            .iter()
            .map(|(f, _)| (f.first_ts, f.proto, f.client, f.server))
            .collect();
        let mut want = got.clone();
        want.sort();
        assert_eq!(got, want, "late {late}");
    }
    // First times 2^50 ns apart leave 14 bits for slots: too few for a slab of 2^14 slots.
    let flow = |port: u16, ts: Nanos| {
        let client = ep(&format!("10.0.0.1:{port}"));
        Some(blank_flow(Proto::Udp, client, ep("10.0.0.2:2"), ts))
    };
    let mut slab: Vec<Option<Flow>> = (0..1u32 << 14).map(|_| None).collect();
    slab[0] = flow(1, 0);
    slab[1] = flow(3, 1 << 49);
    assert!(packed_order(&slab, 2).is_some());
    slab[1] = flow(3, 1 << 50);
    assert!(packed_order(&slab, 2).is_none());
}

/// A flow hash computed ahead of a packet ([`FlowTable::prefetch_packet`]) finds the packet's
/// own flow, in either direction, the same flow the table finds by hashing the packet itself.
#[test]
fn hashes_computed_ahead_find_their_own_flow() {
    let mut t: FlowTable = FlowTable::new(FlowConfig::default());
    let mut ended = |_: Flow, _: EndReason| {};
    let a = tcp(S, "10.0.0.1:1025", "10.0.0.2:25", SYN, 1);
    let b = tcp(S, "10.0.0.3:1026", "10.0.0.2:25", SYN, 1);
    // The hash of the reply, in the other direction: the same flow.
    t.packet(&a, is_server, &mut ended);
    let reply = tcp(S + 1, "10.0.0.2:25", "10.0.0.1:1025", SYN | ACK, 9);
    let h = t.prefetch_packet(&reply);
    assert!(h.is_some());
    assert_eq!(h, t.prefetch_packet(&a), "both directions hash alike");
    let (touch, f) = t.packet_hashed(&reply, h, is_server, &mut ended);
    assert_eq!(touch, Touch::Existing);
    assert!(f.tcp.synack());
    // A new flow opened with its hash is found again by hashing, and the other way round.
    let hb = t.prefetch_packet(&b);
    assert_ne!(hb, h);
    let (touch, f) = t.packet_hashed(&b, hb, is_server, &mut ended);
    assert_eq!((touch, f.client), (Touch::New, b.src));
    assert_eq!(t.len(), 2);
    let ack = tcp(S + 2, "10.0.0.3:1026", "10.0.0.2:25", ACK, 2);
    let (touch, f) = t.packet(&ack, is_server, &mut ended);
    assert_eq!((touch, f.client, f.packets()), (Touch::Existing, b.src, 2));
    let ack = tcp(S + 3, "10.0.0.1:1025", "10.0.0.2:25", ACK, 2);
    let ha = t.prefetch_packet(&ack);
    let (touch, f) = t.packet_hashed(&ack, ha, is_server, &mut ended);
    assert_eq!((touch, f.client, f.packets()), (Touch::Existing, a.src, 3));
    assert_eq!(t.len(), 2);
    // Packets the table finds by other addresses get no hash.
    let fragment = Packet {
        fragment: Some(crate::packet::Fragment {
            id: 7,
            offset: 0,
            more: true,
        }),
        ..a
    };
    assert_eq!(t.prefetch_packet(&fragment), None);
}

/// A hash handed in with another packet would misplace the flow; debug builds (the tests) catch
/// a caller that does it.
#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "only with its own packet")]
fn a_hash_handed_in_with_another_packet_is_caught() {
    let mut t: FlowTable = FlowTable::new(FlowConfig::default());
    let a = tcp(S, "10.0.0.1:1025", "10.0.0.2:25", SYN, 1);
    let b = tcp(S, "10.0.0.3:1026", "10.0.0.2:25", SYN, 1);
    let h = t.prefetch_packet(&a);
    t.packet_hashed(&b, h, is_server, &mut |_, _| {});
}
