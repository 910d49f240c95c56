//! Exponential backoff with full jitter, stopped by shutdown.

use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;
use tokio_util::sync::CancellationToken;

use shared_domain::service::Pause;

/// Waits `random(0, min(cap, base * 2^attempt))` (AWS "full jitter").
pub struct Backoff {
    base: Duration,
    cap: Duration,
    shutdown: CancellationToken,
}

impl Backoff {
    /// A backoff from `base` up to `cap`, ending when `shutdown` is cancelled.
    pub fn new(base: Duration, cap: Duration, shutdown: CancellationToken) -> Self {
        Self {
            base,
            cap,
            shutdown,
        }
    }
}

#[async_trait]
impl Pause for Backoff {
    async fn pause(&self, attempt: u32) -> bool {
        let ceiling = self
            .base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.cap);
        let wait = rand::rng().random_range(Duration::ZERO..=ceiling);
        tokio::select! {
            () = tokio::time::sleep(wait) => true,
            () = self.shutdown.cancelled() => false,
        }
    }
}
