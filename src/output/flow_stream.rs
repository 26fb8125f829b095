//! `--flows` with JSON or CSV: each flow's record is written when the flow ends, so memory does
//! not grow with the number of flows.
//!
//! Order: the order in which flows leave the flow table, in capture time (a sweep of closed and
//! idle flows, oldest first within one sweep; an eviction), then the flows still open at the end
//! of the capture, oldest first. CSV rows go
//! straight to the output. The JSON report cannot be written before the run ends (its other
//! members are totals), so its flow records are spilled to an unlinked temporary file (in
//! `$TMPDIR`) and spliced into the document in the place and form `flows` always had.
//! `--max-flow-records` still caps how many are written (it bounds the spill on disk).
//!
//! JSON records are written by a thread of their own: the run's one analysis thread hands them
//! over in batches, in the order flows ended, and the listing is finished once that thread has
//! written the last (a record's JSON cost more than its flow's analysis). CSV rows cost less
//! than handing their records over, and are written on the analysis thread.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::analyze::EventSink;
use crate::classify::{Catalogue, Expectation, Flow};
use crate::packet::Nanos;
use crate::summary::FlowRecord;

use super::csv::{write_record_row, FLOWS_CSV_HEADER};
use super::pretty::Pretty;
use super::{flow_view, Report};

/// The spill's indentation: the records are elements of the report's top-level `flows` array.
const JSON_INDENT: &[u8] = b"\n    ";

/// Where the records go.
enum Out {
    /// CSV rows on the report's destination; the header is written with the first row.
    Csv {
        w: Box<dyn Write + Send>,
        header: bool,
        /// The row being written (kept: one allocation for the run).
        line: String,
    },
    /// JSON elements in a temporary file, spliced into the report at the end.
    Spill {
        w: BufWriter<File>,
        scratch: Vec<u8>,
    },
}

struct State {
    out: Out,
    catalogue: Option<Arc<Catalogue>>,
    written: u64,
    max: u64,
    dropped: u64,
    /// The first write error; nothing more is written after it.
    error: Option<io::Error>,
    /// Set once `max` records are written: the sink then stops handing records over.
    full: Arc<AtomicBool>,
}

/// The handle on a run's streamed flow records, kept by whoever renders the report.
pub struct FlowStream {
    state: Arc<Mutex<State>>,
    /// The thread that writes the records the run's sink hands it ([`WRITER_BATCH`]); joined
    /// before the listing is finished.
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// Records handed to the writer thread at a time.
const WRITER_BATCH: usize = 256;
/// Batches queued for the writer thread: the analysis waits when it is this far ahead (a few
/// hundred KiB of records at most).
const WRITER_QUEUE: usize = 8;

/// The [`EventSink`] side: records each ending flow, and passes every event on to `inner`.
///
/// A record's view and its JSON text take more instructions than the analysis of its flow (on
/// the real-traffic mix about 19 000 a record, 12 packets a flow): for a JSON listing the sink
/// hands the records, in batches, to a writer thread of their own, so a `--flows` run (one
/// analysis thread) uses a second core for them. A CSV row, and every record when the thread
/// could not be started or has stopped, the sink writes itself.
struct Sink {
    state: Arc<Mutex<State>>,
    inner: Option<Box<dyn EventSink>>,
    /// To the writer thread.
    tx: Option<SyncSender<Vec<FlowRecord>>>,
    batch: Vec<FlowRecord>,
    /// `--max-flow-records` are written: what ends later is only counted, here.
    full: Arc<AtomicBool>,
}

impl Sink {
    /// Hands the records gathered so far to the writer thread, or writes them here if it is
    /// gone.
    fn send(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(WRITER_BATCH));
        let batch = match &self.tx {
            Some(tx) => match tx.send(batch) {
                Ok(()) => return,
                Err(e) => e.0,
            },
            None => batch,
        };
        self.tx = None;
        write_batch(&self.state, &batch);
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.send();
    }
}

impl FlowStream {
    /// CSV rows written to `w` as flows end (at most `max`).
    pub fn csv(w: Box<dyn Write + Send>, max: usize) -> FlowStream {
        Self::new(
            Out::Csv {
                w,
                header: false,
                line: String::new(),
            },
            max,
        )
    }

    /// JSON records spilled to a temporary file (at most `max`), for [`write_json`](Self::write_json).
    pub fn json(max: usize) -> io::Result<FlowStream> {
        let file = spill_file()?;
        let w = BufWriter::with_capacity(1 << 16, file);
        Ok(Self::new(
            Out::Spill {
                w,
                scratch: Vec::new(),
            },
            max,
        ))
    }

    fn new(out: Out, max: usize) -> FlowStream {
        FlowStream {
            state: Arc::new(Mutex::new(State {
                out,
                catalogue: None,
                written: 0,
                max: u64::try_from(max).unwrap_or(u64::MAX),
                dropped: 0,
                error: None,
                full: Arc::new(AtomicBool::new(false)),
            })),
            writer: Mutex::new(None),
        }
    }

    /// The sink to give the run (one); events also go on to `inner` (`--events`). The run must
    /// have dropped it before the listing is finished ([`finish_csv`](Self::finish_csv),
    /// [`write_json`](Self::write_json)): its last records are written then.
    pub fn sink(&self, inner: Option<Box<dyn EventSink>>) -> Box<dyn EventSink> {
        let (json, full) = {
            let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            (matches!(s.out, Out::Spill { .. }), Arc::clone(&s.full))
        };
        let (tx, rx) = sync_channel::<Vec<FlowRecord>>(WRITER_QUEUE);
        let state = Arc::clone(&self.state);
        // A CSV row costs less than handing its record over (a copy of its findings).
        let thread = json
            .then(|| {
                std::thread::Builder::new()
                    .name("exflow-flows".into())
                    .spawn(move || {
                        for batch in rx {
                            write_batch(&state, &batch);
                        }
                    })
                    .ok()
            })
            .flatten();
        let tx = thread.is_some().then_some(tx);
        if let Some(t) = thread {
            *self.writer.lock().unwrap_or_else(|e| e.into_inner()) = Some(t);
        }
        Box::new(Sink {
            state: Arc::clone(&self.state),
            inner,
            tx,
            batch: Vec::with_capacity(WRITER_BATCH),
            full,
        })
    }

    /// The state once every record handed to the writer thread is written. Should that thread
    /// have panicked (a bug), the listing ends with an error naming it: records it was given
    /// may be missing.
    fn lock(&self) -> MutexGuard<'_, State> {
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        let failed = writer.and_then(|t| t.join().err());
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let (Some(panic), None) = (failed, &s.error) {
            let why = panic
                .downcast_ref::<&str>()
                .map(|m| m.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            s.error = Some(io::Error::other(format!(
                "the flow listing's writer failed ({why}): records may be missing"
            )));
        }
        s
    }

    /// Records not written past `--max-flow-records`.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Ends a CSV listing: the header if no flow was written, then a flush; the first write
    /// error of the run, if any.
    pub fn finish_csv(&self) -> io::Result<()> {
        let mut s = self.lock();
        if let Some(e) = s.error.take() {
            return Err(e);
        }
        match &mut s.out {
            Out::Csv { w, header, .. } => {
                if !*header {
                    *header = true;
                    writeln!(w, "{FLOWS_CSV_HEADER}")?;
                }
                w.flush()
            }
            Out::Spill { .. } => Ok(()),
        }
    }

    /// Writes `report` as pretty JSON to `out` with the spilled records as its `flows` (the
    /// report's own `flows` are replaced).
    pub fn write_json(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        let mut s = self.lock();
        if let Some(e) = s.error.take() {
            return Err(e);
        }
        let mut shell = report.clone();
        shell.flows = Some(Vec::new());
        shell.limits.flow_records_dropped = s.dropped;
        let doc = super::pretty::to_vec(&shell).map_err(io::Error::other)?;
        // Only top-level members are indented by exactly two spaces after a line break (a line
        // break inside a string is escaped), so this is the `flows` member.
        let marker: &[u8] = b"\n  \"flows\": []";
        let at = doc
            .windows(marker.len())
            .position(|w| w == marker)
            .ok_or_else(|| io::Error::other("no flows member in the report"))?;
        let open = at + marker.len() - 1;
        let (head, tail) = doc.split_at(open);
        out.write_all(head)?;
        let written = s.written;
        if let Out::Spill { w, .. } = &mut s.out {
            if written > 0 {
                w.flush()?;
                let file = w.get_mut();
                file.seek(SeekFrom::Start(0))?;
                io::copy(&mut Read::by_ref(file), out)?;
                out.write_all(b"\n  ")?;
            }
        }
        out.write_all(tail)?;
        writeln!(out)
    }
}

/// Writes a batch of records, in order, under one lock (the writer thread, or the sink when the
/// thread is gone).
fn write_batch(state: &Mutex<State>, batch: &[FlowRecord]) {
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    for r in batch {
        s.record(r);
    }
}

impl State {
    fn record(&mut self, r: &FlowRecord) {
        if self.error.is_some() {
            return;
        }
        if self.written >= self.max {
            self.full.store(true, Ordering::Relaxed);
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        let Some(cat) = self.catalogue.as_ref() else {
            return;
        };
        let service = cat.id(r.service);
        let first = self.written == 0;
        let result = match &mut self.out {
            Out::Csv { w, header, line } => {
                let head = if *header {
                    Ok(())
                } else {
                    *header = true;
                    writeln!(w, "{FLOWS_CSV_HEADER}")
                };
                head.and_then(|()| write_record_row(w, line, service, r))
            }
            Out::Spill { w, scratch } => spill(w, scratch, &flow_view(service, r), first),
        };
        match result {
            Ok(()) => self.written += 1,
            Err(e) => self.error = Some(e),
        }
    }
}

/// Appends one element of the pretty-printed `flows` array, indented as in the report: written
/// at the depth it has there ([`Pretty`]), instead of pretty-printed at the top and indented
/// again line by line (a split and a write per line, about 4 000 instructions a record).
fn spill(
    w: &mut BufWriter<File>,
    scratch: &mut Vec<u8>,
    view: &super::FlowView,
    first: bool,
) -> io::Result<()> {
    scratch.clear();
    if !first {
        scratch.push(b',');
    }
    scratch.extend_from_slice(JSON_INDENT);
    let mut ser = serde_json::Serializer::with_formatter(&mut *scratch, Pretty::at(2));
    serde::Serialize::serialize(view, &mut ser).map_err(io::Error::other)?;
    w.write_all(scratch)
}

/// A new temporary file, removed from its directory at once where the system allows it (it
/// lives until closed).
fn spill_file() -> io::Result<File> {
    let dir = std::env::temp_dir();
    let pid = std::process::id();
    for n in 0..100u32 {
        let path = dir.join(format!("exflow-flows-{pid}-{n}.json"));
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => {
                let _ = std::fs::remove_file(&path);
                return Ok(f);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "{}: cannot create a file for flow records: {e}",
                        dir.display()
                    ),
                ))
            }
        }
    }
    Err(io::Error::other(format!(
        "{}: cannot create a file for flow records",
        dir.display()
    )))
}

impl EventSink for Sink {
    fn start(&mut self, catalogue: Arc<Catalogue>) {
        if let Ok(mut s) = self.state.lock() {
            s.catalogue = Some(Arc::clone(&catalogue));
        }
        if let Some(i) = self.inner.as_deref_mut() {
            i.start(catalogue);
        }
    }

    fn flow(&mut self, now: Nanos, flow: &Flow, record: &FlowRecord) {
        if self.tx.is_some() && !self.full.load(Ordering::Relaxed) {
            self.batch.push(record.clone());
            if self.batch.len() >= WRITER_BATCH {
                self.send();
            }
        } else if let Ok(mut s) = self.state.lock() {
            s.record(record);
        }
        if let Some(i) = self.inner.as_deref_mut() {
            i.flow(now, flow, record);
        }
    }

    fn followup(&mut self, now: Nanos, e: &Expectation, concluded: bool, on_dc: bool) {
        if let Some(i) = self.inner.as_deref_mut() {
            i.followup(now, e, concluded, on_dc);
        }
    }

    fn stats(&mut self, now: Nanos, stats: &serde_json::Value) {
        if let Some(i) = self.inner.as_deref_mut() {
            i.stats(now, stats);
        }
    }
}
