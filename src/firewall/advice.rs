//! The words of a rule: `why` (what the port is for, and what announced it) and `advice` (what a
//! careful administrator does about it), from the catalogue and the announcing follow-up.

use super::{Rule, Status};
use crate::classify::{port_pin, Catalogue, Host, PortPin, ServiceKind};
use crate::output::FollowupView;

/// Distinct dynamic ports from which the advice says the clients seem to use a range.
const RANGE_HINT: usize = 3;
/// Ports a rule counts one by one; past it, "more than" that.
use super::collect::PORTS_KEPT as PORTS_COUNTED;

/// What the port is for, in plain words.
pub(super) fn why(r: &Rule, fu: Option<&FollowupView>, cat: &Catalogue) -> String {
    let desc = cat
        .find(&r.service)
        .map(|s| cat.service(s).description.clone())
        .unwrap_or_default();
    let Some(e) = fu else {
        return format!("{desc} ({}/{})", r.proto, r.dst_ports);
    };
    let host = |s: &str| s.rsplit_once(':').map_or(s, |(h, _)| h).to_string();
    match e.kind.as_str() {
        "tower" => {
            let what = e
                .interface
                .as_ref()
                .filter(|i| !i.name.is_empty())
                .map(|i| format!(", interface {} {}", i.name, i.uuid))
                .unwrap_or_default();
            format!(
                "announced by the endpoint mapper of {} for the {desc}{what}",
                host(&e.parent.server)
            )
        }
        "bind" => format!("an RPC bind named the {desc}"),
        "Call-Back" => format!(
            "RVP server calls subscribers back on the port in their Call-Back header (SUBSCRIBE \
             from {})",
            host(&e.parent.client)
        ),
        "h245Address" => format!("H.245 address in the H.225 {}", e.announced_by),
        "mediaChannel" | "mediaControlChannel" => format!(
            "H.323 media (RTP/RTCP) on ports announced in the H.245 {} of the call between {} \
             and {}",
            e.announced_by,
            host(&e.parent.client),
            host(&e.parent.server)
        ),
        "session" => match e.service.as_str() {
            "audio_media" => format!(
                "1731 audio media inferred between {} and {}",
                host(&e.parent.client),
                host(&e.parent.server)
            ),
            _ => format!("{desc}, inferred from the {} session", e.parent.service),
        },
        kind => format!("{desc}: {kind} in {} {}", e.parent.service, e.announced_by),
    }
}

/// How to pin an RPC service's port, from the pin table (`classify::port_pin`), the one source of
/// the registry settings; `None` for services no setting pins.
fn pinned_port(service: &str) -> Option<String> {
    let setting = |p: &PortPin| match p.value {
        Some(_) => format!("the registry value {} (REG_DWORD, {})", p.path(), p.kb),
        // No source at hand names the value: say where, and which article tells the rest.
        None => format!("a value under {} as {} describes", p.key, p.kb),
    };
    let exchange = port_pin(service, Host::Exchange);
    let dc = port_pin(service, Host::DomainController);
    let where_ = match (exchange, dc) {
        (Some(x), Some(d)) if x != d => format!(
            "on an Exchange server {}, on a Global Catalog {}",
            setting(x),
            setting(d)
        ),
        (Some(p), _) | (None, Some(p)) => setting(p),
        (None, None) => return None,
    };
    Some(format!(
        "pin the port with {where_} on the server, restart the service, and open that one port \
         (with tcp/135) instead of a range"
    ))
}

/// What to do about the rule.
pub(super) fn advice(
    r: &Rule,
    ports_seen: usize,
    fu: Option<&FollowupView>,
    cat: &Catalogue,
) -> String {
    let kind = cat.find(&r.service).map(|s| cat.service(s).kind);
    let dynamic = fu.is_some() || matches!(kind, Some(ServiceKind::Interface));
    let open = format!(
        "allow {}/{} from {} to {}",
        r.proto, r.dst_ports, r.src, r.dst
    );
    let ev = &r.evidence;
    let mut out = match r.status() {
        Status::Allowed => {
            let mut s = "nothing to do: it worked".to_string();
            if ev.refused > 0 {
                s += &format!(
                    "; {} attempt(s) were refused by the host (nothing listening then)",
                    ev.refused
                );
            }
            s
        }
        Status::Refused => format!(
            "not a firewall problem: {} answered with a reset (or port unreachable), so it is \
             reachable and nothing listens on {}/{}; start or configure the service there",
            r.dst, r.proto, r.dst_ports
        ),
        Status::Blocked => {
            let by = match ev.icmp_from.first() {
                Some(i) if i.admin_prohibited => {
                    format!(" ({} answered administratively prohibited)", i.addr)
                }
                Some(i) => format!(" ({} answered unreachable, code {})", i.addr, i.code),
                None => " (attempts went unanswered: a filter drops them)".to_string(),
            };
            format!("{open}{by}")
        }
        Status::PartlyBlocked => format!(
            "{open}: {} attempt(s) worked and {} did not; look for a second path through \
             another firewall, asymmetric routing, or a rule limited to some sources or times",
            ev.established + if r.proto == "tcp" { ev.one_way } else { 0 },
            ev.unanswered + ev.icmp_unreachable + if r.proto == "udp" { ev.one_way } else { 0 }
        ),
        Status::NotSeen => format!(
            "announced but never tried in this capture; if the capture was taken behind the \
             firewall, {open}"
        ),
    };
    if dynamic && !matches!(r.status(), Status::Allowed | Status::Refused) {
        let rpc = matches!(kind, Some(ServiceKind::Interface));
        if let Some(pin) = pinned_port(&r.service) {
            out += &format!("; better: {pin}");
        } else if rpc {
            out += "; better: pin the service's RPC port or narrow the RPC range \
                     (HKLM\\SOFTWARE\\Microsoft\\Rpc\\Internet, Ports) and open only that (with tcp/135)";
        } else if matches!(
            r.service.as_str(),
            "rvp_callback" | "h323_h245" | "h323_media" | "audio_media"
        ) {
            let what = if r.service == "rvp_callback" {
                "restrict the clients' RVP call-back port range and open only that range from the \
                 RVP server, or use a gateway that follows RVP"
            } else {
                "use an H.323-aware gateway or proxy that opens media ports per call, or restrict \
                 the endpoints' port range and open only that"
            };
            out += &format!("; better: {what}");
        }
        if ports_seen >= RANGE_HINT {
            out += &format!(
                "; the {} ports seen ({}) suggest a range in use",
                if ports_seen > PORTS_COUNTED {
                    format!("more than {PORTS_COUNTED}")
                } else {
                    ports_seen.to_string()
                },
                r.dst_ports
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_come_from_the_pin_table() {
        let path = |s: &str, h: Host| port_pin(s, h).unwrap().path();
        let mapi = pinned_port("mapi").unwrap();
        assert!(mapi.contains(&path("mapi", Host::Exchange)), "{mapi}");
        let nspi = pinned_port("nspi").unwrap();
        assert!(
            nspi.contains(&format!(
                "on an Exchange server the registry value {} (REG_DWORD, KB 270836), on a Global \
                 Catalog the registry value {} (REG_DWORD, KB 298369)",
                path("nspi", Host::Exchange),
                path("nspi", Host::DomainController)
            )),
            "{nspi}"
        );
        let mta = pinned_port("exchange_mta").unwrap();
        let key = port_pin("exchange_mta", Host::Exchange).unwrap().key;
        assert!(
            mta.contains(&format!("a value under {key} as KB 161931 describes")),
            "{mta}"
        );
        assert!(pinned_port("msrpc_dynamic").is_none());
        assert!(pinned_port("smtp").is_none());
        // No registry path is spelled out here: the pin table is the one source.
        let code = include_str!("advice.rs")
            .split("#[cfg(test)]")
            .next()
            .unwrap();
        assert!(!code.contains("CurrentControlSet") && !code.contains("MSExchange"));
    }
}
