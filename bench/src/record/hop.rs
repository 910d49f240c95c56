//! One hop measured alone: the cost model's micro-measurement.

use serde::{Deserialize, Serialize};

/// Calls from the harness straight to one service of the split system,
/// one at a time at a fixed pace (`crate::part::hop`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HopRecord {
    /// The protocol: `grpc` or `http/json`.
    pub protocol: String,
    /// The call made, e.g. `bank.v1.Accounts/Balance`.
    pub call: String,
    /// The repeat it ran in.
    pub repeat: u32,
    /// Calls per second asked.
    pub rate: f64,
    /// Calls answered in the measured window.
    pub calls: u64,
    /// Calls that failed in it.
    pub failed: u64,
    /// Why the first of them failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// A call's latency at p50, µs.
    pub p50_us: f64,
    /// A call's latency at p99, µs.
    pub p99_us: f64,
    /// The caller's CPU per call (the probe's own thread, which does
    /// nothing else), µs.
    pub caller_cpu_us: Option<f64>,
    /// The callee's CPU per call (its process, its idle CPU taken off), µs.
    pub callee_cpu_us: Option<f64>,
}

impl HopRecord {
    /// Both sides' CPU per call, µs.
    pub fn cpu_us(&self) -> Option<f64> {
        Some(self.caller_cpu_us? + self.callee_cpu_us?)
    }
}
