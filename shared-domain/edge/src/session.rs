//! Chat sessions: one task per connected user, running the shared session
//! loop against whatever serves the rooms (room actors, or the chat
//! service's gRPC stream). Both variants hold sessions at their edge.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use shared_domain::chat::ChatMessage;
use shared_domain::error::ChatResult;
use shared_domain::id::{RoomName, UserId};
use shared_domain::service::{Pause, RoomsService, SessionEvent, SessionHandle, SessionsService};
use shared_domain::session::{OutputError, SessionCursor, SessionEnd, SessionOutput, run_session};

/// The most bytes of message text one session holds for its reader,
/// whatever its buffer's count: a reader that stops reading costs the
/// edge this much at most (1 024 messages of the largest text would be
/// 4 MiB, and a hundred such readers held 400 MiB in one gateway): a
/// bound in bytes per connection, as NATS's `max_pending`. Each message
/// counts its whole text, also where readers share it.
pub const SESSION_BYTES: usize = 1 << 20;

/// Delivers into a bounded channel towards the WebSocket, waiting at most
/// `patience` for room: room for one more message, and for its text
/// within the session's [`SESSION_BYTES`].
struct ChannelOutput {
    tx: mpsc::Sender<(ChatMessage, OwnedSemaphorePermit)>,
    bytes: Arc<Semaphore>,
    patience: Duration,
}

#[async_trait::async_trait]
impl SessionOutput for ChannelOutput {
    async fn deliver(&mut self, message: ChatMessage) -> Result<(), OutputError> {
        // An empty text still takes a byte: the count bounds the rest.
        let need = message.text.as_str().len().clamp(1, SESSION_BYTES);
        let need = u32::try_from(need).unwrap_or(u32::MAX);
        let room = async {
            let held = self
                .bytes
                .clone()
                .acquire_many_owned(need)
                .await
                .map_err(|_| OutputError::Closed)?;
            self.tx
                .send((message, held))
                .await
                .map_err(|_| OutputError::Closed)
        };
        match tokio::time::timeout(self.patience, room).await {
            Ok(sent) => sent,
            Err(_) => Err(OutputError::Full),
        }
    }
}

/// Starts a session task for `user` in `room` (whose existence the caller
/// checked) and returns its event stream. The task ends when the reader
/// goes away, falls `buffer` messages (or [`SESSION_BYTES`]) behind, or
/// the pause says stop.
pub fn spawn_session(
    rooms: Arc<dyn RoomsService>,
    pause: Arc<dyn Pause>,
    room: RoomName,
    user: UserId,
    after: u64,
    buffer: usize,
    patience: Duration,
) -> SessionHandle {
    let (tx, rx) = mpsc::channel::<(ChatMessage, OwnedSemaphorePermit)>(buffer.max(1));
    let bytes = Arc::new(Semaphore::new(SESSION_BYTES));
    let (end_tx, end_rx) = oneshot::channel();
    let closed = tx.clone();
    let span = tracing::debug_span!("session", %room, %user);
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            let mut cursor = SessionCursor::new(after);
            let mut out = ChannelOutput {
                tx,
                bytes,
                patience,
            };
            let end = tokio::select! {
                end = run_session(&*rooms, &room, &mut cursor, &mut out, &*pause) => end,
                () = closed.closed() => SessionEnd::Closed,
            };
            let event = match end {
                SessionEnd::Lagged { last_seq } => SessionEvent::Lagged { last_seq },
                SessionEnd::Closed => return,
                SessionEnd::UnknownRoom | SessionEnd::Stopped => SessionEvent::Ended,
            };
            let _ = end_tx.send(event);
        },
        span,
    ));
    // A message's bytes are free again once the WebSocket takes it.
    let messages = futures::stream::poll_fn({
        let mut rx = rx;
        move |cx| {
            rx.poll_recv(cx)
                .map(|next| next.map(|(message, _held)| SessionEvent::Message(message)))
        }
    });
    let end = futures::stream::once(async move { end_rx.await.unwrap_or(SessionEvent::Ended) });
    SessionHandle {
        events: messages.chain(end).boxed(),
    }
}

/// Checks a room exists before a WebSocket upgrade (404 before upgrading).
pub async fn check_room(rooms: &dyn RoomsService, room: &RoomName) -> ChatResult<()> {
    rooms
        .history(
            room,
            shared_domain::chat::HistoryQuery {
                after: u64::MAX,
                limit: 1,
            },
        )
        .await
        .map(|_| ())
}

/// Sessions: one task per connected user, over any [`RoomsService`].
pub struct TaskSessions {
    rooms: Arc<dyn RoomsService>,
    pause: Arc<dyn Pause>,
    buffer: usize,
    patience: Duration,
}

impl TaskSessions {
    /// Sessions over `rooms` that resubscribe after `pause`, buffer `buffer`
    /// messages per reader and wait `patience` for a slow reader.
    pub fn new(
        rooms: Arc<dyn RoomsService>,
        pause: Arc<dyn Pause>,
        buffer: usize,
        patience: Duration,
    ) -> Self {
        Self {
            rooms,
            pause,
            buffer,
            patience,
        }
    }
}

#[async_trait::async_trait]
impl SessionsService for TaskSessions {
    async fn connect(&self, room: RoomName, user: UserId, after: u64) -> ChatResult<SessionHandle> {
        check_room(&*self.rooms, &room).await?;
        Ok(spawn_session(
            self.rooms.clone(),
            self.pause.clone(),
            room,
            user,
            after,
            self.buffer,
            self.patience,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_domain::chat::{MessageText, PostRequest};
    use shared_domain::id::ClientMsgId;
    use shared_domain::local::LocalRooms;

    struct NoPause;

    #[async_trait::async_trait]
    impl Pause for NoPause {
        async fn pause(&self, _attempt: u32) -> bool {
            tokio::time::sleep(Duration::from_millis(1)).await;
            true
        }
    }

    /// A session over a room holding `n` messages of `len` bytes, read
    /// only once its task had time to fill its buffer: the messages it
    /// held, and how it ended (`None`: still open).
    async fn unread_session(n: u64, len: usize) -> (u64, Option<SessionEvent>) {
        let rooms: Arc<dyn RoomsService> = Arc::new(LocalRooms::new(4096, Arc::new(|| 0)));
        let room = RoomName::new("general").expect("room");
        rooms.create(room.clone()).await.expect("create");
        for i in 0..n {
            rooms
                .post(PostRequest {
                    room: room.clone(),
                    author: UserId::new("u1").expect("user"),
                    text: MessageText::new(&"x".repeat(len)).expect("text"),
                    client_msg_id: ClientMsgId::new(&format!("m{i}")).expect("id"),
                })
                .await
                .expect("post");
        }
        let mut session = spawn_session(
            rooms,
            Arc::new(NoPause),
            room,
            UserId::new("reader").expect("user"),
            0,
            1024,
            Duration::from_millis(50),
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut held = 0;
        loop {
            match tokio::time::timeout(Duration::from_millis(200), session.events.next()).await {
                Ok(Some(SessionEvent::Message(m))) => {
                    held += 1;
                    assert_eq!(m.seq, held, "in order, without gaps");
                }
                Ok(Some(end)) => return (held, Some(end)),
                Ok(None) | Err(_) => return (held, None),
            }
        }
    }

    #[tokio::test]
    async fn a_reader_that_stops_is_held_to_its_bytes_not_only_to_its_count() {
        // 600 messages of 4 000 bytes: under the count of 1 024, past the
        // bytes after 262 of them.
        let (held, end) = unread_session(600, 4000).await;
        let fit = (SESSION_BYTES / 4000) as u64;
        assert_eq!(held, fit, "{end:?}");
        assert!(
            matches!(end, Some(SessionEvent::Lagged { last_seq }) if last_seq == fit),
            "{end:?}"
        );
    }

    #[tokio::test]
    async fn small_messages_are_held_to_the_count() {
        // 600 short messages fit both bounds: all of them, still open.
        let (held, end) = unread_session(600, 10).await;
        assert_eq!((held, end.is_none()), (600, true), "{end:?}");
    }
}
