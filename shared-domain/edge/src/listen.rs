//! Serving the router's connections, with the limits a public edge needs
//! against slow, abandoned and too many clients:
//! - **connections**: at most `max_connections` at once; past it a new one
//!   gets a canned 503 `unavailable` and is closed (a bounded cost, not a
//!   queue);
//! - **headers**: a request's head (and an idle kept-alive connection's
//!   next one) must arrive within `header_timeout`, or the connection is
//!   closed: a client trickling its headers a byte at a time, or one that
//!   connects and sends nothing, holds its slot that long at most;
//! - **bodies**: the edge reads a body within the request deadline
//!   ([`crate::body::read_json`]: 408 and the connection closed);
//! - **a lingering close**: a connection closed while its client is still
//!   sending (a body refused 413 part-way) is half-closed, and what still
//!   arrives is read and dropped, for at most [`LINGER`] and
//!   [`LINGER_BYTES`], before the socket is closed. Closing a socket with
//!   unread bytes makes the kernel answer with a reset, and a client still
//!   writing its body then reports a broken pipe instead of the 413 it was
//!   sent (nginx's `lingering_close`, Go's `closeWriteAndWait`).
//!
//! HTTP/1.1 only (API.md's edge; WebSocket by upgrade). Nagle's algorithm
//! is off: WebSocket frames and streamed bodies are small writes that must
//! not wait for the peer's delayed ACK. A shutdown stops accepting, lets
//! every connection finish the request it is serving, then returns.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;

/// The bounds on the edge's connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// How long a request's head (or an idle connection's next request)
    /// may take to arrive.
    pub header_timeout: Duration,
}

impl Default for Limits {
    /// 10 000 connections (more than the harness's 6 144 open-loop
    /// workers), 10 s for a head (nginx's `client_header_timeout` is 60 s,
    /// Node's `headersTimeout` 60 s). hyper applies the same timer to an
    /// idle connection's next request (Node closes those after 5 s), so a
    /// client or balancer in front must keep idle connections for less
    /// than 10 s: the project's own keep them 5 s.
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// How many connections the kernel holds for the accept loop. Past it a
/// new connection is not refused: its handshake completes on the client's
/// side and not on the server's, so a client that sends nothing waits in
/// limbo and one that sends waits for the kernel's retries (a second and
/// more). tokio's `bind` asks for 1 024, fewer than the harness's slow
/// clients open at once (1 600) or an overload's surge; the kernel caps
/// this at `net.core.somaxconn` (4 096 by default since Linux 5.4).
pub const BACKLOG: u32 = 4096;

/// A listening socket on `addr` for an edge or a service (address reuse
/// on, as tokio's `bind`, and a backlog of [`BACKLOG`]). Within a tokio
/// runtime.
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// What a connection past `max_connections` is told before it is closed.
const FULL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
retry-after: 1\r\nconnection: close\r\ncontent-length: 78\r\n\r\n\
{\"error\":{\"code\":\"unavailable\",\"message\":\"too many connections, retry later\"}}";

/// Serves `router` on `listener` within `limits` until `shutdown`
/// resolves, then drains the requests in flight.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Every connection's task holds a receiver of each: `stop` tells them
    // to finish, `done` closes once the last one has.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, done_rx) = watch::channel(());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors or a connection reset before it
                    // was taken: not the listener's end. Pause a moment
                    // rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics::counter!("edge_connections_refused_total").increment(1);
            // A non-blocking write into a fresh socket's empty buffer;
            // whatever it manages, the connection is closed now.
            let _ = stream.try_write(FULL);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(
            router
                .clone()
                .map_request(|request: http::Request<Incoming>| request.map(Body::new)),
        );
        let (http, mut stop, done) = (http.clone(), stop_rx.clone(), done_rx.clone());
        tokio::spawn(async move {
            serve_connection(http, stream, service, &mut stop).await;
            drop((slot, done));
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(done_rx);
    done_tx.closed().await;
    Ok(())
}

async fn serve_connection<S>(
    http: hyper::server::conn::http1::Builder,
    stream: TcpStream,
    service: TowerToHyperService<S>,
    stop: &mut watch::Receiver<bool>,
) where
    S: tower::Service<
            http::Request<Incoming>,
            Response = axum::response::Response,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let connection = http
        .serve_connection(TokioIo::new(Lingering::new(stream)), service)
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended");
            }
        }
        _ = stop.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// How long a closing connection keeps reading what its client still sends.
pub const LINGER: Duration = Duration::from_millis(500);
/// How much of it, at most.
pub const LINGER_BYTES: usize = 8 << 20;

/// A connection whose shutdown lingers until the client's end (see the
/// module's notes). A client that reads the answer and closes, as clients
/// do once they see the server's end, is let go as soon as it has.
struct Lingering {
    stream: TcpStream,
    /// Set once the write side is shut.
    closing: Option<Closing>,
}

struct Closing {
    /// Bytes read and dropped since.
    drained: usize,
    /// When the lingering ends, whatever the client is doing.
    bound: Pin<Box<tokio::time::Sleep>>,
}

impl Lingering {
    fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            closing: None,
        }
    }
}

impl AsyncRead for Lingering {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.closing.is_none() {
            ready!(Pin::new(&mut this.stream).poll_shutdown(cx))?;
        }
        let closing = this.closing.get_or_insert_with(|| Closing {
            drained: 0,
            bound: Box::pin(tokio::time::sleep(LINGER)),
        });
        let mut scratch = [0u8; 16 * 1024];
        while closing.drained < LINGER_BYTES {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.stream).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                    closing.drained += buf.filled().len();
                }
                // The client's end (or its reset): nothing is left unread.
                Poll::Ready(_) => return Poll::Ready(Ok(())),
                Poll::Pending => {
                    ready!(closing.bound.as_mut().poll(cx));
                    return Poll::Ready(Ok(()));
                }
            }
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Serves a router answering `GET /ok` within `limits`; its address
    /// and the handle that stops it.
    async fn served(limits: Limits) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let router = Router::new().route("/ok", get(|| async { "ok" }));
        tokio::spawn(serve_with(listener, router, limits, async move {
            let _ = stopped.await;
        }));
        (addr, stop)
    }

    /// One request on a fresh connection: the answer's text.
    async fn get_ok(addr: SocketAddr) -> String {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(b"GET /ok HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
            .await
            .expect("write");
        read_to_end(&mut stream).await
    }

    /// Everything the server sends until it closes the connection (at
    /// most 10 s: a test must not hang if it never does).
    async fn read_to_end(stream: &mut TcpStream) -> String {
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer));
        match read.await {
            Ok(_) => String::from_utf8_lossy(&answer).into_owned(),
            Err(_) => "<still open>".to_owned(),
        }
    }

    fn limits(max_connections: usize, header_ms: u64) -> Limits {
        Limits {
            max_connections,
            header_timeout: Duration::from_millis(header_ms),
        }
    }

    #[tokio::test]
    async fn a_head_trickled_past_the_timeout_is_cut_off_while_others_are_served() {
        let (addr, _stop) = served(limits(1000, 400)).await;
        let mut slow = Vec::new();
        for _ in 0..50 {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream
                .write_all(b"GET /ok HTTP/1.1\r\n")
                .await
                .expect("write");
            slow.push(stream);
        }
        // A byte at a time, well inside any read timeout of its own.
        let trickle = tokio::spawn(async move {
            for _ in 0..20 {
                for stream in &mut slow {
                    if stream.write_all(b"x").await.is_err() {
                        return (slow, true);
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (slow, false)
        });
        for _ in 0..20 {
            assert!(get_ok(addr).await.ends_with("ok"), "others are served");
        }
        let (mut slow, write_failed) = trickle.await.expect("trickle");
        for stream in &mut slow {
            let answer = read_to_end(stream).await;
            assert!(
                !answer.contains("<still open>"),
                "a trickled head is cut off (write failed: {write_failed})"
            );
        }
    }

    #[tokio::test]
    async fn a_connection_that_sends_nothing_is_closed() {
        let (addr, _stop) = served(limits(1000, 300)).await;
        let mut idle = TcpStream::connect(addr).await.expect("connect");
        assert_eq!(read_to_end(&mut idle).await, "", "closed without a word");
        // So is a kept-alive one that goes quiet after its request.
        let mut kept = TcpStream::connect(addr).await.expect("connect");
        kept.write_all(b"GET /ok HTTP/1.1\r\nhost: t\r\n\r\n")
            .await
            .expect("write");
        let answer = read_to_end(&mut kept).await;
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok"),
            "{answer}"
        );
    }

    #[tokio::test]
    async fn past_the_connection_bound_a_new_one_is_told_503_and_closed() {
        let (addr, _stop) = served(limits(2, 10_000)).await;
        let held = [
            TcpStream::connect(addr).await.expect("connect"),
            TcpStream::connect(addr).await.expect("connect"),
        ];
        // The server takes them in order; give it a moment to count both.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let answer = get_ok(addr).await;
        let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
        assert!(head.starts_with("HTTP/1.1 503"), "{answer}");
        let body: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
        assert_eq!(body["error"]["code"], "unavailable");
        drop(held);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            get_ok(addr).await.ends_with("ok"),
            "a freed slot is taken again"
        );
    }

    #[tokio::test]
    async fn a_shutdown_finishes_the_request_in_flight_then_returns() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let router = Router::new().route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "done"
            }),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_with(
            listener,
            router,
            Limits::default(),
            async move {
                let _ = stopped.await;
            },
        ));
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(b"GET /slow HTTP/1.1\r\nhost: t\r\n\r\n")
            .await
            .expect("write");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = stop.send(());
        let answer = read_to_end(&mut stream).await;
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.ends_with("done"),
            "{answer}"
        );
        let served = tokio::time::timeout(Duration::from_secs(5), server).await;
        assert!(matches!(served, Ok(Ok(Ok(())))), "the server returned");
    }

    /// The soft limit on open files, from `/proc/self/limits`.
    fn open_files_limit() -> Option<usize> {
        let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        line.split_whitespace().nth(3)?.parse().ok()
    }

    #[tokio::test]
    async fn a_burst_of_connections_past_tokios_backlog_is_held_for_the_accept_loop() {
        const BURST: usize = 1500;
        let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        if somaxconn <= BURST || open_files_limit().unwrap_or(0) < 2 * BURST + 100 {
            eprintln!("skipped: somaxconn {somaxconn} or the open-files limit is too low here");
            return;
        }
        let listener = bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let addr = listener.local_addr().expect("address");
        // Nothing accepts yet: every connection waits in the kernel's
        // queue, as when a burst outruns the accept loop.
        let mut connects = Vec::new();
        for _ in 0..BURST {
            connects.push(tokio::spawn(async move {
                tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr)).await
            }));
        }
        let mut held = Vec::new();
        for connect in connects {
            if let Ok(Ok(Ok(stream))) = connect.await {
                held.push(stream);
            }
        }
        // Each one the kernel completed is there for the accept loop.
        let mut accepted = 0;
        while let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(200), listener.accept()).await
        {
            accepted += 1;
        }
        assert_eq!((held.len(), accepted), (BURST, BURST));
    }

    /// A body far over the limit, written whole while the answer is read
    /// (as any client does that does not wait for `100 continue`).
    async fn post_oversized(addr: SocketAddr, len: usize) -> String {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let head = format!("POST /up HTTP/1.1\r\nhost: t\r\ncontent-length: {len}\r\n\r\n");
        let (mut read, mut write) = stream.split();
        let send = async {
            let _ = write.write_all(head.as_bytes()).await;
            let chunk = vec![b'x'; 64 * 1024];
            let mut sent = 0;
            while sent < len {
                if write.write_all(&chunk).await.is_err() {
                    return false;
                }
                sent += chunk.len();
            }
            true
        };
        let mut answer = Vec::new();
        let receive = tokio::time::timeout(Duration::from_secs(10), read.read_to_end(&mut answer));
        let (sent, received) = tokio::join!(send, receive);
        let received = match received {
            Ok(Ok(_)) => "",
            Ok(Err(_)) => " <reset>",
            Err(_) => " <still open>",
        };
        format!(
            "{}{received}{}",
            String::from_utf8_lossy(&answer),
            if sent { "" } else { " <write failed>" }
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_body_over_the_limit_gets_its_413_not_a_reset() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let router = Router::new()
            .route(
                "/up",
                axum::routing::post(|_: axum::body::Bytes| async { "taken" }),
            )
            .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
            .layer(axum::middleware::map_response(
                crate::close_after_unread_body,
            ));
        let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve_with(
            listener,
            router,
            Limits::default(),
            async move {
                let _ = stopped.await;
            },
        ));
        for _ in 0..20 {
            let answer = post_oversized(addr, 4 << 20).await;
            assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
            assert!(!answer.contains('<'), "{answer}");
        }
    }
}
