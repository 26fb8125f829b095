//! POP3 and IMAP logins. `pop3` pairs each POP3 command with its reply in order (RFC 1939
//! replies come in command order; multi-line bodies and SASL exchanges are skipped) and counts a
//! `-ERR` to `USER`, `PASS`, `APOP` or `AUTH <mechanism>` as a refused login. `imap` pairs
//! `LOGIN` and `AUTHENTICATE` commands with their tagged status and counts `NO` or `BAD` as a
//! refused login. Both stop reading at `STLS`/`STARTTLS` (what follows is TLS).

use std::collections::VecDeque;

use super::framing::{drive, trim_eol, FrameStats, Lines};
use super::refusals::{line_text, Refusals};
use super::{Cx, Dir, EndCx, FlowInfo, Tracker, TrackerKind};
use crate::signal::{imap, pop3};

/// Longest line kept (RFC 1939: 512 octets; IMAP lines are longer, but login lines are short).
const MAX_LINE: usize = 8 * 1024;
/// Commands awaiting their reply (POP3 pipelining, RFC 2449), login tags awaiting theirs (IMAP).
const MAX_PENDING: usize = 16;
/// Refusal texts kept in the flow record.
const MAX_TEXTS: usize = 4;

/// What a flow's logins came to.
#[derive(Clone, Debug, Default)]
struct Logins {
    ok: u64,
    refused: u64,
    /// Other error replies (`-ERR` to other commands, `NO`/`BAD` to other tags).
    other_errors: u64,
    texts: Vec<String>,
    /// TLS started: nothing more was read.
    tls: bool,
}

impl Logins {
    fn refuse(&mut self, text: String, cx: &mut Cx<'_>) {
        cx.count("logins_refused");
        self.refused += 1;
        if self.texts.len() < MAX_TEXTS {
            self.texts.push(text);
        } else {
            cx.error("refusal_texts_cap");
        }
    }

    fn end(&self, label: &str, cx: &mut EndCx<'_>) -> Option<serde_json::Value> {
        if let Some(d) = Refusals::of(&mut cx.diagnostics) {
            d.add("flows", 1);
            d.add("logins_ok", self.ok);
            d.add("logins_refused", self.refused);
            d.add("flows_with_refusals", u64::from(self.refused > 0));
            d.add("other_error_replies", self.other_errors);
            d.add("starttls", u64::from(self.tls));
            for t in &self.texts {
                d.refusal(
                    cx.flow.client,
                    cx.flow.server,
                    &format!("{label} login refused: {t}"),
                );
            }
        }
        if self.ok + self.refused + self.other_errors == 0 && !self.tls {
            return None;
        }
        Some(serde_json::json!({
            "logins_ok": self.ok,
            "logins_refused": self.refused,
            "refusals": self.texts,
            "other_error_replies": self.other_errors,
            "starttls": self.tls,
        }))
    }
}

/// What a POP3 command expects back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pop3Cmd {
    /// USER (a refusal, but no login yet when accepted).
    User,
    /// PASS, APOP: the login.
    Login,
    /// AUTH with a mechanism: SASL continuations, then the login's answer.
    Sasl,
    /// +OK starts a multi-line body.
    Multi,
    Stls,
    Plain,
}

pub(super) struct Pop3Kind;

struct Pop3 {
    lines: [Lines; 2],
    frames: FrameStats,
    pending: VecDeque<Pop3Cmd>,
    /// The greeting is still to come (the flow was seen from its start).
    greeting: bool,
    /// Inside a multi-line body.
    body: bool,
    logins: Logins,
}

impl Pop3 {
    fn client(&mut self, line: &[u8], cx: &mut Cx<'_>) {
        if self.pending.back() == Some(&Pop3Cmd::Sasl) {
            return; // a SASL response, not a command
        }
        let Some(c) = pop3::command(line) else {
            return;
        };
        cx.count("commands");
        let kind = if c.is(b"USER") {
            Pop3Cmd::User
        } else if c.is(b"PASS") || c.is(b"APOP") {
            Pop3Cmd::Login
        } else if c.is(b"AUTH") {
            if c.has_arg {
                Pop3Cmd::Sasl
            } else {
                Pop3Cmd::Multi
            }
        } else if c.is(b"STLS") {
            Pop3Cmd::Stls
        } else if c.is(b"CAPA")
            || c.is(b"RETR")
            || c.is(b"TOP")
            || ((c.is(b"LIST") || c.is(b"UIDL")) && !c.has_arg)
        {
            Pop3Cmd::Multi
        } else {
            Pop3Cmd::Plain
        };
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
            cx.error("pending_cap");
        }
        self.pending.push_back(kind);
    }

    fn server(&mut self, line: &[u8], cx: &mut Cx<'_>) {
        if self.body {
            self.body = line != b".";
            return;
        }
        let r = pop3::reply(line);
        if self.greeting && matches!(r, pop3::Reply::Ok(_) | pop3::Reply::Err(_)) {
            self.greeting = false;
            if let pop3::Reply::Err(t) = r {
                self.logins.refuse(line_text(t), cx);
            }
            return;
        }
        let (ok, text) = match r {
            pop3::Reply::Ok(_) => (true, &[][..]),
            pop3::Reply::Err(t) => (false, t),
            pop3::Reply::Continue | pop3::Reply::Other => return,
        };
        let Some(cmd) = self.pending.pop_front() else {
            cx.error("unmatched_reply");
            return;
        };
        cx.count("replies");
        match (cmd, ok) {
            (Pop3Cmd::Login | Pop3Cmd::Sasl, true) => {
                cx.count("logins_ok");
                self.logins.ok += 1;
            }
            (Pop3Cmd::Login | Pop3Cmd::Sasl | Pop3Cmd::User, false) => {
                self.logins.refuse(line_text(text), cx)
            }
            (Pop3Cmd::Multi, true) => self.body = true,
            (Pop3Cmd::Stls, true) => self.logins.tls = true,
            (_, false) => self.logins.other_errors += 1,
            _ => {}
        }
    }
}

impl Tracker for Pop3 {
    fn stream(&mut self, dir: Dir, bytes: &[u8], cx: &mut Cx<'_>) -> usize {
        if self.logins.tls {
            return bytes.len();
        }
        let mut lines = self.lines[dir as usize];
        let mut frames = self.frames;
        let used = drive(&mut lines, &mut frames, bytes, &mut |l| {
            let l = trim_eol(l);
            match dir {
                Dir::ToServer => self.client(l, cx),
                Dir::ToClient => self.server(l, cx),
            }
            !self.logins.tls
        });
        self.lines[dir as usize] = lines;
        self.frames = frames;
        used
    }

    fn gap(&mut self, _: Dir, _: &mut Cx<'_>) {
        // Lost bytes: replies can no longer be paired; start over at the next command.
        self.pending.clear();
        self.greeting = false;
        self.body = false;
    }

    fn max_unit(&self) -> usize {
        MAX_LINE
    }

    fn end(&mut self, cx: &mut EndCx<'_>) -> Option<serde_json::Value> {
        cx.stats.errors.add("overlong_lines", self.frames.oversize);
        self.logins.end("POP3", cx)
    }
}

impl TrackerKind for Pop3Kind {
    fn name(&self) -> &'static str {
        "pop3"
    }

    fn attach(&self, _: &FlowInfo) -> Box<dyn Tracker> {
        Box::new(Pop3 {
            lines: [Lines::new(MAX_LINE); 2],
            frames: FrameStats::default(),
            pending: VecDeque::new(),
            greeting: true,
            body: false,
            logins: Logins::default(),
        })
    }

    fn diagnostics(&self) -> Option<Box<dyn super::Diagnostics>> {
        Some(Box::new(Refusals::new("pop3")))
    }
}

pub(super) struct ImapKind;

struct Imap {
    lines: [Lines; 2],
    frames: FrameStats,
    /// Tags of commands awaiting their tagged status, with what the command was.
    pending: VecDeque<(Vec<u8>, ImapCmd)>,
    logins: Logins,
}

/// What an IMAP command's tagged status means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ImapCmd {
    /// LOGIN, AUTHENTICATE.
    Login,
    StartTls,
    Other,
}

impl Imap {
    fn client(&mut self, line: &[u8], cx: &mut Cx<'_>) {
        let Some(c) = imap::command(line) else {
            return;
        };
        let kind = if c.name.eq_ignore_ascii_case(b"LOGIN")
            || c.name.eq_ignore_ascii_case(b"AUTHENTICATE")
        {
            cx.count("login_commands");
            ImapCmd::Login
        } else if c.name.eq_ignore_ascii_case(b"STARTTLS") {
            ImapCmd::StartTls
        } else {
            ImapCmd::Other
        };
        cx.count("commands");
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
            cx.error("pending_cap");
        }
        self.pending
            .push_back((c.tag.iter().take(64).copied().collect(), kind));
    }

    fn server(&mut self, line: &[u8], cx: &mut Cx<'_>) {
        let Some((tag, status, text)) = imap::tagged(line) else {
            return;
        };
        // Only the tag of a command seen answers it (a message body's line may look tagged).
        let Some(i) = self.pending.iter().position(|(t, _)| t == tag) else {
            return;
        };
        let Some((_, cmd)) = self.pending.remove(i) else {
            return;
        };
        match (cmd, status) {
            (ImapCmd::Login, imap::Status::Ok) => {
                cx.count("logins_ok");
                self.logins.ok += 1;
            }
            (ImapCmd::Login, _) => self.logins.refuse(line_text(text), cx),
            (ImapCmd::StartTls, imap::Status::Ok) => self.logins.tls = true,
            (_, imap::Status::Ok) => {}
            (_, _) => self.logins.other_errors += 1,
        }
    }
}

impl Tracker for Imap {
    fn stream(&mut self, dir: Dir, bytes: &[u8], cx: &mut Cx<'_>) -> usize {
        if self.logins.tls {
            return bytes.len();
        }
        let mut lines = self.lines[dir as usize];
        let mut frames = self.frames;
        let used = drive(&mut lines, &mut frames, bytes, &mut |l| {
            let l = trim_eol(l);
            match dir {
                Dir::ToServer => self.client(l, cx),
                Dir::ToClient => self.server(l, cx),
            }
            !self.logins.tls
        });
        self.lines[dir as usize] = lines;
        self.frames = frames;
        used
    }

    fn max_unit(&self) -> usize {
        MAX_LINE
    }

    fn end(&mut self, cx: &mut EndCx<'_>) -> Option<serde_json::Value> {
        cx.stats.errors.add("overlong_lines", self.frames.oversize);
        self.logins.end("IMAP", cx)
    }
}

impl TrackerKind for ImapKind {
    fn name(&self) -> &'static str {
        "imap"
    }

    fn attach(&self, _: &FlowInfo) -> Box<dyn Tracker> {
        Box::new(Imap {
            lines: [Lines::new(MAX_LINE); 2],
            frames: FrameStats::default(),
            pending: VecDeque::new(),
            logins: Logins::default(),
        })
    }

    fn diagnostics(&self) -> Option<Box<dyn super::Diagnostics>> {
        Some(Box::new(Refusals::new("imap")))
    }
}
