//! Group commit: commits that arrive while a sync is in flight wait for
//! the next one and share it.
//!
//! One thread per database takes every commit waiting, in the order they
//! were handed over, applies them in one redb write transaction and syncs
//! it once, then tells each. No timer: a commit that finds the thread
//! idle goes at once, alone; a batch grows only with what arrived during
//! the previous sync (RocksDB's write groups, PostgreSQL's group commit
//! without `commit_delay`). The promise does not weaken: a commit is
//! reported done only once its own writes are synced, every commit's
//! writes are applied together or not at all (they share one
//! transaction), and commits are applied in the order they were handed
//! over.
//!
//! The caller does not wait: it hands its writes over with what to run
//! once they are synced ([`Done`]), so a component can hand over its
//! commit under its lock (fixing the order) and answer after releasing it
//! (letting the next caller in to join the same sync). A *barrier* is a
//! commit with no writes: it is done once everything handed over before
//! it is, which is how a read avoids answering with state not yet synced.
//!
//! Counted in the process's metrics: `store_commits_total` commits
//! synced in `store_syncs_total` transactions (their ratio is the mean
//! batch).
//!
//! Bounded: at most [`MAX_WAITING_WRITES`] writes wait; a commit that
//! would exceed it waits for room before it is queued (the callers slow
//! down to the disk's pace instead of growing memory). A batch takes at
//! most [`MAX_BATCH_WRITES`] writes. Once a transaction fails, every later
//! commit fails too, including those already queued: the callers' memory
//! is ahead of the store, and they must restart and reload it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;

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
    /// Test hook: the next transaction fails.
    #[cfg(test)]
    fail_next: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct State {
    queue: Vec<Pending>,
    queued_writes: usize,
    /// A batch is being applied (its commits are not yet done).
    busy: bool,
    /// Why the first failed transaction failed; every later commit fails.
    failed: Option<StoreError>,
    closing: bool,
}

struct Pending {
    namespace: Arc<str>,
    /// Empty for a barrier.
    writes: Vec<Write>,
    done: Done,
}

/// What runs once a commit is synced, or with why it was not: on the
/// committing thread, in hand-over order, or at once on the caller's
/// thread when there is nothing to wait for. It must be quick and must not
/// take a lock that is held while handing a commit over (that would wait
/// for the committing thread that runs it).
pub type Done = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// A [`Done`] that a caller blocks on, and its waiting end.
pub(crate) fn blocking() -> (Done, impl FnOnce() -> Result<(), StoreError>) {
    let (tx, rx) = sync_channel(1);
    let done: Done = Box::new(move |result| {
        let _ = tx.send(result);
    });
    let wait = move || {
        rx.recv()
            .unwrap_or_else(|_| Err(StoreError::Engine("the committing thread stopped".into())))
    };
    (done, wait)
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
            #[cfg(test)]
            fail_next: std::sync::atomic::AtomicBool::new(false),
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
    /// before (waiting for room if the queue is full); `done` runs once
    /// they are synced. No writes make a barrier.
    pub(crate) fn submit(&self, namespace: &Arc<str>, writes: Vec<Write>, done: Done) {
        let mut state = self.shared.state.lock();
        if writes.is_empty() && state.queue.is_empty() && !state.busy {
            // A barrier with nothing before it: done now.
            let result = state.failed.clone().map_or(Ok(()), Err);
            drop(state);
            return done(result);
        }
        while state.queued_writes > 0
            && state.queued_writes + writes.len() > MAX_WAITING_WRITES
            && !state.closing
        {
            self.shared.room.wait(&mut state);
        }
        if let Some(e) = state.failed.clone() {
            drop(state);
            return done(Err(e));
        }
        state.queued_writes += writes.len();
        state.queue.push(Pending {
            namespace: namespace.clone(),
            writes,
            done,
        });
        drop(state);
        self.shared.work.notify_one();
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
        let (batch, failed) = {
            let mut state = shared.state.lock();
            state.busy = false;
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
            state.busy = true;
            let batch: Vec<Pending> = state.queue.drain(..n).collect();
            shared.room.notify_all();
            (batch, state.failed.clone())
        };
        let result = match failed {
            // Queued before the failure, behind it: their callers' state
            // may depend on what failed.
            Some(e) => Err(e),
            // Only barriers: everything before them is done already.
            None if batch.iter().all(|p| p.writes.is_empty()) => Ok(()),
            None => {
                #[cfg(test)]
                let injected = shared.fail_next.swap(false, Ordering::SeqCst);
                #[cfg(not(test))]
                let injected = false;
                if injected {
                    Err(StoreError::Engine("injected failure".into()))
                } else {
                    apply(db, &batch)
                }
            }
        };
        match &result {
            Err(e) => {
                shared.state.lock().failed.get_or_insert_with(|| e.clone());
            }
            Ok(()) => {
                let commits = batch.iter().filter(|p| !p.writes.is_empty()).count() as u64;
                shared.commits.fetch_add(commits, Ordering::Relaxed);
                metrics::counter!("store_commits_total").increment(commits);
                if commits > 0 {
                    shared.syncs.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("store_syncs_total").increment(1);
                }
            }
        }
        for pending in batch {
            (pending.done)(result.clone());
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
        let waits: Vec<_> = (0..200)
            .map(|i| {
                let (done, wait) = blocking();
                group.submit(
                    &ns,
                    vec![put("k", &i.to_string()), put(&format!("k{i}"), "v")],
                    done,
                );
                wait
            })
            .collect();
        for wait in waits {
            wait().expect("synced");
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
    fn a_barrier_costs_no_transaction_and_is_done_after_every_commit_before_it() {
        let dir = test_dir();
        let db = Arc::new(redb::Database::create(dir.path().join("e.redb")).expect("create"));
        let group = GroupCommit::start(db).expect("start");
        let ns: Arc<str> = "n".into();
        let (done, wait) = blocking();
        group.submit(&ns, Vec::new(), done);
        wait().expect("nothing to wait for");
        assert_eq!(group.stats(), CommitStats::default());

        // Every commit's callback runs before the barrier's that followed.
        let order = Arc::new(Mutex::new(Vec::new()));
        for i in 0..50 {
            let order = order.clone();
            let writes = if i % 10 == 9 {
                Vec::new()
            } else {
                vec![put(&format!("k{i}"), "v")]
            };
            group.submit(
                &ns,
                writes,
                Box::new(move |result| {
                    result.expect("synced");
                    order.lock().push(i);
                }),
            );
        }
        let (done, wait) = blocking();
        group.submit(&ns, Vec::new(), done);
        wait().expect("barrier");
        assert_eq!(*order.lock(), (0..50).collect::<Vec<_>>());
        assert_eq!(group.stats().commits, 45);
    }

    #[test]
    fn after_a_failed_transaction_every_queued_and_later_commit_fails() {
        let dir = test_dir();
        let db = Arc::new(redb::Database::create(dir.path().join("f.redb")).expect("create"));
        let group = GroupCommit::start(db).expect("start");
        let ns: Arc<str> = "n".into();
        group.shared.fail_next.store(true, Ordering::SeqCst);
        // Handed over without waiting: the first fails alone or with
        // some of the rest; every one after it fails too.
        let waits: Vec<_> = (0..20)
            .map(|i| {
                let (done, wait) = blocking();
                group.submit(&ns, vec![put(&format!("k{i}"), "v")], done);
                wait
            })
            .collect();
        for wait in waits {
            assert!(wait().is_err(), "a commit at or after the failure fails");
        }
        let (barrier, barrier_wait) = blocking();
        group.submit(&ns, Vec::new(), barrier);
        assert!(barrier_wait().is_err(), "a barrier after the failure fails");
        assert_eq!(group.stats().commits, 0);
    }
}
