//! Reference implementations of the service traits over plain in-process
//! state behind a mutex. They define what "correct" means for the contract
//! and property tests; the variants bind the same domain types to actors
//! and to gRPC.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use futures::channel::mpsc;
use futures::StreamExt;

use crate::bank::{
    AccountBook, AccountStep, AccountTotals, AccountView, Begin, StepResult, TransferBook,
    TransferRecord, TransferRequest, TransferStatus,
};
use crate::chat::{ChatMessage, HistoryQuery, PostOutcome, PostRequest, Room, RoomDirectory};
use crate::error::{BankResult, ChatError, ChatResult};
use crate::id::{AccountId, RoomName, TransferId};
use crate::money::OpeningBalance;
use crate::service::{AccountsService, Pause, RoomsService, Subscription, TransferJournal};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves consistent state: every
    // transition validates before it mutates.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// All accounts in one [`AccountBook`].
#[derive(Default)]
pub struct InMemoryAccounts {
    book: Mutex<AccountBook>,
}

impl InMemoryAccounts {
    /// No accounts.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl AccountsService for InMemoryAccounts {
    async fn open(&self, account: AccountId, opening: OpeningBalance) -> BankResult<AccountView> {
        let change = lock(&self.book).open(account, opening)?;
        Ok(AccountView {
            account_id: change.account,
            balance: change.balance,
        })
    }
    async fn balance(&self, account: &AccountId) -> BankResult<AccountView> {
        Ok(lock(&self.book).balance(account)?)
    }
    async fn apply_step(&self, step: AccountStep) -> BankResult<StepResult> {
        Ok(lock(&self.book).apply(&step)?.0)
    }
    async fn totals(&self) -> BankResult<AccountTotals> {
        Ok(lock(&self.book).totals())
    }
}

/// The whole journal in one [`TransferBook`].
#[derive(Default)]
pub struct InMemoryJournal {
    book: Mutex<TransferBook>,
}

impl InMemoryJournal {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl TransferJournal for InMemoryJournal {
    async fn begin(&self, request: TransferRequest) -> BankResult<Begin> {
        Ok(lock(&self.book).begin(request)?)
    }
    async fn resolve(&self, id: &TransferId, status: TransferStatus) -> BankResult<TransferRecord> {
        Ok(lock(&self.book).resolve(id, status)?.0)
    }
    async fn abandon(&self, id: &TransferId) -> BankResult<()> {
        lock(&self.book).abandon(id);
        Ok(())
    }
    async fn get(&self, id: &TransferId) -> BankResult<TransferRecord> {
        Ok(lock(&self.book).get(id)?)
    }
    async fn pending(&self) -> BankResult<Vec<TransferRecord>> {
        Ok(lock(&self.book).pending().cloned().collect())
    }
    async fn pending_count(&self) -> BankResult<u64> {
        Ok(lock(&self.book).pending_count())
    }
}

type Subscribers = Vec<mpsc::Sender<ChatResult<ChatMessage>>>;

#[derive(Default)]
struct RoomsState {
    directory: RoomDirectory,
    rooms: HashMap<RoomName, (Room, Subscribers)>,
}

/// Every room in one map; subscribers get bounded channels and are dropped
/// when they fall `buffer` messages behind.
pub struct InMemoryRooms {
    state: Mutex<RoomsState>,
    buffer: usize,
    clock: Arc<dyn Fn() -> u64 + Send + Sync>,
}

impl InMemoryRooms {
    /// Rooms whose subscribers may fall `buffer` messages behind, stamping
    /// messages with `clock` (microseconds since the epoch).
    pub fn new(buffer: usize, clock: Arc<dyn Fn() -> u64 + Send + Sync>) -> Self {
        Self {
            state: Mutex::default(),
            buffer,
            clock,
        }
    }
}

#[async_trait]
impl RoomsService for InMemoryRooms {
    async fn create(&self, room: RoomName) -> ChatResult<()> {
        let mut state = lock(&self.state);
        state.directory.create(room.clone())?;
        state.rooms.insert(room.clone(), (Room::new(room), Vec::new()));
        Ok(())
    }

    async fn post(&self, request: PostRequest) -> ChatResult<PostOutcome> {
        let now = (self.clock)();
        let mut state = lock(&self.state);
        let (room, subscribers) = state
            .rooms
            .get_mut(&request.room)
            .ok_or_else(|| ChatError::UnknownRoom(request.room.clone()))?;
        let (outcome, new) = room.post(request.author, request.text, request.client_msg_id, now)?;
        if let Some(message) = new {
            subscribers.retain_mut(|s| s.try_send(Ok(message.clone())).is_ok());
        }
        Ok(outcome)
    }

    async fn history(&self, room: &RoomName, query: HistoryQuery) -> ChatResult<Vec<ChatMessage>> {
        let state = lock(&self.state);
        let (room, _) = state
            .rooms
            .get(room)
            .ok_or_else(|| ChatError::UnknownRoom(room.clone()))?;
        Ok(room.history(query).to_vec())
    }

    async fn subscribe(&self, room: &RoomName, after: u64) -> ChatResult<Subscription> {
        let mut state = lock(&self.state);
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
