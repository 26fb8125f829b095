//! Fuzzes the mail-flow trackers through the whole pipeline: the input is a list of segments,
//! each a 1-byte selector then a 1-byte length and that many payload bytes. The selector's low
//! bit picks the direction, the next two the connection (SMTP tcp/25, DNS udp/53, DNS tcp/53,
//! Global Catalog tcp/3268); each TCP connection opens with a handshake and every report is
//! rendered at the end.
#![no_main]

use std::net::SocketAddr;

use exflow::analyze::{Analyzer, Config};
use exflow::output::Report;
use exflow::packet::{tcp_flags, RawPacket};
use exflow::synth::frame::{tcp_frame, udp_frame, FrameOpts, TcpSegment};
use libfuzzer_sys::fuzz_target;

const SERVERS: [(&str, bool); 4] = [
    ("10.0.0.2:25", true),
    ("10.0.0.2:53", false),
    ("10.0.0.2:53", true),
    ("10.0.0.2:3268", true),
];

fuzz_target!(|data: &[u8]| {
    let opts = FrameOpts::default();
    let client: SocketAddr = "10.0.0.1:40000".parse().unwrap();
    let mut a = Analyzer::new(Config {
        keep_flows: true,
        ..Config::default()
    });
    a.begin_file("fuzz");
    let mut seq = [[1000u32, 9000u32]; 4];
    let mut ts = 1_000_000_000i64;
    let feed = |a: &mut Analyzer, frame: Vec<u8>, ts: i64| {
        a.packet(&RawPacket {
            ts,
            link_type: 1,
            data: &frame,
            wire_len: frame.len() as u32,
        });
    };
    for (i, (server, tcp)) in SERVERS.iter().enumerate() {
        if *tcp {
            let server: SocketAddr = server.parse().unwrap();
            let syn = |flags, seq: u32, ack| TcpSegment { seq, ack, flags, window: 8192, mss: None };
            feed(&mut a, tcp_frame(&opts, 1, client, server, &syn(tcp_flags::SYN, seq[i][0] - 1, 0), b""), ts);
            feed(&mut a, tcp_frame(&opts, 1, server, client, &syn(tcp_flags::SYN | tcp_flags::ACK, seq[i][1] - 1, seq[i][0]), b""), ts);
        }
    }
    let mut rest = data;
    while let Some((&[sel, len], tail)) = rest.split_first_chunk::<2>() {
        let len = usize::from(len).min(tail.len());
        let (payload, next) = tail.split_at(len);
        rest = next;
        let to_client = usize::from(sel & 1);
        let k = usize::from((sel >> 1) & 3);
        let (server, tcp) = SERVERS[k];
        let server: SocketAddr = server.parse().unwrap();
        let (src, dst) = if to_client == 1 { (server, client) } else { (client, server) };
        ts += 1_000_000;
        let frame = if tcp {
            let s = &mut seq[k][to_client];
            let seg = TcpSegment {
                seq: *s,
                ack: 1,
                flags: tcp_flags::ACK | tcp_flags::PSH | if sel & 0x80 != 0 { tcp_flags::FIN } else { 0 },
                window: 8192,
                mss: None,
            };
            *s = s.wrapping_add(payload.len() as u32);
            tcp_frame(&opts, 1, src, dst, &seg, payload)
        } else {
            udp_frame(&opts, 1, src, dst, payload)
        };
        feed(&mut a, frame, ts);
    }
    let report = Report::new(&a.finish());
    let _ = serde_json::to_string(&report);
    let mut out = Vec::new();
    let _ = exflow::output::write_table(&mut out, &report, Default::default());
});
