//! The comparison harness, as a pipeline:
//!
//! ```text
//! record  ←  part  ←  job  →  output
//!    ↑        ↑               (reads records only)
//!    └── generator, target
//! ```
//!
//! - [`record`]: what a run measured, as `raw.json` stores it: plain data,
//!   importing nothing from the rest of the crate.
//! - [`generator`]: the load: the open-loop generator (latency from the
//!   schedule, so coordinated omission cannot hide a stall), its lean
//!   HTTP/1.1 client, the echo endpoint (the floor), wrk.
//! - [`target`]: the systems under test: local processes, Docker Compose
//!   projects, their images.
//! - [`part`]: each part of a comparison, measuring and returning records:
//!   latency, fan-out, faults, cost, the read model's lag, the time
//!   breakdown, the cross-check against oha.
//! - [`output`]: the run's folder: `raw.json`, `env.json`, `runs.csv`,
//!   `REPORT.md` and the charts, rendered from the records alone; it never
//!   starts a process.
//! - [`analysis`]: what the output reads off the records (medians over
//!   repeats, the curve's knee).
//! - [`job`]: one per subcommand, wiring the rest together with progress.
//! - [`budget`], [`cpu`], [`procfs`], [`disk`]: the core budget both
//!   variants get, the CPU and memory of their processes, and a probe of
//!   the disk their stores share.
//!
//! What the criterion benches of every crate share is in `bench-support`,
//! below the variants.

pub mod analysis;
pub mod budget;
pub mod cpu;
pub mod disk;
pub mod generator;
pub mod job;
pub mod output;
pub mod part;
pub mod procfs;
pub mod record;
pub mod target;
