//! The ledger: an HTTP/JSON service (axum server, reqwest clients), the one
//! internal hop that is not gRPC.
//!
//! - A **read model** of committed transfers, fed asynchronously by the
//!   transfers service ([`Feed`] → `POST /v1/entries`). Its lag behind the
//!   journal is the eventual-consistency cost, measured per entry
//!   (`ledger_replication_lag_seconds`). The read model is derived data,
//!   in memory, and the same size however long the journal: the count and
//!   summed amount of the commits so far. The journal numbers its commits
//!   in order ([`shared_domain::bank::TransferBook::commits`]); the feed
//!   first sends a *base* (the journal's totals up to commit `n`, read in
//!   one pass), then every later commit with its number. The read model
//!   applies commit `n + 1` and nothing else, so a resent entry counts
//!   once and a lost one is noticed; then it asks for a new base (when
//!   the ledger restarted, the feed's queue overflowed, or a batch may
//!   not have landed).
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

use shared_domain::bank::{AuditView, Committed, TransferRecord};
use shared_domain::error::{BankResult, CallError};
use shared_domain::id::TransferId;
use shared_domain::money::{Amount, Total};
use shared_domain::service::{AccountsService, LedgerService, TransferJournal};

use crate::auth::Minter;
use crate::clients::GrpcTransfers;
use crate::resilience::Breaker;

mod feed;

pub use feed::{Feed, HttpSink, Sink, Snapshot};

/// One committed transfer, as the feed ships it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Its number in the journal's commit order (the first is 1).
    pub seq: u64,
    /// The transfer.
    pub transfer_id: String,
    /// Payer.
    pub from: String,
    /// Payee.
    pub to: String,
    /// Minor units.
    pub amount: i64,
    /// When it became durable (µs since the epoch).
    pub committed_at_us: u64,
}

impl Entry {
    /// The entry of commit number `seq`, durable now.
    pub fn of(seq: u64, record: &TransferRecord) -> Self {
        Self {
            seq,
            transfer_id: record.request.transfer_id.to_string(),
            from: record.request.from.to_string(),
            to: record.request.to.to_string(),
            amount: record.request.amount.minor_units(),
            committed_at_us: edge::now_us(),
        }
    }
}

/// The journal's totals up to one commit: the read model starts over
/// from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Base {
    /// Commits so far (the number of the last one).
    pub through: u64,
    /// Their summed amounts, minor units.
    pub volume: i128,
}

impl From<Committed> for Base {
    fn from(c: Committed) -> Self {
        Self {
            through: c.count,
            volume: c.volume,
        }
    }
}

/// `POST /v1/entries` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entries {
    /// A new base, applied before the entries.
    #[serde(default)]
    pub base: Option<Base>,
    /// Later commits, in commit order.
    #[serde(default)]
    pub entries: Vec<Entry>,
}

/// `POST /v1/entries` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The ledger process's epoch (changes when it restarts).
    pub epoch: u64,
    /// Entries new to the read model.
    pub applied: u64,
    /// The last commit the read model holds.
    pub through: u64,
    /// The read model needs a new base before more entries: it has none
    /// (a new process), or an entry skipped a number.
    pub resync: bool,
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

/// One commit as the read model takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commit {
    /// Its number in the journal's commit order.
    pub seq: u64,
    /// Minor units.
    pub amount: i64,
    /// When it became durable (µs since the epoch).
    pub committed_at_us: u64,
}

impl From<&Entry> for Commit {
    fn from(e: &Entry) -> Self {
        Self {
            seq: e.seq,
            amount: e.amount,
            committed_at_us: e.committed_at_us,
        }
    }
}

/// The read model: the journal's totals through commit `through`. Until
/// a first base arrives it holds nothing and takes no entries.
#[derive(Debug, Default)]
struct ReadModel {
    based: bool,
    through: u64,
    volume: i128,
}

impl ReadModel {
    /// Applies a batch: the base first, then each entry numbered right
    /// after the last one held; resent ones are skipped, and a gap stops
    /// the batch and asks for a base.
    fn apply(&mut self, base: Option<Base>, entries: &[Commit], now_us: u64) -> (u64, bool) {
        if let Some(base) = base {
            self.based = true;
            self.through = base.through;
            self.volume = base.volume;
        }
        if !self.based {
            return (0, !entries.is_empty());
        }
        let mut applied = 0;
        for &Commit {
            seq,
            amount,
            committed_at_us,
        } in entries
        {
            if seq <= self.through {
                continue;
            }
            if seq != self.through + 1 {
                metrics::counter!("ledger_feed_gaps_total").increment(1);
                return (applied, true);
            }
            self.through = seq;
            self.volume += i128::from(amount);
            applied += 1;
            metrics::histogram!("ledger_replication_lag_seconds")
                .record(now_us.saturating_sub(committed_at_us) as f64 / 1e6);
        }
        (applied, false)
    }
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
            .layer(axum::middleware::map_response(
                edge::close_after_unread_body,
            ))
            .with_state(self.clone())
    }

    /// Takes a batch of the feed (validated): see [`ReadModel::apply`].
    pub fn receive(&self, base: Option<Base>, entries: &[Commit]) -> Applied {
        let (applied, resync, through) = {
            let mut model = self.model.lock();
            let (applied, resync) = model.apply(base, entries, edge::now_us());
            (applied, resync, model.through)
        };
        metrics::counter!("ledger_entries_total").increment(applied);
        Applied {
            epoch: self.epoch,
            applied,
            through,
            resync,
        }
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
            ledger_entries: self.model.lock().through,
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
    Ok(Json(ledger.receive(batch.base, &validated(&batch)?)))
}

/// The batch's entries as commits, or why the
/// whole batch is refused (nothing of it applied).
fn validated(batch: &Entries) -> Result<Vec<Commit>, (StatusCode, String)> {
    if let Some(base) = batch.base
        && base.volume < 0
    {
        return Err(bad_request("a base's volume cannot be negative"));
    }
    let mut parsed = Vec::with_capacity(batch.entries.len());
    let mut last = batch.base.map_or(0, |b| b.through);
    for (i, e) in batch.entries.iter().enumerate() {
        TransferId::new(&e.transfer_id).map_err(bad_request)?;
        Amount::new(e.amount.into()).map_err(bad_request)?;
        if e.seq == 0 || (i > 0 && e.seq <= last) {
            return Err(bad_request(format!(
                "entry {i}: seq {} does not follow {last}",
                e.seq
            )));
        }
        last = e.seq;
        parsed.push(Commit::from(e));
    }
    Ok(parsed)
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
        entries: model.through,
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
                if e.is_connect() {
                    permit.lost();
                } else {
                    permit.record(false);
                }
                Err(if e.is_timeout() {
                    CallError::DeadlineExceeded
                } else {
                    CallError::Unavailable(format!("ledger: {e}"))
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(seqs: impl IntoIterator<Item = u64>) -> Vec<Commit> {
        seqs.into_iter()
            .map(|seq| Commit {
                seq,
                amount: 10,
                committed_at_us: 0,
            })
            .collect()
    }

    #[test]
    fn without_a_base_nothing_is_applied_and_a_base_is_asked_for() {
        let mut model = ReadModel::default();
        assert_eq!(model.apply(None, &entries([1, 2]), 0), (0, true));
        assert_eq!((model.through, model.volume), (0, 0));
        assert_eq!(
            model.apply(None, &[], 0),
            (0, false),
            "an empty batch asks nothing"
        );
    }

    #[test]
    fn each_commit_counts_once_in_order_and_a_gap_asks_for_a_base() {
        let mut model = ReadModel::default();
        let base = Base {
            through: 3,
            volume: 100,
        };
        // Entries the base covers are skipped; the next ones apply.
        assert_eq!(model.apply(Some(base), &entries(2..=5), 0), (2, false));
        assert_eq!((model.through, model.volume), (5, 120));
        // A batch sent again changes nothing.
        assert_eq!(model.apply(None, &entries(4..=5), 0), (0, false));
        assert_eq!((model.through, model.volume), (5, 120));
        // A lost entry (6): 7 is not applied, a base is asked for.
        assert_eq!(model.apply(None, &entries([7, 8]), 0), (0, true));
        assert_eq!((model.through, model.volume), (5, 120));
        // The new base replaces what was held, and entries follow it.
        let base = Base {
            through: 7,
            volume: 140,
        };
        assert_eq!(model.apply(Some(base), &entries([7, 8]), 0), (1, false));
        assert_eq!((model.through, model.volume), (8, 150));
    }

    #[test]
    fn a_batch_with_numbers_out_of_order_is_refused_whole() {
        let good = |seq: u64| Entry {
            seq,
            transfer_id: format!("t{seq}"),
            from: "a".into(),
            to: "b".into(),
            amount: 5,
            committed_at_us: 1,
        };
        let batch = |seqs: &[u64]| Entries {
            base: None,
            entries: seqs.iter().map(|s| good(*s)).collect(),
        };
        assert!(
            validated(&batch(&[1, 2, 4])).is_ok(),
            "a gap is the model's to notice"
        );
        assert!(validated(&batch(&[2, 2])).is_err());
        assert!(validated(&batch(&[3, 1])).is_err());
        assert!(validated(&batch(&[0])).is_err());
    }
}
