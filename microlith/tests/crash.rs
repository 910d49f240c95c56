//! Crash tests: actors panic repeatedly under concurrent load. Afterwards no
//! acknowledged transfer or message is lost, money is conserved, callers saw
//! errors rather than hangs, and everything survives a restart of the
//! process on the same durable store.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use futures::StreamExt;
use serde_json::Value;

use contract::Api;
use shared_domain::invariant::{SeenMessage, check_acked_posts};

const ACCOUNTS: usize = 12;
const OPENING: i64 = 10_000;

/// What clients were told.
#[derive(Default)]
struct Acked {
    transfers: HashMap<String, &'static str>,
    posts: Vec<(String, String, String, String, u64)>,
}

/// Sends a request the way a careful client does: on 429/503 (or 202) it
/// repeats with the same idempotency key, a bounded number of times.
async fn transfer_until_answered(api: &Api, id: &str, from: &str, to: &str, amount: i64, faults: &AtomicU64) -> anyhow::Result<Option<&'static str>> {
    for _ in 0..200 {
        let started = Instant::now();
        let answer = api.transfer(id, from, to, amount).await?;
        ensure!(started.elapsed() < Duration::from_secs(5), "a transfer call hung for {:?}", started.elapsed());
        match (answer.status.as_u16(), answer.code()) {
            (200, _) => return Ok(Some("committed")),
            (409, "insufficient_funds") => return Ok(Some("rejected")),
            (202, _) | (503, _) | (429, _) => {
                faults.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            _ => anyhow::bail!("transfer {id}: {} {}", answer.status, answer.body),
        }
    }
    Ok(None)
}

async fn post_until_answered(api: &Api, room: &str, author: &str, text: &str, key: &str, faults: &AtomicU64) -> anyhow::Result<Option<u64>> {
    for _ in 0..200 {
        let started = Instant::now();
        let answer = api.say(room, author, text, key).await?;
        ensure!(started.elapsed() < Duration::from_secs(5), "a post hung for {:?}", started.elapsed());
        match answer.status.as_u16() {
            200 | 201 => return Ok(answer.body["seq"].as_u64()),
            503 | 429 => {
                faults.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            _ => anyhow::bail!("post {key}: {} {}", answer.status, answer.body),
        }
    }
    Ok(None)
}

async fn check_invariants(api: &Api, accounts: &[String], rooms: &[String], acked: &Acked) -> anyhow::Result<()> {
    let audit = api.settled_audit().await?;
    ensure!(audit["pending_transfers"] == 0, "pending after faults stopped: {audit}");
    ensure!(audit["accounts"] == ACCOUNTS as u64, "accounts: {audit}");
    ensure!(
        audit["total_balance"].as_i64() == Some(OPENING * ACCOUNTS as i64),
        "money not conserved: {audit}"
    );
    let mut total = 0;
    for a in accounts {
        let b = api.balance(a).await?;
        ensure!(b >= 0);
        total += b;
    }
    ensure!(total == OPENING * ACCOUNTS as i64, "balances sum to {total}");
    for (id, status) in &acked.transfers {
        let record = api.get(&format!("/v1/transfers/{id}")).await?;
        ensure!(record.expect_status(200)?["status"] == *status, "acknowledged {id} {status}, now {}", record.body);
    }
    for room in rooms {
        let history: Vec<SeenMessage> = api
            .history(room)
            .await?
            .iter()
            .map(|m: &Value| SeenMessage {
                seq: m["seq"].as_u64().unwrap_or(0),
                author: m["author"].as_str().unwrap_or("").to_owned(),
                client_msg_id: None,
                text: m["text"].as_str().unwrap_or("").to_owned(),
            })
            .collect();
        let acked_here: Vec<_> = acked
            .posts
            .iter()
            .filter(|p| &p.0 == room)
            .map(|(_, a, k, t, s)| (a.as_str(), k.as_str(), t.as_str(), *s))
            .collect();
        ensure!(history.len() == acked_here.len(), "room {room}: {} messages, {} acknowledged", history.len(), acked_here.len());
        check_acked_posts(room, &history, acked_here)?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_actors_under_load_lose_nothing_and_survive_restart() -> anyhow::Result<()> {
    microlith::log_panics();
    // Inside target/ (tests write nothing outside the project tree).
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let storage = store::StorageMode::Durable(dir.path().to_path_buf());
    let server = common::Server::start(common::config(storage.clone(), true));
    let api = Api::new(&server.base)?;
    let accounts: Vec<String> = (0..ACCOUNTS).map(|i| format!("a{i}")).collect();
    for a in &accounts {
        api.open(a, OPENING).await?;
    }
    let rooms: Vec<String> = (0..3).map(|i| format!("r{i}")).collect();
    for r in &rooms {
        api.room(r).await?;
    }
    let targets: Vec<String> = api.get("/admin/targets").await?.expect_status(200)?["targets"]
        .as_array()
        .context("targets")?
        .iter()
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect();
    ensure!(targets.iter().any(|t| t.starts_with("account-")) && targets.iter().any(|t| t.starts_with("room:")));

    // The crasher: one panic every few milliseconds, round robin.
    let running = Arc::new(AtomicBool::new(true));
    let crashes = Arc::new(AtomicU64::new(0));
    let crasher = {
        let (api, running, crashes, targets) = (api.clone(), running.clone(), crashes.clone(), targets.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while running.load(Ordering::Relaxed) && i < 400 {
                let target = &targets[i % targets.len()];
                if api.post_text(&format!("/admin/crash/{target}"), "{}").await.is_ok_and(|a| a.status == 200) {
                    crashes.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };

    let faults = Arc::new(AtomicU64::new(0));
    let transfers = (0..400usize).map(|k| {
        let (api, faults) = (api.clone(), faults.clone());
        let (from, to) = (format!("a{}", k % ACCOUNTS), format!("a{}", (k * 5 + 1) % ACCOUNTS));
        async move {
            if from == to {
                return anyhow::Ok(None);
            }
            let id = format!("t{k}");
            let outcome = transfer_until_answered(&api, &id, &from, &to, (k % 3000 + 1) as i64, &faults).await?;
            anyhow::Ok(outcome.map(|s| (id, s)))
        }
    });
    let posts = (0..300usize).map(|k| {
        let (api, faults) = (api.clone(), faults.clone());
        let room = format!("r{}", k % 3);
        async move {
            let (author, key, text) = (format!("u{}", k % 5), format!("k{k}"), format!("text {k}"));
            let seq = post_until_answered(&api, &room, &author, &text, &key, &faults).await?;
            anyhow::Ok(seq.map(|s| (room, author, key, text, s)))
        }
    });
    let (transfer_results, post_results) = tokio::join!(
        futures::stream::iter(transfers).buffer_unordered(24).collect::<Vec<_>>(),
        futures::stream::iter(posts).buffer_unordered(12).collect::<Vec<_>>(),
    );
    running.store(false, Ordering::Relaxed);
    crasher.await?;

    let mut acked = Acked::default();
    for r in transfer_results {
        if let Some((id, status)) = r? {
            acked.transfers.insert(id, status);
        }
    }
    for r in post_results {
        if let Some(p) = r? {
            acked.posts.push(p);
        }
    }
    let crashes = crashes.load(Ordering::Relaxed);
    ensure!(crashes >= 20, "only {crashes} crashes were injected");
    // Every injected panic was contained and restarted by a supervisor.
    let metrics = reqwest::get(format!("{}/metrics", server.base)).await?.text().await?;
    let restarts: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("microlith_actor_restarts_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    ensure!(restarts >= crashes as f64, "{crashes} crashes but {restarts} restarts");
    // Callers that met a crash got an error (and retried), never a hang;
    // how many met one depends on timing, so it is reported, not asserted.
    println!("crashes={crashes} restarts={restarts} faults_seen_by_callers={}", faults.load(Ordering::Relaxed));
    ensure!(acked.transfers.len() > 300, "too few transfers completed: {}", acked.transfers.len());
    check_invariants(&api, &accounts, &rooms, &acked).await?;

    // Every 2xx survives a restart of the whole process.
    server.stop();
    let server = common::Server::start(common::config(storage, false));
    let api = Api::new(&server.base)?;
    check_invariants(&api, &accounts, &rooms, &acked).await?;
    server.stop();
    Ok(())
}

/// A chat session notices its room crashed (its subscription ends with the
/// room's instance) and resubscribes from its cursor: a WebSocket reader
/// sees every message exactly once, in order, while the room crashes again
/// and again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_sessions_survive_room_crashes_without_gaps_or_duplicates() -> anyhow::Result<()> {
    microlith::log_panics();
    let server = common::Server::start(common::config(store::StorageMode::Memory, true));
    let api = Api::new(&server.base)?;
    api.room("lobby").await?;
    let url = api.ws_url("lobby", "user=watcher");
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await?;

    let running = Arc::new(AtomicBool::new(true));
    let crasher = {
        let (api, running) = (api.clone(), running.clone());
        tokio::spawn(async move {
            let mut crashes = 0u32;
            while running.load(Ordering::Relaxed) && crashes < 300 {
                if api.post_text("/admin/crash/room:lobby", "{}").await.is_ok_and(|a| a.status == 200) {
                    crashes += 1;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            crashes
        })
    };
    let faults = Arc::new(AtomicU64::new(0));
    let posts = (0..300usize).map(|k| {
        let (api, faults) = (api.clone(), faults.clone());
        async move { post_until_answered(&api, "lobby", "poster", &format!("m{k}"), &format!("k{k}"), &faults).await }
    });
    let acked: Vec<_> = futures::stream::iter(posts).buffer_unordered(8).collect().await;
    running.store(false, Ordering::Relaxed);
    let crashes = crasher.await?;
    let acked: Vec<u64> = acked.into_iter().collect::<anyhow::Result<Vec<_>>>()?.into_iter().flatten().collect();
    ensure!(acked.len() == 300, "{} of 300 posts acknowledged", acked.len());
    ensure!(crashes >= 20, "only {crashes} room crashes");

    let mut seen = Vec::new();
    while seen.len() < 300 {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .context("the session stopped delivering")?
            .context("the server closed the session")??;
        if let tokio_tungstenite::tungstenite::Message::Text(text) = frame {
            let v: Value = serde_json::from_str(&text)?;
            seen.push(v["seq"].as_u64().context("seq")?);
        }
    }
    shared_domain::invariant::check_contiguous("lobby", 0, seen.iter().copied())?;
    println!("room crashes={crashes} delivered={}", seen.len());
    server.stop();
    Ok(())
}
