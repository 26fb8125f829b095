//! The `exflow` command line: parse arguments, build a validated configuration, run, map the
//! result to an exit status. All the work is in the library.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use exflow::analyze::{analyze_files_with, Completeness, Config};
use exflow::classify::{Catalogue, Origin, ServiceKind};
use exflow::flow::FlowConfig;
use exflow::output::events::{Dest as EventDest, EventStream, EventWriter};
use exflow::output::{self, Report, TableOptions};

/// Exit status: every input read, report complete.
const EXIT_OK: u8 = 0;
/// Exit status: a report was printed, but some input could not be read (see the warnings).
const EXIT_PARTIAL: u8 = 1;
/// Exit status: nothing was analysed (no readable packet, or bad arguments).
const EXIT_NOTHING: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "exflow",
    version,
    about = "Classify Microsoft Exchange 2000 traffic in captures: services, failed and blocked \
             connections, dynamic follow-up ports",
    after_help = "Exit status: 0 complete report, 1 partial report (some input unreadable), \
                  2 nothing analysed or bad arguments."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Analyse capture files (pcap, pcapng, gzip-compressed either; `-` reads stdin).
    Analyze(AnalyzeArgs),
    /// Print the port catalogue.
    Catalogue(CatalogueArgs),
    /// Analyse capture files and report the firewall rules the traffic needed: blocked first.
    Firewall(FirewallArgs),
    /// Monitor a live interface (needs the `live` feature).
    Live(LiveArgs),
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Table,
    Json,
    Csv,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum FirewallFormat {
    /// Sentences an administrator can act on, blocked first.
    Table,
    /// `exflow.firewall.v1` (docs/firewall.md).
    Json,
    /// An nftables ruleset to review and load (`nft -c -f FILE` checks it).
    Nft,
    /// Windows `netsh advfirewall firewall add rule` lines for the destination hosts.
    Netsh,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(clap::Args, Debug)]
struct CatalogueOpt {
    /// Add or override catalogue entries from FILE (format: see `exflow catalogue --help`).
    #[arg(long, value_name = "FILE")]
    catalogue: Vec<String>,
}

/// Analysis options shared by `analyze` and `live`.
#[derive(clap::Args, Debug)]
struct AnalysisOpts {
    #[command(flatten)]
    catalogue: CatalogueOpt,
    /// Most flows held at once; beyond it the least recently active are evicted (and counted).
    #[arg(long, default_value_t = exflow::flow::DEFAULT_MAX_FLOWS, value_name = "N")]
    max_flows: usize,
    /// Idle timeout of TCP flows, seconds of capture time.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    tcp_timeout: u32,
    /// Idle timeout of UDP and other flows, seconds of capture time.
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    udp_timeout: u32,
    /// Flow records kept for --flows; past it flows are still counted but not listed.
    #[arg(long, default_value_t = 1_000_000, value_name = "N")]
    max_flow_records: usize,
    /// MiB of a gzip-compressed or streamed NetMon/NetXRay capture held in memory (those formats
    /// are read out of order; regular files are read in place and need no window).
    #[arg(long, default_value_t = 128, value_name = "MIB")]
    stream_window: usize,
    /// Read regular files with read calls instead of memory-mapping them (slower; for a capture
    /// that another program may truncate while exflow reads it, which kills a mapped reader).
    #[arg(long)]
    no_mmap: bool,
    /// Failed connections listed per service in the table.
    #[arg(long, default_value_t = 10, value_name = "N")]
    failures: usize,
    /// Bytes all trackers' reassembly buffers may hold at once, in MiB (reaching it is counted
    /// in `signalling.reassembly.refused`).
    #[arg(long, default_value_t = 64, value_name = "MIB")]
    reassembly_budget: usize,
    /// Problem records kept per mail-flow tracker (SMTP sessions not delivered, failed DNS
    /// lookups, failed LDAP results); more are counted in `problems_not_listed`.
    #[arg(long, default_value_t = 500, value_name = "N")]
    diagnostics_problems: usize,
    /// Per flow: SMTP transactions (and recipients per transaction), DNS transactions, LDAP
    /// (operation, result) pairs kept; more are counted.
    #[arg(long, default_value_t = 32, value_name = "N")]
    diagnostics_per_flow: usize,
    /// Colour in the table.
    #[arg(long, value_enum, default_value = "auto")]
    color: ColorChoice,
    /// Write NDJSON events (one per flow and per follow-up; live: and per interval, docs/events.md)
    /// to DEST: a file (appended; live: reopened on SIGHUP), `-` for stdout (the report then goes
    /// to stderr), or `unix:PATH` (a Unix stream or datagram socket).
    #[arg(long, value_name = "DEST")]
    events: Option<String>,
    /// Seed of the events' Community ID (v1).
    #[arg(long, default_value_t = 0, value_name = "N")]
    community_id_seed: u16,
    /// Analysis threads: above 1, the reader thread analyses a share of the host pairs itself and
    /// N-1 workers the rest; the report equals one thread's but for the documented differences
    /// (README, "Threads"). Default: the available cores, at most 4. With --events, and for a
    /// streamed --flows listing (JSON/CSV without --threads), the analysis runs on one thread.
    /// Live mode reads the interface on a thread of its own whatever N is.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    threads: Option<u16>,
}

impl AnalysisOpts {
    /// The pipeline's settings.
    fn config(&self, keep_flows: bool) -> Result<Config> {
        anyhow::ensure!(self.max_flows > 0, "--max-flows must be at least 1");
        let secs = |s: u32| i64::from(s) * 1_000_000_000;
        Ok(Config {
            catalogue: load_catalogue(&self.catalogue)?,
            flow: FlowConfig {
                max_flows: self.max_flows,
                tcp_timeout: secs(self.tcp_timeout),
                udp_timeout: secs(self.udp_timeout),
                ..FlowConfig::default()
            },
            keep_flows,
            reassembly_budget: self.reassembly_budget.saturating_mul(1 << 20),
            max_flow_records: self.max_flow_records,
            read: exflow::source::ReadLimits {
                window: self.stream_window.saturating_mul(1 << 20),
                map_files: !self.no_mmap,
                ..Default::default()
            },
            limits: exflow::track::Limits {
                problems: self.diagnostics_problems,
                per_flow: self.diagnostics_per_flow,
            },
            firewall: None,
        })
    }

    /// Threads of the analysis (1: the single-threaded analysis).
    fn threads(&self) -> usize {
        self.threads
            .map_or_else(exflow::shard::default_threads, usize::from)
    }

    /// How to draw the table; `tty` tells whether stdout is a terminal.
    fn table(&self, tty: bool) -> TableOptions {
        let color = match self.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && std::env::var_os("NO_COLOR").is_none(),
        };
        TableOptions {
            color,
            failures_per_service: self.failures,
        }
    }
}

#[derive(clap::Args, Debug)]
struct AnalyzeArgs {
    /// Capture files; `-` reads a capture stream from stdin.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value = "table")]
    format: Format,
    /// List every flow (table: after the summary; json: `flows`; csv: one row per flow).
    #[arg(long)]
    flows: bool,
    #[command(flatten)]
    opts: AnalysisOpts,
    /// No progress display on stderr.
    #[arg(long, short = 'q')]
    quiet: bool,
}

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Statuses: blocked (every attempt unanswered or ICMP-prohibited: a \
filter), partly_blocked (some attempts worked), refused (a reset: reachable, nothing listens), \
not_seen (a follow-up announced and never tried: nothing is known to need it yet), allowed. nft \
and netsh output allow the blocked and partly blocked rules only, unless --include-allowed or \
--include-not-seen."
)]
struct FirewallArgs {
    /// Capture files; `-` reads a capture stream from stdin.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value = "table")]
    format: FirewallFormat,
    #[command(flatten)]
    rules: RuleOpts,
    /// nft and netsh: also emit the rules for traffic that got through (or was refused).
    #[arg(long)]
    include_allowed: bool,
    /// nft and netsh: also emit the rules for follow-ups announced and never tried (`not_seen`).
    #[arg(long)]
    include_not_seen: bool,
    #[command(flatten)]
    opts: AnalysisOpts,
    /// No progress display on stderr.
    #[arg(long, short = 'q')]
    quiet: bool,
}

/// How firewall rules are grouped (`firewall`, `live --firewall`).
#[derive(clap::Args, Debug)]
struct RuleOpts {
    /// Group addresses into IPv4 prefixes of this length (`/24`; IPv6 into /64s).
    #[arg(long, value_name = "/LEN", value_parser = prefix_len)]
    aggregate: Option<u8>,
    /// Most firewall rule groups (proto, source, destination, service) held; flows that would
    /// make more are counted in `flows_over_rule_budget`.
    #[arg(long, default_value_t = exflow::firewall::DEFAULT_MAX_RULE_GROUPS, value_name = "N")]
    max_rule_groups: usize,
}

impl RuleOpts {
    fn options(&self) -> Result<exflow::firewall::FirewallOptions> {
        anyhow::ensure!(
            self.max_rule_groups > 0,
            "--max-rule-groups must be at least 1"
        );
        Ok(exflow::firewall::FirewallOptions {
            aggregate: self.aggregate,
            max_groups: self.max_rule_groups,
        })
    }
}

/// `--aggregate`: `/24` or `24`, 0 to 32.
fn prefix_len(s: &str) -> Result<u8, String> {
    let n = s.trim().trim_start_matches('/');
    match n.parse::<u8>() {
        Ok(n) if n <= 32 => Ok(n),
        _ => Err(format!("{s:?} is not a prefix length /0 to /32")),
    }
}

#[derive(clap::Args, Debug)]
#[command(after_help = "Catalogue file format: one service per line, \
`<id> <proto>/<port>[,<proto>/<port>...] [description]`, e.g. `mta_rpc tcp/2000 MTA (KB 161931)`. \
'#' starts a comment line. A new id adds a service; a port already in the catalogue moves to the \
service that names it last; a known id gains the ports and, if given, the description.")]
struct CatalogueArgs {
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value = "table")]
    format: Format,
    #[command(flatten)]
    catalogue: CatalogueOpt,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LiveFormat {
    /// A refreshed table on a terminal, NDJSON otherwise.
    Auto,
    Table,
    /// One JSON report per interval, one per line.
    Ndjson,
}

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Capturing needs root or, for a non-root user, the capabilities: \
`sudo setcap cap_net_raw,cap_net_admin+eip $(command -v exflow)`. \
SIGINT or SIGTERM ends the run with a final report (exit status 0)."
)]
struct LiveArgs {
    /// Interface to capture on (see --list-interfaces).
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    interface: Option<String>,
    /// List the interfaces that can be captured on, and exit.
    #[arg(short = 'D', long)]
    list_interfaces: bool,
    /// BPF capture filter (tcpdump syntax); may also be given as trailing words.
    #[arg(long, value_name = "BPF")]
    filter: Option<String>,
    /// Bytes captured of each packet; counts use the wire length whatever this is.
    #[arg(short = 's', long, default_value_t = 262_144, value_name = "BYTES")]
    snaplen: u32,
    /// Do not put the interface into promiscuous mode.
    #[arg(short = 'p', long)]
    no_promisc: bool,
    /// Kernel capture buffer, KiB (as tcpdump -B); the library default otherwise.
    #[arg(short = 'B', long, value_name = "KIB")]
    buffer_size: Option<u32>,
    /// Deliver packets at once instead of in batches (lower latency, more CPU).
    #[arg(long)]
    immediate_mode: bool,
    /// Seconds between reports.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    interval: f64,
    /// Stop after this many seconds with a final report (default: run until SIGINT/SIGTERM).
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
    /// Output: a refreshed table on a terminal, one JSON line per interval otherwise.
    #[arg(long, short = 'f', value_enum, default_value = "auto")]
    format: LiveFormat,
    /// Serve Prometheus metrics on [HOST]:PORT at /metrics (`:9467` is every interface,
    /// `localhost:9467` or `127.0.0.1:9467` one).
    #[arg(long, value_name = "[HOST]:PORT", value_parser = metrics_addr)]
    metrics: Option<std::net::SocketAddr>,
    /// Add the firewall report (docs/firewall.md) to every interval and to the final report:
    /// after the tables, or as a `firewall` object in each NDJSON line and its `totals`.
    #[arg(long)]
    firewall: bool,
    #[command(flatten)]
    rules: RuleOpts,
    #[command(flatten)]
    opts: AnalysisOpts,
    /// Capture filter as trailing words, as tcpdump takes it (`exflow live -i eth0 tcp port 25`).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "FILTER"
    )]
    filter_words: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::from(EXIT_OK);
            }
            say(format_args!("exflow: {e:#}\n"));
            ExitCode::from(EXIT_NOTHING)
        }
    }
}

/// Whether the error is a closed output pipe (`| head`): the reader wanted no more, which is
/// success. serde_json and the live loop wrap the `io::Error`, so their wrappers are looked into.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|c| io_error_kind(c) == Some(io::ErrorKind::BrokenPipe))
}

fn io_error_kind(c: &(dyn std::error::Error + 'static)) -> Option<io::ErrorKind> {
    if let Some(e) = c.downcast_ref::<io::Error>() {
        return Some(e.kind());
    }
    if let Some(e) = c.downcast_ref::<serde_json::Error>() {
        return e.io_error_kind();
    }
    #[cfg(feature = "live")]
    if let Some(exflow::live::LiveError::Output(e)) = c.downcast_ref() {
        return Some(e.kind());
    }
    None
}

/// Writes to stderr, ignoring failure: with stderr closed there is nobody left to tell, and
/// `eprintln!` would panic.
fn say(args: std::fmt::Arguments<'_>) {
    let _ = io::stderr().lock().write_fmt(args);
}

fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Analyze(args) => analyze(args),
        Command::Catalogue(args) => catalogue(args),
        Command::Firewall(args) => firewall(args),
        Command::Live(args) => live(args),
    }
}

#[cfg(not(feature = "live"))]
fn live(_: LiveArgs) -> Result<u8> {
    anyhow::bail!(
        "this exflow was built without live capture; rebuild with \
         `cargo build --release --features live` (needs libpcap: apt-get install libpcap-dev)"
    )
}

#[cfg(feature = "live")]
fn live(args: LiveArgs) -> Result<u8> {
    use exflow::live::{self, CaptureConfig, LiveConfig, Render};
    if args.list_interfaces {
        let mut out = io::stdout().lock();
        for (n, d) in live::list_interfaces()?.iter().enumerate() {
            writeln!(out, "{}.{d}", n + 1)?;
        }
        return Ok(EXIT_OK);
    }
    let Some(interface) = args.interface.clone() else {
        anyhow::bail!("live needs an interface: -i IFACE (see `exflow live --list-interfaces`)");
    };
    let filter = match (&args.filter, args.filter_words.is_empty()) {
        (Some(_), false) => {
            anyhow::bail!("give the filter either with --filter or as trailing words")
        }
        (Some(f), true) => Some(f.clone()),
        (None, false) => Some(args.filter_words.join(" ")),
        (None, true) => None,
    };
    // Up to 100 years: wall-clock deadlines are added to `Instant::now()`, which must not
    // overflow.
    let secs = |name: &str, v: f64| -> Result<Duration> {
        anyhow::ensure!(
            v.is_finite() && (0.1..=3_155_760_000.0).contains(&v),
            "--{name} must be between 0.1 seconds and 100 years"
        );
        Ok(Duration::from_secs_f64(v))
    };
    let interval = secs("interval", args.interval)?;
    let duration = args.duration.map(|d| secs("duration", d)).transpose()?;
    let tty = io::stdout().is_terminal();
    let render = match args.format {
        LiveFormat::Ndjson => Render::Ndjson,
        LiveFormat::Auto if !tty => Render::Ndjson,
        LiveFormat::Auto | LiveFormat::Table => Render::Table {
            opt: args.opts.table(tty),
            refresh: tty,
        },
    };
    anyhow::ensure!(
        args.firewall
            || (args.rules.aggregate.is_none()
                && args.rules.max_rule_groups == exflow::firewall::DEFAULT_MAX_RULE_GROUPS),
        "--aggregate and --max-rule-groups shape the firewall report: add --firewall"
    );
    anyhow::ensure!(
        !args.opts.no_mmap,
        "--no-mmap: live mode reads no capture file; drop --no-mmap"
    );
    anyhow::ensure!(
        args.opts.events.as_deref() != Some("-"),
        "--events -: live mode writes its reports on stdout; give a file or unix:PATH"
    );
    let config = LiveConfig {
        capture: CaptureConfig {
            interface,
            filter,
            snaplen: args.snaplen,
            promisc: !args.no_promisc,
            buffer_size: args.buffer_size.map(|k| k.saturating_mul(1024)),
            immediate: args.immediate_mode,
        },
        analysis: Config {
            firewall: args.firewall.then(|| args.rules.options()).transpose()?,
            ..args.opts.config(false)?
        },
        events: args
            .opts
            .events
            .as_deref()
            .map(|d| (EventDest::parse(d), args.opts.community_id_seed)),
        interval,
        threads: args.opts.threads(),
        duration,
        render,
        metrics: args.metrics,
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let quiet = !io::stderr().is_terminal();
    let iface = config.capture.interface.clone();
    let ending = live::run(config, &mut out, || {
        if !quiet {
            say(format_args!(
                "exflow: capturing on {iface}; Ctrl-C ends with a final report\n"
            ));
        }
    })?;
    out.flush()?;
    Ok(match ending {
        live::Ending::Stopped => EXIT_OK,
        live::Ending::CaptureFailed => EXIT_PARTIAL,
    })
}

fn load_catalogue(opt: &CatalogueOpt) -> Result<Catalogue> {
    let mut c = Catalogue::builtin();
    for path in &opt.catalogue {
        let bytes =
            std::fs::read(path).with_context(|| format!("{path}: cannot read catalogue"))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let bad = e.utf8_error().valid_up_to();
            let line = e
                .as_bytes()
                .iter()
                .take(bad)
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            anyhow::anyhow!("{path}: line {line}: not UTF-8 text")
        })?;
        c.apply(path, &text, Origin::User)?;
    }
    Ok(c)
}

/// Runs the analysis of `files`, telling of unreadable input on stderr; `Err(status)` when
/// there is nothing to report. `events` receives flow and follow-up events as they happen.
fn run_analysis(
    files: &[String],
    config: Config,
    events: Option<Box<dyn exflow::analyze::EventSink>>,
    threads: usize,
    quiet: bool,
) -> Result<(exflow::analyze::Analysis, Completeness), u8> {
    let mut progress = Progress::new(!quiet && io::stderr().is_terminal());
    let show = |name: &str, done, total, n| progress.show(name, done, total, n);
    // Events go out in capture-time order as one analyzer produces them: one thread.
    let run = match events {
        Some(_) => Ok(analyze_files_with(files, config, events, show)),
        None => exflow::shard::analyze_files(files, config, threads, show),
    };
    progress.clear();
    let (analysis, completeness) = match run {
        Ok(x) => x,
        Err(e) => {
            say(format_args!("exflow: {e}\n"));
            return Err(EXIT_NOTHING);
        }
    };
    let mut analysis = analysis;
    name_stdin(&mut analysis.input);
    let failed: Vec<&str> = analysis
        .input
        .files
        .iter()
        .filter_map(|f| f.error.as_deref())
        .collect();
    if completeness == Completeness::Nothing && failed.len() == files.len() {
        // Every input failed to open or read: its error is the whole story, one line each.
        for e in failed {
            say(format_args!("exflow: {e}\n"));
        }
        return Err(EXIT_NOTHING);
    }
    for w in &analysis.input.warnings {
        say(format_args!("exflow: warning: {w}\n"));
    }
    if completeness == Completeness::Nothing {
        say(format_args!(
            "exflow: nothing analysed: no packet could be read\n"
        ));
        return Err(EXIT_NOTHING);
    }
    Ok((analysis, completeness))
}

fn exit_status(completeness: Completeness) -> u8 {
    if completeness == Completeness::Partial {
        EXIT_PARTIAL
    } else {
        EXIT_OK
    }
}

fn firewall(args: FirewallArgs) -> Result<u8> {
    use exflow::firewall::{render, FirewallReport};
    anyhow::ensure!(
        args.opts.events.is_none(),
        "--events: exflow firewall writes no events; run exflow analyze --events for them"
    );
    // Rules are gathered as flows end: no flow record is kept for them.
    let rules = args.rules.options()?;
    let config = Config {
        firewall: Some(rules),
        ..args.opts.config(false)?
    };
    let (analysis, completeness) =
        match run_analysis(&args.files, config, None, args.opts.threads(), args.quiet) {
            Ok(x) => x,
            Err(code) => return Ok(code),
        };
    let fw = FirewallReport::new(&analysis, rules);
    let emit = render::Emit {
        allowed: args.include_allowed,
        not_seen: args.include_not_seen,
    };
    drop(analysis);
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    match args.format {
        FirewallFormat::Table => render::write_table(&mut out, &fw)?,
        FirewallFormat::Json => {
            output::pretty::to_writer(&mut out, &fw)?;
            writeln!(out)?;
        }
        FirewallFormat::Nft => render::write_nft(&mut out, &fw, emit)?,
        FirewallFormat::Netsh => render::write_netsh(&mut out, &fw, emit)?,
    }
    out.flush()?;
    Ok(exit_status(completeness))
}

fn analyze(args: AnalyzeArgs) -> Result<u8> {
    use exflow::output::flow_stream::FlowStream;
    // JSON and CSV flow listings are written as flows end instead of kept (the table sorts
    // them, so it keeps them; a sharded run keeps them too, to merge the workers' records).
    // Without --threads such a listing streams, on one thread.
    let stream_flows =
        args.flows && args.format != Format::Table && args.opts.threads.is_none_or(|n| n <= 1);
    let config = args.opts.config(args.flows && !stream_flows)?;
    let dest = args.opts.events.as_deref().map(EventDest::parse);
    // With `--events -` stdout carries the events alone; the report goes to stderr.
    let to_stderr = dest == Some(EventDest::Stdout);
    let events = match &dest {
        Some(d) => {
            let writer =
                EventWriter::open(d, output::events::QUEUE_LINES, false).with_context(|| {
                    format!("--events {}", args.opts.events.as_deref().unwrap_or(""))
                })?;
            Some(
                Box::new(EventStream::new(writer, args.opts.community_id_seed))
                    as Box<dyn exflow::analyze::EventSink>,
            )
        }
        None => None,
    };
    let flow_stream = match (stream_flows, args.format) {
        (false, _) => None,
        (true, Format::Csv) => {
            let w: Box<dyn Write + Send> = if to_stderr {
                Box::new(io::BufWriter::with_capacity(1 << 16, io::stderr()))
            } else {
                Box::new(io::BufWriter::with_capacity(1 << 16, io::stdout()))
            };
            Some(FlowStream::csv(w, args.opts.max_flow_records))
        }
        (true, _) => Some(FlowStream::json(args.opts.max_flow_records)?),
    };
    let events = match &flow_stream {
        Some(fs) => Some(fs.sink(events)),
        None => events,
    };
    let (analysis, completeness) =
        match run_analysis(&args.files, config, events, args.opts.threads(), args.quiet) {
            Ok(x) => x,
            Err(code) => return Ok(code),
        };
    let report = Report::new(&analysis);
    let sink: Box<dyn Write> = if to_stderr {
        Box::new(io::stderr().lock())
    } else {
        Box::new(io::stdout().lock())
    };
    let tty = if to_stderr {
        io::stderr().is_terminal()
    } else {
        io::stdout().is_terminal()
    };
    let mut out = io::BufWriter::with_capacity(1 << 16, sink);
    match (args.format, &flow_stream) {
        (Format::Csv, Some(fs)) => fs.finish_csv()?,
        (Format::Json, Some(fs)) => fs.write_json(&report, &mut out)?,
        (Format::Table, _) => {
            let opt = args.opts.table(tty);
            output::write_table(&mut out, &report, opt)?;
        }
        (Format::Json, None) => {
            output::pretty::to_writer(&mut out, &report)?;
            writeln!(out)?;
        }
        (Format::Csv, None) => match &report.flows {
            Some(flows) => output::write_flows_csv(&mut out, flows)?,
            None => output::write_services_csv(&mut out, &report)?,
        },
    }
    out.flush()?;
    Ok(exit_status(completeness))
}

/// `--metrics`: `HOST:PORT` (a name is resolved, its first address used), `[v6]:PORT`, or
/// `:PORT` for every interface. Port 0 is refused.
fn metrics_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let s = s.trim();
    let addr = match s.strip_prefix(':') {
        Some(port) => port
            .parse::<u16>()
            .map(|p| std::net::SocketAddr::from(([0, 0, 0, 0], p)))
            .map_err(|_| format!("bad port {port:?}"))?,
        None => {
            let (_, port) = s
                .rsplit_once(':')
                .ok_or_else(|| format!("{s:?} is not HOST:PORT or :PORT"))?;
            port.parse::<u16>()
                .map_err(|_| format!("bad port {port:?}"))?;
            s.to_socket_addrs()
                .map_err(|e| format!("{s}: {e}"))?
                .next()
                .ok_or_else(|| format!("{s}: no address"))?
        }
    };
    if addr.port() == 0 {
        return Err("port 0: give the port to serve on".to_string());
    }
    Ok(addr)
}

/// Names stdin `(stdin)` in warnings, as the report's header does (the pipeline says `-`).
fn name_stdin(input: &mut exflow::summary::InputStats) {
    let fix = |s: &mut String| {
        if let Some(rest) = s.strip_prefix("-: ") {
            *s = format!("(stdin): {rest}");
        }
    };
    input.warnings.iter_mut().for_each(fix);
    input
        .files
        .iter_mut()
        .filter_map(|f| f.error.as_mut())
        .for_each(fix);
}

fn catalogue(args: CatalogueArgs) -> Result<u8> {
    let c = load_catalogue(&args.catalogue)?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match args.format {
        Format::Json => {
            output::pretty::to_writer(&mut out, c.services())?;
            writeln!(out)?;
        }
        Format::Table | Format::Csv => {
            let csv = args.format == Format::Csv;
            if csv {
                writeln!(out, "service,kind,ports,origin,kb278339,description")?;
            } else {
                writeln!(
                    out,
                    "{:<14}{:<11}{:<20}DESCRIPTION",
                    "SERVICE", "KIND", "PORTS"
                )?;
            }
            for s in c.services() {
                let ports: Vec<String> = s.ports.iter().map(|(p, n)| format!("{p}/{n}")).collect();
                let kind = match s.kind {
                    ServiceKind::Port => "port",
                    ServiceKind::Payload => "payload",
                    ServiceKind::Followup => "follow-up",
                    ServiceKind::Interface => "rpc",
                    ServiceKind::Unclassified => "-",
                };
                let origin = match (s.origin, s.kb278339 || s.kind == ServiceKind::Unclassified) {
                    (Origin::User, _) => " (user)",
                    (Origin::Builtin, false) => " (not in KB 278339)",
                    (Origin::Builtin, true) => "",
                };
                if csv {
                    writeln!(
                        out,
                        "{},{kind},{},{},{},{}",
                        s.id,
                        ports.join(" "),
                        s.origin.as_str(),
                        s.kb278339,
                        exflow::output::csv_field(&s.description)
                    )?;
                } else {
                    let ports = if ports.is_empty() {
                        "dynamic".to_string()
                    } else {
                        ports.join(",")
                    };
                    writeln!(
                        out,
                        "{:<14}{kind:<11}{ports:<20}{}{origin}",
                        s.id, s.description
                    )?;
                }
            }
        }
    }
    Ok(EXIT_OK)
}

/// A one-line progress display on stderr for long files, refreshed at most 4 times a second:
/// the share of the file read (bytes read so far for a stream) and packets per second.
struct Progress {
    on: bool,
    last: Option<Instant>,
    /// The file being read, when its first report came, and its packets then.
    file: Option<(String, Instant, u64)>,
    shown: bool,
}

impl Progress {
    fn new(on: bool) -> Progress {
        Progress {
            on,
            last: None,
            file: None,
            shown: false,
        }
    }

    fn show(&mut self, name: &str, done: u64, total: u64, packets: u64) {
        if !self.on {
            return;
        }
        let now = Instant::now();
        if self.file.as_ref().is_none_or(|(n, ..)| n != name) {
            self.file = Some((name.to_string(), now, packets));
        }
        if self
            .last
            .is_some_and(|t| now - t < Duration::from_millis(250))
        {
            return;
        }
        self.last = Some(now);
        let rate = self.file.as_ref().and_then(|(_, since, from)| {
            let secs = (now - *since).as_secs_f64();
            (secs > 0.2).then(|| packets.saturating_sub(*from) as f64 / secs)
        });
        let rate = rate
            .map(|r| format!("  {:.2} Mpkt/s", r / 1e6))
            .unwrap_or_default();
        let read = if total > 0 {
            format!("{:5.1}%", done as f64 * 100.0 / total as f64)
        } else {
            format!("{} MiB read", done >> 20)
        };
        say(format_args!(
            "\r\x1b[K{name}: {read}  {packets} packets{rate}"
        ));
        self.shown = true;
    }

    fn clear(&mut self) {
        if self.shown {
            say(format_args!("\r\x1b[K"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::metrics_addr;

    #[test]
    fn metrics_addresses() {
        assert_eq!(metrics_addr(":9467").unwrap().to_string(), "0.0.0.0:9467");
        assert_eq!(
            metrics_addr("127.0.0.1:9467").unwrap().to_string(),
            "127.0.0.1:9467"
        );
        assert_eq!(
            metrics_addr("[::1]:9467").unwrap().to_string(),
            "[::1]:9467"
        );
        let local = metrics_addr("localhost:9467").unwrap();
        assert!(local.ip().is_loopback() && local.port() == 9467, "{local}");
        assert!(metrics_addr("localhost:0").is_err());
        assert!(metrics_addr(":x").is_err());
        assert!(metrics_addr("9467").is_err());
        assert!(metrics_addr("localhost:99999").is_err());
    }
}
