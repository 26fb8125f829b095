//! The live source: a libpcap capture (the `pcap` crate) opened the way tcpdump opens one, its
//! frames handed out as [`RawPacket`]s, its statistics, and the thread that reads it.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pcap::{Active, Capture, Device, Precision};

use crate::packet::{Nanos, RawPacket};

use super::frames::FrameSender;
use super::report::CaptureView;

/// How to open the interface.
#[derive(Clone, Debug)]
pub struct CaptureConfig {
    pub interface: String,
    /// BPF filter expression (tcpdump syntax), if any.
    pub filter: Option<String>,
    pub snaplen: u32,
    pub promisc: bool,
    /// Kernel buffer in bytes; the library's default when `None`.
    pub buffer_size: Option<u32>,
    /// Deliver each packet at once instead of in batches.
    pub immediate: bool,
}

/// Why the capture could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(
        "no permission to capture on {interface} ({message}); run as root, or give the binary the \
         capabilities: sudo setcap cap_net_raw,cap_net_admin+eip $(command -v exflow)"
    )]
    Permission { interface: String, message: String },
    #[error("cannot capture on {interface}: {message}")]
    Open { interface: String, message: String },
    #[error("bad filter {filter:?}: {message}")]
    Filter { filter: String, message: String },
    #[error("reading from {interface}: {message}")]
    Read { interface: String, message: String },
}

/// Milliseconds the library may hold packets before handing them over; also how often the loop
/// wakes up on a quiet interface.
const READ_TIMEOUT_MS: i32 = 100;

/// An open live capture.
pub struct LiveCapture {
    cap: Capture<Active>,
    interface: String,
    link_type: u32,
    nanos: bool,
    /// Previous raw statistics, to turn the library's 32-bit counters into 64-bit totals.
    last: pcap::Stat,
    totals: CaptureView,
}

/// What one read gave.
pub enum Read<'a> {
    Packet(RawPacket<'a>),
    /// Nothing arrived within the read timeout.
    Idle,
}

impl LiveCapture {
    pub fn open(c: &CaptureConfig) -> Result<LiveCapture, CaptureError> {
        let open_err = |e: pcap::Error| classify_open_error(&c.interface, e);
        let mut inactive = Capture::from_device(c.interface.as_str())
            .map_err(open_err)?
            .snaplen(i32::try_from(c.snaplen).unwrap_or(i32::MAX))
            .promisc(c.promisc)
            .immediate_mode(c.immediate)
            .timeout(READ_TIMEOUT_MS)
            .precision(Precision::Nano);
        if let Some(b) = c.buffer_size {
            inactive = inactive.buffer_size(i32::try_from(b).unwrap_or(i32::MAX));
        }
        // Nanosecond time stamps are not available everywhere; fall back to microseconds.
        let (mut cap, nanos) = match inactive.open() {
            Ok(cap) => (cap, true),
            Err(e) if is_permission(&e) => return Err(open_err(e)),
            Err(_) => {
                let mut retry = Capture::from_device(c.interface.as_str())
                    .map_err(open_err)?
                    .snaplen(i32::try_from(c.snaplen).unwrap_or(i32::MAX))
                    .promisc(c.promisc)
                    .immediate_mode(c.immediate)
                    .timeout(READ_TIMEOUT_MS);
                if let Some(b) = c.buffer_size {
                    retry = retry.buffer_size(i32::try_from(b).unwrap_or(i32::MAX));
                }
                (retry.open().map_err(open_err)?, false)
            }
        };
        if let Some(f) = &c.filter {
            cap.filter(f, true).map_err(|e| CaptureError::Filter {
                filter: f.clone(),
                message: e.to_string(),
            })?;
        }
        let link_type = linktype_of_dlt(cap.get_datalink().0);
        Ok(LiveCapture {
            cap,
            interface: c.interface.clone(),
            link_type,
            nanos,
            last: pcap::Stat {
                received: 0,
                dropped: 0,
                if_dropped: 0,
            },
            totals: CaptureView::default(),
        })
    }

    /// The next frame, or `Idle` after the read timeout.
    pub fn next(&mut self) -> Result<Read<'_>, CaptureError> {
        match self.cap.next_packet() {
            Ok(p) => {
                let tv = &p.header.ts;
                let ts = timeval_nanos(tv.tv_sec, tv.tv_usec, self.nanos);
                Ok(Read::Packet(RawPacket {
                    ts,
                    link_type: self.link_type,
                    data: p.data,
                    wire_len: p.header.len,
                }))
            }
            // NoMorePackets is what a read interrupted by `pcap_breakloop` gives.
            Err(pcap::Error::TimeoutExpired | pcap::Error::NoMorePackets) => Ok(Read::Idle),
            Err(e) => Err(CaptureError::Read {
                interface: self.interface.clone(),
                message: e.to_string(),
            }),
        }
    }

    /// A handle that interrupts a blocked read from another thread. Needed because Linux's
    /// TPACKET_V3 ring ignores the read timeout while no packet arrives at all.
    pub fn waker(&mut self) -> pcap::BreakLoop {
        self.cap.breakloop_handle()
    }

    /// The capture's counters since it was opened (64-bit, across the library's wrap-around).
    pub fn stats(&mut self) -> CaptureView {
        if let Ok(s) = self.cap.stats() {
            let t = &mut self.totals;
            t.received += u64::from(s.received.wrapping_sub(self.last.received));
            t.dropped += u64::from(s.dropped.wrapping_sub(self.last.dropped));
            t.if_dropped += u64::from(s.if_dropped.wrapping_sub(self.last.if_dropped));
            self.last = s;
        }
        self.totals
    }
}

/// Capture time of a time stamp whose second field holds micro- or nanoseconds (generic because
/// `time_t` and `suseconds_t` are not `i64` on every target).
fn timeval_nanos(sec: impl Into<i64>, frac: impl Into<i64>, nanos: bool) -> Nanos {
    let frac = frac.into();
    sec.into()
        .wrapping_mul(1_000_000_000)
        .wrapping_add(if nanos { frac } else { frac.wrapping_mul(1000) })
}

fn is_permission(e: &pcap::Error) -> bool {
    let m = e.to_string().to_ascii_lowercase();
    m.contains("permission") || m.contains("not permitted")
}

fn classify_open_error(interface: &str, e: pcap::Error) -> CaptureError {
    let interface = interface.to_string();
    let message = e.to_string();
    if is_permission(&e) {
        CaptureError::Permission { interface, message }
    } else {
        CaptureError::Open { interface, message }
    }
}

/// The pcap file `LINKTYPE_` value of a libpcap `DLT_` value; they differ for a few link types
/// whose DLT numbers vary between systems.
fn linktype_of_dlt(dlt: i32) -> u32 {
    match dlt {
        // DLT_RAW is 12 on most systems, 14 on OpenBSD.
        12 | 14 => 101,
        // DLT_ATM_RFC1483 / DLT_SLIP_BSDOS / DLT_PPP_BSDOS are not decoded either way.
        d => u32::try_from(d).unwrap_or(u32::MAX),
    }
}

/// Frames between two looks at the wall clock (stop, deadline, counters) on a busy interface.
const LOOK_EVERY_FRAMES: u32 = 256;
/// Shortest time between two reads of the capture's counters (each is a system call).
const STATS_EVERY: Duration = Duration::from_millis(100);

/// What the capture thread reads: the interface (or, in tests, a stand-in).
pub trait Source {
    /// The next frame, or `Idle` after the read timeout.
    fn read(&mut self) -> Result<Read<'_>, CaptureError>;
    /// The counters since the capture was opened.
    fn counters(&mut self) -> CaptureView;
}

impl Source for LiveCapture {
    fn read(&mut self) -> Result<Read<'_>, CaptureError> {
        self.next()
    }

    fn counters(&mut self) -> CaptureView {
        self.stats()
    }
}

/// Starts the capture thread (`exflow-capture`): it reads `cap` into `tx` until `stop` is set,
/// `deadline` passes, the interface fails or the analysis side goes away. It never drops a frame
/// itself: when the analysis side is behind it waits, and the kernel's buffer (then libpcap's
/// `dropped` counter) takes the excess.
pub fn spawn(
    cap: impl Source + Send + 'static,
    tx: FrameSender,
    stop: Arc<AtomicBool>,
    deadline: Option<Instant>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("exflow-capture".into())
        .spawn(move || read_all(cap, tx, &stop, deadline))
}

/// The capture thread's loop.
fn read_all(
    mut cap: impl Source,
    mut tx: FrameSender,
    stop: &AtomicBool,
    deadline: Option<Instant>,
) {
    let mut next_stats = Instant::now();
    let mut since_look = 0u32;
    let failed = loop {
        let idle = match cap.read() {
            Ok(Read::Packet(raw)) => {
                if tx.push(&raw).is_err() {
                    return;
                }
                since_look += 1;
                false
            }
            Ok(Read::Idle) => true,
            Err(e) => break Some(e.to_string()),
        };
        if !idle && since_look < LOOK_EVERY_FRAMES {
            continue;
        }
        since_look = 0;
        let now = Instant::now();
        if now >= next_stats {
            tx.set_stats(cap.counters());
            next_stats = now + STATS_EVERY;
        }
        if idle && tx.idle().is_err() {
            return;
        }
        if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| now >= d) {
            break None;
        }
    };
    tx.set_stats(cap.counters());
    // Nobody to tell if the analysis side is gone.
    let _ = tx.end(failed);
}

/// One interface as `--list-interfaces` shows it.
pub struct InterfaceInfo(Device);

impl fmt::Display for InterfaceInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.0;
        write!(f, "{}", d.name)?;
        if let Some(desc) = &d.desc {
            write!(f, " ({desc})")?;
        }
        let fl = &d.flags;
        let mut tags = Vec::new();
        if fl.is_up() {
            tags.push("Up");
        }
        if fl.is_running() {
            tags.push("Running");
        }
        if fl.is_loopback() {
            tags.push("Loopback");
        }
        if !tags.is_empty() {
            write!(f, " [{}]", tags.join(", "))?;
        }
        Ok(())
    }
}

/// The interfaces libpcap can capture on, as tcpdump -D lists them.
pub fn list_interfaces() -> Result<Vec<InterfaceInfo>, CaptureError> {
    Device::list()
        .map(|v| v.into_iter().map(InterfaceInfo).collect())
        .map_err(|e| CaptureError::Open {
            interface: "any".into(),
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::frames::{self, Message};

    /// One frame, then a quiet interface (a read timeout every 10 ms).
    struct OneFrame {
        sent: bool,
        frame: Vec<u8>,
    }

    impl Source for OneFrame {
        fn read(&mut self) -> Result<Read<'_>, CaptureError> {
            if std::mem::replace(&mut self.sent, true) {
                std::thread::sleep(Duration::from_millis(10));
                return Ok(Read::Idle);
            }
            Ok(Read::Packet(RawPacket {
                ts: 7,
                link_type: 1,
                data: &self.frame,
                wire_len: 60,
            }))
        }

        fn counters(&mut self) -> CaptureView {
            CaptureView {
                received: 1,
                ..CaptureView::default()
            }
        }
    }

    /// A lone frame is handed over at the next read timeout, not when a batch fills; the thread
    /// ends when told to, with its counters.
    #[test]
    fn a_lone_frame_goes_out_at_the_read_timeout() {
        let (tx, rx) = frames::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let source = OneFrame {
            sent: false,
            frame: vec![0; 60],
        };
        let t = spawn(source, tx, Arc::clone(&stop), None).unwrap();
        let wait = Duration::from_secs(5);
        match rx.next(wait) {
            Some(Message::Frames(b, stats)) => {
                assert_eq!(b.frames().map(|f| f.ts).collect::<Vec<_>>(), [7]);
                assert_eq!(stats.received, 1, "counters go along");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(rx.next(wait), Some(Message::Idle(_))));
        stop.store(true, Ordering::Relaxed);
        loop {
            match rx.next(wait) {
                Some(Message::Idle(_)) => continue,
                Some(Message::End(None, stats)) => {
                    assert_eq!(stats.received, 1);
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        t.join().unwrap();
    }
}
