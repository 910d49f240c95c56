//! Where a run's sampled requests spent their time.

use serde::{Deserialize, Serialize};

/// A run's time breakdown (stored in `raw.json` with its run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Breakdown {
    /// Sampled requests answered (correctly) with their timing.
    pub samples: usize,
    /// Of them, those in the band around the median whose parts are
    /// averaged.
    pub band: usize,
    /// Generator → edge and back, outside the router, µs.
    pub outside_us: f64,
    /// The edge's own time, µs.
    pub edge_us: f64,
    /// Hops, net of their callees' own time, µs.
    pub hops_us: f64,
    /// Handlers behind the edge, net of the hops they made, µs.
    pub handlers_us: f64,
    /// Hops per request on the critical path (the band's mean).
    pub hops: f64,
    /// One hop's cost, the median over every sampled hop of the run, µs.
    pub hop_us: f64,
}

impl Breakdown {
    /// Sums the parts (without the generator's send lag).
    pub fn total_us(&self) -> f64 {
        self.outside_us + self.edge_us + self.hops_us + self.handlers_us
    }
}

/// About how many requests a run samples: one in
/// `max(1, requests / STRIDE)`, warm-up excluded.
pub const STRIDE: u64 = 512;
