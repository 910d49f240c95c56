//! One shard of the transfer journal: a [`TransferBook`] and its store.

use std::sync::Arc;

use shared_domain::bank::{Begin, TransferBook, TransferRecord, TransferRequest, TransferStatus};
use shared_domain::error::BankResult;
use shared_domain::id::TransferId;
use store::{JournalChange, JournalStore};

use crate::runtime::{Actor, Reply, StartError};

use super::{Outbox, commit_batch};

/// Messages of a journal shard.
pub enum JournalMsg {
    /// Begin a transfer or answer a repeat.
    Begin(TransferRequest, Reply<BankResult<Begin>>),
    /// Record a final status.
    Resolve(TransferId, TransferStatus, Reply<BankResult<TransferRecord>>),
    /// Forget a transfer refused before money moved.
    Abandon(TransferId, Reply<BankResult<()>>),
    /// Read one record.
    Get(TransferId, Reply<BankResult<TransferRecord>>),
    /// Every pending record.
    Pending(Reply<BankResult<Vec<TransferRecord>>>),
    /// How many are pending.
    PendingCount(Reply<BankResult<u64>>),
    /// Fault injection: panic inside the handler.
    Crash,
}

/// Arguments kept across restarts.
pub struct JournalShardArgs {
    /// The shard's store.
    pub store: JournalStore,
    /// Called at every (re)start with the records found pending, so their
    /// sagas are resumed.
    pub on_recover: Box<dyn Fn(Vec<TransferRecord>) + Send + Sync>,
}

/// The shard actor.
pub struct JournalShardActor {
    book: TransferBook,
    store: JournalStore,
    changes: Vec<JournalChange>,
    replies: Outbox,
}

impl Actor for JournalShardActor {
    type Msg = JournalMsg;
    type Args = Arc<JournalShardArgs>;

    fn start(args: &Self::Args) -> Result<Self, StartError> {
        let book = args.store.load().map_err(|e| StartError(e.to_string()))?;
        let pending: Vec<_> = book.pending().cloned().collect();
        if !pending.is_empty() {
            (args.on_recover)(pending);
        }
        Ok(Self {
            book,
            store: args.store.clone(),
            changes: Vec::new(),
            replies: Outbox::new(),
        })
    }

    fn handle(&mut self, msg: JournalMsg) {
        match msg {
            JournalMsg::Begin(request, reply) => {
                let res = self.book.begin(request);
                if let Ok(Begin::Started(record)) = &res {
                    self.changes.push(JournalChange::Put(record.clone()));
                }
                self.replies.send(self.changes.is_empty(), reply, res.map_err(Into::into));
            }
            JournalMsg::Resolve(id, status, reply) => {
                let res = self.book.resolve(&id, status).map(|(record, changed)| {
                    if changed {
                        self.changes.push(JournalChange::Put(record.clone()));
                    }
                    record
                });
                self.replies.send(self.changes.is_empty(), reply, res.map_err(Into::into));
            }
            JournalMsg::Abandon(id, reply) => {
                if self.book.abandon(&id) {
                    self.changes.push(JournalChange::Remove(id));
                }
                self.replies.send(self.changes.is_empty(), reply, Ok(()));
            }
            JournalMsg::Get(id, reply) => {
                let res = self.book.get(&id).map_err(Into::into);
                self.replies.send(self.changes.is_empty(), reply, res);
            }
            JournalMsg::Pending(reply) => {
                let pending = self.book.pending().cloned().collect();
                self.replies.send(self.changes.is_empty(), reply, Ok(pending));
            }
            JournalMsg::PendingCount(reply) => {
                let count = self.book.pending_count();
                self.replies.send(self.changes.is_empty(), reply, Ok(count));
            }
            JournalMsg::Crash => panic!("injected crash"),
        }
    }

    fn flush(&mut self) {
        let store = &self.store;
        commit_batch("journal", &mut self.changes, |c| store.persist(c), &mut self.replies);
    }
}
