//! The placements between one process and fully split (`up --layout`):
//! the contract suite of API.md, unchanged, against each preset other than
//! `split` (which `contract.rs` covers), the processes each preset starts,
//! and a SIGKILL of the process holding the accounts under concurrent
//! transfers and posts, ending with the invariant checks.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::ensure;

use contract::Api;
use contract::faults::{Acked, Disconnects, Load};

/// Distinct processes of the running system, by the services in each.
fn processes(cluster: &common::Cluster) -> BTreeSet<Vec<String>> {
    let rows = cluster.ports().services;
    let pids: BTreeSet<u32> = rows.iter().map(|r| r.pid).collect();
    pids.into_iter()
        .map(|pid| {
            let mut names: Vec<String> = rows
                .iter()
                .filter(|r| r.pid == pid)
                .map(|r| r.name.clone())
                .collect();
            names.sort();
            names
        })
        .collect()
}

macro_rules! layout_tests {
    ($module:ident, $layout:literal, $processes:expr) => {
        mod $module {
            use super::common;
            use std::sync::OnceLock;

            pub(super) fn cluster() -> &'static common::Cluster {
                static CLUSTER: OnceLock<common::Cluster> = OnceLock::new();
                CLUSTER.get_or_init(|| {
                    common::Cluster::start(false, &["--layout", $layout, "--server-timing"])
                })
            }

            fn base() -> String {
                cluster().base.clone()
            }

            contract::contract_tests!(base());

            #[test]
            fn it_runs_the_processes_of_its_layout() {
                let expected: std::collections::BTreeSet<Vec<String>> = $processes
                    .iter()
                    .map(|group: &&[&str]| {
                        let mut names: Vec<String> = group.iter().map(|n| n.to_string()).collect();
                        names.sort();
                        names
                    })
                    .collect();
                assert_eq!(super::processes(cluster()), expected);
            }
        }
    };
}

layout_tests!(
    one,
    "one",
    [&["gateway", "accounts", "transfers", "ledger", "chat"][..]]
);
layout_tests!(
    edge_and_saga,
    "edge+saga",
    [
        &["gateway", "transfers"][..],
        &["accounts"][..],
        &["ledger"][..],
        &["chat"][..]
    ]
);
layout_tests!(
    bank,
    "bank",
    [
        &["gateway"][..],
        &["accounts", "transfers", "ledger"][..],
        &["chat"][..]
    ]
);

fn load(round: u32, disconnects: Disconnects) -> Load {
    Load::mixed(round, disconnects)
}

/// Load, SIGKILL of the process holding the accounts (restarted by the
/// launcher), more load, then the invariants.
async fn kill_accounts_under_load(layout: &str, disconnects: Disconnects) -> anyhow::Result<()> {
    let cluster = common::Cluster::start(true, &["--layout", layout]);
    let api = Api::new(&cluster.base)?;
    load(0, disconnects).setup(&api).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let clients = tokio::spawn({
        let (api, stop) = (api.clone(), stop.clone());
        async move {
            let mut acked = Acked::default();
            let mut round = 1;
            while !stop.load(Ordering::Relaxed) && round < 200 {
                acked.merge(load(round, disconnects).run(&api).await?);
                round += 1;
            }
            anyhow::Ok(acked)
        }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let before = cluster.service("accounts").restarts;
    cluster.signal("accounts", "KILL");
    // Until the launcher has started it again and it answers.
    for _ in 0..200 {
        if cluster.service("accounts").restarts > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    ensure!(
        cluster.service("accounts").restarts > before,
        "not restarted"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let acked = clients.await??;
    ensure!(!acked.transfers.is_empty() && !acked.posts.is_empty());
    load(0, disconnects).check_invariants(&api, &acked).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_killed_under_load_loses_nothing_acknowledged() -> anyhow::Result<()> {
    // The gateway dies with it: its clients see their connections close.
    kill_accounts_under_load("one", Disconnects::Retry).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bank_process_killed_under_load_loses_nothing_acknowledged() -> anyhow::Result<()> {
    kill_accounts_under_load("bank", Disconnects::Fail).await
}
