//! IMAP4 (RFC 3501) lines, as far as logins go: a client command's tag and name, a server line's
//! tag and status.

use super::pop3::starts_with_ci;

/// A tagged client command: its tag and its command name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command<'a> {
    pub tag: &'a [u8],
    pub name: &'a [u8],
}

/// Reads a client line: `tag SP command [SP arguments]`.
pub fn command(line: &[u8]) -> Option<Command<'_>> {
    let mut words = line.splitn(3, |&b| b == b' ');
    let tag = words.next()?;
    let name = words.next()?;
    let ok_tag = !tag.is_empty()
        && tag
            .iter()
            .all(|&b| b.is_ascii_graphic() && b != b'+' && b != b'*');
    let ok_name = !name.is_empty() && name.iter().all(u8::is_ascii_alphabetic);
    (ok_tag && ok_name).then_some(Command { tag, name })
}

/// A tagged status response's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
}

/// Reads a server line as a tagged status response: its tag, status, and the line from the
/// status on (for the report).
pub fn tagged(line: &[u8]) -> Option<(&[u8], Status, &[u8])> {
    let sp = line.iter().position(|&b| b == b' ')?;
    let (tag, rest) = (&line[..sp], &line[sp + 1..]);
    if tag.is_empty() || tag == b"*" || tag == b"+" {
        return None;
    }
    let word = |w: &[u8]| starts_with_ci(rest, w) && matches!(rest.get(w.len()), None | Some(b' '));
    let status = if word(b"OK") {
        Status::Ok
    } else if word(b"NO") {
        Status::No
    } else if word(b"BAD") {
        Status::Bad
    } else {
        return None;
    };
    Some((tag, status, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_tagged_statuses() {
        assert_eq!(
            command(b"a001 LOGIN joe secret"),
            Some(Command {
                tag: b"a001",
                name: b"LOGIN"
            })
        );
        assert_eq!(command(b"+ ready"), None);
        assert_eq!(command(b"ZGlnaXRhbA=="), None);
        assert_eq!(
            tagged(b"a001 NO [AUTHENTICATIONFAILED] Invalid credentials"),
            Some((
                &b"a001"[..],
                Status::No,
                &b"NO [AUTHENTICATIONFAILED] Invalid credentials"[..]
            ))
        );
        assert_eq!(tagged(b"* OK IMAP4rev1 ready"), None);
        assert_eq!(tagged(b"Subject: Nothing new"), None);
        assert_eq!(
            tagged(b"a2 bad command"),
            Some((&b"a2"[..], Status::Bad, &b"bad command"[..]))
        );
    }
}
