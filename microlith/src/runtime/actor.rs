//! Actors: a state, a bounded mailbox, a synchronous handler.
//!
//! The handler is synchronous on purpose: like an Erlang `handle_call`, it
//! runs a domain transition and returns. Replies may be deferred to
//! [`Actor::flush`], which the runtime calls when the mailbox is momentarily
//! empty (or every [`FLUSH_EVERY`] messages), so a durable actor commits a
//! whole batch with one fsync before answering any of it (group commit).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use shared_domain::CallError;

/// Messages handled between two flushes at most.
pub const FLUSH_EVERY: usize = 64;

/// Why an actor could not (re)start, e.g. its store could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

/// An actor: state rebuilt by `start`, changed only by `handle`.
pub trait Actor: Send + Sized + 'static {
    /// What it receives.
    type Msg: Send + 'static;
    /// What it needs to (re)build its state; kept across restarts.
    type Args: Send + Sync + 'static;

    /// Builds the state, recovering it from storage after a crash.
    fn start(args: &Self::Args) -> Result<Self, StartError>;

    /// Handles one message. A panic here is contained: the actor instance
    /// is dropped, every pending caller gets an error, and the supervisor
    /// decides whether it restarts.
    fn handle(&mut self, msg: Self::Msg);

    /// Completes deferred work (persist, then reply). Called when the
    /// mailbox is empty or after [`FLUSH_EVERY`] messages.
    fn flush(&mut self) {}

    /// Completes everything before the actor stops for good (a graceful
    /// shutdown), including work `flush` may defer. Flushes by default.
    fn finish(&mut self) {
        self.flush();
    }
}

/// The reply port of a call. A call the edge times (a sampled request
/// under `--server-timing`) carries a stamp, and the reply notes on it how
/// long the handler that answered had been running (see [`timing`]).
pub struct Reply<T> {
    tx: oneshot::Sender<T>,
    stamp: Option<Arc<timing::Stamp>>,
}

impl<T> Reply<T> {
    /// A reply port and its receiving end, not timed.
    pub fn channel() -> (Self, oneshot::Receiver<T>) {
        let (tx, rx) = oneshot::channel();
        (Self { tx, stamp: None }, rx)
    }

    /// Answers the caller; `Err(value)` when the caller is gone.
    pub fn send(self, value: T) -> Result<(), T> {
        if let Some(stamp) = &self.stamp {
            stamp.replied();
        }
        self.tx.send(value)
    }
}

/// How long handlers take, for the calls a sampled request makes: the
/// split of an actor call into the handler's own time and the rest (the
/// mailbox, the wake-ups, a batch's commit the reply waited for).
///
/// A cell notes, in a thread-local, when the handler (or the flush) it is
/// running started; a reply sent from it reads that. The clock is read
/// only when timing is switched on (`set_enabled`), once per handled
/// message then.
pub mod timing {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    static ENABLED: AtomicBool = AtomicBool::new(false);

    thread_local! {
        static HANDLING_SINCE: Cell<Option<Instant>> = const { Cell::new(None) };
    }

    /// Switches the handlers' clock on or off for the whole process.
    pub fn set_enabled(on: bool) {
        ENABLED.store(on, Ordering::Relaxed);
    }

    /// Runs `f` (a handler or a flush) noting when it started, when
    /// timing is on.
    pub(crate) fn handling<R>(f: impl FnOnce() -> R) -> R {
        if !ENABLED.load(Ordering::Relaxed) {
            return f();
        }
        let outer = HANDLING_SINCE.with(|h| h.replace(Some(Instant::now())));
        let result = f();
        HANDLING_SINCE.with(|h| h.set(outer));
        result
    }

    /// Where a reply notes its handler's time.
    #[derive(Debug)]
    pub(crate) struct Stamp {
        handler_ns: AtomicU64,
    }

    impl Stamp {
        pub(crate) fn new() -> Self {
            Self {
                handler_ns: AtomicU64::new(u64::MAX),
            }
        }

        pub(crate) fn replied(&self) {
            if let Some(since) = HANDLING_SINCE.with(Cell::get) {
                let ns = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
                self.handler_ns.store(ns, Ordering::Release);
            }
        }

        /// The handler's time, if a handler replied.
        pub(crate) fn handler(&self) -> Option<Duration> {
            let ns = self.handler_ns.load(Ordering::Acquire);
            (ns != u64::MAX).then(|| Duration::from_nanos(ns))
        }
    }
}

/// A handle to an actor's mailbox. Cloning it is cheap; it stays valid
/// across restarts (the supervisor restarts the actor on the same mailbox).
pub struct ActorRef<M> {
    pub(crate) tx: mpsc::Sender<M>,
    pub(crate) generation: watch::Receiver<u64>,
    pub(crate) name: std::sync::Arc<str>,
    pub(crate) direct: std::sync::Arc<dyn Direct<M>>,
}

impl<M> Clone for ActorRef<M> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            generation: self.generation.clone(),
            name: self.name.clone(),
            direct: self.direct.clone(),
        }
    }
}

impl<M: Send + 'static> ActorRef<M> {
    /// The actor's name (for logs and metrics).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends a message without waiting. A full mailbox is `Overloaded`
    /// (load is shed, not queued without bound); a stopped actor is
    /// `Unavailable`.
    pub fn cast<E>(&self, msg: M) -> Result<(), CallError<E>> {
        self.direct.enqueued();
        self.tx.try_send(msg).map_err(|e| {
            self.direct.not_enqueued();
            match e {
                mpsc::error::TrySendError::Full(_) => CallError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => {
                    CallError::Unavailable(format!("{} is stopped", self.name))
                }
            }
        })
    }

    /// Sends a message without waiting, handling it at once in the
    /// caller's thread when the actor is idle with nothing queued (as
    /// [`ActorRef::call`] does), else queueing it like [`ActorRef::cast`].
    /// Either way it is handled after every message sent before it.
    pub fn tell<E>(&self, msg: M) -> Result<(), CallError<E>> {
        match self.direct.try_direct(msg) {
            Ok(()) => Ok(()),
            Err(msg) => self.cast(msg),
        }
    }

    /// Sends a request built around a reply port and waits for the answer
    /// until `timeout`. If the actor crashes while the call is queued or
    /// running, the reply port is dropped and the caller gets
    /// `Unavailable` at once, never a hang.
    ///
    /// When the actor is idle with nothing queued, the caller runs the
    /// handler itself (one at a time still holds: it takes the actor's
    /// lock), so an uncontended call costs no task wake-up at all.
    ///
    /// In a timed request (`edge::timing`) the call is the span
    /// `ask.<actor>`, with the handler's own time nested as
    /// `handle.<actor>`.
    pub async fn call<T, E>(
        &self,
        make: impl FnOnce(Reply<Result<T, CallError<E>>>) -> M,
        timeout: Duration,
    ) -> Result<T, CallError<E>> {
        let span = if edge::timing::collecting() {
            edge::timing::enter(&format!("ask.{}", self.name))
        } else {
            None
        };
        let Some(span) = span else {
            return self.call_untimed(make, None, timeout).await;
        };
        let stamp = Arc::new(timing::Stamp::new());
        let answer = self.call_untimed(make, Some(stamp.clone()), timeout).await;
        if let Some(handler) = stamp.handler() {
            span.adopt([edge::timing::Span {
                depth: 0,
                name: format!("handle.{}", self.name),
                duration: handler,
            }]);
        }
        answer
    }

    async fn call_untimed<T, E>(
        &self,
        make: impl FnOnce(Reply<Result<T, CallError<E>>>) -> M,
        stamp: Option<Arc<timing::Stamp>>,
        timeout: Duration,
    ) -> Result<T, CallError<E>> {
        let (tx, mut rx) = oneshot::channel();
        let reply = Reply { tx, stamp };
        if let Err(msg) = self.direct.try_direct(make(reply)) {
            self.cast(msg)?;
        }
        // Answered already (the direct hand-off, or a crash that dropped
        // the reply port): no timer needed.
        match rx.try_recv() {
            Ok(answer) => return answer,
            Err(oneshot::error::TryRecvError::Closed) => {
                return Err(CallError::Unavailable(format!(
                    "{} crashed before answering",
                    self.name
                )));
            }
            Err(oneshot::error::TryRecvError::Empty) => {}
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(CallError::Unavailable(format!(
                "{} crashed before answering",
                self.name
            ))),
            Err(_) => Err(CallError::DeadlineExceeded),
        }
    }

    /// Messages waiting in the mailbox.
    pub fn mailbox_depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// A monitor that fires when the current instance of the actor exits
    /// (crash, restart or stop).
    pub fn monitor(&self) -> Monitor {
        let mut generation = self.generation.clone();
        let seen = *generation.borrow_and_update();
        Monitor { generation, seen }
    }

    /// How many times the actor has (re)started.
    pub fn generation(&self) -> u64 {
        *self.generation.borrow()
    }
}

/// Fires when the monitored actor instance goes down.
pub struct Monitor {
    generation: watch::Receiver<u64>,
    seen: u64,
}

impl Monitor {
    /// Waits until the instance that was current when the monitor was made
    /// has exited.
    pub async fn down(mut self) {
        let seen = self.seen;
        // An error means the actor is gone for good: that is "down" too.
        let _ = self.generation.wait_for(|g| *g != seen).await;
    }
}

/// The part of a cell an `ActorRef` needs, without the actor's type.
pub(crate) trait Direct<M>: Send + Sync {
    /// Hands `msg` to the idle actor directly (`Cell::try_direct`).
    fn try_direct(&self, msg: M) -> Result<(), M>;
    /// Counts a message about to be queued.
    fn enqueued(&self);
    /// Uncounts a message that could not be queued.
    fn not_enqueued(&self);
}
