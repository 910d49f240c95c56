//! The ledger: an HTTP/JSON service (axum server, reqwest clients), the one
//! internal hop that is not gRPC.
//!
//! - A **read model** of committed transfers, fed asynchronously by the
//!   transfers service ([`Feed`] → `POST /v1/entries`). Its lag behind the
//!   journal is the eventual-consistency cost, measured per entry
//!   (`ledger_replication_lag_seconds`). The read model is derived data: it
//!   lives in memory and is rebuilt by a full resync from the journal when
//!   the ledger restarts (each process has a random epoch; a new epoch
//!   makes the feed resync) or when the feed's bounded queue overflowed.
//! - **The audit** (`GET /v1/audit`): exact totals from the accounts
//!   service and the pending count from the transfers service, over gRPC.
//!   The gateway reaches it with [`HttpLedger`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use shared_domain::FastSet;
use shared_domain::bank::{AuditView, TransferRecord, TransferStatus};
use shared_domain::error::{BankResult, CallError};
use shared_domain::id::TransferId;
use shared_domain::money::{Amount, Total};
use shared_domain::service::{AccountsService, LedgerService, TransferJournal};

use crate::auth::Minter;
use crate::clients::GrpcTransfers;
use crate::resilience::Breaker;

mod feed;

pub use feed::{Feed, Snapshot};

/// One committed transfer, as the feed ships it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The transfer.
    pub transfer_id: String,
    /// Payer.
    pub from: String,
    /// Payee.
    pub to: String,
    /// Minor units.
    pub amount: i64,
    /// When the journal committed it (µs since the epoch); absent for
    /// entries sent by a resync, whose commit time is not kept.
    pub committed_at_us: Option<u64>,
}

impl Entry {
    fn of(record: &TransferRecord, committed_at_us: Option<u64>) -> Self {
        Self {
            transfer_id: record.request.transfer_id.to_string(),
            from: record.request.from.to_string(),
            to: record.request.to.to_string(),
            amount: record.request.amount.minor_units(),
            committed_at_us,
        }
    }
}

/// `POST /v1/entries` body.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entries {
    /// A batch, in commit order.
    pub entries: Vec<Entry>,
}

/// `POST /v1/entries` answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct Applied {
    /// The ledger process's epoch: when it changes, the feed resyncs.
    pub epoch: u64,
    /// Entries new to the read model.
    pub applied: u64,
}

/// `GET /v1/audit` answer (the public audit plus the read model's size).
#[derive(Debug, Serialize, Deserialize)]
pub struct Audit {
    /// Accounts.
    pub accounts: u64,
    /// Exact sum of balances.
    pub total_balance: i128,
    /// Pending transfers.
    pub pending_transfers: u64,
    /// Committed transfers the read model holds.
    pub ledger_entries: u64,
}

/// `GET /v1/summary` answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct Summary {
    /// This process's epoch.
    pub epoch: u64,
    /// Committed transfers the read model holds.
    pub entries: u64,
    /// Their summed amounts.
    pub volume: i128,
}

#[derive(Default)]
struct ReadModel {
    seen: FastSet<TransferId>,
    volume: i128,
}

/// Where the audit reads the pending count: the transfers service over
/// gRPC, or its journal in the same process.
#[async_trait]
pub trait Pending: Send + Sync {
    /// Transfers still pending in the journal.
    async fn pending_count(&self) -> BankResult<u64>;
}

#[async_trait]
impl Pending for GrpcTransfers {
    async fn pending_count(&self) -> BankResult<u64> {
        GrpcTransfers::pending_count(self).await
    }
}

/// A journal in the same process as the ledger.
pub struct JournalPending<J: ?Sized>(pub Arc<J>);

#[async_trait]
impl<J: TransferJournal + ?Sized> Pending for JournalPending<J> {
    async fn pending_count(&self) -> BankResult<u64> {
        self.0.pending_count().await
    }
}

/// The ledger service's state.
pub struct Ledger {
    epoch: u64,
    model: Mutex<ReadModel>,
    accounts: Arc<dyn AccountsService>,
    transfers: Arc<dyn Pending>,
}

impl Ledger {
    /// A ledger with an empty read model, auditing through these (gRPC
    /// clients, or components in the same process).
    pub fn new(accounts: Arc<dyn AccountsService>, transfers: Arc<dyn Pending>) -> Arc<Self> {
        Arc::new(Self {
            epoch: rand::random(),
            model: Mutex::default(),
            accounts,
            transfers,
        })
    }

    /// The HTTP/JSON routes (plus `/healthz` and `/metrics` added by the host).
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/v1/entries", post(entries))
            .route("/v1/audit", get(audit))
            .route("/v1/summary", get(summary))
            .layer(DefaultBodyLimit::max(4 * 1024 * 1024))
            .layer(axum::middleware::map_response(edge::close_after_oversized))
            .with_state(self.clone())
    }

    /// Adds committed transfers new to the read model (id, amount, when
    /// committed); how many were new.
    fn apply(&self, entries: impl IntoIterator<Item = (TransferId, i64, Option<u64>)>) -> u64 {
        let now = edge::now_us();
        let mut applied = 0;
        {
            let mut model = self.model.lock();
            for (id, amount, committed) in entries {
                if model.seen.insert(id) {
                    model.volume += i128::from(amount);
                    applied += 1;
                    if let Some(at) = committed {
                        metrics::histogram!("ledger_replication_lag_seconds")
                            .record(now.saturating_sub(at) as f64 / 1e6);
                    }
                }
            }
        }
        metrics::counter!("ledger_entries_total").increment(applied);
        applied
    }

    /// Takes a transfer the journal in this process just committed (the
    /// feed when the transfers service shares the ledger's process).
    pub fn committed(&self, record: &TransferRecord) {
        if record.status != TransferStatus::Committed {
            return;
        }
        let request = &record.request;
        self.apply([(
            request.transfer_id.clone(),
            request.amount.minor_units(),
            Some(edge::now_us()),
        )]);
    }

    /// Takes every committed transfer of a journal in this process (its
    /// read model starts from them, as after a feed's resync).
    pub fn resync(&self, records: &[TransferRecord]) {
        self.apply(
            records
                .iter()
                .filter(|r| r.status == TransferStatus::Committed)
                .map(|r| {
                    (
                        r.request.transfer_id.clone(),
                        r.request.amount.minor_units(),
                        None,
                    )
                }),
        );
    }

    /// The audit: exact totals from the accounts, the pending count from
    /// the transfers, and the read model's size.
    async fn audit_now(&self) -> BankResult<Audit> {
        let (totals, pending) =
            futures::join!(self.accounts.totals(), self.transfers.pending_count());
        let totals = totals?;
        Ok(Audit {
            accounts: totals.accounts,
            total_balance: totals.total_balance.0,
            pending_transfers: pending?,
            ledger_entries: self.model.lock().seen.len() as u64,
        })
    }
}

/// The audit in the same process as the ledger (a layout that puts the
/// gateway beside it).
#[async_trait]
impl LedgerService for Ledger {
    async fn audit(&self) -> BankResult<AuditView> {
        let audit = self.audit_now().await?;
        Ok(AuditView {
            accounts: audit.accounts,
            total_balance: Total(audit.total_balance),
            pending_transfers: audit.pending_transfers,
        })
    }
}

fn bad_request(why: impl std::fmt::Display) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, why.to_string())
}

async fn entries(
    State(ledger): State<Arc<Ledger>>,
    Json(batch): Json<Entries>,
) -> Result<Json<Applied>, (StatusCode, String)> {
    // Validate the whole batch before applying any of it.
    let mut parsed = Vec::with_capacity(batch.entries.len());
    for e in &batch.entries {
        let id = TransferId::new(&e.transfer_id).map_err(bad_request)?;
        let amount = Amount::new(e.amount.into()).map_err(bad_request)?;
        parsed.push((id, amount.minor_units(), e.committed_at_us));
    }
    let applied = ledger.apply(parsed);
    Ok(Json(Applied {
        epoch: ledger.epoch,
        applied,
    }))
}

async fn audit(State(ledger): State<Arc<Ledger>>) -> Result<Json<Audit>, (StatusCode, String)> {
    ledger
        .audit_now()
        .await
        .map(Json)
        .map_err(|e: CallError<_>| (StatusCode::SERVICE_UNAVAILABLE, format!("{e}")))
}

async fn summary(State(ledger): State<Arc<Ledger>>) -> Json<Summary> {
    let model = ledger.model.lock();
    Json(Summary {
        epoch: ledger.epoch,
        entries: model.seen.len() as u64,
        volume: model.volume,
    })
}

/// The gateway's `LedgerService`: `GET /v1/audit` on the ledger, over
/// HTTP/JSON, behind a breaker.
pub struct HttpLedger {
    http: reqwest::Client,
    url: String,
    breaker: Arc<Breaker>,
    tokens: Option<Arc<Minter>>,
    /// The breaker's watcher of the ledger's `/healthz`.
    _watch: crate::resilience::Watch,
}

/// Asks the ledger at `base` (`http://host:port`) whether it is up
/// (`/healthz`); why not, if it is not. The gateway's readiness and the
/// breaker's watcher ask the same question.
pub async fn healthz(http: &reqwest::Client, base: &str) -> Result<(), String> {
    let answer = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !answer.status().is_success() {
        return Err(answer.status().to_string());
    }
    Ok(())
}

/// Adds the service token for the ledger, when tokens are on.
fn authorized(
    request: reqwest::RequestBuilder,
    tokens: Option<&Arc<Minter>>,
) -> reqwest::RequestBuilder {
    match tokens {
        Some(minter) => request.bearer_auth(minter.token_for("ledger")),
        None => request,
    }
}

impl HttpLedger {
    /// A client of the ledger at `base` (`http://host:port`).
    /// `http` carries the TLS settings under `--mtls`.
    pub fn new(
        http: reqwest::ClientBuilder,
        base: &str,
        timeout: Duration,
        breaker: Arc<Breaker>,
        tokens: Option<Arc<Minter>>,
    ) -> anyhow::Result<Self> {
        let http = http
            .timeout(timeout)
            .connect_timeout(Duration::from_millis(500))
            .pool_max_idle_per_host(32)
            .build()?;
        let base = base.trim_end_matches('/');
        let watch = breaker.watch({
            let (http, base) = (http.clone(), base.to_owned());
            move || {
                let (http, base) = (http.clone(), base.clone());
                async move { healthz(&http, &base).await.is_ok() }
            }
        });
        Ok(Self {
            http,
            url: format!("{base}/v1/audit"),
            breaker,
            tokens,
            _watch: watch,
        })
    }
}

#[async_trait]
impl LedgerService for HttpLedger {
    async fn audit(&self) -> BankResult<AuditView> {
        let permit = self
            .breaker
            .try_acquire()
            .map_err(|open| CallError::Unavailable(open.to_string()))?;
        let answer = async {
            let mut get = authorized(self.http.get(&self.url), self.tokens.as_ref());
            if let Some(context) = crate::trace::current() {
                get = get.header("traceparent", context.header());
            }
            let response = get.send().await?;
            let status = response.status();
            if !status.is_success() {
                return Ok(Err(format!(
                    "ledger answered {status}: {}",
                    response.text().await.unwrap_or_default()
                )));
            }
            response.json::<Audit>().await.map(Ok)
        }
        .await;
        match answer {
            Ok(Ok(audit)) => {
                permit.record(true);
                Ok(AuditView {
                    accounts: audit.accounts,
                    total_balance: Total(audit.total_balance),
                    pending_transfers: audit.pending_transfers,
                })
            }
            Ok(Err(why)) => {
                permit.record(false);
                Err(CallError::Unavailable(why))
            }
            Err(e) => {
                permit.record(false);
                Err(if e.is_timeout() {
                    CallError::DeadlineExceeded
                } else {
                    CallError::Unavailable(format!("ledger: {e}"))
                })
            }
        }
    }
}
