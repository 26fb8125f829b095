//! `--events`: one NDJSON event per flow, per follow-up and per finding (an SMTP session, a DNS
//! transaction, an LDAP result), with the field names Suricata's EVE and Zeek write
//! (`timestamp`, `flow_id`, `community_id`, `src_ip`, ...), for log pipelines.
//!
//! The analyzer hands finished flows and announced or concluded follow-ups to an
//! [`EventStream`] (through [`crate::analyze::EventSink`]), which renders each as one line and
//! queues it, bounded, to a writer thread that owns the destination (a file opened for
//! appending, stdout, or a Unix socket) and writes every line as it comes.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use serde::Serialize;

use super::community_id::{self, ip_proto};
use super::{flow_view, followup_view, time, FlowView, FollowupView};
use crate::analyze::EventSink;
use crate::classify::{Catalogue, Expectation, Flow};
use crate::packet::Nanos;
use crate::summary::FlowRecord;

/// Lines the queue to the writer thread holds before the producer waits (or, in live mode,
/// drops).
pub const QUEUE_LINES: usize = 8192;

/// Where events go (`--events DEST`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dest {
    /// `-`: standard output.
    Stdout,
    /// `unix:PATH`: a Unix stream socket, or a datagram socket when the path is one.
    Unix(PathBuf),
    /// Any other value: a file, created if missing and appended to.
    File(PathBuf),
}

impl Dest {
    pub fn parse(s: &str) -> Dest {
        if s == "-" {
            Dest::Stdout
        } else if let Some(p) = s.strip_prefix("unix:") {
            Dest::Unix(p.into())
        } else {
            Dest::File(s.into())
        }
    }
}

/// An open destination.
enum Sink {
    Write(Box<dyn Write + Send>),
    /// One event per datagram, without the newline.
    Datagram(UnixDatagram),
}

impl Sink {
    fn open(dest: &Dest) -> io::Result<Sink> {
        Ok(match dest {
            Dest::Stdout => Sink::Write(Box::new(io::stdout())),
            Dest::File(p) => Sink::Write(Box::new(
                OpenOptions::new().create(true).append(true).open(p)?,
            )),
            Dest::Unix(p) => match UnixStream::connect(p) {
                Ok(s) => Sink::Write(Box::new(s)),
                // EPROTOTYPE: the socket is a datagram socket.
                Err(e) if e.raw_os_error() == Some(91) => {
                    let d = UnixDatagram::unbound()?;
                    d.connect(p)?;
                    Sink::Datagram(d)
                }
                Err(e) => return Err(e),
            },
        })
    }

    fn write_line(&mut self, line: &str) -> io::Result<()> {
        match self {
            Sink::Write(w) => {
                w.write_all(line.as_bytes())?;
                w.write_all(b"\n")?;
                w.flush()
            }
            Sink::Datagram(d) => d.send(line.as_bytes()).map(|_| ()),
        }
    }
}

/// The bounded queue to the writer thread, and the thread.
pub struct EventWriter {
    tx: Option<SyncSender<String>>,
    thread: Option<JoinHandle<io::Result<()>>>,
    /// Drop lines when the queue is full instead of waiting (live capture must not block).
    lossy: bool,
    dropped: Arc<AtomicU64>,
    /// Set to have the writer close and open its destination before its next line.
    reopen: Arc<AtomicBool>,
}

impl EventWriter {
    /// Opens `dest` (errors surface here, before the run) and starts the writer thread.
    pub fn open(dest: &Dest, capacity: usize, lossy: bool) -> io::Result<EventWriter> {
        let sink = Sink::open(dest)?;
        let (tx, rx) = sync_channel(capacity.max(1));
        let dest = dest.clone();
        let reopen = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&reopen);
        let thread = std::thread::Builder::new()
            .name("exflow-events".into())
            .spawn(move || write_loop(sink, &dest, rx, &flag))?;
        Ok(EventWriter {
            tx: Some(tx),
            thread: Some(thread),
            lossy,
            dropped: Arc::new(AtomicU64::new(0)),
            reopen,
        })
    }

    fn send(&self, line: String) {
        let Some(tx) = &self.tx else { return };
        if self.lossy {
            if let Err(TrySendError::Full(_)) = tx.try_send(line) {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            // The writer thread gone (a closed pipe) ends the stream quietly.
            let _ = tx.send(line);
        }
    }

    /// What the capture loop keeps to reopen the destination and read the drop count.
    pub fn handle(&self) -> EventHandle {
        EventHandle {
            reopen: Arc::clone(&self.reopen),
            dropped: Arc::clone(&self.dropped),
        }
    }

    /// Queues one line (without its newline), as the analyzer's events are.
    pub fn send_line(&self, line: String) {
        self.send(line);
    }

    /// Waits for every queued line to be written; the writer's error, if it stopped on one.
    pub fn finish(mut self) -> io::Result<()> {
        self.close()
    }

    fn close(&mut self) -> io::Result<()> {
        drop(self.tx.take());
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("event writer panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// Reopens an [`EventWriter`]'s destination and reads its drop count from another owner.
#[derive(Clone)]
pub struct EventHandle {
    reopen: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
}

impl EventHandle {
    /// Asks the writer to close and open its destination again before its next line (SIGHUP,
    /// once logrotate moved the file).
    pub fn reopen(&self) {
        self.reopen.store(true, Ordering::Relaxed);
    }

    /// Events dropped so far because the queue was full (lossy mode).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

fn write_loop(
    mut sink: Sink,
    dest: &Dest,
    rx: Receiver<String>,
    reopen: &AtomicBool,
) -> io::Result<()> {
    for line in rx {
        if reopen.swap(false, Ordering::Relaxed) {
            sink = Sink::open(dest)?;
        }
        match sink.write_line(&line) {
            Ok(()) => {}
            // `exflow analyze --events - x.pcap | head`: the reader left; stop quietly.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The five-tuple fields every event starts with.
#[derive(Clone, Serialize)]
struct Head<'a> {
    timestamp: String,
    event_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    community_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_port: Option<u16>,
    dest_ip: String,
    dest_port: u16,
    proto: String,
    app_proto: &'a str,
    /// ICMP flows: type and code of the first message (what Community ID hashes as ports).
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_type: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_code: Option<u8>,
}

#[derive(Serialize)]
struct FlowEvent<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    flow: &'a FlowView,
}

/// An `smtp`, `dns` or `ldap` event: one finding of a flow's tracker, under the tracker's name.
#[derive(Serialize)]
struct FindingEvent<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    #[serde(flatten)]
    finding: std::collections::BTreeMap<&'static str, &'a serde_json::Value>,
}

/// Trackers whose findings are events of their own, and which list in their record holds one
/// event's worth each (`None`: the whole record is one event).
const FINDING_EVENTS: &[(&str, Option<&str>)] = &[
    // One per session: a flow is one SMTP session.
    ("smtp", None),
    // One per transaction (query and its answer).
    ("dns", Some("transactions")),
    // One per distinct (operation, result code) of the flow, with its count.
    ("ldap", Some("results")),
];

#[derive(Serialize)]
struct FollowupEvent<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    /// `announced` (the signalling named the address) or `concluded` (the run ended; the
    /// outcome is final).
    state: &'static str,
    followup: &'a FollowupView,
}

/// Renders the analyzer's flows and follow-ups as events onto an [`EventWriter`].
pub struct EventStream {
    writer: EventWriter,
    seed: u16,
    catalogue: Option<Arc<Catalogue>>,
}

impl EventStream {
    pub fn new(writer: EventWriter, seed: u16) -> EventStream {
        EventStream {
            writer,
            seed,
            catalogue: None,
        }
    }

    fn service(&self, id: crate::classify::ServiceId) -> &str {
        self.catalogue.as_deref().map_or("", |c| c.id(id))
    }

    /// The `smtp`, `dns` or `ldap` events of one tracker's finding on a flow whose event head is
    /// `head`; other trackers' findings stay in the flow event only.
    fn findings(&self, head: &Head<'_>, name: &'static str, v: &serde_json::Value) {
        let Some(&(event_type, list)) = FINDING_EVENTS.iter().find(|(n, _)| *n == name) else {
            return;
        };
        let mut one = |item: &serde_json::Value| {
            let head = Head {
                event_type,
                ..head.clone()
            };
            let finding = std::iter::once((name, item)).collect();
            self.emit(&FindingEvent { head, finding });
        };
        match list {
            // The tracker's per-flow cap (`--diagnostics-per-flow`) bounds the list.
            Some(key) => v
                .get(key)
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
                .for_each(&mut one),
            None => one(v),
        }
    }

    fn emit(&self, value: &impl Serialize) {
        if let Ok(line) = serde_json::to_string(value) {
            self.writer.send(line);
        }
    }
}

/// A flow's `flow_id`: stable for the same capture (a hash of its Community ID and start time),
/// below 2^53 so every JSON reader keeps it exact.
pub fn flow_id(community_id: &str, first_ts: Nanos) -> u64 {
    let mut input = community_id.as_bytes().to_vec();
    input.extend_from_slice(&first_ts.to_be_bytes());
    let h = community_id::sha1(&input);
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    u64::from_be_bytes(b) & ((1 << 53) - 1)
}

impl EventSink for EventStream {
    fn start(&mut self, catalogue: Arc<Catalogue>) {
        self.catalogue = Some(catalogue);
    }

    fn flow(&mut self, now: Nanos, f: &Flow, r: &FlowRecord) {
        let service = self.service(r.service);
        let view = flow_view(service, r);
        let cid = community_id::of_flow(self.seed, f);
        let head = Head {
            timestamp: time::rfc3339(now),
            event_type: "flow",
            flow_id: Some(flow_id(&cid, r.first_ts)),
            community_id: Some(cid),
            src_ip: Some(r.client.ip.to_string()),
            src_port: Some(r.client.port),
            dest_ip: r.server.ip.to_string(),
            dest_port: r.server.port,
            proto: proto_name(f),
            app_proto: service,
            icmp_type: f.icmp_first().map(|i| i.0),
            icmp_code: f.icmp_first().map(|i| i.1),
        };
        // A flow's findings come before it, at the same time: Suricata logs a session's
        // application records before its flow record too.
        for (name, v) in &r.findings {
            self.findings(&head, name, v);
        }
        self.emit(&FlowEvent { head, flow: &view });
    }

    fn stats(&mut self, now: Nanos, stats: &serde_json::Value) {
        #[derive(Serialize)]
        struct StatsEvent<'a> {
            timestamp: String,
            event_type: &'static str,
            stats: &'a serde_json::Value,
        }
        self.emit(&StatsEvent {
            timestamp: time::rfc3339(now),
            event_type: "stats",
            stats,
        });
    }

    fn followup(&mut self, now: Nanos, e: &Expectation, concluded: bool, on_dc: bool) {
        let Some(cat) = self.catalogue.clone() else {
            return;
        };
        let mut view = followup_view(&cat, e, on_dc);
        if !concluded {
            view.outcome = "pending".into();
        }
        let ev = FollowupEvent {
            head: Head {
                timestamp: time::rfc3339(now),
                event_type: "followup",
                flow_id: None,
                community_id: None,
                src_ip: e.peer.map(|p| p.to_string()),
                src_port: None,
                dest_ip: e.addr.ip.to_string(),
                dest_port: e.addr.port,
                proto: e.proto.as_str().to_uppercase(),
                app_proto: cat.id(e.service),
                icmp_type: None,
                icmp_code: None,
            },
            state: if concluded { "concluded" } else { "announced" },
            followup: &view,
        };
        self.emit(&ev);
    }
}

/// EVE's protocol names: `TCP`, `UDP`, `ICMP`, `IPv6-ICMP`, else the number.
fn proto_name(f: &Flow) -> String {
    match ip_proto(f.proto, f.client.ip.is_ipv6()) {
        6 => "TCP".into(),
        17 => "UDP".into(),
        1 => "ICMP".into(),
        58 => "IPv6-ICMP".into(),
        132 => "SCTP".into(),
        n => n.to_string(),
    }
}
