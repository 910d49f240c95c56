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
}

/// One kept-alive connection and what it has read past the last answer
/// (nothing, with a server that does not pipeline).
struct Conn {
    stream: TcpStream,
    buf: BytesMut,
}

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
            self.idle.lock().push(conn);
        }
        Some((status, answer, timing))
    }

    /// An idle connection that is not known to be closed.
    fn pop(&self) -> Option<Conn> {
        loop {
            let conn = self.idle.lock().pop()?;
            // Open and quiet: nothing to read yet. Anything else (an end
            // of stream, bytes no request asked for, an error) retires it.
            if conn.buf.is_empty()
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
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_bases_are_accepted() {
        let c = Client::new(Duration::from_secs(1));
        assert!(matches!(
            c.origin("https://example.test"),
            Err(ClientError::Scheme(_))
        ));
        assert_eq!(
            c.origin("http://127.0.0.1:9/")
                .map(|o| o.authority.clone())
                .ok()
                .as_deref(),
            Some("127.0.0.1:9")
        );
    }

    #[test]
    fn requests_reuse_one_connection_and_read_the_whole_answer() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let counter = accepted.clone();
            let app = axum::Router::new()
                .route("/echo", axum::routing::get(|| async { "ok" }))
                .route(
                    "/body",
                    axum::routing::post(|body: Bytes| async move {
                        (axum::http::StatusCode::CREATED, body)
                    }),
                )
                .route(
                    "/timed",
                    axum::routing::get(|headers: axum::http::HeaderMap| async move {
                        let asked = headers.get("traceparent").cloned();
                        (
                            [(
                                "server-timing",
                                asked.unwrap_or(axum::http::HeaderValue::from_static("none")),
                            )],
                            "ok",
                        )
                    }),
                );
            let listener = axum::serve::ListenerExt::tap_io(listener, move |_| {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            });
            tokio::spawn(async move { axum::serve(listener, app).await });
            let c = Client::new(Duration::from_secs(5));
            let base = format!("http://{addr}");
            for _ in 0..20 {
                assert_eq!(
                    c.request(&base, false, "/echo", None).await,
                    Some((200, Bytes::from_static(b"ok")))
                );
            }
            let (status, body) = c
                .request(&base, true, "/body", Some(Bytes::from_static(b"{\"a\":1}")))
                .await
                .expect("answer");
            assert_eq!((status, &body[..]), (201, &b"{\"a\":1}"[..]));
            assert_eq!(
                c.request(&base, false, "/nowhere", None).await.map(|a| a.0),
                Some(404)
            );
            // A timed request carries its traceparent and gets the answer's
            // Server-Timing back (here the server echoes what it was sent).
            let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
            let timed = c
                .request_timed(&base, false, "/timed", None, traceparent)
                .await
                .expect("answer");
            assert_eq!((timed.0, timed.2.as_deref()), (200, Some(traceparent)));
            assert_eq!(
                c.request(&base, false, "/timed", None).await,
                Some((200, Bytes::from_static(b"ok")))
            );
            assert_eq!(
                accepted.load(std::sync::atomic::Ordering::Relaxed),
                1,
                "one connection, reused"
            );
            // Nothing listens there: an error, not a hang.
            let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind")
                .local_addr()
                .expect("addr");
            assert_eq!(
                c.request(&format!("http://{closed}"), false, "/echo", None)
                    .await,
                None
            );
        });
    }

    /// A server that closes every connection after one answer, without
    /// saying so: each next request finds its kept-alive connection gone
    /// and goes out on a fresh one, never as an error.
    #[test]
    fn a_connection_the_server_closed_is_replaced_not_failed() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let served = std::thread::spawn(move || {
            let mut n = 0;
            for stream in listener.incoming().take(5) {
                let mut stream = stream.expect("accept");
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    let read = stream.read(&mut buf).expect("read");
                    if read == 0 {
                        break;
                    }
                    request.extend_from_slice(&buf[..read]);
                }
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .expect("write");
                n += 1;
                // Dropped: closed with no `connection: close`.
            }
            n
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        let c = Client::new(Duration::from_secs(5));
        let base = format!("http://{addr}");
        rt.block_on(async {
            for i in 0..5 {
                assert_eq!(
                    c.request(&base, false, "/", None).await,
                    Some((200, Bytes::from_static(b"ok"))),
                    "request {i}"
                );
                // Let the close arrive, as between requests of a real load.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        assert_eq!(
            served.join().expect("server"),
            5,
            "one connection per request"
        );
    }

    /// Serves each scripted answer on a connection of its own after reading
    /// one request head; how many connections it accepted.
    fn scripted(answers: Vec<&'static [u8]>) -> (String, std::thread::JoinHandle<usize>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let served = std::thread::spawn(move || {
            let mut n = 0;
            for answer in answers {
                let (mut stream, _) = listener.accept().expect("accept");
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(read) => request.extend_from_slice(&buf[..read]),
                    }
                }
                // In pieces, as a network may deliver it.
                for piece in answer.chunks(7) {
                    let _ = stream.write_all(piece);
                    let _ = stream.flush();
                }
                n += 1;
            }
            n
        });
        (base, served)
    }

    /// Chunked bodies and bodies ending at close are read whole; answers the
    /// generator cannot read for certain (HTTP/1.0, an unknown coding, a
    /// head past its limit, a truncated body) are errors, never guesses.
    #[test]
    fn answers_are_read_by_their_framing_and_unreadable_ones_are_errors() {
        let head = Box::leak(
            format!("HTTP/1.1 200 OK\r\nx: {}\r\n\r\n", "a".repeat(MAX_HEAD))
                .into_bytes()
                .into_boxed_slice(),
        );
        let (base, served) = scripted(vec![
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n",
            b"HTTP/1.1 201 Created\r\nconnection: close\r\n\r\nuntil close",
            b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n",
            b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\nxx",
            b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort",
            head,
        ]);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        let c = Client::new(Duration::from_secs(5));
        rt.block_on(async {
            assert_eq!(
                c.request(&base, false, "/", None).await,
                Some((200, Bytes::from_static(b"abcde")))
            );
            // The chunked answer kept its connection; the server moved on,
            // so that connection is closed now: wait for its end to arrive.
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(
                c.request(&base, true, "/", Some(Bytes::from_static(b"{}")))
                    .await,
                Some((201, Bytes::from_static(b"until close")))
            );
            assert_eq!(
                c.request(&base, false, "/", None).await,
                Some((204, Bytes::new()))
            );
            for what in [
                "HTTP/1.0",
                "an unknown transfer coding",
                "a truncated body",
                "an endless head",
            ] {
                assert_eq!(c.request(&base, false, "/", None).await, None, "{what}");
            }
            assert_eq!(
                c.request(&base, false, "/a path", None).await,
                None,
                "a path that would break the request line"
            );
        });
        assert_eq!(served.join().expect("server"), 7);
    }
}
