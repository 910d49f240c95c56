//! Slow and abandoned clients, held against an edge while ordinary ones
//! are measured beside them (the job runs the same transfers without
//! them first). Four kinds, each kept at `per_kind` connections for the
//! whole run (one the edge closes is opened again):
//! - *trickled heads*: a request head sent a byte every 500 ms, never
//!   finished (slowloris);
//! - *silent*: connections opened and abandoned, nothing sent;
//! - *trickled bodies*: a whole head announcing 1 000 bytes of body, then
//!   a byte every 500 ms;
//! - *WebSocket non-readers*: subscribers to a room that read their
//!   upgrade answer and nothing more, while a poster sends 4 KB messages
//!   into the room 100 times a second, so each falls past the edge's
//!   1 024 messages within the run (a quarter as many as the other
//!   kinds).
//!
//! Each connection is watched every 500 ms without reading past what the
//! edge sent (a non-reader is drained only at the end): when the edge
//! closed it, after how long, and whether it answered first (a 408).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;

use crate::generator::client::Client;
use crate::record::AttackRecord;

/// How often a slow client sends its next byte and looks at its socket
/// (each tick of hundreds of them costs the shared cores too).
const TICK: Duration = Duration::from_millis(500);

/// How often the poster posts into the non-readers' room.
const POST_EVERY: Duration = Duration::from_millis(10);

/// A slow client's receive buffer: small, so what the edge must hold back
/// for a non-reader is bounded by its own buffers.
const RECEIVE_BUFFER: u32 = 16 * 1024;

/// The kinds, in the report's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Heads,
    Silent,
    Bodies,
    WebSocket,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Heads, Kind::Silent, Kind::Bodies, Kind::WebSocket];

    fn name(self) -> &'static str {
        match self {
            Kind::Heads => "trickled heads",
            Kind::Silent => "silent connections",
            Kind::Bodies => "trickled bodies",
            Kind::WebSocket => "WebSocket non-readers",
        }
    }

    /// What it sends first.
    fn opening(self, room: &str, n: usize) -> Vec<u8> {
        match self {
            Kind::Heads => b"POST /v1/transfers HTTP/1.1\r\nhost: slow\r\n".to_vec(),
            Kind::Silent => Vec::new(),
            Kind::Bodies => b"POST /v1/transfers HTTP/1.1\r\nhost: slow\r\n\
                content-type: application/json\r\ncontent-length: 1000\r\n\r\n{"
                .to_vec(),
            Kind::WebSocket => format!(
                "GET /v1/rooms/{room}/ws?user=slow{n} HTTP/1.1\r\nhost: slow\r\n\
                 upgrade: websocket\r\nconnection: Upgrade\r\n\
                 sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
            )
            .into_bytes(),
        }
    }

    /// What it sends every tick.
    fn trickle(self) -> &'static [u8] {
        match self {
            Kind::Heads | Kind::Bodies => b"x",
            Kind::Silent | Kind::WebSocket => b"",
        }
    }
}

/// Slow clients at work; [`Attack::stop`] ends them and says what they met.
pub struct Attack {
    stop: Arc<AtomicBool>,
    runtime: tokio::runtime::Handle,
    holders: Vec<(Kind, JoinHandle<AttackRecord>)>,
}

/// Ordinary chat traffic into the non-readers' room, through both runs
/// (alone and beside the slow clients), so that the slow clients are the
/// only difference between them.
pub struct Poster {
    stop: Arc<AtomicBool>,
    runtime: tokio::runtime::Handle,
    task: JoinHandle<()>,
}

impl Poster {
    /// Posts into `room` (which must exist) at `base` on `runtime`.
    pub fn start(runtime: &tokio::runtime::Handle, base: &str, room: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let task = runtime.spawn(post(base.to_owned(), room.to_owned(), stop.clone()));
        Self {
            stop,
            runtime: runtime.clone(),
            task,
        }
    }

    /// Stops posting.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.runtime.block_on(self.task);
    }
}

impl Attack {
    /// Starts `per_kind` slow clients of each kind against the edge at
    /// `base` (`http://host:port`) on `runtime`, the non-readers in `room`
    /// (which must exist, with a [`Poster`] at it).
    pub fn start(
        runtime: &tokio::runtime::Handle,
        base: &str,
        room: &str,
        per_kind: usize,
    ) -> anyhow::Result<Self> {
        let authority = base.trim_start_matches("http://").trim_end_matches('/');
        let addr: SocketAddr = runtime
            .block_on(tokio::net::lookup_host(authority))?
            .next()
            .ok_or_else(|| anyhow::format_err!("{authority}: no address"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut holders = Vec::new();
        for kind in Kind::ALL {
            let n = if kind == Kind::WebSocket {
                per_kind.div_ceil(4)
            } else {
                per_kind
            };
            for i in 0..n {
                let (stop, room) = (stop.clone(), room.to_owned());
                holders.push((
                    kind,
                    runtime.spawn(async move { hold(kind, addr, &room, i, &stop).await }),
                ));
            }
        }
        Ok(Self {
            stop,
            runtime: runtime.clone(),
            holders,
        })
    }

    /// Stops them and adds up what each kind met.
    pub fn stop(self) -> Vec<AttackRecord> {
        self.stop.store(true, Ordering::Relaxed);
        self.runtime.block_on(async move {
            let mut out: Vec<AttackRecord> = Kind::ALL
                .iter()
                .map(|k| AttackRecord {
                    kind: k.name().to_owned(),
                    ..AttackRecord::default()
                })
                .collect();
            for (kind, holder) in self.holders {
                let Ok(one) = holder.await else { continue };
                let Some(total) = out.iter_mut().find(|r| r.kind == kind.name()) else {
                    continue;
                };
                total.held += 1;
                total.opened += one.opened;
                total.cut += one.cut;
                total.answered += one.answered;
                total.refused += one.refused;
                total.longest_s = total.longest_s.max(one.longest_s);
            }
            out
        })
    }
}

/// Posts a 4 KB message into `room` every [`POST_EVERY`] until `stop`.
async fn post(base: String, room: String, stop: Arc<AtomicBool>) {
    let http = Client::new(Duration::from_secs(5));
    let text = "x".repeat(4000);
    let path = format!("/v1/rooms/{room}/messages");
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let body = format!(r#"{{"author":"poster","text":"{text}","client_msg_id":"p{i}"}}"#);
        let _ = http.request(&base, true, &path, Some(body.into())).await;
        i += 1;
        tokio::time::sleep(POST_EVERY).await;
    }
}

/// Keeps one slow client of `kind` connected until `stop`, reconnecting
/// whenever the edge closes it.
async fn hold(
    kind: Kind,
    addr: SocketAddr,
    room: &str,
    n: usize,
    stop: &AtomicBool,
) -> AttackRecord {
    let mut record = AttackRecord::default();
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut stream) = connect(addr).await else {
            record.refused += 1;
            tokio::time::sleep(TICK).await;
            continue;
        };
        record.opened += 1;
        let opened = Instant::now();
        let mut seen = Vec::new();
        if stream.write_all(&kind.opening(room, n)).await.is_err() {
            record.refused += 1;
            continue;
        }
        // A non-reader reads the upgrade's answer, then never another byte.
        if kind == Kind::WebSocket
            && !(read_head(&mut stream, &mut seen).await && seen.starts_with(b"HTTP/1.1 101"))
        {
            record.refused += 1;
            tokio::time::sleep(TICK).await;
            continue;
        }
        loop {
            tokio::time::sleep(TICK).await;
            if stop.load(Ordering::Relaxed) {
                if kind == Kind::WebSocket && drained_to_close(&mut stream).await {
                    // Cut while unread: when is not known, only that it was.
                    record.cut += 1;
                }
                return record;
            }
            if kind == Kind::WebSocket {
                continue;
            }
            let trickle = kind.trickle();
            let wrote = trickle.is_empty() || stream.write_all(trickle).await.is_ok();
            if !wrote || closed(&mut stream, &mut seen) {
                if seen.starts_with(b"HTTP/1.1 503") && opened.elapsed() <= TICK + TICK / 2 {
                    // The edge's bound on connections: refused, not cut.
                    record.refused += 1;
                } else {
                    record.cut += 1;
                    record.answered += u64::from(seen.starts_with(b"HTTP/1.1 "));
                    record.longest_s = record.longest_s.max(opened.elapsed().as_secs_f64());
                }
                break;
            }
        }
    }
    record
}

async fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_recv_buffer_size(RECEIVE_BUFFER)?;
    let stream = tokio::time::timeout(Duration::from_secs(2), socket.connect(addr))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Reads an answer's head (up to its blank line) into `seen`; false when
/// the connection ended or nothing came within 5 s.
async fn read_head(stream: &mut TcpStream, seen: &mut Vec<u8>) -> bool {
    let mut byte = [0u8; 1];
    let read = async {
        while !seen.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte).await {
                Ok(1) => seen.push(byte[0]),
                _ => return false,
            }
        }
        true
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .unwrap_or(false)
}

/// Whether the edge has closed `stream`, keeping what it sent in `seen`.
fn closed(stream: &mut TcpStream, seen: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match stream.try_read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// Reads whatever the edge sent a non-reader; true when it then finds the
/// connection closed (within a second of the last byte, and 10 s in all:
/// a room still busy must not keep the drain going).
async fn drained_to_close(stream: &mut TcpStream) -> bool {
    let mut buf = vec![0u8; 64 * 1024];
    let drain = async {
        loop {
            match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => {}
                Err(_) => return false,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), drain)
        .await
        .unwrap_or(false)
}
