//! H.323 trackers: H.225 call signalling on tcp/1720 and H.245 control (TPKT-framed), RAS on
//! udp/1719 (datagrams), and audio conferencing call control on tcp/1731 (inference only).
//!
//! The addresses the parsers of `signal/` announce become expectations: `h245Address` → the H.245
//! connection (optional when H.245 is tunnelled), `mediaChannel`/`mediaControlChannel` → RTP/RTCP,
//! RAS call-signalling addresses → H.225. An H.225 message that cannot be decoded falls back to
//! inference between the two hosts, as 1731 sessions always do.

use super::framing::{drive, FrameStats, Tpkt};
use super::{Announcement, Cx, Dir, EndCx, FlowInfo, Tracker, TrackerKind, SECOND};
use crate::classify::{Catalogue, ServiceId};
use crate::packet::Nanos;
use crate::signal::{self, AddrKind, Announced, Context, RasKind};

/// How long after an H.323 announcement the connection to it may start.
const H323_WINDOW: Nanos = 300 * SECOND;
/// How long a 1731 or undecodable H.323 session keeps inferring media after its last packet.
pub(super) const SESSION_GRACE: Nanos = 60 * SECOND;
/// Addresses kept from one signalling message.
const MAX_PER_MESSAGE: usize = 32;
/// Reassembly buffer per direction: a TPKT is at most 64 KiB, signalling far less.
const TPKT_BUFFER: usize = 32 * 1024;

/// The services H.323 follow-ups involve.
#[derive(Clone, Copy, Debug)]
struct Ids {
    h323: ServiceId,
    h323_h245: ServiceId,
    h323_media: ServiceId,
    audio_media: ServiceId,
}

impl Ids {
    fn new(c: &Catalogue) -> Ids {
        Ids {
            h323: c.must("h323"),
            h323_h245: c.must("h323_h245"),
            h323_media: c.must("h323_media"),
            audio_media: c.must("audio_media"),
        }
    }
}

/// Collects what one message announces (at most [`MAX_PER_MESSAGE`]).
struct Found {
    list: [Option<Announced>; MAX_PER_MESSAGE],
    n: usize,
}

impl Found {
    fn new() -> Found {
        Found {
            list: [None; MAX_PER_MESSAGE],
            n: 0,
        }
    }

    fn sink(&mut self) -> impl FnMut(Announced) + '_ {
        |a| {
            if let Some(cell) = self.list.get_mut(self.n) {
                *cell = Some(a);
                self.n += 1;
            }
        }
    }

    fn announce(&self, ids: Ids, tunnelling: bool, cx: &mut Cx<'_>) {
        for a in self.list.iter().take(self.n).flatten() {
            announce(ids, *a, tunnelling, cx);
        }
    }
}

/// Turns one announced address into an expectation, if it calls for a connection.
fn announce(ids: Ids, a: Announced, tunnelling: bool, cx: &mut Cx<'_>) {
    let registration = matches!(a.context, Context::Ras(k) if k != RasKind::ADMISSION_CONFIRM && k != RasKind::LOCATION_CONFIRM);
    let (service, optional) = match a.kind {
        AddrKind::H245Address => (ids.h323_h245, tunnelling),
        AddrKind::MediaChannel | AddrKind::MediaControlChannel => (ids.h323_media, false),
        AddrKind::CallSignalAddress => (ids.h323, registration),
        AddrKind::DestCallSignalAddress if matches!(a.context, Context::Ras(k) if k == RasKind::ADMISSION_CONFIRM) => {
            (ids.h323, false)
        }
        _ => return,
    };
    cx.announce(Announcement {
        optional,
        ..Announcement::new(
            service,
            a.kind.transport(),
            a.addr,
            a.kind.key(),
            a.context.key(),
            H323_WINDOW,
        )
    });
}

/// Which TPKT-framed protocol a [`TpktSignalling`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layer {
    H225,
    H245,
}

/// H.225 or H.245 over TPKT on one TCP flow.
struct TpktSignalling {
    layer: Layer,
    ids: Ids,
    framers: [Tpkt; 2],
    frames: FrameStats,
}

impl Tracker for TpktSignalling {
    fn stream(&mut self, dir: Dir, bytes: &[u8], cx: &mut Cx<'_>) -> usize {
        let (layer, ids) = (self.layer, self.ids);
        let framer = &mut self.framers[dir as usize];
        drive(framer, &mut self.frames, bytes, &mut |frame| {
            if !frame.is_empty() {
                on_frame(layer, ids, frame, cx);
            }
            true
        })
    }

    fn gap(&mut self, dir: Dir, _cx: &mut Cx<'_>) {
        use super::framing::Framer;
        self.framers[dir as usize].gap();
    }

    fn max_unit(&self) -> usize {
        TPKT_BUFFER
    }

    fn end(&mut self, cx: &mut EndCx<'_>) -> Option<serde_json::Value> {
        cx.stats
            .errors
            .add("garbage_bytes", self.frames.garbage_bytes);
        cx.stats.errors.add("oversize_frames", self.frames.oversize);
        None
    }
}

fn on_frame(layer: Layer, ids: Ids, frame: &[u8], cx: &mut Cx<'_>) {
    let mut found = Found::new();
    cx.count("messages");
    let parsed = match layer {
        Layer::H225 => signal::h225::parse_frame(frame, &mut found.sink())
            .map(|s| s.h245_tunnelling)
            .map_err(drop),
        Layer::H245 => signal::h245::parse_frame(frame, &mut found.sink())
            .map(|_| false)
            .map_err(drop),
    };
    match parsed {
        Ok(tunnelling) => found.announce(ids, tunnelling, cx),
        Err(_) => {
            cx.error("undecodable");
            found.announce(ids, false, cx);
            if layer == Layer::H225 {
                cx.infer_media(ids.h323_media, "undecodable H.225", SESSION_GRACE);
            }
        }
    }
}

/// H.225 call signalling (tcp/1720).
pub(super) struct H225Kind(Ids);
/// H.245 control on its learned connection.
pub(super) struct H245Kind(Ids);

impl H225Kind {
    pub fn new(c: &Catalogue) -> Self {
        H225Kind(Ids::new(c))
    }
}

impl H245Kind {
    pub fn new(c: &Catalogue) -> Self {
        H245Kind(Ids::new(c))
    }
}

fn tpkt_tracker(layer: Layer, ids: Ids) -> Box<dyn Tracker> {
    Box::new(TpktSignalling {
        layer,
        ids,
        framers: [Tpkt::new(TPKT_BUFFER), Tpkt::new(TPKT_BUFFER)],
        frames: FrameStats::default(),
    })
}

impl TrackerKind for H225Kind {
    fn name(&self) -> &'static str {
        "h225"
    }

    fn attach(&self, _: &FlowInfo) -> Box<dyn Tracker> {
        tpkt_tracker(Layer::H225, self.0)
    }
}

impl TrackerKind for H245Kind {
    fn name(&self) -> &'static str {
        "h245"
    }

    fn attach(&self, _: &FlowInfo) -> Box<dyn Tracker> {
        tpkt_tracker(Layer::H245, self.0)
    }
}

/// H.323 RAS (udp/1719): one message per datagram.
pub(super) struct RasKindTracker(Ids);

impl RasKindTracker {
    pub fn new(c: &Catalogue) -> Self {
        RasKindTracker(Ids::new(c))
    }
}

struct Ras(Ids);

impl Tracker for Ras {
    fn datagram(&mut self, _dir: Dir, payload: &[u8], cx: &mut Cx<'_>) {
        let mut found = Found::new();
        cx.count("messages");
        if signal::ras::parse(payload, &mut found.sink()).is_err() {
            cx.error("undecodable");
        }
        found.announce(self.0, false, cx);
    }
}

impl TrackerKind for RasKindTracker {
    fn name(&self) -> &'static str {
        "ras"
    }

    fn attach(&self, _: &FlowInfo) -> Box<dyn Tracker> {
        Box::new(Ras(self.0))
    }
}

/// Audio conferencing call control (tcp/1731): its format is not public, so every packet keeps a
/// media-inference session alive between the two hosts.
pub(super) struct AudioKind(Ids);

impl AudioKind {
    pub fn new(c: &Catalogue) -> Self {
        AudioKind(Ids::new(c))
    }
}

struct Audio(ServiceId);

impl Tracker for Audio {
    fn packet(&mut self, _dir: Dir, cx: &mut Cx<'_>) {
        cx.infer_media(self.0, "1731 session", SESSION_GRACE);
    }

    fn stream(&mut self, _dir: Dir, bytes: &[u8], _cx: &mut Cx<'_>) -> usize {
        bytes.len()
    }
}

impl TrackerKind for AudioKind {
    fn name(&self) -> &'static str {
        "audio"
    }

    fn attach(&self, _: &FlowInfo) -> Box<dyn Tracker> {
        Box::new(Audio(self.0.audio_media))
    }
}
