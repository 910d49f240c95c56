//! Balances and the idempotent steps a transfer applies to them.
//!
//! A transfer touches an account through an [`AccountStep`] keyed by
//! `(transfer_id, kind)`. The book remembers each step's result, so a step
//! retried by any fabric (a timed-out call, a saga resumed after a crash)
//! returns the recorded result and never moves money twice.

use crate::FastMap;

use crate::error::BankError;
use crate::id::{AccountId, TransferId};
use crate::money::{Amount, Balance, OpeningBalance, Total};

use super::{AccountTotals, RejectReason, Resolution, TransferRequest, TransferStatus};

/// One account's public view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountView {
    /// The account.
    pub account_id: AccountId,
    /// Its balance.
    pub balance: Balance,
}

/// Which side of a transfer a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepKind {
    /// Take the amount from the payer.
    Debit,
    /// Give the amount to the payee.
    Credit,
    /// Give the amount back to the payer after a credit could not be made.
    Refund,
}

/// One step of a transfer on one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountStep {
    /// The transfer this step belongs to; with `kind`, the idempotency key.
    pub transfer_id: TransferId,
    /// Debit, credit or refund.
    pub kind: StepKind,
    /// The account it applies to.
    pub account: AccountId,
    /// How much.
    pub amount: Amount,
}

/// The recorded result of a step. `UnknownAccount` is never recorded: the
/// account may be opened later, so such a step is evaluated afresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepResult {
    /// Money moved; the balance right after.
    Applied {
        /// The balance after the step.
        balance_after: Balance,
    },
    /// A debit larger than the balance; nothing moved.
    InsufficientFunds {
        /// The balance when refused.
        balance: Balance,
    },
    /// A credit would pass `i64::MAX`; nothing moved.
    Overflow,
}

/// What a transition changed, for the store to persist atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountChange {
    /// An account's balance was written (opened, or moved by a step).
    Balance {
        /// The account.
        account: AccountId,
        /// Its balance after the change.
        balance: Balance,
        /// The step recorded, when the change came from a step.
        step: Option<(TransferId, StepKind, StepResult)>,
    },
    /// A settled transfer's step results were dropped ([`AccountBook::forget`]).
    Forget(TransferId),
    /// A settled transfer's tombstone ([`crate::bank::StepFence`]), kept
    /// until `until_us` (µs since the Unix epoch), so a book reloaded after
    /// a crash still refuses a delayed copy of its steps.
    Tombstone {
        /// The settled transfer.
        transfer_id: TransferId,
        /// When the tombstone expires.
        until_us: u64,
    },
}

/// The recorded results of one transfer's steps on one book, by kind.
#[derive(Debug, Default, Clone, Copy)]
struct StepResults([Option<StepResult>; 3]);

impl StepResults {
    fn slot(&mut self, kind: StepKind) -> &mut Option<StepResult> {
        &mut self.0[kind as usize]
    }
}

/// The balances of some accounts (one shard, or all of them) and the
/// results of every transfer step applied to them.
#[derive(Debug, Default, Clone)]
pub struct AccountBook {
    balances: FastMap<AccountId, Balance>,
    /// The results of the steps of unsettled transfers (and of settled ones
    /// whose fabric cannot tell, see [`AccountBook::forget`]).
    steps: FastMap<TransferId, StepResults>,
    total: Total,
}

impl AccountBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a book from persisted changes, in any order; the last
    /// balance per account wins, so give each account once.
    pub fn restore(
        balances: impl IntoIterator<Item = (AccountId, Balance)>,
        steps: impl IntoIterator<Item = ((TransferId, StepKind), StepResult)>,
    ) -> Self {
        let balances: FastMap<_, _> = balances.into_iter().collect();
        let total = balances.values().fold(Total::default(), |t, b| t.plus(*b));
        let mut book = Self {
            balances,
            steps: FastMap::default(),
            total,
        };
        for ((transfer_id, kind), result) in steps {
            *book.steps.entry(transfer_id).or_default().slot(kind) = Some(result);
        }
        book
    }

    /// Opens an account.
    pub fn open(
        &mut self,
        account: AccountId,
        opening: OpeningBalance,
    ) -> Result<AccountChange, BankError> {
        if self.balances.contains_key(&account) {
            return Err(BankError::AccountExists(account));
        }
        let balance = opening.balance();
        self.balances.insert(account.clone(), balance);
        self.total = self.total.plus(balance);
        Ok(AccountChange::Balance {
            account,
            balance,
            step: None,
        })
    }

    /// The balance of an account.
    pub fn balance(&self, account: &AccountId) -> Result<AccountView, BankError> {
        self.balances
            .get(account)
            .map(|balance| AccountView {
                account_id: account.clone(),
                balance: *balance,
            })
            .ok_or_else(|| BankError::UnknownAccount(account.clone()))
    }

    /// Whether an account exists.
    pub fn contains(&self, account: &AccountId) -> bool {
        self.balances.contains_key(account)
    }

    /// Applies a step once. A repeat of the same `(transfer_id, kind)`
    /// returns the recorded result and changes nothing (`None` change).
    pub fn apply(
        &mut self,
        step: &AccountStep,
    ) -> Result<(StepResult, Option<AccountChange>), BankError> {
        let recorded = self
            .steps
            .get(&step.transfer_id)
            .and_then(|r| r.0[step.kind as usize]);
        if let Some(recorded) = recorded {
            return Ok((recorded, None));
        }
        let Some(balance) = self.balances.get_mut(&step.account) else {
            return Err(BankError::UnknownAccount(step.account.clone()));
        };
        let before = *balance;
        let result = match step.kind {
            StepKind::Debit => match before.checked_debit(step.amount) {
                Some(after) => StepResult::Applied {
                    balance_after: after,
                },
                None => StepResult::InsufficientFunds { balance: before },
            },
            StepKind::Credit | StepKind::Refund => match before.checked_credit(step.amount) {
                Some(after) => StepResult::Applied {
                    balance_after: after,
                },
                None => StepResult::Overflow,
            },
        };
        if let StepResult::Applied { balance_after } = result {
            *balance = balance_after;
            self.total = Total(
                self.total.0 - i128::from(before.minor_units())
                    + i128::from(balance_after.minor_units()),
            );
        }
        let balance = *balance;
        *self
            .steps
            .entry(step.transfer_id.clone())
            .or_default()
            .slot(step.kind) = Some(result);
        Ok((
            result,
            Some(AccountChange::Balance {
                account: step.account.clone(),
                balance,
                step: Some((step.transfer_id.clone(), step.kind, result)),
            }),
        ))
    }

    /// Applies every step of a transfer whose two accounts are both in
    /// this book, at once: the same steps, checks and order as the saga
    /// runs one call at a time ([`crate::saga::run_saga`]): the payee must
    /// exist, then the debit, then the credit, and a refund if the credit
    /// cannot be made. Each step is recorded under its `(transfer_id,
    /// kind)` as [`Self::apply`] records it, so a repeat (a retried call,
    /// or a saga resumed one step at a time after a crash) replays the
    /// recorded results and moves no money twice. Returns the resolution
    /// and the changes to persist together.
    pub fn apply_transfer(
        &mut self,
        request: &TransferRequest,
    ) -> (Resolution, Vec<AccountChange>) {
        let mut changes = Vec::new();
        if !self.contains(&request.to) {
            return (
                Resolution::Abandon(BankError::UnknownAccount(request.to.clone())),
                changes,
            );
        }
        let step = |kind, account: &AccountId| AccountStep {
            transfer_id: request.transfer_id.clone(),
            kind,
            account: account.clone(),
            amount: request.amount,
        };
        let mut apply = |book: &mut Self, step: AccountStep| {
            book.apply(&step).map(|(result, change)| {
                changes.extend(change);
                result
            })
        };
        let resolution = match apply(self, step(StepKind::Debit, &request.from)) {
            Err(e) => Resolution::Abandon(e),
            Ok(StepResult::InsufficientFunds { .. }) => {
                Resolution::Resolved(TransferStatus::Rejected(RejectReason::InsufficientFunds))
            }
            Ok(StepResult::Overflow | StepResult::Applied { .. }) => {
                match apply(self, step(StepKind::Credit, &request.to)) {
                    Ok(StepResult::Applied { .. }) => {
                        Resolution::Resolved(TransferStatus::Committed)
                    }
                    // The payee's balance would overflow: give the money
                    // back (it cannot overflow; the payer held it a moment
                    // ago, and the payer exists, it was just debited).
                    Ok(StepResult::Overflow | StepResult::InsufficientFunds { .. }) | Err(_) => {
                        let _ = apply(self, step(StepKind::Refund, &request.from));
                        Resolution::Resolved(TransferStatus::Rejected(
                            RejectReason::BalanceOverflow,
                        ))
                    }
                }
            }
        };
        (resolution, changes)
    }

    /// Drops the step results of a settled transfer: resolved in the
    /// journal by the one saga runner it had, which will send it no step
    /// again. Only a fabric that also guarantees no stale copy of an
    /// earlier step can still arrive may call this (an actor's FIFO
    /// mailbox does; a network that may deliver a delayed duplicate does
    /// not): a step applied after its record is gone would move money
    /// twice. The change is `None` when nothing was recorded.
    pub fn forget(&mut self, transfer_id: &TransferId) -> Option<AccountChange> {
        self.steps
            .remove(transfer_id)
            .map(|_| AccountChange::Forget(transfer_id.clone()))
    }

    /// How many accounts and the exact sum of their balances.
    pub fn totals(&self) -> AccountTotals {
        AccountTotals {
            accounts: self.balances.len() as u64,
            total_balance: self.total,
        }
    }

    /// How many transfers have step results kept here: the unsettled ones
    /// (and settled ones whose fabric keeps them, see [`Self::forget`]).
    pub fn step_records(&self) -> usize {
        self.steps.len()
    }

    /// How many step results are remembered (they are the proof that a
    /// retried step must not move money again, so they are kept).
    pub fn remembered_steps(&self) -> usize {
        self.steps
            .values()
            .map(|r| r.0.iter().flatten().count())
            .sum()
    }
}

#[cfg(test)]
mod tests;
