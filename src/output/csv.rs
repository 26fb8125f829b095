//! CSV output: one row per service, or one row per flow with `--flows`.

use std::io::{self, Write};

use super::{ts_secs, FlowView, Percentiles, Report};
use crate::packet::Nanos;
use crate::summary::FlowRecord;

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
    if needs_quotes(s) {
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

/// The CSV row of one flow from its record: what [`write_flow_row`] writes for the record's
/// view, built in `line` (emptied first) and written in one call. A `--flows` CSV run writes a
/// row for every flow: building the whole view for its 14 columns (the RFC 3339 times, the
/// trackers' findings, the TCP health) took about 4 000 instructions a flow, and `writeln!`
/// on the output, a write per piece and its times through exact float formatting, 5 200.
pub fn write_record_row(
    w: &mut dyn Write,
    line: &mut String,
    service: &str,
    r: &FlowRecord,
) -> io::Result<()> {
    use std::fmt::Write as _;
    line.clear();
    push_field(line, &service);
    let _ = write!(line, ",{},", r.proto);
    push_field(line, &r.client);
    line.push(',');
    push_field(line, &r.server);
    let _ = write!(
        line,
        ",{},{},{},{},{},{},",
        r.outcome.as_str(),
        r.midstream,
        r.to_server.packets,
        r.to_server.bytes,
        r.to_client.packets,
        r.to_client.bytes
    );
    push_secs(line, r.first_ts);
    line.push(',');
    push_secs(line, r.last_ts);
    line.push(',');
    if let Some((_, code, _)) = r.icmp {
        let _ = write!(line, "{code}");
    }
    line.push(',');
    if let Some(id) = r.followup_of {
        let _ = write!(line, "{id}");
    }
    line.push('\n');
    w.write_all(line.as_bytes())
}

/// Whether a CSV field must be quoted ([`field`]).
fn needs_quotes(s: &str) -> bool {
    s.contains([',', '"', '\n', '\r'])
}

/// `v`'s text as [`field`] quotes it, written in place (an endpoint or a service name never
/// needs quotes).
fn push_field(line: &mut String, v: &impl std::fmt::Display) {
    use std::fmt::Write as _;
    let at = line.len();
    let _ = write!(line, "{v}");
    if line.get(at..).is_some_and(needs_quotes) {
        let quoted = field(line.get(at..).unwrap_or_default());
        line.truncate(at);
        line.push_str(&quoted);
    }
}

/// Capture time `ts` as `{:.6}` writes [`ts_secs`]`(ts)`: whole microseconds. Within 2^33
/// seconds of 1970 (the years 1697 to 2242) the `f64` is within half a microsecond of the
/// exact value, so its six decimals are the microseconds' digits, written here from the
/// integer; beyond, through the float.
fn push_secs(line: &mut String, ts: Nanos) {
    use std::fmt::Write as _;
    let us = ts / 1000;
    let a = us.unsigned_abs();
    if a < (1u64 << 33) * 1_000_000 {
        if us < 0 {
            line.push('-');
        }
        let _ = write!(line, "{}.{:06}", a / 1_000_000, a % 1_000_000);
    } else {
        let _ = write!(line, "{:.6}", ts_secs(ts));
    }
}

#[cfg(test)]
mod record_row_tests {
    use super::*;

    proptest::proptest! {
        /// Whole microseconds read as the float's six decimals, anywhere a capture time can be.
        #[test]
        fn seconds_read_as_the_float_reads(ts in proptest::prelude::any::<i64>()) {
            let mut line = String::new();
            push_secs(&mut line, ts);
            proptest::prop_assert_eq!(line, format!("{:.6}", ts_secs(ts)));
        }

        /// Near the edge of the integer path and of the epoch.
        #[test]
        fn seconds_at_the_edges(
            us in -(1i64 << 33) * 1_000_000 - 5..(1i64 << 33) * 1_000_000 + 5,
            ns in 0i64..1000,
        ) {
            let ts = us.saturating_mul(1000).saturating_add(ns);
            let mut line = String::new();
            push_secs(&mut line, ts);
            proptest::prop_assert_eq!(line, format!("{:.6}", ts_secs(ts)));
        }
    }

    #[test]
    fn a_field_with_a_comma_is_quoted_as_field_quotes_it() {
        let mut line = String::new();
        push_field(&mut line, &"a,\"b\"");
        push_field(&mut line, &"c\nd");
        push_field(&mut line, &"plain");
        assert_eq!(line, format!("{}{}plain", field("a,\"b\""), field("c\nd")));
        for ts in [
            0,
            -1,
            -999,
            -1000,
            -1_500_000_000,
            1_078_142_401_500_000_000,
        ] {
            let mut line = String::new();
            push_secs(&mut line, ts);
            assert_eq!(line, format!("{:.6}", ts_secs(ts)), "{ts}");
        }
    }
}
