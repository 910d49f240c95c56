//! The components as actors. Each handler only calls the shared-domain
//! transition on its state, persists the change, and replies.
//!
//! # Layout
//! - [`account`]: `AccountShardActor`, one shard of the accounts.
//! - [`journal`]: `JournalShardActor`, one shard of the transfer journal.
//! - [`room`]: `RoomActor` (one per room) and `DirectoryActor`.
//! - [`session`]: one session actor per connected chat user.

pub mod account;
pub mod journal;
pub mod room;
pub mod session;

use std::time::Duration;

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
pub(crate) fn commit_batch<C>(
    what: &str,
    changes: &mut Vec<C>,
    persist: impl FnOnce(&[C]) -> Result<(), store::StoreError>,
    replies: &mut Outbox,
) {
    if !changes.is_empty() {
        if let Err(e) = persist(changes) {
            panic!("{what} store commit failed: {e}");
        }
        changes.clear();
    }
    replies.release();
}
