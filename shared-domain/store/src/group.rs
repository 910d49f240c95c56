//! Group commit: commits that arrive while a sync is in flight wait for
//! the next one and share it.
//!
//! One thread per database takes every commit waiting, in the order they
//! were handed over, applies them in one redb write transaction and syncs
//! it once, then answers each. No timer: a commit that finds the thread
//! idle goes at once, alone; a batch grows only with what arrived during
//! the previous sync (RocksDB's write groups, PostgreSQL's group commit
//! without `commit_delay`). The promise does not weaken: a commit returns
//! only once its own writes are synced, every commit's writes are applied
//! together or not at all (they share one transaction), and commits are
//! applied in the order they were handed over.
//!
//! Bounded: at most [`MAX_WAITING_WRITES`] writes wait; a commit that
//! would exceed it waits for room before it is queued (the callers slow
//! down to the disk's pace instead of growing memory). A batch takes at
//! most [`MAX_BATCH_WRITES`] writes. Once a transaction fails, every later
//! commit fails too: the callers' memory is ahead of the store, and they
//! must restart and reload it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use parking_lot::{Condvar, Mutex};
use redb::TableDefinition;

use crate::base::{StoreError, Write};

/// Writes waiting for a sync, at most; more wait for room.
pub const MAX_WAITING_WRITES: usize = 65_536;
/// Writes one transaction takes, at most (a commit is never split: one
/// larger than this goes alone).
pub const MAX_BATCH_WRITES: usize = 16_384;

/// The committing thread of one database and its queue.
pub(crate) struct GroupCommit {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when a commit is queued, or on close.
    work: Condvar,
    /// Signalled when queued writes leave the queue.
    room: Condvar,
    commits: AtomicU64,
    syncs: AtomicU64,
}

#[derive(Default)]
struct State {
    queue: Vec<Pending>,
    queued_writes: usize,
    /// Why the first failed transaction failed; every later commit fails.
    failed: Option<StoreError>,
    closing: bool,
}

struct Pending {
    namespace: Arc<str>,
    writes: Vec<Write>,
    done: SyncSender<Result<(), StoreError>>,
}

/// A commit handed over: [`Ticket::wait`] returns once it is synced.
#[must_use = "a commit is durable only once its ticket says so"]
pub(crate) struct Ticket(Option<Receiver<Result<(), StoreError>>>);

impl Ticket {
    /// Blocks until the commit is synced, or says why it was not.
    pub(crate) fn wait(self) -> Result<(), StoreError> {
        match self.0 {
            None => Ok(()),
            Some(rx) => rx.recv().unwrap_or_else(|_| {
                Err(StoreError::Engine("the committing thread stopped".into()))
            }),
        }
    }
}

/// How many commits were synced in how many transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommitStats {
    /// Commits synced.
    pub commits: u64,
    /// Transactions (syncs) they took.
    pub syncs: u64,
}

impl GroupCommit {
    /// Starts the committing thread of `db`.
    pub(crate) fn start(db: Arc<redb::Database>) -> Result<Self, StoreError> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            room: Condvar::new(),
            commits: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("store-commit".into())
                .spawn(move || run(&shared, &db))
                .map_err(|e| StoreError::Engine(format!("starting the committing thread: {e}")))?
        };
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Queues `writes` in `namespace` behind every commit handed over
    /// before (waiting for room if the queue is full).
    pub(crate) fn submit(&self, namespace: &Arc<str>, writes: Vec<Write>) -> Ticket {
        if writes.is_empty() {
            return Ticket(None);
        }
        let (done, rx) = sync_channel(1);
        let mut state = self.shared.state.lock();
        while state.queued_writes > 0
            && state.queued_writes + writes.len() > MAX_WAITING_WRITES
            && !state.closing
        {
            self.shared.room.wait(&mut state);
        }
        if let Some(e) = &state.failed {
            let _ = done.send(Err(e.clone()));
            return Ticket(Some(rx));
        }
        state.queued_writes += writes.len();
        state.queue.push(Pending {
            namespace: namespace.clone(),
            writes,
            done,
        });
        drop(state);
        self.shared.work.notify_one();
        Ticket(Some(rx))
    }

    /// Commits and syncs so far.
    pub(crate) fn stats(&self) -> CommitStats {
        CommitStats {
            commits: self.shared.commits.load(Ordering::Relaxed),
            syncs: self.shared.syncs.load(Ordering::Relaxed),
        }
    }
}

impl Drop for GroupCommit {
    /// Commits what is queued, then stops the thread.
    fn drop(&mut self) {
        self.shared.state.lock().closing = true;
        self.shared.work.notify_one();
        self.shared.room.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The committing thread: a batch of everything waiting, one transaction,
/// every waiter answered; until closed with nothing left.
fn run(shared: &Shared, db: &redb::Database) {
    loop {
        let batch = {
            let mut state = shared.state.lock();
            while state.queue.is_empty() && !state.closing {
                shared.work.wait(&mut state);
            }
            if state.queue.is_empty() {
                return;
            }
            let (mut n, mut writes) = (0, 0);
            for pending in &state.queue {
                if n > 0 && writes + pending.writes.len() > MAX_BATCH_WRITES {
                    break;
                }
                n += 1;
                writes += pending.writes.len();
            }
            state.queued_writes -= writes;
            let batch: Vec<Pending> = state.queue.drain(..n).collect();
            shared.room.notify_all();
            batch
        };
        let result = apply(db, &batch);
        if let Err(e) = &result {
            shared.state.lock().failed.get_or_insert_with(|| e.clone());
        } else {
            shared
                .commits
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            shared.syncs.fetch_add(1, Ordering::Relaxed);
        }
        for pending in batch {
            let _ = pending.done.send(result.clone());
        }
    }
}

/// Every commit of `batch`, in order, in one transaction: table `t` of
/// namespace `n` is `n/t`.
fn apply(db: &redb::Database, batch: &[Pending]) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    {
        // A batch usually touches a few tables; each is opened once.
        type Open<'t> = Vec<(
            &'t str,
            &'static str,
            redb::Table<'t, &'static [u8], &'static [u8]>,
        )>;
        let mut open: Open<'_> = Vec::new();
        for pending in batch {
            for write in &pending.writes {
                let namespace: &str = &pending.namespace;
                let found = open
                    .iter()
                    .position(|(n, t, _)| *t == write.table && *n == namespace);
                let idx = match found {
                    Some(i) => i,
                    None => {
                        let name = format!("{namespace}/{}", write.table);
                        let def: TableDefinition<&[u8], &[u8]> = TableDefinition::new(&name);
                        let table = txn.open_table(def)?;
                        open.push((namespace, write.table, table));
                        open.len() - 1
                    }
                };
                let table = &mut open[idx].2;
                match &write.value {
                    Some(value) => {
                        table.insert(write.key.as_slice(), value.as_slice())?;
                    }
                    None => {
                        table.remove(write.key.as_slice())?;
                    }
                }
            }
        }
    }
    txn.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::test_dir;
    use redb::{ReadableDatabase, ReadableTableMetadata};

    fn put(key: &str, value: &str) -> Write {
        Write {
            table: "t",
            key: key.as_bytes().to_vec(),
            value: Some(value.as_bytes().to_vec()),
        }
    }

    #[test]
    fn commits_apply_in_the_order_they_were_handed_over_across_batches() {
        let dir = test_dir();
        let db = Arc::new(redb::Database::create(dir.path().join("o.redb")).expect("create"));
        let group = GroupCommit::start(db).expect("start");
        let ns: Arc<str> = "n".into();
        // Handed over without waiting: the first goes alone, the rest
        // queue behind its sync and go together.
        let tickets: Vec<Ticket> = (0..200)
            .map(|i| {
                group.submit(
                    &ns,
                    vec![put("k", &i.to_string()), put(&format!("k{i}"), "v")],
                )
            })
            .collect();
        for ticket in tickets {
            ticket.wait().expect("synced");
        }
        let stats = group.stats();
        assert_eq!(stats.commits, 200);
        assert!(stats.syncs < 200, "{stats:?}");
        drop(group);
        let db = redb::Database::create(dir.path().join("o.redb")).expect("reopen");
        let txn = db.begin_read().expect("read");
        let def: TableDefinition<&[u8], &[u8]> = TableDefinition::new("n/t");
        let table = txn.open_table(def).expect("n/t");
        assert_eq!(table.len().expect("len"), 201);
        let last = table.get(b"k".as_slice()).expect("get").expect("k");
        assert_eq!(last.value(), b"199", "the last commit handed over wins");
    }

    #[test]
    fn an_empty_commit_costs_no_transaction() {
        let dir = test_dir();
        let db = Arc::new(redb::Database::create(dir.path().join("e.redb")).expect("create"));
        let group = GroupCommit::start(db).expect("start");
        let ns: Arc<str> = "n".into();
        group.submit(&ns, Vec::new()).wait().expect("nothing to do");
        assert_eq!(group.stats(), CommitStats::default());
    }
}
