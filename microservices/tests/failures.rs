//! Failure tests of the microservices, under concurrent load, against the
//! real processes of `microservices up` with durable storage:
//!
//! - the accounts process stops answering (SIGSTOP: alive but silent),
//!   then is SIGKILLed, then the transfers process is SIGKILLed. Callers
//!   get fast 503s once the breakers open instead of waiting, the launcher
//!   restarts what died, the breakers close, pending transfers complete,
//!   and afterwards money is conserved and nothing acknowledged is lost;
//! - the HTTP/JSON ledger is SIGKILLed: the audit answers 503 while it is
//!   down, transfers go on, and once it is back its read model catches up
//!   with every committed transfer.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::ensure;

use contract::Api;
use contract::faults::{Disconnects, HANG, Load};

fn load(round: u32) -> Load {
    Load::mixed(round, Disconnects::Fail)
}

/// Reads balances from several readers until `stop`; returns (503s that
/// came back faster than the call timeout, slowest answer).
async fn read_until(
    api: &Api,
    stop: Arc<AtomicBool>,
    fast: Duration,
) -> anyhow::Result<(u64, Duration)> {
    let readers = (0..6).map(|r| {
        let (api, stop) = (api.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut fast_503, mut slowest) = (0u64, Duration::ZERO);
            let mut reads = 0;
            while !stop.load(Ordering::Relaxed) && reads < 100_000 {
                let started = Instant::now();
                let answer = api.get(&format!("/v1/accounts/a{r}")).await?;
                let took = started.elapsed();
                slowest = slowest.max(took);
                match answer.status.as_u16() {
                    200 => {}
                    503 | 429 => {
                        if took < fast {
                            fast_503 += 1;
                        }
                    }
                    other => anyhow::bail!("balance read: {other} {}", answer.body),
                }
                reads += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            anyhow::Ok((fast_503, slowest))
        })
    });
    let mut total = (0, Duration::ZERO);
    for reader in futures::future::join_all(readers).await {
        let (f, s) = reader??;
        total = (total.0 + f, total.1.max(s));
    }
    Ok(total)
}

async fn wait_for_restart(
    cluster: &common::Cluster,
    name: &str,
    restarts: u32,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while cluster.service(name).restarts < restarts {
        ensure!(Instant::now() < deadline, "{name} was not restarted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_and_transfers_processes_fail_under_load_and_nothing_is_lost() -> anyhow::Result<()>
{
    let call_timeout = Duration::from_millis(300);
    let cluster = common::Cluster::start(
        true,
        &["--call-timeout-ms", "300", "--breaker-open-ms", "300"],
    );
    let api = Api::new(&cluster.base)?;
    load(0).setup(&api).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn({
        let (api, stop) = (api.clone(), stop.clone());
        async move { load(0).run_until(&api, &stop).await }
    });
    let readers = tokio::spawn({
        let (api, stop) = (api.clone(), stop.clone());
        async move { read_until(&api, stop, call_timeout).await }
    });

    tokio::time::sleep(Duration::from_millis(300)).await;
    // Gray failure: alive but silent. Only deadlines and breakers see it.
    cluster.signal("accounts", "STOP");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.signal("accounts", "CONT");
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Crash: the launcher restarts it on the same address.
    cluster.signal("accounts", "KILL");
    wait_for_restart(&cluster, "accounts", 1).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The saga host dies with transfers in flight; the new one resumes them.
    cluster.signal("transfers", "KILL");
    wait_for_restart(&cluster, "transfers", 1).await?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.store(true, Ordering::Relaxed);

    let acked = loader.await??;
    let (fast_503, slowest) = readers.await??;
    println!(
        "transfers acknowledged={} posts={} faults seen by clients={} fast 503s={fast_503} slowest read={slowest:?}",
        acked.transfers.len(),
        acked.posts.len(),
        acked.faults
    );
    ensure!(slowest < HANG, "a read hung for {slowest:?}");
    ensure!(
        acked.faults > 0,
        "the faults were not felt at all; the test did not test"
    );
    ensure!(
        fast_503 > 0,
        "no caller got a fast 503 while the accounts were silent: the breaker never shed load"
    );

    // The breakers opened during the outage and closed again after it.
    for _ in 0..50 {
        let _ = api.get("/v1/accounts/a0").await?;
    }
    let metrics = reqwest::get(format!("{}/metrics", cluster.base))
        .await?
        .text()
        .await?;
    ensure!(
        contract::client::metric_sum(
            &metrics,
            "breaker_transitions_total{downstream=\"accounts\",to=\"open\"}"
        ) >= 1.0,
        "the gateway's accounts breaker never opened"
    );
    ensure!(
        contract::client::metric_sum(&metrics, "breaker_state{downstream=\"accounts\"}") == 0.0,
        "the gateway's accounts breaker did not close after recovery"
    );

    load(0).check_invariants(&api, &acked).await?;

    // The accounts' books stay bounded: settled transfers were reported
    // (in batches, retried across the outage) and their step records
    // dropped. Some stay: the reports the killed transfers process still
    // held, queued or being retried, when it died (every transfer settled
    // during the accounts' outage, and after it until the kill): memory,
    // never money. Most must be gone: without settlement every
    // acknowledged transfer would keep its record.
    let bound = (acked.transfers.len() as f64 / 2.0).max(64.0);
    let accounts_metrics = format!("http://{}/metrics", cluster.service("accounts").addr);
    let mut records = f64::MAX;
    for _ in 0..100 {
        let text = reqwest::get(&accounts_metrics).await?.text().await?;
        ensure!(
            text.contains("\naccounts_step_records "),
            "the accounts report no step-records gauge: no settlement reached them"
        );
        records = contract::client::metric_sum(&text, "accounts_step_records");
        if records <= bound {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ensure!(
        records <= bound,
        "{records} step records kept after {} acknowledged transfers (at most {bound})",
        acked.transfers.len()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_down_fails_only_the_audit_and_its_read_model_catches_up() -> anyhow::Result<()> {
    let cluster = common::Cluster::start(true, &["--breaker-open-ms", "300"]);
    let api = Api::new(&cluster.base)?;
    load(0).setup(&api).await?;
    let ledger = format!("http://{}", cluster.service("ledger").addr);

    cluster.signal("ledger", "STOP");
    // Transfers do not need the ledger.
    let acked = load(1).run(&api).await?;
    ensure!(
        acked.transfers.len() > 100,
        "transfers stalled while the ledger was down"
    );
    let started = Instant::now();
    let audit = api.get("/v1/audit").await?;
    ensure!(
        audit.status == 503,
        "audit with the ledger silent: {} {}",
        audit.status,
        audit.body
    );
    ensure!(started.elapsed() < HANG, "the audit hung");
    cluster.signal("ledger", "KILL");
    wait_for_restart(&cluster, "ledger", 1).await?;

    let committed = acked
        .transfers
        .values()
        .filter(|s| *s == "committed")
        .count() as u64;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let summary: serde_json::Value = reqwest::get(format!("{ledger}/v1/summary"))
            .await?
            .json()
            .await?;
        if summary["entries"].as_u64() == Some(committed) {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the ledger's read model did not catch up: {summary}, {committed} committed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    load(1).check_invariants(&api, &acked).await?;
    Ok(())
}

/// A settled transfer's tombstone outlives a crash of the accounts process:
/// a copy of one of its steps sent before the settlement and delivered
/// after the restart is refused, and moves no money (the records it would
/// have replayed are gone; without the persisted tombstone it would apply).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tombstone_survives_a_crash_of_the_accounts() -> anyhow::Result<()> {
    use microservices::wire::pb::bank as b;
    use microservices::wire::pb::bank::accounts_client::AccountsClient;
    let cluster = common::Cluster::start(true, &["--call-timeout-ms", "5000"]);
    let url = format!("http://{}", cluster.service("accounts").addr);
    let connect = || async {
        anyhow::Ok(AccountsClient::new(
            tonic::transport::Channel::from_shared(url.clone())?
                .connect()
                .await?,
        ))
    };
    let mut accounts = connect().await?;
    fn timed<T>(message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        microservices::settlement::set_deadline(&mut request, Duration::from_secs(5));
        request
    }
    accounts
        .open(b::OpenRequest {
            account_id: "k-a1".into(),
            opening_balance: 100,
        })
        .await?;
    accounts
        .open(b::OpenRequest {
            account_id: "k-a2".into(),
            opening_balance: 0,
        })
        .await?;
    let delayed = timed(b::ApplyStepRequest {
        transfer_id: "k-t1".into(),
        kind: b::StepKind::Debit as i32,
        account_id: "k-a1".into(),
        amount: 30,
    });
    let transfer = b::TransferRequest {
        transfer_id: "k-t1".into(),
        from: "k-a1".into(),
        to: "k-a2".into(),
        amount: 30,
    };
    accounts.apply_transfer(timed(transfer)).await?;
    accounts
        .settle(b::SettleRequest {
            transfer_ids: vec!["k-t1".into()],
        })
        .await?;

    cluster.signal("accounts", "KILL");
    wait_for_restart(&cluster, "accounts", 1).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut accounts = loop {
        if let Ok(mut client) = connect().await
            && client
                .balance(b::BalanceRequest {
                    account_id: "k-a1".into(),
                })
                .await
                .is_ok()
        {
            break client;
        }
        ensure!(Instant::now() < deadline, "the accounts did not come back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let refused = accounts
        .apply_step(delayed)
        .await
        .expect_err("a stale copy after the restart");
    ensure!(
        refused.code() == tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    let balance = accounts
        .balance(b::BalanceRequest {
            account_id: "k-a1".into(),
        })
        .await?
        .into_inner()
        .balance;
    ensure!(balance == 70, "the stale copy moved money: {balance}");
    Ok(())
}
