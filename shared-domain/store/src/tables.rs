//! Typed stores, one per component: persist a transition's changes, and
//! rebuild the domain state after a crash.

use std::sync::Arc;

use shared_domain::bank::{AccountBook, AccountChange, JournalChange, StepKind, TransferBook};
use shared_domain::chat::{ChatMessage, Room, RoomChange, RoomDirectory};
use shared_domain::id::{AccountId, RoomName, TransferId};
use shared_domain::local::{Persist, PersistError};

use crate::codec::{self, corrupt};
use crate::kv::{KvStore, StoreError, Write};

const BALANCES: &str = "balances";
const STEPS: &str = "steps";
const TRANSFERS: &str = "transfers";
const MESSAGES: &str = "messages";
const ROOMS: &str = "rooms";
const TOMBSTONES: &str = "tombstones";

/// The balances and step results of one account shard.
#[derive(Clone)]
pub struct AccountStore {
    kv: Arc<dyn KvStore>,
}

impl AccountStore {
    /// Wraps a namespace.
    pub fn new(kv: Arc<dyn KvStore>) -> Self {
        Self { kv }
    }

    /// Rebuilds the shard's book.
    pub fn load(&self) -> Result<AccountBook, StoreError> {
        let mut balances = Vec::new();
        for (k, v) in self.kv.scan(BALANCES)? {
            let id = std::str::from_utf8(&k).map_err(|e| corrupt(BALANCES, e))?;
            balances.push((
                AccountId::new(id).map_err(|e| corrupt(BALANCES, e))?,
                codec::decode_balance(BALANCES, &v)?,
            ));
        }
        let mut steps = Vec::new();
        for (k, v) in self.kv.scan(STEPS)? {
            steps.push((
                codec::decode_step_key(STEPS, &k)?,
                codec::decode_step_result(STEPS, &v)?,
            ));
        }
        Ok(AccountBook::restore(balances, steps))
    }

    /// The settled transfers' tombstones still live at `now_us` (transfer,
    /// expiry), for a fence to restore; expired ones are deleted.
    pub fn tombstones(&self, now_us: u64) -> Result<Vec<(TransferId, u64)>, StoreError> {
        let (mut live, mut expired) = (Vec::new(), Vec::new());
        for (k, v) in self.kv.scan(TOMBSTONES)? {
            let id = std::str::from_utf8(&k).map_err(|e| corrupt(TOMBSTONES, e))?;
            let id = TransferId::new(id).map_err(|e| corrupt(TOMBSTONES, e))?;
            let until = u64::from_be_bytes(
                v.as_slice()
                    .try_into()
                    .map_err(|_| corrupt(TOMBSTONES, "not 8 bytes"))?,
            );
            if until > now_us {
                live.push((id, until));
            } else {
                expired.push(Write {
                    table: TOMBSTONES,
                    key: k,
                    value: None,
                });
            }
        }
        if !expired.is_empty() {
            self.kv.commit(&expired)?;
        }
        Ok(live)
    }

    /// Persists changes atomically.
    pub fn persist(&self, changes: &[AccountChange]) -> Result<(), StoreError> {
        let mut writes = Vec::with_capacity(changes.len() * 2);
        for change in changes {
            match change {
                AccountChange::Balance {
                    account,
                    balance,
                    step,
                } => {
                    writes.push(Write {
                        table: BALANCES,
                        key: account.as_str().as_bytes().to_vec(),
                        value: Some(codec::encode_balance(*balance)),
                    });
                    if let Some((id, kind, result)) = step {
                        writes.push(Write {
                            table: STEPS,
                            key: codec::encode_step_key(id, *kind),
                            value: Some(codec::encode_step_result(*result)),
                        });
                    }
                }
                AccountChange::Tombstone {
                    transfer_id,
                    until_us,
                } => writes.push(Write {
                    table: TOMBSTONES,
                    key: transfer_id.as_str().as_bytes().to_vec(),
                    value: Some(until_us.to_be_bytes().to_vec()),
                }),
                AccountChange::Forget(id) => {
                    writes.extend([StepKind::Debit, StepKind::Credit, StepKind::Refund].map(
                        |kind| Write {
                            table: STEPS,
                            key: codec::encode_step_key(id, kind),
                            value: None,
                        },
                    ));
                }
            }
        }
        self.kv.commit(&writes)
    }
}

/// The transfer journal (or one shard of it).
#[derive(Clone)]
pub struct JournalStore {
    kv: Arc<dyn KvStore>,
}

impl JournalStore {
    /// Wraps a namespace.
    pub fn new(kv: Arc<dyn KvStore>) -> Self {
        Self { kv }
    }

    /// Rebuilds the journal.
    pub fn load(&self) -> Result<TransferBook, StoreError> {
        let mut records = Vec::new();
        for (k, v) in self.kv.scan(TRANSFERS)? {
            records.push(codec::decode_transfer(TRANSFERS, &k, &v)?);
        }
        Ok(TransferBook::restore(records))
    }

    /// Persists changes atomically.
    pub fn persist(&self, changes: &[JournalChange]) -> Result<(), StoreError> {
        let writes: Vec<Write> = changes
            .iter()
            .map(|change| match change {
                JournalChange::Put(record) => Write {
                    table: TRANSFERS,
                    key: record.request.transfer_id.as_str().as_bytes().to_vec(),
                    value: Some(codec::encode_transfer(record)),
                },
                JournalChange::Remove(id) => Write {
                    table: TRANSFERS,
                    key: id.as_str().as_bytes().to_vec(),
                    value: None,
                },
            })
            .collect();
        self.kv.commit(&writes)
    }
}

/// One room's messages.
#[derive(Clone)]
pub struct RoomStore {
    kv: Arc<dyn KvStore>,
}

impl RoomStore {
    /// Wraps a namespace (one per room).
    pub fn new(kv: Arc<dyn KvStore>) -> Self {
        Self { kv }
    }

    /// Rebuilds the room; a gap in the stored sequence is corruption.
    pub fn load(&self, name: RoomName) -> Result<Room, StoreError> {
        let mut messages = Vec::new();
        for (k, v) in self.kv.scan(MESSAGES)? {
            messages.push(codec::decode_message(MESSAGES, &k, &v)?);
        }
        Room::restore(name, messages).map_err(|e| corrupt(MESSAGES, e))
    }

    /// Persists accepted messages atomically.
    pub fn persist(&self, messages: &[ChatMessage]) -> Result<(), StoreError> {
        let writes: Vec<Write> = messages
            .iter()
            .map(|m| Write {
                table: MESSAGES,
                key: codec::encode_seq(m.seq),
                value: Some(codec::encode_message(m)),
            })
            .collect();
        self.kv.commit(&writes)
    }
}

/// The set of rooms.
#[derive(Clone)]
pub struct DirectoryStore {
    kv: Arc<dyn KvStore>,
}

impl DirectoryStore {
    /// Wraps a namespace.
    pub fn new(kv: Arc<dyn KvStore>) -> Self {
        Self { kv }
    }

    /// Rebuilds the directory.
    pub fn load(&self) -> Result<RoomDirectory, StoreError> {
        let mut rooms = Vec::new();
        for (k, _) in self.kv.scan(ROOMS)? {
            let name = std::str::from_utf8(&k).map_err(|e| corrupt(ROOMS, e))?;
            rooms.push(RoomName::new(name).map_err(|e| corrupt(ROOMS, e))?);
        }
        Ok(RoomDirectory::restore(rooms))
    }

    /// Persists a created room.
    pub fn persist(&self, room: &RoomName) -> Result<(), StoreError> {
        self.kv.commit(&[Write {
            table: ROOMS,
            key: room.as_str().as_bytes().to_vec(),
            value: Some(Vec::new()),
        }])
    }
}

/// The whole chat of one process: its directory and one namespace per room.
#[derive(Clone)]
pub struct ChatStore {
    storage: crate::kv::Storage,
    directory: DirectoryStore,
}

impl ChatStore {
    /// The chat kept in `storage`.
    pub fn new(storage: crate::kv::Storage) -> Self {
        let directory = DirectoryStore::new(storage.namespace("directory"));
        Self { storage, directory }
    }

    fn room(&self, name: &RoomName) -> RoomStore {
        RoomStore::new(self.storage.namespace(&format!("room/{name}")))
    }

    /// Rebuilds the directory and every room in it.
    pub fn load(&self) -> Result<shared_domain::local::ChatState, StoreError> {
        let directory = self.directory.load()?;
        let rooms = directory
            .iter()
            .map(|name| self.room(name).load(name.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(shared_domain::local::ChatState::restore(directory, rooms))
    }
}

fn persisted(result: Result<(), StoreError>) -> Result<(), PersistError> {
    result.map_err(|e| PersistError(e.to_string()))
}

impl Persist<AccountChange> for AccountStore {
    fn persist(&self, change: &AccountChange) -> Result<(), PersistError> {
        persisted(AccountStore::persist(self, std::slice::from_ref(change)))
    }
    fn persist_all(&self, changes: &[AccountChange]) -> Result<(), PersistError> {
        persisted(AccountStore::persist(self, changes))
    }
}

impl Persist<JournalChange> for JournalStore {
    fn persist(&self, change: &JournalChange) -> Result<(), PersistError> {
        persisted(JournalStore::persist(self, std::slice::from_ref(change)))
    }
}

impl Persist<RoomChange> for ChatStore {
    fn persist(&self, change: &RoomChange) -> Result<(), PersistError> {
        persisted(match change {
            RoomChange::Created(room) => self.directory.persist(room),
            RoomChange::Posted(room, message) => {
                self.room(room).persist(std::slice::from_ref(message))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{Storage, StorageMode};
    use shared_domain::bank::{AccountStep, Begin, TransferRequest, TransferStatus};
    use shared_domain::chat::MessageText;
    use shared_domain::id::{ClientMsgId, TransferId, UserId};
    use shared_domain::money::{Amount, OpeningBalance};

    fn durable() -> (tempfile::TempDir, Storage) {
        let dir = crate::kv::test_dir();
        let storage =
            Storage::open(&StorageMode::Durable(dir.path().to_path_buf()), "t").expect("open");
        (dir, storage)
    }

    #[test]
    fn account_book_roundtrip() {
        let (_dir, storage) = durable();
        let store = AccountStore::new(storage.namespace("acc"));
        let mut book = AccountBook::new();
        let a = AccountId::new("a").expect("id");
        let c1 = book
            .open(a.clone(), OpeningBalance::new(10).expect("ok"))
            .expect("open");
        let (_, c2) = book
            .apply(&AccountStep {
                transfer_id: TransferId::new("t").expect("id"),
                kind: StepKind::Debit,
                account: a.clone(),
                amount: Amount::new(4).expect("ok"),
            })
            .expect("apply");
        store.persist(&[c1]).expect("persist");
        store.persist(&[c2.expect("changed")]).expect("persist");
        let loaded = store.load().expect("load");
        assert_eq!(loaded.balance(&a).expect("a").balance.minor_units(), 6);
        assert_eq!(loaded.remembered_steps(), 1);
        assert_eq!(loaded.totals(), book.totals());
        // A settled transfer's steps are deleted from the store too.
        let forgotten = book
            .forget(&TransferId::new("t").expect("id"))
            .expect("recorded");
        store.persist(&[forgotten]).expect("persist");
        let loaded = store.load().expect("load");
        assert_eq!(loaded.remembered_steps(), 0);
        assert_eq!(loaded.balance(&a).expect("a").balance.minor_units(), 6);
    }

    #[test]
    fn tombstones_survive_a_reload_until_they_expire() {
        let (_dir, storage) = durable();
        let store = AccountStore::new(storage.namespace("acc"));
        let tomb = |id: &str, until_us| AccountChange::Tombstone {
            transfer_id: TransferId::new(id).expect("id"),
            until_us,
        };
        store
            .persist(&[tomb("t1", 100), tomb("t2", 300)])
            .expect("persist");
        assert_eq!(
            store.tombstones(200).expect("read"),
            vec![(TransferId::new("t2").expect("id"), 300)]
        );
        // The expired one was deleted, not just skipped.
        assert_eq!(store.tombstones(0).expect("read").len(), 1);
    }

    #[test]
    fn journal_and_room_roundtrip() {
        let (_dir, storage) = durable();
        let journal = JournalStore::new(storage.namespace("j"));
        let mut book = TransferBook::new();
        let req = TransferRequest::new(
            TransferId::new("t1").expect("id"),
            AccountId::new("a").expect("id"),
            AccountId::new("b").expect("id"),
            Amount::new(5).expect("ok"),
        )
        .expect("valid");
        let Ok(Begin::Started(rec)) = book.begin(req) else {
            panic!("new transfer")
        };
        journal
            .persist(&[JournalChange::Put(rec.clone())])
            .expect("persist");
        assert_eq!(journal.load().expect("load").pending_count(), 1);
        let (done, _) = book
            .resolve(&rec.request.transfer_id, TransferStatus::Committed)
            .expect("known");
        journal
            .persist(&[JournalChange::Put(done.clone())])
            .expect("persist");
        assert_eq!(
            journal.load().expect("load").get(&rec.request.transfer_id),
            Ok(done)
        );

        let rooms = RoomStore::new(storage.namespace("room-r"));
        let name = RoomName::new("r").expect("id");
        let mut room = Room::new(name.clone());
        let (_, m) = room
            .post(
                UserId::new("u").expect("id"),
                MessageText::new("hi").expect("ok"),
                ClientMsgId::new("m").expect("id"),
                7,
            )
            .expect("post");
        rooms.persist(&[m.expect("new")]).expect("persist");
        let loaded = rooms.load(name).expect("load");
        assert_eq!(loaded.last_seq(), 1);
    }

    /// The chat served by `LocalRooms` over a durable `ChatStore` comes
    /// back whole after the process "restarts" (a fresh load).
    #[tokio::test]
    async fn local_rooms_survive_a_reload() {
        use shared_domain::chat::{HistoryQuery, PostRequest};
        use shared_domain::local::LocalRooms;
        use shared_domain::service::RoomsService;

        let (_dir, storage) = durable();
        let clock: std::sync::Arc<dyn Fn() -> u64 + Send + Sync> = std::sync::Arc::new(|| 7);
        let name = RoomName::new("lobby").expect("id");
        let post = |text: &str, id: &str| PostRequest {
            room: name.clone(),
            author: UserId::new("u").expect("id"),
            text: MessageText::new(text).expect("text"),
            client_msg_id: ClientMsgId::new(id).expect("id"),
        };
        {
            let store = ChatStore::new(storage.clone());
            let rooms = LocalRooms::restored(store.load().expect("load"), store, 4, clock.clone());
            rooms.create(name.clone()).await.expect("create");
            rooms.post(post("one", "m1")).await.expect("post");
            rooms.post(post("two", "m2")).await.expect("post");
        }
        let store = ChatStore::new(storage);
        let rooms = LocalRooms::restored(store.load().expect("load"), store, 4, clock);
        let history = rooms
            .history(
                &name,
                HistoryQuery {
                    after: 0,
                    limit: 10,
                },
            )
            .await
            .expect("room");
        assert_eq!(
            history.iter().map(|m| m.seq).collect::<Vec<_>>(),
            vec![1, 2]
        );
        // Idempotency survives too: a repeat answers the original seq.
        let again = rooms.post(post("one", "m1")).await.expect("repeat");
        assert!(again.duplicate && again.seq == 1);
        assert!(
            rooms.create(name).await.is_err(),
            "the directory was reloaded"
        );
    }
}
