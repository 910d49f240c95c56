//! `bench`: the comparison harness.
//!
//! - `bench compare` (the README's main command): starts both variants on
//!   loopback, runs every scenario against both, checks the invariants,
//!   and writes `results/<run-id>/` (raw JSON and CSV, the environment,
//!   REPORT.md).
//! - `bench compare --target microlith=http://… --target microservices=http://…`
//!   measures deployments that are already running instead.
//! - `bench render results/<run-id>` re-renders REPORT.md from raw.json.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use bench::budget::{Budget, Sizing};
use bench::report::{Raw, VariantRecord};
use bench::scenarios::{self, Profile, Scenario, Target};
use bench::variants::{self, Variant};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Measure the microlith and the microservices side by side"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Start both variants, run every scenario against both, write results.
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
    /// images (`mvm/<name>:local`), one per microservice and one for the
    /// microlith; installs the musl target and musl-gcc if it can.
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
    /// Re-render REPORT.md of a stored run from its raw.json.
    Render {
        /// The run directory.
        dir: PathBuf,
    },
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

/// The parts of a comparison.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
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
}

const ALL_PARTS: [Part; 5] = [
    Part::Latency,
    Part::Curve,
    Part::Fanout,
    Part::Faults,
    Part::Cost,
];

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Under 5 minutes here (the default).
    #[arg(long, conflicts_with_all = ["full", "smoke"])]
    quick: bool,
    /// Longer runs, more repeats, higher rates.
    #[arg(long, conflicts_with = "smoke")]
    full: bool,
    /// A few seconds, for CI.
    #[arg(long, hide = true)]
    smoke: bool,
    /// Measure running deployments instead: `name=http://host:port`
    /// (repeatable). Faults and cost need the variants started here and
    /// are skipped.
    #[arg(long = "target", value_parser = parse_target)]
    targets: Vec<(String, String)>,
    /// Where results go (a run directory is made inside).
    #[arg(long, default_value_os_t = default_results())]
    out: PathBuf,
    /// Also time a release build of each variant from scratch (on in
    /// `--full`; several minutes).
    #[arg(long)]
    build_cost: bool,
    /// Use the variants' binaries in this directory instead of building
    /// release binaries (tests use the debug ones).
    #[arg(long, hide = true)]
    bin_dir: Option<PathBuf>,
    /// Where the harness starts the variants: `local` processes on
    /// loopback, or `compose`: their images (built first, `bench images`)
    /// under Docker Compose, torn down afterwards.
    #[arg(long, value_enum, default_value = "local", conflicts_with = "targets")]
    deploy: Deploy,
    /// The variants' storage for the latency, curve and fan-out parts:
    /// `memory` (the fabric alone) or `durable` (redb, every commit
    /// synced to disk). Default: memory for local processes, durable under
    /// compose (on Docker volumes). The fault runs are always durable.
    #[arg(long, value_enum, conflicts_with = "targets")]
    storage: Option<Storage>,
    /// How the microservices' tokio runtimes are sized to the cores both
    /// variants share: `sized` (the cores split among the five service
    /// processes, at least one worker each) or `tokio-default` (one worker
    /// per core in every process). The cost part measures both either way.
    #[arg(long, value_enum, default_value = "sized", conflicts_with = "targets")]
    runtimes: Sizing,
    /// Cross-check the load generator against oha at the same rates (on in
    /// `--full`; builds oha into `target/tools` first, several minutes the
    /// first time).
    #[arg(long)]
    cross_check: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Storage {
    /// In memory: survives actor restarts, not the process.
    Memory,
    /// redb on disk.
    Durable,
}

impl Storage {
    fn name(self) -> &'static str {
        match self {
            Storage::Memory => "memory",
            Storage::Durable => "durable",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Deploy {
    /// Child processes on loopback.
    Local,
    /// Containers under Docker Compose.
    Compose,
}

fn parse_target(raw: &str) -> Result<(String, String), String> {
    let (name, url) = raw.split_once('=').ok_or("expected name=URL")?;
    // The edges serve plain HTTP (API.md); TLS is between services only.
    if !url.starts_with("http://") {
        return Err(
            "the URL must start with http:// (the load generator drives plain HTTP edges)".into(),
        );
    }
    Ok((name.to_owned(), url.to_owned()))
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn default_results() -> PathBuf {
    workspace().join("results")
}

fn command_output(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .current_dir(workspace())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn environment(run_id: &str, profile: &Profile) -> serde_json::Value {
    let machine = bench::procfs::machine();
    serde_json::json!({
        "run_id": run_id,
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "cpu_model": machine.cpu_model,
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "memory_gib": (machine.memory_kib / 1048576.0).round(),
        "kernel": machine.kernel,
        "rustc": command_output("rustc", &["-V"]),
        "git_commit": command_output("git", &["rev-parse", "--short=12", "HEAD"]),
        "git_dirty": !command_output("git", &["status", "--porcelain"]).is_empty(),
        "profile": profile,
        "placement": "load generator, microlith and every microservice on the same machine, unpinned",
        "storage": "memory",
        "deploy": "local",
        "knobs": "each variant's defaults (see README)",
    })
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // reqwest is built with rustls-no-provider in this workspace.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command {
        Cmd::Render { dir } => {
            let raw = Raw::read(&dir)?;
            raw.write(&dir)?;
            println!("re-rendered {}", dir.join("REPORT.md").display());
            Ok(())
        }
        Cmd::Images { list: true } => {
            for image in bench::images::IMAGES {
                println!("{}", image.reference());
            }
            Ok(())
        }
        Cmd::Images { list: false } => {
            let record = build_images()?;
            println!("static binaries built in {:.0} s", record.cargo_build_s);
            for i in &record.images {
                println!(
                    "{:<22} {:>6.1} MB (binary {:.1} MB), docker build {:.1} s",
                    i.reference,
                    i.bytes as f64 / 1e6,
                    i.binary_bytes as f64 / 1e6,
                    i.build_s
                );
            }
            println!(
                "recorded in {}",
                bench::images::images_dir(&workspace())
                    .join("images.json")
                    .display()
            );
            Ok(())
        }
        Cmd::Load {
            target,
            scenario,
            rate,
            seconds,
            warmup,
            pids,
        } => {
            let record = bench::single::run(&bench::single::Load {
                base: target,
                scenario: scenario.into(),
                rate,
                seconds,
                warmup,
                pids,
            })?;
            println!("{}", bench::single::summary(&record));
            Ok(())
        }
        Cmd::Compare(args) => start(args, &ALL_PARTS),
        Cmd::Run { part, args } => start(args, &[part]),
    }
}

fn start(args: RunArgs, parts: &[Part]) -> anyhow::Result<()> {
    let RunArgs {
        quick: _,
        full,
        smoke,
        targets,
        out,
        build_cost,
        bin_dir,
        deploy,
        storage,
        runtimes,
        cross_check,
    } = args;
    let mut profile = if smoke {
        Profile::smoke()
    } else if full {
        Profile::full()
    } else {
        Profile::quick()
    };
    profile.build_cost |= build_cost;
    profile.cross_check |= cross_check;
    let storage = storage.unwrap_or(if deploy == Deploy::Compose {
        Storage::Durable
    } else {
        Storage::Memory
    });
    compare(
        profile,
        parts,
        targets,
        &out,
        bin_dir,
        deploy,
        storage,
        Budget::of_machine(runtimes),
    )
}

#[allow(clippy::too_many_arguments)]
fn compare(
    profile: Profile,
    parts: &[Part],
    targets: Vec<(String, String)>,
    out: &Path,
    bin_dir: Option<PathBuf>,
    deploy: Deploy,
    storage: Storage,
    budget: Budget,
) -> anyhow::Result<()> {
    let run_id = format!(
        "{}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs(),
        profile.name
    );
    let dir = out.join(&run_id);
    // How long each phase took, for the report (and the 5-minute goal).
    let began = Instant::now();
    let tenths = |s: f64| (s * 10.0).round() / 10.0;
    let mut elapsed = serde_json::Map::new();
    let mut lap = {
        let mut last = Instant::now();
        move |elapsed: &mut serde_json::Map<String, serde_json::Value>, phase: &str| {
            let s = last.elapsed().as_secs_f64();
            last = Instant::now();
            let before = elapsed
                .get(phase)
                .and_then(serde_json::Value::as_f64)
                .unwrap_or(0.0);
            elapsed.insert(phase.to_owned(), tenths(before + s).into());
        }
    };
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let control = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    bench::compose::tear_down_on_interrupt(control.handle());

    // oha for the cross-check, built before anything is measured.
    let oha = if profile.cross_check && parts.contains(&Part::Latency) {
        let spinner = ProgressBar::new_spinner();
        spinner.enable_steady_tick(Duration::from_millis(200));
        spinner.set_message("oha for the cross-check");
        let oha = bench::oha::ensure_installed(&workspace(), |n| {
            spinner.set_message(format!(
                "building oha {}: {n} crates compiled",
                bench::oha::OHA_VERSION
            ))
        })?;
        spinner.finish_and_clear();
        lap(&mut elapsed, "build");
        Some(oha)
    } else {
        None
    };

    // The systems under test.
    let mut systems = Vec::new();
    let mut bin_for_faults = None;
    let mut containers = None;
    if deploy == Deploy::Compose {
        containers = Some(bench::images::Containers {
            images: build_images()?,
            files: bench::images::deployment_files(&workspace()),
        });
        // One at a time, so each cold start has the machine to itself.
        for name in ["microlith", "microservices"] {
            eprintln!("starting {name} under compose...");
            systems.push(control.block_on(Variant::compose(&workspace(), name, storage.name()))?);
        }
    } else if targets.is_empty() {
        let bin = match bin_dir {
            Some(dir) => dir,
            None => {
                variants::build_binaries(&workspace())?;
                lap(&mut elapsed, "build");
                variants::release_dir()?
            }
        };
        let scratch = dir.join("tmp");
        bin_for_faults = Some(bin.clone());
        let start = control.block_on(async {
            let (lith_args, services_args) = match storage {
                Storage::Memory => (Vec::new(), Vec::new()),
                Storage::Durable => {
                    let durable = vec!["--storage".to_owned(), "durable".to_owned()];
                    let mut lith = durable.clone();
                    lith.extend([
                        "--data-dir".to_owned(),
                        scratch.join("microlith").display().to_string(),
                    ]);
                    (lith, durable)
                }
            };
            let lith = Variant::microlith(&bin, &lith_args, &budget).await?;
            let services = Variant::microservices(&bin, &scratch, &services_args, &budget).await?;
            anyhow::Ok(vec![lith, services])
        });
        systems = start.context("starting the variants")?;
    } else {
        for (name, url) in &targets {
            systems.push(control.block_on(Variant::external(name, url))?);
        }
    }
    let ports: Vec<(String, u64)> = systems
        .iter()
        .filter(|v| !v.processes.is_empty())
        .map(|v| (v.name.clone(), v.ports()))
        .collect();
    lap(&mut elapsed, "start");
    let result = measure(
        &profile,
        parts,
        &systems,
        oha.as_deref(),
        &client_rt,
        &control,
        &run_id,
    );
    // Stop what we started, whatever happened.
    control.block_on(async {
        for v in systems {
            v.stop().await;
        }
    });
    lap(&mut elapsed, "load");
    let mut raw = result?;
    raw.env["storage"] = if targets.is_empty() {
        storage.name()
    } else {
        "as deployed (not started by the harness)"
    }
    .into();
    // The core budget and every process's workers (local processes; under
    // compose each container runs its image's defaults, as deployed).
    raw.env["runtimes"] = if targets.is_empty() && deploy == Deploy::Local {
        serde_json::json!({
            "core_budget": budget.cores,
            "sizing": budget.sizing.name(),
            "policy": budget.describe(),
            "processes": budget.processes(),
        })
    } else {
        serde_json::json!({ "policy": "as deployed: each process's default (one tokio worker per core it sees)" })
    };
    if deploy == Deploy::Compose {
        raw.env["deploy"] = "compose".into();
        if storage == Storage::Durable {
            raw.env["storage"] = "durable (Docker volumes)".into();
        }
        raw.env["placement"] =
            "load generator on the host; each variant's containers on the same machine, unpinned"
                .into();
    }
    raw.containers = containers;
    let mut failed: Option<anyhow::Error> = None;
    if deploy == Deploy::Compose && parts.contains(&Part::Faults) {
        match faults(
            &profile,
            bench::faults::Instances::Compose {
                workspace: &workspace(),
            },
            &client_rt,
            &control,
        ) {
            Ok(f) => raw.faults = f,
            Err(e) => failed = Some(e),
        }
        lap(&mut elapsed, "faults");
    }
    // The cost part measures code, builds and the fabric's features, none
    // of which depends on where the variants run: under compose it runs on
    // local processes, and the operations row keeps the containers'.
    if deploy == Deploy::Compose && parts.contains(&Part::Cost) && failed.is_none() {
        let measured = variants::build_binaries(&workspace())
            .and_then(|()| variants::release_dir())
            .and_then(|bin| {
                costs(
                    &profile,
                    &bin,
                    &dir.join("tmp"),
                    &budget,
                    &client_rt,
                    &control,
                )
            });
        match measured {
            Ok(mut cost) => {
                cost.ports = ports.clone();
                raw.cost = Some(cost);
            }
            Err(e) => failed = Some(e),
        }
    }
    // A later part that fails still leaves what the earlier parts measured.
    if let Some(bin) = bin_for_faults {
        if parts.contains(&Part::Faults) {
            match faults(
                &profile,
                bench::faults::Instances::Local {
                    bin: &bin,
                    scratch: &dir.join("tmp"),
                    budget,
                },
                &client_rt,
                &control,
            ) {
                Ok(f) => raw.faults = f,
                Err(e) => failed = Some(e),
            }
            lap(&mut elapsed, "faults");
        }
        if parts.contains(&Part::Cost) && failed.is_none() && deploy == Deploy::Local {
            match costs(
                &profile,
                &bin,
                &dir.join("tmp"),
                &budget,
                &client_rt,
                &control,
            ) {
                Ok(mut cost) => {
                    cost.ports = ports;
                    raw.cost = Some(cost);
                }
                Err(e) => failed = Some(e),
            }
        }
    }
    lap(&mut elapsed, "cost");
    elapsed.insert(
        "total".to_owned(),
        tenths(began.elapsed().as_secs_f64()).into(),
    );
    raw.env["elapsed_s"] = elapsed.into();
    let _ = std::fs::remove_dir_all(dir.join("tmp"));
    raw.write(&dir)?;
    println!("\n{}", raw.render());
    println!("results in {}", dir.display());
    if let Some(e) = failed {
        return Err(e.context(format!(
            "the run stopped early; what it measured is in {}",
            dir.display()
        )));
    }
    let violations = raw.violations();
    if !violations.is_empty() {
        bail!(
            "INVARIANT VIOLATED (results kept in {}):\n{}",
            dir.display(),
            violations.join("\n")
        );
    }
    Ok(())
}

fn measure(
    profile: &Profile,
    parts: &[Part],
    systems: &[Variant],
    oha: Option<&Path>,
    client_rt: &tokio::runtime::Runtime,
    control: &tokio::runtime::Runtime,
    run_id: &str,
) -> anyhow::Result<Raw> {
    let http = bench::client::Client::new(Duration::from_secs(10));
    let (echo, _echo_guard) = scenarios::start_echo()?;
    let mut workloads = Vec::new();
    let mut records: Vec<VariantRecord> = Vec::new();
    for v in systems {
        let workload = profile.workload()?;
        let api = contract::Api::new(&v.base)?;
        control
            .block_on(scenarios::prepare(&api, &workload))
            .with_context(|| format!("preparing {}", v.name))?;
        records.push(VariantRecord {
            name: v.name.clone(),
            processes: v.processes.len().max(1),
            start_to_ready_ms: v.start_to_ready.map(|d| d.as_secs_f64() * 1000.0),
            rss_idle_bytes: v.rss_bytes(),
            rss_loaded_bytes: None,
            cpu_ms_per_request: None,
            audit: serde_json::Value::Null,
            replicas: v
                .replica_rss()
                .into_iter()
                .map(|(service, rss)| bench::report::ReplicaRecord {
                    start_to_listening_ms: v
                        .replicas
                        .iter()
                        .find(|r| r.0 == service)
                        .and_then(|r| r.1)
                        .map(|d| d.as_secs_f64() * 1000.0),
                    service,
                    rss_idle_bytes: rss,
                    rss_loaded_bytes: None,
                })
                .collect(),
            replication_lag: None,
        });
        workloads.push(workload);
    }
    // The CPU of each variant's own processes, read around each run's
    // recorded window (none for a deployment the harness did not start).
    let meters: Vec<Option<bench::cpu::CpuMeter>> = systems
        .iter()
        .map(|v| Some(v.cpu_meter()).filter(|m| !m.pids().is_empty()))
        .collect();
    // The microservices' read model: its lag histogram before and after.
    let lag_http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let ledger_metrics: Vec<Option<String>> = systems
        .iter()
        .map(|v| {
            v.service_addr("ledger")
                .map(|a| format!("http://{a}/metrics"))
        })
        .collect();
    let lag_before: Vec<Option<bench::lag::Sample>> = ledger_metrics
        .iter()
        .map(|url| {
            url.as_ref()
                .and_then(|u| control.block_on(bench::lag::sample(&lag_http, u)))
        })
        .collect();

    let scenario_list = profile.scenarios();
    let (latency, fanout_on, curve_on) = (
        parts.contains(&Part::Latency),
        parts.contains(&Part::Fanout),
        parts.contains(&Part::Curve),
    );
    let per_repeat = if latency {
        scenario_list.len() as u64 * systems.len() as u64 + 1
    } else {
        0
    } + if fanout_on { systems.len() as u64 } else { 0 };
    let runs_total = profile.repeats as u64 * per_repeat
        + if curve_on {
            profile.curve_rates.len() as u64 * (systems.len() as u64 + 1)
        } else {
            0
        };
    let bar = progress(runs_total, "runs");
    let mut runs = Vec::new();
    let mut fanout = Vec::new();
    for repeat in 0..profile.repeats {
        let mut floor_workload = profile.workload()?;
        let floor_rate = scenario_list.iter().map(|(_, r)| *r).fold(0.0, f64::max);
        let scenario_list = if latency {
            scenario_list.as_slice()
        } else {
            &[]
        };
        if latency {
            bar.set_message(format!("repeat {} floor", repeat + 1));
            runs.push(scenarios::run_one(
                client_rt.handle(),
                &http,
                profile.plan(floor_rate),
                Target {
                    name: "floor",
                    base: &echo,
                    meter: None,
                },
                Scenario::Floor,
                repeat,
                &mut floor_workload,
            ));
            bar.inc(1);
        }
        for (scenario, rate) in scenario_list {
            for (i, v) in systems.iter().enumerate() {
                bar.set_message(format!(
                    "repeat {} {} {} at {rate:.0}/s",
                    repeat + 1,
                    v.name,
                    scenario.name()
                ));
                let record = scenarios::run_one(
                    client_rt.handle(),
                    &http,
                    profile.plan(*rate),
                    Target {
                        name: &v.name,
                        base: &v.base,
                        meter: meters[i].as_ref(),
                    },
                    *scenario,
                    repeat,
                    &mut workloads[i],
                );
                runs.push(record);
                bar.inc(1);
            }
        }
        for v in systems.iter().filter(|_| fanout_on) {
            bar.set_message(format!(
                "repeat {} {} fan-out to {} sockets at {:.0} posts/s",
                repeat + 1,
                v.name,
                profile.fanout_subscribers,
                profile.fanout_rate
            ));
            let record = bench::fanout::run(
                client_rt.handle(),
                control.handle(),
                &http,
                &v.name,
                &v.base,
                &format!("fanout-r{repeat}"),
                profile.fanout_subscribers,
                profile.plan(profile.fanout_rate),
                repeat,
            )
            .with_context(|| format!("{} fan-out", v.name))?;
            fanout.push(record);
            bar.inc(1);
        }
    }
    // The throughput–latency curve of transfers: step the rate up until
    // each variant (and the generator's floor) saturates.
    let mut floor_workload = profile.workload()?;
    let mut saturated = vec![false; systems.len() + 1];
    let mut first_p50: Vec<Option<f64>> = vec![None; systems.len() + 1];
    let curve_rates = if curve_on {
        profile.curve_rates.as_slice()
    } else {
        &[]
    };
    for rate in curve_rates {
        for (i, (name, base)) in systems
            .iter()
            .map(|v| (v.name.as_str(), v.base.as_str()))
            .chain([("floor", echo.as_str())])
            .enumerate()
        {
            let meter = meters.get(i).and_then(Option::as_ref);
            bar.inc(1);
            if saturated[i] {
                continue;
            }
            bar.set_message(format!("curve: {name} at {rate:.0}/s"));
            let (scenario, workload) = if i < systems.len() {
                (Scenario::Transfer, &mut workloads[i])
            } else {
                (Scenario::Floor, &mut floor_workload)
            };
            let mut record = scenarios::run_one(
                client_rt.handle(),
                &http,
                profile.curve_plan(*rate),
                Target { name, base, meter },
                scenario,
                0,
                workload,
            );
            record.curve = true;
            // Past the knee: requests queue, so the median grew fivefold
            // over the first step's (a stall of the shared machine moves
            // the tail of one step, not its median).
            let first_p50 = *first_p50[i].get_or_insert(record.p50_us);
            if record.p50_us > 5.0 * first_p50 {
                record.saturated = true;
            }
            saturated[i] = record.saturated;
            runs.push(record);
        }
    }
    // The generator's own ceiling. First wrk, a standard closed-loop tool,
    // against the same echo endpoint when it is installed; then the floor
    // alone, with as many requests in flight as wrk has connections,
    // stepped at fractions of wrk's rate (or, without wrk, at the
    // profile's fixed rates) past the curve until it saturates.
    let mut wrk = None;
    if curve_on {
        bar.inc_length(1);
        bar.set_message("wrk against the echo endpoint");
        wrk = bench::report::run_wrk(&format!("{echo}/echo"), profile.curve_step_s.max(2.0));
        bar.inc(1);
        let rates: Vec<f64> = match &wrk {
            Some(w) => profile
                .generator_wrk_fractions
                .iter()
                .map(|f| (f * w.requests_per_s / 1000.0).round() * 1000.0)
                .collect(),
            None => profile.generator_rates.clone(),
        }
        .into_iter()
        .filter(|r| *r > curve_rates.last().copied().unwrap_or(0.0))
        .collect();
        bar.inc_length(rates.len() as u64);
        let floor = systems.len();
        for rate in &rates {
            bar.inc(1);
            if saturated[floor] {
                continue;
            }
            bar.set_message(format!("generator ceiling: floor at {rate:.0}/s"));
            let mut record = scenarios::run_one(
                client_rt.handle(),
                &http,
                profile.ceiling_plan(*rate),
                Target {
                    name: "floor",
                    base: &echo,
                    meter: None,
                },
                Scenario::Floor,
                0,
                &mut floor_workload,
            );
            record.curve = true;
            if record.p50_us > 5.0 * first_p50[floor].unwrap_or(f64::MAX) {
                record.saturated = true;
            }
            saturated[floor] = record.saturated;
            runs.push(record);
        }
    }
    // The generator against oha, at the floor and against the microlith
    // (balance reads), at the fixed read rate and four times it.
    let mut cross_check = None;
    if let Some(oha) = oha
        && latency
    {
        let rates = [profile.read_rate, 4.0 * profile.read_rate];
        let mut floor_workload = profile.workload()?;
        let mut endpoints = vec![bench::oha::Endpoint {
            name: "floor",
            base: &echo,
            scenario: Scenario::Floor,
            workload: &mut floor_workload,
        }];
        if let Some(i) = systems.iter().position(|v| v.name == "microlith") {
            let workload = &mut workloads[i];
            endpoints.push(bench::oha::Endpoint {
                name: "microlith",
                base: &systems[i].base,
                scenario: Scenario::Balance,
                workload,
            });
        }
        bar.inc_length((rates.len() * endpoints.len()) as u64);
        cross_check = Some(bench::oha::cross_check(
            oha,
            client_rt.handle(),
            &http,
            profile,
            &rates,
            &mut endpoints,
            |name, rate| {
                bar.inc(1);
                bar.set_message(format!(
                    "cross-check: ours and oha against {name} at {rate:.0}/s"
                ));
            },
        )?);
    }
    bar.finish_with_message("load done; checking invariants");
    let started = Instant::now();
    for (i, v) in systems.iter().enumerate() {
        let api = contract::Api::new(&v.base)?;
        // A violation fails the run loudly.
        let audit = control
            .block_on(scenarios::check_invariants(&api, &workloads[i]))
            .with_context(|| format!("{} after the runs", v.name))?;
        records[i].audit = audit;
        records[i].rss_loaded_bytes = v.rss_bytes();
        if let Some(url) = &ledger_metrics[i]
            && let Some(after) = control.block_on(bench::lag::sample(&lag_http, url))
        {
            records[i].replication_lag =
                bench::lag::LagRecord::between(lag_before[i].as_ref(), &after);
        }
        for (service, rss) in v.replica_rss() {
            if let Some(r) = records[i]
                .replicas
                .iter_mut()
                .find(|r| r.service == service)
            {
                r.rss_loaded_bytes = rss;
            }
        }
    }
    if started.elapsed() > Duration::from_secs(60) {
        bail!("invariant checks took over a minute");
    }
    let mut env = environment(run_id, profile);
    env["parts"] = parts
        .iter()
        .map(|p| format!("{p:?}").to_lowercase())
        .collect::<Vec<_>>()
        .into();
    Ok(Raw {
        env,
        profile: profile.clone(),
        variants: records,
        runs,
        faults: Vec::new(),
        fanout,
        cost: None,
        wrk,
        containers: None,
        cross_check,
    })
}

/// `bench images`, with a progress bar over its steps.
fn build_images() -> anyhow::Result<bench::images::ImagesRecord> {
    let bar = progress(bench::images::IMAGES.len() as u64 + 1, "steps");
    let record = bench::images::build_all(&workspace(), |step| {
        bar.inc(1);
        bar.set_message(step.to_owned());
    })?;
    bar.finish_and_clear();
    Ok(record)
}

/// A progress bar counting `unit` with the elapsed time and an ETA.
fn progress(len: u64, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let template = format!(
        "{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {unit}, ETA {{eta}} {{msg}}"
    );
    bar.set_style(
        ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// What the fabric costs: code, builds, binaries, and tracing, mTLS and
/// tokens under load.
fn costs(
    profile: &Profile,
    bin: &Path,
    scratch: &Path,
    budget: &Budget,
    client_rt: &tokio::runtime::Runtime,
    control: &tokio::runtime::Runtime,
) -> anyhow::Result<bench::cost::Cost> {
    use bench::cost;
    let root = workspace();
    let mut measured = cost::Cost {
        code: cost::count_code(&root),
        proto_packages: cost::proto_packages(&root),
        ..Default::default()
    };
    let configs = cost::feature_configs();
    let bar = progress(configs.len() as u64, "cost runs");
    cost::feature_costs(
        &mut measured,
        profile,
        bin,
        scratch,
        budget,
        client_rt,
        control,
        |variant, config| {
            bar.inc(1);
            bar.set_message(format!(
                "{variant} {config} at {:.0} transfers/s",
                profile.cost_rate
            ));
        },
    )?;
    bar.finish_with_message("cost runs done");
    for variant in ["microlith", "microservices"] {
        let binary_bytes = std::fs::metadata(bin.join(variant))
            .map(|m| m.len())
            .unwrap_or(0);
        let (seconds, crates) = if profile.build_cost {
            let spinner = ProgressBar::new_spinner();
            spinner.enable_steady_tick(Duration::from_millis(200));
            let timed = cost::timed_build(&root, variant, |n| {
                spinner.set_message(format!(
                    "release build of {variant} from scratch: {n} crates compiled"
                ));
            })?;
            spinner.finish_with_message(format!(
                "release build of {variant}: {:.0} s, {} crates",
                timed.0, timed.1
            ));
            (Some(timed.0), Some(timed.1))
        } else {
            (None, None)
        };
        measured.builds.push(cost::BuildCost {
            variant: variant.to_owned(),
            seconds,
            crates,
            binary_bytes,
        });
    }
    Ok(measured)
}

/// Every fault of `bench::faults`, each against fresh durable instances.
fn faults(
    profile: &Profile,
    instances: bench::faults::Instances<'_>,
    client_rt: &tokio::runtime::Runtime,
    control: &tokio::runtime::Runtime,
) -> anyhow::Result<Vec<scenarios::FaultRecord>> {
    let plans = match instances {
        bench::faults::Instances::Local { .. } => bench::faults::plans(profile),
        bench::faults::Instances::Compose { .. } => bench::faults::container_plans(profile),
    };
    let bar = progress(plans.len() as u64, "faults");
    let mut started = false;
    let records = bench::faults::run_all(profile, &plans, instances, client_rt, control, |plan| {
        if started {
            bar.inc(1);
        }
        started = true;
        bar.set_message(format!("{} {}: {}", plan.variant, plan.kind, plan.describe));
    });
    bar.finish_with_message("faults done");
    records
}
