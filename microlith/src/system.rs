//! The microlith assembled: the supervision tree, and the service traits
//! bound to its actors.
//!
//! ```text
//! root (one_for_one)
//! ├── bank (rest_for_one)
//! │   ├── accounts (one_for_one): account-0 .. account-N
//! │   └── journal (one_for_one): journal-0 .. journal-M
//! └── chat (one_for_one)
//!     ├── directory
//!     └── rooms (one_for_one): room:<name>, one per room
//! ```
//! Sessions are one task per connected user, outside the tree: they hold no
//! state a restart could recover, and end with their WebSocket.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use shared_domain::bank::{
    AccountStep, AccountTotals, AccountView, AuditView, Begin, StepResult, TransferRecord,
    TransferRequest, TransferStatus,
};
use shared_domain::chat::{ChatMessage, HistoryQuery, PostOutcome, PostRequest};
use shared_domain::error::{BankResult, CallError, ChatResult};
use shared_domain::id::{AccountId, RoomName, TransferId};
use shared_domain::known::KnownAccounts;
use shared_domain::money::OpeningBalance;
use shared_domain::saga;
use shared_domain::service::{
    AccountsService, LedgerService, Pause, RoomsService, Subscription, TransferJournal,
};
use store::{AccountStore, DirectoryStore, JournalStore, Storage};

use crate::component::Home;
use crate::component::account::{AccountMsg, AccountShardActor, AccountShardArgs};
use crate::component::journal::{JournalMsg, JournalShardActor, JournalShardArgs};
use crate::component::room::{
    DirectoryActor, DirectoryArgs, DirectoryMsg, RoomMsg, RoomRegistry, unknown_room,
};
use crate::config::Config;
use crate::runtime::{
    ActorRef, Intensity, Strategy, Supervisor, SupervisorEvent, SupervisorHandle,
};
use edge::backoff::Backoff;
use edge::session::TaskSessions;
use edge::transfers::SagaTransfers;

/// Where a shard's state lives: the durable store, or memory kept across
/// actor restarts.
fn home<B: Default, S>(
    storage: &Storage,
    namespace: &str,
    store: impl FnOnce(Arc<dyn store::KvStore>) -> S,
) -> Home<B, S> {
    if storage.is_durable() {
        Home::Durable(store(storage.namespace(namespace)))
    } else {
        Home::Memory(Arc::default())
    }
}

/// Routes a key to a shard: FNV-1a over its text, fixed forever, because a
/// durable shard's data lives under its index (std's `DefaultHasher` is
/// not specified to stay the same across Rust releases, so a toolchain
/// upgrade could have moved accounts away from their data). Cheap, too:
/// a transfer routes five times.
fn shard_of(key: &str, shards: usize) -> usize {
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % shards as u64) as usize
}

/// Accounts sharded over actors by account id.
pub struct ActorAccounts {
    shards: Vec<ActorRef<AccountMsg>>,
    timeout: Duration,
    /// Per shard: how many transfers have step results kept there.
    step_records: Vec<Arc<AtomicUsize>>,
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
    shards: Vec<ActorRef<JournalMsg>>,
    timeout: Duration,
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
/// from every journal shard.
pub struct ActorLedger {
    accounts: Arc<PayeeCached>,
    journal: Arc<ActorJournal>,
}

#[async_trait]
impl LedgerService for ActorLedger {
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

/// Rooms: the directory creates, the room actors do the rest.
pub struct ActorRooms {
    directory: ActorRef<DirectoryMsg>,
    registry: Arc<RoomRegistry>,
    timeout: Duration,
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

/// A running microlith.
pub struct Microlith {
    /// Accounts (the actors behind the shared payee cache).
    pub accounts: Arc<PayeeCached>,
    /// The transfer journal.
    pub journal: Arc<ActorJournal>,
    /// Transfers.
    pub transfers: Arc<ActorTransfers>,
    /// The audit.
    pub ledger: Arc<ActorLedger>,
    /// Rooms.
    pub rooms: Arc<ActorRooms>,
    /// Sessions.
    pub sessions: Arc<TaskSessions>,
    /// The root supervisor.
    pub root: SupervisorHandle,
    /// The first escalation that reached the root, if any.
    pub escalated: Arc<parking_lot::Mutex<Option<String>>>,
    /// Cancelled at shutdown: stops saga retries and sessions.
    pub shutdown: CancellationToken,
}

impl Microlith {
    /// Builds the supervision tree and starts every actor.
    pub fn start(config: &Config, storage: Storage) -> Microlith {
        crate::runtime::actor::timing::set_enabled(config.edge.server_timing);
        let shutdown = CancellationToken::new();
        let pause: Arc<dyn Pause> = Arc::new(Backoff::new(
            Duration::from_millis(1),
            Duration::from_millis(200),
            shutdown.clone(),
        ));
        let intensity = Intensity {
            max_restarts: config.max_restarts,
            within: config.restart_window,
        };
        let (root, escalations) = Supervisor::root("root", Strategy::OneForOne, intensity);
        let bank_sup = root.spawn_supervisor("bank", Strategy::RestForOne, intensity);
        let accounts_sup = bank_sup.spawn_supervisor("accounts", Strategy::OneForOne, intensity);
        let journal_sup = bank_sup.spawn_supervisor("journal", Strategy::OneForOne, intensity);
        let chat_sup = root.spawn_supervisor("chat", Strategy::OneForOne, intensity);

        let step_records: Vec<Arc<AtomicUsize>> = (0..config.account_shards.max(1))
            .map(|_| Arc::default())
            .collect();
        // The payee cache every fabric puts in front of its accounts.
        let accounts = Arc::new(KnownAccounts::new(ActorAccounts {
            shards: step_records
                .iter()
                .enumerate()
                .map(|(i, records)| {
                    accounts_sup.spawn::<AccountShardActor>(
                        &format!("account-{i}"),
                        Arc::new(AccountShardArgs {
                            home: home(&storage, &format!("accounts/{i}"), AccountStore::new),
                            step_records: records.clone(),
                        }),
                        config.mailbox,
                    )
                })
                .collect(),
            step_records,
            timeout: config.call_timeout,
        }));

        // Journal shards resume the pending sagas of an earlier process; the
        // recovery needs the journal itself, which exists only after the
        // shards do, hence the slot.
        // A weak reference: the shards' arguments must not own the journal
        // that owns the shards (a cycle would keep the store open forever).
        let journal_slot: Arc<std::sync::OnceLock<std::sync::Weak<ActorJournal>>> = Arc::default();
        let journal = Arc::new(ActorJournal {
            shards: (0..config.journal_shards.max(1))
                .map(|i| {
                    let (slot, accounts, pause) =
                        (journal_slot.clone(), accounts.clone(), pause.clone());
                    let on_recover = Box::new(move |records: Vec<TransferRecord>| {
                        tracing::info!(count = records.len(), "resuming pending transfers");
                        let (slot, accounts, pause) =
                            (slot.clone(), accounts.clone(), pause.clone());
                        tokio::spawn(async move {
                            // Wait until the shards exist (first start).
                            let journal = loop {
                                if let Some(j) = slot.get() {
                                    break j.clone();
                                }
                                tokio::time::sleep(Duration::from_millis(1)).await;
                            };
                            let Some(journal) = journal.upgrade() else {
                                return; // shutting down
                            };
                            for record in records {
                                let _ =
                                    saga::complete(&*journal, &*accounts, &*pause, record).await;
                            }
                        });
                    });
                    journal_sup.spawn::<JournalShardActor>(
                        &format!("journal-{i}"),
                        Arc::new(JournalShardArgs {
                            home: home(&storage, &format!("journal/{i}"), JournalStore::new),
                            on_recover,
                            recovered: std::sync::atomic::AtomicBool::new(false),
                        }),
                        config.mailbox,
                    )
                })
                .collect(),
            timeout: config.call_timeout,
        });
        let _ = journal_slot.set(Arc::downgrade(&journal));

        let rooms_sup = chat_sup.spawn_supervisor("rooms", Strategy::OneForOne, intensity);
        let registry = Arc::new(RoomRegistry::new(
            rooms_sup,
            storage.clone(),
            config.mailbox,
            config.subscriber_buffer,
        ));
        let directory = chat_sup.spawn::<DirectoryActor>(
            "directory",
            Arc::new(DirectoryArgs {
                store: DirectoryStore::new(storage.namespace("directory")),
                registry: registry.clone(),
            }),
            config.mailbox,
        );
        let rooms = Arc::new(ActorRooms {
            directory,
            registry,
            timeout: config.call_timeout,
        });
        Microlith {
            transfers: Arc::new(ActorTransfers::new(
                journal.clone(),
                accounts.clone(),
                pause.clone(),
            )),
            ledger: Arc::new(ActorLedger {
                accounts: accounts.clone(),
                journal: journal.clone(),
            }),
            sessions: Arc::new(TaskSessions::new(
                rooms.clone(),
                pause,
                config.session_buffer,
                config.edge.ws_send_timeout,
            )),
            accounts,
            journal,
            rooms,
            root,
            escalated: watch_escalations(escalations),
            shutdown,
        }
    }

    /// Fault injection: makes the named actor panic inside its handler.
    /// Names: `account-N`, `journal-N`, `directory`, `room:<name>`.
    pub fn crash(&self, target: &str) -> Result<(), String> {
        let sent = if let Some(i) = target.strip_prefix("account-") {
            let i: usize = i.parse().map_err(|_| format!("bad shard in {target}"))?;
            self.accounts
                .inner()
                .shards
                .get(i)
                .map(|s| s.cast::<()>(AccountMsg::Crash))
        } else if let Some(i) = target.strip_prefix("journal-") {
            let i: usize = i.parse().map_err(|_| format!("bad shard in {target}"))?;
            self.journal
                .shards
                .get(i)
                .map(|s| s.cast::<()>(JournalMsg::Crash))
        } else if target == "directory" {
            Some(self.rooms.directory.cast::<()>(DirectoryMsg::Crash))
        } else if let Some(room) = target.strip_prefix("room:") {
            let room = RoomName::new(room).map_err(|e| e.to_string())?;
            self.rooms
                .registry
                .get(&room)
                .map(|r| r.cast::<()>(RoomMsg::Crash))
        } else {
            None
        };
        match sent {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(format!("{e:?}")),
            None => Err(format!("no actor named {target}")),
        }
    }

    /// The names of every crashable actor.
    pub fn actor_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .accounts
            .inner()
            .shards
            .iter()
            .map(|s| s.name().to_owned())
            .collect();
        names.extend(self.journal.shards.iter().map(|s| s.name().to_owned()));
        names.push("directory".into());
        names.extend(
            self.rooms
                .registry
                .all()
                .iter()
                .map(|r| r.name().to_owned()),
        );
        names
    }

    /// Mailbox depth of every actor (for `/metrics`).
    pub fn mailbox_depths(&self) -> Vec<(String, usize)> {
        let mut out: Vec<(String, usize)> = self
            .accounts
            .inner()
            .shards
            .iter()
            .map(|s| (s.name().to_owned(), s.mailbox_depth()))
            .collect();
        out.extend(
            self.journal
                .shards
                .iter()
                .map(|s| (s.name().to_owned(), s.mailbox_depth())),
        );
        out.push(("directory".into(), self.rooms.directory.mailbox_depth()));
        out.extend(
            self.rooms
                .registry
                .all()
                .iter()
                .map(|r| (r.name().to_owned(), r.mailbox_depth())),
        );
        out
    }

    /// Whether every component answers: one call to each shard and the
    /// directory, and no escalation at the root.
    pub async fn ready(&self) -> Result<(), String> {
        if let Some(name) = self.escalated.lock().clone() {
            return Err(format!("supervisor {name} gave up"));
        }
        self.ledger.audit().await.map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Stops sagas and sessions, then every actor (each flushes its batch).
    pub async fn stop(&self) {
        self.shutdown.cancel();
        self.root.stop().await;
    }
}

fn watch_escalations(
    mut escalations: mpsc::UnboundedReceiver<SupervisorEvent>,
) -> Arc<parking_lot::Mutex<Option<String>>> {
    let slot: Arc<parking_lot::Mutex<Option<String>>> = Arc::default();
    let writer = slot.clone();
    tokio::spawn(async move {
        while let Some(SupervisorEvent::Escalated(name)) = escalations.recv().await {
            tracing::error!(supervisor = %name, "escalation reached the root: not ready");
            writer.lock().get_or_insert(name);
        }
    });
    slot
}

#[cfg(test)]
mod tests {
    use super::shard_of;

    #[test]
    fn shard_routing_is_pinned_and_spreads_the_keys() {
        // Durable data lives under these indexes: a change here moves
        // accounts away from their data, so it must be deliberate.
        assert_eq!(
            [
                shard_of("a0", 8),
                shard_of("a1", 8),
                shard_of("alice", 8),
                shard_of("t-42", 4)
            ],
            [4, 7, 7, 0],
            "FNV-1a 64, as any reference implementation computes it"
        );
        for shards in [2, 4, 8, 16] {
            let mut counts = vec![0usize; shards];
            for i in 0..1000 {
                counts[shard_of(&format!("a{i}"), shards)] += 1;
            }
            let even = 1000 / shards;
            assert!(
                counts.iter().all(|&c| c > even / 2 && c < even * 2),
                "{shards} shards: {counts:?}"
            );
        }
    }
}
