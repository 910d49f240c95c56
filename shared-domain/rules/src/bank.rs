//! The bank: accounts, transfers as an all-or-nothing saga, and the audit.
//!
//! # Layout
//! - [`account`]: an [`AccountBook`] of balances and idempotent transfer steps.
//! - [`transfer`]: the [`TransferBook`] journal keyed by `transfer_id`.
//! - [`fence`]: tombstones and deadlines, so a networked book can forget
//!   settled transfers without a delayed duplicate moving money twice.

pub mod account;
pub mod fence;
pub mod transfer;

pub use account::{AccountBook, AccountChange, AccountStep, AccountView, StepKind, StepResult};
pub use fence::{Stale, StepFence};
pub use transfer::{
    Begin, Committed, JournalChange, KEEP_SETTLED, RejectReason, Resolution, TransferBook,
    TransferRecord, TransferRequest, TransferStatus,
};

use crate::money::Total;

/// The answer of `GET /v1/audit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditView {
    /// How many accounts exist.
    pub accounts: u64,
    /// The exact sum of all balances.
    pub total_balance: Total,
    /// Transfers begun and not yet committed or rejected.
    pub pending_transfers: u64,
}

/// Account count and balance sum of one or more account books.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountTotals {
    /// How many accounts.
    pub accounts: u64,
    /// The exact sum of their balances.
    pub total_balance: Total,
}

impl AccountTotals {
    /// Adds another shard's totals.
    pub fn merge(self, other: AccountTotals) -> AccountTotals {
        AccountTotals {
            accounts: self.accounts + other.accounts,
            total_balance: Total(self.total_balance.0 + other.total_balance.0),
        }
    }
}
