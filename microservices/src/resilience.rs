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
//! # Following a restart
//! While a breaker is open, a watcher asks the downstream's health every
//! [`PROBE_EVERY`] ([`Breaker::watch`]). If the process went away (the
//! health check failed since the breaker opened, or a call lost its
//! connection, refused or reset, within an open wait before it opened)
//! and then answers (it is back), the open wait ends at once and the next
//! calls are the half-open probes: a restarted process gets traffic as
//! soon as it serves, not an open wait later. (A process the launcher
//! restarts within 30 ms is back before the first health check: only
//! its calls' lost connections saw it go; chat's kill -9 failed for
//! the open wait's 1 s after it was back.) A downstream that never went
//! away (slow: its calls time out; or failing them while up) waits out
//! the open wait as before, so the breaker's protection is unchanged
//! there.
//!
//! A failure is what says the downstream is unwell: no connection, a
//! timeout, or `UNAVAILABLE`, `DEADLINE_EXCEEDED`, `RESOURCE_EXHAUSTED`,
//! `INTERNAL`, `UNKNOWN`. A domain refusal (`NOT_FOUND` with details, say)
//! is a healthy answer, and so is a status marked [`DOWNSTREAM_FAILED`]:
//! the downstream answered at once that one of *its* dependencies failed,
//! which its own breaker already guards (breakers in a chain must not
//! open each other).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

mod retry;

pub use retry::{Retry, RetryConfig};

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
        /// The downstream's health check failed since the breaker opened.
        went_away: bool,
    },
    HalfOpen {
        permits: u32,
        successes: u32,
    },
}

/// A permission to make one call; report its outcome with
/// `Permit::record`. A permit dropped unreported (the caller gave up: its
/// own deadline, a cancelled request) counts neither way, since it says
/// nothing of the downstream, whose own timeouts are reported as
/// failures; a half-open probe dropped so is handed back for another
/// call. (Counting it a failure opened the gateway's breaker on a healthy
/// transfers service when requests reached their edge deadline while
/// accounts was stopped.)
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

    /// Reports a call that failed because its connection was lost or
    /// refused (not a timeout, not an answer): a failure, and a sign the
    /// process went away.
    pub fn lost(self) {
        let now = Instant::now();
        *self.breaker.lost_at.lock() = Some(now);
        self.record(false);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.done {
            self.breaker.on_abandoned(self.generation);
        }
    }
}

/// The call was refused: the breaker is open.
#[derive(Debug, Clone, thiserror::Error)]
#[error("circuit open: {0} is failing; not calling it")]
pub struct BreakerOpen(pub String);

/// The metadata key a service sets on a status that reports a failure of
/// a call it made itself (see `wire::fabric_status`).
pub const DOWNSTREAM_FAILED: &str = "x-downstream-failed";

/// How often an open breaker's watcher asks whether its downstream is
/// back ([`Breaker::watch`]).
pub const PROBE_EVERY: Duration = Duration::from_millis(50);

/// A circuit breaker for one downstream.
#[derive(Debug)]
pub struct Breaker {
    name: String,
    config: BreakerConfig,
    state: Mutex<(Inner, u64)>,
    /// When a call last lost its connection (refused, reset): the process
    /// went away, whatever its health check says later.
    lost_at: Mutex<Option<Instant>>,
    /// Signalled at every opening, for the watcher.
    opened: Arc<tokio::sync::Notify>,
}

/// The task watching a breaker's downstream; stopped when dropped.
#[derive(Debug)]
pub struct Watch(Option<tokio::task::AbortHandle>);

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

impl Breaker {
    /// A closed breaker for the downstream `name`.
    pub fn new(name: &str, config: BreakerConfig) -> Arc<Self> {
        let breaker = Arc::new(Self {
            name: name.to_owned(),
            config,
            state: Mutex::new((Self::closed(), 0)),
            lost_at: Mutex::new(None),
            opened: Arc::new(tokio::sync::Notify::new()),
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
            Inner::Open { until, .. } if now >= *until => BreakerState::HalfOpen,
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
            Inner::Open { until, .. } if now >= *until => {
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
            let lost = *self.lost_at.lock();
            *inner = Inner::Open {
                until: now + self.config.open_wait,
                went_away: lost
                    .is_some_and(|at| now.saturating_duration_since(at) <= self.config.open_wait),
            };
            *current += 1;
            self.transitioned(BreakerState::Open);
            self.opened.notify_one();
        }
    }

    /// A call given up by its caller: a half-open probe's place is given
    /// back; nothing else changes.
    fn on_abandoned(&self, generation: u64) {
        let mut guard = self.state.lock();
        let (inner, current) = &mut *guard;
        if generation == *current
            && let Inner::HalfOpen { permits, .. } = inner
        {
            *permits += 1;
        }
    }

    /// What the watcher's health check said while the breaker was open:
    /// a failure marks the downstream gone; an answer after that ends the
    /// open wait now (the next call half-opens the breaker).
    pub fn health(&self, answered: bool) {
        self.health_at(answered, Instant::now());
    }

    fn health_at(&self, answered: bool, now: Instant) {
        let mut guard = self.state.lock();
        if let Inner::Open { until, went_away } = &mut guard.0 {
            if !answered {
                *went_away = true;
            } else if *went_away && *until > now {
                *until = now;
                tracing::info!(downstream = %self.name, "back: its health check answers again; half-opening now");
            }
        }
    }

    /// Watches the downstream while the breaker is open: `probe` (a health
    /// check saying whether it serves) every [`PROBE_EVERY`], each answer
    /// given to [`Breaker::health`]. Outside a tokio runtime, nothing is
    /// watched (the open wait alone decides).
    pub fn watch<F, Fut>(self: &Arc<Self>, probe: F) -> Watch
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Watch(None);
        };
        let (breaker, opened) = (Arc::downgrade(self), self.opened.clone());
        let task = runtime.spawn(async move {
            loop {
                opened.notified().await;
                loop {
                    match breaker.upgrade() {
                        Some(b) if b.state() == BreakerState::Open => {}
                        Some(_) => break,
                        None => return,
                    }
                    tokio::time::sleep(PROBE_EVERY).await;
                    let answered = tokio::time::timeout(PROBE_EVERY * 4, probe())
                        .await
                        .unwrap_or(false);
                    match breaker.upgrade() {
                        Some(b) => b.health(answered),
                        None => return,
                    }
                }
            }
        });
        Watch(Some(task.abort_handle()))
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
                        .is_some_and(|s| is_failure_code(s.code()))
                        && !response.headers().contains_key(DOWNSTREAM_FAILED);
                    permit.record(!failed);
                    Ok(response)
                }
                Err(e) => {
                    let e: BoxError = e.into();
                    if e.is::<tonic::TimeoutExpired>() {
                        permit.record(false);
                        return Err(
                            Box::new(tonic::Status::deadline_exceeded("deadline exceeded"))
                                as BoxError,
                        );
                    }
                    // The channel's own error: no connection (refused,
                    // reset, closed), the process went away.
                    permit.lost();
                    Err(e)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests;
