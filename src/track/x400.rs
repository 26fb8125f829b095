//! X.400 MTA connections over RFC 1006 (tcp/102): reads the COTP connection (CR, then CC, DR or
//! ER) and the session connect that follows (the responder's AC or RF SPDU, with the ACSE, RTSE
//! and P1 bind answer inside), and reports a connection or MTA bind that was refused as the
//! failure it is. Once the bind is answered the tracker reads nothing more.

use super::framing::{drive, FrameStats, Framer, Tpkt};
use super::refusals::Refusals;
use super::{Cx, Dir, EndCx, FlowInfo, Tracker, TrackerKind};
use crate::signal::cotp::{self, spdu, Tpdu};

/// Largest TPKT kept (its 16-bit length).
const MAX_TPKT: usize = u16::MAX as usize;
/// Largest session TSDU reassembled from DT TPDUs while the bind is awaited.
const MAX_TSDU: usize = 64 * 1024;

/// How the connection and the bind went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Stage {
    #[default]
    Start,
    /// CR sent.
    Requested,
    /// CC received.
    Connected,
    /// Session accepted and the bind (if any) accepted.
    Bound,
    /// Refused (the text says where and why).
    Refused,
}

pub(super) struct X400Kind;

struct X400 {
    framers: [Tpkt; 2],
    frames: FrameStats,
    /// DT data of an unfinished TSDU, per direction.
    tsdu: [Vec<u8>; 2],
    stage: Stage,
    refusal: Option<String>,
    /// Where it was refused (`cotp`, `session`, `acse`, `rtse`, `p1`).
    layer: &'static str,
    /// The bind was answered with an RTOAC (an MTA bind result).
    bind_accepted: bool,
}

impl X400 {
    fn refuse(&mut self, layer: &'static str, text: String, cx: &mut Cx<'_>) {
        cx.count("refusals");
        self.stage = Stage::Refused;
        self.layer = layer;
        self.refusal = Some(text);
    }

    fn tpdu(&mut self, dir: Dir, unit: &[u8], cx: &mut Cx<'_>) {
        let t = match cotp::parse_tpdu(unit) {
            Ok(t) => t,
            Err(_) => {
                cx.error("bad_tpdu");
                return;
            }
        };
        match (t, dir) {
            (Tpdu::Cr, Dir::ToServer) => {
                cx.count("cr");
                if self.stage == Stage::Start {
                    self.stage = Stage::Requested;
                }
            }
            (Tpdu::Cc, Dir::ToClient) => {
                cx.count("cc");
                if matches!(self.stage, Stage::Start | Stage::Requested) {
                    self.stage = Stage::Connected;
                }
            }
            (Tpdu::Dr { reason }, Dir::ToClient) => {
                cx.count("dr");
                if self.stage == Stage::Requested {
                    let text = format!(
                        "X.400 connection refused: COTP disconnect request ({})",
                        cotp::dr_reason(reason)
                    );
                    self.refuse("cotp", text, cx);
                }
            }
            (Tpdu::Er { cause }, _) => {
                cx.count("er");
                if self.stage != Stage::Refused {
                    let text = format!(
                        "X.400 connection rejected: COTP error TPDU ({})",
                        cotp::er_cause(cause)
                    );
                    self.refuse("cotp", text, cx);
                }
            }
            (Tpdu::Dt { eot, data }, _) => {
                cx.count("dt");
                let buf = &mut self.tsdu[dir as usize];
                if buf.len() + data.len() > MAX_TSDU {
                    buf.clear();
                    cx.error("tsdu_too_long");
                    return;
                }
                if !eot {
                    buf.extend_from_slice(data);
                    return;
                }
                if buf.is_empty() {
                    self.session(dir, data, cx);
                } else {
                    let mut whole = std::mem::take(buf);
                    whole.extend_from_slice(data);
                    self.session(dir, &whole, cx);
                }
            }
            _ => {}
        }
    }

    /// A whole session TSDU.
    fn session(&mut self, dir: Dir, tsdu: &[u8], cx: &mut Cx<'_>) {
        let Some(s) = cotp::parse_spdu(tsdu) else {
            cx.error("bad_spdu");
            return;
        };
        if dir == Dir::ToServer {
            if s.kind == spdu::CONNECT {
                cx.count("session_connects");
            }
            return;
        }
        match s.kind {
            spdu::ACCEPT | spdu::REFUSE => {}
            spdu::ABORT => {
                cx.count("session_aborts");
                if self.stage == Stage::Connected {
                    let text = "X.400 session aborted by the responder before it was accepted";
                    self.refuse("session", text.to_string(), cx);
                }
                return;
            }
            _ => return,
        }
        let (reason, data) = cotp::spdu_user_data(&s);
        let a = cotp::bind_answer(data);
        let refused = s.kind == spdu::REFUSE;
        if !refused && !a.rtorj && a.acse_result.unwrap_or(0) == 0 {
            cx.count("session_accepts");
            self.bind_accepted = a.rtoac;
            if a.rtoac {
                cx.count("binds_accepted");
            }
            self.stage = Stage::Bound;
            return;
        }
        cx.count("session_refusals");
        let (layer, text) = if let Some(e) = a.bind_error {
            (
                "p1",
                format!(
                    "X.400 MTA bind refused: {} (P1 bind error {e})",
                    cotp::mta_bind_error(e)
                ),
            )
        } else if let Some(r) = a.refuse_reason {
            (
                "rtse",
                format!(
                    "X.400 MTA bind refused: RTSE refusal ({})",
                    cotp::refuse_reason(r)
                ),
            )
        } else if a.rtorj {
            ("rtse", "X.400 MTA bind refused: RTSE refusal".to_string())
        } else if let Some(r) = a.acse_result.filter(|&r| r != 0) {
            let how = if r == 2 { "transient" } else { "permanent" };
            (
                "acse",
                format!("X.400 association rejected ({how}) by the responding MTA"),
            )
        } else {
            (
                "session",
                format!(
                    "X.400 session refused: {}",
                    cotp::rf_reason(reason.unwrap_or(0))
                ),
            )
        };
        self.refuse(layer, text, cx);
    }
}

impl Tracker for X400 {
    fn stream(&mut self, dir: Dir, bytes: &[u8], cx: &mut Cx<'_>) -> usize {
        if matches!(self.stage, Stage::Bound | Stage::Refused) {
            return bytes.len();
        }
        let mut framer = self.framers[dir as usize];
        let mut frames = self.frames;
        let used = drive(&mut framer, &mut frames, bytes, &mut |unit| {
            self.tpdu(dir, unit, cx);
            !matches!(self.stage, Stage::Bound | Stage::Refused)
        });
        self.framers[dir as usize] = framer;
        self.frames = frames;
        used
    }

    fn gap(&mut self, dir: Dir, _: &mut Cx<'_>) {
        self.framers[dir as usize].gap();
        self.tsdu[dir as usize].clear();
    }

    fn max_unit(&self) -> usize {
        MAX_TPKT
    }

    fn end(&mut self, cx: &mut EndCx<'_>) -> Option<serde_json::Value> {
        cx.stats
            .errors
            .add("garbage_bytes", self.frames.garbage_bytes);
        if self.stage == Stage::Requested && self.refusal.is_none() {
            self.layer = "cotp";
            self.refusal = Some("X.400 connection not confirmed: the CR got no CC".to_string());
            cx.stats.decoded.add("refusals", 1);
        }
        let stage = match self.stage {
            Stage::Start => return None,
            Stage::Requested if self.refusal.is_some() => "refused",
            Stage::Requested => "requested",
            Stage::Connected => "connected",
            Stage::Bound => "accepted",
            Stage::Refused => "refused",
        };
        if let Some(d) = Refusals::of(&mut cx.diagnostics) {
            d.add("sessions", 1);
            d.add("accepted", u64::from(self.stage == Stage::Bound));
            d.add("binds_accepted", u64::from(self.bind_accepted));
            if let Some(text) = &self.refusal {
                d.add("refused", 1);
                d.add(
                    match self.layer {
                        "cotp" => "refused_cotp",
                        "session" => "refused_session",
                        "acse" => "refused_acse",
                        "rtse" => "refused_rtse",
                        _ => "refused_p1",
                    },
                    1,
                );
                d.refusal(cx.flow.client, cx.flow.server, text);
            }
        }
        Some(serde_json::json!({
            "stage": stage,
            "bind_accepted": self.bind_accepted,
            "refused_by": self.refusal.as_ref().map(|_| self.layer),
            "refusal": self.refusal,
        }))
    }
}

impl TrackerKind for X400Kind {
    fn name(&self) -> &'static str {
        "x400"
    }

    fn attach(&self, _: &FlowInfo) -> Box<dyn Tracker> {
        Box::new(X400 {
            framers: [Tpkt::new(MAX_TPKT); 2],
            frames: FrameStats::default(),
            tsdu: [Vec::new(), Vec::new()],
            stage: Stage::Start,
            refusal: None,
            layer: "",
            bind_accepted: false,
        })
    }

    fn diagnostics(&self) -> Option<Box<dyn super::Diagnostics>> {
        Some(Box::new(Refusals::new("x400")))
    }
}
