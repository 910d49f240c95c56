//! A WebSocket session for the suite.

use std::time::Duration;

use anyhow::Context;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A connected chat session.
pub struct Session {
    socket: Socket,
}

const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

impl Session {
    /// Connects; a refused handshake is an error.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .with_context(|| format!("connecting {url}"))?;
        Ok(Self { socket })
    }

    /// Connects with a small kernel receive buffer, so a reader that stops
    /// reading is not hidden by megabytes of socket buffer (Linux grows a
    /// loopback receive buffer up to `tcp_rmem`'s maximum, 32 MiB here).
    pub async fn connect_with_receive_buffer(url: &str, bytes: u32) -> anyhow::Result<Self> {
        let parsed = reqwest::Url::parse(url)?;
        let host = parsed.host_str().context("ws url without host")?;
        let port = parsed.port().context("ws url without port")?;
        let addr = tokio::net::lookup_host((host, port))
            .await?
            .next()
            .context("ws host does not resolve")?;
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_recv_buffer_size(bytes)?;
        let stream = socket.connect(addr).await?;
        let (socket, _) =
            tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(stream))
                .await
                .with_context(|| format!("connecting {url}"))?;
        Ok(Self { socket })
    }

    /// The next text frame as JSON.
    pub async fn next_frame(&mut self) -> anyhow::Result<Value> {
        loop {
            let frame = tokio::time::timeout(FRAME_TIMEOUT, self.socket.next())
                .await
                .context("no frame within 10 s")?
                .context("socket closed")??;
            match frame {
                Message::Text(text) => return Ok(serde_json::from_str(&text)?),
                Message::Close(c) => anyhow::bail!("closed by server: {c:?}"),
                _ => continue,
            }
        }
    }

    /// The next `n` message frames (frames without `type`).
    pub async fn next_messages(&mut self, n: usize) -> anyhow::Result<Vec<Value>> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let frame = self.next_frame().await?;
            if frame.get("type").is_none() {
                out.push(frame);
            }
        }
        Ok(out)
    }

    /// The ack of `key` and the message it acknowledges, in either order.
    pub async fn ack_and_message(&mut self, key: &str) -> anyhow::Result<(Value, Value)> {
        let (mut ack, mut message) = (None, None);
        while ack.is_none() || message.is_none() {
            let frame = self.next_frame().await?;
            match frame.get("type").and_then(Value::as_str) {
                Some("ack") if frame["client_msg_id"] == key => ack = Some(frame),
                None => message = Some(frame),
                _ => anyhow::bail!("unexpected frame {frame}"),
            }
        }
        Ok((ack.unwrap_or_default(), message.unwrap_or_default()))
    }

    /// Sends a JSON frame.
    pub async fn send(&mut self, value: Value) -> anyhow::Result<()> {
        self.socket
            .send(Message::Text(value.to_string().into()))
            .await?;
        Ok(())
    }

    /// Reads message seqs until the server closes the connection (or
    /// `limit` passes); returns them and whether it was closed.
    pub async fn drain_until_closed(
        &mut self,
        limit: Duration,
    ) -> anyhow::Result<(Vec<u64>, bool)> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut seqs = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return Ok((seqs, false)),
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => {
                    return Ok((seqs, true));
                }
                Ok(Some(Ok(Message::Text(text)))) => {
                    let v: Value = serde_json::from_str(&text)?;
                    if let Some(seq) = v["seq"].as_u64()
                        && v.get("type").is_none()
                    {
                        seqs.push(seq);
                    }
                }
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Closes politely.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}
