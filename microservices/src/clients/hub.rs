//! The gateway's room hubs: one upstream subscription per room, fanned
//! out to every WebSocket session of that room in the gateway.
//!
//! Without them each session is its own gRPC stream from the chat service,
//! so a post to a room of a hundred readers is encoded, framed, sent and
//! decoded a hundred times between two processes; a gateway in front of a
//! chat service multiplexes instead (as the microlith's room actor sends
//! each post to its sessions in process). A hub is a
//! [`shared_domain::session::run_session`] of its own over the remote
//! rooms, delivering into a bounded broadcast channel; a session
//! subscribes to the channel first, then reads its backlog as a page of
//! history (durable, as the chat service answers it), then the channel.
//! Every session keeps its own cursor, so what the two overlap is skipped
//! and what a slow session misses (its receiver lagged the channel's
//! bound) ends its subscription: it resubscribes from its cursor, the
//! same as after a chat restart, and loses nothing.
//!
//! A hub stops when no session has listened to it for a second, or when
//! its upstream session ends; a subscriber then resubscribes to a new one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use parking_lot::Mutex;
use tokio::sync::broadcast;

use shared_domain::chat::{ChatMessage, HistoryQuery, PostOutcome, PostRequest};
use shared_domain::error::ChatResult;
use shared_domain::id::RoomName;
use shared_domain::service::{Pause, RoomsService, Subscription};
use shared_domain::session::{OutputError, SessionCursor, SessionOutput, run_session};

/// How often a hub looks for listeners when its room is quiet.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// The most messages of backlog a session reads in one page of history
/// before it listens to the hub (a session further behind resubscribes
/// for the next page). Small: a hundred readers lagging at once ask for a
/// page each, and a page of
/// [`SUBSCRIBE_BACKLOG`](shared_domain::limits::SUBSCRIBE_BACKLOG) 4 KB
/// messages is 4 MB held at both ends of the call (a slow-client run saw
/// the gateway and the chat service each at about 400 MiB with pages of
/// 1 000).
const BACKLOG_PAGE: u32 = 64;

type Hubs = Arc<Mutex<HashMap<RoomName, broadcast::Sender<ChatMessage>>>>;

/// [`RoomsService`] over `inner` (the chat service's client) whose
/// subscriptions share one upstream subscription per room.
pub struct RoomHubs {
    inner: Arc<dyn RoomsService>,
    pause: Arc<dyn Pause>,
    capacity: usize,
    hubs: Hubs,
}

impl RoomHubs {
    /// Hubs over `inner`, each buffering `capacity` messages for its
    /// slowest session, resubscribing upstream after `pause`.
    pub fn new(inner: Arc<dyn RoomsService>, pause: Arc<dyn Pause>, capacity: usize) -> Self {
        Self {
            inner,
            pause,
            capacity: capacity.max(1),
            hubs: Arc::default(),
        }
    }

    /// Rooms with a running hub.
    pub fn live(&self) -> usize {
        self.hubs.lock().len()
    }

    /// A receiver of `room`'s hub, starting one from `after` if none runs.
    fn listen(&self, room: &RoomName, after: u64) -> broadcast::Receiver<ChatMessage> {
        let mut hubs = self.hubs.lock();
        if let Some(tx) = hubs.get(room) {
            return tx.subscribe();
        }
        let (tx, rx) = broadcast::channel(self.capacity);
        hubs.insert(room.clone(), tx.clone());
        tokio::spawn(upstream(
            self.inner.clone(),
            self.pause.clone(),
            room.clone(),
            after,
            tx,
            self.hubs.clone(),
        ));
        rx
    }
}

/// A hub's output: every message to every receiver; none left is the end.
struct Fanout(broadcast::Sender<ChatMessage>);

#[async_trait]
impl SessionOutput for Fanout {
    async fn deliver(&mut self, message: ChatMessage) -> Result<(), OutputError> {
        self.0
            .send(message)
            .map(|_| ())
            .map_err(|_| OutputError::Closed)
    }
}

/// A hub's upstream: the room's messages from `after` into `tx`, until no
/// receiver is left or the session ends; then the hub is removed (if it
/// is still the room's), and its receivers' streams end with it.
async fn upstream(
    inner: Arc<dyn RoomsService>,
    pause: Arc<dyn Pause>,
    room: RoomName,
    after: u64,
    tx: broadcast::Sender<ChatMessage>,
    hubs: Hubs,
) {
    let mut cursor = SessionCursor::new(after);
    let mut out = Fanout(tx.clone());
    let unheard = async {
        loop {
            tokio::time::sleep(IDLE_CHECK).await;
            if tx.receiver_count() == 0 {
                return;
            }
        }
    };
    tokio::select! {
        end = run_session(&*inner, &room, &mut cursor, &mut out, &*pause) => {
            tracing::debug!(%room, ?end, "room hub's upstream ended");
        }
        () = unheard => {}
    }
    let mut hubs = hubs.lock();
    if hubs.get(&room).is_some_and(|t| t.same_channel(&tx)) {
        hubs.remove(&room);
    }
}

#[async_trait]
impl RoomsService for RoomHubs {
    async fn create(&self, room: RoomName) -> ChatResult<()> {
        self.inner.create(room).await
    }

    async fn post(&self, request: PostRequest) -> ChatResult<PostOutcome> {
        self.inner.post(request).await
    }

    async fn history(&self, room: &RoomName, query: HistoryQuery) -> ChatResult<Vec<ChatMessage>> {
        self.inner.history(room, query).await
    }

    /// The backlog after `after` (a page of history, [`BACKLOG_PAGE`]
    /// messages at most), then the room's hub. Listening starts before
    /// the page is read, so nothing falls between them; a page that is
    /// full ends the stream (the session resubscribes from its cursor for
    /// the next), and so does a receiver that lagged the hub or a hub that
    /// stopped.
    async fn subscribe(&self, room: &RoomName, after: u64) -> ChatResult<Subscription> {
        let rx = self.listen(room, after);
        let page = self
            .inner
            .history(
                room,
                HistoryQuery {
                    after,
                    limit: BACKLOG_PAGE,
                },
            )
            .await?;
        let caught_up = page.len() < BACKLOG_PAGE as usize;
        let backlog = futures::stream::iter(page.into_iter().map(Ok));
        if !caught_up {
            return Ok(backlog.boxed());
        }
        let live = futures::stream::unfold(rx, |mut rx| async move {
            match rx.recv().await {
                Ok(message) => Some((Ok(message), rx)),
                Err(
                    broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed,
                ) => None,
            }
        });
        Ok(backlog.chain(live).boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_domain::chat::MessageText;
    use shared_domain::id::{ClientMsgId, UserId};
    use shared_domain::local::LocalRooms;

    struct NoPause;

    #[async_trait]
    impl Pause for NoPause {
        async fn pause(&self, _attempt: u32) -> bool {
            tokio::time::sleep(Duration::from_millis(1)).await;
            true
        }
    }

    /// Counts the upstream subscriptions a [`RoomsService`] was asked for.
    struct Counting {
        inner: Arc<dyn RoomsService>,
        subscriptions: std::sync::atomic::AtomicUsize,
    }

    #[async_trait]
    impl RoomsService for Counting {
        async fn create(&self, room: RoomName) -> ChatResult<()> {
            self.inner.create(room).await
        }
        async fn post(&self, request: PostRequest) -> ChatResult<PostOutcome> {
            self.inner.post(request).await
        }
        async fn history(
            &self,
            room: &RoomName,
            query: HistoryQuery,
        ) -> ChatResult<Vec<ChatMessage>> {
            self.inner.history(room, query).await
        }
        async fn subscribe(&self, room: &RoomName, after: u64) -> ChatResult<Subscription> {
            self.subscriptions
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner.subscribe(room, after).await
        }
    }

    fn post(room: &RoomName, n: u64) -> PostRequest {
        PostRequest {
            room: room.clone(),
            author: UserId::new("u1").expect("user"),
            text: MessageText::new(&format!("message {n}")).expect("text"),
            client_msg_id: ClientMsgId::new(&format!("m{n}")).expect("id"),
        }
    }

    /// Reads `n` messages of a subscription session by session, the way
    /// the sessions do: resubscribing from the cursor when a stream ends.
    async fn read(hubs: &RoomHubs, room: &RoomName, after: u64, n: u64) -> Vec<u64> {
        let mut cursor = SessionCursor::new(after);
        let mut seen = Vec::new();
        while seen.len() < n as usize {
            let mut sub = hubs
                .subscribe(room, cursor.last_seq())
                .await
                .expect("subscribe");
            while let Some(Ok(m)) = sub.next().await {
                if cursor.accept(m.seq) == shared_domain::session::Delivery::Deliver {
                    seen.push(m.seq);
                }
                if seen.len() == n as usize {
                    break;
                }
            }
        }
        seen
    }

    async fn setup(capacity: usize) -> (Arc<Counting>, RoomHubs, RoomName) {
        let rooms = Arc::new(Counting {
            inner: Arc::new(LocalRooms::new(256, Arc::new(|| 0))),
            subscriptions: Default::default(),
        });
        let room = RoomName::new("general").expect("room");
        rooms.create(room.clone()).await.expect("create");
        let hubs = RoomHubs::new(rooms.clone(), Arc::new(NoPause), capacity);
        (rooms, hubs, room)
    }

    #[tokio::test]
    async fn many_sessions_of_a_room_share_one_upstream_and_each_gets_every_message_once() {
        let (rooms, hubs, room) = setup(64).await;
        for n in 1..=5 {
            rooms.post(post(&room, n)).await.expect("post");
        }
        let hubs = Arc::new(hubs);
        let readers: Vec<_> = (0..20)
            .map(|i| {
                let (hubs, room) = (hubs.clone(), room.clone());
                tokio::spawn(async move { read(&hubs, &room, i % 3, 40 - i % 3).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        for n in 6..=40 {
            rooms.post(post(&room, n)).await.expect("post");
        }
        for (i, reader) in readers.into_iter().enumerate() {
            let seen = reader.await.expect("reader");
            let from = (i as u64 % 3) + 1;
            assert_eq!(seen, (from..=40).collect::<Vec<_>>(), "reader {i}");
        }
        assert_eq!(
            rooms
                .subscriptions
                .load(std::sync::atomic::Ordering::SeqCst),
            1,
            "one upstream subscription for twenty sessions"
        );
    }

    #[tokio::test]
    async fn a_session_that_lags_the_hub_resumes_from_its_cursor_without_a_gap() {
        // A hub of 4: a reader that does not read while 50 messages pass
        // lags it, and must get all of them from history.
        let (rooms, hubs, room) = setup(4).await;
        let mut sub = hubs.subscribe(&room, 0).await.expect("subscribe");
        for n in 1..=50 {
            rooms.post(post(&room, n)).await.expect("post");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        // The lagged stream ends (after what it still holds, if anything).
        let mut cursor = SessionCursor::new(0);
        while let Some(Ok(m)) = sub.next().await {
            assert_ne!(cursor.accept(m.seq), shared_domain::session::Delivery::Gap);
        }
        assert!(cursor.last_seq() < 50, "the reader lagged the hub of 4");
        let rest = read(&hubs, &room, cursor.last_seq(), 50 - cursor.last_seq()).await;
        assert_eq!(rest, (cursor.last_seq() + 1..=50).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_backlog_longer_than_a_page_is_read_page_by_page_then_live() {
        let (rooms, hubs, room) = setup(64).await;
        let behind = u64::from(BACKLOG_PAGE) * 2 + 7;
        for n in 1..=behind {
            rooms.post(post(&room, n)).await.expect("post");
        }
        let first = hubs
            .subscribe(&room, 0)
            .await
            .expect("subscribe")
            .collect::<Vec<_>>()
            .await;
        assert_eq!(
            first.len(),
            BACKLOG_PAGE as usize,
            "a full page ends the stream"
        );
        let hubs = Arc::new(hubs);
        let reader = {
            let (hubs, room) = (hubs.clone(), room.clone());
            tokio::spawn(async move { read(&hubs, &room, 0, behind + 3).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        for n in behind + 1..=behind + 3 {
            rooms.post(post(&room, n)).await.expect("post");
        }
        let seen = reader.await.expect("reader");
        assert_eq!(seen, (1..=behind + 3).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_hub_nobody_listens_to_stops() {
        let (_rooms, hubs, room) = setup(8).await;
        let sub = hubs.subscribe(&room, 0).await.expect("subscribe");
        assert_eq!(hubs.live(), 1);
        drop(sub);
        tokio::time::sleep(IDLE_CHECK * 2 + Duration::from_millis(100)).await;
        assert_eq!(hubs.live(), 0);
    }

    #[tokio::test]
    async fn an_unknown_room_is_refused_and_leaves_no_hub() {
        let (_rooms, hubs, _) = setup(8).await;
        let nowhere = RoomName::new("nowhere").expect("room");
        assert!(hubs.subscribe(&nowhere, 0).await.is_err());
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(hubs.live(), 0);
    }
}
