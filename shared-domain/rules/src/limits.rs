//! The sizes API.md bounds, below every module that checks or reports them.

/// The longest message text, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 4096;
/// The most messages one history page returns.
pub const MAX_HISTORY_LIMIT: u32 = 1000;
/// The page size when `limit` is not given.
pub const DEFAULT_HISTORY_LIMIT: u32 = 100;
/// The most backlog messages one subscription carries before its live
/// messages; a reader further behind gets a stream that ends after them,
/// and its session resubscribes from its cursor (paging through).
pub const SUBSCRIBE_BACKLOG: u32 = 1000;
