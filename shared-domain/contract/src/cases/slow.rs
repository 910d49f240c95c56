//! Slow and abandoned clients: a client that trickles its request or
//! sends nothing holds a connection for a bounded time, and nobody else
//! waits for it.

use std::time::Duration;

use anyhow::{Context, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::{Api, prefix};

/// Connections trickling a request head, and as many that send nothing.
const SLOW: usize = 100;

/// Longer than any edge waits for a head (10 s by default) or a body
/// (its request deadline): a guard against a hang, not a timing.
const PATIENCE: Duration = Duration::from_secs(30);

/// 100 connections trickling their heads a byte every 200 ms and 100 that
/// send nothing stay open while the edge serves others in full; a body
/// that stops coming is answered 408 `request_timeout` and its connection
/// closed; the trickled heads are cut off.
pub async fn slow_and_abandoned_clients_do_not_hold_up_others(api: &Api) -> anyhow::Result<()> {
    let authority = api
        .base
        .strip_prefix("http://")
        .context("an http:// base")?
        .trim_end_matches('/')
        .to_owned();
    let mut trickling = Vec::new();
    let mut silent = Vec::new();
    for _ in 0..SLOW {
        let mut stream = TcpStream::connect(&authority).await?;
        stream
            .write_all(b"POST /v1/transfers HTTP/1.1\r\nhost: slow\r\n")
            .await?;
        trickling.push(stream);
        silent.push(TcpStream::connect(&authority).await?);
    }
    let trickle = tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut open = trickling;
        while !open.is_empty() && tokio::time::Instant::now() < deadline {
            let mut still = Vec::with_capacity(open.len());
            for mut stream in open {
                // A write fails once the server has closed it.
                if stream.write_all(b"x").await.is_ok() && !closed(&mut stream) {
                    still.push(stream);
                }
            }
            open = still;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        open.len()
    });

    // Everyone else is served in full meanwhile.
    let p = prefix("slowc");
    let (a, b) = (format!("{p}a"), format!("{p}b"));
    api.open(&a, 100).await?;
    api.open(&b, 0).await?;
    for i in 0..20 {
        api.transfer(&format!("{p}t{i}"), &a, &b, 1)
            .await?
            .expect_status(200)?;
    }
    ensure!(
        api.balance(&b).await? == 20,
        "transfers beside slow clients"
    );

    // A body that stops coming: 408, then the connection closes.
    let mut stream = TcpStream::connect(&authority).await?;
    stream
        .write_all(
            b"POST /v1/transfers HTTP/1.1\r\nhost: slow\r\ncontent-type: application/json\r\n\
              content-length: 64\r\n\r\n{\"transfer_id\":",
        )
        .await?;
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .context("a stalled body was still waited for")??;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").context("an HTTP answer")?;
    ensure!(head.starts_with("HTTP/1.1 408"), "stalled body: {answer}");
    let body: serde_json::Value = serde_json::from_str(body).context("a JSON error body")?;
    ensure!(
        body["error"]["code"] == "request_timeout",
        "stalled body: {body}"
    );

    let left = trickle.await?;
    ensure!(
        left == 0,
        "{left} trickled heads still open after {PATIENCE:?}"
    );
    // The silent ones were closed too, without a word.
    for mut stream in silent {
        let mut rest = Vec::new();
        tokio::time::timeout(PATIENCE, stream.read_to_end(&mut rest))
            .await
            .context("a silent connection was kept open")??;
        ensure!(rest.is_empty(), "a silent connection was sent {rest:?}");
    }
    Ok(())
}

/// Whether the server has closed `stream` (its end of stream is there).
fn closed(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.try_read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}
