//! The components as plain in-process state under one lock, implementing
//! the service traits. Each call runs the domain transition, hands the
//! change to a [`Persist`] (nothing, or the variant's store) and answers
//! only after that succeeded.
//!
//! They are the reference the property tests run against, and the core of
//! each microservice: its gRPC handlers convert and call these, so the
//! rules stay here and the service adds only the fabric.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use async_trait::async_trait;
use futures::StreamExt;
use futures::channel::{mpsc, oneshot};

use crate::FastMap;
use crate::bank::{
    AccountBook, AccountChange, AccountStep, AccountTotals, AccountView, AuditView, Begin,
    Committed, JournalChange, Resolution, StepResult, TransferBook, TransferRecord,
    TransferRequest, TransferStatus,
};
use crate::chat::{
    ChatMessage, HistoryQuery, PostOutcome, PostRequest, Room, RoomChange, RoomDirectory,
};
use crate::error::{BankResult, CallError, ChatError, ChatResult};
use crate::id::{AccountId, ClientMsgId, RoomName, TransferId, UserId};
use crate::limits::SUBSCRIBE_BACKLOG;
use crate::money::OpeningBalance;
use crate::service::{
    AccountsService, LedgerService, Pause, RoomsService, Subscription, TransferJournal,
};

/// What runs once changes are durable, or with why they could not be
/// made so. It may run before `persist_then` returns, or on the store's
/// own thread: it must be quick and must not take a lock that is held
/// while handing changes over.
pub type Done = Box<dyn FnOnce(Result<(), PersistError>) + Send>;

/// Makes changes durable before they are acknowledged.
///
/// A component hands its changes over while it holds its state's lock
/// (so the store applies them in the order they were made) and waits for
/// them after releasing it (so the next caller's changes can join the
/// same sync: group commit).
pub trait Persist<C>: Send + Sync {
    /// Whether anything is kept. `false` ([`NoPersist`], `None`): every
    /// answer goes out at once, with nothing handed over.
    fn keeps(&self) -> bool {
        true
    }
    /// Hands `changes` over, to be made durable together after every
    /// change handed over before; `done` runs once they are.
    fn persist_then(&self, changes: &[C], done: Done);
    /// `done` runs once every change handed over before is durable: for
    /// an answer that read state without changing it.
    fn barrier_then(&self, done: Done);
}

/// A store refused a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not persist: {0}")]
pub struct PersistError(pub String);

impl<C, P: Persist<C>> Persist<C> for Option<P> {
    fn keeps(&self) -> bool {
        self.as_ref().is_some_and(P::keeps)
    }
    fn persist_then(&self, changes: &[C], done: Done) {
        match self {
            Some(p) => p.persist_then(changes, done),
            None => done(Ok(())),
        }
    }
    fn barrier_then(&self, done: Done) {
        match self {
            Some(p) => p.barrier_then(done),
            None => done(Ok(())),
        }
    }
}

/// Keeps nothing: state lives as long as the process.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPersist;

impl<C> Persist<C> for NoPersist {
    fn keeps(&self) -> bool {
        false
    }
    fn persist_then(&self, _changes: &[C], done: Done) {
        done(Ok(()));
    }
    fn barrier_then(&self, done: Done) {
        done(Ok(()));
    }
}

/// Reads back a durable record that memory let go (a bounded book's).
pub trait Recall<K, V>: Send + Sync {
    /// The durable record at `key`, if any.
    fn recall(&self, key: &K) -> Result<Option<V>, PersistError>;
}

impl<K, V, R: Recall<K, V>> Recall<K, V> for Option<R> {
    fn recall(&self, key: &K) -> Result<Option<V>, PersistError> {
        self.as_ref().map_or(Ok(None), |r| r.recall(key))
    }
}

impl<K, V> Recall<K, V> for NoPersist {
    fn recall(&self, _key: &K) -> Result<Option<V>, PersistError> {
        Ok(None)
    }
}

/// What an answer waits for once the lock is released: the changes it
/// made, or (for an answer that changed nothing) everything it may have
/// read, to be durable.
#[must_use = "an answer may go out only once what it depends on is durable"]
pub(crate) enum Durable {
    /// Nothing to wait for (nothing is kept).
    Now,
    /// The store says when.
    Later(oneshot::Receiver<Result<(), PersistError>>),
}

impl Durable {
    /// Waits; a failed commit is `Unavailable` (nothing acknowledged).
    pub(crate) async fn wait<E>(self) -> Result<(), CallError<E>> {
        match self {
            Durable::Now => Ok(()),
            Durable::Later(rx) => match rx.await {
                Ok(result) => result.map_err(|e| CallError::Unavailable(e.to_string())),
                Err(oneshot::Canceled) => Err(CallError::Unavailable(
                    "the store stopped before syncing".into(),
                )),
            },
        }
    }
}

/// State under a lock, with its persister. Every call runs its transition
/// under the lock and hands the changes over there; its answer goes out
/// once they are durable, after the lock is released. If a change cannot
/// be persisted, the in-memory state is ahead of the store: the holder is
/// marked failed (by the store's report, whether or not anyone still
/// waits for it) and answers `Unavailable` from then on, so nothing
/// unpersisted is ever acknowledged. Restarting the process reloads the
/// store: a microservice's process says NOT_SERVING and exits when it
/// happens, so it is restarted (`microservices`' `process::unfit`).
struct Locked<B, C, P> {
    state: Mutex<B>,
    persist: P,
    failed: Arc<AtomicBool>,
    _changes: std::marker::PhantomData<fn(C)>,
}

impl<B, C, P: Persist<C>> Locked<B, C, P> {
    fn new(state: B, persist: P) -> Self {
        Self {
            state: Mutex::new(state),
            persist,
            failed: Arc::new(AtomicBool::new(false)),
            _changes: std::marker::PhantomData,
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

    /// Runs `f` on the state under the lock, handing over the changes it
    /// pushed; its answer goes out once they (or, if it pushed none,
    /// everything handed over before) are durable.
    async fn call<T, E>(
        &self,
        f: impl FnOnce(&mut B, &mut Vec<C>) -> Result<T, CallError<E>>,
    ) -> Result<T, CallError<E>> {
        let (answer, durable) = {
            let mut state = self.lock()?;
            let mut changes = Vec::new();
            let answer = f(&mut state, &mut changes);
            (answer, self.keep_all(&state, &changes))
        };
        durable.wait().await?;
        answer
    }

    /// Hands changes made under `_guard` over (held, so the store sees
    /// changes in the order they were made), or a barrier when there are
    /// none.
    fn keep_all(&self, guard: &MutexGuard<'_, B>, changes: &[C]) -> Durable {
        self.keep_all_then(guard, changes, || {})
    }

    /// [`Locked::keep_all`], running `then` once the changes are durable
    /// (on the store's thread, in hand-over order: quick, and no lock held
    /// while handing changes over; at once, under the caller's lock, when
    /// nothing is kept).
    fn keep_all_then(
        &self,
        _guard: &MutexGuard<'_, B>,
        changes: &[C],
        then: impl FnOnce() + Send + 'static,
    ) -> Durable {
        if !self.persist.keeps() {
            then();
            return Durable::Now;
        }
        let (tx, rx) = oneshot::channel();
        let failed = self.failed.clone();
        let done: Done = Box::new(move |result| {
            if result.is_ok() {
                then();
            }
            if let Err(e) = &result
                && !failed.swap(true, Ordering::AcqRel)
            {
                tracing::error!(error = %e, "state is ahead of its store; refusing every call");
            }
            let _ = tx.send(result);
        });
        if changes.is_empty() {
            self.persist.barrier_then(done);
        } else {
            self.persist.persist_then(changes, done);
        }
        Durable::Later(rx)
    }
}

/// Accounts in one [`AccountBook`].
pub struct LocalAccounts<P = NoPersist> {
    inner: Locked<AccountBook, AccountChange, P>,
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

    /// Moves the forgets waiting for a commit into `changes`, ahead of a
    /// change that commits anyway.
    fn take_forgotten(&self, changes: &mut Vec<AccountChange>) {
        changes.append(&mut self.forgotten.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

#[async_trait]
impl<P: Persist<AccountChange>> AccountsService for LocalAccounts<P> {
    async fn open(&self, account: AccountId, opening: OpeningBalance) -> BankResult<AccountView> {
        self.inner
            .call(|book, changes| {
                let view = AccountView {
                    account_id: account.clone(),
                    balance: opening.balance(),
                };
                changes.push(book.open(account, opening)?);
                Ok(view)
            })
            .await
    }
    async fn balance(&self, account: &AccountId) -> BankResult<AccountView> {
        self.inner.call(|book, _| Ok(book.balance(account)?)).await
    }
    async fn apply_step(&self, step: AccountStep) -> BankResult<StepResult> {
        self.inner
            .call(|book, changes| {
                let (result, change) = book.apply(&step)?;
                if let Some(change) = change {
                    self.take_forgotten(changes);
                    changes.push(change);
                }
                Ok(result)
            })
            .await
    }
    /// Both accounts are in this one book, so every step of a transfer is
    /// applied under one lock and persisted in one commit.
    async fn apply_transfer(&self, request: &TransferRequest) -> BankResult<Option<Resolution>> {
        self.inner
            .call(|book, changes| {
                let (resolution, made) = book.apply_transfer(request);
                if !made.is_empty() {
                    self.take_forgotten(changes);
                    changes.extend(made);
                }
                Ok(Some(resolution))
            })
            .await
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
            // Nobody waits: a failure marks the book failed and is logged
            // by the store's report.
            drop(self.inner.keep_all(&book, &batch));
        }
    }
    async fn totals(&self) -> BankResult<AccountTotals> {
        self.inner.call(|book, _| Ok(book.totals())).await
    }
}

impl<P: Persist<AccountChange>> LocalAccounts<P> {
    /// Drops the step results of settled transfers and persists that with
    /// their tombstones, valid until `until_us`, in one commit
    /// ([`AccountBook::forget`]): for a caller that refuses stale copies of
    /// their steps through a [`crate::bank::StepFence`] holding the same
    /// tombstones, checked in the same order.
    pub async fn settle(&self, transfer_ids: &[TransferId], until_us: u64) -> BankResult<()> {
        self.inner
            .call(|book, changes| {
                for id in transfer_ids {
                    changes.extend(book.forget(id));
                    changes.push(AccountChange::Tombstone {
                        transfer_id: id.clone(),
                        until_us,
                    });
                }
                Ok(())
            })
            .await
    }

    /// How many transfers have step results kept here.
    pub fn step_records(&self) -> usize {
        self.inner
            .lock::<()>()
            .map_or(0, |book| book.step_records())
    }
}

/// The journal in one [`TransferBook`]. Over a durable store the book is
/// bounded: settled records leave memory once durable, and a repeat or a
/// lookup of one reads it back from the store.
pub struct LocalJournal<P = NoPersist> {
    inner: Locked<TransferBook, JournalChange, P>,
    /// Settled transfers whose final records became durable since the
    /// last call (the store's thread adds them; a leaf lock).
    durable: Arc<Mutex<Vec<TransferId>>>,
    /// Told of every commit once it is durable, in commit order.
    observer: OnceLock<CommitObserver>,
}

/// Told of each commit of a journal once it is durable, with its number
/// ([`TransferBook::commits`]), in commit order: a read model of the
/// journal follows it. It runs on the store's thread (or under the
/// journal's lock when nothing is kept): it must be quick.
pub type CommitObserver = Arc<dyn Fn(u64, &TransferRecord) + Send + Sync>;

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

impl<P: Persist<JournalChange> + Recall<TransferId, TransferRecord>> LocalJournal<P> {
    /// What the records in memory committed (everything the journal
    /// committed, unless the book is bounded: then ask its store), as of
    /// the last commit any observer was told of.
    pub fn committed(&self) -> Committed {
        self.inner
            .lock::<()>()
            .map(|book| book.committed())
            .unwrap_or_default()
    }

    /// Tells `observer` of every later commit (the first observer stays).
    pub fn observe_commits(&self, observer: CommitObserver) {
        if self.observer.set(observer).is_err() {
            tracing::warn!("the journal's commits already have an observer");
        }
    }

    /// Serves a journal loaded from `persist`'s store (bounded or not, as
    /// loaded).
    pub fn restored(book: TransferBook, persist: P) -> Self {
        Self {
            inner: Locked::new(book, persist),
            durable: Arc::default(),
            observer: OnceLock::new(),
        }
    }

    /// Under the lock: lets the records that became durable go, and reads
    /// `id`'s back if the book let it go.
    fn ready(&self, book: &mut TransferBook, id: Option<&TransferId>) -> BankResult<()> {
        let durable = std::mem::take(&mut *self.durable.lock().unwrap_or_else(|p| p.into_inner()));
        if !durable.is_empty() {
            book.settled_durable(durable);
        }
        if let Some(id) = id
            && !book.knows(id)
            && let Some(record) = self
                .inner
                .persist
                .recall(id)
                .map_err(|e| CallError::Unavailable(e.to_string()))?
        {
            book.recall(record);
        }
        Ok(())
    }

    /// How many records are in memory.
    pub fn in_memory(&self) -> usize {
        self.inner.lock::<()>().map_or(0, |book| book.len())
    }
}

#[async_trait]
impl<P: Persist<JournalChange> + Recall<TransferId, TransferRecord>> TransferJournal
    for LocalJournal<P>
{
    async fn begin(&self, request: TransferRequest) -> BankResult<Begin> {
        self.inner
            .call(|book, changes| {
                self.ready(book, Some(&request.transfer_id))?;
                let begin = book.begin(request)?;
                if let Begin::Started(record) = &begin {
                    changes.push(JournalChange::Put(record.clone()));
                }
                Ok(begin)
            })
            .await
    }
    async fn resolve(&self, id: &TransferId, status: TransferStatus) -> BankResult<TransferRecord> {
        let (answer, durable) = {
            let mut book = self.inner.lock()?;
            let answer = self
                .ready(&mut book, Some(id))
                .and_then(|()| Ok(book.resolve(id, status)?));
            let durable = match &answer {
                Ok((record, true)) => {
                    let change = JournalChange::Put(record.clone());
                    let settled = (record.status != TransferStatus::Pending)
                        .then(|| (self.durable.clone(), id.clone()));
                    // Only a journal with a read model pays for the copy.
                    let commit = match self.observer.get() {
                        Some(observer) if record.status == TransferStatus::Committed => {
                            Some((observer.clone(), book.commits(), record.clone()))
                        }
                        _ => None,
                    };
                    self.inner
                        .keep_all_then(&book, std::slice::from_ref(&change), move || {
                            if let Some((durable, id)) = settled {
                                durable.lock().unwrap_or_else(|p| p.into_inner()).push(id);
                            }
                            if let Some((observer, number, record)) = commit {
                                observer(number, &record);
                            }
                        })
                }
                _ => self.inner.keep_all(&book, &[]),
            };
            (answer, durable)
        };
        durable.wait().await?;
        answer.map(|(record, _)| record)
    }
    async fn abandon(&self, id: &TransferId) -> BankResult<()> {
        self.inner
            .call(|book, changes| {
                if book.abandon(id) {
                    changes.push(JournalChange::Remove(id.clone()));
                }
                Ok(())
            })
            .await
    }
    async fn get(&self, id: &TransferId) -> BankResult<TransferRecord> {
        self.inner
            .call(|book, _| {
                self.ready(book, Some(id))?;
                Ok(book.get(id)?)
            })
            .await
    }
    async fn pending(&self) -> BankResult<Vec<TransferRecord>> {
        self.inner
            .call(|book, _| Ok(book.pending().cloned().collect()))
            .await
    }
    async fn pending_count(&self) -> BankResult<u64> {
        self.inner.call(|book, _| Ok(book.pending_count())).await
    }
}

type Subscribers = Vec<mpsc::Sender<ChatResult<ChatMessage>>>;

/// One room with its subscribers.
struct Hosted {
    room: Room,
    subscribers: Subscribers,
    /// The last message sent to subscribers: every message up to it is
    /// durable (messages after it may not be yet).
    published: u64,
}

impl Hosted {
    fn new(room: Room) -> Self {
        let published = room.last_seq();
        Self {
            room,
            subscribers: Vec::new(),
            published,
        }
    }

    /// Sends the messages after `published` up to `seq` (known durable)
    /// to every subscriber, in order; a subscriber that is full fell
    /// behind and is dropped (its session resubscribes from its cursor).
    /// A bounded room may then let the oldest go.
    fn publish_through(&mut self, seq: u64) {
        if seq <= self.published {
            return;
        }
        let count = u32::try_from(seq - self.published).unwrap_or(u32::MAX);
        for message in self.room.history(HistoryQuery {
            after: self.published,
            limit: count,
        }) {
            self.subscribers
                .retain_mut(|s| s.try_send(Ok(message.clone())).is_ok());
        }
        self.published = seq;
        self.room.durable_through(seq);
    }
}

/// The chat's state: the directory and every room with its subscribers.
#[derive(Default)]
pub struct ChatState {
    directory: RoomDirectory,
    rooms: FastMap<RoomName, Hosted>,
    /// Messages each room keeps in memory, when bounded.
    keep: Option<usize>,
}

impl ChatState {
    /// Rebuilds the state from a loaded directory and its rooms.
    pub fn restore(directory: RoomDirectory, rooms: impl IntoIterator<Item = Room>) -> Self {
        let rooms = rooms
            .into_iter()
            .map(|room| (room.name().clone(), Hosted::new(room)))
            .collect();
        Self {
            directory,
            rooms,
            keep: None,
        }
    }

    /// This state, with every room (and every room created later) keeping
    /// its newest `keep` messages in memory once durable.
    pub fn bounded(mut self, keep: usize) -> Self {
        self.keep = Some(keep);
        for hosted in self.rooms.values_mut() {
            let name = hosted.room.name().clone();
            let room = std::mem::replace(&mut hosted.room, Room::new(name));
            hosted.room = room.bounded(keep);
        }
        self
    }

    fn hosted(&mut self, room: &RoomName) -> ChatResult<&mut Hosted> {
        self.rooms
            .get_mut(room)
            .ok_or_else(|| ChatError::UnknownRoom(room.clone()).into())
    }
}

/// Reads back what a bounded chat let go: older pages of a room, and a
/// post for its repeat.
pub trait ChatRecall:
    Recall<(RoomName, HistoryQuery), Vec<ChatMessage>>
    + Recall<(RoomName, UserId, ClientMsgId), ChatMessage>
{
}

impl<T> ChatRecall for T where
    T: Recall<(RoomName, HistoryQuery), Vec<ChatMessage>>
        + Recall<(RoomName, UserId, ClientMsgId), ChatMessage>
{
}

fn unavailable<E>(e: PersistError) -> CallError<E> {
    CallError::Unavailable(e.to_string())
}

/// Every room in one map; subscribers get bounded channels and are dropped
/// (their stream ends) when they fall `buffer` messages behind. A message
/// reaches subscribers only once it is durable, in sequence order, with
/// no gap: whoever learns that a message is durable (its post, a later
/// post, a subscribe) sends every message up to it. Over a durable store
/// the rooms are bounded: old messages are read back from it.
pub struct LocalRooms<P = NoPersist> {
    inner: Locked<ChatState, RoomChange, P>,
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

impl<P: Persist<RoomChange> + ChatRecall> LocalRooms<P> {
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

    /// Publishes `room` up to `seq`, now known durable.
    fn publish_through(&self, room: &RoomName, seq: u64) -> ChatResult<()> {
        let mut state = self.inner.lock()?;
        state.hosted(room)?.publish_through(seq);
        Ok(())
    }

    /// The page `query` asks of `room`, older messages read back.
    fn page(
        &self,
        name: &RoomName,
        room: &Room,
        query: HistoryQuery,
    ) -> ChatResult<Vec<ChatMessage>> {
        room.page(query, |older| {
            Ok(self
                .inner
                .persist
                .recall(&(name.clone(), older))
                .map_err(unavailable)?
                .unwrap_or_default())
        })
    }
}

#[async_trait]
impl<P: Persist<RoomChange> + ChatRecall> RoomsService for LocalRooms<P> {
    async fn create(&self, room: RoomName) -> ChatResult<()> {
        self.inner
            .call(|state, changes| {
                state.directory.create(room.clone())?;
                let mut fresh = Room::new(room.clone());
                if let Some(keep) = state.keep {
                    fresh = fresh.bounded(keep);
                }
                state.rooms.insert(room.clone(), Hosted::new(fresh));
                changes.push(RoomChange::Created(room));
                Ok(())
            })
            .await
    }

    async fn post(&self, request: PostRequest) -> ChatResult<PostOutcome> {
        let now = (self.clock)();
        let keeps = self.inner.persist.keeps();
        let name = request.room.clone();
        let (outcome, seq) = self
            .inner
            .call(|state, changes| {
                let hosted = state.hosted(&request.room)?;
                if hosted
                    .room
                    .may_have_left(&request.author, &request.client_msg_id)
                    && let Some(original) = self
                        .inner
                        .persist
                        .recall(&(
                            request.room.clone(),
                            request.author.clone(),
                            request.client_msg_id.clone(),
                        ))
                        .map_err(unavailable)?
                {
                    hosted.room.recall_post(original);
                }
                let (outcome, new) =
                    hosted
                        .room
                        .post(request.author, request.text, request.client_msg_id, now)?;
                let seq = hosted.room.last_seq();
                if let Some(message) = new {
                    if keeps {
                        changes.push(RoomChange::Posted(request.room, message));
                    } else {
                        // Nothing to wait for: published under this lock.
                        hosted.publish_through(seq);
                    }
                }
                Ok((outcome, seq))
            })
            .await?;
        // Durable now (this post, or what a repeated one found): so is
        // every message up to it.
        if keeps {
            self.publish_through(&name, seq)?;
        }
        Ok(outcome)
    }

    async fn history(&self, room: &RoomName, query: HistoryQuery) -> ChatResult<Vec<ChatMessage>> {
        self.inner
            .call(|state, _| {
                let hosted = state.hosted(room)?;
                self.page(room, &hosted.room, query)
            })
            .await
    }

    /// At most [`SUBSCRIBE_BACKLOG`] messages of backlog; a subscriber
    /// further behind gets a stream that ends after them (its session
    /// resubscribes from its cursor).
    async fn subscribe(&self, room: &RoomName, after: u64) -> ChatResult<Subscription> {
        // Everything handed over so far is durable after the barrier, so
        // the room may be published up to what it held then.
        let seq = self
            .inner
            .call(|state, _| Ok(state.hosted(room)?.room.last_seq()))
            .await?;
        let mut state = self.inner.lock()?;
        let hosted = state.hosted(room)?;
        hosted.publish_through(seq);
        let published = hosted.published;
        let backlog: Vec<_> = self
            .page(
                room,
                &hosted.room,
                HistoryQuery {
                    after,
                    limit: SUBSCRIBE_BACKLOG,
                },
            )?
            .into_iter()
            .take_while(|m| m.seq <= published)
            .collect();
        let caught_up = backlog.last().map_or(after, |m| m.seq) >= published;
        let backlog = futures::stream::iter(backlog.into_iter().map(Ok));
        if !caught_up {
            return Ok(backlog.boxed());
        }
        let (tx, rx) = mpsc::channel(self.buffer);
        hosted.subscribers.push(tx);
        Ok(backlog.chain(rx).boxed())
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
        fn persist_then(&self, changes: &[AccountChange], done: Done) {
            self.0.lock().expect("lock").push(changes.to_vec());
            done(Ok(()));
        }
        fn barrier_then(&self, done: Done) {
            done(Ok(()));
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
