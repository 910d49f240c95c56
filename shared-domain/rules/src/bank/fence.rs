//! Keeping a networked account book bounded without letting a delayed
//! duplicate of a step move money twice.
//!
//! An account book remembers each step's result so that a retried step
//! replays instead of applying again. Once a transfer is settled (resolved
//! in the journal by its one saga runner, which sends none of its steps
//! again), only a *stale copy* of one of its steps can still arrive: a
//! retry's first attempt that sat in a socket buffer, or in a paused
//! process, while the second one was answered. In one process a FIFO
//! mailbox rules that out, so the microlith simply forgets. Over a network
//! it does not, so a book that forgets needs this fence:
//!
//! - every step carries the absolute deadline its sender gave it
//!   (`d = sent + budget`, `budget <= max_budget`), and a step past its
//!   deadline is refused, never applied;
//! - a settled transfer leaves a tombstone for `max_budget + max_skew`:
//!   a step of a tombstoned transfer is refused;
//! - so a stale copy (sent before the settlement at `z`, so `d < z +
//!   max_budget`) meets the tombstone while it lives, and its own expired
//!   deadline after that, even if the two processes' clocks differ by up to
//!   `max_skew`;
//! - a durable book persists each tombstone with the dropped records, in
//!   one commit, and a book reloaded after a crash restores the live ones
//!   ([`StepFence::restore`]), so a restart opens no gap.
//!
//! Memory stays bounded: the book holds unsettled transfers' records and
//! one tombstone per transfer settled in the last `max_budget + max_skew`.
//! All times are microseconds since the Unix epoch, passed in (no clock
//! here).

use std::collections::VecDeque;

use crate::FastSet;
use crate::id::TransferId;

/// Why a step was refused by the fence (it changes nothing; a live saga
/// retries it with a fresh deadline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Stale {
    /// The step came without the deadline its sender gave it.
    #[error("a step must carry its deadline")]
    NoDeadline,
    /// Its deadline has passed: it may be a stale copy.
    #[error("the step's deadline has passed")]
    PastDeadline,
    /// Its deadline is further away than the fence can cover: the caller's
    /// budget is longer than this book's `max_budget`.
    #[error("the step's deadline is further away than the longest budget allowed")]
    BudgetTooLong,
    /// Its transfer is settled: this is a stale copy.
    #[error("the step's transfer is settled")]
    Settled,
}

/// The fence: tombstones of recently settled transfers and the rules above.
#[derive(Debug, Clone)]
pub struct StepFence {
    max_budget_us: u64,
    max_skew_us: u64,
    tombstones: FastSet<TransferId>,
    /// Tombstones by expiry, oldest first (settlements come in time order).
    expiries: VecDeque<(u64, TransferId)>,
}

impl StepFence {
    /// A fence for steps whose budget is at most `max_budget_us`, between
    /// clocks at most `max_skew_us` apart.
    pub fn new(max_budget_us: u64, max_skew_us: u64) -> Self {
        Self {
            max_budget_us,
            max_skew_us,
            tombstones: FastSet::default(),
            expiries: VecDeque::new(),
        }
    }

    /// When a tombstone laid at `now_us` expires: the longest budget plus
    /// the clock skew later.
    pub fn expiry(&self, now_us: u64) -> u64 {
        now_us
            .saturating_add(self.max_budget_us)
            .saturating_add(self.max_skew_us)
    }

    /// Restores persisted tombstones (transfer, expiry), after a restart;
    /// expired ones are dropped at the next check.
    pub fn restore(&mut self, tombstones: impl IntoIterator<Item = (TransferId, u64)>) {
        let mut restored: Vec<(u64, TransferId)> = tombstones
            .into_iter()
            .map(|(id, until)| (until, id))
            .collect();
        restored.sort();
        for (until, id) in restored {
            if self.tombstones.insert(id.clone()) {
                self.expiries.push_back((until, id));
            }
        }
    }

    fn prune(&mut self, now_us: u64) {
        while let Some((expiry, _)) = self.expiries.front() {
            if *expiry > now_us {
                break;
            }
            if let Some((_, id)) = self.expiries.pop_front() {
                self.tombstones.remove(&id);
            }
        }
    }

    /// Whether a step of `transfer_id` with `deadline_us` may be applied
    /// at `now_us`.
    pub fn admit(
        &mut self,
        transfer_id: &TransferId,
        deadline_us: Option<u64>,
        now_us: u64,
    ) -> Result<(), Stale> {
        self.prune(now_us);
        let deadline = deadline_us.ok_or(Stale::NoDeadline)?;
        if deadline < now_us {
            return Err(Stale::PastDeadline);
        }
        if deadline
            > now_us
                .saturating_add(self.max_budget_us)
                .saturating_add(self.max_skew_us)
        {
            return Err(Stale::BudgetTooLong);
        }
        if self.tombstones.contains(transfer_id) {
            return Err(Stale::Settled);
        }
        Ok(())
    }

    /// Records that `transfer_id` settled at `now_us` (its step records
    /// are being dropped); its tombstone lasts until [`Self::expiry`].
    pub fn bury(&mut self, transfer_id: TransferId, now_us: u64) {
        self.prune(now_us);
        if self.tombstones.insert(transfer_id.clone()) {
            let expiry = self.expiry(now_us);
            self.expiries.push_back((expiry, transfer_id));
        }
    }

    /// Tombstones alive now.
    pub fn tombstones(&self) -> usize {
        self.tombstones.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tid(s: &str) -> TransferId {
        TransferId::new(s).expect("valid id")
    }

    const SECOND: u64 = 1_000_000;

    #[test]
    fn a_stale_copy_meets_the_tombstone_then_its_own_deadline() {
        // Budgets up to 1 s, clocks up to 2 s apart.
        let mut fence = StepFence::new(SECOND, 2 * SECOND);
        let t0 = 100 * SECOND;
        // A copy sent at t0 with a full budget; the transfer settles later.
        let deadline = t0 + SECOND;
        assert_eq!(fence.admit(&tid("t1"), Some(deadline), t0), Ok(()));
        fence.bury(tid("t1"), t0 + SECOND / 2);
        assert_eq!(fence.tombstones(), 1);
        // The stale copy arrives while its deadline has not passed.
        assert_eq!(
            fence.admit(&tid("t1"), Some(deadline), t0 + 3 * SECOND / 4),
            Err(Stale::Settled)
        );
        // Other transfers are not fenced.
        assert_eq!(
            fence.admit(&tid("t2"), Some(t0 + 3 * SECOND / 2), t0 + 3 * SECOND / 4),
            Ok(())
        );
        // The tombstone lives for the budget plus the skew after the
        // settlement: a receiver whose clock is up to 2 s behind the
        // sender's still meets it before the deadline passes on its clock.
        assert_eq!(
            fence.admit(
                &tid("t3"),
                Some(t0 + 4 * SECOND),
                t0 + SECOND / 2 + 3 * SECOND - 1
            ),
            Ok(())
        );
        assert_eq!(fence.tombstones(), 1);
        // Once the tombstone expires, the deadline has passed even for that
        // slow clock: refused either way, and the tombstone is gone.
        assert_eq!(
            fence.admit(&tid("t1"), Some(deadline), t0 + SECOND / 2 + 3 * SECOND),
            Err(Stale::PastDeadline)
        );
        assert_eq!(fence.tombstones(), 0, "memory is bounded by the horizon");
    }

    #[test]
    fn missing_or_overlong_deadlines_are_refused() {
        let mut fence = StepFence::new(SECOND, SECOND);
        let now = 50 * SECOND;
        assert_eq!(fence.admit(&tid("t"), None, now), Err(Stale::NoDeadline));
        assert_eq!(
            fence.admit(&tid("t"), Some(now + 3 * SECOND), now),
            Err(Stale::BudgetTooLong)
        );
        assert_eq!(
            fence.admit(&tid("t"), Some(now + 2 * SECOND), now),
            Ok(()),
            "a budget within the skew is allowed"
        );
    }

    #[test]
    fn restored_tombstones_refuse_as_before_and_expire_in_order() {
        let now = 10 * SECOND;
        let mut fence = StepFence::new(SECOND, 0);
        // Persisted in any order; one already expired.
        fence.restore([
            (tid("late"), now + SECOND),
            (tid("old"), now - 1),
            (tid("soon"), now + SECOND / 2),
        ]);
        assert_eq!(
            fence.admit(&tid("late"), Some(now + SECOND / 2), now),
            Err(Stale::Settled)
        );
        assert_eq!(
            fence.admit(&tid("soon"), Some(now + SECOND / 2), now),
            Err(Stale::Settled)
        );
        assert_eq!(
            fence.admit(&tid("old"), Some(now + SECOND / 2), now),
            Ok(()),
            "expired before the restart"
        );
        assert_eq!(fence.tombstones(), 2);
        assert_eq!(
            fence.admit(&tid("x"), Some(now + SECOND), now + 3 * SECOND / 4),
            Ok(())
        );
        assert_eq!(fence.tombstones(), 1, "the sooner one expired first");
    }
}
