//! Rooms: one [`RoomActor`] per room (as in the Erlang chat design) and a
//! [`DirectoryActor`] that creates them.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use parking_lot::{Mutex, RwLock};
use tokio::sync::mpsc;

use shared_domain::chat::{
    ChatMessage, HistoryQuery, PostOutcome, PostRequest, Room, RoomDirectory,
};
use shared_domain::error::{CallError, ChatError, ChatResult};
use shared_domain::id::RoomName;
use shared_domain::service::Subscription;
use store::{DirectoryStore, RoomStore, Storage, Typed};

use crate::runtime::{Actor, ActorRef, Reply, StartError, SupervisorHandle};

use super::{Batch, Outbox};

pub use shared_domain::chat::SUBSCRIBE_BACKLOG;

/// Messages of a room.
pub enum RoomMsg {
    /// Post a message.
    Post(PostRequest, Reply<ChatResult<PostOutcome>>),
    /// Read history.
    History(HistoryQuery, Reply<ChatResult<Vec<ChatMessage>>>),
    /// Subscribe from `after`.
    Subscribe(u64, Reply<ChatResult<Subscription>>),
    /// Fault injection: panic inside the handler.
    Crash,
}

/// Arguments kept across restarts.
pub struct RoomArgs {
    /// The room.
    pub name: RoomName,
    /// Its store.
    pub store: RoomStore,
    /// How far a subscriber may fall behind before it is dropped (it then
    /// resubscribes from its cursor and loses nothing).
    pub subscriber_buffer: usize,
    /// Messages kept in memory with durable storage (older pages and
    /// repeated posts are read back from the store); `None` keeps all.
    pub keep: Option<usize>,
}

/// A room actor.
pub struct RoomActor {
    room: Room,
    store: RoomStore,
    buffer: usize,
    accepted: Vec<ChatMessage>,
    published: Arc<Mutex<Published>>,
    replies: Outbox,
}

/// What subscribers have been sent: every message up to `seq`, each once
/// it was durable, in order. The store's committing thread adds to it as
/// batches become durable; a subscribe reads it, so a new subscriber's
/// backlog ends where the live messages begin.
struct Published {
    seq: u64,
    subscribers: Vec<mpsc::Sender<ChatResult<ChatMessage>>>,
}

impl Actor for RoomActor {
    type Msg = RoomMsg;
    type Args = Arc<RoomArgs>;

    fn start(args: &Self::Args) -> Result<Self, StartError> {
        let room = match args.keep {
            Some(keep) => args.store.load_bounded(args.name.clone(), keep),
            None => args.store.load(args.name.clone()),
        }
        .map_err(|e| StartError(e.to_string()))?;
        Ok(Self {
            published: Arc::new(Mutex::new(Published {
                seq: room.last_seq(),
                subscribers: Vec::new(),
            })),
            room,
            store: args.store.clone(),
            buffer: args.subscriber_buffer,
            accepted: Vec::new(),
            replies: Outbox::new(),
        })
    }

    fn handle(&mut self, msg: RoomMsg) {
        // What was published is durable: a bounded room may let it go.
        let published = self.published.lock().seq;
        self.room.durable_through(published);
        match msg {
            RoomMsg::Post(request, reply) => {
                if self
                    .room
                    .may_have_left(&request.author, &request.client_msg_id)
                {
                    match self
                        .store
                        .find_post(&request.author, &request.client_msg_id)
                    {
                        Ok(Some(original)) => self.room.recall_post(original),
                        Ok(None) => {}
                        Err(e) => {
                            let _ = reply.send(Err(CallError::Unavailable(e.to_string())));
                            return;
                        }
                    }
                }
                let res = self
                    .room
                    .post(
                        request.author,
                        request.text,
                        request.client_msg_id,
                        edge::now_us(),
                    )
                    .map(|(outcome, new)| {
                        self.accepted.extend(new);
                        outcome
                    });
                self.replies
                    .send(self.accepted.is_empty(), reply, res.map_err(Into::into));
            }
            RoomMsg::History(query, reply) => {
                let page = self
                    .room
                    .page(query, |older| self.store.older(older))
                    .map_err(|e| CallError::Unavailable(e.to_string()));
                self.replies.send(self.accepted.is_empty(), reply, page);
            }
            RoomMsg::Subscribe(after, reply) => {
                // Only what was published (durable): the answer needs no
                // commit to wait for.
                let mut published = self.published.lock();
                let page = self.room.page(
                    HistoryQuery {
                        after,
                        limit: SUBSCRIBE_BACKLOG,
                    },
                    |older| self.store.older(older),
                );
                let backlog: Vec<_> = match page {
                    Ok(page) => page
                        .into_iter()
                        .take_while(|m| m.seq <= published.seq)
                        .collect(),
                    Err(e) => {
                        drop(published);
                        let _ = reply.send(Err(CallError::Unavailable(e.to_string())));
                        return;
                    }
                };
                let caught_up = backlog.last().map_or(after, |m| m.seq) >= published.seq;
                let backlog = futures::stream::iter(backlog.into_iter().map(Ok));
                let subscription = if caught_up {
                    let (tx, rx) = mpsc::channel(self.buffer.max(1));
                    published.subscribers.push(tx);
                    backlog.chain(tokio_stream_from(rx)).boxed()
                } else {
                    backlog.boxed()
                };
                drop(published);
                let _ = reply.send(Ok(subscription));
            }
            RoomMsg::Crash => panic!("injected crash"),
        }
    }

    fn flush(&mut self) {
        let fresh = self.accepted.clone();
        let published = self.published.clone();
        Batch {
            what: "room",
            changes: &mut self.accepted,
            store: Some(&self.store),
            replies: &mut self.replies,
        }
        .commit_then(move || {
            let mut published = published.lock();
            for message in fresh {
                if message.seq <= published.seq {
                    continue;
                }
                published.seq = message.seq;
                // A subscriber that is full fell behind: drop it; its
                // session resubscribes from its cursor and loses nothing.
                published
                    .subscribers
                    .retain(|s| s.try_send(Ok(message.clone())).is_ok());
            }
        });
    }

    fn finish(&mut self) {
        self.flush();
        let _ = self.store.barrier();
    }
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Room actors by name. Read on every post; written when a room is created.
pub struct RoomRegistry {
    rooms: RwLock<HashMap<RoomName, ActorRef<RoomMsg>>>,
    supervisor: SupervisorHandle,
    storage: Storage,
    mailbox: usize,
    subscriber_buffer: usize,
    keep: Option<usize>,
}

impl RoomRegistry {
    /// An empty registry that starts rooms under `supervisor`.
    pub fn new(
        supervisor: SupervisorHandle,
        storage: Storage,
        mailbox: usize,
        subscriber_buffer: usize,
        keep: Option<usize>,
    ) -> Self {
        Self {
            rooms: RwLock::default(),
            supervisor,
            storage,
            mailbox,
            subscriber_buffer,
            keep,
        }
    }

    /// The actor of a room, if it exists.
    pub fn get(&self, room: &RoomName) -> Option<ActorRef<RoomMsg>> {
        self.rooms.read().get(room).cloned()
    }

    /// Starts the room's actor unless it runs already.
    pub fn ensure(&self, room: &RoomName) -> ActorRef<RoomMsg> {
        if let Some(actor) = self.get(room) {
            return actor;
        }
        let mut rooms = self.rooms.write();
        rooms
            .entry(room.clone())
            .or_insert_with(|| {
                self.supervisor.spawn::<RoomActor>(
                    &format!("room:{room}"),
                    Arc::new(RoomArgs {
                        name: room.clone(),
                        store: RoomStore::new(self.storage.namespace(&format!("room/{room}"))),
                        subscriber_buffer: self.subscriber_buffer,
                        keep: self.keep,
                    }),
                    self.mailbox,
                )
            })
            .clone()
    }

    /// Every room actor.
    pub fn all(&self) -> Vec<ActorRef<RoomMsg>> {
        self.rooms.read().values().cloned().collect()
    }
}

/// Messages of the room directory.
pub enum DirectoryMsg {
    /// Create a room.
    Create(RoomName, Reply<ChatResult<()>>),
    /// Fault injection: panic inside the handler.
    Crash,
}

/// Arguments kept across restarts.
pub struct DirectoryArgs {
    /// The directory's store.
    pub store: DirectoryStore,
    /// Where room actors live.
    pub registry: Arc<RoomRegistry>,
}

/// The room directory actor: the set of rooms, and their actors.
pub struct DirectoryActor {
    directory: RoomDirectory,
    args: Arc<DirectoryArgs>,
}

impl Actor for DirectoryActor {
    type Msg = DirectoryMsg;
    type Args = Arc<DirectoryArgs>;

    fn start(args: &Self::Args) -> Result<Self, StartError> {
        let directory = args.store.load().map_err(|e| StartError(e.to_string()))?;
        for room in directory.iter() {
            args.registry.ensure(room);
        }
        Ok(Self {
            directory,
            args: args.clone(),
        })
    }

    fn handle(&mut self, msg: DirectoryMsg) {
        match msg {
            DirectoryMsg::Create(room, reply) => {
                let res = match self.directory.create(room.clone()) {
                    Ok(()) => {
                        if let Err(e) = self.args.store.persist(std::slice::from_ref(&room)) {
                            panic!("directory store commit failed: {e}");
                        }
                        self.args.registry.ensure(&room);
                        Ok(())
                    }
                    Err(e) => Err(e.into()),
                };
                let _ = reply.send(res);
            }
            DirectoryMsg::Crash => panic!("injected crash"),
        }
    }
}

/// The error for a room that has no actor.
pub fn unknown_room(room: &RoomName) -> ChatError {
    ChatError::UnknownRoom(room.clone())
}
