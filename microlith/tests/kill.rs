//! `kill -9` of the microlith's real binary, durable, while concurrent
//! clients post transfers and messages and the store is sharing syncs
//! between commits (group commit: a batch is in flight nearly all the
//! time under this load, so the kill lands amid one). After a restart on
//! the same store nothing acknowledged is missing: money conserved, every
//! acknowledged transfer and post present, histories gap-free.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::ensure;

use contract::Api;
use contract::faults::{Disconnects, Load};

fn load(round: u32) -> Load {
    Load::mixed(round, Disconnects::Retry)
}

/// The binary on `port` over the store in `dir`, once it answers
/// `/readyz`; it exits when its stdin closes (the test's end).
async fn start(dir: &Path, port: u16) -> anyhow::Result<Child> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_microlith"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--storage", "durable", "--data-dir"])
        .arg(dir)
        .arg("--exit-on-stdin-eof")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .spawn()?;
    let api = Api::new(&format!("http://127.0.0.1:{port}"))?;
    let since = Instant::now();
    while since.elapsed() < Duration::from_secs(20) {
        if api.get("/readyz").await.is_ok_and(|a| a.status == 200) {
            return Ok(child);
        }
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("the microlith exited while starting: {status}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = child.kill();
    anyhow::bail!("the microlith was not ready within 20 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_amid_shared_syncs_loses_nothing_acknowledged() -> anyhow::Result<()> {
    // Inside target/ (tests write nothing outside the project tree).
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut process = start(dir.path(), port).await?;
    let api = Api::new(&format!("http://127.0.0.1:{port}"))?;
    load(0).setup(&api).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let clients = tokio::spawn({
        let (api, stop) = (api.clone(), stop.clone());
        async move { load(1).run_until(&api, &stop).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    Load::ensure_syncs_shared(&api).await?;
    process.kill()?;
    process.wait()?;
    let mut process = start(dir.path(), port).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let acked = clients.await??;
    ensure!(acked.faults > 0, "the clients saw the kill");
    ensure!(!acked.transfers.is_empty() && !acked.posts.is_empty());

    // Everything acknowledged is there, before and after another restart.
    load(0).check_invariants(&api, &acked).await?;
    drop(process.stdin.take());
    process.wait()?;
    let mut process = start(dir.path(), port).await?;
    load(0).check_invariants(&api, &acked).await?;
    drop(process.stdin.take());
    process.wait()?;
    Ok(())
}
