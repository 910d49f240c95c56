//! A chat session: deliver every message of a room once, in order, across
//! room restarts and resubscriptions.
//!
//! Both variants run [`run_session`] for each connected user: the microlith
//! as one actor per user, the microservices' gateway over a gRPC stream.

use futures::StreamExt;

use crate::error::{CallError, ChatError};
use crate::id::RoomName;
use crate::service::{Pause, RoomsService};

use crate::chat::ChatMessage;

/// What to do with a message a subscription produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The next message: deliver it.
    Deliver,
    /// Already delivered (a replay after resubscribing): skip it.
    Duplicate,
    /// Messages are missing before it: resubscribe from the cursor.
    Gap,
}

/// The last sequence number a reader has seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionCursor {
    last_seq: u64,
}

impl SessionCursor {
    /// A cursor that has seen everything up to `after`.
    pub fn new(after: u64) -> Self {
        Self { last_seq: after }
    }

    /// The last delivered sequence number.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Classifies `seq` and advances the cursor when it is the next one.
    pub fn accept(&mut self, seq: u64) -> Delivery {
        if seq <= self.last_seq {
            Delivery::Duplicate
        } else if seq == self.last_seq + 1 {
            self.last_seq = seq;
            Delivery::Deliver
        } else {
            Delivery::Gap
        }
    }
}

/// Why a reader's output refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputError {
    /// The reader is too far behind: its buffer stayed full for longer
    /// than the output tolerates.
    Full,
    /// The reader went away.
    Closed,
}

/// Where a session delivers messages: a bounded buffer towards the client.
/// A reader replaying a backlog drains it continuously, so waiting briefly
/// for room is backpressure; a reader that stops draining makes `deliver`
/// fail with [`OutputError::Full`] after the output's own patience.
#[async_trait::async_trait]
pub trait SessionOutput: Send {
    /// Hands over one message, waiting a bounded time for room.
    async fn deliver(&mut self, message: ChatMessage) -> Result<(), OutputError>;
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// The reader fell too far behind; it may resume with `after=last_seq`.
    Lagged {
        /// The last message handed to the reader.
        last_seq: u64,
    },
    /// The reader went away.
    Closed,
    /// The room does not exist.
    UnknownRoom,
    /// The runtime is shutting down.
    Stopped,
}

/// Delivers every message of `room` after the cursor to `out`, forever:
/// on a room restart or a dropped subscription it resubscribes from the
/// cursor, so nothing is lost or repeated.
pub async fn run_session(
    rooms: &dyn RoomsService,
    room: &RoomName,
    cursor: &mut SessionCursor,
    out: &mut dyn SessionOutput,
    pause: &dyn Pause,
) -> SessionEnd {
    let mut attempt = 0u32;
    loop {
        let mut subscription = match rooms.subscribe(room, cursor.last_seq()).await {
            Ok(sub) => sub,
            Err(CallError::Domain(ChatError::UnknownRoom(_))) => return SessionEnd::UnknownRoom,
            Err(_) => {
                attempt = attempt.saturating_add(1);
                if !pause.pause(attempt).await {
                    return SessionEnd::Stopped;
                }
                continue;
            }
        };
        let mut progressed = false;
        while let Some(item) = subscription.next().await {
            let Ok(message) = item else { break };
            progressed = true;
            attempt = 0;
            match cursor.accept(message.seq) {
                Delivery::Deliver => match out.deliver(message).await {
                    Ok(()) => {}
                    Err(OutputError::Full) => {
                        return SessionEnd::Lagged {
                            last_seq: cursor.last_seq() - 1,
                        };
                    }
                    Err(OutputError::Closed) => return SessionEnd::Closed,
                },
                Delivery::Duplicate => {}
                Delivery::Gap => break,
            }
        }
        // The subscription ended (a backlog page, a room restart, or the room
        // dropped us): go again from the cursor; pause first when nothing
        // came through, so a crash loop is not a busy loop.
        if progressed {
            continue;
        }
        attempt = attempt.saturating_add(1);
        if !pause.pause(attempt).await {
            return SessionEnd::Stopped;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_dedups_and_detects_gaps() {
        let mut cursor = SessionCursor::new(2);
        assert_eq!(cursor.accept(1), Delivery::Duplicate);
        assert_eq!(cursor.accept(2), Delivery::Duplicate);
        assert_eq!(cursor.accept(4), Delivery::Gap);
        assert_eq!(cursor.accept(3), Delivery::Deliver);
        assert_eq!(cursor.accept(4), Delivery::Deliver);
        assert_eq!(cursor.last_seq(), 4);
    }
}
