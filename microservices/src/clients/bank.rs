//! The bank's clients: the accounts (with the settled-transfer reports)
//! and the transfers service.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use shared_domain::bank::{
    AccountStep, AccountTotals, AccountView, Resolution, StepResult, TransferRecord,
    TransferRequest,
};
use shared_domain::error::{BankResult, CallError};
use shared_domain::id::{AccountId, TransferId};
use shared_domain::money::OpeningBalance;
use shared_domain::service::{AccountsService, TransfersService};

use crate::wire::pb::bank as b;
use crate::wire::pb::bank::accounts_client::AccountsClient;
use crate::wire::pb::bank::transfers_client::TransfersClient;
use crate::wire::{self, bank_error};

use super::{Downstream, decoded};

/// How the transfers service moves a transfer's money at the accounts
/// service: the switch that shows what chattiness costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TransferPath {
    /// One `ApplyTransfer` call: the payee check, debit and credit in one
    /// round trip, applied under one lock and committed together (what a
    /// latency-minded team ships when one service owns every account).
    Coarse,
    /// One call per step: `Balance` for the payee (until the payee cache
    /// knows it), `ApplyStep` for the debit, `ApplyStep` for the credit:
    /// three sequential round trips to the same process.
    Fine,
}

impl TransferPath {
    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            TransferPath::Coarse => "coarse",
            TransferPath::Fine => "fine",
        }
    }
}

/// `AccountsService` over `bank.v1.Accounts`.
pub struct GrpcAccounts {
    downstream: Arc<Downstream>,
    path: TransferPath,
    /// Settled transfers on their way to the accounts service, in
    /// batches (started with the first one).
    settled: std::sync::OnceLock<tokio::sync::mpsc::Sender<TransferId>>,
}

/// Settled transfers waiting to be reported before more are dropped (and
/// their records kept).
const SETTLE_QUEUE: usize = 65_536;
/// Transfers reported in one `Settle` call at most.
const SETTLE_BATCH: usize = 1024;
/// How long the first settled transfer of a batch waits for others.
const SETTLE_LINGER: Duration = Duration::from_millis(20);
/// Tries of one `Settle` batch (about 10 s in all) before its records are
/// left to the accounts.
const SETTLE_ATTEMPTS: u32 = 15;

impl GrpcAccounts {
    /// A client of the accounts service whose sagas take `path`.
    pub fn new(downstream: Downstream, path: TransferPath) -> Self {
        Self {
            downstream: Arc::new(downstream),
            path,
            settled: std::sync::OnceLock::new(),
        }
    }

    /// The client's channel and policy (its breaker, say).
    pub fn downstream(&self) -> &Downstream {
        &self.downstream
    }

    /// Reports settled transfers in batches: the first one waits
    /// [`SETTLE_LINGER`] for others (nothing waits on a settlement, so a
    /// batch may take its time; sent at once, a batch would be one
    /// transfer at moderate rates, an extra call per transfer), then
    /// everything waiting goes, up to [`SETTLE_BATCH`]. A batch that cannot
    /// be sent is dropped after its retries: the accounts keep those
    /// records (memory, never money).
    fn settler(&self) -> &tokio::sync::mpsc::Sender<TransferId> {
        self.settled.get_or_init(|| {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<TransferId>(SETTLE_QUEUE);
            let downstream = self.downstream.clone();
            tokio::spawn(async move {
                let mut batch = Vec::with_capacity(SETTLE_BATCH);
                while crate::batch::next(&mut rx, &mut batch, SETTLE_BATCH, SETTLE_LINGER).await {
                    let message = b::SettleRequest { transfer_ids: batch.drain(..).map(|id| id.to_string()).collect() };
                    // Across an outage of the accounts (a restart takes
                    // about half a second), then given up.
                    let mut pause = Duration::from_millis(50);
                    for attempt in 1..=SETTLE_ATTEMPTS {
                        let sent = downstream
                            .unary(true, message.clone(), bank_error, |ch, r| async move { AccountsClient::new(ch).settle(r).await })
                            .await;
                        match sent {
                            Ok(_) => break,
                            Err(e) if attempt == SETTLE_ATTEMPTS => {
                                metrics::counter!("transfers_settle_batches_failed_total").increment(1);
                                tracing::warn!(error = %e, "a batch of settled transfers was not reported; the accounts keep their records");
                            }
                            Err(_) => {
                                tokio::time::sleep(pause).await;
                                pause = (pause * 2).min(Duration::from_secs(1));
                            }
                        }
                    }
                }
            });
            tx
        })
    }
}

#[async_trait]
impl AccountsService for GrpcAccounts {
    async fn open(&self, account: AccountId, opening: OpeningBalance) -> BankResult<AccountView> {
        let message = b::OpenRequest {
            account_id: account.to_string(),
            opening_balance: opening.balance().minor_units(),
        };
        // Not idempotent: a retry after a lost answer would say "exists".
        let a = self
            .downstream
            .unary(false, message, bank_error, |ch, r| async move {
                AccountsClient::new(ch).open(r).await
            })
            .await?;
        decoded(wire::account_from_wire(&a))
    }
    async fn balance(&self, account: &AccountId) -> BankResult<AccountView> {
        let message = b::BalanceRequest {
            account_id: account.to_string(),
        };
        let a = self
            .downstream
            .unary(true, message, bank_error, |ch, r| async move {
                AccountsClient::new(ch).balance(r).await
            })
            .await?;
        decoded(wire::account_from_wire(&a))
    }
    async fn apply_step(&self, step: AccountStep) -> BankResult<StepResult> {
        let message = wire::step_to_wire(&step);
        // Idempotent per (transfer_id, kind): a retried step moves no money twice.
        let r = self
            .downstream
            .unary(true, message, bank_error, |ch, r| async move {
                AccountsClient::new(ch).apply_step(r).await
            })
            .await?;
        decoded(wire::step_result_from_wire(&r))
    }
    /// Queued for the next `Settle` batch; a full queue drops it (and the
    /// accounts keep its records).
    fn settled(&self, request: &TransferRequest) {
        if self
            .settler()
            .try_send(request.transfer_id.clone())
            .is_err()
        {
            metrics::counter!("transfers_settle_dropped_total").increment(1);
        }
    }
    async fn apply_transfer(&self, request: &TransferRequest) -> BankResult<Option<Resolution>> {
        if self.path == TransferPath::Fine {
            return Ok(None);
        }
        let message = wire::transfer_to_wire(request);
        // Idempotent: every step it applies is recorded per (transfer_id, kind).
        match self
            .downstream
            .unary(true, message, bank_error, |ch, r| async move {
                AccountsClient::new(ch).apply_transfer(r).await
            })
            .await
        {
            Ok(outcome) => Ok(Some(Resolution::Resolved(decoded(
                wire::outcome_status_from_wire(&outcome),
            )?))),
            // Refused before money moved, as the saga's own checks refuse.
            Err(CallError::Domain(e)) => Ok(Some(Resolution::Abandon(e))),
            Err(e) => Err(e),
        }
    }
    async fn totals(&self) -> BankResult<AccountTotals> {
        let t = self
            .downstream
            .unary(true, b::TotalsRequest {}, bank_error, |ch, r| async move {
                AccountsClient::new(ch).totals(r).await
            })
            .await?;
        Ok(wire::totals_from_wire(&t))
    }
}

/// `TransfersService` over `bank.v1.Transfers`.
pub struct GrpcTransfers(pub Downstream);

impl GrpcTransfers {
    /// Transfers still pending in the journal.
    pub async fn pending_count(&self) -> BankResult<u64> {
        let p = self
            .0
            .unary(
                true,
                b::PendingCountRequest {},
                bank_error,
                |ch, r| async move { TransfersClient::new(ch).pending_count(r).await },
            )
            .await?;
        Ok(p.pending)
    }
}

#[async_trait]
impl TransfersService for GrpcTransfers {
    async fn transfer(&self, request: TransferRequest) -> BankResult<TransferRecord> {
        let message = wire::transfer_to_wire(&request);
        // Idempotent under its transfer_id.
        let r = self
            .0
            .unary(true, message, bank_error, |ch, r| async move {
                TransfersClient::new(ch).transfer(r).await
            })
            .await?;
        decoded(wire::record_from_wire(&r))
    }
    async fn get(&self, id: &TransferId) -> BankResult<TransferRecord> {
        let message = b::GetTransferRequest {
            transfer_id: id.to_string(),
        };
        let r = self
            .0
            .unary(true, message, bank_error, |ch, r| async move {
                TransfersClient::new(ch).get(r).await
            })
            .await?;
        decoded(wire::record_from_wire(&r))
    }
}
