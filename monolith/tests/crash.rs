//! The plain monolith's failures, against its real binary with durable
//! storage under concurrent transfers and posts: a panic in a handler
//! fails only the request it hit, and a SIGKILL of the whole process
//! followed by a restart on the same store loses nothing acknowledged
//! (money conserved, every acknowledged transfer and post present,
//! histories gap-free).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::ensure;

use contract::binary::Binary;
use contract::faults::{Disconnects, Load};

fn load(round: u32) -> Load {
    Load::mixed(round, Disconnects::Retry)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_fails_one_request_and_a_kill_loses_nothing_acknowledged() -> anyhow::Result<()> {
    // Inside target/ (tests write nothing outside the project tree).
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let mut monolith = Binary::new(
        env!("CARGO_BIN_EXE_monolith"),
        dir.path(),
        &["--fault-injection"],
    )?;
    monolith.start().await?;
    let api = monolith.api()?;
    load(0).setup(&api).await?;

    // A panic in a handler: that request's connection closes unanswered,
    // the next one is served, nothing else notices.
    let targets = api.get("/admin/targets").await?;
    ensure!(
        targets.expect_status(200)?["targets"]
            == serde_json::json!(["accounts", "transfers", "chat"])
    );
    api.post_text("/admin/crash/accounts", "{}")
        .await?
        .expect_status(200)?;
    ensure!(
        api.get("/v1/accounts/a1").await.is_err(),
        "the request that hit the panic is not answered"
    );
    api.get("/v1/accounts/a1").await?.expect_status(200)?;

    // Load, a panic in the transfer handler, then SIGKILL of the process
    // and a restart on the same store while clients keep retrying.
    let stop = Arc::new(AtomicBool::new(false));
    let clients = tokio::spawn({
        let (api, stop) = (api.clone(), stop.clone());
        async move { load(1).run_until(&api, &stop).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    api.post_text("/admin/crash/transfers", "{}")
        .await?
        .expect_status(200)?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    Load::ensure_syncs_shared(&api).await?;
    monolith.kill()?;
    monolith.start().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let acked = clients.await??;
    ensure!(acked.faults > 0, "the clients saw the faults");
    ensure!(!acked.transfers.is_empty() && !acked.posts.is_empty());

    // Everything acknowledged is there, before and after another restart.
    load(0).check_invariants(&api, &acked).await?;
    monolith.stop()?;
    monolith.start().await?;
    load(0).check_invariants(&api, &acked).await?;
    monolith.stop()
}
