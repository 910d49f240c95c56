//! Transfers served by running the shared saga in the caller's task, over
//! whatever binds the journal and the accounts (actors, or gRPC clients).

use std::sync::Arc;

use async_trait::async_trait;

use shared_domain::bank::{TransferRecord, TransferRequest};
use shared_domain::error::BankResult;
use shared_domain::id::TransferId;
use shared_domain::saga;
use shared_domain::service::{AccountsService, Pause, TransferJournal, TransfersService};

/// A saga runs in its caller's task (no extra hop); if the caller gives up
/// part-way (the edge deadline), the saga is handed to a task of its own
/// and completes there, so a transfer is never left between debit and
/// credit by a caller that went away.
pub struct SagaTransfers<J, A> {
    journal: Arc<J>,
    accounts: Arc<A>,
    pause: Arc<dyn Pause>,
}

impl<J, A> SagaTransfers<J, A>
where
    J: TransferJournal + 'static,
    A: AccountsService + 'static,
{
    /// Transfers journaled in `journal`, moving money in `accounts`,
    /// retrying fabric failures after `pause`.
    pub fn new(journal: Arc<J>, accounts: Arc<A>, pause: Arc<dyn Pause>) -> Self {
        Self {
            journal,
            accounts,
            pause,
        }
    }

    fn finish_elsewhere(&self, orphan: saga::Orphan) {
        let (journal, accounts, pause) = (
            self.journal.clone(),
            self.accounts.clone(),
            self.pause.clone(),
        );
        tokio::spawn(async move {
            if let Err(e) = saga::finish(&*journal, &*accounts, &*pause, orphan.clone()).await {
                tracing::warn!(?orphan, error = %e, "an orphaned transfer could not be finished; recovery resumes it");
            }
        });
    }

    /// Completes every pending transfer (recovery after a crash); how many
    /// were resolved.
    pub async fn resume_pending(&self) -> BankResult<usize> {
        saga::resume_pending(&*self.journal, &*self.accounts, &*self.pause).await
    }

    /// Completes the transfers a crash left pending, in a task of its own:
    /// until their accounts answer, the saga's pause retries.
    pub fn resume_in_background(self: &Arc<Self>) {
        let resume = self.clone();
        tokio::spawn(async move {
            match resume.resume_pending().await {
                Ok(n) if n > 0 => tracing::info!(resolved = n, "resumed pending transfers"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "resuming pending transfers stopped"),
            }
        });
    }
}

#[async_trait]
impl<J, A> TransfersService for SagaTransfers<J, A>
where
    J: TransferJournal + 'static,
    A: AccountsService + 'static,
{
    async fn transfer(&self, request: TransferRequest) -> BankResult<TransferRecord> {
        saga::transfer(
            &*self.journal,
            &*self.accounts,
            &*self.pause,
            request,
            &|orphan| self.finish_elsewhere(orphan),
        )
        .await
    }
    async fn get(&self, id: &TransferId) -> BankResult<TransferRecord> {
        self.journal.get(id).await
    }
}
