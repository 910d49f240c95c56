//! The microservices' replicated read model's lag (the ledger).

use serde::{Deserialize, Serialize};

/// The lag of the entries applied between two samples.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LagRecord {
    /// Entries applied in between.
    pub entries: u64,
    /// Their mean lag, milliseconds.
    pub mean_ms: f64,
    /// Share of them applied within each bound (seconds), finite bounds only.
    pub within: Vec<(f64, f64)>,
}

impl LagRecord {
    /// The smallest bound holding at least `share` of the entries, seconds.
    pub fn bound_for(&self, share: f64) -> Option<f64> {
        self.within.iter().find(|w| w.1 >= share).map(|w| w.0)
    }
}
