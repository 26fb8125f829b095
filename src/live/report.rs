//! What live mode prints every interval: one NDJSON line (the interval's v1 report plus its bounds,
//! the capture's health and the cumulative report), or a refreshed table on a terminal.

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use crate::analyze::Analysis;
use crate::firewall::FirewallReport;
use crate::output::time::{datetime, time_of_day};
use crate::output::{write_table, Report, TableOptions};

/// Packets the capture library saw, from its statistics (`pcap_stats`).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CaptureView {
    /// Packets that passed the filter and reached the buffer.
    pub received: u64,
    /// Packets dropped because exflow did not read fast enough (buffer full).
    pub dropped: u64,
    /// Packets dropped by the interface or its driver.
    pub if_dropped: u64,
}

/// The bounds of one interval.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct IntervalView {
    /// 1 for the first interval.
    pub seq: u64,
    /// When the capture started, wall-clock seconds since the Unix epoch.
    pub run_start: f64,
    /// Wall-clock seconds since the Unix epoch.
    pub start: f64,
    pub end: f64,
    /// The run's last line: `totals` is the final report.
    #[serde(rename = "final")]
    pub last: bool,
}

/// The cumulative report since the start of the run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TotalsView {
    #[serde(flatten)]
    pub report: Report,
    pub capture: CaptureView,
    /// `--firewall`: the run's rules so far (`exflow.firewall.v1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firewall: Option<FirewallReport>,
}

/// One NDJSON line: the interval's own report (a complete `exflow.report.v1`), then the extras.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LiveReport {
    #[serde(flatten)]
    pub report: Report,
    pub interval: IntervalView,
    pub capture: CaptureView,
    /// `--firewall`: the interval's rules (`exflow.firewall.v1`): flows that ended in it and
    /// open flows that carried packets in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firewall: Option<FirewallReport>,
    pub totals: TotalsView,
}

impl LiveReport {
    pub fn new(
        interval: &Analysis,
        totals: &Analysis,
        bounds: IntervalView,
        capture: CaptureView,
        capture_totals: CaptureView,
    ) -> LiveReport {
        LiveReport {
            report: Report::new(interval),
            interval: bounds,
            capture,
            firewall: FirewallReport::of(interval),
            totals: TotalsView {
                report: Report::new(totals),
                capture: capture_totals,
                firewall: FirewallReport::of(totals),
            },
        }
    }
}

/// How the reports are rendered.
#[derive(Clone, Copy, Debug)]
pub enum Render {
    /// One JSON object per line.
    Ndjson,
    /// Tables; `refresh` clears the terminal before each interval.
    Table { opt: TableOptions, refresh: bool },
}

/// Writes one interval's report.
pub fn write(w: &mut dyn Write, r: &LiveReport, render: Render) -> io::Result<()> {
    match render {
        Render::Ndjson => {
            serde_json::to_writer(&mut *w, r)?;
            writeln!(w)?;
        }
        Render::Table { opt, refresh } if refresh && !r.interval.last => {
            // One screen: the interval first, then the totals, cut to the terminal's height so
            // that nothing scrolls the interval away.
            let mut text = Vec::new();
            tables(&mut text, r, opt)?;
            let text = String::from_utf8_lossy(&text);
            write!(w, "\x1b[H\x1b[2J{}", fit_screen(&text, terminal_rows()))?;
        }
        Render::Table { opt, refresh } => {
            if refresh {
                write!(w, "\x1b[H\x1b[2J")?;
            }
            tables(w, r, opt)?;
        }
    }
    w.flush()
}

/// The interval's and the totals' tables (or the final report).
fn tables(w: &mut dyn Write, r: &LiveReport, opt: TableOptions) -> io::Result<()> {
    let i = &r.interval;
    if i.last {
        writeln!(
            w,
            "FINAL REPORT (run started {} UTC)",
            datetime(i.run_start)
        )?;
        capture_line(w, &r.totals.capture)?;
        write_table(w, &r.totals.report, opt)?;
        return firewall_table(w, r.totals.firewall.as_ref());
    }
    writeln!(
        w,
        "INTERVAL {} {} → {} UTC",
        i.seq,
        datetime(i.start),
        time_of_day(i.end)
    )?;
    capture_line(w, &r.capture)?;
    write_table(w, &r.report, opt)?;
    firewall_table(w, r.firewall.as_ref())?;
    writeln!(w, "TOTALS")?;
    capture_line(w, &r.totals.capture)?;
    write_table(w, &r.totals.report, opt)
}

/// The firewall report's table after a report's, with `--firewall`.
fn firewall_table(w: &mut dyn Write, fw: Option<&FirewallReport>) -> io::Result<()> {
    let Some(fw) = fw else { return Ok(()) };
    writeln!(w)?;
    crate::firewall::render::write_table(w, fw)
}

/// At most `rows` lines of `text`: the first `rows - 1`, then how many were left out.
pub fn fit_screen(text: &str, rows: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let rows = rows.max(4);
    if lines.len() <= rows {
        return text.to_string();
    }
    let keep = rows - 1;
    let mut out = lines
        .iter()
        .take(keep)
        .copied()
        .collect::<Vec<_>>()
        .join("\n");
    out.push_str(&format!(
        "\n… {} more lines: widen the terminal, or --format ndjson for everything",
        lines.len() - keep
    ));
    out.push('\n');
    out
}

/// The terminal's height: `LINES`, else what `stty size` says about the controlling terminal,
/// else 24.
fn terminal_rows() -> usize {
    if let Some(n) = std::env::var("LINES").ok().and_then(|v| v.parse().ok()) {
        return n;
    }
    let tty = std::fs::File::open("/dev/tty").ok();
    tty.and_then(|tty| {
        std::process::Command::new("stty")
            .arg("size")
            .stdin(tty)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
    })
    .and_then(|o| {
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .next()
            .and_then(|r| r.parse().ok())
    })
    .filter(|&n: &usize| n > 0)
    .unwrap_or(24)
}

fn capture_line(w: &mut dyn Write, c: &CaptureView) -> io::Result<()> {
    writeln!(
        w,
        "capture: {} received, {} dropped by exflow's buffer, {} dropped by the interface",
        c.received, c.dropped, c.if_dropped
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--firewall` with the table format: the interval's firewall table follows its report,
    /// the final report ends with the run's; without it there is none.
    #[test]
    fn firewall_tables_follow_the_reports() {
        use crate::analyze::{Analyzer, Config};
        let render = |firewall: bool, last: bool| {
            let a = Analyzer::new(Config {
                firewall: firewall.then(crate::firewall::FirewallOptions::default),
                ..Config::default()
            })
            .finish();
            let bounds = IntervalView {
                seq: 1,
                run_start: 0.0,
                start: 0.0,
                end: 1.0,
                last,
            };
            let r = LiveReport::new(
                &a,
                &a,
                bounds,
                CaptureView::default(),
                CaptureView::default(),
            );
            assert_eq!(r.firewall.is_some(), firewall);
            assert_eq!(r.totals.firewall.is_some(), firewall);
            let mut out = Vec::new();
            let opt = TableOptions {
                color: false,
                failures_per_service: 10,
            };
            write(
                &mut out,
                &r,
                Render::Table {
                    opt,
                    refresh: false,
                },
            )
            .unwrap();
            String::from_utf8(out).unwrap()
        };
        for last in [false, true] {
            let text = render(true, last);
            let at = text.find("exflow firewall report").expect(&text);
            let report = if last { "FINAL REPORT" } else { "INTERVAL 1" };
            assert!(text.find(report).unwrap() < at, "{text}");
            if !last {
                assert!(at < text.find("TOTALS").unwrap(), "{text}");
            }
            assert!(!render(false, last).contains("exflow firewall report"));
        }
    }

    #[test]
    fn refresh_fits_the_screen() {
        let text: String = (1..=40).map(|i| format!("line {i}\n")).collect();
        let fitted = fit_screen(&text, 24);
        assert_eq!(fitted.lines().count(), 24);
        assert!(fitted.starts_with("line 1\n"));
        assert!(fitted.lines().nth(22) == Some("line 23"));
        assert!(fitted
            .ends_with("… 17 more lines: widen the terminal, or --format ndjson for everything\n"));
        let short = "a\nb\n";
        assert_eq!(fit_screen(short, 24), short);
    }
}
