//! The comparison harness. What the criterion benches of every crate
//! share is in `bench-support`, below the variants.
//!
//! # Layout
//! - [`budget`]: the core budget and each variant's runtime sizing (a
//!   policy of the harness, recorded in `env.json`).
//! - [`client`]: the generator's lean HTTP/1.1 client (httparse over
//!   kept-alive TCP connections).
//! - [`images`]: the container images (static musl binaries FROM scratch).
//! - [`load`]: the open-loop load generator (latency from the schedule,
//!   so coordinated omission cannot hide a stall).
//! - [`oha`]: the generator cross-checked against oha at the same rates.
//! - [`scenarios`]: what runs against each variant, and the invariant checks.
//! - [`single`]: `bench load`, one fixed-rate run against a running deployment.
//! - [`cpu`]: the CPU time of a system's processes, by process, for a run's window.
//! - [`procfs`]: every read of `/proc` (threads and their CPU, memory,
//!   children, the machine's facts).
//! - [`cost`]: lines of code by purpose, build time and binary sizes,
//!   the per-request cost of tracing, mTLS and service tokens.
//! - [`compose`]: both variants as Docker Compose projects (`--deploy compose`).
//! - [`fairness`]: the fairness ledger of REPORT.md (each difference between
//!   the variants, its switch and its measured effect).
//! - [`fanout`]: one chat post delivered over WebSocket to many
//!   subscribers; delivery latency and nothing lost.
//! - [`faults`]: the same faults made to each variant under load.
//! - [`variants`]: starting, measuring and stopping the systems under test.
//! - [`report`]: raw.json, runs.csv, env.json and REPORT.md (rendered from
//!   raw.json alone).
//! - [`charts`]: SVG and PNG charts from raw.json (plotters, bundled font).

pub mod breakdown;
pub mod budget;
pub mod charts;
pub mod client;
pub mod compose;
pub mod cost;
pub mod cpu;
pub mod fairness;
pub mod fanout;
pub mod faults;
pub mod images;
pub mod lag;
pub mod load;
pub mod oha;
pub mod procfs;
pub mod report;
pub mod scenarios;
pub mod single;
pub mod variants;
