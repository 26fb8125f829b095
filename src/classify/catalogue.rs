//! The port catalogue: Exchange services and the ports they listen on, as data.
//!
//! The built-in table (`catalogue.txt`, from KB 278339) is parsed at start-up; a user file in the
//! same format adds services or moves ports to other services. Follow-up services (learned from
//! signalling, no fixed port) and `unclassified` are always present. Lookups are two flat arrays
//! indexed by port, so classifying a flow costs one load.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::packet::Proto;
use crate::signal::dcerpc::Uuid;

const BUILTIN: &str = include_str!("catalogue.txt");

/// Index of a service in the [`Catalogue`]; stable for the life of one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceId(pub u16);

impl ServiceId {
    /// A new flow's service before the classifier has decided it (it always does, at once).
    pub const PENDING: ServiceId = ServiceId(u16::MAX);
}

/// How a service is recognised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    /// Listens on fixed ports from the catalogue.
    Port,
    /// Shares another service's port and is told apart by payload (RVP on tcp/80).
    Payload,
    /// A connection on a port announced at run time by another service's signalling.
    Followup,
    /// An RPC service known by its interface UUID: from the endpoint mapper's answers or from a
    /// client's bind, on whatever port (the catalogue's `rpc/<uuid>` lines).
    Interface,
    /// Traffic that matches nothing.
    Unclassified,
}

impl ServiceKind {
    /// The name users see (catalogue table and messages).
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKind::Port => "port",
            ServiceKind::Payload => "payload",
            ServiceKind::Followup => "follow-up",
            ServiceKind::Interface => "rpc interface",
            ServiceKind::Unclassified => "catch-all",
        }
    }
}

/// Where a catalogue entry came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Builtin,
    User,
}

impl Origin {
    /// The name the JSON output uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Builtin => "builtin",
            Origin::User => "user",
        }
    }
}

/// One service of the catalogue.
#[derive(Clone, Debug, Serialize)]
pub struct Service {
    pub id: String,
    pub kind: ServiceKind,
    /// `(proto, port)` pairs this service listens on.
    #[serde(serialize_with = "ser_ports")]
    pub ports: Vec<(Proto, u16)>,
    pub description: String,
    pub origin: Origin,
    /// Trackers that read this service's payload (the catalogue's `track` lines).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trackers: Vec<String>,
    /// The entry comes from Microsoft KB 278339 (false for the built-in additions that matter to
    /// an Exchange 2000 site all the same, and for user entries).
    pub kb278339: bool,
}

/// Built-in services that KB 278339 does not list.
const BEYOND_KB278339: [&str; 6] = [
    "h323_ras",
    "submission",
    "cldap",
    "kerberos",
    "smb",
    "netbios_ssn",
];

fn ser_ports<S: serde::Serializer>(ports: &[(Proto, u16)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(ports.iter().map(|(p, n)| format!("{p}/{n}")))
}

/// Follow-up services, in the order they are registered after the built-in table.
const FOLLOWUPS: [(&str, &str); 4] = [
    (
        "h323_h245",
        "H.245 call control on the address an H.225 message announced (TCP)",
    ),
    (
        "h323_media",
        "H.323 RTP/RTCP media on addresses H.245 or fastStart announced (UDP)",
    ),
    (
        "rvp_callback",
        "RVP server's connection back to the Call-Back address of a SUBSCRIBE",
    ),
    (
        "audio_media",
        "Audio conferencing media stream between the hosts of a 1731 session",
    ),
];

/// An RPC interface the catalogue names (`<service> rpc/<uuid> <name> [description]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub uuid: Uuid,
    /// Its short name (`EMSMDB`, `NSPI`, ...).
    pub name: String,
    pub service: ServiceId,
}

/// The service of RPC interfaces the catalogue does not name.
pub const MSRPC_DYNAMIC: &str = "msrpc_dynamic";

/// A problem in a catalogue file, with its line.
#[derive(Debug, thiserror::Error)]
#[error("{file}: line {line}: {problem}")]
pub struct CatalogueError {
    pub file: String,
    pub line: usize,
    pub problem: String,
}

/// The services exflow knows and the port lookup tables.
#[derive(Clone)]
pub struct Catalogue {
    services: Vec<Service>,
    /// Service by port. Shared: a sharded run's workers each clone the run's configuration,
    /// and the tables are 128 KiB each; a change copies them first.
    tcp: Arc<PortTable>,
    udp: Arc<PortTable>,
    /// `track` lines naming services not defined yet: (tracker, service, file line).
    pending: Vec<(String, String, usize)>,
    /// RPC interfaces by UUID (few: a linear search is as fast as a map).
    interfaces: Vec<Interface>,
}

/// Value in the port tables for "no service".
const NONE: u16 = u16::MAX;

/// A service id (or [`NONE`]) for every port.
type PortTable = [u16; 65536];

fn empty_ports() -> Arc<PortTable> {
    // Built on the heap: the array is 128 KiB.
    let table: Box<PortTable> = vec![NONE; 65536]
        .into_boxed_slice()
        .try_into()
        .unwrap_or_else(|_| unreachable!("65 536 entries"));
    Arc::from(table)
}

impl Catalogue {
    /// The built-in catalogue.
    pub fn builtin() -> Catalogue {
        let mut c = Catalogue {
            services: Vec::new(),
            tcp: empty_ports(),
            udp: empty_ports(),
            pending: Vec::new(),
            interfaces: Vec::new(),
        };
        c.apply("built-in catalogue", BUILTIN, Origin::Builtin)
            .expect("the built-in catalogue parses");
        // RVP shares tcp/80 with HTTP: the port table says `http`, a payload detector says `rvp`.
        let rvp = c.add_service(
            "rvp",
            ServiceKind::Payload,
            "RVP instant messaging (HTTP-based, told apart from http by its RVP-* headers)",
            Origin::Builtin,
        );
        c.services[rvp.0 as usize].ports.push((Proto::Tcp, 80));
        for (id, description) in FOLLOWUPS {
            c.add_service(id, ServiceKind::Followup, description, Origin::Builtin);
        }
        c.add_service(
            MSRPC_DYNAMIC,
            ServiceKind::Interface,
            "An RPC interface the endpoint mapper handed out that the catalogue does not name",
            Origin::Builtin,
        );
        c.add_service(
            "unclassified",
            ServiceKind::Unclassified,
            "Traffic matching no catalogue entry",
            Origin::Builtin,
        );
        c.resolve_tracks();
        assert!(
            c.pending.is_empty(),
            "built-in track lines name known services"
        );
        c
    }

    /// Attaches the `track` lines whose services exist now.
    fn resolve_tracks(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        for (tracker, service, line) in pending {
            match self.find(&service) {
                Some(sid) => {
                    let s = &mut self.services[sid.0 as usize];
                    if !s.trackers.contains(&tracker) {
                        s.trackers.push(tracker);
                    }
                }
                None => self.pending.push((tracker, service, line)),
            }
        }
    }

    /// Parses a `track <tracker> <service>[,<service>...]` line.
    fn track_line(&mut self, rest: &str, line: usize) -> Result<(), String> {
        let (tracker, services) = next_word(rest);
        if !valid_id(tracker) || services.is_empty() {
            return Err("expected: track <tracker> <service>[,<service>...]".to_string());
        }
        for service in services.split(',') {
            let service = service.trim();
            if !valid_id(service) {
                return Err(format!("bad service id {service:?} in a track line"));
            }
            self.pending
                .push((tracker.to_string(), service.to_string(), line));
        }
        Ok(())
    }

    /// Applies a user file's text (same format as the built-in table): new services are added,
    /// a port already in the catalogue moves to the service that names it last, and a known
    /// service id gains the listed ports (and the description, if one is given).
    pub fn apply(&mut self, file: &str, text: &str, origin: Origin) -> Result<(), CatalogueError> {
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |problem: String| CatalogueError {
                file: file.to_string(),
                line: n + 1,
                problem,
            };
            let (id, rest) = next_word(line);
            if id == "track" {
                self.track_line(rest, n + 1).map_err(err)?;
                continue;
            }
            let (ports, description) = next_word(rest);
            if let Some(uuid) = ports.strip_prefix("rpc/") {
                if !valid_id(id) {
                    return Err(err(format!(
                        "service id {id:?} must be lowercase letters, digits and '_'"
                    )));
                }
                self.interface_line(id, uuid, description, origin)
                    .map_err(err)?;
                continue;
            }
            if !valid_id(id) {
                return Err(err(format!(
                    "service id {id:?} must be lowercase letters, digits and '_'"
                )));
            }
            if ports.is_empty() {
                return Err(err(format!(
                    "service {id} lists no ports (expected e.g. tcp/2000)"
                )));
            }
            let ports = ports
                .split(',')
                .map(|p| {
                    parse_port(p)
                        .ok_or_else(|| err(format!("bad port {p:?} (expected tcp/N or udp/N)")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let sid = match self.find(id) {
                Some(sid) => {
                    let s = &mut self.services[sid.0 as usize];
                    if !matches!(s.kind, ServiceKind::Port | ServiceKind::Interface) {
                        return Err(err(format!(
                            "{id} is a {} service and takes no ports",
                            s.kind.as_str()
                        )));
                    }
                    if !description.is_empty() {
                        s.description = description.to_string();
                    }
                    s.origin = origin;
                    sid
                }
                None => self.add_service(id, ServiceKind::Port, description, origin),
            };
            for (proto, port) in ports {
                self.assign(proto, port, sid);
            }
        }
        self.resolve_tracks();
        if origin == Origin::User {
            if let Some((tracker, service, line)) = self.pending.pop() {
                self.pending.clear();
                return Err(CatalogueError {
                    file: file.to_string(),
                    line,
                    problem: format!("track {tracker}: no service {service}"),
                });
            }
        }
        Ok(())
    }

    /// Parses the rest of a `<service> rpc/<uuid> <name> [description]` line: the interface
    /// moves to `service` if another had it; a new service is of kind `Interface`.
    fn interface_line(
        &mut self,
        id: &str,
        uuid: &str,
        rest: &str,
        origin: Origin,
    ) -> Result<(), String> {
        let uuid: Uuid = uuid.parse().map_err(|e| format!("rpc/{uuid}: {e}"))?;
        let (name, description) = next_word(rest);
        if name.is_empty() {
            return Err(format!(
                "rpc/{uuid} names no interface (expected: {id} rpc/<uuid> <name> [description])"
            ));
        }
        let sid = match self.find(id) {
            Some(sid) => {
                let s = &mut self.services[sid.0 as usize];
                if !matches!(s.kind, ServiceKind::Port | ServiceKind::Interface) {
                    return Err(format!(
                        "{id} is a {:?} service and takes no interfaces",
                        s.kind
                    ));
                }
                if !description.is_empty() {
                    s.description = description.to_string();
                }
                s.origin = origin;
                sid
            }
            None => self.add_service(id, ServiceKind::Interface, description, origin),
        };
        self.interfaces.retain(|i| i.uuid != uuid);
        self.interfaces.push(Interface {
            uuid,
            name: name.to_string(),
            service: sid,
        });
        Ok(())
    }

    /// The catalogued RPC interface with this UUID.
    pub fn interface(&self, uuid: &Uuid) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.uuid == *uuid)
    }

    /// Every catalogued RPC interface.
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    fn add_service(
        &mut self,
        id: &str,
        kind: ServiceKind,
        description: &str,
        origin: Origin,
    ) -> ServiceId {
        let sid = ServiceId(self.services.len() as u16);
        self.services.push(Service {
            id: id.to_string(),
            kind,
            ports: Vec::new(),
            description: description.to_string(),
            origin,
            trackers: Vec::new(),
            kb278339: origin == Origin::Builtin
                && kind != ServiceKind::Unclassified
                && !BEYOND_KB278339.contains(&id),
        });
        sid
    }

    fn assign(&mut self, proto: Proto, port: u16, sid: ServiceId) {
        let table = Arc::make_mut(match proto {
            Proto::Tcp => &mut self.tcp,
            _ => &mut self.udp,
        });
        let old = table[port as usize];
        if old != NONE {
            self.services[old as usize]
                .ports
                .retain(|&p| p != (proto, port));
        }
        table[port as usize] = sid.0;
        self.services[sid.0 as usize].ports.push((proto, port));
    }

    /// The service listening on `proto`/`port`, if any.
    #[inline]
    pub fn lookup(&self, proto: Proto, port: u16) -> Option<ServiceId> {
        let v = match proto {
            Proto::Tcp => self.tcp[port as usize],
            Proto::Udp => self.udp[port as usize],
            _ => NONE,
        };
        (v != NONE).then_some(ServiceId(v))
    }

    /// Finds a service by id.
    pub fn find(&self, id: &str) -> Option<ServiceId> {
        self.services
            .iter()
            .position(|s| s.id == id)
            .map(|i| ServiceId(i as u16))
    }

    /// Like [`find`](Self::find) for the services every catalogue has.
    pub fn must(&self, id: &str) -> ServiceId {
        self.find(id)
            .unwrap_or_else(|| panic!("catalogue lacks built-in service {id}"))
    }

    pub fn service(&self, id: ServiceId) -> &Service {
        &self.services[id.0 as usize]
    }

    pub fn id(&self, id: ServiceId) -> &str {
        self.services
            .get(id.0 as usize)
            .map_or("pending", |s| s.id.as_str())
    }

    pub fn services(&self) -> &[Service] {
        &self.services
    }

    pub fn len(&self) -> usize {
        self.services.len()
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }
}

impl fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.services.iter().map(|s| &s.id))
            .finish()
    }
}

/// Splits off the first whitespace-separated word; the rest is trimmed.
fn next_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, ""),
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn parse_port(s: &str) -> Option<(Proto, u16)> {
    let (proto, port) = s.trim().split_once('/')?;
    let proto = match proto.to_ascii_lowercase().as_str() {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        _ => return None,
    };
    // Port 0 is no port a service listens on (and the flow table's "no port").
    Some((proto, port.parse().ok().filter(|&n| n != 0)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_has_every_kb278339_entry() {
        let c = Catalogue::builtin();
        let expect: &[(&str, Proto, u16)] = &[
            ("ldap", Proto::Tcp, 389),
            ("ldap_ssl", Proto::Tcp, 636),
            ("ldap_srs", Proto::Tcp, 379),
            ("ldap_alt", Proto::Tcp, 390),
            ("gc", Proto::Tcp, 3268),
            ("gc_ssl", Proto::Tcp, 3269),
            ("imap4", Proto::Tcp, 143),
            ("imap4_ssl", Proto::Tcp, 993),
            ("pop3", Proto::Tcp, 110),
            ("pop3_ssl", Proto::Tcp, 995),
            ("nntp", Proto::Tcp, 119),
            ("nntp_ssl", Proto::Tcp, 563),
            ("http", Proto::Tcp, 80),
            ("https", Proto::Tcp, 443),
            ("smtp", Proto::Tcp, 25),
            ("smtp_ssl", Proto::Tcp, 465),
            ("smtp_lsa", Proto::Tcp, 691),
            ("irc", Proto::Tcp, 6667),
            ("irc", Proto::Tcp, 7000),
            ("irc_ssl", Proto::Tcp, 994),
            ("x400", Proto::Tcp, 102),
            ("msrpc", Proto::Tcp, 135),
            ("t120", Proto::Tcp, 1503),
            ("uls", Proto::Tcp, 522),
            ("h323", Proto::Tcp, 1720),
            ("audio", Proto::Tcp, 1731),
            ("dns", Proto::Tcp, 53),
            ("dns", Proto::Udp, 53),
        ];
        for &(id, proto, port) in expect {
            let sid = c
                .lookup(proto, port)
                .unwrap_or_else(|| panic!("{proto}/{port} missing"));
            assert_eq!(c.id(sid), id, "{proto}/{port}");
        }
        assert_eq!(c.lookup(Proto::Udp, 390), None);
        assert_eq!(c.lookup(Proto::Tcp, 1863), None, "MSN Messenger is not RVP");
        for id in [
            "rvp",
            "h323_h245",
            "h323_media",
            "rvp_callback",
            "audio_media",
            "unclassified",
        ] {
            assert!(c.find(id).is_some(), "{id}");
        }
    }

    #[test]
    fn user_file_adds_and_overrides() {
        let mut c = Catalogue::builtin();
        let text = "# KB 161931 fixed ports\nmta_rpc tcp/2000,udp/2000 MTA fixed RPC port\nsmtp_alt tcp/25\nsmtp tcp/587 SMTP submission\n";
        c.apply("site.cat", text, Origin::User).unwrap();
        let mta = c.find("mta_rpc").unwrap();
        assert_eq!(c.lookup(Proto::Tcp, 2000), Some(mta));
        assert_eq!(c.lookup(Proto::Udp, 2000), Some(mta));
        assert_eq!(c.id(c.lookup(Proto::Tcp, 25).unwrap()), "smtp_alt");
        assert_eq!(c.id(c.lookup(Proto::Tcp, 587).unwrap()), "smtp");
        assert_eq!(c.service(c.must("smtp")).ports, vec![(Proto::Tcp, 587)]);
        assert_eq!(c.service(c.must("smtp")).description, "SMTP submission");
    }

    #[test]
    fn entries_beyond_kb278339_are_marked() {
        let c = Catalogue::builtin();
        for (id, proto, port) in [
            ("h323_ras", Proto::Udp, 1719),
            ("submission", Proto::Tcp, 587),
            ("cldap", Proto::Udp, 389),
            ("kerberos", Proto::Tcp, 88),
            ("kerberos", Proto::Udp, 88),
            ("smb", Proto::Tcp, 445),
            ("netbios_ssn", Proto::Tcp, 139),
        ] {
            let sid = c.lookup(proto, port).unwrap();
            assert_eq!(c.id(sid), id);
            assert!(!c.service(sid).kb278339, "{id}");
            assert!(
                c.service(sid).description.len() > 40,
                "{id}: say why it matters"
            );
        }
        // LDAP stays tcp/389; CLDAP is the UDP port.
        assert_eq!(c.id(c.lookup(Proto::Tcp, 389).unwrap()), "ldap");
        for id in ["ldap", "smtp", "h323", "rvp", "h323_media"] {
            assert!(c.service(c.must(id)).kb278339, "{id}");
        }
        let mut u = Catalogue::builtin();
        u.apply("site.cat", "mta_rpc tcp/2000 MTA\n", Origin::User)
            .unwrap();
        assert!(!u.service(u.must("mta_rpc")).kb278339);
    }

    #[test]
    fn port_zero_is_rejected() {
        let mut c = Catalogue::builtin();
        let e = c.apply("x.cat", "foo tcp/0\n", Origin::User).unwrap_err();
        assert!(e.to_string().contains("line 1: bad port \"tcp/0\""), "{e}");
    }

    #[test]
    fn builtin_rpc_interfaces_name_their_services() {
        let c = Catalogue::builtin();
        let expect: &[(&str, &str, &str)] = &[
            ("a4f1db00-ca47-1067-b31f-00dd010662da", "mapi", "EMSMDB"),
            (
                "5261574a-4572-206e-b268-6b199213b4e4",
                "mapi",
                "AsyncEMSMDB",
            ),
            ("f5cc5a18-4264-101a-8c59-08002b2f8426", "nspi", "NSPI"),
            ("1544f5e0-613c-11d1-93df-00c04fd7bd09", "rfr", "RFR"),
            (
                "99e64010-b032-11d0-97a4-00c04fd6551d",
                "exchange_store_admin",
                "StoreAdmin",
            ),
            (
                "89742ace-a9ed-11cf-9c0c-08002be7ae86",
                "exchange_store_admin",
                "StoreAdmin2",
            ),
            (
                "0e4a0156-dd5d-11d2-8c2f-00c04fb6bcde",
                "exchange_store_admin",
                "InfoStore1",
            ),
            (
                "1453c42c-0fa6-11d2-a910-00c04f990f3b",
                "exchange_store_admin",
                "InfoStore2",
            ),
            (
                "10f24e8e-0fa6-11d2-a910-00c04f990f3b",
                "exchange_store_admin",
                "InfoStore3",
            ),
            (
                "9e8ee830-4459-11ce-979b-00aa005ffebe",
                "exchange_mta",
                "MTA",
            ),
            (
                "38a94e72-a9bc-11d2-8faf-00c04fa378ff",
                "exchange_mta",
                "QAdmin",
            ),
            (
                "f930c514-1215-11d3-99a5-00a0c9b61b04",
                "exchange_sa",
                "SACluster",
            ),
            (
                "83d72bf0-0d89-11ce-b13f-00aa003bac6c",
                "exchange_sa",
                "SAPrivate",
            ),
            (
                "469d6ec0-0d87-11ce-b13f-00aa003bac6c",
                "exchange_sa",
                "SAPublic",
            ),
            ("e3514235-4b06-11d1-ab04-00c04fc2dcd2", "drsuapi", "drsuapi"),
            (
                "12345678-1234-abcd-ef00-01234567cffb",
                "netlogon",
                "netlogon",
            ),
        ];
        assert_eq!(c.interfaces().len(), expect.len());
        for &(uuid, service, name) in expect {
            let i = c.interface(&uuid.parse().unwrap()).expect(uuid);
            assert_eq!(
                (c.id(i.service), i.name.as_str()),
                (service, name),
                "{uuid}"
            );
            assert_eq!(c.service(i.service).kind, ServiceKind::Interface);
        }
        let dynamic = c.must(MSRPC_DYNAMIC);
        assert_eq!(c.service(dynamic).kind, ServiceKind::Interface);
        assert_eq!(c.service(c.must("msrpc")).trackers, ["epm"]);
        assert_eq!(c.service(c.must("mapi")).trackers, ["rpc"]);
    }

    #[test]
    fn user_file_adds_and_moves_interfaces() {
        let mut c = Catalogue::builtin();
        let text = "site_rpc rpc/11111111-2222-3333-4444-555555555555 Site Site-specific RPC\n\
                    exchange_mta rpc/99e64010-b032-11d0-97a4-00c04fd6551d StoreAdminOnMta\n\
                    mapi tcp/6001\n";
        c.apply("site.cat", text, Origin::User).unwrap();
        let site = c.find("site_rpc").unwrap();
        let u = "11111111-2222-3333-4444-555555555555".parse().unwrap();
        assert_eq!(c.interface(&u).map(|i| i.service), Some(site));
        assert_eq!(c.service(site).description, "Site-specific RPC");
        let moved = c
            .interface(&"99e64010-b032-11d0-97a4-00c04fd6551d".parse().unwrap())
            .unwrap();
        assert_eq!(c.id(moved.service), "exchange_mta");
        assert_eq!(
            c.id(c.lookup(Proto::Tcp, 6001).unwrap()),
            "mapi",
            "a pinned port"
        );
        let e = c
            .apply("x.cat", "foo rpc/not-a-uuid X\n", Origin::User)
            .unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        let e = c
            .apply(
                "x.cat",
                "\nfoo rpc/11111111-2222-3333-4444-555555555555\n",
                Origin::User,
            )
            .unwrap_err();
        assert!(e.to_string().contains("line 2: rpc/"), "{e}");
    }

    #[test]
    fn user_file_errors_name_the_line() {
        let mut c = Catalogue::builtin();
        let e = c
            .apply("x.cat", "\nfoo tcp/99999\n", Origin::User)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.cat: line 2: bad port \"tcp/99999\" (expected tcp/N or udp/N)"
        );
        let e = c.apply("x.cat", "Foo tcp/1\n", Origin::User).unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        let e = c.apply("x.cat", "bar\n", Origin::User).unwrap_err();
        assert!(e.to_string().contains("no ports"), "{e}");
        let e = c
            .apply("x.cat", "h323_media udp/5000\n", Origin::User)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.cat: line 1: h323_media is a follow-up service and takes no ports"
        );
    }
}
