//! The shared service traits bound to the microlith's actors: each call
//! is an actor call to the shard (or room) that owns the key.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use async_trait::async_trait;

use shared_domain::bank::{
    AccountStep, AccountTotals, AccountView, Begin, StepResult, TransferRecord, TransferRequest,
    TransferStatus,
};
use shared_domain::chat::{ChatMessage, HistoryQuery, PostOutcome, PostRequest};
use shared_domain::error::{BankResult, CallError, ChatResult};
use shared_domain::id::{AccountId, RoomName, TransferId};
use shared_domain::known::KnownAccounts;
use shared_domain::local::LocalLedger;
use shared_domain::money::OpeningBalance;
use shared_domain::service::{AccountsService, RoomsService, Subscription, TransferJournal};

use crate::component::account::AccountMsg;
use crate::component::journal::JournalMsg;
use crate::component::room::{DirectoryMsg, RoomMsg, RoomRegistry, unknown_room};
use crate::runtime::ActorRef;
use edge::transfers::SagaTransfers;

/// Routes a key to a shard: FNV-1a over its text, fixed forever, because a
/// durable shard's data lives under its index (std's `DefaultHasher` is
/// not specified to stay the same across Rust releases, so a toolchain
/// upgrade could have moved accounts away from their data). Cheap, too:
/// a transfer routes five times.
pub(super) fn shard_of(key: &str, shards: usize) -> usize {
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % shards as u64) as usize
}

/// Accounts sharded over actors by account id.
pub struct ActorAccounts {
    pub(super) shards: Vec<ActorRef<AccountMsg>>,
    pub(super) timeout: Duration,
    /// Per shard: how many transfers have step results kept there.
    pub(super) step_records: Vec<Arc<AtomicUsize>>,
}

impl ActorAccounts {
    fn shard(&self, id: &AccountId) -> &ActorRef<AccountMsg> {
        &self.shards[self.shard_index(id)]
    }

    /// Per shard (`account-N`): how many transfers have step results kept
    /// there. Settled transfers are forgotten, so this stays near the
    /// number of transfers in flight.
    pub fn step_records(&self) -> Vec<usize> {
        self.step_records
            .iter()
            .map(|r| r.load(std::sync::atomic::Ordering::Relaxed))
            .collect()
    }

    /// Which shard (`account-N`) holds an account.
    pub fn shard_index(&self, id: &AccountId) -> usize {
        shard_of(id.as_str(), self.shards.len())
    }
}

#[async_trait]
impl AccountsService for ActorAccounts {
    async fn open(&self, account: AccountId, opening: OpeningBalance) -> BankResult<AccountView> {
        let shard = self.shard(&account);
        shard
            .call(|r| AccountMsg::Open(account, opening, r), self.timeout)
            .await
    }
    async fn balance(&self, account: &AccountId) -> BankResult<AccountView> {
        self.shard(account)
            .call(|r| AccountMsg::Balance(account.clone(), r), self.timeout)
            .await
    }
    async fn apply_step(&self, step: AccountStep) -> BankResult<StepResult> {
        let shard = self.shard(&step.account);
        shard
            .call(|r| AccountMsg::Step(step, r), self.timeout)
            .await
    }
    /// Mailboxes are FIFO and a shard handles a message only after every
    /// message sent to it before, so once the saga's runner has its
    /// resolution no copy of its steps can still be waiting: the shards may
    /// forget them. A full mailbox keeps them (a lost forget costs memory,
    /// never money).
    fn settled(&self, request: &TransferRequest) {
        let (payer, payee) = (
            self.shard_index(&request.from),
            self.shard_index(&request.to),
        );
        let _ = self.shards[payer]
            .tell::<shared_domain::BankError>(AccountMsg::Forget(request.transfer_id.clone()));
        if payee != payer {
            let _ = self.shards[payee]
                .tell::<shared_domain::BankError>(AccountMsg::Forget(request.transfer_id.clone()));
        }
    }
    async fn totals(&self) -> BankResult<AccountTotals> {
        let calls = self
            .shards
            .iter()
            .map(|s| s.call(AccountMsg::Totals, self.timeout));
        let mut totals = AccountTotals::default();
        for res in futures::future::join_all(calls).await {
            totals = totals.merge(res?);
        }
        Ok(totals)
    }
}

/// The transfer journal sharded over actors by transfer id.
pub struct ActorJournal {
    pub(super) shards: Vec<ActorRef<JournalMsg>>,
    pub(super) timeout: Duration,
}

impl ActorJournal {
    fn shard(&self, id: &TransferId) -> &ActorRef<JournalMsg> {
        &self.shards[shard_of(id.as_str(), self.shards.len())]
    }
}

#[async_trait]
impl TransferJournal for ActorJournal {
    async fn begin(&self, request: TransferRequest) -> BankResult<Begin> {
        let shard = self.shard(&request.transfer_id);
        shard
            .call(|r| JournalMsg::Begin(request, r), self.timeout)
            .await
    }
    async fn resolve(&self, id: &TransferId, status: TransferStatus) -> BankResult<TransferRecord> {
        self.shard(id)
            .call(|r| JournalMsg::Resolve(id.clone(), status, r), self.timeout)
            .await
    }
    async fn abandon(&self, id: &TransferId) -> BankResult<()> {
        self.shard(id)
            .call(|r| JournalMsg::Abandon(id.clone(), r), self.timeout)
            .await
    }
    async fn get(&self, id: &TransferId) -> BankResult<TransferRecord> {
        self.shard(id)
            .call(|r| JournalMsg::Get(id.clone(), r), self.timeout)
            .await
    }
    async fn pending(&self) -> BankResult<Vec<TransferRecord>> {
        let mut all = Vec::new();
        for shard in &self.shards {
            all.extend(shard.call(JournalMsg::Pending, self.timeout).await?);
        }
        Ok(all)
    }
    async fn pending_count(&self) -> BankResult<u64> {
        let calls = self
            .shards
            .iter()
            .map(|s| s.call(JournalMsg::PendingCount, self.timeout));
        let mut count = 0;
        for res in futures::future::join_all(calls).await {
            count += res?;
        }
        Ok(count)
    }
}

/// Transfers: the shared saga over the journal and account actors.
pub type ActorTransfers = SagaTransfers<ActorJournal, PayeeCached>;

/// The account actors behind the shared payee cache.
pub type PayeeCached = KnownAccounts<ActorAccounts>;

/// The audit: exact totals from every account shard and the pending count
/// from every journal shard (the shared in-process audit).
pub type ActorLedger = LocalLedger<PayeeCached, ActorJournal>;

/// Rooms: the directory creates, the room actors do the rest.
pub struct ActorRooms {
    pub(super) directory: ActorRef<DirectoryMsg>,
    pub(super) registry: Arc<RoomRegistry>,
    pub(super) timeout: Duration,
}

impl ActorRooms {
    fn room(&self, room: &RoomName) -> ChatResult<ActorRef<RoomMsg>> {
        self.registry
            .get(room)
            .ok_or_else(|| CallError::Domain(unknown_room(room)))
    }
}

#[async_trait]
impl RoomsService for ActorRooms {
    async fn create(&self, room: RoomName) -> ChatResult<()> {
        self.directory
            .call(|r| DirectoryMsg::Create(room, r), self.timeout)
            .await
    }
    async fn post(&self, request: PostRequest) -> ChatResult<PostOutcome> {
        let room = self.room(&request.room)?;
        room.call(|r| RoomMsg::Post(request, r), self.timeout).await
    }
    async fn history(&self, room: &RoomName, query: HistoryQuery) -> ChatResult<Vec<ChatMessage>> {
        self.room(room)?
            .call(|r| RoomMsg::History(query, r), self.timeout)
            .await
    }
    async fn subscribe(&self, room: &RoomName, after: u64) -> ChatResult<Subscription> {
        self.room(room)?
            .call(|r| RoomMsg::Subscribe(after, r), self.timeout)
            .await
    }
}
