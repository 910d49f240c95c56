//! The components as actors. Each handler only calls the shared-domain
//! transition on its state, persists the change, and replies.
//!
//! # Layout
//! - [`account`]: `AccountShardActor`, one shard of the accounts.
//! - [`journal`]: `JournalShardActor`, one shard of the transfer journal.
//! - [`room`]: `RoomActor` (one per room) and `DirectoryActor`.

pub mod account;
pub mod journal;
pub mod room;

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use store::Done;

use parking_lot::{Mutex, MutexGuard};

/// What every component's calls need: a deadline.
#[derive(Debug, Clone, Copy)]
pub struct CallOptions {
    /// How long a caller waits for an actor's answer.
    pub timeout: Duration,
}

/// Replies of one batch. A reply that depends on a change not yet
/// durable, or on state that commits still in flight changed, waits for
/// them (nothing is acknowledged before it is durable); any other goes
/// out at once.
pub(crate) struct Outbox {
    deferred: Vec<Box<dyn FnOnce() + Send>>,
    /// This actor's commits handed over and not yet durable.
    in_flight: Arc<AtomicUsize>,
    /// A commit of this actor failed: its state is ahead of its store.
    failed: Arc<AtomicBool>,
}

impl Outbox {
    pub(crate) fn new() -> Self {
        Self {
            deferred: Vec::new(),
            in_flight: Arc::new(AtomicUsize::new(0)),
            failed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Sends now if `clean` (the batch holds no change) and nothing of
    /// this actor is still being committed, else once it is.
    pub(crate) fn send<T: Send + 'static>(
        &mut self,
        clean: bool,
        reply: crate::runtime::Reply<T>,
        value: T,
    ) {
        if clean && self.in_flight.load(Ordering::Acquire) == 0 && !self.failed() {
            let _ = reply.send(value);
        } else {
            self.deferred.push(Box::new(move || {
                let _ = reply.send(value);
            }));
        }
    }

    fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// What runs once the batch's commit is durable: `then`, and every
    /// reply deferred so far; or, if it failed, marks this actor failed
    /// and drops the replies (their callers get `Unavailable`).
    fn after_commit(&mut self, what: &'static str, then: impl FnOnce() + Send + 'static) -> Done {
        let deferred = std::mem::take(&mut self.deferred);
        let (in_flight, failed) = (self.in_flight.clone(), self.failed.clone());
        in_flight.fetch_add(1, Ordering::AcqRel);
        Box::new(move |result| {
            match result {
                Ok(()) => {
                    then();
                    for send in deferred {
                        send();
                    }
                }
                Err(e) => {
                    failed.store(true, Ordering::Release);
                    tracing::error!(actor = what, error = %e, "a commit failed; nothing of it is acknowledged");
                }
            }
            in_flight.fetch_sub(1, Ordering::AcqRel);
        })
    }
}

/// Hands a batch of changes to the store (or a barrier, if the batch
/// changed nothing but holds replies waiting for earlier commits) and
/// moves on: the store's committing thread runs `then` and releases the
/// replies once it is durable, while this actor handles its next batch,
/// whose commit may share the same sync. Let it crash: once a commit
/// failed, the next flush panics, so the restart reloads the store.
pub(crate) struct Batch<'a, C, S> {
    pub(crate) what: &'static str,
    pub(crate) changes: &'a mut Vec<C>,
    pub(crate) store: Option<&'a S>,
    pub(crate) replies: &'a mut Outbox,
}

impl<C, S: store::Typed<C>> Batch<'_, C, S> {
    /// Commits, then runs `then` once durable.
    pub(crate) fn commit_then(self, then: impl FnOnce() + Send + 'static) {
        let Batch {
            what,
            changes,
            store,
            replies,
        } = self;
        assert!(
            !replies.failed(),
            "{what} store commit failed; restarting to reload the store"
        );
        let Some(store) = store else {
            // Memory: nothing to wait for.
            changes.clear();
            then();
            for send in replies.deferred.drain(..) {
                send();
            }
            return;
        };
        if changes.is_empty() {
            if replies.deferred.is_empty() {
                // Nothing of this batch to wait for.
                then();
            } else {
                store.barrier_then(replies.after_commit(what, then));
            }
            return;
        }
        store.persist_then(changes, replies.after_commit(what, then));
        changes.clear();
    }

    /// Commits.
    pub(crate) fn commit(self) {
        self.commit_then(|| {});
    }
}

/// Where an actor's domain state lives across restarts.
pub enum Home<B, S> {
    /// A durable store: the state is rebuilt from it at every start, and a
    /// batch's changes are committed before any reply that depends on them.
    Durable(S),
    /// Memory outside the actor, so a restart finds the state again; no
    /// encoding and no copy (memory mode measures the fabric alone). A
    /// transition validates before it mutates, so a panic never leaves a
    /// half-applied change behind.
    Memory(Arc<Mutex<B>>),
}

/// An actor's handle on its state: owned (durable mode) or shared with its
/// [`Home`] (memory mode).
pub(crate) enum Book<B> {
    Owned(B),
    Shared(Arc<Mutex<B>>),
}

pub(crate) enum BookGuard<'a, B> {
    Owned(&'a mut B),
    Shared(MutexGuard<'a, B>),
}

impl<B> Book<B> {
    /// Loads the state from its home.
    pub(crate) fn open<S, E: std::fmt::Display>(
        home: &Home<B, S>,
        load: impl FnOnce(&S) -> Result<B, E>,
    ) -> Result<(Self, Option<S>), crate::runtime::StartError>
    where
        S: Clone,
    {
        match home {
            Home::Durable(store) => {
                let book = load(store).map_err(|e| crate::runtime::StartError(e.to_string()))?;
                Ok((Book::Owned(book), Some(store.clone())))
            }
            Home::Memory(cell) => Ok((Book::Shared(cell.clone()), None)),
        }
    }

    pub(crate) fn lock(&mut self) -> BookGuard<'_, B> {
        match self {
            Book::Owned(book) => BookGuard::Owned(book),
            Book::Shared(cell) => BookGuard::Shared(cell.lock()),
        }
    }
}

impl<B> Deref for BookGuard<'_, B> {
    type Target = B;
    fn deref(&self) -> &B {
        match self {
            BookGuard::Owned(b) => b,
            BookGuard::Shared(g) => g,
        }
    }
}

impl<B> DerefMut for BookGuard<'_, B> {
    fn deref_mut(&mut self) -> &mut B {
        match self {
            BookGuard::Owned(b) => b,
            BookGuard::Shared(g) => g,
        }
    }
}
