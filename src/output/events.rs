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
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
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

/// Bytes of lines an `analyze` run gathers before it hands them to the writer thread at once
/// ([`EventWriter`]), and how many such chunks the queue holds.
const CHUNK_BYTES: usize = 32 << 10;
const QUEUE_CHUNKS: usize = 16;

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
    /// Lines buffered, flushed whenever the queue is empty ([`write_loop`]).
    Write(io::BufWriter<Box<dyn Write + Send>>),
    /// One event per datagram, without the newline.
    Datagram(UnixDatagram),
}

impl Sink {
    fn open(dest: &Dest) -> io::Result<Sink> {
        Ok(match dest {
            Dest::Stdout => Sink::buffered(Box::new(io::stdout())),
            Dest::File(p) => Sink::buffered(Box::new(
                OpenOptions::new().create(true).append(true).open(p)?,
            )),
            Dest::Unix(p) => match UnixStream::connect(p) {
                Ok(s) => Sink::buffered(Box::new(s)),
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

    fn buffered(w: Box<dyn Write + Send>) -> Sink {
        Sink::Write(io::BufWriter::with_capacity(1 << 16, w))
    }

    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        match self {
            Sink::Write(w) => {
                w.write_all(line)?;
                w.write_all(b"\n")
            }
            Sink::Datagram(d) => d.send(line).map(|_| ()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Write(w) => w.flush(),
            Sink::Datagram(_) => Ok(()),
        }
    }
}

/// The bounded queue to the writer thread, and the thread.
///
/// An `analyze` run (not lossy) to a stream hands lines over in chunks of about
/// `CHUNK_BYTES`: handed over one by one, each line woke the writer thread (the real-traffic
/// mix's 212 MB of events: 152 000 futex calls, and the wake-ups a sixth of the analysis
/// thread's time). Live mode (lossy) and datagram sockets (one event per datagram) hand over
/// every line as it comes, so a reader sees it at once.
pub struct EventWriter {
    tx: Option<SyncSender<Vec<u8>>>,
    /// Lines not handed over yet, separated by newlines (chunked mode only): events are
    /// serialized straight into it.
    chunk: std::cell::RefCell<Vec<u8>>,
    chunked: bool,
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
        let chunked = !lossy && matches!(sink, Sink::Write(_));
        let capacity = if chunked { QUEUE_CHUNKS } else { capacity };
        let (tx, rx) = sync_channel(capacity.max(1));
        let dest = dest.clone();
        let reopen = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&reopen);
        let thread = std::thread::Builder::new()
            .name("exflow-events".into())
            .spawn(move || write_loop(sink, &dest, rx, &flag))?;
        Ok(EventWriter {
            tx: Some(tx),
            chunk: std::cell::RefCell::new(Vec::new()),
            chunked,
            thread: Some(thread),
            lossy,
            dropped: Arc::new(AtomicU64::new(0)),
            reopen,
        })
    }

    /// Queues `value` as one line of JSON (nothing if it does not serialize).
    fn emit(&self, value: &impl Serialize) {
        if !self.chunked {
            if let Ok(line) = serde_json::to_vec(value) {
                self.hand_over(line);
            }
            return;
        }
        self.add_to_chunk(|chunk| serde_json::to_writer(chunk, value).is_ok());
    }

    /// Adds one line to the chunk with `write` (which says whether it wrote it whole; if not,
    /// the chunk is as it was), and hands the chunk over once it is full.
    fn add_to_chunk(&self, write: impl FnOnce(&mut Vec<u8>) -> bool) {
        let full = {
            let mut chunk = self.chunk.borrow_mut();
            let start = chunk.len();
            if start > 0 {
                chunk.push(b'\n');
            }
            if !write(&mut chunk) {
                chunk.truncate(start);
            }
            chunk.len() >= CHUNK_BYTES
        };
        if full {
            self.send_chunk();
        }
    }

    /// Hands the gathered lines over as one (the writer ends it with a newline, as a line).
    fn send_chunk(&self) {
        let chunk = std::mem::take(&mut *self.chunk.borrow_mut());
        if !chunk.is_empty() {
            self.hand_over(chunk);
        }
    }

    fn hand_over(&self, line: Vec<u8>) {
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
        if self.chunked {
            self.add_to_chunk(|chunk| {
                chunk.extend_from_slice(line.as_bytes());
                true
            });
        } else {
            self.hand_over(line.into_bytes());
        }
    }

    /// Waits for every queued line to be written; the writer's error, if it stopped on one.
    pub fn finish(mut self) -> io::Result<()> {
        self.close()
    }

    fn close(&mut self) -> io::Result<()> {
        self.send_chunk();
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

/// The writer thread: writes the queued lines to `sink` until the queue closes, opening `dest`
/// again when `reopen` is set (SIGHUP).
///
/// Lines are written to a buffer, which is flushed whenever no line waits in the queue: a reader
/// of the stream gets each event as soon as the writer is idle, and a run that queues events
/// faster than they are written does not pay two system calls a line (the mix's 212 MB of
/// events: 1.1–1.35 s of system time in a 3.1 s run when every line was flushed).
fn write_loop(
    mut sink: Sink,
    dest: &Dest,
    rx: Receiver<Vec<u8>>,
    reopen: &AtomicBool,
) -> io::Result<()> {
    let quiet = |r: io::Result<()>| match r {
        // `exflow analyze --events - x.pcap | head`: the reader left; stop quietly.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e),
        Ok(()) => Ok(true),
    };
    let mut next = rx.recv().ok();
    while let Some(line) = next {
        if reopen.swap(false, Ordering::Relaxed) {
            if !quiet(sink.flush())? {
                return Ok(());
            }
            sink = Sink::open(dest)?;
        }
        if !quiet(sink.write_line(&line))? {
            return Ok(());
        }
        next = match rx.try_recv() {
            Ok(line) => Some(line),
            Err(TryRecvError::Empty) => {
                if !quiet(sink.flush())? {
                    return Ok(());
                }
                rx.recv().ok()
            }
            Err(TryRecvError::Disconnected) => None,
        };
    }
    quiet(sink.flush()).map(|_| ())
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
        self.writer.emit(value);
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

#[cfg(test)]
mod writer_tests {
    use super::*;
    use crate::source::testutil::TempDir;

    /// An `analyze` run's lines go to the writer in chunks: many chunks' worth of lines of
    /// different lengths come out whole, one a line, in order, the last (partial) chunk included;
    /// an event serialized into the chunk reads as `serde_json` writes it, and one that does not
    /// serialize leaves no trace.
    #[test]
    fn chunked_lines_come_out_whole_and_in_order() {
        let dir = TempDir::new("event-chunks");
        let path = dir.join("events.ndjson");
        let w = EventWriter::open(&Dest::File(path.clone()), QUEUE_LINES, false).unwrap();
        assert!(w.chunked);
        let mut want = Vec::new();
        let unserializable: std::collections::BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        for i in 0..20_000 {
            if i % 3 == 0 {
                let v = serde_json::json!({ "e": i, "s": "q\"uote" });
                w.emit(&v);
                want.push(serde_json::to_string(&v).unwrap());
            } else {
                let l = format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(i % 97));
                w.send_line(l.clone());
                want.push(l);
            }
            if i % 1000 == 0 {
                w.emit(&unserializable);
            }
        }
        w.finish().unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(
            written.len() > 20 * CHUNK_BYTES,
            "only {} bytes",
            written.len()
        );
        assert_eq!(written.lines().collect::<Vec<_>>(), want);
        assert!(written.ends_with('\n'));
    }

    /// Live mode hands every line over as it comes: it is in the file while the writer is still
    /// open.
    #[test]
    fn lossy_lines_are_written_as_they_come() {
        let dir = TempDir::new("event-lossy");
        let path = dir.join("events.ndjson");
        let w = EventWriter::open(&Dest::File(path.clone()), QUEUE_LINES, true).unwrap();
        assert!(!w.chunked);
        w.send_line("{\"a\":1}".to_string());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read_to_string(&path).unwrap_or_default() != "{\"a\":1}\n" {
            assert!(
                std::time::Instant::now() < deadline,
                "the line was not written"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        w.finish().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n");
    }
}
