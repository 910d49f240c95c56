//! Retries of idempotent calls: exponential backoff with full jitter, a
//! cap on attempts, and tower's retry budget.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tower::retry::budget::{Budget, TpsBudget};

use shared_domain::error::CallError;

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
