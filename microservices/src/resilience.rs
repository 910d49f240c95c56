//! Resilience around every client: a circuit breaker per downstream (a
//! tower layer for gRPC channels, the same state machine called directly
//! around the HTTP client), load shedding instead of queues, and retries
//! with exponential backoff, full jitter and a retry budget, for idempotent
//! calls only.
//!
//! # The breaker
//! Count-based sliding window, as resilience4j's: the last `window` calls
//! are kept; once at least `minimum_calls` are in it and the failure rate
//! reaches `failure_rate`, the breaker opens. Open, it refuses every call
//! at once (a fast `UNAVAILABLE`, no network) for `open_wait`; then it lets
//! `half_open_probes` calls through. If all succeed it closes (with an
//! empty window); any failure opens it again.
//!
//! | knob | here | resilience4j default | Hystrix default |
//! |---|---|---|---|
//! | window | 20 calls | 100 calls | 10 s rolling |
//! | minimum calls | 10 | 100 | 20 requests |
//! | failure rate | 50 % | 50 % | 50 % |
//! | open wait | 1 s | 60 s | 5 s |
//! | half-open probes | 3 | 10 | 1 |
//!
//! Ours trade the libraries' caution for fast recovery on one machine,
//! where a restarted process is back in well under a second; every knob
//! is a flag.
//!
//! A failure is what says the downstream is unwell: no connection, a
//! timeout, or `UNAVAILABLE`, `DEADLINE_EXCEEDED`, `RESOURCE_EXHAUSTED`,
//! `INTERNAL`, `UNKNOWN`. A domain refusal (`NOT_FOUND` with details, say)
//! is a healthy answer.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::Rng;
use tower::retry::budget::{Budget, TpsBudget};

use shared_domain::error::CallError;

/// The breaker's knobs.
#[derive(Debug, Clone, Copy)]
pub struct BreakerConfig {
    /// Calls kept in the sliding window.
    pub window: usize,
    /// Calls needed in the window before the rate is judged.
    pub minimum_calls: usize,
    /// Failure rate (0..=1) that opens the breaker.
    pub failure_rate: f64,
    /// How long an open breaker refuses calls.
    pub open_wait: Duration,
    /// Calls let through half-open; all must succeed to close.
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            window: 20,
            minimum_calls: 10,
            failure_rate: 0.5,
            open_wait: Duration::from_secs(1),
            half_open_probes: 3,
        }
    }
}

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls flow; outcomes are counted.
    Closed,
    /// Calls are refused until the wait is over.
    Open,
    /// A few probe calls are let through.
    HalfOpen,
}

impl BreakerState {
    fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    /// The gauge value: 0 closed, 1 open, 2 half-open.
    fn gauge(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::Open => 1.0,
            BreakerState::HalfOpen => 2.0,
        }
    }
}

#[derive(Debug)]
enum Inner {
    Closed {
        outcomes: VecDeque<bool>,
        failures: usize,
    },
    Open {
        until: Instant,
    },
    HalfOpen {
        permits: u32,
        successes: u32,
    },
}

/// A permission to make one call; report its outcome with
/// [`Breaker::record`]. A permit dropped unreported counts as a failure
/// (the caller gave up, which is what a timeout looks like).
#[must_use]
pub struct Permit {
    breaker: Arc<Breaker>,
    /// Which generation of the state machine issued it: outcomes of calls
    /// admitted before the last transition are ignored.
    generation: u64,
    done: bool,
}

impl Permit {
    /// Reports the call's outcome.
    pub fn record(mut self, success: bool) {
        self.done = true;
        self.breaker
            .on_outcome(self.generation, success, Instant::now());
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.done {
            self.breaker
                .on_outcome(self.generation, false, Instant::now());
        }
    }
}

/// The call was refused: the breaker is open.
#[derive(Debug, Clone, thiserror::Error)]
#[error("circuit open: {0} is failing; not calling it")]
pub struct BreakerOpen(pub String);

/// A circuit breaker for one downstream.
#[derive(Debug)]
pub struct Breaker {
    name: String,
    config: BreakerConfig,
    state: Mutex<(Inner, u64)>,
}

impl Breaker {
    /// A closed breaker for the downstream `name`.
    pub fn new(name: &str, config: BreakerConfig) -> Arc<Self> {
        let breaker = Arc::new(Self {
            name: name.to_owned(),
            config,
            state: Mutex::new((Self::closed(), 0)),
        });
        metrics::gauge!("breaker_state", "downstream" => breaker.name.clone()).set(0.0);
        breaker
    }

    fn closed() -> Inner {
        Inner::Closed {
            outcomes: VecDeque::new(),
            failures: 0,
        }
    }

    /// The downstream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the breaker stands now.
    pub fn state(&self) -> BreakerState {
        self.state_at(Instant::now())
    }

    fn state_at(&self, now: Instant) -> BreakerState {
        match &self.state.lock().0 {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { until } if now >= *until => BreakerState::HalfOpen,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Asks to make a call.
    pub fn try_acquire(self: &Arc<Self>) -> Result<Permit, BreakerOpen> {
        self.acquire_at(Instant::now())
    }

    fn acquire_at(self: &Arc<Self>, now: Instant) -> Result<Permit, BreakerOpen> {
        let mut guard = self.state.lock();
        let (inner, generation) = &mut *guard;
        let admitted = match inner {
            Inner::Closed { .. } => true,
            Inner::Open { until } if now >= *until => {
                *inner = Inner::HalfOpen {
                    permits: self.config.half_open_probes.saturating_sub(1),
                    successes: 0,
                };
                *generation += 1;
                self.transitioned(BreakerState::HalfOpen);
                true
            }
            Inner::Open { .. } => false,
            Inner::HalfOpen { permits, .. } => {
                if *permits > 0 {
                    *permits -= 1;
                    true
                } else {
                    false
                }
            }
        };
        if !admitted {
            metrics::counter!("breaker_rejected_total", "downstream" => self.name.clone())
                .increment(1);
            return Err(BreakerOpen(self.name.clone()));
        }
        Ok(Permit {
            breaker: self.clone(),
            generation: *generation,
            done: false,
        })
    }

    fn on_outcome(&self, generation: u64, success: bool, now: Instant) {
        let mut guard = self.state.lock();
        let (inner, current) = &mut *guard;
        if generation != *current {
            return;
        }
        let open = match inner {
            Inner::Closed { outcomes, failures } => {
                outcomes.push_back(success);
                if !success {
                    *failures += 1;
                }
                if outcomes.len() > self.config.window && outcomes.pop_front() == Some(false) {
                    *failures -= 1;
                }
                outcomes.len() >= self.config.minimum_calls
                    && *failures as f64 >= self.config.failure_rate * outcomes.len() as f64
            }
            Inner::HalfOpen { successes, .. } => {
                if success {
                    *successes += 1;
                    if *successes >= self.config.half_open_probes {
                        *inner = Self::closed();
                        *current += 1;
                        self.transitioned(BreakerState::Closed);
                    }
                    false
                } else {
                    true
                }
            }
            Inner::Open { .. } => false,
        };
        if open {
            *inner = Inner::Open {
                until: now + self.config.open_wait,
            };
            *current += 1;
            self.transitioned(BreakerState::Open);
        }
    }

    fn transitioned(&self, to: BreakerState) {
        tracing::warn!(downstream = %self.name, to = to.as_str(), "circuit breaker transition");
        metrics::gauge!("breaker_state", "downstream" => self.name.clone()).set(to.gauge());
        metrics::counter!("breaker_transitions_total", "downstream" => self.name.clone(), "to" => to.as_str())
            .increment(1);
    }
}

/// Whether a gRPC status code says the downstream is unwell.
pub fn is_failure_code(code: tonic::Code) -> bool {
    use tonic::Code;
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Internal
            | Code::Unknown
    )
}

/// A tower layer putting a [`Breaker`] around a gRPC channel.
#[derive(Clone)]
pub struct BreakerLayer {
    breaker: Arc<Breaker>,
}

impl BreakerLayer {
    /// Guards a service with `breaker`.
    pub fn new(breaker: Arc<Breaker>) -> Self {
        Self { breaker }
    }
}

impl<S> tower::Layer<S> for BreakerLayer {
    type Service = BreakerService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        BreakerService {
            inner,
            breaker: self.breaker.clone(),
        }
    }
}

/// See [`BreakerLayer`].
#[derive(Clone)]
pub struct BreakerService<S> {
    inner: S,
    breaker: Arc<Breaker>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for BreakerService<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let permit = match self.breaker.try_acquire() {
            Ok(permit) => permit,
            Err(open) => {
                let status = tonic::Status::unavailable(open.to_string());
                return Box::pin(async move { Err(Box::new(status) as BoxError) });
            }
        };
        let call = self.inner.call(req);
        Box::pin(async move {
            match call.await {
                Ok(response) => {
                    // Errors come back trailers-only: the status is in the
                    // headers. A streaming answer's later status is the
                    // stream's business, not the breaker's.
                    let failed = tonic::Status::from_header_map(response.headers())
                        .is_some_and(|s| is_failure_code(s.code()));
                    permit.record(!failed);
                    Ok(response)
                }
                Err(e) => {
                    permit.record(false);
                    let e: BoxError = e.into();
                    if e.is::<tonic::TimeoutExpired>() {
                        return Err(
                            Box::new(tonic::Status::deadline_exceeded("deadline exceeded"))
                                as BoxError,
                        );
                    }
                    Err(e)
                }
            }
        })
    }
}

/// Retries of idempotent calls: exponential backoff with full jitter,
/// a cap on attempts, and a budget so retries can never multiply load
/// (at most `retry_ratio` of recent calls, plus a small floor).
pub struct Retry {
    budget: TpsBudget,
    max_attempts: u32,
    base: Duration,
    cap: Duration,
    name: String,
}

/// Knobs of [`Retry`].
#[derive(Debug, Clone, Copy)]
pub struct RetryConfig {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// First backoff ceiling.
    pub base: Duration,
    /// Largest backoff ceiling.
    pub cap: Duration,
    /// Retries allowed as a share of calls (0.2 = 20 %).
    pub retry_ratio: f32,
    /// Retries per second always allowed.
    pub min_per_sec: u32,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base: Duration::from_millis(5),
            cap: Duration::from_millis(100),
            retry_ratio: 0.2,
            min_per_sec: 10,
        }
    }
}

impl Retry {
    /// Retries towards the downstream `name`.
    pub fn new(name: &str, config: RetryConfig) -> Self {
        Self {
            budget: TpsBudget::new(
                Duration::from_secs(10),
                config.min_per_sec,
                config.retry_ratio,
            ),
            max_attempts: config.max_attempts.max(1),
            base: config.base,
            cap: config.cap,
            name: name.to_owned(),
        }
    }

    /// Runs `call`, retrying a transient failure when `idempotent`. An open
    /// breaker is not retried (it would refuse again), nor is an overload
    /// (retrying would add to it), nor a missed deadline (the caller's time
    /// is spent).
    pub async fn run<T, E, F, Fut>(&self, idempotent: bool, mut call: F) -> Result<T, CallError<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, CallError<E>>>,
    {
        self.budget.deposit();
        let mut attempt = 1;
        loop {
            let result = call().await;
            let retryable = match &result {
                Err(CallError::Unavailable(why)) => !why.contains("circuit open"),
                _ => false,
            };
            if !idempotent || !retryable || attempt >= self.max_attempts || !self.budget.withdraw()
            {
                return result;
            }
            metrics::counter!("client_retries_total", "downstream" => self.name.clone())
                .increment(1);
            let ceiling = self.base.saturating_mul(1 << attempt.min(16)).min(self.cap);
            let wait = rand::rng().random_range(Duration::ZERO..=ceiling);
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn stale_outcomes_are_ignored_and_dropped_permits_fail() {
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
        // A permit dropped unreported counts as a failure.
        let b = Breaker::new("t", config());
        for _ in 0..4 {
            drop(b.acquire_at(t0).expect("closed"));
        }
        assert_eq!(b.state_at(t0), BreakerState::Open);
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
}
