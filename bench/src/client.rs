//! The load generator's HTTP client: hyper's own HTTP/1.1 connections,
//! kept alive and reused, with nothing between a request and the socket.
//!
//! reqwest (used for the harness's control calls) parses a URL, walks a
//! redirect policy and a connection pool keyed by scheme and host, and
//! arms a timer per request. Through it, the open-loop generator
//! sustained 32 000 requests/s against a trivial echo and saturated at
//! 48 000/s (`bench run curve`, 2026-11-26, this 2-core machine). The
//! generator must not be the bottleneck, so the load path talks to
//! hyper's client connection directly: one idle stack of connections per
//! origin, a connection per request in flight at most (so at most the
//! generator's `max_in_flight` connections), TCP_NODELAY as on the
//! servers, and one deadline per request.
//!
//! Only plain `http://host:port` bases: the edges of both variants serve
//! plain HTTP (API.md); TLS is between services.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use parking_lot::Mutex;

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
    host: hyper::header::HeaderValue,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

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
        let authority = base.strip_prefix("http://").ok_or_else(|| ClientError::Scheme(base.to_owned()))?.trim_end_matches('/').to_owned();
        let host = hyper::header::HeaderValue::from_str(&authority).map_err(|_| ClientError::Scheme(base.to_owned()))?;
        let o = Arc::new(Origin {
            authority,
            host,
            idle: Mutex::default(),
        });
        origins.insert(base.to_owned(), o.clone());
        Ok(o)
    }

    /// Sends `method path` (with a JSON `body` when given) to `base`; the
    /// status and the whole body, or `None` on a transport error or the
    /// deadline.
    pub async fn request(&self, base: &str, post: bool, path: &str, body: Option<Bytes>) -> Option<(u16, Bytes)> {
        let origin = self.origin(base).ok()?;
        tokio::time::timeout(self.timeout, origin.request(post, path, body)).await.ok()?
    }
}

impl Origin {
    async fn request(&self, post: bool, path: &str, body: Option<Bytes>) -> Option<(u16, Bytes)> {
        let mut builder = hyper::Request::builder().uri(path).header(hyper::header::HOST, self.host.clone());
        if post {
            builder = builder.method(hyper::Method::POST).header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let mut request = builder.body(Full::new(body.unwrap_or_default())).ok()?;
        // A kept-alive connection the server has just closed is found out
        // either before the request goes (`ready`) or with the request
        // handed back unsent (`try_send_request`): then it goes on a fresh
        // connection, as any HTTP client does. The server never saw it, so
        // this hides nothing; a request that was sent is never sent again.
        let mut pooled = true;
        let (conn, answer) = loop {
            let mut conn = match pooled.then(|| self.pop()).flatten() {
                Some(conn) => conn,
                None => {
                    pooled = false;
                    self.connect().await?
                }
            };
            if conn.ready().await.is_err() {
                if pooled {
                    continue;
                }
                return None;
            }
            match conn.try_send_request(request).await {
                Ok(answer) => break (conn, answer),
                Err(mut e) => match e.take_message() {
                    Some(unsent) if pooled => {
                        request = unsent;
                        pooled = false;
                    }
                    _ => return None,
                },
            }
        };
        let status = answer.status().as_u16();
        let body = answer.into_body().collect().await.ok()?.to_bytes();
        // Kept for the next request only once its answer is read in full;
        // a connection the server closes is dropped here or when popped.
        if !conn.is_closed() {
            self.idle.lock().push(conn);
        }
        Some((status, body))
    }

    /// An idle connection that is not known to be closed.
    fn pop(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock();
        while let Some(conn) = idle.pop() {
            if !conn.is_closed() {
                return Some(conn);
            }
        }
        None
    }

    async fn connect(&self) -> Option<SendRequest<Full<Bytes>>> {
        let stream = tokio::net::TcpStream::connect(self.authority.as_str()).await.ok()?;
        stream.set_nodelay(true).ok()?;
        let (send, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.ok()?;
        tokio::spawn(async move {
            // Ends when the connection closes or every sender is dropped.
            let _ = connection.await;
        });
        Some(send)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_bases_are_accepted() {
        let c = Client::new(Duration::from_secs(1));
        assert!(matches!(c.origin("https://example.test"), Err(ClientError::Scheme(_))));
        assert_eq!(c.origin("http://127.0.0.1:9/").map(|o| o.authority.clone()).ok().as_deref(), Some("127.0.0.1:9"));
    }

    #[test]
    fn requests_reuse_one_connection_and_read_the_whole_answer() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let counter = accepted.clone();
            let app = axum::Router::new()
                .route("/echo", axum::routing::get(|| async { "ok" }))
                .route("/body", axum::routing::post(|body: Bytes| async move { (axum::http::StatusCode::CREATED, body) }));
            let listener = axum::serve::ListenerExt::tap_io(listener, move |_| {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            });
            tokio::spawn(async move { axum::serve(listener, app).await });
            let c = Client::new(Duration::from_secs(5));
            let base = format!("http://{addr}");
            for _ in 0..20 {
                assert_eq!(c.request(&base, false, "/echo", None).await, Some((200, Bytes::from_static(b"ok"))));
            }
            let (status, body) = c.request(&base, true, "/body", Some(Bytes::from_static(b"{\"a\":1}"))).await.expect("answer");
            assert_eq!((status, &body[..]), (201, &b"{\"a\":1}"[..]));
            assert_eq!(c.request(&base, false, "/nowhere", None).await.map(|a| a.0), Some(404));
            assert_eq!(accepted.load(std::sync::atomic::Ordering::Relaxed), 1, "one connection, reused");
            // Nothing listens there: an error, not a hang.
            let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind").local_addr().expect("addr");
            assert_eq!(c.request(&format!("http://{closed}"), false, "/echo", None).await, None);
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
                stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").expect("write");
                n += 1;
                // Dropped: closed with no `connection: close`.
            }
            n
        });
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        let c = Client::new(Duration::from_secs(5));
        let base = format!("http://{addr}");
        rt.block_on(async {
            for i in 0..5 {
                assert_eq!(c.request(&base, false, "/", None).await, Some((200, Bytes::from_static(b"ok"))), "request {i}");
                // Let the close arrive, as between requests of a real load.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        assert_eq!(served.join().expect("server"), 5, "one connection per request");
    }
}
