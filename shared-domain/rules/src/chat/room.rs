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

/// One room's state: every message, or, when bounded
/// ([`Room::bounded`]), the newest ones: a message known durable elsewhere
/// may leave memory, and the room's holder reads older pages
/// ([`Room::page`]) and repeated posts ([`Room::recall_post`]) back from
/// where it is kept.
#[derive(Debug, Clone)]
pub struct Room {
    name: RoomName,
    /// The messages in memory, in order: `messages[0]` has seq `first`.
    messages: Vec<ChatMessage>,
    first: u64,
    /// The idempotency index of the messages in memory.
    posts: FastMap<(UserId, ClientMsgId), u64>,
    /// Messages up to this seq are durable (may leave memory).
    durable: u64,
    /// Messages kept in memory at least, when bounded; `None` keeps all.
    keep: Option<usize>,
    /// Posts read back for a repeat (their messages left memory), newest
    /// last; at most [`RECALLED_POSTS`].
    recalled: Vec<ChatMessage>,
}

/// Messages a bounded room keeps in memory by default.
pub const KEEP_MESSAGES: usize = 1024;
/// Posts read back for repeats that a room remembers.
const RECALLED_POSTS: usize = 64;

impl Room {
    /// An empty room.
    pub fn new(name: RoomName) -> Self {
        Self {
            name,
            messages: Vec::new(),
            first: 1,
            posts: FastMap::default(),
            durable: 0,
            keep: None,
            recalled: Vec::new(),
        }
    }

    /// This room, keeping at least `keep` (and at most twice as many)
    /// messages in memory once they are durable ([`Room::durable_through`]).
    pub fn bounded(mut self, keep: usize) -> Self {
        self.keep = Some(keep);
        self.spill();
        self
    }

    /// Rebuilds a room from its persisted messages. They must be the
    /// sequence 1, 2, 3, ...; anything else is reported, not repaired.
    pub fn restore(
        name: RoomName,
        messages: impl IntoIterator<Item = ChatMessage>,
    ) -> Result<Self, crate::error::Violation> {
        Self::restore_tail(name, 1, messages)
    }

    /// Rebuilds a room from its newest persisted messages, which must be
    /// the sequence `first`, `first + 1`, ... (the ones before it stay
    /// where they are kept); anything else is reported, not repaired. They
    /// are durable.
    pub fn restore_tail(
        name: RoomName,
        first: u64,
        messages: impl IntoIterator<Item = ChatMessage>,
    ) -> Result<Self, crate::error::Violation> {
        let mut room = Self::new(name);
        room.first = first.max(1);
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
        room.durable = room.last_seq();
        Ok(room)
    }

    /// The room's name.
    pub fn name(&self) -> &RoomName {
        &self.name
    }

    /// The last accepted sequence number (0 when empty).
    pub fn last_seq(&self) -> u64 {
        self.first - 1 + self.messages.len() as u64
    }

    /// The oldest message in memory (`last_seq() + 1` when none is).
    pub fn first_seq(&self) -> u64 {
        self.first
    }

    /// Messages up to `seq` are durable: a bounded room may let the
    /// oldest go.
    pub fn durable_through(&mut self, seq: u64) {
        self.durable = self.durable.max(seq.min(self.last_seq()));
        self.spill();
    }

    /// Drops durable messages beyond the bound, in chunks (so the cost per
    /// message stays constant): from `2 * keep` back to `keep`.
    fn spill(&mut self) {
        let Some(keep) = self.keep else {
            return;
        };
        if self.messages.len() <= keep.saturating_mul(2).max(1) {
            return;
        }
        let durable_in_memory = self.durable.saturating_sub(self.first - 1) as usize;
        let drop = (self.messages.len() - keep).min(durable_in_memory);
        for message in self.messages.drain(..drop) {
            self.posts
                .remove(&(message.author.clone(), message.client_msg_id.clone()));
        }
        self.first += drop as u64;
    }

    /// Whether a post of `author` under `client_msg_id` may have left
    /// memory: its holder reads it back ([`Room::recall_post`]) before
    /// posting it.
    pub fn may_have_left(&self, author: &UserId, client_msg_id: &ClientMsgId) -> bool {
        self.first > 1
            && !self
                .posts
                .contains_key(&(author.clone(), client_msg_id.clone()))
            && !self
                .recalled
                .iter()
                .any(|m| m.author == *author && m.client_msg_id == *client_msg_id)
    }

    /// Takes back a post that left memory, for a repeat of it to answer.
    pub fn recall_post(&mut self, message: ChatMessage) {
        if message.seq >= self.first {
            return; // in memory already
        }
        if self.recalled.len() == RECALLED_POSTS {
            self.recalled.remove(0);
        }
        self.recalled.push(message);
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
        let original = match self.posts.get(&key) {
            Some(seq) => Some(&self.messages[(*seq - self.first) as usize]),
            None => self
                .recalled
                .iter()
                .find(|m| m.author == key.0 && m.client_msg_id == key.1),
        };
        if let Some(original) = original {
            if original.text == text {
                return Ok((
                    PostOutcome {
                        seq: original.seq,
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

    /// The messages in memory with `seq > query.after`, at most
    /// `query.limit` of them. A query from before [`Room::first_seq`]
    /// needs the older ones too: see [`Room::page`].
    pub fn history(&self, query: HistoryQuery) -> &[ChatMessage] {
        let start = usize::try_from(query.after.saturating_sub(self.first - 1))
            .unwrap_or(usize::MAX)
            .min(self.messages.len());
        let end = start
            .saturating_add(query.limit as usize)
            .min(self.messages.len());
        &self.messages[start..end]
    }

    /// The page `query` asks for: the messages that left memory from
    /// `older` (asked for exactly the ones before [`Room::first_seq`]),
    /// then the ones in memory; checked gap-free.
    pub fn page<E: From<crate::error::Violation>>(
        &self,
        query: HistoryQuery,
        older: impl FnOnce(HistoryQuery) -> Result<Vec<ChatMessage>, E>,
    ) -> Result<Vec<ChatMessage>, E> {
        if query.after.saturating_add(1) >= self.first {
            return Ok(self.history(query).to_vec());
        }
        let before = (self.first - 1 - query.after).min(u64::from(query.limit)) as u32;
        let mut page = older(HistoryQuery {
            after: query.after,
            limit: before,
        })?;
        let rest = query.limit - before;
        if rest > 0 {
            page.extend(
                self.history(HistoryQuery {
                    after: self.first - 1,
                    limit: rest,
                })
                .iter()
                .cloned(),
            );
        }
        for (i, message) in page.iter().enumerate() {
            let expected = query.after + 1 + i as u64;
            if message.seq != expected {
                return Err(crate::error::Violation::ChatGap {
                    room: self.name.to_string(),
                    expected,
                    found: message.seq,
                }
                .into());
            }
        }
        Ok(page)
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
    fn a_bounded_room_lets_only_durable_messages_go_and_pages_through_the_older_ones() {
        let mut room = Room::new(RoomName::new("r").expect("id")).bounded(4);
        let mut stored = Vec::new();
        for i in 1..=20 {
            let (_, new) = room
                .post(user("u"), text(&format!("m{i}")), cmid(&format!("c{i}")), i)
                .expect("post");
            stored.push(new.expect("new"));
        }
        assert_eq!(room.first_seq(), 1, "nothing durable yet: all kept");
        room.durable_through(10);
        assert_eq!(
            room.first_seq(),
            11,
            "the durable ones beyond the bound left"
        );
        room.durable_through(20);
        assert_eq!(room.first_seq(), 17, "down to the bound, in one chunk");
        assert_eq!(room.last_seq(), 20);
        // A page from before the window reads the older ones back.
        let older = |q: HistoryQuery| -> Result<Vec<ChatMessage>, crate::error::Violation> {
            Ok(stored
                .iter()
                .filter(|m| m.seq > q.after)
                .take(q.limit as usize)
                .cloned()
                .collect())
        };
        let page = room
            .page(HistoryQuery::new(Some(14), Some(5)).expect("q"), older)
            .expect("page");
        assert_eq!(
            page.iter().map(|m| m.seq).collect::<Vec<_>>(),
            vec![15, 16, 17, 18, 19]
        );
        // A store that returns a gap is reported, not served.
        let gappy = |_: HistoryQuery| -> Result<Vec<ChatMessage>, crate::error::Violation> {
            Ok(vec![stored[0].clone(), stored[2].clone()])
        };
        assert!(
            room.page(HistoryQuery::new(Some(0), Some(3)).expect("q"), gappy)
                .is_err()
        );
        // A repeat of a post that left: read back, answered as recorded.
        assert!(room.may_have_left(&user("u"), &cmid("c2")));
        room.recall_post(stored[1].clone());
        assert!(!room.may_have_left(&user("u"), &cmid("c2")));
        let (outcome, new) = room
            .post(user("u"), text("m2"), cmid("c2"), 99)
            .expect("repeat");
        assert_eq!((outcome.seq, outcome.duplicate, new), (2, true, None));
        assert_eq!(
            room.post(user("u"), text("other"), cmid("c2"), 99),
            Err(ChatError::IdempotencyConflict(cmid("c2")))
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
