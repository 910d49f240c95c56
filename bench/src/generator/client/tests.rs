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
                "/slow",
                axum::routing::get(|| async {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    "ok"
                }),
            )
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
        assert_eq!(c.peak_connections(), 1);
        // Eight at once: one connection each (no pipelining), counted.
        let eight = (0..8).map(|_| c.request(&base, false, "/slow", None));
        for answer in futures::future::join_all(eight).await {
            assert_eq!(answer.map(|a| a.0), Some(200));
        }
        assert_eq!(c.peak_connections(), 8);
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
