//! Slow and abandoned clients beside ordinary ones: the same transfers at
//! the same rate without them, beside them at a decoy, then with them.

use serde::{Deserialize, Serialize};

use super::RunRecord;

/// One variant's slow-clients run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SlowRecord {
    /// The variant.
    pub variant: String,
    /// The ordinary transfers, alone.
    pub without: RunRecord,
    /// The same transfers while the same slow clients are at a decoy (a
    /// monolith started for it): what they cost the shared machine without
    /// touching the measured edge. None where no decoy could be started
    /// (compose, external targets) and in runs before it existed.
    #[serde(default)]
    pub decoy: Option<RunRecord>,
    /// The same transfers, slow clients at the edge meanwhile.
    pub with: RunRecord,
    /// The variant's processes' peak RSS during `without`, bytes.
    pub rss_without: u64,
    /// And during `with`.
    pub rss_with: u64,
    /// What each kind of slow client met.
    pub attacks: Vec<AttackRecord>,
}

/// One kind of slow client, kept at `held` connections for the run (a
/// connection the edge closes is opened again).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AttackRecord {
    /// What they do.
    pub kind: String,
    /// Connections kept at once.
    pub held: u64,
    /// Connections opened over the run.
    pub opened: u64,
    /// Connections the edge closed (or, for a request, answered and
    /// closed).
    pub cut: u64,
    /// Of those, answered with an error status first (a 408 for a body
    /// that stopped coming).
    pub answered: u64,
    /// The longest a connection was held before it was cut, seconds.
    pub longest_s: f64,
    /// Connections the edge refused or that failed to open.
    pub refused: u64,
}

/// Where a slow-clients run stands against issue 16's target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlowVerdict {
    /// The ordinary clients' p99 with slow clients over without.
    pub p99_ratio: f64,
    /// Peak RSS with over without.
    pub rss_ratio: f64,
    /// The ordinary clients' p99 beside the slow clients at a decoy over
    /// alone: the machine's share of `p99_ratio`.
    pub machine_ratio: Option<f64>,
    /// With them at the edge over with them at a decoy: the edge's own
    /// share.
    pub edge_ratio: Option<f64>,
    /// Whether every kind of HTTP slow client (heads, silent, bodies) was
    /// cut off at least once. (A WebSocket non-reader is cut once its
    /// socket's buffers are full and a send has waited 5 s, or it is
    /// 1 024 messages behind: how soon depends on the kernel's buffers,
    /// and in a short run it may not come; its count is shown, not
    /// judged.)
    pub all_cut: bool,
    /// Errors of the ordinary clients (not 2xx or a correct 409) with slow
    /// clients beside them.
    pub errors_with: u64,
}

/// Issue 16's target: the ordinary clients' p99 within this factor.
pub const P99_RATIO: f64 = 2.0;

impl SlowRecord {
    /// Its verdict.
    pub fn verdict(&self) -> SlowVerdict {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        SlowVerdict {
            p99_ratio: ratio(self.with.p99_us, self.without.p99_us),
            rss_ratio: ratio(self.rss_with as f64, self.rss_without as f64),
            machine_ratio: self
                .decoy
                .as_ref()
                .map(|d| ratio(d.p99_us, self.without.p99_us)),
            edge_ratio: self
                .decoy
                .as_ref()
                .map(|d| ratio(self.with.p99_us, d.p99_us)),
            all_cut: !self.attacks.is_empty()
                && self
                    .attacks
                    .iter()
                    .filter(|a| !a.kind.starts_with("WebSocket"))
                    .all(|a| a.cut > 0),
            errors_with: self.with.errors(),
        }
    }
}
