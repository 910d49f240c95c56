//! The actor cell: one actor's state, shared by its task and its refs.
//!
//! An actor handles one message at a time, whoever runs the handler. Its
//! task handles queued messages; a caller that finds the actor idle with
//! nothing queued or in flight runs the handler itself, under the cell's
//! lock, and so skips two task wake-ups (the direct hand-off). Order is
//! kept: `in_flight` counts every message from before it is queued until it
//! is handled, and the hand-off happens only when it is zero while holding
//! the lock.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};

use super::actor::{Actor, Direct, FLUSH_EVERY};

/// A child's report to its supervisor that it failed.
#[derive(Debug)]
pub(crate) struct Failed {
    /// The child's id under its supervisor.
    pub(crate) child: u64,
}

/// How a cell tells its supervisor it failed.
pub(crate) struct ParentLink {
    failed: mpsc::UnboundedSender<Failed>,
    child: u64,
}

impl ParentLink {
    /// The link of child `child`, reporting on `failed`.
    pub(crate) fn new(failed: mpsc::UnboundedSender<Failed>, child: u64) -> Self {
        Self { failed, child }
    }

    /// The child's id under its supervisor.
    pub(crate) fn child(&self) -> u64 {
        self.child
    }

    pub(crate) fn report_failed(&self) {
        let _ = self.failed.send(Failed { child: self.child });
    }
}

struct Slot<A> {
    /// The running instance; `None` after a crash or while suspended, when
    /// every message is dropped (its caller gets `Unavailable` at once).
    actor: Option<A>,
    since_flush: usize,
}

/// How many times a caller retries the lock of a busy idle actor before it
/// queues its message (see [`Cell::try_direct`]).
const DIRECT_SPINS: u32 = 64;

/// One actor's state and lifecycle.
pub(crate) struct Cell<A: Actor> {
    slot: Mutex<Slot<A>>,
    pub(crate) in_flight: AtomicUsize,
    args: A::Args,
    link: ParentLink,
    generation: watch::Sender<u64>,
    pub(crate) name: Arc<str>,
}

impl<A: Actor> Cell<A> {
    pub(crate) fn new(
        args: A::Args,
        link: ParentLink,
        generation: watch::Sender<u64>,
        name: Arc<str>,
    ) -> Self {
        Self {
            slot: Mutex::new(Slot {
                actor: None,
                since_flush: 0,
            }),
            in_flight: AtomicUsize::new(0),
            args,
            link,
            generation,
            name,
        }
    }

    /// Starts an instance unless one runs; a failed start counts as a crash.
    pub(crate) fn start_instance(&self) {
        let mut slot = self.slot.lock();
        if slot.actor.is_some() {
            return;
        }
        match std::panic::catch_unwind(AssertUnwindSafe(|| A::start(&self.args))) {
            Ok(Ok(actor)) => slot.actor = Some(actor),
            Ok(Err(e)) => {
                tracing::error!(actor = %self.name, error = %e, "actor failed to start");
                self.link.report_failed();
            }
            Err(_) => {
                tracing::error!(actor = %self.name, "actor panicked while starting");
                self.link.report_failed();
            }
        }
    }

    /// Drops the instance (restart or suspend): unflushed work is lost and
    /// its callers get `Unavailable`, as when a process is killed.
    pub(crate) fn stop_instance(&self) {
        let mut slot = self.slot.lock();
        if slot.actor.take().is_some() {
            slot.since_flush = 0;
            self.generation.send_modify(|g| *g += 1);
        }
    }

    /// Finishes the current batch and drops the instance for good.
    pub(crate) fn flush_and_stop(&self) {
        let mut slot = self.slot.lock();
        if let Some(actor) = slot.actor.as_mut() {
            let _ = std::panic::catch_unwind(AssertUnwindSafe(|| actor.finish()));
        }
        if slot.actor.take().is_some() {
            self.generation.send_modify(|g| *g += 1);
        }
    }

    fn crashed(&self, slot: &mut Slot<A>) {
        slot.actor = None;
        slot.since_flush = 0;
        self.generation.send_modify(|g| *g += 1);
        tracing::warn!(actor = %self.name, "actor panicked");
        self.link.report_failed();
    }

    /// Handles one message under the lock, flushing when `flush` says so.
    fn handle_locked(&self, slot: &mut Slot<A>, msg: A::Msg, flush: bool) {
        let Some(actor) = slot.actor.as_mut() else {
            return; // crashed or suspended: dropping `msg` fails its caller
        };
        if super::actor::timing::handling(|| {
            std::panic::catch_unwind(AssertUnwindSafe(|| actor.handle(msg)))
        })
        .is_err()
        {
            self.crashed(slot);
            return;
        }
        slot.since_flush += 1;
        if flush || slot.since_flush >= FLUSH_EVERY {
            slot.since_flush = 0;
            let Some(actor) = slot.actor.as_mut() else {
                return;
            };
            if super::actor::timing::handling(|| {
                std::panic::catch_unwind(AssertUnwindSafe(|| actor.flush()))
            })
            .is_err()
            {
                self.crashed(slot);
            }
        }
    }

    /// The task's path: a message taken from the mailbox.
    pub(crate) fn handle_queued(&self, msg: A::Msg, mailbox_empty: bool) {
        let mut slot = self.slot.lock();
        self.handle_locked(&mut slot, msg, mailbox_empty);
        drop(slot);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// The caller's path: handles `msg` at once if the actor is idle with
    /// nothing queued, else gives it back to be queued.
    pub(crate) fn try_direct(&self, msg: A::Msg) -> Result<(), A::Msg> {
        if self.in_flight.load(Ordering::Acquire) != 0 {
            return Err(msg);
        }
        let mut slot = match self.slot.try_lock() {
            Some(slot) => slot,
            None => {
                // Another thread runs a handler directly. Handlers are
                // short, so waiting a moment for it beats queueing (two
                // task wake-ups); a bounded spin, so a long handler (a
                // durable commit) sends us to the queue instead.
                let mut spins = 0;
                loop {
                    if self.in_flight.load(Ordering::Acquire) != 0 || spins == DIRECT_SPINS {
                        return Err(msg);
                    }
                    std::hint::spin_loop();
                    spins += 1;
                    if let Some(slot) = self.slot.try_lock() {
                        break slot;
                    }
                }
            }
        };
        if self.in_flight.load(Ordering::Acquire) != 0 || slot.actor.is_none() {
            return Err(msg);
        }
        // A batch of one: nothing is queued behind it.
        self.handle_locked(&mut slot, msg, true);
        Ok(())
    }
}

impl<A: Actor> Direct<A::Msg> for Cell<A>
where
    A::Args: Send + Sync,
{
    fn try_direct(&self, msg: A::Msg) -> Result<(), A::Msg> {
        Cell::try_direct(self, msg)
    }
    fn enqueued(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }
    fn not_enqueued(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}
