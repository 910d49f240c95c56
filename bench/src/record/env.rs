//! Where and how a run ran (`env.json`), and what an audit answered.

use serde::{Deserialize, Serialize};

use super::{ProcessRuntime, Profile, Sizing};

/// When and where a run ran, and what it started. Fields are kept in
/// alphabetical order, the order `env.json` has always had.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Env {
    /// The harness's command line.
    pub command: String,
    /// Cores of the machine.
    pub cores: u64,
    /// The CPU's model name.
    pub cpu_model: String,
    /// `local` (processes started here) or `compose`.
    pub deploy: String,
    /// How long each phase took (not recorded before 2026-11-28).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_s: Option<Elapsed>,
    /// `git rev-parse --short=12 HEAD`.
    pub git_commit: String,
    /// Whether the work tree had uncommitted changes.
    pub git_dirty: bool,
    /// `uname -r`.
    pub kernel: String,
    /// Configuration knobs the variants ran with.
    pub knobs: String,
    /// Memory of the machine, GiB.
    pub memory_gib: f64,
    /// The parts of the harness that ran (`latency`, `curve`, …).
    #[serde(default)]
    pub parts: Vec<String>,
    /// Where the generator and the variants ran.
    pub placement: String,
    /// The profile (also in `raw.json` beside it).
    pub profile: Profile,
    /// The run's id (its folder's name).
    pub run_id: String,
    /// The core budget and each process's runtime (not recorded before
    /// 2026-11-28).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtimes: Option<Runtimes>,
    /// `rustc -V`.
    pub rustc: String,
    /// Whether the durable commits of concurrent callers shared a sync in
    /// every variant (the store's group commit, from 2026-11-28 on; before,
    /// a monolith component and a microservice synced each commit alone
    /// under its lock).
    #[serde(default)]
    pub shared_syncs: bool,
    /// Whether the microservices' gateway followed each room of a remote
    /// chat service with one stream fanned out to its sessions (from
    /// 2026-11-29's session 22 on; before, one stream per session).
    #[serde(default)]
    pub room_hubs: bool,
    /// The most bytes of message text an edge held for one WebSocket
    /// reader besides its count of messages (`edge::SESSION_BYTES`, from
    /// 2026-11-30's session 23 on; before, the count alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_bytes: Option<u64>,
    /// `memory`, `durable`, `durable (Docker volumes)` or `as deployed
    /// (not started by the harness)`.
    pub storage: String,
}

/// Seconds each phase of a run took.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Elapsed {
    /// Building the variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<f64>,
    /// Cost measurements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    /// Fault runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<f64>,
    /// Latency, curve and fan-out runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<f64>,
    /// Starting the variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<f64>,
    /// The whole run.
    pub total: f64,
}

/// A phase of a run, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Building the variants (and oha).
    Build,
    /// Starting them.
    Start,
    /// Latency, curve and fan-out.
    Load,
    /// Fault runs.
    Faults,
    /// Cost measurements.
    Cost,
}

impl Phase {
    /// Every phase, in run order.
    pub const ALL: [Phase; 5] = [
        Phase::Build,
        Phase::Start,
        Phase::Load,
        Phase::Faults,
        Phase::Cost,
    ];

    /// Its name in `env.json` and the report.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Build => "build",
            Phase::Start => "start",
            Phase::Load => "load",
            Phase::Faults => "faults",
            Phase::Cost => "cost",
        }
    }
}

/// Seconds kept to a tenth.
fn tenths(seconds: f64) -> f64 {
    (seconds * 10.0).round() / 10.0
}

impl Elapsed {
    fn slot(&mut self, phase: Phase) -> &mut Option<f64> {
        match phase {
            Phase::Build => &mut self.build,
            Phase::Start => &mut self.start,
            Phase::Load => &mut self.load,
            Phase::Faults => &mut self.faults,
            Phase::Cost => &mut self.cost,
        }
    }

    /// The phases that ran, in run order, with their seconds.
    pub fn phases(&self) -> Vec<(&'static str, f64)> {
        // In the order of `Phase::ALL`.
        let seconds = [self.build, self.start, self.load, self.faults, self.cost];
        Phase::ALL
            .into_iter()
            .zip(seconds)
            .filter_map(|(phase, s)| Some((phase.name(), s?)))
            .collect()
    }

    /// Adds `seconds` to `phase`, kept to a tenth of a second.
    pub fn add(&mut self, phase: Phase, seconds: f64) {
        let slot = self.slot(phase);
        *slot = Some(tenths(slot.unwrap_or(0.0) + seconds));
    }

    /// Sets the whole run's seconds, kept to a tenth.
    pub fn finish(&mut self, seconds: f64) {
        self.total = tenths(seconds);
    }
}

/// The core budget both variants got, and each process's tokio workers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Runtimes {
    /// Cores shared by both variants and the generator (none: as deployed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core_budget: Option<usize>,
    /// The policy in words.
    pub policy: String,
    /// Every process's workers (empty: as deployed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<ProcessRuntime>,
    /// How the microservices' runtimes were sized (not recorded before
    /// 2026-11-28's session 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sizing: Option<Sizing>,
}

/// What `GET /v1/audit` answered once settled, and for a fault run how
/// many acknowledged answers were checked against it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audit {
    /// Accounts open.
    pub accounts: u64,
    /// Acknowledged transfers and posts re-read after a fault run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_checked: Option<u64>,
    /// Transfers not yet settled.
    pub pending_transfers: u64,
    /// The sum of every balance, cents.
    pub total_balance: i64,
}

impl std::fmt::Display for Audit {
    /// As compact JSON, the form the reports have always shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let json = serde_json::to_string(self).map_err(|_| std::fmt::Error)?;
        f.write_str(&json)
    }
}
