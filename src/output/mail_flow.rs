//! The table's MAIL FLOW section: each SMTP session that did not deliver with the reply that
//! decided it, then DNS lookups that failed and directory (LDAP) operations that were refused.
//! Rendered from the report's `diagnostics` objects, so the table says what the JSON says.

use std::io::{self, Write};

use serde_json::Value;

use super::time::time_of_day;
use super::Report;

/// The trackers whose findings this section renders (the rest go to LOGIN AND BIND FAILURES).
pub(crate) const SECTION_TRACKERS: [&str; 3] = ["smtp", "dns", "ldap"];

/// Widest line of the section.
const WIDTH: usize = 100;

/// Writes the section, if any tracker found a problem.
pub(super) fn write(
    w: &mut dyn Write,
    r: &Report,
    per_section: usize,
    red: &dyn Fn(&str) -> String,
    bold: &dyn Fn(&str) -> String,
    dim: &dyn Fn(&str) -> String,
) -> io::Result<()> {
    let parts = [
        (
            "smtp",
            "SMTP sessions that did not deliver",
            smtp_line as fn(&Value) -> String,
        ),
        ("dns", "DNS lookups that failed", dns_line),
        ("ldap", "Directory operations that failed", ldap_line),
    ];
    let lists: Vec<(&str, &[Value], u64)> = parts
        .iter()
        .filter_map(|(key, title, _)| {
            let d = r.diagnostics.get(*key)?;
            let list = d.get("problems")?.as_array()?;
            let unlisted = d
                .get("problems_not_listed")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            (!list.is_empty()).then_some((*title, list.as_slice(), unlisted))
        })
        .collect();
    if lists.is_empty() {
        return Ok(());
    }
    writeln!(w, "{}", bold("MAIL FLOW"))?;
    if let Some(summary) = r.diagnostics.get("smtp").and_then(smtp_summary) {
        writeln!(w, "{summary}")?;
    }
    for (title, list, unlisted) in lists {
        let line = parts
            .iter()
            .find(|p| p.1 == title)
            .map_or(smtp_line as fn(&Value) -> String, |p| p.2);
        writeln!(
            w,
            "{}",
            bold(&format!("{title} ({})", list.len() as u64 + unlisted))
        )?;
        for p in list.iter().take(per_section) {
            let text = line(p);
            let mut parts = text.split('\n');
            if let Some(first) = parts.next() {
                writeln!(w, "  {}", red(&fit(first, WIDTH - 2)))?;
            }
            for more in parts {
                writeln!(w, "{}", dim(more))?;
            }
        }
        let more = (list.len().saturating_sub(per_section)) as u64 + unlisted;
        if more > 0 {
            writeln!(
                w,
                "  {}",
                dim(&format!("… and {more} more (see --format json)"))
            )?;
        }
    }
    writeln!(w)
}

/// `SMTP: 6 sessions: 1 delivered, 2 rejected, ...`.
fn smtp_summary(d: &Value) -> Option<String> {
    let sessions = d.get("sessions")?.as_u64()?;
    let verdicts: Vec<String> = d
        .get("verdicts")?
        .as_object()?
        .iter()
        .map(|(k, v)| format!("{} {k}", v.as_u64().unwrap_or(0)))
        .collect();
    Some(format!(
        "SMTP: {sessions} sessions: {}",
        verdicts.join(", ")
    ))
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("?")
}

fn smtp_line(p: &Value) -> String {
    let time = p
        .get("time")
        .and_then(Value::as_f64)
        .map(time_of_day)
        .unwrap_or_default();
    let mut line = format!(
        "{time} {} → {}  {}",
        s(p, "client"),
        s(p, "server"),
        s(p, "verdict")
    );
    if let Some(r) = p.get("reply").filter(|r| !r.is_null()) {
        let room = (WIDTH - 4).saturating_sub(line.chars().count() + 6).max(24);
        let text = fit(r.get("text").and_then(Value::as_str).unwrap_or(""), room);
        line.push_str(&format!(
            ": {} {text}",
            r.get("code").unwrap_or(&Value::Null)
        ));
    }
    // The addresses are what the administrator searches for: on the line when they fit, else
    // on one of their own.
    if let Some(from) = p.get("mail_from").and_then(Value::as_str) {
        let rcpt: Vec<&str> = p
            .get("rcpt")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let addresses = format!("<{from}> → {}", rcpt.join(", "));
        if line.chars().count() + 2 + addresses.chars().count() <= WIDTH - 2 {
            line.push_str("  ");
            line.push_str(&addresses);
        } else {
            line.push_str("\n    ");
            line.push_str(&fit(&addresses, WIDTH - 4));
        }
    }
    line
}

fn dns_line(p: &Value) -> String {
    let servers: Vec<&str> = p
        .get("servers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    format!(
        "{} {} → {} ×{} (server {})",
        s(p, "qtype"),
        s(p, "name"),
        s(p, "outcome"),
        p.get("count").and_then(Value::as_u64).unwrap_or(0),
        servers.join(", ")
    )
}

fn ldap_line(p: &Value) -> String {
    let mut line = format!(
        "{} → {} ({}) from {} ×{}",
        s(p, "op"),
        s(p, "name"),
        p.get("code").unwrap_or(&Value::Null),
        s(p, "server"),
        p.get("count").and_then(Value::as_u64).unwrap_or(0),
    );
    if let Some(m) = p
        .get("message")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
    {
        line.push_str(&format!(": {m}"));
    }
    line
}

/// `text` cut to `width` characters, with `…` when cut; control characters shown as `.`.
fn fit(text: &str, width: usize) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { '.' } else { c })
        .collect();
    if clean.chars().count() <= width {
        return clean;
    }
    let mut out: String = clean.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_fit_and_name_the_reply_and_addresses() {
        let p = serde_json::json!({
            "client": "10.1.0.5:1040", "server": "10.2.0.2:25", "time": 3600.0,
            "verdict": "rejected", "reply": {"code": 550, "text": "5.7.1 Unable to relay"},
            "mail_from": "a@x.example", "rcpt": ["b@y.example"],
        });
        assert_eq!(
            smtp_line(&p),
            "01:00:00.000 10.1.0.5:1040 → 10.2.0.2:25  rejected: 550 5.7.1 Unable to relay\n    \
             <a@x.example> → b@y.example",
            "addresses that do not fit go on a line of their own"
        );
        let short = serde_json::json!({
            "client": "10.1.0.5:1040", "server": "10.2.0.2:25", "time": 0.0,
            "verdict": "deferred", "reply": {"code": 451, "text": "4.7.1 Greylisted"},
            "mail_from": "a@x", "rcpt": ["b@y"],
        });
        assert_eq!(
            smtp_line(&short),
            "00:00:00.000 10.1.0.5:1040 → 10.2.0.2:25  deferred: 451 4.7.1 Greylisted  <a@x> → b@y"
        );
        assert_eq!(fit("abc\u{1}def", 5), "abc.…");
        assert_eq!(fit("abc", 5), "abc");
    }
}
