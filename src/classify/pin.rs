//! The registry settings that pin an RPC service's port, next to the interface table of
//! `catalogue.txt`: the advice the follow-up report gives when an endpoint-mapper port was blocked
//! (a firewall can then open one fixed port instead of the dynamic range), and the one source of
//! the firewall report's pinning advice (`firewall::advice`).
//!
//! Sources:
//! - KB 270836 "Exchange static port mappings" (it consolidates KB 155831, 148732, 298369, ...):
//!   the store's `MSExchangeIS\ParametersSystem` "TCP/IP Port", the DSProxy's
//!   `MSExchangeSA\Parameters` "TCP/IP NSPI Port", the System Attendant's (and its referral
//!   interface's) `MSExchangeSA\Parameters` "TCP/IP Port". The Exchange Server Analyzer's
//!   port-conflict rule lists the same value names as every static port under `MSExchangeSA`,
//!   `MSExchangeIS` and `MSExchangeSRS` (no separate RFR value).
//! - KB 298369: a Global Catalog answers NSPI itself; its port is `NTDS\Parameters` "TCP/IP Port".
//! - KB 161931 "Configuring MTA TCP/IP port # for X.400 and RPC listens": the MTA's RPC port is a
//!   value under `MSExchangeMTA\Parameters` (Exchange 2000 in mixed mode only); its value name is
//!   not given here because no source at hand could confirm it.
//! - KB 224196 "Restricting Active Directory replication traffic and client RPC traffic to a
//!   specific port": `NTDS\Parameters` "TCP/IP Port" (DRSUAPI) and `Netlogon\Parameters`
//!   "DCTcpipPort".

/// Where a service's RPC port is pinned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortPin {
    /// Registry key, `HKLM\SYSTEM\CurrentControlSet\Services\...`.
    pub key: &'static str,
    /// The REG_DWORD value under it, when a source names it.
    pub value: Option<&'static str>,
    /// The Microsoft KB article that documents it.
    pub kb: &'static str,
}

impl PortPin {
    /// `HKLM\...\Parameters\TCP/IP Port`, or the key and its KB when the value is not named.
    pub fn path(&self) -> String {
        match self.value {
            Some(v) => format!("{}\\{v}", self.key),
            None => self.key.to_string(),
        }
    }
}

/// Which server answers the interface, when the service lives on both (NSPI).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    /// An Exchange server (or unknown).
    Exchange,
    /// A domain controller / Global Catalog.
    DomainController,
}

macro_rules! pin {
    ($key:literal, $value:expr, $kb:literal) => {
        PortPin {
            key: concat!("HKLM\\SYSTEM\\CurrentControlSet\\Services\\", $key),
            value: $value,
            kb: $kb,
        }
    };
}

/// Service id, host, pin. `None` host: whatever answers.
const PINS: &[(&str, Option<Host>, PortPin)] = &[
    (
        "mapi",
        None,
        pin!(
            "MSExchangeIS\\ParametersSystem",
            Some("TCP/IP Port"),
            "KB 270836"
        ),
    ),
    (
        "exchange_store_admin",
        None,
        pin!(
            "MSExchangeIS\\ParametersSystem",
            Some("TCP/IP Port"),
            "KB 270836"
        ),
    ),
    (
        "nspi",
        Some(Host::Exchange),
        pin!(
            "MSExchangeSA\\Parameters",
            Some("TCP/IP NSPI Port"),
            "KB 270836"
        ),
    ),
    (
        "nspi",
        Some(Host::DomainController),
        pin!("NTDS\\Parameters", Some("TCP/IP Port"), "KB 298369"),
    ),
    (
        "rfr",
        None,
        pin!("MSExchangeSA\\Parameters", Some("TCP/IP Port"), "KB 270836"),
    ),
    (
        "exchange_sa",
        None,
        pin!("MSExchangeSA\\Parameters", Some("TCP/IP Port"), "KB 270836"),
    ),
    (
        "exchange_mta",
        None,
        pin!("MSExchangeMTA\\Parameters", None, "KB 161931"),
    ),
    (
        "drsuapi",
        None,
        pin!("NTDS\\Parameters", Some("TCP/IP Port"), "KB 224196"),
    ),
    (
        "netlogon",
        None,
        pin!("Netlogon\\Parameters", Some("DCTcpipPort"), "KB 224196"),
    ),
];

/// The registry setting that pins `service`'s port on `host`, if there is one.
pub fn port_pin(service: &str, host: Host) -> Option<&'static PortPin> {
    PINS.iter()
        .find(|(s, h, _)| *s == service && h.is_none_or(|h| h == host))
        .map(|(_, _, p)| p)
}

/// Services whose announcing server is a domain controller.
pub const DC_SERVICES: &[&str] = &["drsuapi", "netlogon"];

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICES: &str = "HKLM\\SYSTEM\\CurrentControlSet\\Services";

    #[test]
    fn pins() {
        let store = port_pin("mapi", Host::Exchange).unwrap();
        assert_eq!(
            store.path(),
            "HKLM\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem\\TCP/IP Port"
        );
        assert!(store.key.starts_with(SERVICES));
        assert_eq!(
            port_pin("nspi", Host::Exchange).unwrap().value,
            Some("TCP/IP NSPI Port")
        );
        assert_eq!(
            port_pin("nspi", Host::DomainController).unwrap().kb,
            "KB 298369"
        );
        assert!(port_pin("exchange_mta", Host::Exchange)
            .unwrap()
            .path()
            .ends_with("MSExchangeMTA\\Parameters"));
        assert_eq!(
            port_pin("netlogon", Host::DomainController).unwrap().value,
            Some("DCTcpipPort")
        );
        assert!(port_pin("msrpc_dynamic", Host::Exchange).is_none());
        assert!(port_pin("smtp", Host::Exchange).is_none());
    }
}
