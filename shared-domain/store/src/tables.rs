//! Typed stores, one per component: persist a transition's changes, and
//! rebuild the domain state after a crash.

use std::sync::Arc;

use shared_domain::bank::{
    AccountBook, AccountChange, Committed, JournalChange, StepKind, TransferBook, TransferRecord,
};
use shared_domain::chat::{ChatMessage, HistoryQuery, Room, RoomChange, RoomDirectory};
use shared_domain::id::{AccountId, ClientMsgId, RoomName, TransferId, UserId};
use shared_domain::local::{Persist, PersistError, Recall};

use crate::codec::{self, corrupt};
use crate::kv::{Done, KvStore, StoreError, Write};

const BALANCES: &str = "balances";
const STEPS: &str = "steps";
const TRANSFERS: &str = "transfers";
const MESSAGES: &str = "messages";
/// A room's post index: (author, client_msg_id) → seq, for a repeat of a
/// post whose message left memory.
const POSTS: &str = "posts";
const ROOMS: &str = "rooms";
const TOMBSTONES: &str = "tombstones";

/// A store of one component's state: its changes become writes to its
/// namespace, and it commits them (one transaction per call, synced before
/// `done` runs; calls apply in the order they were made).
pub trait Typed<C>: Send + Sync {
    /// The namespace it writes.
    fn kv(&self) -> &Arc<dyn KvStore>;

    /// The writes that persist `changes`.
    fn writes(changes: &[C]) -> Vec<Write>
    where
        Self: Sized;

    /// Persists changes atomically.
    fn persist(&self, changes: &[C]) -> Result<(), StoreError>
    where
        Self: Sized,
    {
        self.kv().commit(&Self::writes(changes))
    }

    /// Hands changes over as one commit; `done` runs once it is durable.
    fn persist_then(&self, changes: &[C], done: Done)
    where
        Self: Sized,
    {
        self.kv().commit_then(Self::writes(changes), done);
    }

    /// Returns once everything handed over before is durable.
    fn barrier(&self) -> Result<(), StoreError> {
        self.kv().barrier()
    }

    /// `done` runs once everything handed over before is durable.
    fn barrier_then(&self, done: Done) {
        self.kv().barrier_then(done);
    }
}

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

    /// Rebuilds the shard's book from every commit handed over so far.
    pub fn load(&self) -> Result<AccountBook, StoreError> {
        self.kv.barrier()?;
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
}

impl Typed<AccountChange> for AccountStore {
    fn kv(&self) -> &Arc<dyn KvStore> {
        &self.kv
    }

    fn writes(changes: &[AccountChange]) -> Vec<Write> {
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
        writes
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

    /// Rebuilds the journal from every commit handed over so far.
    pub fn load(&self) -> Result<TransferBook, StoreError> {
        self.kv.barrier()?;
        let mut records = Vec::new();
        for (k, v) in self.kv.scan(TRANSFERS)? {
            records.push(codec::decode_transfer(TRANSFERS, &k, &v)?);
        }
        Ok(TransferBook::restore(records))
    }

    /// Rebuilds the journal from every commit handed over so far, keeping
    /// in memory every pending record and at most `keep` settled ones; the
    /// rest stay on disk ([`JournalStore::get`] reads one back).
    pub fn load_bounded(&self, keep: usize) -> Result<TransferBook, StoreError> {
        self.kv.barrier()?;
        let mut book = TransferBook::new().bounded(keep);
        self.kv.for_each(TRANSFERS, &mut |k, v| {
            book.restore_one(codec::decode_transfer(TRANSFERS, k, v)?);
            Ok(())
        })?;
        Ok(book)
    }

    /// The durable record of a transfer, if any.
    pub fn get(&self, transfer_id: &TransferId) -> Result<Option<TransferRecord>, StoreError> {
        let key = transfer_id.as_str().as_bytes();
        self.kv
            .get(TRANSFERS, key)?
            .map(|v| codec::decode_transfer(TRANSFERS, key, &v))
            .transpose()
    }

    /// What the journal committed, from every record handed over so far
    /// (the base a read model of the journal starts from). One pass over
    /// the records in one read: memory stays flat however long the
    /// journal, and the count is the number of the last commit it saw.
    pub fn committed(&self) -> Result<Committed, StoreError> {
        self.kv.barrier()?;
        let mut committed = Committed::default();
        self.kv.for_each(TRANSFERS, &mut |k, v| {
            committed.add(&codec::decode_transfer(TRANSFERS, k, v)?);
            Ok(())
        })?;
        Ok(committed)
    }
}

impl Typed<JournalChange> for JournalStore {
    fn kv(&self) -> &Arc<dyn KvStore> {
        &self.kv
    }

    fn writes(changes: &[JournalChange]) -> Vec<Write> {
        changes
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
            .collect()
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

    /// Rebuilds the room from every commit handed over so far, keeping
    /// its newest `keep` messages in memory (the rest stay on disk: see
    /// [`RoomStore::older`] and [`RoomStore::find_post`]); a gap in the
    /// stored sequence is corruption.
    pub fn load_bounded(&self, name: RoomName, keep: usize) -> Result<Room, StoreError> {
        self.kv.barrier()?;
        let mut tail = std::collections::VecDeque::with_capacity(keep.min(65_536) + 1);
        self.kv.for_each(MESSAGES, &mut |k, v| {
            tail.push_back(codec::decode_message(MESSAGES, k, v)?);
            if tail.len() > keep {
                tail.pop_front();
            }
            Ok(())
        })?;
        let first = tail.front().map_or(1, |m| m.seq);
        Ok(Room::restore_tail(name, first, tail)
            .map_err(|e| corrupt(MESSAGES, e))?
            .bounded(keep))
    }

    /// The stored messages `query` asks for (those after `query.after`, at
    /// most `query.limit`).
    pub fn older(&self, query: HistoryQuery) -> Result<Vec<ChatMessage>, StoreError> {
        self.kv
            .range(
                MESSAGES,
                &codec::encode_seq(query.after.saturating_add(1)),
                query.limit as usize,
            )?
            .iter()
            .map(|(k, v)| codec::decode_message(MESSAGES, k, v))
            .collect()
    }

    /// The stored message `author` posted under `client_msg_id`, if any.
    pub fn find_post(
        &self,
        author: &UserId,
        client_msg_id: &ClientMsgId,
    ) -> Result<Option<ChatMessage>, StoreError> {
        let Some(seq) = self
            .kv
            .get(POSTS, &codec::encode_post_key(author, client_msg_id))?
        else {
            return Ok(None);
        };
        let key = codec::encode_seq(codec::decode_seq(POSTS, &seq)?);
        self.kv
            .get(MESSAGES, &key)?
            .map(|v| codec::decode_message(MESSAGES, &key, &v))
            .transpose()
    }

    /// Rebuilds the room from every commit handed over so far; a gap in
    /// the stored sequence is corruption.
    pub fn load(&self, name: RoomName) -> Result<Room, StoreError> {
        self.kv.barrier()?;
        let mut messages = Vec::new();
        for (k, v) in self.kv.scan(MESSAGES)? {
            messages.push(codec::decode_message(MESSAGES, &k, &v)?);
        }
        Room::restore(name, messages).map_err(|e| corrupt(MESSAGES, e))
    }
}

impl Typed<ChatMessage> for RoomStore {
    fn kv(&self) -> &Arc<dyn KvStore> {
        &self.kv
    }

    fn writes(messages: &[ChatMessage]) -> Vec<Write> {
        messages
            .iter()
            .flat_map(|m| {
                [
                    Write {
                        table: MESSAGES,
                        key: codec::encode_seq(m.seq),
                        value: Some(codec::encode_message(m)),
                    },
                    Write {
                        table: POSTS,
                        key: codec::encode_post_key(&m.author, &m.client_msg_id),
                        value: Some(m.seq.to_be_bytes().to_vec()),
                    },
                ]
            })
            .collect()
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

    /// Rebuilds the directory from every commit handed over so far.
    pub fn load(&self) -> Result<RoomDirectory, StoreError> {
        self.kv.barrier()?;
        let mut rooms = Vec::new();
        for (k, _) in self.kv.scan(ROOMS)? {
            let name = std::str::from_utf8(&k).map_err(|e| corrupt(ROOMS, e))?;
            rooms.push(RoomName::new(name).map_err(|e| corrupt(ROOMS, e))?);
        }
        Ok(RoomDirectory::restore(rooms))
    }
}

impl Typed<RoomName> for DirectoryStore {
    fn kv(&self) -> &Arc<dyn KvStore> {
        &self.kv
    }

    /// Created rooms.
    fn writes(rooms: &[RoomName]) -> Vec<Write> {
        rooms
            .iter()
            .map(|room| Write {
                table: ROOMS,
                key: room.as_str().as_bytes().to_vec(),
                value: Some(Vec::new()),
            })
            .collect()
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

    /// Rebuilds the directory and every room in it, each keeping its
    /// newest `keep` messages in memory (new rooms too).
    pub fn load_bounded(&self, keep: usize) -> Result<shared_domain::local::ChatState, StoreError> {
        let directory = self.directory.load()?;
        let rooms = directory
            .iter()
            .map(|name| self.room(name).load_bounded(name.clone(), keep))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(shared_domain::local::ChatState::restore(directory, rooms).bounded(keep))
    }
}

/// A store's [`Done`] that runs the domain's.
fn relay(done: shared_domain::local::Done) -> Done {
    Box::new(move |result| done(result.map_err(|e| PersistError(e.to_string()))))
}

impl Persist<AccountChange> for AccountStore {
    fn persist_then(&self, changes: &[AccountChange], done: shared_domain::local::Done) {
        Typed::persist_then(self, changes, relay(done));
    }
    fn barrier_then(&self, done: shared_domain::local::Done) {
        Typed::<AccountChange>::barrier_then(self, relay(done));
    }
}

impl Recall<TransferId, TransferRecord> for JournalStore {
    fn recall(&self, key: &TransferId) -> Result<Option<TransferRecord>, PersistError> {
        self.get(key).map_err(|e| PersistError(e.to_string()))
    }
}

impl Persist<JournalChange> for JournalStore {
    fn persist_then(&self, changes: &[JournalChange], done: shared_domain::local::Done) {
        Typed::persist_then(self, changes, relay(done));
    }
    fn barrier_then(&self, done: shared_domain::local::Done) {
        Typed::<JournalChange>::barrier_then(self, relay(done));
    }
}

impl Recall<(RoomName, HistoryQuery), Vec<ChatMessage>> for ChatStore {
    fn recall(
        &self,
        (room, query): &(RoomName, HistoryQuery),
    ) -> Result<Option<Vec<ChatMessage>>, PersistError> {
        self.room(room)
            .older(*query)
            .map(Some)
            .map_err(|e| PersistError(e.to_string()))
    }
}

impl Recall<(RoomName, UserId, ClientMsgId), ChatMessage> for ChatStore {
    fn recall(
        &self,
        (room, author, client_msg_id): &(RoomName, UserId, ClientMsgId),
    ) -> Result<Option<ChatMessage>, PersistError> {
        self.room(room)
            .find_post(author, client_msg_id)
            .map_err(|e| PersistError(e.to_string()))
    }
}

impl Persist<RoomChange> for ChatStore {
    /// A room's creation goes to the directory, a message to its room;
    /// both are commits of one database, so their order holds.
    fn persist_then(&self, changes: &[RoomChange], done: shared_domain::local::Done) {
        match changes {
            [] => self.directory.kv.barrier_then(relay(done)),
            [RoomChange::Created(room)] => self
                .directory
                .persist_then(std::slice::from_ref(room), relay(done)),
            [RoomChange::Posted(room, message)] => self
                .room(room)
                .persist_then(std::slice::from_ref(message), relay(done)),
            more => {
                // Not made by the domain today (one change per call), but
                // kept correct: commits apply in order and once one fails
                // every later one does, so the last one's outcome is all
                // of theirs.
                let Some((last, before)) = more.split_last() else {
                    return done(Ok(()));
                };
                for change in before {
                    self.persist_then(std::slice::from_ref(change), Box::new(|_| {}));
                }
                self.persist_then(std::slice::from_ref(last), done);
            }
        }
    }
    fn barrier_then(&self, done: shared_domain::local::Done) {
        self.directory.kv.barrier_then(relay(done));
    }
}

#[cfg(test)]
mod tests;
