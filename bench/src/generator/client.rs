//! The load generator's HTTP client: HTTP/1.1 written straight onto kept-
//! alive TCP connections and answers read with `httparse`, in the task of
//! the request itself.
//!
//! The generator must not be the bottleneck, and on this 2-core machine
//! every microsecond it spends is taken from the system it measures.
//! Through reqwest (URL parsing, a redirect policy, a pool keyed by scheme
//! and host, a timer per request) the open-loop generator saturated at
//! 48 000/s against a trivial echo; through hyper's client connections
//! (each request handed to the connection's own task and its answer
//! handed back, two task wake-ups) it spent 15.3 µs of CPU per request at
//! 64 000/s and sustained 64 000/s; written directly, 13.9 µs at 64 000/s
//! and 10.5 µs at 96 000/s, which is wrk's own cost (9.3 µs per request in
//! the same session), and it sustained 80 000/s (`cargo run --release -p
//! bench --example floor -- RATE`, 2026-11-27, AMD EPYC). What it does
//! not do, it refuses instead of guessing: only `http://host:port` bases,
//! only HTTP/1.1 answers with a length, chunked, or ending at close; no
//! pipelining (one request per connection at a time, so at most the
//! generator's `max_in_flight` connections); TCP_NODELAY as on the
//! servers; one deadline per request; a request once written is never
//! written again.
//!
//! Only plain `http://host:port` bases: the edges of both variants serve
//! plain HTTP (API.md); TLS is between services.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why a client could not be made for a base URL.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Only plain `http://host:port` bases are driven by the generator.
    #[error("the load generator drives plain http:// bases only, not {0:?}")]
    Scheme(String),
}

/// Connections to every origin the run talks to.
#[derive(Clone)]
pub struct Client {
    origins: Arc<Mutex<HashMap<String, Arc<Origin>>>>,
    timeout: Duration,
}

/// One origin's idle connections.
struct Origin {
    authority: String,
    idle: Mutex<Vec<Conn>>,
    open: Arc<Gauge>,
}

/// Connections open to an origin now, and the most at once.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    peak: AtomicUsize,
}

/// One open connection, counted in its origin's gauge until dropped.
struct Counted(Arc<Gauge>);

impl Counted {
    fn new(gauge: &Arc<Gauge>) -> Self {
        let now = gauge.now.fetch_add(1, Ordering::Relaxed) + 1;
        gauge.peak.fetch_max(now, Ordering::Relaxed);
        Self(gauge.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One kept-alive connection and what it has read past the last answer
/// (nothing, with a server that does not pipeline).
struct Conn {
    stream: TcpStream,
    buf: BytesMut,
    /// When it last answered (or was opened).
    used: std::time::Instant,
    _counted: Counted,
}

/// An idle connection older than this is not used again: the edges close
/// a connection whose next request has not come within 10 s, and one
/// closing just as a request goes out would fail it.
const IDLE_AT_MOST: Duration = Duration::from_secs(5);

/// The largest answer head the generator reads (the edges' are a few
/// hundred bytes).
const MAX_HEAD: usize = 16 * 1024;
/// The largest answer body it reads (API.md's bodies are kilobytes).
const MAX_BODY: usize = 4 * 1024 * 1024;

impl Client {
    /// A client whose requests each give up after `timeout` (connecting,
    /// sending and reading the whole answer).
    pub fn new(timeout: Duration) -> Self {
        Self {
            origins: Arc::default(),
            timeout,
        }
    }

    fn origin(&self, base: &str) -> Result<Arc<Origin>, ClientError> {
        let mut origins = self.origins.lock();
        if let Some(o) = origins.get(base) {
            return Ok(o.clone());
        }
        let authority = base
            .strip_prefix("http://")
            .ok_or_else(|| ClientError::Scheme(base.to_owned()))?
            .trim_end_matches('/')
            .to_owned();
        if authority.is_empty() || authority.contains(['/', ' ', '\r', '\n']) {
            return Err(ClientError::Scheme(base.to_owned()));
        }
        let o = Arc::new(Origin {
            authority,
            idle: Mutex::default(),
            open: Arc::default(),
        });
        origins.insert(base.to_owned(), o.clone());
        Ok(o)
    }

    /// Sends `method path` (with a JSON `body` when given) to `base`; the
    /// status and the whole body, or `None` on a transport error, an
    /// answer that is not HTTP/1.1, or the deadline.
    pub async fn request(
        &self,
        base: &str,
        post: bool,
        path: &str,
        body: Option<Bytes>,
    ) -> Option<(u16, Bytes)> {
        let origin = self.origin(base).ok()?;
        let answer = tokio::time::timeout(self.timeout, origin.request(post, path, body, None))
            .await
            .ok()??;
        Some((answer.0, answer.1))
    }

    /// The most connections this client had open at once, to all origins
    /// together (each origin's peak, added up).
    pub fn peak_connections(&self) -> usize {
        self.origins
            .lock()
            .values()
            .map(|o| o.open.peak.load(Ordering::Relaxed))
            .sum()
    }

    /// [`Client::request`] asking for the request's timing: it carries
    /// `traceparent` (sampled), and the answer's `Server-Timing` value is
    /// returned beside the status and body.
    pub async fn request_timed(
        &self,
        base: &str,
        post: bool,
        path: &str,
        body: Option<Bytes>,
        traceparent: &str,
    ) -> Option<(u16, Bytes, Option<String>)> {
        let origin = self.origin(base).ok()?;
        tokio::time::timeout(
            self.timeout,
            origin.request(post, path, body, Some(traceparent)),
        )
        .await
        .ok()?
    }
}

impl Origin {
    async fn request(
        &self,
        post: bool,
        path: &str,
        body: Option<Bytes>,
        traceparent: Option<&str>,
    ) -> Option<(u16, Bytes, Option<String>)> {
        if path.contains([' ', '\r', '\n']) || traceparent.is_some_and(|t| t.contains(['\r', '\n']))
        {
            return None;
        }
        let body = body.unwrap_or_default();
        let mut request = Vec::with_capacity(96 + path.len() + body.len());
        request.extend_from_slice(if post { b"POST " } else { b"GET " });
        request.extend_from_slice(path.as_bytes());
        request.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        request.extend_from_slice(self.authority.as_bytes());
        if let Some(traceparent) = traceparent {
            request.extend_from_slice(b"\r\ntraceparent: ");
            request.extend_from_slice(traceparent.as_bytes());
        }
        if post {
            request.extend_from_slice(b"\r\ncontent-type: application/json\r\ncontent-length: ");
            request.extend_from_slice(body.len().to_string().as_bytes());
        }
        request.extend_from_slice(b"\r\n\r\n");
        request.extend_from_slice(&body);
        // A kept-alive connection the server has closed is found out before
        // the request goes (its end of stream is already here): then it
        // goes on another, as any HTTP client does. The server never saw
        // it, so this hides nothing; a request that was written is never
        // written again.
        let mut conn = match self.pop() {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        conn.stream.write_all(&request).await.ok()?;
        let (status, answer, keep, timing) = conn.read_answer(traceparent.is_some()).await?;
        if keep {
            conn.used = std::time::Instant::now();
            self.idle.lock().push(conn);
        }
        Some((status, answer, timing))
    }

    /// An idle connection that is not known to be closed.
    fn pop(&self) -> Option<Conn> {
        loop {
            let conn = self.idle.lock().pop()?;
            // Open, quiet (nothing to read yet) and used lately. Anything
            // else (an end of stream, bytes no request asked for, an
            // error, idle too long) retires it.
            if conn.buf.is_empty()
                && conn.used.elapsed() < IDLE_AT_MOST
                && matches!(conn.stream.try_read(&mut [0u8; 1]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            {
                return Some(conn);
            }
        }
    }

    async fn connect(&self) -> Option<Conn> {
        let stream = TcpStream::connect(self.authority.as_str()).await.ok()?;
        stream.set_nodelay(true).ok()?;
        Some(Conn {
            stream,
            buf: BytesMut::with_capacity(4096),
            used: std::time::Instant::now(),
            _counted: Counted::new(&self.open),
        })
    }
}

impl Conn {
    /// Reads one answer: its status, its whole body, whether the
    /// connection may carry another request, and its `Server-Timing` when
    /// `timed`.
    async fn read_answer(&mut self, timed: bool) -> Option<(u16, Bytes, bool, Option<String>)> {
        // The head.
        let (status, head_len, length, keep, timing) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut answer = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head_len) = answer.parse(&self.buf).ok()? {
                let status = answer.code?;
                if head_len > MAX_HEAD || answer.version != Some(1) || (100..200).contains(&status)
                {
                    return None; // too long, HTTP/1.0, or an interim answer never asked for
                }
                let mut length = Length::UntilClose;
                let mut keep = true;
                let mut timing = None;
                for h in answer.headers.iter() {
                    if timed && h.name.eq_ignore_ascii_case("server-timing") {
                        timing = std::str::from_utf8(h.value).ok().map(str::to_owned);
                    }
                    if h.name.eq_ignore_ascii_case("content-length") {
                        length = Length::Exactly(
                            std::str::from_utf8(h.value).ok()?.trim().parse().ok()?,
                        );
                    } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                        // Chunked is the only coding an HTTP/1.1 answer
                        // may end with; anything else is not read.
                        if !h.value.eq_ignore_ascii_case(b"chunked") {
                            return None;
                        }
                        length = Length::Chunked;
                    } else if h.name.eq_ignore_ascii_case("connection")
                        && h.value.eq_ignore_ascii_case(b"close")
                    {
                        keep = false;
                    }
                }
                if status == 204 || status == 304 {
                    length = Length::Exactly(0);
                }
                break (status, head_len, length, keep, timing);
            }
            if self.buf.len() > MAX_HEAD || !self.fill().await? {
                return None;
            }
        };
        self.buf.advance(head_len);
        // The body.
        match length {
            Length::Exactly(n) => {
                if n > MAX_BODY {
                    return None;
                }
                while self.buf.len() < n {
                    if !self.fill().await? {
                        return None;
                    }
                }
                Some((status, self.buf.split_to(n).freeze(), keep, timing))
            }
            Length::Chunked => {
                let mut body = BytesMut::new();
                loop {
                    let (start, size) = loop {
                        match httparse::parse_chunk_size(&self.buf).ok()? {
                            httparse::Status::Complete(found) => break found,
                            httparse::Status::Partial if self.buf.len() <= MAX_HEAD => {
                                if !self.fill().await? {
                                    return None;
                                }
                            }
                            httparse::Status::Partial => return None,
                        }
                    };
                    let size = usize::try_from(size)
                        .ok()
                        .filter(|s| body.len() + s <= MAX_BODY)?;
                    // The chunk and its CRLF (after the last, empty chunk:
                    // no trailers are sent to us, so just the CRLF).
                    while self.buf.len() < start + size + 2 {
                        if !self.fill().await? {
                            return None;
                        }
                    }
                    self.buf.advance(start);
                    body.extend_from_slice(&self.buf.split_to(size));
                    if self.buf.split_to(2)[..] != b"\r\n"[..] {
                        return None;
                    }
                    if size == 0 {
                        return Some((status, body.freeze(), keep, timing));
                    }
                }
            }
            Length::UntilClose => {
                while self.fill().await? {
                    if self.buf.len() > MAX_BODY {
                        return None;
                    }
                }
                Some((status, self.buf.split().freeze(), false, timing))
            }
        }
    }

    /// Reads more; `Some(false)` at the end of the stream.
    async fn fill(&mut self) -> Option<bool> {
        self.buf.reserve(4096);
        Some(self.stream.read_buf(&mut self.buf).await.ok()? > 0)
    }
}

/// How an answer's body ends.
enum Length {
    Exactly(usize),
    Chunked,
    UntilClose,
}

#[cfg(test)]
mod tests;
