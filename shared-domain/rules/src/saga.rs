//! A transfer as a saga of idempotent steps, runnable over any fabric.
//!
//! The steps: check that the payee exists (an unknown account is a 404 and
//! outranks insufficient funds), debit the payer, credit the payee, and
//! refund the payer if the credit cannot be made. Every step is keyed by
//! `(transfer_id, kind)`, so running the saga again from the start (a retry
//! after a timeout, or recovery after a crash between debit and credit)
//! replays recorded results and never moves money twice. A fabric whose
//! accounts service holds both accounts may apply all the steps in one
//! call instead ([`AccountsService::apply_transfer`]): the same steps,
//! recorded the same way, so the two paths mix safely.

use crate::error::{BankError, BankResult, CallError};
use crate::service::{AccountsService, Pause, TransferJournal};

use crate::bank::{
    AccountStep, Begin, RejectReason, Resolution, StepKind, StepResult, TransferRecord,
    TransferRequest, TransferStatus,
};

/// Retries `op` while it fails with a fabric error, pausing between tries.
/// `None` means the pause said stop: the work stays pending for recovery.
async fn retrying<T, F, Fut>(pause: &dyn Pause, mut op: F) -> Option<Result<T, BankError>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = BankResult<T>>,
{
    let mut attempt = 0u32;
    loop {
        match op().await {
            Ok(value) => return Some(Ok(value)),
            Err(CallError::Domain(e)) => return Some(Err(e)),
            Err(_) => {
                attempt = attempt.saturating_add(1);
                if !pause.pause(attempt).await {
                    return None;
                }
            }
        }
    }
}

async fn step(
    accounts: &dyn AccountsService,
    pause: &dyn Pause,
    request: &TransferRequest,
    kind: StepKind,
) -> Option<Result<StepResult, BankError>> {
    let account = match kind {
        StepKind::Debit | StepKind::Refund => &request.from,
        StepKind::Credit => &request.to,
    };
    let step = AccountStep {
        transfer_id: request.transfer_id.clone(),
        kind,
        account: account.clone(),
        amount: request.amount,
    };
    retrying(pause, || accounts.apply_step(step.clone())).await
}

/// Runs the steps of one transfer to a resolution. `None` when stopped by
/// the pause (shutdown); the journal still holds it as pending.
pub async fn run_saga(
    accounts: &dyn AccountsService,
    pause: &dyn Pause,
    request: &TransferRequest,
) -> Option<Resolution> {
    // One call for every step, where the fabric offers it (the same steps,
    // applied together and recorded alike).
    match retrying(pause, || accounts.apply_transfer(request)).await? {
        Ok(Some(resolution)) => return Some(resolution),
        Ok(None) => {}
        Err(e) => return Some(Resolution::Abandon(e)),
    }
    match retrying(pause, || accounts.exists(&request.to)).await? {
        Ok(true) => {}
        Ok(false) => {
            return Some(Resolution::Abandon(BankError::UnknownAccount(
                request.to.clone(),
            )));
        }
        Err(e) => return Some(Resolution::Abandon(e)),
    }
    match step(accounts, pause, request, StepKind::Debit).await? {
        Err(e) => return Some(Resolution::Abandon(e)),
        Ok(StepResult::InsufficientFunds { .. }) => {
            return Some(Resolution::Resolved(TransferStatus::Rejected(
                RejectReason::InsufficientFunds,
            )));
        }
        Ok(StepResult::Overflow) | Ok(StepResult::Applied { .. }) => {}
    }
    match step(accounts, pause, request, StepKind::Credit).await? {
        Ok(StepResult::Applied { .. }) => Some(Resolution::Resolved(TransferStatus::Committed)),
        // The payee's balance would overflow (or, impossibly, vanished):
        // give the money back; the refund cannot overflow, since the payer
        // held it a moment ago.
        Ok(StepResult::Overflow) | Ok(StepResult::InsufficientFunds { .. }) | Err(_) => {
            step(accounts, pause, request, StepKind::Refund)
                .await?
                .ok()?;
            Some(Resolution::Resolved(TransferStatus::Rejected(
                RejectReason::BalanceOverflow,
            )))
        }
    }
}

/// Runs the saga of a begun transfer and records its resolution, then
/// tells the accounts it is settled ([`AccountsService::settled`]). A
/// transfer has one runner at a time: its caller's task, the finisher of
/// its orphan once that task is gone, or the recovery of a process that
/// starts with it pending; a fabric must not start a second runner while
/// one is alive.
pub async fn complete(
    journal: &dyn TransferJournal,
    accounts: &dyn AccountsService,
    pause: &dyn Pause,
    record: TransferRecord,
) -> BankResult<TransferRecord> {
    let id = record.request.transfer_id.clone();
    match run_saga(accounts, pause, &record.request).await {
        None => Ok(record),
        Some(Resolution::Resolved(status)) => {
            match retrying(pause, || journal.resolve(&id, status)).await {
                Some(Ok(resolved)) => {
                    accounts.settled(&resolved.request);
                    Ok(resolved)
                }
                Some(Err(e)) => Err(CallError::Domain(e)),
                None => Ok(record),
            }
        }
        Some(Resolution::Abandon(e)) => {
            match retrying(pause, || journal.abandon(&id)).await {
                Some(res) => res.map_err(CallError::Domain)?,
                None => return Ok(record),
            }
            Err(CallError::Domain(e))
        }
    }
}

/// A transfer whose caller went away before it was resolved, to be
/// finished elsewhere ([`finish`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Orphan {
    /// Dropped while its `begin` was in flight: the journal may or may
    /// not hold it; the caller was told it is pending, so it is carried
    /// out (a repeated `begin` answers the recorded transfer).
    Beginning(TransferRequest),
    /// Its `begin` failed for the fabric (a timeout, say): the journal may
    /// hold it; the caller heard an error, so it is only completed if it
    /// was recorded.
    IfRecorded(TransferRequest),
    /// Begun and dropped part-way through its saga.
    Begun(TransferRecord),
}

/// Hands a transfer to `orphaned` if the future carrying it is dropped
/// part-way (its caller gave up), from the moment its `begin` is sent, so
/// the variant can finish it elsewhere: a journaled transfer is never left
/// pending with nobody to complete it, nor abandoned between debit and
/// credit.
struct OrphanGuard<'a> {
    orphan: Option<Orphan>,
    orphaned: &'a (dyn Fn(Orphan) + Send + Sync),
}

impl Drop for OrphanGuard<'_> {
    fn drop(&mut self) {
        if let Some(orphan) = self.orphan.take() {
            (self.orphaned)(orphan);
        }
    }
}

/// A whole transfer: begin in the journal (or answer a repeat), then
/// complete it in the caller's task. A repeat of a pending transfer answers
/// `pending`. If this future is dropped before the transfer is resolved,
/// or its `begin` fails for the fabric, `orphaned` receives it to finish
/// elsewhere ([`finish`]).
pub async fn transfer(
    journal: &dyn TransferJournal,
    accounts: &dyn AccountsService,
    pause: &dyn Pause,
    request: TransferRequest,
    orphaned: &(dyn Fn(Orphan) + Send + Sync),
) -> BankResult<TransferRecord> {
    let begun = journal.begin(request.clone());
    // Armed before `begin` is polled; the guard owns the request from here.
    let mut guard = OrphanGuard {
        orphan: Some(Orphan::Beginning(request)),
        orphaned,
    };
    let begun = begun.await;
    match begun {
        Ok(Begin::Recorded(record)) => {
            guard.orphan = None;
            Ok(record)
        }
        Ok(Begin::Started(record)) => {
            guard.orphan = Some(Orphan::Begun(record.clone()));
            let result = complete(journal, accounts, pause, record).await;
            guard.orphan = None;
            result
        }
        Err(CallError::Domain(e)) => {
            guard.orphan = None;
            Err(CallError::Domain(e))
        }
        Err(e) => {
            guard.orphan = match guard.orphan.take() {
                Some(Orphan::Beginning(request)) => Some(Orphan::IfRecorded(request)),
                other => other,
            };
            Err(e)
        }
    }
}

/// Finishes an [`Orphan`]: begins it again or looks it up, as it says,
/// and completes it while it is pending. Retries the fabric until `pause`
/// says stop (then it stays pending, for recovery).
pub async fn finish(
    journal: &dyn TransferJournal,
    accounts: &dyn AccountsService,
    pause: &dyn Pause,
    orphan: Orphan,
) -> BankResult<Option<TransferRecord>> {
    let record = match orphan {
        Orphan::Begun(record) => record,
        Orphan::Beginning(request) => {
            match retrying(pause, || journal.begin(request.clone())).await {
                None => return Ok(None),
                Some(begun) => match begun.map_err(CallError::Domain)? {
                    Begin::Started(record) | Begin::Recorded(record) => record,
                },
            }
        }
        Orphan::IfRecorded(request) => {
            match retrying(pause, || journal.get(&request.transfer_id)).await {
                None | Some(Err(_)) => return Ok(None),
                Some(Ok(record)) => record,
            }
        }
    };
    if record.status != TransferStatus::Pending {
        return Ok(Some(record));
    }
    complete(journal, accounts, pause, record).await.map(Some)
}

/// Completes every transfer the journal holds as pending (recovery after a
/// crash). Returns how many were resolved.
pub async fn resume_pending(
    journal: &dyn TransferJournal,
    accounts: &dyn AccountsService,
    pause: &dyn Pause,
) -> BankResult<usize> {
    let pending = journal.pending().await?;
    let mut resolved = 0;
    for record in pending {
        match complete(journal, accounts, pause, record).await {
            Ok(r) if r.status != TransferStatus::Pending => resolved += 1,
            Ok(_) | Err(CallError::Domain(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(resolved)
}
