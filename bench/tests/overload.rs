//! The overload part's machinery against a server of known capacity: 4
//! transfers at a time, 5 ms each (800/s), refusing the rest with 429 at
//! once. Driven at half of 400/s, then 800/s, then 200/s again, every
//! request is answered, the surge's excess is refused, and the readings
//! off every answer are there. (`compare` skips the part for a variant
//! whose curve never saturated, as the smoke run's tiny curve does not.)

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::post;
use tokio::sync::Semaphore;

use bench::part::overload::{OverloadPlan, run};
use bench::record::Profile;

/// Serves `POST /v1/transfers` with room for 4 at a time, on a runtime of
/// its own; its base URL.
fn server() -> anyhow::Result<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::bind("127.0.0.1:0").await else {
                return;
            };
            let Ok(addr) = listener.local_addr() else {
                return;
            };
            let _ = tx.send(addr);
            let room = Arc::new(Semaphore::new(4));
            let app = axum::Router::new().route(
                "/v1/transfers",
                post(move || {
                    let room = room.clone();
                    async move {
                        let Ok(_permit) = room.try_acquire() else {
                            return (StatusCode::TOO_MANY_REQUESTS, "{}");
                        };
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        (StatusCode::OK, "{}")
                    }
                }),
            );
            let _ = axum::serve(listener, app).await;
        });
    });
    let addr = rx.recv_timeout(Duration::from_secs(10))?;
    Ok(format!("http://{addr}"))
}

#[test]
fn a_surge_past_capacity_is_refused_and_every_request_answered() -> anyhow::Result<()> {
    let base = server()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let workload = Profile::smoke().workload()?;
    let shape = OverloadPlan {
        knee: 400.0,
        before: Duration::from_secs(1),
        surge: Duration::from_secs(2),
        after: Duration::from_secs(2),
    };
    let record = run(runtime.handle(), &base, "fixed", &workload, shape, || {
        Some(1 << 20)
    });
    let (ok, shed, errors, unsent) = record.buckets.iter().fold((0, 0, 0, 0), |t, b| {
        (t.0 + b.ok, t.1 + b.shed, t.2 + b.errors, t.3 + b.unsent)
    });
    // 200/s for 1 s, 800/s for 2 s, 200/s for 2 s.
    assert_eq!(
        ok + shed + errors + unsent + record.unfinished,
        2200,
        "{record:?}"
    );
    assert_eq!((errors, unsent, record.unfinished), (0, 0, 0));
    assert_eq!(record.surge_rate, 800.0);
    assert!(shed > 0 && ok > 1000, "ok {ok}, shed {shed}");
    let verdict = record.verdict();
    assert!(verdict.shed > 0 && verdict.shed_p99_ms.is_some());
    assert!(record.exact.p99_before_us > 0.0);
    assert!(!record.rss.is_empty(), "memory sampled");
    Ok(())
}
