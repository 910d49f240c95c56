//! In-process call costs of the microlith, against the targets of issue 2:
//! balance call p50 <= 1 us, p99 <= 5 us; transfer p50 <= 2 us; transfer
//! throughput >= 600k/s with 16 concurrent callers; panic back to serving
//! in < 20 us at p50. Also the same call through ractor and through a bare
//! tokio mpsc+oneshot, to justify the runtime choice (microlith/README.md).
//!
//! Callers run as tasks on the 2-worker runtime (as edge handlers do), not
//! on the bench thread, so a call is measured where it is made in
//! production. Per-call latency distributions are printed from an
//! HdrHistogram next to criterion's estimates.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bench_support::percall::per_call;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use microlith::Microlith;
use shared_domain::bank::TransferRequest;
use shared_domain::id::{AccountId, TransferId};
use shared_domain::money::{Amount, OpeningBalance};
use shared_domain::service::{AccountsService, TransfersService};

const ACCOUNTS: u32 = 1000;

/// The crashes the bench injects are expected: keep them off the terminal,
/// and print any other panic (the default hook would drown in 500k of the
/// former; `log_panics` alone prints nothing without a tracing subscriber).
fn quiet_injected_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&"injected crash") {
            default(info);
        }
    }));
}

/// Worker threads of the bench runtime: 2 (one per core here) unless
/// `BENCH_WORKERS` says otherwise, to see what cross-worker wake-ups cost.
fn runtime() -> tokio::runtime::Runtime {
    quiet_injected_panics();
    bench_support::register_font();
    let workers = std::env::var("BENCH_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(2);
    println!("bench runtime: {workers} worker threads");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("runtime")
}

fn config() -> microlith::Config {
    microlith::Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        storage: store::StorageMode::Memory,
        account_shards: 8,
        journal_shards: 8,
        mailbox: 4096,
        call_timeout: Duration::from_secs(2),
        subscriber_buffer: 64,
        keep_settled: shared_domain::bank::KEEP_SETTLED,
        keep_messages: shared_domain::chat::KEEP_MESSAGES,
        session_buffer: 64,
        max_restarts: 1_000_000,
        restart_window: Duration::from_secs(1),
        fault_injection: true,
        edge: edge::EdgeConfig {
            request_timeout: Duration::from_secs(2),
            max_in_flight: 4096,
            latency_target: edge::latency_target(edge::LATENCY_TARGET_MS),
            ws_send_timeout: Duration::from_secs(1),
            server_timing: false,
        },
    }
}

fn account(i: u32) -> AccountId {
    AccountId::new(&format!("a{i}")).expect("id")
}

/// The n-th transfer: 1 unit between two accounts, a fresh id.
fn transfer_request(n: u64) -> TransferRequest {
    TransferRequest::new(
        TransferId::new(&format!("t{n}")).expect("id"),
        account((n % u64::from(ACCOUNTS)) as u32),
        account(((n * 7 + 1) % u64::from(ACCOUNTS)) as u32),
        Amount::new(1).expect("amount"),
    )
    .expect("request")
}

fn start(rt: &tokio::runtime::Runtime) -> Arc<Microlith> {
    rt.block_on(async {
        let storage = store::Storage::open(&store::StorageMode::Memory, "bench").expect("storage");
        let system = Arc::new(Microlith::start(&config(), storage));
        for i in 0..ACCOUNTS {
            system
                .accounts
                .open(account(i), OpeningBalance::new(1_000_000_000).expect("ok"))
                .await
                .expect("open");
        }
        system
    })
}

fn calls(c: &mut Criterion) {
    let rt = runtime();
    let system = start(&rt);
    let mut group = c.benchmark_group("microlith");

    // First, while the shards hold only their 1000 accounts: a restart
    // recovers the shard's state, and in durable mode that reload grows with
    // the shard's history.
    // A probe account that lives on the shard the bench crashes.
    let probe = (0..ACCOUNTS)
        .map(account)
        .find(|a| system.accounts.inner().shard_index(a) == 0)
        .expect("shard 0 holds an account");
    per_call(
        &mut group,
        &rt,
        "panic_to_serving",
        "panic_to_serving (crash account-0, then call until it answers)",
        || {
            let (system, probe) = (system.clone(), probe.clone());
            move |_| {
                let (system, probe) = (system.clone(), probe.clone());
                async move {
                    let _ = system.crash("account-0");
                    while system.accounts.balance(&probe).await.is_err() {
                        tokio::task::yield_now().await;
                    }
                }
            }
        },
    );
    per_call(&mut group, &rt, "balance_call", "balance_call", || {
        let accounts = system.accounts.clone();
        move |i| {
            let accounts = accounts.clone();
            let id = account((i % u64::from(ACCOUNTS)) as u32);
            async move {
                let _ = accounts.balance(&id).await;
            }
        }
    });

    // Each transfer bench starts from a fresh system with its 1000
    // accounts: the journal keeps every transfer (API.md), so a bench run
    // after another would pay for the other's millions of records.
    rt.block_on(system.stop());
    let system = start(&rt);
    let next = Arc::new(AtomicU64::new(0));
    per_call(&mut group, &rt, "transfer", "transfer", || {
        let (transfers, next) = (system.transfers.clone(), next.clone());
        move |_| {
            let transfers = transfers.clone();
            let request = transfer_request(next.fetch_add(1, Ordering::Relaxed));
            async move {
                let _ = transfers.transfer(request).await;
            }
        }
    });

    // The requests are built before the clock starts (as the edge would
    // have parsed them): the bench times the transfers, not the ids' text.
    group.throughput(Throughput::Elements(1));
    rt.block_on(system.stop());
    let system = start(&rt);
    let next = Arc::new(AtomicU64::new(1 << 40));
    group.bench_function("transfer_16_callers", |b| {
        b.iter_custom(|iters| {
            let per = iters.div_ceil(16);
            let batches: Vec<Vec<TransferRequest>> = (0..16)
                .map(|_| {
                    (0..per)
                        .map(|_| transfer_request(next.fetch_add(1, Ordering::Relaxed)))
                        .collect()
                })
                .collect();
            let transfers = system.transfers.clone();
            rt.block_on(async move {
                let start = Instant::now();
                let tasks: Vec<_> = batches
                    .into_iter()
                    .map(|batch| {
                        let transfers = transfers.clone();
                        tokio::spawn(async move {
                            for request in batch {
                                let _ = transfers.transfer(request).await;
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    let _ = t.await;
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

/// The same echo call three ways: our runtime, ractor, bare tokio.
fn runtimes(c: &mut Criterion) {
    use microlith::runtime::{Actor, Intensity, Reply, StartError, Strategy, Supervisor};
    use shared_domain::CallError;

    struct Echo;
    impl Actor for Echo {
        type Msg = (u64, Reply<Result<u64, CallError<()>>>);
        type Args = ();
        fn start(_: &()) -> Result<Self, StartError> {
            Ok(Echo)
        }
        fn handle(&mut self, (n, reply): Self::Msg) {
            let _ = reply.send(Ok(n));
        }
    }

    struct RactorEcho;
    impl ractor::Actor for RactorEcho {
        type Msg = (u64, ractor::RpcReplyPort<u64>);
        type State = ();
        type Arguments = ();
        async fn pre_start(
            &self,
            _: ractor::ActorRef<Self::Msg>,
            _: (),
        ) -> Result<(), ractor::ActorProcessingErr> {
            Ok(())
        }
        async fn handle(
            &self,
            _: ractor::ActorRef<Self::Msg>,
            (n, reply): Self::Msg,
            _: &mut (),
        ) -> Result<(), ractor::ActorProcessingErr> {
            let _ = reply.send(n);
            Ok(())
        }
    }

    let rt = runtime();
    let mut group = c.benchmark_group("runtime_call");
    let ours = rt.block_on(async {
        let (root, _) = Supervisor::root(
            "bench",
            Strategy::OneForOne,
            Intensity {
                max_restarts: 10,
                within: Duration::from_secs(1),
            },
        );
        let echo = root.spawn::<Echo>("echo", (), 1024);
        // Let it start before timing anything.
        let _ = echo.call(|r| (0, r), Duration::from_secs(1)).await;
        echo
    });
    per_call(
        &mut group,
        &rt,
        "microlith_runtime",
        "runtime_call/microlith_runtime",
        || {
            let ours = ours.clone();
            move |i| {
                let ours = ours.clone();
                async move {
                    let _ = ours.call(|r| (i, r), Duration::from_secs(1)).await;
                }
            }
        },
    );

    let (ractor_ref, _handle) = rt
        .block_on(ractor::Actor::spawn(None, RactorEcho, ()))
        .expect("ractor spawn");
    per_call(&mut group, &rt, "ractor", "runtime_call/ractor", || {
        let r = ractor_ref.clone();
        move |i| {
            let r = r.clone();
            async move {
                let _ = ractor::call_t!(r, |port| (i, port), 1000);
            }
        }
    });

    let (tx, mut rx) = tokio::sync::mpsc::channel::<(u64, tokio::sync::oneshot::Sender<u64>)>(1024);
    rt.spawn(async move {
        while let Some((n, reply)) = rx.recv().await {
            let _ = reply.send(n);
        }
    });
    per_call(
        &mut group,
        &rt,
        "tokio_mpsc_oneshot",
        "runtime_call/tokio_mpsc_oneshot",
        || {
            let tx = tx.clone();
            move |i| {
                let tx = tx.clone();
                async move {
                    let (reply, answer) = tokio::sync::oneshot::channel();
                    let _ = tx.send((i, reply)).await;
                    let _ = answer.await;
                }
            }
        },
    );
    group.finish();
}

// The runtime comparison first: the microlith group leaves millions of
// journal and step records behind, and dropping them disturbs what follows.
criterion_group!(benches, runtimes, calls);
criterion_main!(benches);
