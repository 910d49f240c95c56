//! The chat: rooms with gap-free sequence numbers, idempotent posts, and
//! the rules a session follows to deliver every message exactly once.
//!
//! # Layout
//! - [`room`]: a [`Room`]'s history and its post rule.
//! - [`session`]: a [`SessionCursor`] (dedup and gap detection) and the
//!   session loop shared by both variants.

pub mod room;
pub mod session;

pub use room::{
    ChatMessage, HistoryQuery, MessageText, PostOutcome, PostRequest, Room, RoomChange,
    RoomDirectory,
};
pub use session::{Delivery, OutputError, SessionCursor, SessionEnd, SessionOutput, run_session};

/// The longest message text, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 4096;
/// The most messages one history page returns.
pub const MAX_HISTORY_LIMIT: u32 = 1000;
/// The page size when `limit` is not given.
pub const DEFAULT_HISTORY_LIMIT: u32 = 100;
