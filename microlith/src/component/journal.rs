//! One shard of the transfer journal: a [`TransferBook`] and its store.

use std::sync::Arc;

use parking_lot::Mutex;

use shared_domain::bank::{Begin, TransferBook, TransferRecord, TransferRequest, TransferStatus};
use shared_domain::error::BankResult;
use shared_domain::id::TransferId;
use store::{JournalChange, JournalStore, Typed};

use crate::runtime::{Actor, Reply, StartError};

use super::{Book, Home};

use super::{Batch, Outbox};

/// Messages of a journal shard.
pub enum JournalMsg {
    /// Begin a transfer or answer a repeat.
    Begin(TransferRequest, Reply<BankResult<Begin>>),
    /// Record a final status.
    Resolve(
        TransferId,
        TransferStatus,
        Reply<BankResult<TransferRecord>>,
    ),
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
    /// Where the shard's state lives.
    pub home: Home<TransferBook, JournalStore>,
    /// Called at the shard's first start with the records found pending
    /// (left by an earlier process), so their sagas are resumed.
    pub on_recover: Box<dyn Fn(Vec<TransferRecord>) + Send + Sync>,
    /// Set once `on_recover` has had the shard's first records. A restart
    /// of the actor does not call it again: every transfer pending then
    /// has a runner alive in this process (its caller's task, or the
    /// finisher of its orphan), and a second runner beside it would break
    /// the saga's one-runner rule (`bank::complete`).
    pub recovered: std::sync::atomic::AtomicBool,
    /// Settled records the shard keeps in memory with durable storage;
    /// the rest are read back from the store when asked for.
    pub keep_settled: usize,
}

/// The shard actor.
pub struct JournalShardActor {
    book: Book<TransferBook>,
    /// The durable store; `None` in memory mode.
    store: Option<JournalStore>,
    changes: Vec<JournalChange>,
    /// Settled transfers of the batch being gathered (their records may
    /// leave memory once the batch is durable).
    settling: Vec<TransferId>,
    /// Settled transfers whose records are durable now (the store's
    /// thread adds them; a leaf lock).
    durable: Arc<Mutex<Vec<TransferId>>>,
    replies: Outbox,
}

impl Actor for JournalShardActor {
    type Msg = JournalMsg;
    type Args = Arc<JournalShardArgs>;

    fn start(args: &Self::Args) -> Result<Self, StartError> {
        let keep = args.keep_settled;
        let (mut book, store) =
            Book::open(&args.home, |store: &JournalStore| store.load_bounded(keep))?;
        if !args
            .recovered
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            let pending: Vec<_> = book.lock().pending().cloned().collect();
            if !pending.is_empty() {
                (args.on_recover)(pending);
            }
        }
        Ok(Self {
            book,
            store,
            changes: Vec::new(),
            settling: Vec::new(),
            durable: Arc::default(),
            replies: Outbox::new(),
        })
    }

    fn handle(&mut self, msg: JournalMsg) {
        let durable = self.store.is_some();
        let mut book = self.book.lock();
        if let Some(store) = &self.store {
            let settled = std::mem::take(&mut *self.durable.lock());
            if !settled.is_empty() {
                book.settled_durable(settled);
            }
            // A record that left memory is read back before it is asked
            // about (a repeat, a lookup, a second resolve).
            let asked = match &msg {
                JournalMsg::Begin(request, _) => Some(&request.transfer_id),
                JournalMsg::Resolve(id, ..) | JournalMsg::Get(id, _) => Some(id),
                _ => None,
            };
            if let Some(id) = asked
                && !book.knows(id)
            {
                match store.get(id) {
                    Ok(Some(record)) => book.recall(record),
                    Ok(None) => {}
                    // Let it crash: the restart reads the store again.
                    Err(e) => panic!("journal store read failed: {e}"),
                }
            }
        }
        match msg {
            JournalMsg::Begin(request, reply) => {
                let res = book.begin(request);
                if durable && let Ok(Begin::Started(record)) = &res {
                    self.changes.push(JournalChange::Put(record.clone()));
                }
                self.replies
                    .send(self.changes.is_empty(), reply, res.map_err(Into::into));
            }
            JournalMsg::Resolve(id, status, reply) => {
                let res = book.resolve(&id, status).map(|(record, changed)| {
                    if durable && changed {
                        self.changes.push(JournalChange::Put(record.clone()));
                        if record.status != TransferStatus::Pending {
                            self.settling.push(id.clone());
                        }
                    }
                    record
                });
                self.replies
                    .send(self.changes.is_empty(), reply, res.map_err(Into::into));
            }
            JournalMsg::Abandon(id, reply) => {
                if book.abandon(&id) && durable {
                    self.changes.push(JournalChange::Remove(id));
                }
                self.replies.send(self.changes.is_empty(), reply, Ok(()));
            }
            JournalMsg::Get(id, reply) => {
                let res = book.get(&id).map_err(Into::into);
                self.replies.send(self.changes.is_empty(), reply, res);
            }
            JournalMsg::Pending(reply) => {
                let pending = book.pending().cloned().collect();
                self.replies
                    .send(self.changes.is_empty(), reply, Ok(pending));
            }
            JournalMsg::PendingCount(reply) => {
                let count = book.pending_count();
                self.replies.send(self.changes.is_empty(), reply, Ok(count));
            }
            JournalMsg::Crash => panic!("injected crash"),
        }
    }

    fn flush(&mut self) {
        let settled = std::mem::take(&mut self.settling);
        let durable = self.durable.clone();
        Batch {
            what: "journal",
            changes: &mut self.changes,
            store: self.store.as_ref(),
            replies: &mut self.replies,
        }
        .commit_then(move || {
            if !settled.is_empty() {
                durable.lock().extend(settled);
            }
        });
    }

    fn finish(&mut self) {
        self.flush();
        if let Some(store) = &self.store {
            let _ = store.barrier();
        }
    }
}
