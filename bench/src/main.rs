//! `bench`: the comparison harness's command line. Each subcommand is a
//! job of [`bench::job`]; this file only parses and dispatches.
//!
//! - `bench compare` (the README's main command): starts both variants on
//!   loopback, runs every part against both, checks the invariants, and
//!   writes `results/<run-id>/`.
//! - `bench run <part>`: one part only.
//! - `bench load`: one fixed-rate run against a running deployment.
//! - `bench images`: the container images.
//! - `bench render results/<run-id>`: re-renders a stored run.
//! - `bench model --hops N --rtt 200us --qps Q --processes P`: a
//!   reviewer's own system projected from the latest run's cost model.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use bench::job::settings::RunArgs;
use bench::job::{ALL_PARTS, Part};
use bench::record::{Raw, Scenario};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Measure the monolith, the microlith and the microservices side by side"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Start the variants (and the microservices' placements), run every
    /// part against each, write results.
    Compare(#[command(flatten)] RunArgs),
    /// Run one part of the comparison only (same options as `compare`).
    Run {
        /// Which part.
        #[arg(value_enum)]
        part: Part,
        #[command(flatten)]
        args: RunArgs,
    },
    /// Build the container images: static musl binaries in FROM scratch
    /// images (`mvm/<name>:local`), one per microservice, one for the
    /// microlith and one for the monolith; installs the musl target and
    /// musl-gcc if it can.
    Images {
        /// Only print the image references, one per line (for scripts).
        #[arg(long)]
        list: bool,
    },
    /// One fixed-rate run of one scenario against a running deployment
    /// (its own fresh accounts and rooms), printed as one line: for
    /// profiling a change or setting two builds side by side.
    Load {
        /// The deployment's edge, `http://host:port`.
        #[arg(long)]
        target: String,
        /// What every request asks.
        #[arg(long, value_enum, default_value = "transfer")]
        scenario: LoadScenario,
        /// Requests per second.
        #[arg(long, default_value_t = 1000.0)]
        rate: f64,
        /// A closed loop instead: this many connections, each sending its
        /// next request when its previous one is answered (`--rate` is
        /// unused): the most the deployment answers with that many in
        /// flight.
        #[arg(long)]
        connections: Option<usize>,
        /// Recorded seconds.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Seconds of load before the recording.
        #[arg(long, default_value_t = 2.0)]
        warmup: f64,
        /// A process of the deployment whose CPU counts (repeatable), for
        /// the CPU per request of the recorded window.
        #[arg(long = "pid")]
        pids: Vec<u32>,
    },
    /// Print the compose file of the microservices placed by a layout: one
    /// container per group, from the same images (`bench images`).
    ComposeFile {
        /// A preset (`split`, `edge+saga`, `bank`, `one`) or groups, e.g.
        /// `gateway+transfers | accounts | ledger | chat`.
        #[arg(long, value_parser = layout)]
        layout: microservices::layout::Layout,
    },
    /// Re-render REPORT.md of a stored run from its raw.json.
    Render {
        /// The run directory.
        dir: PathBuf,
    },
    /// Project your own system from the latest run's cost model of process
    /// boundaries (the in-process base and the price of a boundary,
    /// measured on this machine), with your network's round trip added.
    Model {
        /// Process boundaries on a request's critical path.
        #[arg(long)]
        hops: usize,
        /// Your network's round trip per boundary (`200us`, `0.5ms`).
        #[arg(long, value_parser = bench::job::model::parse_rtt, default_value = "0us")]
        rtt: f64,
        /// Requests per second.
        #[arg(long)]
        qps: f64,
        /// Processes in all.
        #[arg(long)]
        processes: usize,
        /// mTLS and service tokens on every boundary.
        #[arg(long)]
        secured: bool,
        /// The run to read (default: the newest under --out that measured
        /// the placements).
        #[arg(long)]
        run: Option<PathBuf>,
        /// Where runs are.
        #[arg(long, default_value_os_t = bench::job::default_results())]
        out: PathBuf,
    },
}

/// A layout of the microservices, checked as the launcher reads it.
fn layout(text: &str) -> Result<microservices::layout::Layout, String> {
    text.parse().map_err(|e| format!("{e}"))
}

/// The scenarios `load` can run.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum LoadScenario {
    /// `GET /v1/accounts/{id}`.
    Balance,
    /// `POST /v1/transfers`.
    Transfer,
    /// `POST /v1/rooms/{room}/messages`.
    Post,
}

impl From<LoadScenario> for Scenario {
    fn from(s: LoadScenario) -> Self {
        match s {
            LoadScenario::Balance => Scenario::Balance,
            LoadScenario::Transfer => Scenario::Transfer,
            LoadScenario::Post => Scenario::Post,
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // reqwest is built with rustls-no-provider in this workspace.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command {
        Cmd::Render { dir } => {
            let raw = Raw::read(&dir)?;
            raw.render_into(&dir)?;
            println!("re-rendered {}", dir.join("REPORT.md").display());
            Ok(())
        }
        Cmd::Images { list } => bench::job::images::run(list),
        Cmd::ComposeFile { layout } => {
            let file = bench::target::placed::compose_file(&layout)
                .ok_or_else(|| anyhow::anyhow!("a component of {layout} has no image"))?;
            print!("{file}");
            Ok(())
        }
        Cmd::Load {
            target,
            scenario,
            rate,
            connections,
            seconds,
            warmup,
            pids,
        } => {
            let load = bench::job::load::Load {
                base: target,
                scenario: scenario.into(),
                rate,
                seconds,
                warmup,
                pids,
            };
            match connections {
                Some(connections) => {
                    println!("{}", bench::job::load::run_closed(&load, connections)?);
                }
                None => {
                    let record = bench::job::load::run(&load)?;
                    println!("{}", bench::job::load::summary(&record));
                }
            }
            Ok(())
        }
        Cmd::Model {
            hops,
            rtt,
            qps,
            processes,
            secured,
            run,
            out,
        } => {
            anyhow::ensure!(qps.is_finite() && qps >= 0.0, "--qps must be a rate");
            let ask = bench::job::model::Ask {
                run,
                results: out,
                system: bench::analysis::model::System {
                    hops,
                    rtt_us: rtt,
                    qps,
                    processes: processes.max(1),
                    secured,
                },
            };
            print!("{}", bench::job::model::run(&ask)?);
            Ok(())
        }
        Cmd::Compare(args) => bench::job::compare::run(args.settings(&ALL_PARTS)?),
        Cmd::Run { part, args } => bench::job::compare::run(args.settings(&[part])?),
    }
}
