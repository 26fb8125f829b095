//! Generates a large, realistic capture for benchmarks: Exchange 2000 services from the
//! catalogue mixed with a large share of unclassified traffic, hundreds of thousands of TCP and
//! UDP flows open at the same time, handshakes, request/response data, closes, resets, and a few
//! percent of unanswered, refused and ICMP-blocked attempts; RVP subscriptions with their
//! callback connections and 1731 audio sessions with RTP, so the follow-up logic is exercised.
//!
//! Frames are generated lazily: every open flow is a small state machine that knows the time of
//! its next packet, and a heap picks the earliest; memory stays proportional to `--flows`, the
//! file is written as it goes. The same `--seed` always gives the same file.
//!
//! `cargo run --release --example gen_bench -- --packets 5000000 --flows 300000 --out bench.pcap`

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::BufWriter;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use exflow::packet::{tcp_flags, Nanos};
use exflow::synth::frame::{icmp_unreachable_frame, udp_frame};
use exflow::synth::{
    app, Dir, FrameOpts, PcapWriter, SplitMix64, TcpConn, TsPrecision, Unreachable, MICRO, MILLI,
    SECOND,
};

#[derive(Parser, Debug)]
#[command(about = "Write a large synthetic Exchange 2000 capture for benchmarks")]
struct Args {
    /// Number of packets to write.
    #[arg(long, default_value_t = 5_000_000)]
    packets: u64,
    /// Flows open at the same time (the capture starts with this many, half of them mid-stream).
    #[arg(long, default_value_t = 300_000)]
    flows: u32,
    /// The flows open at the start send their first packet within this many seconds.
    #[arg(long, default_value_t = 60)]
    ramp: u64,
    /// Mean idle time between two exchanges of a flow, in seconds (exponentially distributed).
    /// Long idle times keep flows open; the capture ends when the packet count is reached.
    #[arg(long, default_value_t = 300)]
    idle: u64,
    /// Output file; `-` writes to stdout.
    #[arg(long, default_value = "bench.pcap")]
    out: PathBuf,
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// 2003-01-14 08:00:00 UTC.
const T0: Nanos = 1_042_531_200 * SECOND;
const MSS: u32 = 1460;

/// How a service's conversations look.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Request/response over TCP, client speaks first.
    Tcp,
    /// Request/response over TCP, server greets first (SMTP, POP3, IMAP, NNTP, IRC).
    TcpBanner,
    /// SMTP with a real command dialogue.
    Smtp,
    /// Whole TPKT packets (RFC 1006) of filler: X.400, T.120.
    Tpkt,
    /// H.225 call signalling: Q.931 SETUP / CONNECT in TPKT, without the H.323 user-user
    /// element (so no follow-up is announced).
    Q931,
    /// RVP SUBSCRIBE on port 80, then the server's callback connection.
    Rvp,
    /// 1731 call control, then RTP between the same hosts.
    Audio,
    /// DNS over UDP.
    Dns,
    /// Other UDP request/response.
    Udp,
    /// UDP in one direction only (syslog and the like).
    UdpOneWay,
}

/// Which hosts answer a service.
#[derive(Clone, Copy)]
enum Pool {
    Exchange,
    Dc,
    Internet,
    Conf,
    Any,
}

struct Service {
    port: u16,
    kind: Kind,
    weight: u32,
    pool: Pool,
    exchanges: (u64, u64),
    req: (u64, u64),
    resp: (u64, u64),
    /// Start of every request and of every response (the rest is filler).
    prefix: (&'static [u8], &'static [u8]),
}

#[allow(clippy::too_many_arguments)]
const fn svc(
    port: u16,
    kind: Kind,
    weight: u32,
    pool: Pool,
    exchanges: (u64, u64),
    req: (u64, u64),
    resp: (u64, u64),
    prefix: (&'static [u8], &'static [u8]),
) -> Service {
    Service {
        port,
        kind,
        weight,
        pool,
        exchanges,
        req,
        resp,
        prefix,
    }
}

/// The mix, weights in flows per thousand. Port 0 means "a random non-catalogue port".
#[rustfmt::skip]
const SERVICES: &[Service] = &[
    svc(25, Kind::Smtp, 60, Pool::Exchange, (1, 1), (0, 0), (0, 0), (b"", b"")),
    svc(389, Kind::Tcp, 80, Pool::Dc, (1, 6), (60, 300), (20, 4000), (b"\x30\x84", b"\x30\x84")),
    svc(3268, Kind::Tcp, 40, Pool::Dc, (1, 4), (60, 300), (20, 3000), (b"\x30\x84", b"\x30\x84")),
    svc(636, Kind::Tcp, 10, Pool::Dc, (1, 4), (100, 400), (100, 3000), (b"\x17\x03\x01", b"\x17\x03\x01")),
    svc(80, Kind::Tcp, 70, Pool::Exchange, (1, 8), (250, 700), (200, 30000), (OWA_GET, OWA_OK)),
    svc(80, Kind::Rvp, 10, Pool::Exchange, (1, 1), (0, 0), (131, 131), (b"", b"")),
    svc(443, Kind::Tcp, 100, Pool::Any, (1, 8), (100, 900), (100, 40000), (b"\x17\x03\x01", b"\x17\x03\x01")),
    svc(143, Kind::TcpBanner, 20, Pool::Exchange, (2, 10), (20, 80), (40, 8000), (b"a001 FETCH ", b"* 1 FETCH (BODY[] ")),
    svc(110, Kind::TcpBanner, 20, Pool::Exchange, (2, 8), (6, 20), (20, 12000), (b"RETR ", b"+OK ")),
    svc(119, Kind::TcpBanner, 5, Pool::Exchange, (2, 6), (10, 40), (40, 6000), (b"ARTICLE ", b"")),
    svc(691, Kind::Tcp, 5, Pool::Exchange, (1, 3), (200, 2000), (20, 200), (b"X-LSA-2 ", b"")),
    svc(102, Kind::Tpkt, 10, Pool::Internet, (1, 4), (100, 6000), (20, 200), (b"", b"")),
    svc(135, Kind::Tcp, 40, Pool::Exchange, (1, 2), (72, 200), (60, 300), (b"\x05\x00\x0b\x03\x10\x00\x00\x00", b"\x05\x00\x0c\x03\x10\x00\x00\x00")),
    svc(1720, Kind::Q931, 10, Pool::Conf, (1, 3), (20, 80), (20, 80), (b"", b"")),
    svc(1731, Kind::Audio, 5, Pool::Conf, (2, 4), (30, 120), (20, 80), (b"\x00\x00\x00", b"")),
    svc(1503, Kind::Tpkt, 2, Pool::Conf, (1, 4), (40, 2000), (40, 2000), (b"", b"")),
    svc(6667, Kind::TcpBanner, 2, Pool::Exchange, (2, 10), (20, 200), (20, 400), (b"PRIVMSG #exchange :", b"")),
    svc(53, Kind::Dns, 120, Pool::Dc, (1, 2), (0, 0), (0, 0), (b"", b"")),
    svc(0, Kind::Tcp, 200, Pool::Any, (1, 10), (40, 1500), (40, 20000), (b"", b"")),
    svc(137, Kind::Udp, 40, Pool::Dc, (1, 2), (50, 50), (62, 62), (b"", b"")),
    svc(123, Kind::Udp, 20, Pool::Internet, (1, 1), (48, 48), (48, 48), (b"\x23", b"\x24")),
    svc(514, Kind::UdpOneWay, 30, Pool::Any, (1, 20), (60, 400), (0, 0), (b"<134>", b"")),
    svc(0, Kind::Udp, 80, Pool::Any, (1, 6), (40, 1200), (40, 1200), (b"", b"")),
];

const OWA_GET: &[u8] = b"GET /exchange/user/Inbox/?Cmd=contents HTTP/1.1\r\nHost: exch01\r\n\
    User-Agent: Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.0)\r\n";
const OWA_OK: &[u8] =
    b"HTTP/1.1 200 OK\r\nServer: Microsoft-IIS/5.0\r\nContent-Type: text/html\r\n\r\n";

/// Ports that must not be drawn as "unclassified".
const CATALOGUE_PORTS: &[u16] = &[
    25, 53, 80, 102, 110, 119, 135, 143, 379, 389, 390, 443, 465, 522, 563, 636, 691, 993, 994,
    995, 1503, 1719, 1720, 1731, 3268, 3269, 6667, 7000,
];

/// What becomes of a TCP connection attempt, or whether a UDP flow is answered.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Plan {
    Established,
    Midstream,
    Unanswered,
    Refused,
    IcmpBlocked,
    UdpTwoWay,
    UdpOneWay,
    Rtp,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Syn,
    SynAck,
    HsAck,
    /// A segment of the current message in this direction.
    Data(Dir),
    /// The receiver's pure ACK of data sent in this direction.
    AckOf(Dir),
    Fin1,
    Fin2,
    FinAck,
    Rst,
    Refuse,
    Icmp,
    UdpReq,
    UdpResp,
    Done,
}

/// One flow in progress.
struct Flow {
    conn: TcpConn,
    svc: u8,
    plan: Plan,
    phase: Phase,
    next_ts: Nanos,
    rtt: Nanos,
    exchanges_left: u32,
    exchange: u32,
    /// Length of the current message and how much of it is still to send.
    msg_len: u32,
    msg_left: u32,
    /// Segments of the current message sent so far.
    segs: u32,
    retries: u8,
    close_rst: bool,
    /// Recycled into a new flow when done (companions are not).
    primary: bool,
    /// Has sent a packet.
    seen: bool,
    /// An RVP server's callback connection (it sends NOTIFY).
    callback: bool,
    /// RVP: the callback port announced in the SUBSCRIBE. RTP: the sequence number.
    aux: u16,
    /// Scripted text of the current message (SMTP, RVP), or the SYN an ICMP error will quote.
    buf: Vec<u8>,
}

impl Flow {
    fn then(&mut self, phase: Phase, at: Nanos) {
        self.phase = phase;
        self.next_ts = at;
    }
}

/// All generator state outside the flows.
struct Gen {
    rng: SplitMix64,
    opts: FrameOpts,
    ip_id: u16,
    filler: Vec<u8>,
    scratch: Vec<u8>,
    weights: Vec<u32>,
    /// Mean idle time between two exchanges of a flow.
    mean_idle: Nanos,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let mut g = Gen::new(&args);
    let mut flows: Vec<Flow> = Vec::with_capacity(args.flows as usize + 1024);
    let mut free: Vec<u32> = Vec::new();
    let mut heap = BinaryHeap::with_capacity(flows.capacity());
    let mut spawned: Vec<Flow> = Vec::new();

    for _ in 0..args.flows {
        // Half the flows were open before the capture started and are seen mid-stream; all
        // start somewhere in the first stretch.
        let start = T0 + g.rng.below(args.ramp.max(1) * SECOND as u64) as Nanos;
        let midstream = g.rng.chance(0.5);
        let f = g.new_flow(start, midstream, &mut spawned);
        heap.push(Reverse((f.next_ts, flows.len() as u32)));
        flows.push(f);
    }
    // `-` streams to stdout, e.g. into `exflow analyze -` for captures larger than the disk.
    let sink: Box<dyn std::io::Write> = if args.out.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(File::create(&args.out)?)
    };
    let out = BufWriter::with_capacity(1 << 20, sink);
    let mut w = PcapWriter::new(out, TsPrecision::Micro)?;
    let (mut bytes, mut last_ts) = (0u64, T0);
    // Flows that have sent a packet and not finished yet, now and at most.
    let (mut open, mut most_open) = (0usize, 0usize);
    while w.packets() < args.packets {
        // Companions start after the flow that spawned them, so never before `last_ts`.
        for c in spawned.drain(..) {
            let at = match free.pop() {
                Some(i) => {
                    flows[i as usize] = c;
                    i
                }
                None => {
                    flows.push(c);
                    flows.len() as u32 - 1
                }
            };
            heap.push(Reverse((flows[at as usize].next_ts, at)));
        }
        let Some(Reverse((ts, idx))) = heap.pop() else {
            break;
        };
        let flow = &mut flows[idx as usize];
        if let Some(frame) = g.step(flow, ts) {
            bytes += frame.len() as u64;
            w.write_packet(ts, &frame)?;
            last_ts = ts;
            if !flow.seen {
                flow.seen = true;
                open += 1;
                most_open = most_open.max(open);
            }
        }
        if flow.phase == Phase::Done && flow.seen {
            open -= 1;
        }
        if flow.phase != Phase::Done {
            heap.push(Reverse((flow.next_ts, idx)));
        } else if flow.primary {
            // The slot's next client connects soon, so most slots hold an open flow.
            let start = ts + g.idle() / 8;
            *flow = g.new_flow(start, false, &mut spawned);
            heap.push(Reverse((flow.next_ts, idx)));
        } else {
            free.push(idx);
        }
    }
    let packets = w.packets();
    w.into_inner()?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "wrote {packets} packets ({:.1} MiB, {:.0} s of capture, up to {most_open} flows open at \
         once, {open} at the end) to {} in {secs:.1} s ({:.2} Mpkt/s)",
        bytes as f64 / (1 << 20) as f64,
        (last_ts - T0) as f64 / 1e9,
        args.out.display(),
        packets as f64 / secs / 1e6
    );
    Ok(())
}

impl Gen {
    fn new(args: &Args) -> Self {
        let mut rng = SplitMix64::new(args.seed);
        let words: &[&[u8]] = &[
            b"the ",
            b"quarterly ",
            b"report ",
            b"meeting ",
            b"exchange ",
            b"server ",
            b"mailbox ",
            b"store ",
            b"please ",
            b"review ",
            b"attached ",
            b"figures ",
            b"\r\n",
            b"regards ",
        ];
        let mut filler = Vec::with_capacity(1 << 17);
        while filler.len() < 1 << 17 {
            if rng.chance(0.3) {
                filler.extend((0..64).map(|_| rng.next_u32() as u8));
            } else {
                filler.extend_from_slice(rng.pick::<&[u8]>(words));
            }
        }
        Gen {
            rng,
            opts: FrameOpts {
                pad: true,
                ..FrameOpts::default()
            },
            ip_id: 1,
            filler,
            scratch: Vec::with_capacity(2048),
            weights: SERVICES.iter().map(|s| s.weight).collect(),
            mean_idle: args.idle.max(1) as Nanos * SECOND,
        }
    }

    /// Idle time between bursts of a flow: exponentially distributed around the mean.
    fn idle(&mut self) -> Nanos {
        let u = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        (-(1.0 - u).ln() * self.mean_idle as f64) as Nanos + MILLI
    }

    fn uniform(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn client_ip(&mut self, v6: bool) -> IpAddr {
        let n = self.rng.below(1 << 20) as u32;
        if v6 {
            IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                0x10,
                0,
                0,
                0,
                (n >> 16) as u16,
                n as u16,
            ))
        } else {
            IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | n))
        }
    }

    fn server_ip(&mut self, pool: Pool, v6: bool) -> IpAddr {
        let (net, count): (u32, u64) = match pool {
            Pool::Exchange => (0x0ac8_0000, 40),     // 10.200.0.x
            Pool::Dc => (0x0ac9_0000, 20),           // 10.201.0.x
            Pool::Conf => (0x0aca_0000, 5),          // 10.202.0.x
            Pool::Internet => (0xc612_0000, 60_000), // 198.18.0.0/15
            Pool::Any => (0xc612_0000, 120_000),
        };
        let n = net + 1 + self.rng.below(count) as u32;
        if v6 {
            IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                0x20,
                0,
                0,
                0,
                (n >> 16) as u16,
                n as u16,
            ))
        } else {
            IpAddr::V4(Ipv4Addr::from(n))
        }
    }

    fn ephemeral(&mut self) -> u16 {
        self.rng.range(1025, 65_535) as u16
    }

    fn other_port(&mut self) -> u16 {
        loop {
            let p = if self.rng.chance(0.5) {
                *self
                    .rng
                    .pick(&[445, 139, 3389, 1433, 8080, 5900, 21, 22, 23, 5060, 1494])
            } else {
                self.rng.range(1024, 65_535) as u16
            };
            if !CATALOGUE_PORTS.contains(&p) {
                return p;
            }
        }
    }

    /// A new flow of a service drawn from the mix; `midstream` picks it up after its handshake.
    fn new_flow(&mut self, start: Nanos, midstream: bool, spawned: &mut Vec<Flow>) -> Flow {
        let si = self.rng.weighted(&self.weights);
        let s = &SERVICES[si];
        let v6 = self.rng.chance(0.03);
        let port = if s.port == 0 {
            self.other_port()
        } else {
            s.port
        };
        let client = SocketAddr::new(self.client_ip(v6), self.ephemeral());
        let server = SocketAddr::new(self.server_ip(s.pool, v6), port);
        let tcp = !matches!(s.kind, Kind::Dns | Kind::Udp | Kind::UdpOneWay);
        let plan = if !tcp {
            let one_way = s.kind == Kind::UdpOneWay || self.rng.chance(0.03);
            if one_way {
                Plan::UdpOneWay
            } else {
                Plan::UdpTwoWay
            }
        } else if midstream {
            Plan::Midstream
        } else {
            [
                Plan::Established,
                Plan::Unanswered,
                Plan::Refused,
                Plan::IcmpBlocked,
            ][self.rng.weighted(&[910, 40, 30, 20])]
        };
        let rtt = if self.rng.chance(0.7) {
            self.rng.range(200, 2_000) as Nanos * MICRO
        } else {
            self.rng.range(20, 150) as Nanos * MILLI
        };
        let mut f = self.flow(client, server, si as u8, plan, start, rtt, true);
        f.exchanges_left = self.rng.range(s.exchanges.0, s.exchanges.1) as u32;
        if plan == Plan::Midstream && s.kind == Kind::Smtp {
            f.exchange = 5; // in the middle of DATA
        }
        if matches!(plan, Plan::Established | Plan::Midstream) {
            match s.kind {
                Kind::Rvp => self.spawn_rvp_callback(&mut f, spawned),
                Kind::Audio => self.spawn_rtp(&f, spawned),
                _ => {}
            }
        }
        f
    }

    #[allow(clippy::too_many_arguments)]
    fn flow(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
        svc: u8,
        plan: Plan,
        start: Nanos,
        rtt: Nanos,
        primary: bool,
    ) -> Flow {
        let conn = TcpConn::new(client, server, self.rng.next_u32(), self.rng.next_u32())
            .with_opts(self.opts);
        let phase = match plan {
            Plan::Midstream => Phase::Data(Dir::ToServer),
            Plan::UdpTwoWay | Plan::UdpOneWay | Plan::Rtp => Phase::UdpReq,
            _ => Phase::Syn,
        };
        Flow {
            conn,
            svc,
            plan,
            phase,
            next_ts: start,
            rtt,
            exchanges_left: 1,
            exchange: 0,
            msg_len: 0,
            msg_left: 0,
            segs: 0,
            retries: 0,
            close_rst: self.rng.chance(0.05),
            primary,
            seen: false,
            callback: false,
            aux: 0,
            buf: Vec::new(),
        }
    }

    /// The server's connection back to the subscriber, a few seconds after the SUBSCRIBE.
    fn spawn_rvp_callback(&mut self, f: &mut Flow, spawned: &mut Vec<Flow>) {
        let port = self.ephemeral();
        f.aux = port;
        let client = SocketAddr::new(f.conn.server().ip(), self.ephemeral());
        let server = SocketAddr::new(f.conn.client().ip(), port);
        let plan = [
            Plan::Established,
            Plan::Refused,
            Plan::IcmpBlocked,
            Plan::Unanswered,
        ][self.rng.weighted(&[70, 10, 15, 5])];
        let start = f.next_ts + 3 * f.rtt + self.rng.range(50, 5_000) as Nanos * MILLI;
        let mut c = self.flow(client, server, f.svc, plan, start, f.rtt, false);
        c.callback = true;
        spawned.push(c);
    }

    /// RTP both ways between the hosts of a 1731 session, on two high ports.
    fn spawn_rtp(&mut self, f: &Flow, spawned: &mut Vec<Flow>) {
        let client = SocketAddr::new(f.conn.client().ip(), 5004 + 2 * self.rng.below(100) as u16);
        let server = SocketAddr::new(
            f.conn.server().ip(),
            49_152 + 2 * self.rng.below(1000) as u16,
        );
        let start = f.next_ts + 4 * f.rtt + 10 * MILLI;
        let mut c = self.flow(client, server, f.svc, Plan::Rtp, start, 3 * MILLI, false);
        c.exchanges_left = self.rng.range(50, 1500) as u32;
        spawned.push(c);
    }

    /// Builds the packet due at `ts` and moves the flow on (`None` for a finished flow).
    fn step(&mut self, f: &mut Flow, ts: Nanos) -> Option<Vec<u8>> {
        let gap = 60 * MICRO;
        let frame = match f.phase {
            Phase::Syn => {
                let syn = f.conn.syn(ts).data;
                match f.plan {
                    Plan::Unanswered if f.retries < 3 => {
                        f.next_ts = ts + (SECOND << f.retries);
                        f.retries += 1;
                    }
                    Plan::Unanswered => f.phase = Phase::Done,
                    Plan::Refused => f.then(Phase::Refuse, ts + f.rtt),
                    Plan::IcmpBlocked => {
                        f.buf = syn.clone();
                        f.then(Phase::Icmp, ts + f.rtt / 2);
                    }
                    _ => f.then(Phase::SynAck, ts + f.rtt),
                }
                syn
            }
            Phase::SynAck => {
                f.then(Phase::HsAck, ts + gap);
                f.conn.syn_ack(ts).data
            }
            Phase::HsAck => {
                let banner = matches!(SERVICES[f.svc as usize].kind, Kind::TcpBanner | Kind::Smtp);
                if banner {
                    f.then(Phase::Data(Dir::ToClient), ts + f.rtt);
                } else {
                    f.then(Phase::Data(Dir::ToServer), ts + gap);
                }
                f.conn.ack(Dir::ToServer, ts).data
            }
            Phase::Data(dir) => self.data(f, dir, ts),
            Phase::AckOf(dir) => {
                let frame = f.conn.ack(dir.reverse(), ts).data;
                if f.msg_left > 0 {
                    f.then(Phase::Data(dir), ts + gap / 2);
                } else {
                    self.exchange_done(f, ts);
                }
                frame
            }
            Phase::Fin1 => {
                f.then(Phase::Fin2, ts + f.rtt);
                f.conn.fin(Dir::ToServer, ts).data
            }
            Phase::Fin2 => {
                f.then(Phase::FinAck, ts + gap);
                f.conn.fin(Dir::ToClient, ts).data
            }
            Phase::FinAck => {
                f.phase = Phase::Done;
                f.conn.ack(Dir::ToServer, ts).data
            }
            Phase::Rst => {
                f.phase = Phase::Done;
                let dir = if f.exchange & 1 == 0 {
                    Dir::ToServer
                } else {
                    Dir::ToClient
                };
                f.conn.rst(dir, ts).data
            }
            Phase::Refuse => {
                f.phase = Phase::Done;
                f.conn.refuse(ts).data
            }
            Phase::Icmp => {
                f.phase = Phase::Done;
                let router = match f.conn.client().ip() {
                    IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::new(10, 255, 0, 1)),
                    IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 1)),
                };
                let id = self.next_ip_id();
                let quote = std::mem::take(&mut f.buf);
                let why = Unreachable::AdminProhibited;
                icmp_unreachable_frame(&self.opts, id, router, &quote, why)?
            }
            Phase::UdpReq | Phase::UdpResp => self.udp(f, ts),
            Phase::Done => return None,
        };
        Some(frame)
    }

    fn next_ip_id(&mut self) -> u16 {
        self.ip_id = self.ip_id.wrapping_add(1);
        self.ip_id
    }

    /// One segment of the current message in `dir`, starting the message if needed. A request
    /// is answered one RTT later; the receiver acknowledges every second segment of a long
    /// message and the end of a response.
    fn data(&mut self, f: &mut Flow, dir: Dir, ts: Nanos) -> Vec<u8> {
        if f.msg_left == 0 {
            self.start_message(f, dir);
        }
        let chunk = f.msg_left.min(MSS);
        self.fill(f, dir, chunk as usize);
        f.msg_left -= chunk;
        f.segs += 1;
        let last = f.msg_left == 0;
        let flags = if last {
            tcp_flags::PSH | tcp_flags::ACK
        } else {
            tcp_flags::ACK
        };
        let frame = f.conn.segment(dir, ts, flags, &self.scratch).data;
        if !last && f.segs & 1 == 0 {
            f.then(Phase::AckOf(dir), ts + 30 * MICRO);
        } else if !last {
            f.next_ts = ts + 60 * MICRO;
        } else {
            f.buf = Vec::new();
            match dir {
                Dir::ToServer => f.then(Phase::Data(Dir::ToClient), ts + f.rtt),
                Dir::ToClient => f.then(Phase::AckOf(Dir::ToClient), ts + 100 * MICRO),
            }
        }
        frame
    }

    /// Sizes the next message in `dir`; scripted protocols keep its text in `f.buf`.
    fn start_message(&mut self, f: &mut Flow, dir: Dir) {
        let s = &SERVICES[f.svc as usize];
        f.buf = match (s.kind, dir) {
            (Kind::Smtp, _) => smtp_line(f.exchange, dir, self.rng.range(400, 60_000) as usize),
            (Kind::Rvp, Dir::ToServer) if f.callback => rvp_notify(f),
            (Kind::Rvp, Dir::ToServer) => rvp_subscribe(f),
            (Kind::Rvp, Dir::ToClient) if f.callback => {
                b"HTTP/1.1 200 Successful\r\nContent-Length: 0\r\n\r\n".to_vec()
            }
            (Kind::Rvp, Dir::ToClient) => app::rvp_subscribe_ok(7, 14_400),
            (Kind::Tpkt | Kind::Q931, _) => {
                let (lo, hi) = if dir == Dir::ToServer { s.req } else { s.resp };
                let n = self.rng.range(lo, hi) as usize;
                let start = self.rng.below(1 << 16) as usize;
                let body = &self.filler[start..start + n];
                match s.kind {
                    Kind::Tpkt => app::tpkt(body),
                    _ => q931(dir, f.conn.client_isn() as u16, body),
                }
            }
            _ => Vec::new(),
        };
        let len = if f.buf.is_empty() {
            let (lo, hi) = if dir == Dir::ToServer { s.req } else { s.resp };
            // Log-skewed: many small messages, a few large ones.
            let (lo, hi) = (lo.max(1) as f64, hi.max(lo + 1) as f64);
            let u = self.uniform();
            (lo * ((hi / lo).ln() * u * u).exp()) as u32
        } else {
            f.buf.len() as u32
        };
        f.msg_len = len.max(1);
        f.msg_left = f.msg_len;
        f.segs = 0;
    }

    /// Puts the next `len` bytes of the current message into the scratch buffer: scripted text
    /// or the service's request prefix first, then filler.
    fn fill(&mut self, f: &Flow, dir: Dir, len: usize) {
        self.scratch.clear();
        let prefix: &[u8] = match (&f.buf, dir) {
            (b, _) if !b.is_empty() => b,
            (_, Dir::ToServer) => SERVICES[f.svc as usize].prefix.0,
            (_, Dir::ToClient) => SERVICES[f.svc as usize].prefix.1,
        };
        let off = (f.msg_len - f.msg_left) as usize;
        if off < prefix.len() {
            self.scratch
                .extend_from_slice(&prefix[off..prefix.len().min(off + len)]);
        }
        let start = (f.conn.next_seq(dir) as usize) % (self.filler.len() - 2 * MSS as usize);
        let need = len - self.scratch.len();
        self.scratch
            .extend_from_slice(&self.filler[start..start + need]);
    }

    /// After the last ACK of an exchange: the next request after some idle time (SMTP's next
    /// command at once), or the close.
    fn exchange_done(&mut self, f: &mut Flow, ts: Nanos) {
        f.exchange += 1;
        f.exchanges_left = f.exchanges_left.saturating_sub(1);
        let smtp = SERVICES[f.svc as usize].kind == Kind::Smtp;
        if smtp && (f.exchange as usize) < SMTP_REQ.len() {
            f.then(Phase::Data(Dir::ToServer), ts + f.rtt);
        } else if f.exchanges_left > 0 && !smtp {
            let at = ts + self.idle();
            f.then(Phase::Data(Dir::ToServer), at);
        } else {
            let at = ts + self.idle() / 16;
            f.then(if f.close_rst { Phase::Rst } else { Phase::Fin1 }, at);
        }
    }

    /// A datagram of a UDP flow: requests, responses, RTP.
    fn udp(&mut self, f: &mut Flow, ts: Nanos) -> Vec<u8> {
        let dir = if f.phase == Phase::UdpReq {
            Dir::ToServer
        } else {
            Dir::ToClient
        };
        let (src, dst) = match dir {
            Dir::ToServer => (f.conn.client(), f.conn.server()),
            Dir::ToClient => (f.conn.server(), f.conn.client()),
        };
        let payload = match (f.plan, SERVICES[f.svc as usize].kind) {
            (Plan::Rtp, _) => {
                f.aux = f.aux.wrapping_add(1);
                let ssrc = if dir == Dir::ToServer {
                    0x1731_0001
                } else {
                    0x1731_0002
                };
                let ts = u32::from(f.aux) * 160;
                app::rtp(f.aux, ts, ssrc, 0, false, &self.filler[..160])
            }
            (_, Kind::Dns) => dns_message(f, dir),
            _ => {
                self.start_message(f, dir);
                self.fill(f, dir, f.msg_len.min(1472) as usize);
                f.msg_left = 0;
                self.scratch.clone()
            }
        };
        let id = self.next_ip_id();
        let frame = udp_frame(&self.opts, id, src, dst, &payload);
        if dir == Dir::ToServer && matches!(f.plan, Plan::UdpTwoWay | Plan::Rtp) {
            let back = if f.plan == Plan::Rtp {
                10 * MILLI
            } else {
                f.rtt
            };
            f.then(Phase::UdpResp, ts + back);
            return frame;
        }
        f.exchange += 1;
        f.exchanges_left = f.exchanges_left.saturating_sub(1);
        if f.exchanges_left == 0 {
            f.phase = Phase::Done;
        } else if f.plan == Plan::Rtp {
            f.then(Phase::UdpReq, ts + 10 * MILLI);
        } else {
            let at = ts + self.idle();
            f.then(Phase::UdpReq, at);
        }
        frame
    }
}

/// A Q.931 SETUP (to the server) or CONNECT (to the client) in a TPKT, with a display element
/// of `display` and no user-user element.
fn q931(dir: Dir, call_ref: u16, display: &[u8]) -> Vec<u8> {
    let display = &display[..display.len().min(82)];
    let (flag, msg_type) = if dir == Dir::ToServer {
        (0, 0x05)
    } else {
        (0x80, 0x07)
    };
    let mut m = vec![
        0x08,
        2,
        flag | (call_ref >> 8) as u8 & 0x7f,
        call_ref as u8,
        msg_type,
    ];
    m.extend_from_slice(&[0x04, 0x03, 0x88, 0x90, 0xa5]); // bearer capability: speech
    m.extend_from_slice(&[0x28, display.len() as u8]);
    m.extend(display.iter().map(|b| b' ' + b % 94));
    app::tpkt(&m)
}

/// An A query for a host name derived from the flow, or its answer.
fn dns_message(f: &Flow, dir: Dir) -> Vec<u8> {
    let name = format!(
        "host{}.site{}.corp.example",
        f.exchange,
        f.conn.client_isn() % 97
    );
    let id = (f.conn.client_isn() as u16).wrapping_add(f.exchange as u16);
    match dir {
        Dir::ToServer => app::dns_query(id, &name, app::DNS_A),
        Dir::ToClient => {
            let a = app::DnsAnswer::A(Ipv4Addr::from(0x0a00_0000 | (f.conn.server_isn() >> 12)));
            app::dns_response(id, &name, app::DNS_A, 0, &[a], 3600)
        }
    }
}

/// The SMTP dialogue, one line per step: requests and the replies to them.
const SMTP_REQ: &[&[u8]] = &[
    b"",
    b"EHLO mail.partner.example\r\n",
    b"MAIL FROM:<carol@partner.example>\r\n",
    b"RCPT TO:<jsmith@corp.example.com>\r\n",
    b"DATA\r\n",
    b"",
    b"QUIT\r\n",
];
const SMTP_RESP: &[&[u8]] = &[
    b"220 exch01.corp.example.com Microsoft ESMTP MAIL Service, Version: 5.0.2195.5329 ready\r\n",
    b"250-exch01.corp.example.com Hello [mail.partner.example]\r\n250-SIZE\r\n250-PIPELINING\r\n250 OK\r\n",
    b"250 2.1.0 carol@partner.example....Sender OK\r\n",
    b"250 2.1.5 jsmith@corp.example.com \r\n",
    b"354 Start mail input; end with <CRLF>.<CRLF>\r\n",
    b"250 2.6.0 <MSG01@exch01> Queued mail for delivery\r\n",
    b"221 2.0.0 exch01.corp.example.com Service closing transmission channel\r\n",
];

/// The SMTP text of step `exchange` in `dir`; the message body (step 5) is `body_len` bytes of
/// headers and filler, given only when sizing it.
fn smtp_line(exchange: u32, dir: Dir, body_len: usize) -> Vec<u8> {
    let i = (exchange as usize).min(SMTP_REQ.len() - 1);
    match dir {
        Dir::ToClient => SMTP_RESP[i].to_vec(),
        Dir::ToServer if i == 5 => {
            let mut m = b"From: <carol@partner.example>\r\nTo: <jsmith@corp.example.com>\r\nSubject: report\r\n\r\n".to_vec();
            m.resize(body_len.max(m.len() + 5), b'x');
            m
        }
        Dir::ToServer => SMTP_REQ[i].to_vec(),
    }
}

fn rvp_subscribe(f: &Flow) -> Vec<u8> {
    let callback = SocketAddr::new(f.conn.client().ip(), f.aux);
    app::rvp_subscribe(
        "exch01.corp.example.com",
        "/instmsg/aliases/bob",
        "http://exch01.corp.example.com/instmsg/aliases/alice",
        callback,
        14_400,
    )
}

fn rvp_notify(f: &Flow) -> Vec<u8> {
    app::rvp_notify(
        f.conn.server(),
        "/instmsg/aliases/alice",
        "http://exch01/instmsg/aliases/bob",
        "online",
    )
}
