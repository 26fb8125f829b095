//! SMTP (tcp/25 and any service the catalogue tracks as `smtp`): follows the dialogue both ways,
//! matches pipelined replies to commands in order, skips message bodies and binary chunks (DATA
//! to its end-of-data line, BDAT and XEXCH50 by length), notes STARTTLS and whether a TLS
//! ServerHello followed, and gives each session one verdict (see [`Verdict`]).

use std::collections::VecDeque;

use super::counts::SmallCounts;
use super::framing::{drive, trim_eol, FrameStats, Lines};
use super::smtp_diag::{SmtpDiag, SmtpProblem};
use super::{push_first_alone, Cx, Dir, EndCx, FlowInfo, Limits, Tracker, TrackerKind};
use crate::flow::{EndReason, Outcome};
use crate::signal::smtp::{self, Verb};

/// Longest command or reply line kept (RFC 5321 allows 512; Exchange's EHLO lines are short).
const MAX_LINE: usize = 2048;
/// Commands awaiting their reply (pipelining).
const MAX_PENDING: usize = 64;
/// Extension lines kept per session.
const MAX_EXTENSIONS: usize = 32;
/// Bytes of reply text and addresses kept.
const MAX_TEXT: usize = 160;

/// How a session ended, in the order the rules are tried (see `docs/json-schema.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    OneSided,
    NoBanner,
    Tls,
    TlsFailed,
    GreetingRefused,
    Rejected,
    Deferred,
    AuthFailed,
    Cut,
    Incomplete,
    Delivered,
    NoMail,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::OneSided => "one_sided",
            Verdict::NoBanner => "no_banner",
            Verdict::Tls => "tls",
            Verdict::TlsFailed => "tls_failed",
            Verdict::GreetingRefused => "greeting_refused",
            Verdict::Rejected => "rejected",
            Verdict::Deferred => "deferred",
            Verdict::AuthFailed => "auth_failed",
            Verdict::Cut => "cut",
            Verdict::Incomplete => "incomplete",
            Verdict::Delivered => "delivered",
            Verdict::NoMail => "no_mail",
        }
    }
}

/// A reply: its code and its first line's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl Reply {
    /// `{"code", "text"}`, with `"enhanced"` when the text starts with an RFC 3463 status code.
    pub fn json(&self) -> serde_json::Value {
        match self.enhanced() {
            Some(e) => serde_json::json!({ "code": self.code, "text": self.text, "enhanced": e }),
            None => serde_json::json!({ "code": self.code, "text": self.text }),
        }
    }

    /// The RFC 3463 enhanced status code the text starts with (`5.7.1`), when its class agrees
    /// with the reply code's first digit.
    pub fn enhanced(&self) -> Option<&str> {
        let word = self.text.split(' ').next()?;
        let mut parts = word.split('.');
        let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
        let num = |s: &str| (1..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
        let ok = parts.next().is_none()
            && matches!(class, "2" | "4" | "5")
            && class.parse::<u16>().ok() == Some(self.code / 100)
            && num(subject)
            && num(detail);
        ok.then_some(word)
    }

    /// `550 5.7.1 Unable to relay`.
    pub fn line(&self) -> String {
        format!("{} {}", self.code, self.text)
            .trim_end()
            .to_string()
    }
}

/// What the client is sending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Client {
    Commands,
    /// A message body, up to the line `.`.
    Data,
    /// Binary bytes (BDAT chunk, XEXCH50 blob) still to skip.
    Skip(u64),
    /// The next line answers a 334 (AUTH / X-EXPS exchange), not a command.
    AuthLine,
    /// After STARTTLS: encrypted.
    Tls,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    verb: Verb,
    /// The end of a DATA body (the reply to the `.` line).
    data_end: bool,
    /// BDAT ... LAST.
    last: bool,
    rcpt: usize,
}

#[derive(Clone, Debug, Default)]
struct Transaction {
    mail_from: String,
    rcpt: Vec<(String, Option<u16>)>,
    data_reply: Option<Reply>,
    outcome: &'static str,
}

impl Transaction {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "mail_from": self.mail_from,
            "rcpt": self.rcpt.iter().map(|(to, code)| serde_json::json!({"to": to, "code": code})).collect::<Vec<_>>(),
            "data_reply": self.data_reply.as_ref().map(Reply::json),
            "outcome": self.outcome,
        })
    }
}

/// Reply lines gathered until the last one.
#[derive(Clone, Debug)]
struct Partial {
    code: u16,
    text: String,
    lines: u32,
}

/// The replies of a session that only refusals and logins set: 128 bytes that most sessions
/// never use, so they are not in every session's tracker.
#[derive(Debug, Default)]
struct Rare {
    first_5xx: Option<Reply>,
    first_4xx: Option<Reply>,
    auth_failed: Option<Reply>,
    /// The final reply to the last AUTH / X-EXPS exchange.
    auth_reply: Option<Reply>,
}

/// What a session without refusals or logins has.
static NOTHING_RARE: Rare = Rare {
    first_5xx: None,
    first_4xx: None,
    auth_failed: None,
    auth_reply: None,
};

pub(super) struct SmtpKind(pub Limits);

impl TrackerKind for SmtpKind {
    fn name(&self) -> &'static str {
        "smtp"
    }

    fn attach(&self, _: &FlowInfo) -> Box<dyn Tracker> {
        Box::new(Smtp::new(self.0.per_flow))
    }

    fn diagnostics(&self) -> Option<Box<dyn super::Diagnostics>> {
        Some(Box::new(SmtpDiag::with_cap(self.0.problems)))
    }
}

pub(super) struct Smtp {
    /// Transactions kept, and recipients per transaction.
    max_list: usize,
    lines: [Lines; 2],
    frames: FrameStats,
    client: Client,
    /// After a 220 to STARTTLS: the server's bytes are TLS.
    server_tls: bool,
    /// A mode change inside [`drive`]: stop framing lines.
    switched: bool,
    pending: VecDeque<Pending>,
    partial: Option<Partial>,
    /// A byte of either direction was lost (or the capture joined late).
    joined_late: bool,
    banner_done: bool,
    banner: Option<Reply>,
    helo: Option<String>,
    extensions: Vec<String>,
    starttls_offered: bool,
    starttls_requested: bool,
    starttls_reply: Option<u16>,
    tls_seen: bool,
    /// Commands by verb (its index in `Verb::ALL`): a session uses about six of them.
    commands: SmallCounts<u8, 6>,
    /// Replies by code: a session sees about four codes.
    replies: SmallCounts<u16, 4>,
    transactions: Vec<Transaction>,
    transactions_dropped: u32,
    /// The transaction MAIL opened, not yet ended (index into `transactions`, or past it when
    /// the cap dropped it).
    open: Option<usize>,
    last_command: Option<Verb>,
    last_reply: Option<Reply>,
    /// Replies most sessions never get, in an allocation of their own once one comes.
    rare: Option<Box<Rare>>,
    quit_replied: bool,
    bytes: [u64; 2],
    undecodable: u32,
}

impl Smtp {
    pub(super) fn new(max_list: usize) -> Smtp {
        Smtp {
            max_list,
            lines: [Lines::new(MAX_LINE), Lines::new(MAX_LINE)],
            frames: FrameStats::default(),
            client: Client::Commands,
            server_tls: false,
            switched: false,
            pending: VecDeque::new(),
            partial: None,
            joined_late: false,
            banner_done: false,
            banner: None,
            helo: None,
            extensions: Vec::new(),
            starttls_offered: false,
            starttls_requested: false,
            starttls_reply: None,
            tls_seen: false,
            commands: SmallCounts::new(),
            replies: SmallCounts::new(),
            transactions: Vec::new(),
            transactions_dropped: 0,
            open: None,
            last_command: None,
            last_reply: None,
            rare: None,
            quit_replied: false,
            bytes: [0; 2],
            undecodable: 0,
        }
    }

    fn set_client(&mut self, mode: Client) {
        if self.client != mode {
            self.client = mode;
            self.switched = true;
        }
    }

    fn client_line(&mut self, line: &[u8], cx: &mut Cx<'_>) {
        match self.client {
            Client::Data => {
                if line == b"." {
                    self.push(
                        Pending {
                            verb: Verb::Data,
                            data_end: true,
                            last: true,
                            rcpt: 0,
                        },
                        cx,
                    );
                    self.set_client(Client::Commands);
                }
                return;
            }
            Client::AuthLine => {
                self.client = Client::Commands;
                self.push(
                    Pending {
                        verb: Verb::Auth,
                        data_end: false,
                        last: false,
                        rcpt: 0,
                    },
                    cx,
                );
                return;
            }
            Client::Skip(_) | Client::Tls => return,
            Client::Commands => {}
        }
        let Ok(cmd) = smtp::parse_command(line) else {
            self.undecodable += 1;
            cx.error("undecodable");
            return;
        };
        cx.count("commands");
        if let Ok(i) = u8::try_from(cmd.verb.index()) {
            self.commands.add(i);
        }
        self.last_command = Some(cmd.verb);
        let mut p = Pending {
            verb: cmd.verb,
            data_end: false,
            last: false,
            rcpt: 0,
        };
        match cmd.verb {
            Verb::Helo | Verb::Ehlo => self.helo = Some(text(cmd.arg)),
            Verb::Mail => self.mail(cmd.arg, cx),
            Verb::Rcpt => p.rcpt = self.rcpt(cmd.arg, cx),
            // Optimistic: a body follows a 354, and a refused DATA switches back.
            Verb::Data => self.set_client(Client::Data),
            Verb::Bdat => {
                p.last = smtp::bdat_last(cmd.arg);
                match smtp::length_arg(cmd.arg) {
                    Some(0) | None => {}
                    Some(n) => self.set_client(Client::Skip(n)),
                }
            }
            Verb::XExch50 => {
                if let Some(n) = smtp::length_arg(cmd.arg).filter(|&n| n > 0) {
                    self.set_client(Client::Skip(n));
                }
            }
            Verb::StartTls => self.starttls_requested = true,
            _ => {}
        }
        self.push(p, cx);
    }

    fn push(&mut self, p: Pending, cx: &mut Cx<'_>) {
        if self.pending.len() >= MAX_PENDING {
            cx.error("pending_cap");
            return;
        }
        self.pending.push_back(p);
    }

    fn mail(&mut self, arg: &[u8], cx: &mut Cx<'_>) {
        if self.transactions.len() >= self.max_list {
            self.transactions_dropped += 1;
            cx.error("transactions_cap");
            self.open = Some(usize::MAX);
            return;
        }
        push_first_alone(
            &mut self.transactions,
            Transaction {
                mail_from: text(smtp::path_arg(arg, b"FROM:")),
                outcome: "open",
                ..Transaction::default()
            },
        );
        self.open = Some(self.transactions.len() - 1);
    }

    fn rcpt(&mut self, arg: &[u8], cx: &mut Cx<'_>) -> usize {
        let max = self.max_list;
        let Some(t) = self.open.and_then(|i| self.transactions.get_mut(i)) else {
            return usize::MAX;
        };
        if t.rcpt.len() >= max {
            cx.error("rcpt_cap");
            return usize::MAX;
        }
        push_first_alone(&mut t.rcpt, (text(smtp::path_arg(arg, b"TO:")), None));
        t.rcpt.len() - 1
    }

    fn server_line(&mut self, line: &[u8], cx: &mut Cx<'_>) {
        let r = match smtp::parse_reply(line) {
            Ok(r) => r,
            Err(_) => {
                self.undecodable += 1;
                cx.error("undecodable");
                return;
            }
        };
        let ehlo = self.banner_done
            && self.pending.front().is_some_and(|p| p.verb == Verb::Ehlo)
            && r.code == 250;
        match &mut self.partial {
            Some(p) => {
                p.lines += 1;
                if ehlo {
                    self.extension(r.text);
                }
            }
            None => {
                self.partial = Some(Partial {
                    code: r.code,
                    text: text(r.text),
                    lines: 1,
                });
            }
        }
        if r.last {
            if let Some(p) = self.partial.take() {
                self.reply(
                    Reply {
                        code: p.code,
                        text: p.text,
                    },
                    cx,
                );
            }
        }
    }

    fn extension(&mut self, kw: &[u8]) {
        if self.extensions.len() < MAX_EXTENSIONS {
            let kw = text(kw);
            if ehlo_keyword(&kw).eq_ignore_ascii_case("STARTTLS") {
                self.starttls_offered = true;
            }
            self.extensions.push(kw);
        }
    }

    fn reply(&mut self, r: Reply, cx: &mut Cx<'_>) {
        cx.count("replies");
        self.replies.add(r.code);
        // The last reply's text reuses its allocation: one a session, not one a reply.
        match &mut self.last_reply {
            Some(last) => {
                last.code = r.code;
                last.text.clone_from(&r.text);
            }
            None => self.last_reply = Some(r.clone()),
        }
        if !self.banner_done {
            self.banner_done = true;
            if !self.joined_late {
                self.banner = Some(r);
                return;
            }
        }
        let Some(p) = self.pending.pop_front() else {
            cx.error("unmatched_reply");
            return;
        };
        let code = r.code;
        match p.verb {
            Verb::Mail if code >= 400 => {
                self.refused(&r);
                self.end_transaction(if code >= 500 { "rejected" } else { "deferred" }, None);
            }
            Verb::Rcpt => {
                if let Some(c) = self
                    .open
                    .and_then(|i| self.transactions.get_mut(i))
                    .and_then(|t| t.rcpt.get_mut(p.rcpt))
                {
                    c.1 = Some(code);
                }
                if code >= 400 {
                    self.refused(&r);
                }
            }
            Verb::Data if p.data_end => {
                let outcome = match code {
                    200..=299 => "delivered",
                    500.. => "rejected",
                    _ => "deferred",
                };
                if code >= 400 {
                    self.refused(&r);
                }
                self.end_transaction(outcome, Some(r));
            }
            Verb::Data if code != 354 => {
                if self.client == Client::Data {
                    self.set_client(Client::Commands);
                }
                if code >= 400 {
                    self.refused(&r);
                    let outcome = if code >= 500 { "rejected" } else { "deferred" };
                    self.end_transaction(outcome, Some(r));
                }
            }
            Verb::Bdat if code >= 400 || p.last => {
                if code >= 400 {
                    self.refused(&r);
                }
                let outcome = match code {
                    200..=299 => "delivered",
                    500.. => "rejected",
                    _ => "deferred",
                };
                self.end_transaction(outcome, Some(r));
            }
            Verb::XExch50 if code != 354 => {
                if matches!(self.client, Client::Skip(_)) {
                    self.set_client(Client::Commands);
                }
            }
            Verb::Rset => self.end_transaction("reset", None),
            Verb::StartTls => {
                self.starttls_reply = Some(code);
                if code == 220 {
                    self.set_client(Client::Tls);
                    self.server_tls = true;
                    self.switched = true;
                }
            }
            Verb::Auth | Verb::XExps => match code {
                334 => self.set_client(Client::AuthLine),
                200..=299 => {
                    let rare = self.rare_mut();
                    rare.auth_failed = None;
                    rare.auth_reply = Some(r);
                }
                500.. => {
                    let rare = self.rare_mut();
                    rare.auth_failed = Some(r.clone());
                    rare.auth_reply = Some(r);
                }
                _ => self.rare_mut().auth_reply = Some(r),
            },
            Verb::Quit => self.quit_replied = true,
            _ => {}
        }
    }

    fn rare(&self) -> &Rare {
        self.rare.as_deref().unwrap_or(&NOTHING_RARE)
    }

    fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    fn refused(&mut self, r: &Reply) {
        let rare = self.rare_mut();
        let slot = if r.code >= 500 {
            &mut rare.first_5xx
        } else {
            &mut rare.first_4xx
        };
        if slot.is_none() {
            *slot = Some(r.clone());
        }
    }

    fn end_transaction(&mut self, outcome: &'static str, data_reply: Option<Reply>) {
        if let Some(t) = self.open.take().and_then(|i| self.transactions.get_mut(i)) {
            t.outcome = outcome;
            if data_reply.is_some() {
                t.data_reply = data_reply;
            }
        }
    }

    fn tls_bytes(&mut self, bytes: &[u8]) {
        if !self.tls_seen && smtp::is_server_hello(bytes) {
            self.tls_seen = true;
        }
    }

    /// The session's verdict (`None`: the connection never opened).
    pub(super) fn verdict(&self, cx: &EndCx<'_>) -> Option<Verdict> {
        match cx.outcome {
            Outcome::Established => {}
            Outcome::OneWay => return Some(Verdict::OneSided),
            _ => return None,
        }
        let ended = cx.fin.iter().any(|&f| f) || cx.rst.iter().any(|&r| r);
        let in_transaction = self.open.is_some()
            || matches!(self.client, Client::Data | Client::Skip(_))
            || self
                .pending
                .iter()
                .any(|p| p.data_end || matches!(p.verb, Verb::Mail | Verb::Rcpt | Verb::Bdat));
        let delivered = self.transactions.iter().any(|t| t.outcome == "delivered");
        let v = if cx.packets[0] == 0 || cx.packets[1] == 0 {
            Verdict::OneSided
        } else if self.bytes[1] == 0 && !cx.midstream {
            Verdict::NoBanner
        } else if self.starttls_reply == Some(220) {
            if self.tls_seen {
                Verdict::Tls
            } else {
                Verdict::TlsFailed
            }
        } else if self.banner.as_ref().is_some_and(|b| b.code >= 400) {
            Verdict::GreetingRefused
        } else if self.rare().first_5xx.is_some() {
            Verdict::Rejected
        } else if self.rare().first_4xx.is_some() {
            Verdict::Deferred
        } else if self.rare().auth_failed.is_some() && self.transactions.is_empty() {
            Verdict::AuthFailed
        } else if in_transaction && ended {
            Verdict::Cut
        } else if !ended && !self.quit_replied && (cx.why == EndReason::Flushed || in_transaction) {
            Verdict::Incomplete
        } else if delivered {
            Verdict::Delivered
        } else {
            Verdict::NoMail
        };
        Some(v)
    }

    /// The reply that decided a verdict.
    fn deciding(&self, v: Verdict) -> Option<&Reply> {
        match v {
            Verdict::GreetingRefused => self.banner.as_ref(),
            Verdict::Rejected => self.rare().first_5xx.as_ref(),
            Verdict::Deferred => self.rare().first_4xx.as_ref(),
            Verdict::AuthFailed => self.rare().auth_failed.as_ref(),
            Verdict::NoBanner | Verdict::OneSided => None,
            _ => self.last_reply.as_ref(),
        }
    }

    /// Commands by verb, in `Verb::ALL` order.
    fn commands(&self) -> impl Iterator<Item = (Verb, u32)> + '_ {
        self.commands
            .iter()
            .filter_map(|(i, n)| Some((*Verb::ALL.get(usize::from(i))?, n)))
    }

    fn commands_json(&self) -> serde_json::Map<String, serde_json::Value> {
        self.commands()
            .map(|(v, n)| (v.name().to_string(), n.into()))
            .collect()
    }

    fn record(&self, v: Verdict) -> serde_json::Value {
        serde_json::json!({
            "verdict": v.as_str(),
            "banner": self.banner.as_ref().map(Reply::json),
            "helo": self.helo,
            "extensions": self.extensions,
            "starttls": {
                "offered": self.starttls_offered,
                "requested": self.starttls_requested,
                "reply": self.starttls_reply,
                "tls_seen": self.tls_seen,
            },
            "commands": self.commands_json(),
            "replies": self.replies.iter().map(|(c, n)| (c.to_string(), serde_json::Value::from(n))).collect::<serde_json::Map<_, _>>(),
            "transactions": self.transactions.iter().map(Transaction::json).collect::<Vec<_>>(),
            "transactions_not_listed": self.transactions_dropped,
            "last_command": self.last_command.map(Verb::name),
            "last_reply": self.last_reply.as_ref().map(Reply::json),
            "reply": self.deciding(v).map(Reply::json),
            "auth_reply": self.rare().auth_reply.as_ref().map(Reply::json),
        })
    }

    fn fold(&self, v: Verdict, cx: &mut EndCx<'_>) {
        let Some(d) = cx
            .diagnostics
            .as_mut()
            .and_then(|d| d.as_any_mut().downcast_mut::<SmtpDiag>())
        else {
            return;
        };
        d.sessions += 1;
        *d.verdicts.entry(v.as_str()).or_insert(0) += 1;
        for (code, n) in self.replies.iter() {
            *d.replies.entry(code).or_insert(0) += u64::from(n);
        }
        for (verb, n) in self.commands() {
            *d.commands.entry(verb.name()).or_insert(0) += u64::from(n);
        }
        for (i, e) in self.extensions.iter().enumerate() {
            let kw = ehlo_keyword(e);
            // Each keyword once a session (the list is short: at most MAX_EXTENSIONS).
            if !self.extensions[..i].iter().any(|p| ehlo_keyword(p) == kw) {
                d.extension(kw);
            }
        }
        if v != Verdict::Delivered {
            let t = self.transactions.last();
            let flow = cx.flow;
            let first_ts = cx.first_ts;
            d.problem(|| SmtpProblem {
                client: flow.client.to_string(),
                server: flow.server.to_string(),
                first_ts,
                verdict: v.as_str(),
                reply: self.deciding(v).cloned(),
                mail_from: t.map(|t| t.mail_from.clone()),
                rcpt: t
                    .map(|t| t.rcpt.iter().map(|(to, _)| to.clone()).collect())
                    .unwrap_or_default(),
            });
        }
    }
}

/// Lossy text of at most [`MAX_TEXT`] bytes, control characters shown as `.` (also LDAP's).
pub(super) fn text(b: &[u8]) -> String {
    let b = b.get(..MAX_TEXT).unwrap_or(b);
    // The usual reply is printable ASCII: its bytes are its text, copied in one allocation of
    // their length (a character at a time, as below, cost about 2 000 instructions a reply).
    if b.iter().all(|&c| matches!(c, b' '..=b'~')) {
        if let Ok(s) = std::str::from_utf8(b) {
            return s.to_owned();
        }
    }
    String::from_utf8_lossy(b)
        .chars()
        .map(|c| if c.is_control() { '.' } else { c })
        .collect()
}

impl Tracker for Smtp {
    fn stream(&mut self, dir: Dir, bytes: &[u8], cx: &mut Cx<'_>) -> usize {
        let mut pos = 0usize;
        loop {
            let rest = bytes.get(pos..).unwrap_or_default();
            if rest.is_empty() {
                return pos;
            }
            match dir {
                Dir::ToServer => match self.client {
                    Client::Tls => {
                        self.bytes[0] += rest.len() as u64;
                        return bytes.len();
                    }
                    Client::Skip(n) => {
                        let k = n.min(rest.len() as u64);
                        self.bytes[0] += k;
                        pos += k as usize;
                        self.client = if k == n {
                            Client::Commands
                        } else {
                            Client::Skip(n - k)
                        };
                        continue;
                    }
                    _ => {}
                },
                Dir::ToClient if self.server_tls => {
                    self.bytes[1] += rest.len() as u64;
                    self.tls_bytes(rest);
                    return bytes.len();
                }
                Dir::ToClient => {}
            }
            self.switched = false;
            let d = dir as usize;
            let mut framer = self.lines[d];
            let mut frames = self.frames;
            let used = drive(&mut framer, &mut frames, rest, &mut |line| {
                let line = trim_eol(line);
                match dir {
                    Dir::ToServer => self.client_line(line, cx),
                    Dir::ToClient => self.server_line(line, cx),
                }
                !self.switched
            });
            self.lines[d] = framer;
            self.frames = frames;
            self.bytes[d] += used.min(rest.len()) as u64;
            pos = pos.saturating_add(used);
            if !self.switched || pos >= bytes.len() {
                return pos;
            }
        }
    }

    fn gap(&mut self, dir: Dir, cx: &mut Cx<'_>) {
        let _ = cx;
        if let Some(l) = self.lines.get_mut(dir as usize) {
            super::framing::Framer::gap(l);
        }
        if dir == Dir::ToClient {
            self.partial = None;
        }
        if !self.banner_done {
            self.joined_late = true;
        }
    }

    fn max_unit(&self) -> usize {
        MAX_LINE * 2
    }

    fn end(&mut self, cx: &mut EndCx<'_>) -> Option<serde_json::Value> {
        let v = self.verdict(cx)?;
        if self.undecodable > 0 {
            cx.stats.decoded.add("sessions_with_undecodable", 1);
        }
        self.fold(v, cx);
        cx.want_record.then(|| self.record(v))
    }
}

/// An EHLO line's keyword: its first word.
fn ehlo_keyword(line: &str) -> &str {
    line.split(' ').next().unwrap_or_default()
}

/// The SMTP tracker's size (`track::tests::per_flow_state_stays_small`).
#[cfg(test)]
pub(super) fn size() -> (&'static str, usize) {
    ("Smtp", std::mem::size_of::<Smtp>())
}
