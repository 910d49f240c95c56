//! A process whose store fails a commit cannot go on: its in-memory state
//! is ahead of its store (the domain's `Locked` already refuses every call
//! from then on). [`Fatal`] wraps the store so that such a failure also
//! raises [`Unfit`]: the process says it is not ready (NOT_SERVING to
//! gRPC health checks) and exits with an error, so whatever supervises
//! it (the launcher, the container engine, Kubernetes) restarts it and
//! the state reloads from the store.

use shared_domain::local::{Persist, PersistError};
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

impl<C, P: Persist<C>> Persist<C> for Fatal<P> {
    fn persist(&self, change: &C) -> Result<(), PersistError> {
        self.inner
            .persist(change)
            .inspect_err(|e| self.unfit.raise(e))
    }

    fn persist_all(&self, changes: &[C]) -> Result<(), PersistError> {
        self.inner
            .persist_all(changes)
            .inspect_err(|e| self.unfit.raise(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Failing;

    impl Persist<u32> for Failing {
        fn persist(&self, change: &u32) -> Result<(), PersistError> {
            if *change == 0 {
                Ok(())
            } else {
                Err(PersistError("disk full".into()))
            }
        }
    }

    #[tokio::test]
    async fn a_failed_commit_raises_unfit_and_still_fails() {
        let unfit = Unfit::default();
        let store = Fatal::new(Failing, &unfit);
        assert!(store.persist(&0).is_ok());
        assert!(!unfit.is_raised(), "a good commit raises nothing");
        assert!(
            store.persist_all(&[0, 1]).is_err(),
            "the failure is not hidden"
        );
        assert!(unfit.is_raised());
        tokio::time::timeout(std::time::Duration::from_secs(1), unfit.raised())
            .await
            .expect("waiters hear it");
    }
}
