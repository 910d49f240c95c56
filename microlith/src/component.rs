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
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};

/// What every component's calls need: a deadline.
#[derive(Debug, Clone, Copy)]
pub struct CallOptions {
    /// How long a caller waits for an actor's answer.
    pub timeout: Duration,
}

/// Replies of one batch. While the batch holds unpersisted changes a reply
/// waits for the flush (nothing is acknowledged before it is durable); a
/// reply that depends on no pending change goes out at once.
pub(crate) struct Outbox {
    deferred: Vec<Box<dyn FnOnce() + Send>>,
}

impl Outbox {
    pub(crate) fn new() -> Self {
        Self {
            deferred: Vec::new(),
        }
    }

    /// Sends now if `clean`, else after the next commit.
    pub(crate) fn send<T: Send + 'static>(
        &mut self,
        clean: bool,
        reply: crate::runtime::Reply<T>,
        value: T,
    ) {
        if clean {
            let _ = reply.send(value);
        } else {
            self.deferred.push(Box::new(move || {
                let _ = reply.send(value);
            }));
        }
    }

    /// Sends every deferred reply (after a successful commit).
    pub(crate) fn release(&mut self) {
        for send in self.deferred.drain(..) {
            send();
        }
    }
}

/// Commits a batch of changes, then releases the replies that waited for
/// it. Let it crash: if the store refuses, this panics, nothing of the batch
/// is acknowledged (the replies are dropped, callers get `Unavailable`) and
/// the restart reloads the last commit.
pub(crate) fn commit_batch<C, S>(
    what: &str,
    changes: &mut Vec<C>,
    store: Option<&S>,
    persist: impl FnOnce(&S, &[C]) -> Result<(), store::StoreError>,
    replies: &mut Outbox,
) {
    if let Some(store) = store
        && !changes.is_empty()
        && let Err(e) = persist(store, changes)
    {
        panic!("{what} store commit failed: {e}");
    }
    changes.clear();
    replies.release();
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
