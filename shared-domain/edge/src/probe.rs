//! A container health probe: `GET` a local URL and succeed on a 2xx.
//!
//! Images are built FROM scratch (no shell, no curl), so the binaries
//! probe themselves: `microlith --probe URL` and `microservices probe URL`
//! run this and exit 0 or 1, for Docker's HEALTHCHECK and compose. Plain
//! HTTP/1.0 over a std socket: one request, no runtime to start.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Not an `http://host:port/path` URL.
    #[error("not a plain http:// URL: {0}")]
    Url(String),
    /// Could not connect, send or read in time.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Answered with something other than a 2xx status line.
    #[error("answered {0:?}")]
    Status(String),
}

/// GETs `url` (`http://host:port/path`) within `timeout` per step; Ok on
/// a 2xx answer.
pub fn probe(url: &str, timeout: Duration) -> Result<(), ProbeError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| ProbeError::Url(url.to_owned()))?;
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    let addr = authority
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| ProbeError::Url(url.to_owned()))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    // One write, so the request leaves in one segment (write! would write
    // it piece by piece).
    stream.write_all(
        format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n\r\n").as_bytes(),
    )?;
    // The status line is all we need; read what the first packets bring.
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < 12 {
        match stream.read(&mut head[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            // A peer that answered and reset: judge what it sent.
            Err(_) if len > 0 => break,
            Err(e) => return Err(e.into()),
        }
    }
    let line = String::from_utf8_lossy(&head[..len])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    let code = line.split_whitespace().nth(1).unwrap_or_default();
    if line.starts_with("HTTP/1.") && code.len() == 3 && code.starts_with('2') {
        Ok(())
    } else {
        Err(ProbeError::Status(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve_once(answer: &'static str) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                // The whole request before answering: closing with unread
                // bytes would reset the connection under the answer.
                let (mut buf, mut len) = ([0u8; 512], 0);
                while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf[len..]) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => len += n,
                    }
                }
                let _ = s.write_all(answer.as_bytes());
            }
        });
        format!("http://{addr}/readyz")
    }

    #[test]
    fn a_2xx_passes_and_anything_else_fails() {
        let t = Duration::from_secs(2);
        assert!(
            probe(
                &serve_once("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"),
                t
            )
            .is_ok()
        );
        assert!(
            matches!(probe(&serve_once("HTTP/1.1 503 Service Unavailable\r\n\r\n"), t), Err(ProbeError::Status(s)) if s.contains("503"))
        );
        assert!(matches!(
            probe(&serve_once("garbage"), t),
            Err(ProbeError::Status(_))
        ));
        assert!(matches!(
            probe("https://127.0.0.1:1/", t),
            Err(ProbeError::Url(_))
        ));
        // Nothing listens: refused, not a hang.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr");
        assert!(matches!(
            probe(&format!("http://{closed}/healthz"), t),
            Err(ProbeError::Io(_))
        ));
    }
}
