//! Settlement between the transfers and accounts services: the accounts
//! service's books stay bounded (a settled transfer's step records are
//! dropped) without a delayed duplicate of a step ever moving money twice.
//!
//! The rules are the domain's ([`shared_domain::bank::StepFence`]); this is
//! the fabric's half:
//! - every call a client makes carries its absolute deadline
//!   (`x-deadline-unix-us`, microseconds since the Unix epoch: the sender's
//!   clock, compared with the receiver's within the fence's skew);
//! - the accounts server admits a step (or a whole transfer) only through
//!   the fence, and holds the fence's lock while it applies it, so a
//!   settlement cannot slip between the check and the step;
//! - a settlement drops the records and persists their tombstones in one
//!   commit, and a restarted accounts service restores the live ones;
//! - the transfers service reports settled transfers in batches
//!   (`Settle`), off the request path; a batch that cannot be sent is
//!   dropped, which keeps those records (memory, never money).

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tonic::{Request, Status};

use shared_domain::bank::{Stale, StepFence};
use shared_domain::error::BankResult;
use shared_domain::id::TransferId;

/// The metadata key holding a call's absolute deadline.
pub const DEADLINE_HEADER: &str = "x-deadline-unix-us";

/// A duration in whole microseconds (saturating).
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The absolute deadline a request carries, if any.
pub fn deadline_of<T>(request: &Request<T>) -> Option<u64> {
    request
        .metadata()
        .get(DEADLINE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Sets a request's absolute deadline: now plus `budget`.
pub fn set_deadline<T>(request: &mut Request<T>, budget: Duration) {
    if let Ok(value) = edge::now_us()
        .saturating_add(micros(budget))
        .to_string()
        .parse()
    {
        request.metadata_mut().insert(DEADLINE_HEADER, value);
    }
}

/// Drops settled transfers' step records and persists their tombstones
/// (valid until the given time) in one commit.
pub type Settle =
    Box<dyn Fn(Vec<TransferId>, u64) -> BoxFuture<'static, BankResult<()>> + Send + Sync>;

/// The accounts server's fence and what a settlement drops.
pub struct Settlement {
    fence: parking_lot::Mutex<StepFence>,
    /// Steps hold it shared from their check until they are answered
    /// (their change durable), side by side, so their commits can share a
    /// sync; a settlement holds it alone, so none slips between a check
    /// and its step.
    gate: tokio::sync::RwLock<()>,
    settle: Settle,
    records: Box<dyn Fn() -> usize + Send + Sync>,
}

impl Settlement {
    /// A fence for callers whose budget is at most `max_budget`, with
    /// clocks at most `max_skew` apart, holding the `tombstones` a durable
    /// book kept (transfer, expiry). `settle` drops step records and
    /// persists tombstones; `records` counts the records kept (the gauge).
    pub fn new(
        max_budget: Duration,
        max_skew: Duration,
        tombstones: Vec<(TransferId, u64)>,
        settle: impl Fn(Vec<TransferId>, u64) -> BoxFuture<'static, BankResult<()>>
        + Send
        + Sync
        + 'static,
        records: impl Fn() -> usize + Send + Sync + 'static,
    ) -> Arc<Self> {
        let mut fence = StepFence::new(micros(max_budget), micros(max_skew));
        fence.restore(tombstones);
        Arc::new(Self {
            fence: parking_lot::Mutex::new(fence),
            gate: tokio::sync::RwLock::new(()),
            settle: Box::new(settle),
            records: Box::new(records),
        })
    }

    /// Runs `apply` (a step, or a whole transfer, of `transfer_id`) if the
    /// fence admits it, keeping settlements out meanwhile.
    pub async fn guarded<T>(
        &self,
        transfer_id: &TransferId,
        deadline_us: Option<u64>,
        apply: impl Future<Output = BankResult<T>>,
    ) -> Result<BankResult<T>, Status> {
        let _gate = self.gate.read().await;
        self.fence
            .lock()
            .admit(transfer_id, deadline_us, edge::now_us())
            .map_err(|stale| refused(transfer_id, stale))?;
        Ok(apply.await)
    }

    /// Drops the step records of settled transfers, leaving tombstones.
    pub async fn settle(&self, transfer_ids: &[TransferId]) -> BankResult<()> {
        let _gate = self.gate.write().await;
        let now = edge::now_us();
        let until = self.fence.lock().expiry(now);
        // Persisted first: a crash after it keeps both the dropped records'
        // absence and the tombstones; a failure keeps the records.
        let settled = (self.settle)(transfer_ids.to_vec(), until).await;
        let mut fence = self.fence.lock();
        if settled.is_ok() {
            for id in transfer_ids {
                fence.bury(id.clone(), now);
            }
        }
        metrics::gauge!("accounts_step_records").set((self.records)() as f64);
        metrics::gauge!("accounts_settled_tombstones").set(fence.tombstones() as f64);
        settled
    }
}

/// A refused step as a status without domain details: the caller's fabric
/// error (a live saga retries with a fresh deadline; a stale copy's
/// sender is gone).
fn refused(transfer_id: &TransferId, stale: Stale) -> Status {
    let message = format!("step of transfer {transfer_id} refused: {stale}");
    match stale {
        Stale::PastDeadline => Status::deadline_exceeded(message),
        Stale::Settled => {
            metrics::counter!("accounts_stale_steps_refused_total").increment(1);
            tracing::info!(%transfer_id, "a stale copy of a settled transfer's step was refused");
            Status::failed_precondition(message)
        }
        Stale::NoDeadline | Stale::BudgetTooLong => {
            tracing::warn!(%transfer_id, %stale, "a step refused: the caller's deadline is missing or beyond this service's --call-timeout-ms");
            Status::invalid_argument(message)
        }
    }
}
