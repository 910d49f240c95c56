//! The chat: rooms with gap-free sequence numbers, idempotent posts, and
//! the rules a session follows to deliver every message exactly once.
//!
//! # Layout
//! - [`room`]: a [`Room`]'s history and its post rule.

pub mod room;

pub use room::{
    ChatMessage, HistoryQuery, KEEP_MESSAGES, MessageText, PostOutcome, PostRequest, Room,
    RoomChange, RoomDirectory,
};

pub use crate::limits::{
    DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT, MAX_TEXT_BYTES, SUBSCRIBE_BACKLOG,
};
