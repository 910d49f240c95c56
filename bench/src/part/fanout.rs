//! Chat fan-out: one room, `N` WebSocket subscribers, posts over HTTP at a
//! constant rate (open loop, as every other scenario); each post must reach
//! every subscriber exactly once and in order.
//!
//! The delivery latency of a message to a subscriber is measured from the
//! time its post was *scheduled* (the text carries the post's index, and
//! the schedule is known), so it includes the post itself, the fan-out and
//! the socket, and a stall anywhere cannot hide. Subscribers run on a
//! runtime of their own so reading frames does not delay the posting.
//!
//! A subscriber the server disconnects for reading too slowly (close 1008,
//! API.md) reconnects with `after=` its last seq, as a real client does;
//! reconnects are counted. An upgrade the edge refuses as overloaded (429
//! or 503: a few hundred subscribers connecting at once is a burst) is
//! sent again after a pause, as API.md asks of clients, and counted.
//! After the run every subscriber must hold exactly
//! the room's history, `1..=messages`: anything missing, duplicated or out
//! of order fails the run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use hdrhistogram::Histogram;
use tokio_tungstenite::tungstenite::Message;

use crate::generator::load::{self, Plan, histogram};
use crate::generator::requests::{Call, send};
use crate::record::{FanoutRecord, Outcome};

/// What one subscriber saw.
#[derive(Default)]
struct Seen {
    last: u64,
    count: u64,
    duplicates: u64,
    out_of_order: u64,
    gaps: u64,
    reconnects: u64,
    /// Upgrades refused as overloaded, then sent again.
    refused: u64,
}

/// Opens a subscription at `url`, sending the upgrade again when the edge
/// refuses it as overloaded (429 or 503), after the pauses API.md asks of
/// clients ([`contract::client::resend_pauses`]), at most
/// [`contract::OVERLOAD_RESENDS`] times; each refusal resent is added to
/// `refused`.
async fn connect(
    url: &str,
    refused: &mut u64,
) -> anyhow::Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
> {
    use tokio_tungstenite::tungstenite::Error;
    let mut pauses = contract::client::resend_pauses(contract::OVERLOAD_RESENDS);
    loop {
        match tokio_tungstenite::connect_async(url).await {
            Ok((socket, _)) => return Ok(socket),
            Err(Error::Http(answer)) if matches!(answer.status().as_u16(), 429 | 503) => {
                let Some(pause) = pauses.next() else {
                    anyhow::bail!(
                        "connecting {url}: refused as overloaded {} times",
                        contract::OVERLOAD_RESENDS + 1
                    );
                };
                *refused += 1;
                tokio::time::sleep(pause).await;
            }
            Err(e) => return Err(e).with_context(|| format!("connecting {url}")),
        }
    }
}

/// The text of post `i` (the index lets a subscriber find its schedule).
fn text_of(i: u64) -> String {
    format!("fanout {i}")
}

fn index_of(text: &str) -> Option<u64> {
    text.strip_prefix("fanout ")?.parse().ok()
}

/// What every subscriber of a run shares with the run.
#[derive(Clone)]
struct Shared {
    /// The room's WebSocket URL, without the query.
    ws_base: String,
    /// The posting's schedule.
    plan: Plan,
    /// The schedule's epoch, set just before the first post.
    epoch: Arc<OnceLock<Instant>>,
    /// Messages to see, known once the posting is over.
    target: Arc<AtomicU64>,
    /// Delivery latencies, merged by every subscriber at its end.
    latency: Arc<parking_lot::Mutex<Histogram<u64>>>,
    /// Told once each subscriber is connected.
    ready: tokio::sync::mpsc::Sender<()>,
    /// When subscribers stop waiting.
    deadline: Arc<parking_lot::Mutex<Instant>>,
}

/// One subscriber: reads until it has seen the target (set once the
/// posting is over) or until the deadline; resumes after a server
/// disconnect.
async fn subscribe(user: String, shared: Shared) -> anyhow::Result<Seen> {
    let Shared {
        ws_base,
        plan,
        epoch,
        target,
        latency,
        ready,
        deadline,
    } = shared;
    let mut seen = Seen::default();
    let mut local = histogram();
    let mut first = true;
    'connect: loop {
        let url = format!("{ws_base}?user={user}&after={}", seen.last);
        let mut socket = connect(&url, &mut seen.refused).await?;
        if first {
            first = false;
            let _ = ready.send(()).await;
        }
        loop {
            let goal = target.load(Ordering::Acquire);
            if goal != u64::MAX && seen.last >= goal {
                break 'connect;
            }
            let wait = deadline.lock().saturating_duration_since(Instant::now());
            let frame =
                match tokio::time::timeout(wait.min(Duration::from_millis(200)), socket.next())
                    .await
                {
                    Err(_) if Instant::now() >= *deadline.lock() => break 'connect,
                    Err(_) => continue,
                    Ok(None) => {
                        seen.reconnects += 1;
                        continue 'connect;
                    }
                    Ok(Some(frame)) => frame,
                };
            let text = match frame {
                Ok(Message::Text(text)) => text,
                Ok(Message::Close(_)) | Err(_) => {
                    seen.reconnects += 1;
                    anyhow::ensure!(
                        seen.reconnects <= 100,
                        "{user}: disconnected over 100 times"
                    );
                    continue 'connect;
                }
                Ok(_) => continue,
            };
            let read_at = Instant::now();
            let value: serde_json::Value = serde_json::from_str(&text)?;
            if value.get("type").is_some() {
                continue;
            }
            let seq = value["seq"].as_u64().context("message without seq")?;
            seen.count += 1;
            if seq <= seen.last {
                // The same seq again, or an older one after a newer.
                if seq == seen.last {
                    seen.duplicates += 1;
                } else {
                    seen.out_of_order += 1;
                }
                continue;
            }
            seen.gaps += seq - seen.last - 1;
            seen.last = seq;
            if let Some(i) = value["text"].as_str().and_then(index_of)
                && !plan.in_warmup(i)
                && let Some(epoch) = epoch.get()
            {
                let due = *epoch + plan.due(i);
                let _ =
                    local.record(read_at.saturating_duration_since(due).as_nanos().max(1) as u64);
            }
        }
    }
    let _ = latency.lock().add(&local);
    Ok(seen)
}

/// Where a fan-out runs: a variant's edge, a fresh room, and how many
/// subscribe.
#[derive(Debug, Clone, Copy)]
pub struct Room<'a> {
    /// The variant.
    pub variant: &'a str,
    /// Its edge, `http://host:port`.
    pub base: &'a str,
    /// The room, created by the run.
    pub room: &'a str,
    /// WebSocket subscribers.
    pub subscribers: u32,
}

/// Runs one fan-out: subscribers on the room, posts at `plan.rate`; the
/// posts go from the client runtime, the subscribers read on the control
/// runtime. Blocks this thread.
pub fn run(
    runtimes: &crate::generator::Runtimes,
    http: &crate::generator::client::Client,
    at: Room<'_>,
    plan: Plan,
    repeat: u32,
) -> anyhow::Result<FanoutRecord> {
    let Room {
        variant,
        base,
        room,
        subscribers,
    } = at;
    let (client, readers) = (runtimes.client.handle(), runtimes.control.handle());
    let api = contract::Api::new(base)?;
    readers
        .block_on(api.room(room))
        .with_context(|| format!("creating room {room}"))?;
    let ws_base = api.ws_url(room, "").trim_end_matches('?').to_owned();
    let target = Arc::new(AtomicU64::new(u64::MAX));
    let latency = Arc::new(parking_lot::Mutex::new(histogram()));
    // Generous until the posting ends; then the stragglers get 10 s.
    let deadline = Arc::new(parking_lot::Mutex::new(
        Instant::now() + plan.warmup + plan.duration + Duration::from_secs(120),
    ));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(subscribers.max(1) as usize);
    // The schedule's epoch, set just before the first post.
    let epoch_cell = Arc::new(OnceLock::<Instant>::new());
    let mut tasks = Vec::new();
    let shared = Shared {
        ws_base,
        plan,
        epoch: epoch_cell.clone(),
        target: target.clone(),
        latency: latency.clone(),
        ready: ready_tx,
        deadline: deadline.clone(),
    };
    for s in 0..subscribers {
        tasks.push(readers.spawn(subscribe(format!("s{s}"), shared.clone())));
    }
    drop(shared);
    let connected = readers.block_on(async {
        for _ in 0..subscribers {
            tokio::time::timeout(Duration::from_secs(30), ready_rx.recv())
                .await
                .context("subscribers did not connect within 30 s")?
                .context("a subscriber failed to connect")?;
        }
        anyhow::Ok(())
    });
    if let Err(e) = connected {
        // Why: the first subscriber that gave up, if one did.
        target.store(0, Ordering::Release);
        *deadline.lock() = Instant::now();
        for task in tasks {
            if let Ok(Err(why)) = readers.block_on(task) {
                return Err(why.context(e));
            }
        }
        return Err(e);
    }

    let (post_http, base_url, path) = (
        http.clone(),
        base.to_owned(),
        format!("/v1/rooms/{room}/messages"),
    );
    let _ = epoch_cell.set(Instant::now());
    let stats = load::run(client, plan, move |i| {
        let call = Call {
            post: true,
            path: path.clone(),
            body: Some(serde_json::json!({"author": "poster", "text": text_of(i), "client_msg_id": format!("f{i}")}).to_string().into()),
        };
        send(&post_http, &base_url, &call)
    });
    // The truth: what the room holds now. A system shedding load right
    // after the run (a breaker open) may answer 503 for a while: the read
    // is repeated, for at most 30 s, and the wait is kept in the record.
    let (history, waited) = readers
        .block_on(api.history_within(room, Duration::from_secs(30)))
        .with_context(|| format!("reading room {room}'s history after the run"))?;
    let messages = history.len() as u64;
    let history_wait_s = waited.as_secs_f64();
    *deadline.lock() = Instant::now() + Duration::from_secs(10);
    target.store(messages, Ordering::Release);
    let mut record = FanoutRecord {
        variant: variant.to_owned(),
        repeat,
        subscribers,
        rate: plan.rate,
        posts_ok: stats.count(Outcome::Ok),
        posts_failed: stats
            .outcomes
            .iter()
            .filter(|(o, _)| *o != Outcome::Ok)
            .map(|(_, n)| n)
            .sum(),
        messages,
        deliveries: 0,
        lost: 0,
        duplicates: 0,
        out_of_order: 0,
        reconnects: 0,
        refused_upgrades: 0,
        p50_us: 0.0,
        p90_us: 0.0,
        p99_us: 0.0,
        p999_us: 0.0,
        max_us: 0.0,
        histogram: String::new(),
        history_wait_s: (history_wait_s > 0.0).then_some(history_wait_s),
    };
    for task in tasks {
        let seen = readers.block_on(task).context("a subscriber task died")??;
        record.deliveries += seen.count;
        record.duplicates += seen.duplicates;
        record.out_of_order += seen.out_of_order;
        record.reconnects += seen.reconnects;
        record.refused_upgrades += seen.refused;
        // Holes inside what it saw, and what it never reached.
        record.lost += seen.gaps + messages.saturating_sub(seen.last);
    }
    let h = latency.lock().clone();
    let q = |p: f64| {
        if h.is_empty() {
            0.0
        } else {
            h.value_at_quantile(p) as f64 / 1000.0
        }
    };
    record.p50_us = q(0.5);
    record.p90_us = q(0.9);
    record.p99_us = q(0.99);
    record.p999_us = q(0.999);
    record.max_us = if h.is_empty() {
        0.0
    } else {
        h.max() as f64 / 1000.0
    };
    record.histogram = crate::record::histogram::encode_histogram(&h);
    Ok(record)
}
