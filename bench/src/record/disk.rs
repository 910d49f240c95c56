//! What the disk did while a durable run was measured.

use serde::{Deserialize, Serialize};

/// A sync of the probe's own file slower than this is a stall of the
/// disk: the edges' latency target (`edge::LATENCY_TARGET_MS`), past which
/// a commit held up that long makes the edge refuse by design.
pub const DISK_STALL_MS: f64 = 50.0;

/// The probe's reading over one run: a 4 KiB write and `fdatasync` of a
/// file of its own on the stores' disk every [`DISK_PROBE_EVERY_MS`],
/// beside the system under test and sharing nothing with it but the disk.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DiskRecord {
    /// Syncs made.
    pub syncs: u64,
    /// Their median, microseconds.
    pub p50_us: f64,
    /// 99th.
    pub p99_us: f64,
    /// The slowest.
    pub max_us: f64,
    /// Syncs slower than [`DISK_STALL_MS`].
    pub stalls: u64,
}

/// How often the probe syncs.
pub const DISK_PROBE_EVERY_MS: u64 = 20;

impl DiskRecord {
    /// The disk stalled while the run was measured.
    pub fn stalled(&self) -> bool {
        self.stalls > 0
    }
}
