//! The generator checked against oha at the same rates.

use serde::{Deserialize, Serialize};

/// How far apart the two generators' p50 and p99 may be before the report
/// flags the difference: 15 %.
pub const AGREEMENT: f64 = 0.15;

/// One endpoint at one rate, measured by both generators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossCheck {
    /// `floor` (the echo endpoint) or a variant.
    pub target: String,
    /// What was requested (path).
    pub path: String,
    /// Requests per second, both.
    pub rate: f64,
    /// Seconds each generator ran.
    pub seconds: f64,
    /// Ours: p50 and p99 from the schedule, µs.
    pub ours_p50_us: f64,
    /// Ours.
    pub ours_p99_us: f64,
    /// oha's p50 with `--latency-correction`, µs.
    pub oha_p50_us: f64,
    /// oha's p99.
    pub oha_p99_us: f64,
    /// oha's achieved rate.
    pub oha_rate: f64,
    /// Answers oha got that were not 200.
    pub oha_errors: u64,
    /// The exact oha command.
    pub command: String,
}

impl CrossCheck {
    /// Whether both percentiles agree within [`AGREEMENT`] (as a share of
    /// oha's).
    pub fn agrees(&self) -> bool {
        let close = |ours: f64, theirs: f64| (ours - theirs).abs() <= AGREEMENT * theirs.max(1e-9);
        close(self.ours_p50_us, self.oha_p50_us) && close(self.ours_p99_us, self.oha_p99_us)
    }
}

/// The cross-check of a run: oha's version and every comparison.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CrossCheckRecord {
    /// `oha --version`.
    pub oha_version: String,
    /// Each endpoint and rate.
    pub checks: Vec<CrossCheck>,
}
/// oha's connections: enough for the rates of the cross-check (a few
/// thousand per second at sub-millisecond latency).
pub const OHA_CONNECTIONS: usize = 16;
