//! The positive payee cache, one implementation for every fabric.
//!
//! A transfer's saga first asks whether its payee exists. Accounts are
//! never deleted, so a `true` stays true forever: a cache of the accounts
//! seen to exist never goes stale, and saves the saga that hop. It is a
//! decorator over any [`AccountsService`], so the microlith (in front of
//! its account actors) and the microservices (in front of their gRPC
//! client, in the transfers service) run the same cache, and a reviewer can
//! see that neither fabric has it alone. A `false` is never cached: the
//! account may be opened a moment later.

use std::sync::RwLock;

use async_trait::async_trait;

use crate::FastSet;
use crate::bank::{
    AccountStep, AccountTotals, AccountView, Resolution, StepResult, TransferRequest,
};
use crate::error::BankResult;
use crate::id::AccountId;
use crate::money::OpeningBalance;
use crate::service::{AccountsService, exists_from_balance};

/// Lock stripes: two cores reading the set do not contend on one lock word.
const STRIPES: usize = 8;

/// An [`AccountsService`] that remembers which accounts exist.
pub struct KnownAccounts<A> {
    inner: A,
    known: [RwLock<FastSet<AccountId>>; STRIPES],
}

impl<A> KnownAccounts<A> {
    /// Caches `inner`'s positive existence answers.
    pub fn new(inner: A) -> Self {
        Self {
            inner,
            known: Default::default(),
        }
    }

    /// The service behind the cache.
    pub fn inner(&self) -> &A {
        &self.inner
    }

    fn stripe(&self, account: &AccountId) -> &RwLock<FastSet<AccountId>> {
        // FNV-1a over the id: cheap, and spreads ids like "a17" well.
        let hash = account
            .as_str()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
        &self.known[(hash % STRIPES as u64) as usize]
    }

    fn remember(&self, account: &AccountId) {
        // A poisoned stripe holds a consistent set (an insert either
        // happened or not), so keep using it.
        self.stripe(account)
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(account.clone());
    }

    /// Whether `account` is known to exist, without asking anyone.
    pub fn is_known(&self, account: &AccountId) -> bool {
        self.stripe(account)
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(account)
    }
}

#[async_trait]
impl<A: AccountsService> AccountsService for KnownAccounts<A> {
    async fn open(&self, account: AccountId, opening: OpeningBalance) -> BankResult<AccountView> {
        let view = self.inner.open(account, opening).await?;
        self.remember(&view.account_id);
        Ok(view)
    }
    async fn balance(&self, account: &AccountId) -> BankResult<AccountView> {
        let view = self.inner.balance(account).await?;
        self.remember(account);
        Ok(view)
    }
    async fn exists(&self, account: &AccountId) -> BankResult<bool> {
        if self.is_known(account) {
            return Ok(true);
        }
        // Through `balance`, not the inner `exists`: one definition of
        // "exists" whatever the inner service overrides.
        let exists = exists_from_balance(self.inner.balance(account).await)?;
        if exists {
            self.remember(account);
        }
        Ok(exists)
    }
    async fn apply_step(&self, step: AccountStep) -> BankResult<StepResult> {
        self.inner.apply_step(step).await
    }
    async fn apply_transfer(&self, request: &TransferRequest) -> BankResult<Option<Resolution>> {
        self.inner.apply_transfer(request).await
    }
    fn settled(&self, request: &TransferRequest) {
        self.inner.settled(request);
    }
    async fn totals(&self) -> BankResult<AccountTotals> {
        self.inner.totals().await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::executor::block_on;

    use super::*;
    use crate::local::LocalAccounts;

    /// Counts the balance reads that reach the service behind the cache.
    struct Counting {
        inner: LocalAccounts,
        reads: AtomicUsize,
    }

    #[async_trait]
    impl AccountsService for Counting {
        async fn open(
            &self,
            account: AccountId,
            opening: OpeningBalance,
        ) -> BankResult<AccountView> {
            self.inner.open(account, opening).await
        }
        async fn balance(&self, account: &AccountId) -> BankResult<AccountView> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            self.inner.balance(account).await
        }
        async fn apply_step(&self, step: AccountStep) -> BankResult<StepResult> {
            self.inner.apply_step(step).await
        }
        async fn totals(&self) -> BankResult<AccountTotals> {
            self.inner.totals().await
        }
    }

    fn id(s: &str) -> AccountId {
        AccountId::new(s).expect("valid id")
    }

    #[test]
    fn a_positive_answer_is_asked_once_and_a_negative_one_every_time() {
        let cache = KnownAccounts::new(Counting {
            inner: LocalAccounts::new(),
            reads: AtomicUsize::new(0),
        });
        block_on(async {
            assert_eq!(cache.exists(&id("late")).await, Ok(false));
            assert_eq!(cache.exists(&id("late")).await, Ok(false));
            assert_eq!(
                cache.inner().reads.load(Ordering::Relaxed),
                2,
                "a no is never cached"
            );
            // Opened by someone else (not through this cache): found once,
            // then remembered.
            cache
                .inner()
                .open(id("late"), OpeningBalance::new(5).expect("ok"))
                .await
                .expect("opened");
            assert_eq!(cache.exists(&id("late")).await, Ok(true));
            assert_eq!(cache.exists(&id("late")).await, Ok(true));
            assert_eq!(cache.inner().reads.load(Ordering::Relaxed), 3);
            // Opened through the cache: known without a read.
            cache
                .open(id("mine"), OpeningBalance::new(0).expect("ok"))
                .await
                .expect("opened");
            assert_eq!(cache.exists(&id("mine")).await, Ok(true));
            assert_eq!(cache.inner().reads.load(Ordering::Relaxed), 3);
        });
    }
}
