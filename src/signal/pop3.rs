//! POP3 (RFC 1939, RFC 5034) lines, as far as logins go: a client command's verb and argument,
//! a server reply's status and text.

/// A server line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `+OK text`.
    Ok(&'a [u8]),
    /// `-ERR text` (the whole line, for the report).
    Err(&'a [u8]),
    /// `+ challenge` (SASL continuation).
    Continue,
    /// Anything else (a multi-line response's body).
    Other,
}

/// Reads a server line (without its terminator).
pub fn reply(line: &[u8]) -> Reply<'_> {
    if starts_with_ci(line, b"+OK") {
        Reply::Ok(line)
    } else if starts_with_ci(line, b"-ERR") {
        Reply::Err(line)
    } else if line.first() == Some(&b'+') {
        Reply::Continue
    } else {
        Reply::Other
    }
}

/// A client command: the verb in upper case (at most 4 letters) and whether an argument follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command {
    pub verb: [u8; 4],
    pub has_arg: bool,
}

impl Command {
    pub fn is(&self, verb: &[u8]) -> bool {
        self.verb.iter().take_while(|&&b| b != 0).eq(verb.iter())
    }
}

/// Reads a client line as a command: 3 or 4 letters, then nothing or a space.
pub fn command(line: &[u8]) -> Option<Command> {
    let end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    let word = &line[..end];
    if !(3..=4).contains(&word.len()) || !word.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    let mut verb = [0; 4];
    for (v, b) in verb.iter_mut().zip(word) {
        *v = b.to_ascii_uppercase();
    }
    let has_arg = line
        .get(end + 1..)
        .is_some_and(|a| a.iter().any(|&b| b != b' '));
    Some(Command { verb, has_arg })
}

pub(crate) fn starts_with_ci(line: &[u8], prefix: &[u8]) -> bool {
    line.get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_and_commands() {
        assert_eq!(
            reply(b"+OK POP server ready"),
            Reply::Ok(b"+OK POP server ready")
        );
        assert_eq!(
            reply(b"-ERR authentication failed"),
            Reply::Err(b"-ERR authentication failed")
        );
        assert_eq!(reply(b"+ "), Reply::Continue);
        assert_eq!(reply(b"From: x"), Reply::Other);
        let c = command(b"pass secret").unwrap();
        assert!(c.is(b"PASS") && c.has_arg);
        let c = command(b"AUTH").unwrap();
        assert!(c.is(b"AUTH") && !c.has_arg);
        assert_eq!(command(b"AGRpZ2l0YWxpbnZlc3RpZ2F0b3I="), None);
        assert_eq!(command(b""), None);
    }
}
