//! One shard of the accounts: an [`AccountBook`] and its store.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use shared_domain::bank::{
    AccountBook, AccountChange, AccountStep, AccountTotals, AccountView, StepResult,
};
use shared_domain::error::BankResult;
use shared_domain::id::{AccountId, TransferId};
use shared_domain::money::OpeningBalance;
use store::{AccountStore, Typed};

use crate::runtime::{Actor, Reply, StartError};

use super::{Book, Home};

use super::{Batch, Outbox};

/// Messages of an account shard.
pub enum AccountMsg {
    /// Open an account.
    Open(AccountId, OpeningBalance, Reply<BankResult<AccountView>>),
    /// Read a balance.
    Balance(AccountId, Reply<BankResult<AccountView>>),
    /// Apply a transfer step.
    Step(AccountStep, Reply<BankResult<StepResult>>),
    /// Count and sum the shard.
    Totals(Reply<BankResult<AccountTotals>>),
    /// Drop the step results of a settled transfer (no reply).
    Forget(TransferId),
    /// Fault injection: panic inside the handler.
    Crash,
}

/// Arguments kept across restarts.
pub struct AccountShardArgs {
    /// Where the shard's state lives.
    pub home: Home<AccountBook, AccountStore>,
    /// How many transfers have step results kept in the shard, refreshed
    /// by every step and forget (the `microlith_step_records` gauge).
    pub step_records: Arc<AtomicUsize>,
}

/// The shard actor.
pub struct AccountShardActor {
    book: Book<AccountBook>,
    /// The durable store; `None` in memory mode.
    store: Option<AccountStore>,
    changes: Vec<AccountChange>,
    /// Forgets not yet committed. No reply waits for them and losing them
    /// costs only memory, so they never cost a commit (a sync) of their
    /// own: they ride along with the next batch that commits anyway, or
    /// go alone once [`FORGETS_PER_COMMIT`] have gathered, or at shutdown.
    forgotten: Vec<AccountChange>,
    replies: Outbox,
    step_records: Arc<AtomicUsize>,
}

/// Forgets gathered before they are committed on their own.
const FORGETS_PER_COMMIT: usize = 1024;

impl Actor for AccountShardActor {
    type Msg = AccountMsg;
    type Args = Arc<AccountShardArgs>;

    fn start(args: &Self::Args) -> Result<Self, StartError> {
        let (mut book, store) = Book::open(&args.home, AccountStore::load)?;
        // What a (re)start found, so the gauge is right before any step.
        args.step_records
            .store(book.lock().step_records(), Ordering::Relaxed);
        Ok(Self {
            book,
            store,
            changes: Vec::new(),
            forgotten: Vec::new(),
            replies: Outbox::new(),
            step_records: args.step_records.clone(),
        })
    }

    fn handle(&mut self, msg: AccountMsg) {
        let durable = self.store.is_some();
        let mut book = self.book.lock();
        match msg {
            AccountMsg::Open(id, opening, reply) => {
                let view = AccountView {
                    account_id: id.clone(),
                    balance: opening.balance(),
                };
                let res = book.open(id, opening).map(|change| {
                    if durable {
                        self.changes.push(change);
                    }
                    view
                });
                self.replies
                    .send(self.changes.is_empty(), reply, res.map_err(Into::into));
            }
            AccountMsg::Balance(id, reply) => {
                let res = book.balance(&id).map_err(Into::into);
                self.replies.send(self.changes.is_empty(), reply, res);
            }
            AccountMsg::Step(step, reply) => {
                let res = book.apply(&step).map(|(result, change)| {
                    if durable {
                        self.changes.extend(change);
                    }
                    result
                });
                self.step_records
                    .store(book.step_records(), Ordering::Relaxed);
                self.replies
                    .send(self.changes.is_empty(), reply, res.map_err(Into::into));
            }
            AccountMsg::Totals(reply) => {
                let totals = book.totals();
                self.replies
                    .send(self.changes.is_empty(), reply, Ok(totals));
            }
            AccountMsg::Forget(transfer_id) => {
                if let Some(change) = book.forget(&transfer_id)
                    && durable
                {
                    self.forgotten.push(change);
                }
                self.step_records
                    .store(book.step_records(), Ordering::Relaxed);
            }
            AccountMsg::Crash => panic!("injected crash"),
        }
    }

    fn flush(&mut self) {
        if !self.changes.is_empty() || self.forgotten.len() >= FORGETS_PER_COMMIT {
            self.changes.append(&mut self.forgotten);
        }
        Batch {
            what: "account",
            changes: &mut self.changes,
            store: self.store.as_ref(),
            replies: &mut self.replies,
        }
        .commit();
    }

    fn finish(&mut self) {
        self.changes.append(&mut self.forgotten);
        self.flush();
        if let Some(store) = &self.store {
            let _ = store.barrier();
        }
    }
}
