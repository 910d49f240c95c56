//! The components as plain in-process state under one lock, implementing
//! the service traits. Each call runs the domain transition, hands the
//! change to a [`Persist`] (nothing, or the variant's store) and answers
//! only after that succeeded.
//!
//! They are the reference the property tests run against, and the core of
//! each microservice: its gRPC handlers convert and call these, so the
//! rules stay here and the service adds only the fabric.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use futures::StreamExt;
use futures::channel::mpsc;

use crate::FastMap;
use crate::bank::{
    AccountBook, AccountChange, AccountStep, AccountTotals, AccountView, AuditView, Begin,
    JournalChange, Resolution, StepResult, TransferBook, TransferRecord, TransferRequest,
    TransferStatus,
};
use crate::chat::{
    ChatMessage, HistoryQuery, PostOutcome, PostRequest, Room, RoomChange, RoomDirectory,
};
use crate::error::{BankResult, CallError, ChatError, ChatResult};
use crate::id::{AccountId, RoomName, TransferId};
use crate::money::OpeningBalance;
use crate::service::{
    AccountsService, LedgerService, Pause, RoomsService, Subscription, TransferJournal,
};

/// Makes changes durable before they are acknowledged.
pub trait Persist<C>: Send + Sync {
    /// Persists a change atomically, or says why not.
    fn persist(&self, change: &C) -> Result<(), PersistError>;
    /// Persists several changes made together. The default persists them
    /// one by one, in order; a store that can commit them in one
    /// transaction (one sync) overrides it.
    fn persist_all(&self, changes: &[C]) -> Result<(), PersistError> {
        changes.iter().try_for_each(|change| self.persist(change))
    }
}

/// A store refused a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not persist: {0}")]
pub struct PersistError(pub String);

impl<C, P: Persist<C>> Persist<C> for Option<P> {
    fn persist(&self, change: &C) -> Result<(), PersistError> {
        self.as_ref().map_or(Ok(()), |p| p.persist(change))
    }
    fn persist_all(&self, changes: &[C]) -> Result<(), PersistError> {
        self.as_ref().map_or(Ok(()), |p| p.persist_all(changes))
    }
}

/// Keeps nothing: state lives as long as the process.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPersist;

impl<C> Persist<C> for NoPersist {
    fn persist(&self, _change: &C) -> Result<(), PersistError> {
        Ok(())
    }
}

/// State under a lock, with its persister. If a change cannot be
/// persisted, the in-memory state is ahead of the store: the holder is
/// marked failed and answers `Unavailable` from then on, so nothing
/// unpersisted is ever acknowledged. Restarting the process reloads the
/// store: a microservice's process says NOT_SERVING and exits when it
/// happens, so it is restarted (`microservices`' `process::unfit`).
struct Locked<B, P> {
    state: Mutex<B>,
    persist: P,
    failed: AtomicBool,
}

impl<B, P> Locked<B, P> {
    fn new(state: B, persist: P) -> Self {
        Self {
            state: Mutex::new(state),
            persist,
            failed: AtomicBool::new(false),
        }
    }

    fn lock<E>(&self) -> Result<MutexGuard<'_, B>, CallError<E>> {
        if self.failed.load(Ordering::Acquire) {
            return Err(CallError::Unavailable(
                "state not persisted; restart to reload".into(),
            ));
        }
        // A panic while holding the lock leaves consistent state: every
        // transition validates before it mutates.
        Ok(self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Persists a change made under `_guard` (held, so the store sees
    /// changes in the order they were made).
    fn keep<C, E>(&self, guard: &MutexGuard<'_, B>, change: &C) -> Result<(), CallError<E>>
    where
        P: Persist<C>,
    {
        self.keep_all(guard, std::slice::from_ref(change))
    }

    /// Persists changes made together under `_guard`, as one commit where
    /// the store can.
    fn keep_all<C, E>(&self, _guard: &MutexGuard<'_, B>, changes: &[C]) -> Result<(), CallError<E>>
    where
        P: Persist<C>,
    {
        if changes.is_empty() {
            return Ok(());
        }
        self.persist.persist_all(changes).map_err(|e| {
            self.failed.store(true, Ordering::Release);
            tracing::error!(error = %e, "state is ahead of its store; refusing every call");
            CallError::Unavailable(e.to_string())
        })
    }
}

/// Accounts in one [`AccountBook`].
pub struct LocalAccounts<P = NoPersist> {
    inner: Locked<AccountBook, P>,
    /// Forgets of settled transfers not yet committed (taken only under
    /// the book's lock). No reply waits for them and losing them costs
    /// only memory after a restart, so they never cost a commit (a sync)
    /// of their own: they ride along with the next step that commits, or
    /// go alone once [`FORGETS_PER_COMMIT`] have gathered.
    forgotten: Mutex<Vec<AccountChange>>,
}

/// Forgets gathered before they are committed on their own.
const FORGETS_PER_COMMIT: usize = 1024;

impl LocalAccounts {
    /// No accounts, nothing persisted.
    pub fn new() -> Self {
        Self::restored(AccountBook::new(), NoPersist)
    }
}

impl Default for LocalAccounts {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Persist<AccountChange>> LocalAccounts<P> {
    /// Serves a book loaded from `persist`'s store.
    pub fn restored(book: AccountBook, persist: P) -> Self {
        Self {
            inner: Locked::new(book, persist),
            forgotten: Mutex::new(Vec::new()),
        }
    }

    /// `changes` after the forgets waiting for a commit.
    fn after_forgotten(
        &self,
        changes: impl IntoIterator<Item = AccountChange>,
    ) -> Vec<AccountChange> {
        let mut all =
            std::mem::take(&mut *self.forgotten.lock().unwrap_or_else(|p| p.into_inner()));
        all.extend(changes);
        all
    }
}

#[async_trait]
impl<P: Persist<AccountChange>> AccountsService for LocalAccounts<P> {
    async fn open(&self, account: AccountId, opening: OpeningBalance) -> BankResult<AccountView> {
        let mut book = self.inner.lock()?;
        let view = AccountView {
            account_id: account.clone(),
            balance: opening.balance(),
        };
        let change = book.open(account, opening)?;
        self.inner.keep(&book, &change)?;
        Ok(view)
    }
    async fn balance(&self, account: &AccountId) -> BankResult<AccountView> {
        Ok(self.inner.lock()?.balance(account)?)
    }
    async fn apply_step(&self, step: AccountStep) -> BankResult<StepResult> {
        let mut book = self.inner.lock()?;
        let (result, change) = book.apply(&step)?;
        if let Some(change) = change {
            self.inner
                .keep_all(&book, &self.after_forgotten([change]))?;
        }
        Ok(result)
    }
    /// Both accounts are in this one book, so every step of a transfer is
    /// applied under one lock and persisted in one commit.
    async fn apply_transfer(&self, request: &TransferRequest) -> BankResult<Option<Resolution>> {
        let mut book = self.inner.lock()?;
        let (resolution, changes) = book.apply_transfer(request);
        self.inner.keep_all(&book, &self.after_forgotten(changes))?;
        Ok(Some(resolution))
    }
    /// Called by a saga running in this process once it has its
    /// resolution: every step call it made has returned (no copy can
    /// still be on its way, as one can over a network), so the step
    /// results may go at once, without a fence.
    fn settled(&self, request: &TransferRequest) {
        let Ok(mut book) = self.inner.lock::<()>() else {
            return;
        };
        let Some(change) = book.forget(&request.transfer_id) else {
            return;
        };
        let batch = {
            let mut forgotten = self.forgotten.lock().unwrap_or_else(|p| p.into_inner());
            forgotten.push(change);
            (forgotten.len() >= FORGETS_PER_COMMIT).then(|| std::mem::take(&mut *forgotten))
        };
        if let Some(batch) = batch {
            // A failure marks the book failed and is logged there.
            let _ = self.inner.keep_all::<_, ()>(&book, &batch);
        }
    }
    async fn totals(&self) -> BankResult<AccountTotals> {
        Ok(self.inner.lock()?.totals())
    }
}

impl<P: Persist<AccountChange>> LocalAccounts<P> {
    /// Drops the step results of settled transfers and persists that with
    /// their tombstones, valid until `until_us`, in one commit
    /// ([`AccountBook::forget`]): for a caller that refuses stale copies of
    /// their steps through a [`crate::bank::StepFence`] holding the same
    /// tombstones, checked in the same order.
    pub fn settle(&self, transfer_ids: &[TransferId], until_us: u64) -> BankResult<()> {
        let mut book = self.inner.lock()?;
        let mut changes = Vec::with_capacity(transfer_ids.len() * 2);
        for id in transfer_ids {
            changes.extend(book.forget(id));
            changes.push(AccountChange::Tombstone {
                transfer_id: id.clone(),
                until_us,
            });
        }
        self.inner.keep_all(&book, &changes)
    }

    /// How many transfers have step results kept here.
    pub fn step_records(&self) -> usize {
        self.inner
            .lock::<()>()
            .map_or(0, |book| book.step_records())
    }
}

/// The journal in one [`TransferBook`].
pub struct LocalJournal<P = NoPersist> {
    inner: Locked<TransferBook, P>,
}

impl LocalJournal {
    /// An empty journal, nothing persisted.
    pub fn new() -> Self {
        Self::restored(TransferBook::new(), NoPersist)
    }
}

impl Default for LocalJournal {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Persist<JournalChange>> LocalJournal<P> {
    /// A copy of every record (to rebuild a read model from).
    pub fn records(&self) -> Vec<TransferRecord> {
        self.inner
            .lock::<()>()
            .map(|book| book.records().cloned().collect())
            .unwrap_or_default()
    }

    /// Serves a journal loaded from `persist`'s store.
    pub fn restored(book: TransferBook, persist: P) -> Self {
        Self {
            inner: Locked::new(book, persist),
        }
    }
}

#[async_trait]
impl<P: Persist<JournalChange>> TransferJournal for LocalJournal<P> {
    async fn begin(&self, request: TransferRequest) -> BankResult<Begin> {
        let mut book = self.inner.lock()?;
        let begin = book.begin(request)?;
        if let Begin::Started(record) = &begin {
            self.inner
                .keep(&book, &JournalChange::Put(record.clone()))?;
        }
        Ok(begin)
    }
    async fn resolve(&self, id: &TransferId, status: TransferStatus) -> BankResult<TransferRecord> {
        let mut book = self.inner.lock()?;
        let (record, changed) = book.resolve(id, status)?;
        if changed {
            self.inner
                .keep(&book, &JournalChange::Put(record.clone()))?;
        }
        Ok(record)
    }
    async fn abandon(&self, id: &TransferId) -> BankResult<()> {
        let mut book = self.inner.lock()?;
        if book.abandon(id) {
            self.inner.keep(&book, &JournalChange::Remove(id.clone()))?;
        }
        Ok(())
    }
    async fn get(&self, id: &TransferId) -> BankResult<TransferRecord> {
        Ok(self.inner.lock()?.get(id)?)
    }
    async fn pending(&self) -> BankResult<Vec<TransferRecord>> {
        Ok(self.inner.lock()?.pending().cloned().collect())
    }
    async fn pending_count(&self) -> BankResult<u64> {
        Ok(self.inner.lock()?.pending_count())
    }
}

type Subscribers = Vec<mpsc::Sender<ChatResult<ChatMessage>>>;

/// The chat's state: the directory and every room with its subscribers.
#[derive(Default)]
pub struct ChatState {
    directory: RoomDirectory,
    rooms: FastMap<RoomName, (Room, Subscribers)>,
}

impl ChatState {
    /// Rebuilds the state from a loaded directory and its rooms.
    pub fn restore(directory: RoomDirectory, rooms: impl IntoIterator<Item = Room>) -> Self {
        let rooms = rooms
            .into_iter()
            .map(|room| (room.name().clone(), (room, Vec::new())))
            .collect();
        Self { directory, rooms }
    }
}

/// Every room in one map; subscribers get bounded channels and are dropped
/// (their stream ends) when they fall `buffer` messages behind.
pub struct LocalRooms<P = NoPersist> {
    inner: Locked<ChatState, P>,
    buffer: usize,
    clock: Arc<dyn Fn() -> u64 + Send + Sync>,
}

impl LocalRooms {
    /// No rooms, nothing persisted; subscribers may fall `buffer` messages
    /// behind; messages are stamped by `clock` (µs since the epoch).
    pub fn new(buffer: usize, clock: Arc<dyn Fn() -> u64 + Send + Sync>) -> Self {
        Self::restored(ChatState::default(), NoPersist, buffer, clock)
    }
}

impl<P: Persist<RoomChange>> LocalRooms<P> {
    /// Serves rooms loaded from `persist`'s store.
    pub fn restored(
        state: ChatState,
        persist: P,
        buffer: usize,
        clock: Arc<dyn Fn() -> u64 + Send + Sync>,
    ) -> Self {
        Self {
            inner: Locked::new(state, persist),
            buffer,
            clock,
        }
    }
}

#[async_trait]
impl<P: Persist<RoomChange>> RoomsService for LocalRooms<P> {
    async fn create(&self, room: RoomName) -> ChatResult<()> {
        let mut state = self.inner.lock()?;
        state.directory.create(room.clone())?;
        state
            .rooms
            .insert(room.clone(), (Room::new(room.clone()), Vec::new()));
        self.inner.keep(&state, &RoomChange::Created(room))
    }

    async fn post(&self, request: PostRequest) -> ChatResult<PostOutcome> {
        let now = (self.clock)();
        let mut state = self.inner.lock()?;
        let (room, _) = state
            .rooms
            .get_mut(&request.room)
            .ok_or_else(|| ChatError::UnknownRoom(request.room.clone()))?;
        let (outcome, new) = room.post(request.author, request.text, request.client_msg_id, now)?;
        if let Some(message) = new {
            self.inner.keep(
                &state,
                &RoomChange::Posted(request.room.clone(), message.clone()),
            )?;
            if let Some((_, subscribers)) = state.rooms.get_mut(&request.room) {
                subscribers.retain_mut(|s| s.try_send(Ok(message.clone())).is_ok());
            }
        }
        Ok(outcome)
    }

    async fn history(&self, room: &RoomName, query: HistoryQuery) -> ChatResult<Vec<ChatMessage>> {
        let state = self.inner.lock()?;
        let (room, _) = state
            .rooms
            .get(room)
            .ok_or_else(|| ChatError::UnknownRoom(room.clone()))?;
        Ok(room.history(query).to_vec())
    }

    async fn subscribe(&self, room: &RoomName, after: u64) -> ChatResult<Subscription> {
        let mut state = self.inner.lock()?;
        let (room, subscribers) = state
            .rooms
            .get_mut(room)
            .ok_or_else(|| ChatError::UnknownRoom(room.clone()))?;
        let backlog: Vec<_> = room
            .history(HistoryQuery {
                after,
                limit: u32::MAX,
            })
            .iter()
            .cloned()
            .map(Ok)
            .collect();
        let (tx, rx) = mpsc::channel(self.buffer);
        subscribers.push(tx);
        Ok(futures::stream::iter(backlog).chain(rx).boxed())
    }
}

/// The audit over any accounts and journal: exact totals from the
/// accounts and the pending count from the journal, asked at once. The
/// in-process ledger of both single-process variants.
pub struct LocalLedger<A: ?Sized, J: ?Sized> {
    accounts: Arc<A>,
    journal: Arc<J>,
}

impl<A: ?Sized, J: ?Sized> LocalLedger<A, J> {
    /// The audit of `accounts` and `journal`.
    pub fn new(accounts: Arc<A>, journal: Arc<J>) -> Self {
        Self { accounts, journal }
    }
}

#[async_trait]
impl<A, J> LedgerService for LocalLedger<A, J>
where
    A: AccountsService + ?Sized,
    J: TransferJournal + ?Sized,
{
    async fn audit(&self) -> BankResult<AuditView> {
        let (totals, pending) =
            futures::join!(self.accounts.totals(), self.journal.pending_count());
        let totals = totals?;
        Ok(AuditView {
            accounts: totals.accounts,
            total_balance: totals.total_balance,
            pending_transfers: pending?,
        })
    }
}

/// A [`Pause`] that never waits and never stops: for tests whose faults
/// are finite.
pub struct NoPause;

#[async_trait]
impl Pause for NoPause {
    async fn pause(&self, _attempt: u32) -> bool {
        true
    }
}

/// A [`Pause`] that gives up after `max` attempts, for tests that need a
/// saga to stop part-way (as a crash would).
pub struct GiveUpAfter(pub u32);

#[async_trait]
impl Pause for GiveUpAfter {
    async fn pause(&self, attempt: u32) -> bool {
        attempt <= self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::TransferId;
    use crate::money::Amount;

    /// Records every commit.
    #[derive(Default)]
    struct Commits(Mutex<Vec<Vec<AccountChange>>>);

    impl Persist<AccountChange> for Arc<Commits> {
        fn persist(&self, change: &AccountChange) -> Result<(), PersistError> {
            self.persist_all(std::slice::from_ref(change))
        }
        fn persist_all(&self, changes: &[AccountChange]) -> Result<(), PersistError> {
            self.0.lock().expect("lock").push(changes.to_vec());
            Ok(())
        }
    }

    fn transfer(id: &str) -> TransferRequest {
        TransferRequest::new(
            TransferId::new(id).expect("id"),
            AccountId::new("a").expect("id"),
            AccountId::new("b").expect("id"),
            Amount::new(1.into()).expect("amount"),
        )
        .expect("request")
    }

    #[test]
    fn a_settled_transfer_is_forgotten_and_the_forget_rides_the_next_commit() {
        futures::executor::block_on(async {
            let commits = Arc::new(Commits::default());
            let accounts = LocalAccounts::restored(AccountBook::new(), commits.clone());
            for id in ["a", "b"] {
                let opening = OpeningBalance::new(10.into()).expect("opening");
                accounts
                    .open(AccountId::new(id).expect("id"), opening)
                    .await
                    .expect("open");
            }
            let (first, second) = (transfer("t1"), transfer("t2"));
            accounts.apply_transfer(&first).await.expect("applied");
            assert_eq!(accounts.step_records(), 1);
            let before = commits.0.lock().expect("lock").len();
            accounts.settled(&first);
            assert_eq!(accounts.step_records(), 0, "forgotten at once");
            assert_eq!(
                commits.0.lock().expect("lock").len(),
                before,
                "a forget costs no commit of its own"
            );
            accounts.apply_transfer(&second).await.expect("applied");
            let commits = commits.0.lock().expect("lock");
            let last = commits.last().expect("a commit");
            assert!(
                matches!(&last[0], AccountChange::Forget(id) if *id == first.transfer_id),
                "the forget goes first in the next commit: {last:?}"
            );
            assert_eq!(accounts.step_records(), 1);
        });
    }
}
