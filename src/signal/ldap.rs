//! LDAP messages (RFC 4511): the BER `LDAPMessage` envelope — message id, the protocol
//! operation's tag and, for the operations that carry an `LDAPResult`, its result code and
//! diagnostic message. Names as RFC 4511's ASN.1 writes them. Pure and allocation-free.

/// What is wrong with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("not a BER SEQUENCE")]
    NotSequence,
    #[error("BER length beyond the buffer or unusable")]
    Length,
    #[error("message id missing or too long")]
    MessageId,
    #[error("protocol operation missing or not an APPLICATION tag")]
    Operation,
}

/// One decoded `LDAPMessage`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    pub id: u32,
    /// The APPLICATION tag number of the protocol operation (0 bindRequest ... 25).
    pub op: u8,
    pub result: Option<LdapResult<'a>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LdapResult<'a> {
    pub code: u32,
    /// `matchedDN`: for a name error, the deepest entry of the name that exists.
    pub matched_dn: &'a [u8],
    pub diagnostic: &'a [u8],
}

/// One TLV: tag, content, what follows.
fn tlv(b: &[u8]) -> Result<(u8, &[u8], &[u8]), Error> {
    let (&tag, rest) = b.split_first().ok_or(Error::Length)?;
    let (&first, rest) = rest.split_first().ok_or(Error::Length)?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(Error::Length);
        }
        let octets = rest.get(..n).ok_or(Error::Length)?;
        let len = octets
            .iter()
            .fold(0usize, |acc, &o| (acc << 8) | usize::from(o));
        (len, rest.get(n..).unwrap_or_default())
    };
    let content = rest.get(..len).ok_or(Error::Length)?;
    Ok((tag, content, rest.get(len..).unwrap_or_default()))
}

fn integer(content: &[u8]) -> Option<u32> {
    if content.is_empty() || content.len() > 5 {
        return None;
    }
    let v = content
        .iter()
        .fold(0u64, |acc, &o| (acc << 8) | u64::from(o));
    u32::try_from(v).ok()
}

/// Whether an operation carries an `LDAPResult` first.
pub fn has_result(op: u8) -> bool {
    matches!(op, 1 | 5 | 7 | 9 | 11 | 13 | 15 | 24)
}

/// Parses one whole `LDAPMessage` (the framer found its end).
pub fn parse(msg: &[u8]) -> Result<Message<'_>, Error> {
    let (tag, body, _) = tlv(msg)?;
    if tag != 0x30 {
        return Err(Error::NotSequence);
    }
    let (tag, id, rest) = tlv(body)?;
    if tag != 0x02 {
        return Err(Error::MessageId);
    }
    let id = integer(id).ok_or(Error::MessageId)?;
    let (tag, op_body, _) = tlv(rest)?;
    // APPLICATION class, primitive (unbind, delete, abandon) or constructed.
    if tag & 0xc0 != 0x40 || tag & 0x1f == 0x1f {
        return Err(Error::Operation);
    }
    let op = tag & 0x1f;
    let result = if has_result(op) {
        let (t, code, rest) = tlv(op_body)?;
        let code = match (t, integer(code)) {
            (0x0a, Some(c)) => c,
            _ => return Err(Error::Operation),
        };
        let (matched_dn, diagnostic) = match tlv(rest) {
            Ok((_, dn, rest)) => (dn, tlv(rest).map_or(&[][..], |(_, d, _)| d)),
            Err(_) => (&[][..], &[][..]),
        };
        Some(LdapResult {
            code,
            matched_dn,
            diagnostic,
        })
    } else {
        None
    };
    Ok(Message { id, op, result })
}

/// The operation's name (`bindRequest`, `searchResDone`), or `op<n>`.
pub fn op_name(op: u8) -> &'static str {
    const NAMES: [&str; 26] = [
        "bindRequest",
        "bindResponse",
        "unbindRequest",
        "searchRequest",
        "searchResEntry",
        "searchResDone",
        "modifyRequest",
        "modifyResponse",
        "addRequest",
        "addResponse",
        "delRequest",
        "delResponse",
        "modDNRequest",
        "modDNResponse",
        "compareRequest",
        "compareResponse",
        "abandonRequest",
        "op17",
        "op18",
        "searchResRef",
        "op20",
        "op21",
        "op22",
        "extendedReq",
        "extendedResp",
        "intermediateResponse",
    ];
    NAMES.get(usize::from(op)).copied().unwrap_or("opOther")
}

/// The result code's name (`success`, `invalidCredentials`), or `resultCode<n>`.
pub fn result_name(code: u32) -> std::borrow::Cow<'static, str> {
    let s = match code {
        0 => "success",
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        5 => "compareFalse",
        6 => "compareTrue",
        7 => "authMethodNotSupported",
        8 => "strongerAuthRequired",
        10 => "referral",
        11 => "adminLimitExceeded",
        12 => "unavailableCriticalExtension",
        13 => "confidentialityRequired",
        14 => "saslBindInProgress",
        16 => "noSuchAttribute",
        17 => "undefinedAttributeType",
        18 => "inappropriateMatching",
        19 => "constraintViolation",
        20 => "attributeOrValueExists",
        21 => "invalidAttributeSyntax",
        32 => "noSuchObject",
        33 => "aliasProblem",
        34 => "invalidDNSyntax",
        36 => "aliasDereferencingProblem",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        54 => "loopDetect",
        64 => "namingViolation",
        65 => "objectClassViolation",
        66 => "notAllowedOnNonLeaf",
        67 => "notAllowedOnRDN",
        68 => "entryAlreadyExists",
        69 => "objectClassModsProhibited",
        71 => "affectsMultipleDSAs",
        80 => "other",
        _ => return format!("resultCode{code}").into(),
    };
    s.into()
}

/// Whether a result code is a failure worth reporting (not success, compare outcomes, a
/// referral or a SASL step).
pub fn is_problem(code: u32) -> bool {
    !matches!(code, 0 | 5 | 6 | 10 | 14)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bindResponse with `code` and `msg`.
    pub(crate) fn bind_response(id: u8, code: u8, msg: &[u8]) -> Vec<u8> {
        let mut op = vec![0x0a, 1, code, 0x04, 0, 0x04, msg.len() as u8];
        op.extend(msg);
        let mut body = vec![0x02, 1, id, 0x61, op.len() as u8];
        body.extend(op);
        let mut m = vec![0x30, body.len() as u8];
        m.extend(body);
        m
    }

    #[test]
    fn results_and_requests() {
        let m = bind_response(1, 49, b"80090308: LdapErr: DSID-0C09030B");
        let p = parse(&m).unwrap();
        assert_eq!((p.id, op_name(p.op)), (1, "bindResponse"));
        let r = p.result.unwrap();
        assert_eq!((r.code, &*result_name(r.code)), (49, "invalidCredentials"));
        assert_eq!(r.diagnostic, b"80090308: LdapErr: DSID-0C09030B");
        assert_eq!(r.matched_dn, b"");
        // searchResDone noSuchObject (32): matchedDN, then the diagnostic.
        let dn = b"DC=corp,DC=example";
        let msg = b"0000208D: NameErr";
        let mut op = vec![0x0a, 1, 32, 0x04, dn.len() as u8];
        op.extend(dn);
        op.extend([0x04, msg.len() as u8]);
        op.extend(msg);
        let mut body = vec![0x02, 1, 3, 0x65, op.len() as u8];
        body.extend(op);
        let mut m = vec![0x30, body.len() as u8];
        m.extend(body);
        let r = parse(&m).unwrap().result.unwrap();
        assert_eq!(
            (r.code, r.matched_dn, r.diagnostic),
            (32, &dn[..], &msg[..])
        );
        // unbindRequest: APPLICATION 2, primitive, empty.
        let p = parse(&[0x30, 5, 0x02, 1, 9, 0x42, 0]).unwrap();
        assert_eq!((p.id, op_name(p.op), p.result), (9, "unbindRequest", None));
        // A long-form length.
        let p = parse(&[0x30, 0x81, 5, 0x02, 1, 2, 0x42, 0]).unwrap();
        assert_eq!(p.id, 2);
    }

    #[test]
    fn bad_messages_are_errors() {
        assert_eq!(parse(&[0x31, 0]), Err(Error::NotSequence));
        assert_eq!(
            parse(&[0x30, 0x84, 0x7f, 0xff, 0xff, 0xff]),
            Err(Error::Length)
        );
        assert_eq!(parse(&[0x30, 0x80, 0, 0]), Err(Error::Length), "indefinite");
        assert_eq!(parse(&[0x30, 3, 0x04, 1, 1]), Err(Error::MessageId));
        assert_eq!(
            parse(&[0x30, 5, 0x02, 1, 1, 0x30, 0]),
            Err(Error::Operation)
        );
        assert_eq!(parse(&[0x30, 5, 0x02, 1, 1, 0x61, 0]), Err(Error::Length));
        assert_eq!(result_name(4), "sizeLimitExceeded");
        assert_eq!(result_name(99), "resultCode99");
        assert!(is_problem(49) && !is_problem(0) && !is_problem(14));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(msg in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = parse(&msg);
        }
    }
}
