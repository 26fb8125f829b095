//! The HTTP server behind `--metrics`: `GET /metrics` (and `HEAD`) on a network that may be
//! hostile, so everything a client can grow is bounded.
//!
//! One thread runs a single-threaded tokio runtime; the capture loop never waits on it (it only
//! updates the registry's atomic counters). Each connection gets one request, answered with
//! `Connection: close`. The request head is at most [`MAX_REQUEST`] bytes and [`MAX_HEADERS`]
//! lines and must arrive within [`REQUEST_TIMEOUT`]; the answer must leave within
//! [`WRITE_TIMEOUT`]. At most [`MAX_CONNECTIONS`] are open: a new one pushes out the oldest, so
//! idle or slow clients cannot lock a scraper out, and when the process runs out of file
//! descriptors the oldest connection is closed to make room, so the endpoint keeps serving.
//! What was refused is counted in the registry (`exflow_http_*`).

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// Most connections open at once.
pub const MAX_CONNECTIONS: usize = 256;
/// Most bytes of a request head (request line and headers).
pub const MAX_REQUEST: usize = 8192;
/// Most header lines in a request.
pub const MAX_HEADERS: usize = 64;
/// Time a client has from connecting to the end of its request head.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Time the answer has to leave.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after an accept error that closing a connection could not cure.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Counters of what the server refused, registered as `exflow_http_*`.
#[derive(Clone, Default)]
struct Refusals {
    evicted: Counter,
    timed_out: Counter,
    bad_requests: Counter,
    accept_errors: Counter,
}

/// Binds `addr` and serves `reg` on it from a background thread.
pub fn serve(addr: SocketAddr, mut reg: Registry) -> io::Result<()> {
    let refusals = Refusals::default();
    reg.register(
        "http_connections_evicted",
        "Metrics connections closed to make room for newer ones (connection cap or no descriptors)",
        refusals.evicted.clone(),
    );
    reg.register(
        "http_timeouts",
        "Metrics connections closed because the request or the answer was too slow",
        refusals.timed_out.clone(),
    );
    reg.register(
        "http_bad_requests",
        "Metrics requests refused as too large, malformed, or not GET/HEAD",
        refusals.bad_requests.clone(),
    );
    reg.register(
        "http_accept_errors",
        "Failed accepts on the metrics socket (e.g. out of file descriptors)",
        refusals.accept_errors.clone(),
    );
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    let reg = Arc::new(reg);
    std::thread::Builder::new()
        .name("exflow-metrics".into())
        .spawn(move || {
            runtime.block_on(async move {
                match TcpListener::from_std(listener) {
                    Ok(l) => accept_forever(l, reg, refusals).await,
                    Err(_) => {
                        refusals.accept_errors.inc();
                    }
                }
            })
        })?;
    Ok(())
}

/// Accepts connections for the rest of the run; no error ends it.
async fn accept_forever(listener: TcpListener, reg: Arc<Registry>, refusals: Refusals) {
    let mut open: VecDeque<AbortHandle> = VecDeque::with_capacity(MAX_CONNECTIONS);
    loop {
        let accepted = listener.accept().await;
        open.retain(|h| !h.is_finished());
        match accepted {
            Ok((stream, _)) => {
                if open.len() >= MAX_CONNECTIONS {
                    evict_oldest(&mut open, &refusals);
                }
                let task = tokio::spawn(connection(stream, Arc::clone(&reg), refusals.clone()));
                open.push_back(task.abort_handle());
            }
            Err(_) => {
                refusals.accept_errors.inc();
                // Out of descriptors (or another transient failure): closing the oldest
                // connection frees one; with none to close, wait a moment and try again.
                if evict_oldest(&mut open, &refusals) {
                    // Let the aborted task drop its socket before the next accept.
                    tokio::task::yield_now().await;
                } else {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
}

/// Closes the oldest open connection; false if there is none.
fn evict_oldest(open: &mut VecDeque<AbortHandle>, refusals: &Refusals) -> bool {
    match open.pop_front() {
        Some(h) => {
            h.abort();
            refusals.evicted.inc();
            true
        }
        None => false,
    }
}

/// One connection: read one request head, answer it, close.
async fn connection(mut stream: TcpStream, reg: Arc<Registry>, refusals: Refusals) {
    let mut head = vec![0u8; MAX_REQUEST];
    let request = tokio::time::timeout(REQUEST_TIMEOUT, read_head(&mut stream, &mut head)).await;
    let response = match request {
        Err(_) => {
            refusals.timed_out.inc();
            return;
        }
        // The client went away before finishing its request.
        Ok(Err(_)) | Ok(Ok(None)) => return,
        Ok(Ok(Some(len))) if len > MAX_REQUEST => {
            refusals.bad_requests.inc();
            plain(431, "")
        }
        Ok(Ok(Some(len))) => match parse(head.get(..len).unwrap_or_default()) {
            Ok(req) => answer(req, &reg),
            Err(status) => {
                refusals.bad_requests.inc();
                plain(status, "")
            }
        },
    };
    drop(head);
    let sent = tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(&response).await?;
        stream.shutdown().await
    })
    .await;
    if sent.is_err() {
        refusals.timed_out.inc();
    }
}

/// Reads until the blank line that ends the request head. `Some(len)` is the head's length,
/// or `buf.len() + 1` when it did not fit; `None` if the client closed first.
async fn read_head(stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<Option<usize>> {
    let mut filled = 0;
    loop {
        let Some(free) = buf.get_mut(filled..).filter(|f| !f.is_empty()) else {
            return Ok(Some(buf.len() + 1));
        };
        let n = stream.read(free).await?;
        if n == 0 {
            return Ok(None);
        }
        // Only the newly read bytes (and the three before them) can complete the terminator.
        let from = filled.saturating_sub(3);
        filled += n;
        if let Some(end) = find_blank_line(buf.get(from..filled).unwrap_or_default()) {
            return Ok(Some(from + end));
        }
    }
}

/// End of the first `\r\n\r\n` (or bare `\n\n`) in `b`.
fn find_blank_line(b: &[u8]) -> Option<usize> {
    let crlf = b.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = b.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What the server needs of a request.
#[derive(Debug, PartialEq, Eq)]
struct Request<'a> {
    head_only: bool,
    path: &'a str,
}

/// Parses a request head; the error is the status to answer with.
fn parse(head: &[u8]) -> Result<Request<'_>, u16> {
    if head.len() > MAX_REQUEST {
        return Err(431);
    }
    let text = std::str::from_utf8(head).map_err(|_| 400u16)?;
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let line = lines.next().unwrap_or_default();
    let mut words = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(400);
    };
    if !version.starts_with("HTTP/1.") {
        return Err(505);
    }
    let headers = lines.filter(|l| !l.is_empty()).count();
    if headers > MAX_HEADERS {
        return Err(431);
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Err(405),
    };
    Ok(Request {
        head_only,
        path: target.split('?').next().unwrap_or_default(),
    })
}

/// The response to a well-formed request.
fn answer(req: Request<'_>, reg: &Registry) -> Vec<u8> {
    if req.path != "/metrics" {
        return plain(404, "exflow: metrics are at /metrics\n");
    }
    let mut body = String::new();
    if encode(&mut body, reg).is_err() {
        return plain(500, "");
    }
    let ct = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    let mut out = response_head(200, ct, body.len()).into_bytes();
    if !req.head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

fn plain(status: u16, body: &str) -> Vec<u8> {
    let mut out = response_head(status, "text/plain; charset=utf-8", body.len()).into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

fn response_head(status: u16, content_type: &str, len: usize) -> String {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        505 => "HTTP Version Not Supported",
        _ => "Internal Server Error",
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\n\
         Connection: close\r\n\r\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_parsed_within_their_limits() {
        let ok = parse(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        assert_eq!(
            ok,
            Request {
                head_only: false,
                path: "/metrics"
            }
        );
        assert!(parse(b"HEAD /metrics HTTP/1.0\n\n").unwrap().head_only);
        assert_eq!(parse(b"POST /metrics HTTP/1.1\r\n\r\n"), Err(405));
        assert_eq!(parse(b"GET /metrics\r\n\r\n"), Err(400));
        assert_eq!(parse(b"GET /metrics HTTP/2\r\n\r\n"), Err(505));
        assert_eq!(parse(b"GET / HTTP/1.1 x\r\n\r\n"), Err(400));
        assert_eq!(parse(&[0xff, b' ', b'/', b' ', b'H']), Err(400));
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "A: b\r\n".repeat(MAX_HEADERS + 1)
        );
        assert_eq!(parse(many.as_bytes()), Err(431));
        assert_eq!(parse(&vec![b'a'; MAX_REQUEST + 1]), Err(431));
    }

    #[test]
    fn the_blank_line_ends_the_head() {
        assert_eq!(find_blank_line(b"GET / HTTP/1.1\r\n\r\nbody"), Some(18));
        assert_eq!(find_blank_line(b"GET / HTTP/1.0\n\n"), Some(16));
        assert_eq!(find_blank_line(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
    }
}
