//! The bank's messages: requests and answers between the domain and
//! `bank.v1`.

use tonic::Status;

use shared_domain::bank::{
    AccountStep, AccountTotals, AccountView, RejectReason, StepKind, StepResult, TransferRecord,
    TransferRequest, TransferStatus,
};
use shared_domain::id::{AccountId, TransferId};
use shared_domain::money::{OpeningBalance, Total};

use super::{amount, b, balance, bank_status, id, invalid, transfer_id};

/// `BalanceRequest` → the account asked for.
pub fn balance_request(r: &b::BalanceRequest) -> Result<AccountId, Status> {
    id("account_id", &r.account_id)
}

/// `SettleRequest` → the transfers to forget (each id checked; one bad id
/// refuses the whole request).
pub fn settle_request(r: &b::SettleRequest) -> Result<Vec<TransferId>, Status> {
    r.transfer_ids.iter().map(|raw| transfer_id(raw)).collect()
}

/// `GetTransferRequest` → the transfer asked for.
pub fn get_request(r: &b::GetTransferRequest) -> Result<TransferId, Status> {
    transfer_id(&r.transfer_id)
}

/// `OpenRequest` → domain.
pub fn open_request(r: &b::OpenRequest) -> Result<(AccountId, OpeningBalance), Status> {
    Ok((
        id("account_id", &r.account_id)?,
        OpeningBalance::new(r.opening_balance.into()).map_err(|e| invalid("opening_balance", e))?,
    ))
}

fn step_kind(kind: StepKind) -> b::StepKind {
    match kind {
        StepKind::Debit => b::StepKind::Debit,
        StepKind::Credit => b::StepKind::Credit,
        StepKind::Refund => b::StepKind::Refund,
    }
}

/// Domain → `ApplyStepRequest`.
pub fn step_to_wire(s: &AccountStep) -> b::ApplyStepRequest {
    b::ApplyStepRequest {
        transfer_id: s.transfer_id.to_string(),
        kind: step_kind(s.kind).into(),
        account_id: s.account.to_string(),
        amount: s.amount.minor_units(),
    }
}

/// `ApplyStepRequest` → domain.
pub fn step_from_wire(r: &b::ApplyStepRequest) -> Result<AccountStep, Status> {
    let kind = match b::StepKind::try_from(r.kind) {
        Ok(b::StepKind::Debit) => StepKind::Debit,
        Ok(b::StepKind::Credit) => StepKind::Credit,
        Ok(b::StepKind::Refund) => StepKind::Refund,
        Ok(b::StepKind::Unspecified) | Err(_) => return Err(invalid("kind", "unknown step kind")),
    };
    Ok(AccountStep {
        transfer_id: id("transfer_id", &r.transfer_id)?,
        kind,
        account: id("account_id", &r.account_id)?,
        amount: amount(r.amount)?,
    })
}

/// Domain → `TransferRequest`.
pub fn transfer_to_wire(r: &TransferRequest) -> b::TransferRequest {
    b::TransferRequest {
        transfer_id: r.transfer_id.to_string(),
        from: r.from.to_string(),
        to: r.to.to_string(),
        amount: r.amount.minor_units(),
    }
}

/// `TransferRequest` → domain. `from == to` is the domain's refusal.
pub fn transfer_from_wire(r: &b::TransferRequest) -> Result<TransferRequest, Status> {
    TransferRequest::new(
        id("transfer_id", &r.transfer_id)?,
        id("from", &r.from)?,
        id("to", &r.to)?,
        amount(r.amount)?,
    )
    .map_err(bank_status)
}

// ---- bank: answers --------------------------------------------------------

/// Domain → `Account`.
pub fn account_to_wire(v: &AccountView) -> b::Account {
    b::Account {
        account_id: v.account_id.to_string(),
        balance: v.balance.minor_units(),
    }
}

/// `Account` → domain.
pub fn account_from_wire(a: &b::Account) -> Result<AccountView, Status> {
    Ok(AccountView {
        account_id: id("account_id", &a.account_id)?,
        balance: balance("balance", a.balance)?,
    })
}

/// Domain → `StepResult`.
pub fn step_result_to_wire(r: StepResult) -> b::StepResult {
    use b::step_result::Result as R;
    b::StepResult {
        result: Some(match r {
            StepResult::Applied { balance_after } => {
                R::AppliedBalanceAfter(balance_after.minor_units())
            }
            StepResult::InsufficientFunds { balance } => {
                R::InsufficientFundsBalance(balance.minor_units())
            }
            StepResult::Overflow => R::Overflow(true),
        }),
    }
}

/// `StepResult` → domain.
pub fn step_result_from_wire(r: &b::StepResult) -> Result<StepResult, Status> {
    use b::step_result::Result as R;
    match r.result {
        Some(R::AppliedBalanceAfter(v)) => Ok(StepResult::Applied {
            balance_after: balance("balance_after", v)?,
        }),
        Some(R::InsufficientFundsBalance(v)) => Ok(StepResult::InsufficientFunds {
            balance: balance("balance", v)?,
        }),
        Some(R::Overflow(_)) => Ok(StepResult::Overflow),
        None => Err(invalid("result", "missing")),
    }
}

/// Domain → `Totals` (the i128 split in two halves).
pub fn totals_to_wire(t: AccountTotals) -> b::Totals {
    let total = t.total_balance.0;
    b::Totals {
        accounts: t.accounts,
        total_balance_high: (total >> 64) as i64,
        total_balance_low: total as u64,
    }
}

/// `Totals` → domain.
pub fn totals_from_wire(t: &b::Totals) -> AccountTotals {
    AccountTotals {
        accounts: t.accounts,
        total_balance: Total(
            (i128::from(t.total_balance_high) << 64) | i128::from(t.total_balance_low),
        ),
    }
}

fn status_to_wire(s: TransferStatus) -> b::TransferStatus {
    match s {
        TransferStatus::Pending => b::TransferStatus::Pending,
        TransferStatus::Committed => b::TransferStatus::Committed,
        TransferStatus::Rejected(RejectReason::InsufficientFunds) => {
            b::TransferStatus::RejectedInsufficientFunds
        }
        TransferStatus::Rejected(RejectReason::BalanceOverflow) => {
            b::TransferStatus::RejectedBalanceOverflow
        }
    }
}

/// Domain → `TransferRecord`.
pub fn record_to_wire(r: &TransferRecord) -> b::TransferRecord {
    b::TransferRecord {
        request: Some(transfer_to_wire(&r.request)),
        status: status_to_wire(r.status).into(),
    }
}

fn status_from_wire(status: i32) -> Result<TransferStatus, Status> {
    Ok(match b::TransferStatus::try_from(status) {
        Ok(b::TransferStatus::Pending) => TransferStatus::Pending,
        Ok(b::TransferStatus::Committed) => TransferStatus::Committed,
        Ok(b::TransferStatus::RejectedInsufficientFunds) => {
            TransferStatus::Rejected(RejectReason::InsufficientFunds)
        }
        Ok(b::TransferStatus::RejectedBalanceOverflow) => {
            TransferStatus::Rejected(RejectReason::BalanceOverflow)
        }
        Ok(b::TransferStatus::Unspecified) | Err(_) => {
            return Err(invalid("status", "unknown status"));
        }
    })
}

/// `TransferRecord` → domain.
pub fn record_from_wire(r: &b::TransferRecord) -> Result<TransferRecord, Status> {
    let request = transfer_from_wire(
        r.request
            .as_ref()
            .ok_or_else(|| invalid("request", "missing"))?,
    )?;
    Ok(TransferRecord {
        request,
        status: status_from_wire(r.status)?,
    })
}

/// A transfer's final status (`ApplyTransfer`'s answer) → wire.
pub fn outcome_status_to_wire(status: TransferStatus) -> b::TransferOutcome {
    b::TransferOutcome {
        status: status_to_wire(status).into(),
    }
}

/// `ApplyTransfer`'s answer → the transfer's final status.
pub fn outcome_status_from_wire(o: &b::TransferOutcome) -> Result<TransferStatus, Status> {
    status_from_wire(o.status)
}
