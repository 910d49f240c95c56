use super::*;
use shared_domain::error::CallError;

fn config() -> BreakerConfig {
    BreakerConfig {
        window: 10,
        minimum_calls: 4,
        failure_rate: 0.5,
        open_wait: Duration::from_secs(1),
        half_open_probes: 2,
    }
}

fn call(b: &Arc<Breaker>, now: Instant, success: bool) -> bool {
    match b.acquire_at(now) {
        Ok(mut p) => {
            p.done = true;
            b.on_outcome(p.generation, success, now);
            true
        }
        Err(_) => false,
    }
}

#[test]
fn stays_closed_below_minimum_calls() {
    let b = Breaker::new("t", config());
    let now = Instant::now();
    for _ in 0..3 {
        assert!(call(&b, now, false));
    }
    assert_eq!(b.state_at(now), BreakerState::Closed);
    assert!(call(&b, now, false), "fourth call is admitted and judged");
    assert_eq!(b.state_at(now), BreakerState::Open);
}

#[test]
fn opens_at_the_failure_rate_not_below() {
    let b = Breaker::new("t", config());
    let now = Instant::now();
    // 3 failures in 7 calls: 43 % < 50 % (and below at every step).
    for ok in [true, true, true, true, false, false, false] {
        call(&b, now, ok);
    }
    assert_eq!(b.state_at(now), BreakerState::Closed);
    call(&b, now, false); // 4 of 8: 50 %.
    assert_eq!(b.state_at(now), BreakerState::Open);
}

#[test]
fn window_forgets_old_failures() {
    let b = Breaker::new("t", config());
    let now = Instant::now();
    for ok in [true, true, true, true, false, false] {
        call(&b, now, ok);
    }
    for _ in 0..10 {
        call(&b, now, true);
    }
    // The two failures slid out; four more stay below half of ten.
    for _ in 0..4 {
        call(&b, now, false);
    }
    assert_eq!(b.state_at(now), BreakerState::Closed);
    call(&b, now, false);
    assert_eq!(b.state_at(now), BreakerState::Open);
}

#[test]
fn open_refuses_then_half_opens_after_the_wait() {
    let b = Breaker::new("t", config());
    let t0 = Instant::now();
    for _ in 0..4 {
        call(&b, t0, false);
    }
    assert!(
        !call(&b, t0 + Duration::from_millis(999), true),
        "refused while open"
    );
    let t1 = t0 + Duration::from_secs(1);
    assert_eq!(b.state_at(t1), BreakerState::HalfOpen);
    // Two probes are admitted, a third is refused while they run.
    let p1 = b.acquire_at(t1).expect("probe 1");
    let p2 = b.acquire_at(t1).expect("probe 2");
    assert!(b.acquire_at(t1).is_err(), "only two probes");
    p1.record(true);
    assert_eq!(b.state_at(t1), BreakerState::HalfOpen);
    p2.record(true);
    assert_eq!(b.state_at(t1), BreakerState::Closed);
    // Closed with an empty window: three failures don't reopen it.
    for _ in 0..3 {
        call(&b, t1, false);
    }
    assert_eq!(b.state_at(t1), BreakerState::Closed);
}

#[test]
fn a_failed_probe_reopens() {
    let b = Breaker::new("t", config());
    let t0 = Instant::now();
    for _ in 0..4 {
        call(&b, t0, false);
    }
    let t1 = t0 + Duration::from_secs(1);
    assert!(call(&b, t1, false));
    assert_eq!(b.state_at(t1), BreakerState::Open);
    assert!(!call(&b, t1 + Duration::from_millis(500), true));
}

#[test]
fn stale_outcomes_are_ignored_and_dropped_permits_count_neither_way() {
    let b = Breaker::new("t", config());
    let t0 = Instant::now();
    let slow = b.acquire_at(t0).expect("admitted while closed");
    for _ in 0..4 {
        call(&b, t0, false);
    }
    assert_eq!(b.state_at(t0), BreakerState::Open);
    // The slow call from before the transition succeeds late: ignored.
    slow.record(true);
    assert_eq!(b.state_at(t0), BreakerState::Open);
    // A permit dropped unreported (its caller gave up) counts neither way.
    let b = Breaker::new("t", config());
    for _ in 0..10 {
        drop(b.acquire_at(t0).expect("closed"));
    }
    assert_eq!(b.state_at(t0), BreakerState::Closed);
    // Half-open, a dropped probe's place is given back: the breaker still
    // closes after its probes succeed.
    for _ in 0..4 {
        call(&b, t0, false);
    }
    let t1 = t0 + Duration::from_secs(2);
    let probe = b.acquire_at(t1).expect("half-open");
    drop(probe);
    assert!(call(&b, t1, true) && call(&b, t1, true));
    assert_eq!(b.state_at(t1), BreakerState::Closed);
}

#[tokio::test]
async fn retries_only_idempotent_transient_failures_within_attempts() {
    let retry = Retry::new(
        "t",
        RetryConfig {
            base: Duration::from_micros(1),
            cap: Duration::from_micros(1),
            ..RetryConfig::default()
        },
    );
    let calls = std::cell::Cell::new(0);
    let r: Result<(), CallError<()>> = retry
        .run(true, || {
            calls.set(calls.get() + 1);
            async { Err(CallError::Unavailable("down".into())) }
        })
        .await;
    assert!(r.is_err());
    assert_eq!(calls.get(), 3, "max_attempts");
    calls.set(0);
    let _ = retry
        .run(false, || {
            calls.set(calls.get() + 1);
            async { Err::<(), _>(CallError::<()>::Unavailable("down".into())) }
        })
        .await;
    assert_eq!(calls.get(), 1, "not idempotent: one attempt");
    calls.set(0);
    let _ = retry
        .run(true, || {
            calls.set(calls.get() + 1);
            async { Err::<(), _>(CallError::<()>::Domain(())) }
        })
        .await;
    assert_eq!(calls.get(), 1, "a domain answer is final");
    calls.set(0);
    let _ = retry
        .run(true, || {
            calls.set(calls.get() + 1);
            async {
                Err::<(), _>(CallError::<()>::Unavailable(
                    BreakerOpen("x".into()).to_string(),
                ))
            }
        })
        .await;
    assert_eq!(calls.get(), 1, "an open breaker is not retried");
}

#[tokio::test]
async fn the_budget_caps_retries() {
    let retry = Retry::new(
        "t",
        RetryConfig {
            max_attempts: 10,
            base: Duration::from_micros(1),
            cap: Duration::from_micros(1),
            retry_ratio: 0.0,
            min_per_sec: 1,
        },
    );
    let calls = std::cell::Cell::new(0);
    for _ in 0..5 {
        let _ = retry
            .run(true, || {
                calls.set(calls.get() + 1);
                async { Err::<(), _>(CallError::<()>::Unavailable("down".into())) }
            })
            .await;
    }
    // Five calls; with no ratio only the per-second floor allows
    // retries (10 s window × 1/s), far fewer than 5 × 9.
    assert!(calls.get() < 5 + 45, "budget did not cap: {}", calls.get());
    assert!(
        calls.get() <= 5 + 10 + 1,
        "budget floor exceeded: {}",
        calls.get()
    );
}

fn opened(now: Instant) -> Arc<Breaker> {
    let b = Breaker::new("t", config());
    for _ in 0..4 {
        call(&b, now, false);
    }
    assert_eq!(b.state_at(now), BreakerState::Open);
    b
}

#[test]
fn a_health_answer_after_a_failed_one_ends_the_open_wait() {
    let now = Instant::now();
    let b = opened(now);
    let later = now + Duration::from_millis(100);
    // Gone (the process died), then back (restarted): half-open at once,
    // long before the open wait of a second is over.
    b.health_at(false, now + Duration::from_millis(50));
    b.health_at(true, later);
    assert_eq!(b.state_at(later), BreakerState::HalfOpen);
    assert!(call(&b, later, true) && call(&b, later, true));
    assert_eq!(b.state_at(later), BreakerState::Closed);
}

#[test]
fn a_process_back_before_its_first_health_check_half_opens_at_its_answer() {
    // The calls lost their connections (the process was killed), and the
    // launcher had it back before the watcher's first check: that check
    // answers, and the open wait ends then.
    let b = Breaker::new("t", config());
    let now = Instant::now();
    for _ in 0..4 {
        let p = b.acquire_at(now).expect("closed");
        p.lost();
    }
    assert_eq!(b.state(), BreakerState::Open);
    let later = Instant::now() + Duration::from_millis(50);
    b.health_at(true, later);
    assert_eq!(b.state_at(later), BreakerState::HalfOpen);
    // Failures that were answers or timeouts (the process stayed up) keep
    // the open wait, as below.
    let kept = opened(now);
    kept.health_at(true, later);
    assert_eq!(kept.state_at(later), BreakerState::Open);
}

#[test]
fn a_downstream_that_never_went_away_waits_out_the_open_wait() {
    let now = Instant::now();
    let b = opened(now);
    // Healthy all along (slow, or failing its calls while up): the
    // breaker's protection is unchanged.
    let later = now + Duration::from_millis(100);
    b.health_at(true, later);
    assert_eq!(b.state_at(later), BreakerState::Open);
    assert!(!call(&b, later, true), "still refused");
    // Health answers alone never close it: the half-open calls decide.
    b.health_at(false, later);
    let reopened = later + Duration::from_secs(1);
    assert_eq!(b.state_at(reopened), BreakerState::HalfOpen);
    assert!(call(&b, reopened, false));
    assert_eq!(b.state_at(reopened), BreakerState::Open);
    // Re-opened: gone must be seen again before an answer counts.
    b.health_at(true, reopened);
    assert_eq!(b.state_at(reopened), BreakerState::Open);
}

#[tokio::test]
async fn the_watcher_half_opens_the_breaker_when_the_downstream_comes_back() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let b = Breaker::new(
        "t",
        BreakerConfig {
            // Far longer than the test waits: only the watcher can end it.
            open_wait: Duration::from_secs(600),
            ..config()
        },
    );
    let up = Arc::new(AtomicBool::new(false));
    let _watch = b.watch({
        let up = up.clone();
        move || {
            let up = up.load(Ordering::SeqCst);
            async move { up }
        }
    });
    for _ in 0..4 {
        call(&b, Instant::now(), false);
    }
    assert_eq!(b.state(), BreakerState::Open);
    // Down for a few probes, then back.
    tokio::time::sleep(PROBE_EVERY * 3).await;
    assert_eq!(b.state(), BreakerState::Open);
    up.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(30);
    while b.state() == BreakerState::Open {
        assert!(
            Instant::now() < deadline,
            "the watcher never ended the wait"
        );
        tokio::time::sleep(PROBE_EVERY).await;
    }
    assert_eq!(b.state(), BreakerState::HalfOpen);
}

/// A service answering every call trailers-only with `code`, marked as a
/// downstream's failure when `marked`.
fn answering(
    code: tonic::Code,
    marked: bool,
) -> impl tower::Service<
    http::Request<()>,
    Response = http::Response<()>,
    Error = std::convert::Infallible,
    Future = std::future::Ready<Result<http::Response<()>, std::convert::Infallible>>,
> + Clone {
    tower::service_fn(move |_: http::Request<()>| {
        let mut response = http::Response::new(());
        let headers = response.headers_mut();
        headers.insert("grpc-status", (code as i32).into());
        if marked {
            headers.insert(DOWNSTREAM_FAILED, http::HeaderValue::from_static("1"));
        }
        std::future::ready(Ok(response))
    })
}

#[tokio::test]
async fn a_dependency_failure_the_callee_reports_does_not_open_the_callers_breaker() {
    use tower::{Layer, Service, ServiceExt};
    for (marked, opens) in [(false, true), (true, false)] {
        let breaker = Breaker::new("chain", config());
        let mut service =
            BreakerLayer::new(breaker.clone()).layer(answering(tonic::Code::Unavailable, marked));
        for _ in 0..20 {
            let _ = service
                .ready()
                .await
                .expect("ready")
                .call(http::Request::new(()))
                .await;
        }
        assert_eq!(
            breaker.state() == BreakerState::Open,
            opens,
            "marked {marked}"
        );
    }
}
