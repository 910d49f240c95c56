//! One room: its messages in sequence order and its idempotency index.

use crate::{FastMap, FastSet};
use std::sync::Arc;

use crate::error::ChatError;
use crate::id::{ClientMsgId, RoomName, UserId};

use super::{DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT, MAX_TEXT_BYTES};

/// A message text: 1 ..= 4096 bytes of UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageText(Arc<str>);

impl MessageText {
    /// Validates a text: empty is [`ChatError::InvalidText`], longer than
    /// 4096 bytes is [`ChatError::MessageTooLarge`].
    pub fn new(raw: &str) -> Result<Self, ChatError> {
        if raw.is_empty() {
            return Err(ChatError::InvalidText);
        }
        if raw.len() > MAX_TEXT_BYTES {
            return Err(ChatError::MessageTooLarge);
        }
        Ok(Self(Arc::from(raw)))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A validated post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostRequest {
    /// The room posted to.
    pub room: RoomName,
    /// Who posts.
    pub author: UserId,
    /// What.
    pub text: MessageText,
    /// The idempotency key per (room, author).
    pub client_msg_id: ClientMsgId,
}

/// An accepted message as every reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Its place in the room: 1, 2, 3, ... with no gaps.
    pub seq: u64,
    /// Who posted it.
    pub author: UserId,
    /// The text.
    pub text: MessageText,
    /// When the room accepted it, microseconds since the Unix epoch.
    pub ts_us: u64,
    /// The author's idempotency key (not shown in API.md's message JSON).
    pub client_msg_id: ClientMsgId,
}

/// The answer to a post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostOutcome {
    /// The message's sequence number.
    pub seq: u64,
    /// True when this was a repeat that returned the original `seq`.
    pub duplicate: bool,
}

/// A validated history query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Messages with `seq > after`.
    pub after: u64,
    /// At most this many, 1 ..= 1000.
    pub limit: u32,
}

impl HistoryQuery {
    /// Validates `limit` (1 ..= 1000, default 100); `after` defaults to 0.
    pub fn new(after: Option<u64>, limit: Option<u32>) -> Option<Self> {
        let limit = limit.unwrap_or(DEFAULT_HISTORY_LIMIT);
        (1..=MAX_HISTORY_LIMIT).contains(&limit).then_some(Self {
            after: after.unwrap_or(0),
            limit,
        })
    }
}

/// One room's state.
#[derive(Debug, Clone)]
pub struct Room {
    name: RoomName,
    messages: Vec<ChatMessage>,
    posts: FastMap<(UserId, ClientMsgId), u64>,
}

impl Room {
    /// An empty room.
    pub fn new(name: RoomName) -> Self {
        Self {
            name,
            messages: Vec::new(),
            posts: FastMap::default(),
        }
    }

    /// Rebuilds a room from its persisted messages. They must be the
    /// sequence 1, 2, 3, ...; anything else is reported, not repaired.
    pub fn restore(
        name: RoomName,
        messages: impl IntoIterator<Item = ChatMessage>,
    ) -> Result<Self, crate::error::Violation> {
        let mut room = Self::new(name);
        for message in messages {
            let expected = room.last_seq() + 1;
            if message.seq != expected {
                return Err(crate::error::Violation::ChatGap {
                    room: room.name.to_string(),
                    expected,
                    found: message.seq,
                });
            }
            room.posts.insert(
                (message.author.clone(), message.client_msg_id.clone()),
                message.seq,
            );
            room.messages.push(message);
        }
        Ok(room)
    }

    /// The room's name.
    pub fn name(&self) -> &RoomName {
        &self.name
    }

    /// The last accepted sequence number (0 when empty).
    pub fn last_seq(&self) -> u64 {
        self.messages.len() as u64
    }

    /// Accepts a post, or answers a repeat. Returns the new message (to
    /// persist and broadcast) when one was accepted.
    pub fn post(
        &mut self,
        author: UserId,
        text: MessageText,
        client_msg_id: ClientMsgId,
        now_us: u64,
    ) -> Result<(PostOutcome, Option<ChatMessage>), ChatError> {
        let key = (author, client_msg_id);
        if let Some(seq) = self.posts.get(&key) {
            let original = &self.messages[(*seq - 1) as usize];
            if original.text == text {
                return Ok((
                    PostOutcome {
                        seq: *seq,
                        duplicate: true,
                    },
                    None,
                ));
            }
            return Err(ChatError::IdempotencyConflict(key.1));
        }
        let seq = self.last_seq() + 1;
        let message = ChatMessage {
            seq,
            author: key.0.clone(),
            text,
            ts_us: now_us,
            client_msg_id: key.1.clone(),
        };
        self.posts.insert(key, seq);
        self.messages.push(message.clone());
        Ok((
            PostOutcome {
                seq,
                duplicate: false,
            },
            Some(message),
        ))
    }

    /// Messages with `seq > query.after`, at most `query.limit` of them.
    pub fn history(&self, query: HistoryQuery) -> &[ChatMessage] {
        let start = usize::try_from(query.after)
            .unwrap_or(usize::MAX)
            .min(self.messages.len());
        let end = start
            .saturating_add(query.limit as usize)
            .min(self.messages.len());
        &self.messages[start..end]
    }
}

/// One change to the chat's state, to persist before it is acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomChange {
    /// A room was created.
    Created(RoomName),
    /// A message was accepted in a room.
    Posted(RoomName, ChatMessage),
}

/// The set of rooms that exist.
#[derive(Debug, Default, Clone)]
pub struct RoomDirectory {
    rooms: FastSet<RoomName>,
}

impl RoomDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the directory from persisted names.
    pub fn restore(rooms: impl IntoIterator<Item = RoomName>) -> Self {
        Self {
            rooms: rooms.into_iter().collect(),
        }
    }

    /// Creates a room; an existing name is [`ChatError::RoomExists`].
    pub fn create(&mut self, room: RoomName) -> Result<(), ChatError> {
        if self.rooms.contains(&room) {
            return Err(ChatError::RoomExists(room));
        }
        self.rooms.insert(room);
        Ok(())
    }

    /// Whether the room exists.
    pub fn contains(&self, room: &RoomName) -> bool {
        self.rooms.contains(room)
    }

    /// All rooms.
    pub fn iter(&self) -> impl Iterator<Item = &RoomName> {
        self.rooms.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(s: &str) -> UserId {
        UserId::new(s).expect("id")
    }
    fn cmid(s: &str) -> ClientMsgId {
        ClientMsgId::new(s).expect("id")
    }
    fn text(s: &str) -> MessageText {
        MessageText::new(s).expect("text")
    }

    #[test]
    fn text_limits() {
        assert_eq!(MessageText::new(""), Err(ChatError::InvalidText));
        assert!(MessageText::new(&"x".repeat(4096)).is_ok());
        assert_eq!(
            MessageText::new(&"x".repeat(4097)),
            Err(ChatError::MessageTooLarge)
        );
        // 1366 three-byte characters are 4098 bytes.
        assert_eq!(
            MessageText::new(&"€".repeat(1366)),
            Err(ChatError::MessageTooLarge)
        );
    }

    #[test]
    fn posts_are_sequenced_and_idempotent() {
        let mut room = Room::new(RoomName::new("r").expect("id"));
        let (a, _) = room.post(user("u"), text("hi"), cmid("m1"), 1).expect("ok");
        let (b, _) = room.post(user("v"), text("hi"), cmid("m1"), 2).expect("ok");
        assert_eq!((a.seq, b.seq), (1, 2));
        let (again, new) = room.post(user("u"), text("hi"), cmid("m1"), 3).expect("ok");
        assert_eq!(
            again,
            PostOutcome {
                seq: 1,
                duplicate: true
            }
        );
        assert!(new.is_none());
        assert_eq!(
            room.post(user("u"), text("other"), cmid("m1"), 4),
            Err(ChatError::IdempotencyConflict(cmid("m1")))
        );
        assert_eq!(room.last_seq(), 2);
    }

    #[test]
    fn history_pages() {
        let mut room = Room::new(RoomName::new("r").expect("id"));
        for i in 0..10 {
            room.post(user("u"), text("x"), cmid(&format!("m{i}")), i)
                .expect("ok");
        }
        let page = room.history(HistoryQuery::new(Some(3), Some(4)).expect("valid"));
        assert_eq!(
            page.iter().map(|m| m.seq).collect::<Vec<_>>(),
            vec![4, 5, 6, 7]
        );
        assert!(
            room.history(HistoryQuery::new(Some(99), None).expect("valid"))
                .is_empty()
        );
        assert!(HistoryQuery::new(None, Some(0)).is_none());
        assert!(HistoryQuery::new(None, Some(1001)).is_none());
    }

    #[test]
    fn restore_refuses_gaps() {
        let mut room = Room::new(RoomName::new("r").expect("id"));
        for i in 0..3 {
            room.post(user("u"), text("x"), cmid(&format!("m{i}")), i)
                .expect("ok");
        }
        let mut msgs = room
            .history(HistoryQuery::new(None, None).expect("valid"))
            .to_vec();
        assert!(Room::restore(room.name().clone(), msgs.clone()).is_ok());
        msgs.remove(1);
        assert!(Room::restore(room.name().clone(), msgs).is_err());
    }
}
