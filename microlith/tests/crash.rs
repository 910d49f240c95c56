//! Crash tests: actors panic repeatedly under concurrent load. Afterwards no
//! acknowledged transfer or message is lost, money is conserved, callers saw
//! errors rather than hangs, and everything survives a restart of the
//! process on the same durable store.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, ensure};
use futures::StreamExt;
use serde_json::Value;

use contract::Api;
use contract::faults::{Disconnects, Load, Repeats, post_until_answered};

const LOAD: Load = Load {
    accounts: 12,
    opening: 10_000,
    rooms: 3,
    transfers: 400,
    posts: 300,
    transfer_concurrency: 24,
    post_concurrency: 12,
    retry_pause: Duration::from_millis(5),
    round: 0,
    disconnects: Disconnects::Fail,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_actors_under_load_lose_nothing_and_survive_restart() -> anyhow::Result<()> {
    microlith::log_panics();
    // Inside target/ (tests write nothing outside the project tree).
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let storage = store::StorageMode::Durable(dir.path().to_path_buf());
    let server = common::Server::start(common::config(storage.clone(), true));
    let api = Api::new(&server.base)?;
    LOAD.setup(&api).await?;
    let targets: Vec<String> = api.get("/admin/targets").await?.expect_status(200)?["targets"]
        .as_array()
        .context("targets")?
        .iter()
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect();
    ensure!(
        targets.iter().any(|t| t.starts_with("account-"))
            && targets.iter().any(|t| t.starts_with("room:"))
    );

    // The crasher: one panic every few milliseconds, round robin.
    let running = Arc::new(AtomicBool::new(true));
    let crashes = Arc::new(AtomicU64::new(0));
    let crasher = {
        let (api, running, crashes, targets) = (
            api.clone(),
            running.clone(),
            crashes.clone(),
            targets.clone(),
        );
        tokio::spawn(async move {
            let mut i = 0;
            while running.load(Ordering::Relaxed) && i < 400 {
                let target = &targets[i % targets.len()];
                if api
                    .post_text(&format!("/admin/crash/{target}"), "{}")
                    .await
                    .is_ok_and(|a| a.status == 200)
                {
                    crashes.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };

    let acked = LOAD.run(&api).await?;
    running.store(false, Ordering::Relaxed);
    crasher.await?;

    let crashes = crashes.load(Ordering::Relaxed);
    ensure!(crashes >= 20, "only {crashes} crashes were injected");
    // Every injected panic was contained and restarted by a supervisor.
    let restarts = api.metric_sum("microlith_actor_restarts_total").await?;
    ensure!(
        restarts >= crashes as f64,
        "{crashes} crashes but {restarts} restarts"
    );
    // A crash drops the forgets queued in a shard's mailbox; their records
    // stay (memory, never money): reported, not asserted.
    println!(
        "step records left after crashes: {}",
        api.metric_sum("microlith_step_records").await?
    );
    // Callers that met a crash got an error (and retried), never a hang;
    // how many met one depends on timing, so it is reported, not asserted.
    println!(
        "crashes={crashes} restarts={restarts} faults_seen_by_callers={}",
        acked.faults
    );
    ensure!(
        acked.transfers.len() > 300,
        "too few transfers completed: {}",
        acked.transfers.len()
    );
    LOAD.check_invariants(&api, &acked).await?;

    // Every 2xx survives a restart of the whole process.
    server.stop();
    let server = common::Server::start(common::config(storage, false));
    let api = Api::new(&server.base)?;
    LOAD.check_invariants(&api, &acked).await?;
    server.stop();
    Ok(())
}

/// The account shards drop a transfer's step results once it is settled,
/// in memory and in the store, so they stay bounded; a repeat of a settled
/// transfer still answers its recorded outcome and moves nothing (the
/// journal answers it, no step runs again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settled_transfers_leave_no_step_records_and_repeats_move_nothing() -> anyhow::Result<()> {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let storage = store::StorageMode::Durable(dir.path().to_path_buf());
    // Small balances against amounts up to 400: some transfers are refused.
    let load = Load {
        posts: 0,
        opening: 300,
        ..LOAD
    };
    let server = common::Server::start(common::config(storage.clone(), false));
    let api = Api::new(&server.base)?;
    load.setup(&api).await?;
    let acked = load.run(&api).await?;
    ensure!(
        acked.transfers.len() > 300,
        "too few transfers completed: {}",
        acked.transfers.len()
    );
    ensure!(
        acked.transfers.values().any(|s| s == "committed")
            && acked.transfers.values().any(|s| s == "rejected")
    );
    load.check_invariants(&api, &acked).await?;
    let records = api.metric_sum("microlith_step_records").await?;
    ensure!(
        records == 0.0,
        "{records} transfers still have step records after all settled"
    );

    // Every transfer again, same ids and bodies: the recorded outcomes.
    let repeated = load.run(&api).await?;
    ensure!(
        repeated.transfers == acked.transfers,
        "a repeat answered differently"
    );
    load.check_invariants(&api, &acked).await?;

    // The store forgot them too: a restart loads no step records.
    server.stop();
    let server = common::Server::start(common::config(storage, false));
    let api = Api::new(&server.base)?;
    let _ = api.balance("a0").await?; // every shard answers once started
    load.check_invariants(&api, &acked).await?;
    let records = api.metric_sum("microlith_step_records").await?;
    ensure!(
        records == 0.0,
        "{records} transfers have step records after a restart"
    );
    server.stop();
    Ok(())
}

/// A chat session notices its room crashed (its subscription ends with the
/// room's instance) and resubscribes from its cursor: a WebSocket reader
/// sees every message exactly once, in order, while the room crashes again
/// and again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_sessions_survive_room_crashes_without_gaps_or_duplicates() -> anyhow::Result<()>
{
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
                if api
                    .post_text("/admin/crash/room:lobby", "{}")
                    .await
                    .is_ok_and(|a| a.status == 200)
                {
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
        async move {
            post_until_answered(
                &api,
                "lobby",
                "poster",
                &format!("m{k}"),
                &format!("k{k}"),
                Repeats {
                    pause: Duration::from_millis(5),
                    disconnects: Disconnects::Fail,
                    faults: &faults,
                },
            )
            .await
        }
    });
    let acked: Vec<_> = futures::stream::iter(posts)
        .buffer_unordered(8)
        .collect()
        .await;
    running.store(false, Ordering::Relaxed);
    let crashes = crasher.await?;
    let acked: Vec<u64> = acked
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    ensure!(
        acked.len() == 300,
        "{} of 300 posts acknowledged",
        acked.len()
    );
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
