//! Seeded chaos: a variant under concurrent transfers and posts while a
//! seeded sequence of faults hits it, then every invariant checked.

use serde::{Deserialize, Serialize};

use super::FaultRecord;

/// One chaos round.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChaosRecord {
    /// The variant.
    pub variant: String,
    /// The seed that chose the faults and their moments: the round is
    /// run again by `bench run chaos --chaos-variant <variant>
    /// --chaos-seed <seed> --chaos-rounds 1`.
    pub seed: u64,
    /// The faults, in the order they were made.
    pub faults: Vec<ChaosFault>,
    /// The transfers meanwhile: their timeline, and the audit after.
    pub transfers: FaultRecord,
    /// The posts meanwhile, likewise.
    pub posts: FaultRecord,
    /// Each fault reached the process serving at its moment. Set since
    /// session 18; before it, a fault made by PID after a restart of a
    /// one-process variant went to the process that had exited
    /// ([`ChaosRecord::reached_exited_process`]).
    #[serde(default)]
    pub follows_restarts: bool,
}

/// One fault of a round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChaosFault {
    /// Its kind (`crash`, `pause`, … as in the fault table).
    pub kind: String,
    /// When it was made, seconds from the start of the round.
    pub at_s: f64,
    /// How long after it what it hit was back, when that is measured.
    pub back_s: Option<f64>,
}

impl ChaosRecord {
    /// Acknowledged transfers and posts re-read after the round.
    pub fn acknowledged_checked(&self) -> u64 {
        [&self.transfers, &self.posts]
            .iter()
            .filter_map(|r| r.audit.as_ref()?.acknowledged_checked)
            .sum()
    }

    /// Whether a round recorded before the harness followed restarts had
    /// a fault made by PID after a restart of its one-process variant
    /// (the monolith's crash, pause or restart after its crash or restart;
    /// the microlith's pause after its upgrade): that fault went to the
    /// exited process and did nothing, and a restart's new process found
    /// the port taken. The round was milder than drawn.
    pub fn reached_exited_process(&self) -> bool {
        let (restarts, by_pid): (&[&str], &[&str]) = match self.variant.as_str() {
            "monolith" => (&["crash", "upgrade"], &["crash", "pause", "upgrade"]),
            "microlith" => (&["upgrade"], &["pause"]),
            _ => return false,
        };
        !self.follows_restarts
            && self
                .faults
                .iter()
                .position(|f| restarts.contains(&f.kind.as_str()))
                .is_some_and(|i| {
                    self.faults[i + 1..]
                        .iter()
                        .any(|f| by_pid.contains(&f.kind.as_str()))
                })
    }

    /// Whether both audits ran (a round whose invariants broke fails the
    /// run instead of being recorded).
    pub fn audited(&self) -> bool {
        self.transfers.audit.is_some() && self.posts.audit.is_some()
    }
}
