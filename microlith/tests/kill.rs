//! `kill -9` of the microlith's real binary, durable, while concurrent
//! clients post transfers and messages and the store is sharing syncs
//! between commits (group commit: a batch is in flight nearly all the
//! time under this load, so the kill lands amid one). After a restart on
//! the same store nothing acknowledged is missing: money conserved, every
//! acknowledged transfer and post present, histories gap-free.

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
async fn a_kill_amid_shared_syncs_loses_nothing_acknowledged() -> anyhow::Result<()> {
    // Inside target/ (tests write nothing outside the project tree).
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let mut microlith = Binary::new(env!("CARGO_BIN_EXE_microlith"), dir.path(), &[])?;
    microlith.start().await?;
    let api = microlith.api()?;
    load(0).setup(&api).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let clients = tokio::spawn({
        let (api, stop) = (api.clone(), stop.clone());
        async move { load(1).run_until(&api, &stop).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    Load::ensure_syncs_shared(&api).await?;
    microlith.kill()?;
    microlith.start().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let acked = clients.await??;
    ensure!(acked.faults > 0, "the clients saw the kill");
    ensure!(!acked.transfers.is_empty() && !acked.posts.is_empty());

    // Everything acknowledged is there, before and after another restart.
    load(0).check_invariants(&api, &acked).await?;
    microlith.stop()?;
    microlith.start().await?;
    load(0).check_invariants(&api, &acked).await?;
    microlith.stop()
}
