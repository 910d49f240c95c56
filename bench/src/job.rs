//! The harness's jobs, one per subcommand: each wires the targets, the
//! generator, the parts and the output together, and shows its progress.

pub mod compare;
pub mod images;
pub mod load;
mod measure;
pub mod model;
mod parts;
pub mod settings;

use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};

/// The workspace's root (where `results/`, `target/` and the crates are).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The default folder of runs: `results/`.
pub fn default_results() -> PathBuf {
    workspace().join("results")
}

/// A progress bar counting `unit` with the elapsed time and an ETA.
pub fn progress(len: u64, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let template = format!(
        "{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {unit}, ETA {{eta}} {{msg}}"
    );
    bar.set_style(
        ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// The parts of a comparison.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// Fixed-rate latency of balance reads, transfers and posts, and the floor.
    Latency,
    /// The transfers' throughput–latency curve.
    Curve,
    /// Chat fan-out over WebSocket.
    Fanout,
    /// Failure recovery under load (starts its own instances).
    Faults,
    /// Deploy cost: code, binaries, builds, tracing/mTLS/tokens.
    Cost,
    /// Twice each variant's knee for a while, then half of it (steps the
    /// curve first, for the knee).
    Overload,
    /// Ordinary transfers without slow and abandoned clients, then beside
    /// them.
    SlowClients,
    /// Seeded rounds of faults under transfers and posts, each ending
    /// with the invariant checks (starts its own instances).
    Chaos,
}

pub const ALL_PARTS: [Part; 8] = [
    Part::Latency,
    Part::Curve,
    Part::Fanout,
    Part::Faults,
    Part::Cost,
    Part::Overload,
    Part::SlowClients,
    Part::Chaos,
];
