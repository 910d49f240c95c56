//! The components as interfaces. **API Boundary:** each variant binds these
//! traits to its fabric (actors behind mailboxes, or gRPC clients), and the
//! edge holds `Arc<dyn …>` without knowing which.

use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::bank::{
    AccountStep, AccountTotals, AccountView, AuditView, Begin, Resolution, StepResult,
    TransferRecord, TransferRequest, TransferStatus,
};
use crate::chat::{ChatMessage, HistoryQuery, PostOutcome, PostRequest};
use crate::error::{BankResult, ChatResult};
use crate::id::{AccountId, RoomName, TransferId, UserId};
use crate::money::OpeningBalance;

/// Accounts: balances and transfer steps, sharded however the variant likes.
#[async_trait]
pub trait AccountsService: Send + Sync {
    /// Opens an account.
    async fn open(&self, account: AccountId, opening: OpeningBalance) -> BankResult<AccountView>;
    /// Reads a balance.
    async fn balance(&self, account: &AccountId) -> BankResult<AccountView>;
    /// Whether an account exists. Accounts are never deleted, so a `true`
    /// stays true forever and may be cached by the fabric.
    async fn exists(&self, account: &AccountId) -> BankResult<bool> {
        exists_from_balance(self.balance(account).await)
    }
    /// Applies one idempotent transfer step.
    async fn apply_step(&self, step: AccountStep) -> BankResult<StepResult>;
    /// Applies every step of a transfer in one call
    /// ([`crate::bank::AccountBook::apply_transfer`]), when this service
    /// holds both accounts and the fabric chose to (the microservices'
    /// `coarse` transfer path: one round trip instead of three). `None`:
    /// not done here; the saga sends the steps one at a time. Idempotent
    /// like the steps it applies.
    async fn apply_transfer(&self, _request: &TransferRequest) -> BankResult<Option<Resolution>> {
        Ok(None)
    }
    /// `request` is resolved in the journal by its one saga runner, which
    /// sends none of its steps again. A fabric that also guarantees no
    /// stale copy of an earlier step can still reach an account (FIFO
    /// mailboxes in one process) may drop the steps' results
    /// ([`crate::bank::AccountBook::forget`]), which keeps the books
    /// bounded. The default keeps them: a network may deliver a delayed
    /// duplicate of a step, and without its record it would move money
    /// twice.
    fn settled(&self, _request: &TransferRequest) {}
    /// Account count and exact balance sum over every account.
    async fn totals(&self) -> BankResult<AccountTotals>;
}

/// Accounts behind a shared pointer are accounts: so one component can be
/// handed to several callers in a process, and a caller can hold
/// whichever implementation the wiring chose (`Arc<dyn AccountsService>`).
#[async_trait]
impl<T: AccountsService + ?Sized> AccountsService for std::sync::Arc<T> {
    async fn open(&self, account: AccountId, opening: OpeningBalance) -> BankResult<AccountView> {
        (**self).open(account, opening).await
    }
    async fn balance(&self, account: &AccountId) -> BankResult<AccountView> {
        (**self).balance(account).await
    }
    async fn exists(&self, account: &AccountId) -> BankResult<bool> {
        (**self).exists(account).await
    }
    async fn apply_step(&self, step: AccountStep) -> BankResult<StepResult> {
        (**self).apply_step(step).await
    }
    async fn apply_transfer(&self, request: &TransferRequest) -> BankResult<Option<Resolution>> {
        (**self).apply_transfer(request).await
    }
    fn settled(&self, request: &TransferRequest) {
        (**self).settled(request);
    }
    async fn totals(&self) -> BankResult<AccountTotals> {
        (**self).totals().await
    }
}

/// Reads a balance answer as "does the account exist".
pub fn exists_from_balance(answer: BankResult<AccountView>) -> BankResult<bool> {
    match answer {
        Ok(_) => Ok(true),
        Err(crate::CallError::Domain(crate::BankError::UnknownAccount(_))) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The transfer journal, keyed by `transfer_id`.
#[async_trait]
pub trait TransferJournal: Send + Sync {
    /// Begins a transfer or answers a repeat (see [`crate::bank::TransferBook::begin`]).
    async fn begin(&self, request: TransferRequest) -> BankResult<Begin>;
    /// Records a final status.
    async fn resolve(
        &self,
        transfer_id: &TransferId,
        status: TransferStatus,
    ) -> BankResult<TransferRecord>;
    /// Forgets a transfer refused before money moved.
    async fn abandon(&self, transfer_id: &TransferId) -> BankResult<()>;
    /// One record.
    async fn get(&self, transfer_id: &TransferId) -> BankResult<TransferRecord>;
    /// Every pending record (to resume after a crash).
    async fn pending(&self) -> BankResult<Vec<TransferRecord>>;
    /// How many are pending.
    async fn pending_count(&self) -> BankResult<u64>;
}

/// Transfers: the saga across accounts, as the edge sees it.
#[async_trait]
pub trait TransfersService: Send + Sync {
    /// Runs (or answers a repeat of) a transfer. A rejected transfer is an
    /// `Ok` record with a `Rejected` status.
    async fn transfer(&self, request: TransferRequest) -> BankResult<TransferRecord>;
    /// One transfer's record.
    async fn get(&self, transfer_id: &TransferId) -> BankResult<TransferRecord>;
}

/// The ledger and audit view.
#[async_trait]
pub trait LedgerService: Send + Sync {
    /// `GET /v1/audit`.
    async fn audit(&self) -> BankResult<AuditView>;
}

/// A live feed of a room's messages with `seq > after`: the backlog, then
/// each new message. It ends (or yields an error) when the room restarts or
/// drops a subscriber that fell behind; [`crate::session::run_session`]
/// resubscribes from its cursor.
pub type Subscription = BoxStream<'static, ChatResult<ChatMessage>>;

/// Rooms: creation, posts, history and subscriptions.
#[async_trait]
pub trait RoomsService: Send + Sync {
    /// Creates a room.
    async fn create(&self, room: RoomName) -> ChatResult<()>;
    /// Posts a message (idempotent per room, author and client_msg_id).
    async fn post(&self, request: PostRequest) -> ChatResult<PostOutcome>;
    /// A page of history.
    async fn history(&self, room: &RoomName, query: HistoryQuery) -> ChatResult<Vec<ChatMessage>>;
    /// Subscribes to a room from `after`.
    async fn subscribe(&self, room: &RoomName, after: u64) -> ChatResult<Subscription>;
}

/// Events a connected chat user receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// The next message of the room.
    Message(ChatMessage),
    /// The reader fell too far behind and is disconnected; resume with
    /// `after=last_seq`.
    Lagged {
        /// The last message delivered.
        last_seq: u64,
    },
    /// The session ended for another reason (shutdown, room gone).
    Ended,
}

/// A connected user's session.
pub struct SessionHandle {
    /// The messages for this user, bounded.
    pub events: BoxStream<'static, SessionEvent>,
}

/// Chat sessions: one per connected user.
#[async_trait]
pub trait SessionsService: Send + Sync {
    /// Connects `user` to `room`, delivering every message after `after`.
    async fn connect(&self, room: RoomName, user: UserId, after: u64) -> ChatResult<SessionHandle>;
}

/// How a long-running loop (a saga, a session) waits before retrying after
/// a fabric failure; the variant supplies the clock.
#[async_trait]
pub trait Pause: Send + Sync {
    /// Waits before retry number `attempt` (1-based). Returns `false` when
    /// the loop should stop instead (shutdown); the work stays recorded and
    /// is resumed by recovery.
    async fn pause(&self, attempt: u32) -> bool;
}
