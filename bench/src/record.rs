//! The records: everything a run measures, as `raw.json` stores it.
//!
//! Plain data, importing nothing from the rest of the harness: the parts
//! that measure (`crate::part`) fill them in, the output (`crate::output`)
//! only reads them, and a stored `raw.json` renders the same report again.

mod breakdown;
mod chaos;
mod containers;
mod cost;
mod cross_check;
mod disk;
mod env;
mod fanout;
mod fault;
pub mod histogram;
mod hop;
mod lag;
mod overload;
mod profile;
mod run;
mod runtime;
mod slow;
mod soak;

pub use breakdown::{Breakdown, STRIDE};
pub use chaos::{ChaosFault, ChaosRecord};
pub use containers::{Containers, ImageRecord, ImagesRecord, PUBLISHED_PORT_PROXY};
pub use cost::{BuildCost, CodeArea, Cost, FINE_PATH, FeatureCost, TOKIO_DEFAULT};
pub use cross_check::{AGREEMENT, CrossCheck, CrossCheckRecord, OHA_CONNECTIONS};
pub use disk::{DISK_PROBE_EVERY_MS, DISK_STALL_MS, DiskRecord};
pub use env::{Audit, Elapsed, Env, Phase, Runtimes};
pub use fanout::FanoutRecord;
pub use fault::FaultRecord;
pub use hop::HopRecord;
pub use lag::LagRecord;
pub use overload::{
    OverloadBucket, OverloadExact, OverloadRecord, OverloadVerdict, target as overload_target,
};
pub use profile::Profile;
pub use run::{Bucket, HarnessCpu, Outcome, RunRecord, Scenario, too_many_errors};
pub use runtime::{ProcessRuntime, Sizing};
pub use slow::{AttackRecord, P99_RATIO as SLOW_P99_RATIO, SlowRecord, SlowVerdict};
pub use soak::{SoakFill, SoakRecord, SoakSample, SoakVerdict};

use serde::{Deserialize, Serialize};

/// What was measured about a variant as a whole.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VariantRecord {
    /// Name.
    pub name: String,
    /// Processes.
    pub processes: usize,
    /// Start to ready, milliseconds (when the harness started it).
    pub start_to_ready_ms: Option<f64>,
    /// Resident memory once ready, bytes.
    pub rss_idle_bytes: Option<u64>,
    /// Resident memory after the load, bytes.
    pub rss_loaded_bytes: Option<u64>,
    /// CPU its processes use while ready and idle (a second without
    /// requests once the workload is prepared), in cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_idle_cores: Option<f64>,
    /// CPU seconds per 1000 answered requests over the whole load, warm-ups
    /// included: written by runs before 2026-11-28 only (each run now
    /// records its own window, [`RunRecord::cpu_us_per_request`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms_per_request: Option<f64>,
    /// The audit after the runs (money conserved, nothing pending).
    pub audit: Option<Audit>,
    /// Under `--deploy compose`: each container.
    #[serde(default)]
    pub replicas: Vec<ReplicaRecord>,
    /// The replicated read model's lag over the run's load (the
    /// microservices' ledger, when the harness could reach it).
    #[serde(default)]
    pub replication_lag: Option<LagRecord>,
    /// How its components were placed in processes (the microservices'
    /// layouts; none for a one-process variant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
}

/// How the microservices' components were placed: one of `up --layout`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// The layout as the launcher read it (`accounts | chat | …`).
    pub layout: String,
    /// Each process: its components joined by `+`.
    pub processes: Vec<String>,
    /// Process boundaries a transfer crosses on its critical path
    /// (gateway → transfers → accounts).
    pub boundaries: usize,
}

impl Placement {
    /// Reads it off the launcher's ports file: its layout, and each
    /// service's process.
    pub fn of_ports(ports: &serde_json::Value) -> Option<Self> {
        let rows = ports["services"].as_array()?;
        let process_of = |service: &str| {
            rows.iter()
                .find(|r| r["name"] == service)
                .and_then(|r| r["process"].as_str().or(r["name"].as_str()))
                .map(str::to_owned)
        };
        let mut processes: Vec<String> = Vec::new();
        for row in rows {
            let process = row["process"].as_str().or(row["name"].as_str())?;
            if !processes.iter().any(|p| p == process) {
                processes.push(process.to_owned());
            }
        }
        let path = [
            process_of("gateway")?,
            process_of("transfers")?,
            process_of("accounts")?,
        ];
        Some(Self {
            layout: ports["layout"].as_str().unwrap_or("split").to_owned(),
            processes,
            boundaries: path.windows(2).filter(|w| w[0] != w[1]).count(),
        })
    }
}

/// One container of a variant under `--deploy compose`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplicaRecord {
    /// Its compose service.
    pub service: String,
    /// From the engine starting its process to the process announcing that
    /// it serves (state loaded, socket bound), milliseconds.
    pub start_to_listening_ms: Option<f64>,
    /// Resident memory of its process once ready, bytes.
    pub rss_idle_bytes: Option<u64>,
    /// Resident memory of its process after the load, bytes.
    pub rss_loaded_bytes: Option<u64>,
}

/// Everything a run of the harness measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Raw {
    /// When and where (see `env.json`).
    pub env: Env,
    /// The profile.
    pub profile: Profile,
    /// Per variant.
    pub variants: Vec<VariantRecord>,
    /// Every run.
    pub runs: Vec<RunRecord>,
    /// Faults injected under load, per variant.
    #[serde(default)]
    pub faults: Vec<FaultRecord>,
    /// Chat fan-out runs.
    #[serde(default)]
    pub fanout: Vec<FanoutRecord>,
    /// Deploy and complexity cost (when the harness started the variants).
    #[serde(default)]
    pub cost: Option<Cost>,
    /// wrk against the same echo endpoint, when wrk is installed.
    #[serde(default)]
    pub wrk: Option<WrkRecord>,
    /// Images and deployment files, under `--deploy compose`.
    #[serde(default)]
    pub containers: Option<Containers>,
    /// The generator against oha, at the same rates (`--full`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_check: Option<CrossCheckRecord>,
    /// One hop measured alone, per protocol and repeat (with the latency
    /// part, when the split microservices ran).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hops: Vec<HopRecord>,
    /// The transfer curve again with the monolith, the microlith and the
    /// split microservices on durable storage (`--full`, local): their
    /// steps, named as the variants.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub durable_runs: Vec<RunRecord>,
    /// Each variant durable at half its durable knee for a long while
    /// (`--full`), sampled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub soak: Vec<SoakRecord>,
    /// Each variant at twice its knee for a while, between stretches at
    /// half of it (the overload part).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overload: Vec<OverloadRecord>,
    /// Each variant's transfers without slow clients, then with them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slow: Vec<SlowRecord>,
    /// Seeded chaos rounds, each ending with the invariant checks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chaos: Vec<ChaosRecord>,
}

/// What wrk (closed loop) reached against the harness's echo endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WrkRecord {
    /// The command run.
    pub command: String,
    /// Its `Requests/sec`.
    pub requests_per_s: f64,
    /// Its 50th percentile latency, microseconds (closed loop: it does not
    /// see coordinated omission).
    pub p50_us: Option<f64>,
}
