//! A process whose store fails a commit cannot go on: its in-memory state
//! is ahead of its store (the domain's `Locked` already refuses every call
//! from then on). [`Fatal`] wraps the store so that such a failure also
//! raises [`Unfit`]: the process says it is not ready (NOT_SERVING to
//! gRPC health checks) and exits with an error, so whatever supervises
//! it (the launcher, the container engine, Kubernetes) restarts it and
//! the state reloads from the store.

use shared_domain::local::{Done, Persist, PersistError, Recall};
use tokio_util::sync::CancellationToken;

/// Raised once a commit failed.
#[derive(Clone, Debug, Default)]
pub struct Unfit(CancellationToken);

impl Unfit {
    /// Marks the process unfit (idempotent).
    pub fn raise(&self, why: &PersistError) {
        if !self.0.is_cancelled() {
            tracing::error!(error = %why, "a commit failed; this process stops so it is restarted");
        }
        self.0.cancel();
    }

    /// Whether a commit failed.
    pub fn is_raised(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Returns once a commit failed.
    pub async fn raised(&self) {
        self.0.cancelled().await;
    }
}

/// A store that raises [`Unfit`] when it cannot persist.
pub struct Fatal<P> {
    inner: P,
    unfit: Unfit,
}

impl<P> Fatal<P> {
    /// Wraps `inner`.
    pub fn new(inner: P, unfit: &Unfit) -> Self {
        Self {
            inner,
            unfit: unfit.clone(),
        }
    }
}

impl<P> Fatal<P> {
    /// `done`, raising [`Unfit`] first if the commit failed (whether or
    /// not anyone still waits for the answer).
    fn watching(&self, done: Done) -> Done {
        let unfit = self.unfit.clone();
        Box::new(move |result| {
            if let Err(e) = &result {
                unfit.raise(e);
            }
            done(result);
        })
    }
}

impl<C, P: Persist<C>> Persist<C> for Fatal<P> {
    fn keeps(&self) -> bool {
        self.inner.keeps()
    }

    fn persist_then(&self, changes: &[C], done: Done) {
        self.inner.persist_then(changes, self.watching(done));
    }

    fn barrier_then(&self, done: Done) {
        self.inner.barrier_then(self.watching(done));
    }
}

/// Reading back is not committing: a failed read is the caller's error
/// (nothing is ahead of the store), not a reason to stop.
impl<K, V, P: Recall<K, V>> Recall<K, V> for Fatal<P> {
    fn recall(&self, key: &K) -> Result<Option<V>, PersistError> {
        self.inner.recall(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails every commit holding a non-zero change.
    struct Failing;

    impl Persist<u32> for Failing {
        fn persist_then(&self, changes: &[u32], done: Done) {
            done(if changes.iter().all(|c| *c == 0) {
                Ok(())
            } else {
                Err(PersistError("disk full".into()))
            });
        }
        fn barrier_then(&self, done: Done) {
            done(Ok(()));
        }
    }

    fn outcome(store: &Fatal<Failing>, changes: &[u32]) -> Result<(), PersistError> {
        let (tx, rx) = std::sync::mpsc::channel();
        store.persist_then(
            changes,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv().expect("answered")
    }

    #[tokio::test]
    async fn a_failed_commit_raises_unfit_and_still_fails() {
        let unfit = Unfit::default();
        let store = Fatal::new(Failing, &unfit);
        assert!(outcome(&store, &[0]).is_ok());
        assert!(!unfit.is_raised(), "a good commit raises nothing");
        assert!(
            outcome(&store, &[0, 1]).is_err(),
            "the failure is not hidden"
        );
        assert!(unfit.is_raised());
        tokio::time::timeout(std::time::Duration::from_secs(1), unfit.raised())
            .await
            .expect("waiters hear it");
    }
}
