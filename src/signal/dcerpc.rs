//! Connection-oriented DCE/RPC (C706 chapter 12, [MS-RPCE]): the PDU header, the presentation
//! contexts of `bind`/`alter_context`, `bind_ack` results, `request`/`response` bodies, and the
//! endpoint mapper's `ept_map` (opnum 3) and `ept_lookup` (opnum 2) responses with their towers.
//!
//! Pure functions from bytes to values. Every length is checked before it is read; counts from the
//! wire are capped ([`MAX_CONTEXTS`], [`MAX_TOWERS`], [`MAX_FLOORS`]) and larger ones rejected.
//! NDR data is read in the PDU's byte order (`drep`); tower floors are little-endian whatever it
//! says, except the port (big-endian) and the IPv4 address (network order).

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// Length of the common header of every connection-oriented PDU.
pub const HEADER_LEN: usize = 16;
/// Most presentation contexts read from one bind.
pub const MAX_CONTEXTS: usize = 32;
/// Most towers read from one endpoint-mapper response.
pub const MAX_TOWERS: usize = 64;
/// Most floors in one tower (an `ncacn_ip_tcp` tower has 5).
pub const MAX_FLOORS: usize = 16;

/// The endpoint mapper's interface, `e1af8308-5d1f-11c9-91a4-08002b14a0fa` v3.
pub const EPM: Uuid = Uuid([
    0xe1, 0xaf, 0x83, 0x08, 0x5d, 0x1f, 0x11, 0xc9, 0x91, 0xa4, 0x08, 0x00, 0x2b, 0x14, 0xa0, 0xfa,
]);
/// `ept_lookup`'s operation number.
pub const OPNUM_EPT_LOOKUP: u16 = 2;
/// `ept_map`'s operation number.
pub const OPNUM_EPT_MAP: u16 = 3;

/// PDU types (`ptype`) exflow reads.
pub mod ptype {
    pub const REQUEST: u8 = 0;
    pub const RESPONSE: u8 = 2;
    pub const FAULT: u8 = 3;
    pub const BIND: u8 = 11;
    pub const BIND_ACK: u8 = 12;
    pub const BIND_NAK: u8 = 13;
    pub const ALTER_CONTEXT: u8 = 14;
    pub const ALTER_CONTEXT_RESP: u8 = 15;
}

/// `pfc_flags`: first fragment.
pub const PFC_FIRST_FRAG: u8 = 0x01;
/// `pfc_flags`: last fragment.
pub const PFC_LAST_FRAG: u8 = 0x02;
/// `pfc_flags`: a request carries an object UUID before its stub.
pub const PFC_OBJECT_UUID: u8 = 0x80;

/// Tower floor protocol ids.
pub mod floor {
    pub const UUID: u8 = 0x0d;
    pub const NCACN: u8 = 0x0b;
    pub const NCADG: u8 = 0x0a;
    pub const TCP: u8 = 0x07;
    pub const UDP: u8 = 0x08;
    pub const IP: u8 = 0x09;
}

/// Byte order of a PDU's NDR data (`drep[0]` bit 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Big,
    Little,
}

/// What was wrong with a PDU, with the offset where it went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("truncated: {need} bytes needed at offset {at}, {have} present")]
    Truncated { at: usize, need: usize, have: usize },
    #[error("not DCE/RPC connection-oriented version 5.0/5.1 (got {0}.{1})")]
    Version(u8, u8),
    #[error("frag_len {0} shorter than the header or its auth trailer")]
    FragLen(u16),
    #[error("{what} count {n} exceeds the cap")]
    TooMany { what: &'static str, n: u32 },
    #[error("PDU type {0} is not what this parser reads")]
    Type(u8),
    #[error("malformed tower: {0}")]
    Tower(&'static str),
    #[error("operation {0} is not an endpoint-mapper lookup")]
    Opnum(u16),
}

/// A UUID, its 16 bytes in the order of its usual text form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// Reads a UUID encoded as NDR `uuid_t`: the first three fields in `order`, the rest as is.
    pub fn read(b: &[u8], order: Order) -> Option<Uuid> {
        let b: &[u8; 16] = b.get(..16)?.try_into().ok()?;
        let mut u = *b;
        if order == Order::Little {
            u[0..4].reverse();
            u[4..6].reverse();
            u[6..8].reverse();
        }
        Some(Uuid(u))
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Not a UUID in its usual text form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected a UUID like a4f1db00-ca47-1067-b31f-00dd010662da")]
pub struct BadUuid;

impl FromStr for Uuid {
    type Err = BadUuid;

    fn from_str(s: &str) -> Result<Uuid, BadUuid> {
        let groups: Vec<&str> = s.split('-').collect();
        if groups.iter().map(|g| g.len()).collect::<Vec<_>>() != [8, 4, 4, 4, 12] {
            return Err(BadUuid);
        }
        let hex: String = groups.concat();
        let mut u = [0u8; 16];
        for (i, cell) in u.iter_mut().enumerate() {
            let pair = hex.get(2 * i..2 * i + 2).ok_or(BadUuid)?;
            *cell = u8::from_str_radix(pair, 16).map_err(|_| BadUuid)?;
        }
        Ok(Uuid(u))
    }
}

/// An interface and its version (an abstract syntax).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SyntaxId {
    pub uuid: Uuid,
    pub major: u16,
    pub minor: u16,
}

impl SyntaxId {
    /// `major.minor`.
    pub fn version(&self) -> String {
        format!("{}.{}", self.major, self.minor)
    }
}

/// The common header of a connection-oriented PDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub ptype: u8,
    pub flags: u8,
    pub order: Order,
    pub frag_len: u16,
    pub auth_len: u16,
    pub call_id: u32,
}

impl Header {
    pub fn first_frag(&self) -> bool {
        self.flags & PFC_FIRST_FRAG != 0
    }

    pub fn last_frag(&self) -> bool {
        self.flags & PFC_LAST_FRAG != 0
    }
}

/// Reads NDR integers in one byte order with every offset checked.
#[derive(Clone, Copy)]
struct Ndr<'a> {
    b: &'a [u8],
    order: Order,
}

impl<'a> Ndr<'a> {
    fn bytes(&self, at: usize, n: usize) -> Result<&'a [u8], Error> {
        at.checked_add(n)
            .and_then(|end| self.b.get(at..end))
            .ok_or(Error::Truncated {
                at,
                need: n,
                have: self.b.len().saturating_sub(at),
            })
    }

    fn u8(&self, at: usize) -> Result<u8, Error> {
        Ok(self.bytes(at, 1)?[0])
    }

    fn u16(&self, at: usize) -> Result<u16, Error> {
        let b: [u8; 2] = self.bytes(at, 2)?.try_into().unwrap_or_default();
        Ok(match self.order {
            Order::Big => u16::from_be_bytes(b),
            Order::Little => u16::from_le_bytes(b),
        })
    }

    fn u32(&self, at: usize) -> Result<u32, Error> {
        let b: [u8; 4] = self.bytes(at, 4)?.try_into().unwrap_or_default();
        Ok(match self.order {
            Order::Big => u32::from_be_bytes(b),
            Order::Little => u32::from_le_bytes(b),
        })
    }

    fn uuid(&self, at: usize) -> Result<Uuid, Error> {
        Uuid::read(self.bytes(at, 16)?, self.order).ok_or(Error::Truncated {
            at,
            need: 16,
            have: 0,
        })
    }

    fn syntax(&self, at: usize) -> Result<SyntaxId, Error> {
        Ok(SyntaxId {
            uuid: self.uuid(at)?,
            major: self.u16(at + 16)?,
            minor: self.u16(at + 18)?,
        })
    }
}

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

/// Parses the common header at the front of `b` (which may hold more than one PDU).
pub fn parse_header(b: &[u8]) -> Result<Header, Error> {
    let h = b.get(..HEADER_LEN).ok_or(Error::Truncated {
        at: 0,
        need: HEADER_LEN,
        have: b.len(),
    })?;
    if h[0] != 5 || h[1] > 1 {
        return Err(Error::Version(h[0], h[1]));
    }
    let order = if h[4] & 0x10 != 0 {
        Order::Little
    } else {
        Order::Big
    };
    let r = Ndr { b: h, order };
    let header = Header {
        ptype: h[2],
        flags: h[3],
        order,
        frag_len: r.u16(8)?,
        auth_len: r.u16(10)?,
        call_id: r.u32(12)?,
    };
    let trailer = auth_trailer(&header);
    if usize::from(header.frag_len) < HEADER_LEN + trailer {
        return Err(Error::FragLen(header.frag_len));
    }
    Ok(header)
}

/// Bytes at the end of a PDU taken by its authentication: the 8-byte `sec_trailer` and the
/// `auth_len` bytes of credentials.
fn auth_trailer(h: &Header) -> usize {
    if h.auth_len == 0 {
        0
    } else {
        8 + usize::from(h.auth_len)
    }
}

/// One whole PDU: its header and the bytes between the header and the auth trailer (the auth
/// padding the `sec_trailer` announces excluded).
pub fn split(pdu: &[u8]) -> Result<(Header, &[u8]), Error> {
    let h = parse_header(pdu)?;
    let len = usize::from(h.frag_len);
    let whole = pdu.get(..len).ok_or(Error::Truncated {
        at: 0,
        need: len,
        have: pdu.len(),
    })?;
    let trailer = auth_trailer(&h);
    let mut end = len - trailer;
    if trailer > 0 {
        // sec_trailer: auth_type, auth_level, auth_pad_length, ...
        let pad = usize::from(whole.get(end + 2).copied().unwrap_or(0));
        end = end.saturating_sub(pad).max(HEADER_LEN);
    }
    Ok((h, whole.get(HEADER_LEN..end).unwrap_or_default()))
}

/// A request's body: its operation and stub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub context_id: u16,
    pub opnum: u16,
    pub stub: &'a [u8],
}

/// Parses a request PDU.
pub fn parse_request(pdu: &[u8]) -> Result<(Header, Request<'_>), Error> {
    let (h, body) = split(pdu)?;
    if h.ptype != ptype::REQUEST {
        return Err(Error::Type(h.ptype));
    }
    let r = Ndr {
        b: body,
        order: h.order,
    };
    let mut at = 8;
    if h.flags & PFC_OBJECT_UUID != 0 {
        at += 16;
    }
    let stub = r.bytes(at, body.len().saturating_sub(at))?;
    Ok((
        h,
        Request {
            context_id: r.u16(4)?,
            opnum: r.u16(6)?,
            stub,
        },
    ))
}

/// Parses a response PDU: its header and stub.
pub fn parse_response(pdu: &[u8]) -> Result<(Header, &[u8]), Error> {
    let (h, body) = split(pdu)?;
    if h.ptype != ptype::RESPONSE {
        return Err(Error::Type(h.ptype));
    }
    let stub = body.get(8..).ok_or(Error::Truncated {
        at: HEADER_LEN,
        need: 8,
        have: body.len(),
    })?;
    Ok((h, stub))
}

/// The abstract syntaxes (interfaces) a `bind` or `alter_context` proposes, in order.
pub fn parse_bind(pdu: &[u8]) -> Result<(Header, Vec<SyntaxId>), Error> {
    let (h, body) = split(pdu)?;
    if h.ptype != ptype::BIND && h.ptype != ptype::ALTER_CONTEXT {
        return Err(Error::Type(h.ptype));
    }
    let r = Ndr {
        b: body,
        order: h.order,
    };
    let n = r.u8(8)?;
    if usize::from(n) > MAX_CONTEXTS {
        return Err(Error::TooMany {
            what: "presentation context",
            n: u32::from(n),
        });
    }
    let mut at = 12;
    let mut out = Vec::with_capacity(usize::from(n));
    for _ in 0..n {
        let transfers = usize::from(r.u8(at + 2)?);
        out.push(r.syntax(at + 4)?);
        at += 4 + 20 + 20 * transfers;
    }
    Ok((h, out))
}

/// The result of each presentation context of a `bind_ack` / `alter_context_resp` (0: accepted).
pub fn parse_bind_ack(pdu: &[u8]) -> Result<(Header, Vec<u16>), Error> {
    let (h, body) = split(pdu)?;
    if h.ptype != ptype::BIND_ACK && h.ptype != ptype::ALTER_CONTEXT_RESP {
        return Err(Error::Type(h.ptype));
    }
    let r = Ndr {
        b: body,
        order: h.order,
    };
    let sec_addr = usize::from(r.u16(8)?);
    // Offsets in the body are 16 less than in the PDU, which keeps 4-byte alignment.
    let at = align4(10 + sec_addr);
    let n = r.u8(at)?;
    if usize::from(n) > MAX_CONTEXTS {
        return Err(Error::TooMany {
            what: "presentation result",
            n: u32::from(n),
        });
    }
    let results = (0..usize::from(n))
        .map(|i| r.u16(at + 4 + 24 * i))
        .collect::<Result<_, _>>()?;
    Ok((h, results))
}

/// The transport a tower's floor 4 names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Udp,
}

/// What exflow reads from one protocol tower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tower {
    /// Floor 1.
    pub interface: SyntaxId,
    /// Floor 3: `0x0b` connection-oriented, `0x0a` connectionless.
    pub rpc_protocol: u8,
    /// Floor 4, when TCP or UDP.
    pub transport: Option<(Transport, u16)>,
    /// Floor 5, when IP.
    pub ip: Option<Ipv4Addr>,
}

/// Reads one tower's octets (floor count and lengths little-endian).
pub fn parse_tower(t: &[u8]) -> Result<Tower, Error> {
    let le = Ndr {
        b: t,
        order: Order::Little,
    };
    let floors = le.u16(0).map_err(|_| Error::Tower("no floor count"))?;
    if usize::from(floors) > MAX_FLOORS {
        return Err(Error::TooMany {
            what: "floor",
            n: u32::from(floors),
        });
    }
    if floors < 3 {
        return Err(Error::Tower("fewer than 3 floors"));
    }
    let mut at = 2;
    let mut interface = None;
    let mut rpc_protocol = 0;
    let mut transport = None;
    let mut ip = None;
    for i in 0..floors {
        let lhs_len = usize::from(le.u16(at)?);
        let lhs = le.bytes(at + 2, lhs_len)?;
        at += 2 + lhs_len;
        let rhs_len = usize::from(le.u16(at)?);
        let rhs = le.bytes(at + 2, rhs_len)?;
        at += 2 + rhs_len;
        let Some(&proto) = lhs.first() else {
            return Err(Error::Tower("empty floor"));
        };
        match (i, proto) {
            (0, floor::UUID) => {
                let l = Ndr {
                    b: lhs,
                    order: Order::Little,
                };
                interface = Some(SyntaxId {
                    uuid: l.uuid(1)?,
                    major: l.u16(17)?,
                    minor: Ndr {
                        b: rhs,
                        order: Order::Little,
                    }
                    .u16(0)
                    .unwrap_or(0),
                });
            }
            (0, _) => return Err(Error::Tower("floor 1 is not an interface UUID")),
            (2, p) => rpc_protocol = p,
            (3, floor::TCP | floor::UDP) => {
                let port: [u8; 2] = rhs
                    .try_into()
                    .map_err(|_| Error::Tower("port is not 2 bytes"))?;
                let kind = if proto == floor::TCP {
                    Transport::Tcp
                } else {
                    Transport::Udp
                };
                transport = Some((kind, u16::from_be_bytes(port)));
            }
            (4, floor::IP) => {
                let a: [u8; 4] = rhs
                    .try_into()
                    .map_err(|_| Error::Tower("IP is not 4 bytes"))?;
                ip = Some(Ipv4Addr::from(a));
            }
            _ => {}
        }
    }
    Ok(Tower {
        interface: interface.ok_or(Error::Tower("no interface"))?,
        rpc_protocol,
        transport,
        ip,
    })
}

/// An `ept_map` or `ept_lookup` response: its status and the towers it hands out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpmResponse {
    /// 0: success; anything else (`EPT_S_NOT_REGISTERED`, ...) hands out nothing usable.
    pub status: u32,
    pub towers: Vec<Tower>,
    /// Towers present but not readable.
    pub bad_towers: u32,
}

/// Parses the stub of an `ept_map` (opnum 3) or `ept_lookup` (opnum 2) response in `order`.
pub fn parse_epm_response(stub: &[u8], opnum: u16, order: Order) -> Result<EpmResponse, Error> {
    let r = Ndr { b: stub, order };
    let status_at = stub.len().checked_sub(4).ok_or(Error::Truncated {
        at: 0,
        need: 4,
        have: stub.len(),
    })?;
    let status = r.u32(status_at)?;
    let mut out = EpmResponse {
        status,
        towers: Vec::new(),
        bad_towers: 0,
    };
    if status != 0 {
        return Ok(out);
    }
    // entry_handle (20), count, then a conformant varying array: max, offset, actual.
    let count = r.u32(20)?;
    let actual = r.u32(32)?;
    if count.max(actual) as usize > MAX_TOWERS {
        return Err(Error::TooMany {
            what: "tower",
            n: count.max(actual),
        });
    }
    let mut at = 36;
    let mut pointers = 0u32;
    match opnum {
        OPNUM_EPT_MAP => {
            for _ in 0..actual {
                pointers += u32::from(r.u32(at)? != 0);
                at += 4;
            }
        }
        OPNUM_EPT_LOOKUP => {
            // ept_entry_t: object uuid, tower pointer, annotation (offset, length, chars).
            for _ in 0..actual {
                pointers += u32::from(r.u32(at + 16)? != 0);
                let len = r.u32(at + 24)? as usize;
                if len > 64 {
                    return Err(Error::TooMany {
                        what: "annotation byte",
                        n: len as u32,
                    });
                }
                at = align4(at + 28 + len);
            }
        }
        _ => return Err(Error::Opnum(opnum)),
    }
    for _ in 0..pointers {
        // twr_t: conformance, tower_length, octets, aligned to 4.
        let len = r.u32(at + 4)? as usize;
        let octets = r.bytes(at + 8, len)?;
        match parse_tower(octets) {
            Ok(t) => out.towers.push(t),
            Err(_) => out.bad_towers += 1,
        }
        at = align4(at + 8 + len);
    }
    Ok(out)
}

#[cfg(test)]
#[path = "dcerpc_tests.rs"]
mod tests;
