//! SMTP lines (RFC 5321): a server reply line (three-digit code, `-` or space, text) and a
//! client command line (verb, argument), with Exchange 2000's own verbs (X-EXPS, XEXCH50,
//! X-LINK2STATE). Pure functions over one line without its terminator.

/// What is wrong with a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("reply line without a three-digit code")]
    NoCode,
    #[error("reply code out of range")]
    BadCode,
    #[error("command line without a verb")]
    NoVerb,
}

/// One line of a server reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyLine<'a> {
    /// 200..=599 (and 1xx, 6xx as sent; RFC 5321 4.2 allows 2..5 as first digit).
    pub code: u16,
    /// The last line of the reply (a space or nothing after the code, not `-`).
    pub last: bool,
    /// What follows the separator.
    pub text: &'a [u8],
}

/// Parses a reply line: `250-PIPELINING`, `550 5.7.1 Unable to relay`, `354`.
pub fn parse_reply(line: &[u8]) -> Result<ReplyLine<'_>, Error> {
    let (digits, rest) = match line {
        [a, b, c, rest @ ..] if [a, b, c].iter().all(|d| d.is_ascii_digit()) => {
            ([*a, *b, *c], rest)
        }
        _ => return Err(Error::NoCode),
    };
    if !(b'2'..=b'5').contains(&digits[0]) {
        return Err(Error::BadCode);
    }
    let code = digits
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    match rest {
        [] => Ok(ReplyLine {
            code,
            last: true,
            text: rest,
        }),
        [b'-', text @ ..] => Ok(ReplyLine {
            code,
            last: false,
            text,
        }),
        [b' ', text @ ..] => Ok(ReplyLine {
            code,
            last: true,
            text,
        }),
        _ => Err(Error::NoCode),
    }
}

/// The client commands exflow tells apart; anything else is [`Verb::Other`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verb {
    Helo,
    Ehlo,
    Mail,
    Rcpt,
    Data,
    Bdat,
    Rset,
    Quit,
    Noop,
    Vrfy,
    Expn,
    Help,
    StartTls,
    Auth,
    XExps,
    XExch50,
    XLink2State,
    Turn,
    Atrn,
    Etrn,
    Other,
}

impl Verb {
    /// Every verb, in [`Verb::index`] order.
    pub const ALL: [Verb; 21] = [
        Verb::Helo,
        Verb::Ehlo,
        Verb::Mail,
        Verb::Rcpt,
        Verb::Data,
        Verb::Bdat,
        Verb::Rset,
        Verb::Quit,
        Verb::Noop,
        Verb::Vrfy,
        Verb::Expn,
        Verb::Help,
        Verb::StartTls,
        Verb::Auth,
        Verb::XExps,
        Verb::XExch50,
        Verb::XLink2State,
        Verb::Turn,
        Verb::Atrn,
        Verb::Etrn,
        Verb::Other,
    ];

    /// The verb as sent (upper case); `OTHER` for the rest.
    pub fn name(self) -> &'static str {
        match self {
            Verb::Helo => "HELO",
            Verb::Ehlo => "EHLO",
            Verb::Mail => "MAIL",
            Verb::Rcpt => "RCPT",
            Verb::Data => "DATA",
            Verb::Bdat => "BDAT",
            Verb::Rset => "RSET",
            Verb::Quit => "QUIT",
            Verb::Noop => "NOOP",
            Verb::Vrfy => "VRFY",
            Verb::Expn => "EXPN",
            Verb::Help => "HELP",
            Verb::StartTls => "STARTTLS",
            Verb::Auth => "AUTH",
            Verb::XExps => "X-EXPS",
            Verb::XExch50 => "XEXCH50",
            Verb::XLink2State => "X-LINK2STATE",
            Verb::Turn => "TURN",
            Verb::Atrn => "ATRN",
            Verb::Etrn => "ETRN",
            Verb::Other => "OTHER",
        }
    }

    /// Position in [`Verb::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    fn from_word(w: &[u8]) -> Verb {
        Verb::ALL
            .iter()
            .copied()
            .find(|v| *v != Verb::Other && v.name().as_bytes().eq_ignore_ascii_case(w))
            .unwrap_or(Verb::Other)
    }
}

/// One client command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command<'a> {
    pub verb: Verb,
    /// What follows the verb and its space (may be empty).
    pub arg: &'a [u8],
}

/// Parses a command line: `MAIL FROM:<a@b>`, `XEXCH50 1024 2`. A verb is 1 to 16 letters, digits
/// or `-` (X-LINK2STATE).
pub fn parse_command(line: &[u8]) -> Result<Command<'_>, Error> {
    let end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    let (word, rest) = line.split_at(end);
    if word.is_empty()
        || word.len() > 16
        || !word.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
    {
        return Err(Error::NoVerb);
    }
    let arg = rest.strip_prefix(b" ").unwrap_or(rest);
    Ok(Command {
        verb: Verb::from_word(word),
        arg,
    })
}

/// The address of `MAIL FROM:<a>` / `RCPT TO:<a>` (`prefix` is `FROM:` or `TO:`): what is between
/// the angle brackets, or the first word when there are none.
pub fn path_arg<'a>(arg: &'a [u8], prefix: &[u8]) -> &'a [u8] {
    let rest = match arg.get(..prefix.len()) {
        Some(p) if p.eq_ignore_ascii_case(prefix) => arg.get(prefix.len()..).unwrap_or_default(),
        _ => arg,
    };
    let rest = trim_start(rest);
    if let Some(inner) = rest.strip_prefix(b"<") {
        let end = inner.iter().position(|&b| b == b'>').unwrap_or(inner.len());
        return inner.get(..end).unwrap_or_default();
    }
    let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    rest.get(..end).unwrap_or_default()
}

fn trim_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| **c == b' ').count();
    b.get(n..).unwrap_or_default()
}

/// The first decimal number of `arg` (BDAT's and XEXCH50's length), if it fits.
pub fn length_arg(arg: &[u8]) -> Option<u64> {
    let arg = trim_start(arg);
    let end = arg
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(arg.len());
    let digits = arg.get(..end).filter(|d| !d.is_empty() && d.len() <= 18)?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// BDAT's `LAST` flag.
pub fn bdat_last(arg: &[u8]) -> bool {
    arg.split(|&b| b == b' ')
        .any(|w| w.eq_ignore_ascii_case(b"LAST"))
}

/// A TLS record carrying a ServerHello at the front of `bytes` (handshake record, type 2).
pub fn is_server_hello(bytes: &[u8]) -> bool {
    matches!(bytes, [0x16, 3, _, _, _, 2, ..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_lines() {
        let r = parse_reply(b"550 5.7.1 Unable to relay").unwrap();
        assert_eq!(
            (r.code, r.last, r.text),
            (550, true, &b"5.7.1 Unable to relay"[..])
        );
        let r = parse_reply(b"250-PIPELINING").unwrap();
        assert_eq!((r.code, r.last, r.text), (250, false, &b"PIPELINING"[..]));
        assert!(parse_reply(b"354").unwrap().last);
        assert_eq!(parse_reply(b"hello"), Err(Error::NoCode));
        assert_eq!(parse_reply(b"25"), Err(Error::NoCode));
        assert_eq!(parse_reply(b"250x"), Err(Error::NoCode));
        assert_eq!(parse_reply(b"999 no"), Err(Error::BadCode));
    }

    #[test]
    fn command_lines() {
        let c = parse_command(b"MAIL FROM:<a@b.example> SIZE=10").unwrap();
        assert_eq!(c.verb, Verb::Mail);
        assert_eq!(path_arg(c.arg, b"FROM:"), b"a@b.example");
        let c = parse_command(b"rcpt to: <x@y>").unwrap();
        assert_eq!((c.verb, path_arg(c.arg, b"TO:")), (Verb::Rcpt, &b"x@y"[..]));
        let c = parse_command(b"XEXCH50 1024 2").unwrap();
        assert_eq!((c.verb, length_arg(c.arg)), (Verb::XExch50, Some(1024)));
        let c = parse_command(b"BDAT 10 LAST").unwrap();
        assert!(bdat_last(c.arg) && length_arg(c.arg) == Some(10));
        assert_eq!(
            parse_command(b"X-LINK2STATE LAST CHUNK").unwrap().verb,
            Verb::XLink2State
        );
        assert_eq!(parse_command(b"FOOBAR").unwrap().verb, Verb::Other);
        assert_eq!(parse_command(b"\x16\x03\x01"), Err(Error::NoVerb));
        assert_eq!(parse_command(b""), Err(Error::NoVerb));
        assert_eq!(length_arg(b"99999999999999999999"), None, "too long");
        for v in Verb::ALL {
            assert_eq!(Verb::ALL[v.index()], v);
        }
    }

    #[test]
    fn server_hello() {
        assert!(is_server_hello(&[0x16, 3, 1, 0, 80, 2, 0]));
        assert!(!is_server_hello(&[0x16, 3, 1, 0, 80, 1]));
        assert!(!is_server_hello(b"220 ready"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(line in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = parse_reply(&line);
            if let Ok(c) = parse_command(&line) {
                let _ = (path_arg(c.arg, b"FROM:"), length_arg(c.arg), bdat_last(c.arg));
            }
        }
    }
}
