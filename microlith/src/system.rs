//! The microlith assembled: the supervision tree, and the service traits
//! bound to its actors (`services`).
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

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use shared_domain::bank::TransferRecord;
use shared_domain::id::RoomName;
use shared_domain::known::KnownAccounts;
use shared_domain::saga;
use shared_domain::service::{LedgerService, Pause};
use store::{AccountStore, DirectoryStore, JournalStore, Storage};

use crate::component::Home;
use crate::component::account::{AccountMsg, AccountShardActor, AccountShardArgs};
use crate::component::journal::{JournalMsg, JournalShardActor, JournalShardArgs};
use crate::component::room::{DirectoryActor, DirectoryArgs, DirectoryMsg, RoomMsg, RoomRegistry};
use crate::config::Config;
use crate::runtime::{Intensity, Strategy, Supervisor, SupervisorEvent, SupervisorHandle};
use edge::backoff::Backoff;
use edge::session::TaskSessions;

mod services;

pub use services::{
    ActorAccounts, ActorJournal, ActorLedger, ActorRooms, ActorTransfers, PayeeCached,
};

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
                            keep_settled: config.keep_settled / config.journal_shards.max(1),
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
            storage.is_durable().then_some(config.keep_messages),
        ));
        let directory_store = DirectoryStore::new(storage.namespace("directory"));
        // The rooms an earlier process made are known before the edge
        // serves: the directory actor loads them too, but in its own task,
        // after this returns, and a post in between was told its room did
        // not exist. A store that cannot be read fails the actor's start,
        // which its supervisor reports.
        if let Ok(rooms) = directory_store.load() {
            for room in rooms.iter() {
                registry.ensure(room);
            }
        }
        let directory = chat_sup.spawn::<DirectoryActor>(
            "directory",
            Arc::new(DirectoryArgs {
                store: directory_store,
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
            ledger: Arc::new(ActorLedger::new(accounts.clone(), journal.clone())),
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
    use super::services::shard_of;

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
