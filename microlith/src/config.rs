//! The microlith's configuration, built explicitly by the binary.

use std::net::SocketAddr;
use std::time::Duration;

use store::StorageMode;

/// Every knob of a microlith.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the edge listens.
    pub listen: SocketAddr,
    /// Memory or durable (redb) storage.
    pub storage: StorageMode,
    /// Account shards (actors).
    pub account_shards: usize,
    /// Transfer journal shards (actors).
    pub journal_shards: usize,
    /// Mailbox capacity of every actor; a full mailbox sheds load (429).
    pub mailbox: usize,
    /// How long a caller waits for an actor.
    pub call_timeout: Duration,
    /// How far a room subscriber may fall behind before it resubscribes.
    pub subscriber_buffer: usize,
    /// Settled transfers kept in memory with durable storage, over all
    /// journal shards (the rest are read back from disk when asked for).
    pub keep_settled: usize,
    /// Messages each room keeps in memory with durable storage.
    pub keep_messages: usize,
    /// How far a WebSocket reader may fall behind before it is disconnected.
    pub session_buffer: usize,
    /// Restart intensity: restarts tolerated...
    pub max_restarts: u32,
    /// ...within this window, per supervisor.
    pub restart_window: Duration,
    /// Serve `/admin/crash/{actor}` (fault injection for the harness).
    pub fault_injection: bool,
    /// Edge limits.
    pub edge: edge::EdgeConfig,
}
