//! CSV output: one row per service, or one row per flow with `--flows`.

use std::io::{self, Write};

use super::{FlowView, Percentiles, Report};

/// `p50,p95,max` of a distribution; empty fields when nothing was recorded (not 0).
fn percentiles(p: &Percentiles) -> String {
    if p.count == 0 {
        ",,".to_string()
    } else {
        format!("{},{},{}", p.p50, p.p95, p.max)
    }
}

/// Quotes a field when it needs it (RFC 4180): the one CSV quoting rule.
pub fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One row per service.
pub fn write_services_csv(w: &mut dyn Write, r: &Report) -> io::Result<()> {
    writeln!(
        w,
        "service,flows,packets,bytes,to_server_packets,to_server_bytes,to_client_packets,\
to_client_bytes,established,unanswered,refused,icmp_unreachable,one_way,midstream,\
icmp_admin_prohibited,evicted,duration_s_p50,duration_s_p95,duration_s_max,\
handshake_rtt_ms_p50,handshake_rtt_ms_p95,handshake_rtt_ms_max,handshake_rtt_count,\
tcp_flows_troubled,tcp_retransmitted,tcp_reset_mid_session,tcp_stalled"
    )?;
    for s in &r.services {
        let o = &s.outcomes;
        writeln!(
            w,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            field(&s.service),
            s.flows,
            s.packets,
            s.bytes,
            s.to_server.packets,
            s.to_server.bytes,
            s.to_client.packets,
            s.to_client.bytes,
            o.established,
            o.unanswered,
            o.refused,
            o.icmp_unreachable,
            o.one_way,
            s.midstream,
            s.icmp_admin_prohibited,
            s.evicted,
            percentiles(&s.duration_s),
            percentiles(&s.handshake_rtt_ms),
            s.handshake_rtt_ms.count,
            s.tcp.flows_troubled,
            s.tcp.retransmitted,
            s.tcp.reset_by_client + s.tcp.reset_by_server,
            s.tcp.stalled
        )?;
    }
    Ok(())
}

/// The header of the one-row-per-flow CSV.
pub const FLOWS_CSV_HEADER: &str = "service,proto,client,server,outcome,midstream,\
to_server_packets,to_server_bytes,to_client_packets,to_client_bytes,first_ts,last_ts,icmp_code,\
followup_of";

/// One row per flow.
pub fn write_flows_csv(w: &mut dyn Write, flows: &[FlowView]) -> io::Result<()> {
    writeln!(w, "{FLOWS_CSV_HEADER}")?;
    for f in flows {
        write_flow_row(w, f)?;
    }
    Ok(())
}

/// The CSV row of one flow.
pub fn write_flow_row(w: &mut dyn Write, f: &FlowView) -> io::Result<()> {
    writeln!(
        w,
        "{},{},{},{},{},{},{},{},{},{},{:.6},{:.6},{},{}",
        field(&f.service),
        f.proto,
        field(&f.client),
        field(&f.server),
        f.outcome.as_str(),
        f.midstream,
        f.to_server.packets,
        f.to_server.bytes,
        f.to_client.packets,
        f.to_client.bytes,
        f.first_ts,
        f.last_ts,
        f.icmp
            .as_ref()
            .map(|i| i.code.to_string())
            .unwrap_or_default(),
        f.followup_of.map(|i| i.to_string()).unwrap_or_default()
    )
}
