//! Chat sessions: one task per connected user, running the shared session
//! loop against whatever serves the rooms (room actors, or the chat
//! service's gRPC stream). Both variants hold sessions at their edge.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};

use shared_domain::chat::ChatMessage;
use shared_domain::error::ChatResult;
use shared_domain::id::{RoomName, UserId};
use shared_domain::service::{Pause, RoomsService, SessionEvent, SessionHandle, SessionsService};
use shared_domain::session::{OutputError, SessionCursor, SessionEnd, SessionOutput, run_session};

/// Delivers into a bounded channel towards the WebSocket, waiting at most
/// `patience` for room.
struct ChannelOutput {
    tx: mpsc::Sender<SessionEvent>,
    patience: Duration,
}

#[async_trait::async_trait]
impl SessionOutput for ChannelOutput {
    async fn deliver(&mut self, message: ChatMessage) -> Result<(), OutputError> {
        match tokio::time::timeout(self.patience, self.tx.send(SessionEvent::Message(message)))
            .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(OutputError::Closed),
            Err(_) => Err(OutputError::Full),
        }
    }
}

/// Starts a session task for `user` in `room` (whose existence the caller
/// checked) and returns its event stream. The task ends when the reader
/// goes away, falls `buffer` messages behind, or the pause says stop.
pub fn spawn_session(
    rooms: Arc<dyn RoomsService>,
    pause: Arc<dyn Pause>,
    room: RoomName,
    user: UserId,
    after: u64,
    buffer: usize,
    patience: Duration,
) -> SessionHandle {
    let (tx, rx) = mpsc::channel(buffer.max(1));
    let (end_tx, end_rx) = oneshot::channel();
    let closed = tx.clone();
    let span = tracing::debug_span!("session", %room, %user);
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            let mut cursor = SessionCursor::new(after);
            let mut out = ChannelOutput { tx, patience };
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
    let messages = futures::stream::poll_fn({
        let mut rx = rx;
        move |cx| rx.poll_recv(cx)
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
