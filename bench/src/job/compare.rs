//! `bench compare` and `bench run <part>`: start the variants (or reach
//! running deployments), run the parts against them, check the
//! invariants, write the run's folder.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::ProgressBar;

use super::{Part, default_results, progress, workspace};
use crate::budget::Budget;
use crate::generator::Runtimes;
use crate::part::faults::{self, Instances};
use crate::record::{
    BuildCost, Containers, Cost, Elapsed, Env, FaultRecord, Profile, Raw, Runtimes as EnvRuntimes,
    Sizing,
};
use crate::target::build;
use crate::target::local::Variant;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Under 5 minutes here (the default).
    #[arg(long, conflicts_with_all = ["full", "smoke"])]
    pub quick: bool,
    /// Longer runs, more repeats, higher rates.
    #[arg(long, conflicts_with = "smoke")]
    pub full: bool,
    /// A few seconds, for CI.
    #[arg(long, hide = true)]
    pub smoke: bool,
    /// Measure running deployments instead: `name=http://host:port`
    /// (repeatable). Faults and cost need the variants started here and
    /// are skipped.
    #[arg(long = "target", value_parser = parse_target)]
    pub targets: Vec<(String, String)>,
    /// Where results go (a run directory is made inside).
    #[arg(long, default_value_os_t = default_results())]
    pub out: PathBuf,
    /// Also time a release build of each variant from scratch (on in
    /// `--full`; several minutes).
    #[arg(long)]
    pub build_cost: bool,
    /// Use the variants' binaries in this directory instead of building
    /// release binaries (tests use the debug ones).
    #[arg(long, hide = true)]
    pub bin_dir: Option<PathBuf>,
    /// Where the harness starts the variants: `local` processes on
    /// loopback, or `compose`: their images (built first, `bench images`)
    /// under Docker Compose, torn down afterwards.
    #[arg(long, value_enum, default_value = "local", conflicts_with = "targets")]
    pub deploy: Deploy,
    /// The variants' storage for the latency, curve and fan-out parts:
    /// `memory` (the fabric alone) or `durable` (redb, every commit
    /// synced to disk). Default: memory for local processes, durable under
    /// compose (on Docker volumes). The fault runs are always durable.
    #[arg(long, value_enum, conflicts_with = "targets")]
    pub storage: Option<Storage>,
    /// How the microservices' tokio runtimes are sized to the cores both
    /// variants share: `sized` (the cores split among the five service
    /// processes, at least one worker each) or `tokio-default` (one worker
    /// per core in every process). The cost part measures both either way.
    #[arg(long, value_enum, default_value = "sized", conflicts_with = "targets")]
    pub runtimes: Sizing,
    /// Cross-check the load generator against oha at the same rates (on in
    /// `--full`; builds oha into `target/tools` first, several minutes the
    /// first time).
    #[arg(long)]
    pub cross_check: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Storage {
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
pub enum Deploy {
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

/// Everything a comparison was asked to do.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long and how hard.
    pub profile: Profile,
    /// The parts to run.
    pub parts: Vec<Part>,
    /// Running deployments to measure instead of starting the variants.
    pub targets: Vec<(String, String)>,
    /// Where the run's folder is made.
    pub out: PathBuf,
    /// The variants' binaries, when not the release build.
    pub bin_dir: Option<PathBuf>,
    /// Processes or containers.
    pub deploy: Deploy,
    /// The storage of the latency, curve and fan-out parts.
    pub storage: Storage,
    /// The cores both variants share, and the microservices' sizing.
    pub budget: Budget,
}

impl RunArgs {
    /// The settings these options ask for, running `parts`.
    pub fn settings(self, parts: &[Part]) -> anyhow::Result<Settings> {
        let mut profile = if self.smoke {
            Profile::smoke()
        } else if self.full {
            Profile::full()
        } else {
            Profile::quick()
        };
        profile.build_cost |= self.build_cost;
        profile.cross_check |= self.cross_check;
        let storage = self.storage.unwrap_or(if self.deploy == Deploy::Compose {
            Storage::Durable
        } else {
            Storage::Memory
        });
        Ok(Settings {
            profile,
            parts: parts.to_vec(),
            targets: self.targets,
            out: self.out,
            bin_dir: self.bin_dir,
            deploy: self.deploy,
            storage,
            budget: Budget::of_machine(self.runtimes),
        })
    }
}

/// How long each phase of a run took, for the report.
struct Laps {
    began: Instant,
    last: Instant,
    elapsed: Elapsed,
}

impl Laps {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            began: now,
            last: now,
            elapsed: Elapsed::default(),
        }
    }

    /// Counts the time since the last lap towards `phase`.
    fn lap(&mut self, phase: &str) {
        self.elapsed.add(phase, self.last.elapsed().as_secs_f64());
        self.last = Instant::now();
    }

    /// Every phase, and the whole run so far.
    fn done(mut self) -> Elapsed {
        self.elapsed.total = (self.began.elapsed().as_secs_f64() * 10.0).round() / 10.0;
        self.elapsed
    }
}

/// Runs a comparison: starts what it measures, measures, stops it, runs
/// the faults and the cost part on instances of their own, and writes
/// `results/<run-id>/`. A part that fails still leaves what the earlier
/// parts measured.
pub fn run(settings: Settings) -> anyhow::Result<()> {
    let Settings {
        profile,
        parts,
        targets,
        out,
        bin_dir,
        deploy,
        storage,
        budget,
    } = &settings;
    let run_id = format!(
        "{}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs(),
        profile.name
    );
    let dir = out.join(&run_id);
    let scratch = dir.join("tmp");
    let mut laps = Laps::new();
    let runtimes = Runtimes::new()?;
    crate::target::compose::tear_down_on_interrupt(runtimes.control.handle());

    // oha for the cross-check, built before anything is measured.
    let oha = if profile.cross_check && parts.contains(&Part::Latency) {
        let oha = build_oha()?;
        laps.lap("build");
        Some(oha)
    } else {
        None
    };

    // The systems under test.
    let mut containers = None;
    let mut bin_for_faults = None;
    let systems = if *deploy == Deploy::Compose {
        containers = Some(Containers {
            images: super::images::build()?,
            files: crate::target::images::deployment_files(&workspace()),
        });
        let mut systems = Vec::new();
        // One at a time, so each cold start has the machine to itself.
        for name in ["microlith", "microservices"] {
            eprintln!("starting {name} under compose...");
            systems.push(runtimes.control.block_on(Variant::compose(
                &workspace(),
                name,
                storage.name(),
            ))?);
        }
        systems
    } else if targets.is_empty() {
        let bin = match bin_dir {
            Some(dir) => dir.clone(),
            None => {
                build::build_binaries(&workspace())?;
                laps.lap("build");
                build::release_dir()?
            }
        };
        bin_for_faults = Some(bin.clone());
        runtimes
            .control
            .block_on(start_local(&bin, &scratch, *storage, budget))
            .context("starting the variants")?
    } else {
        let mut systems = Vec::new();
        for (name, url) in targets {
            systems.push(runtimes.control.block_on(Variant::external(name, url))?);
        }
        systems
    };
    let ports: Vec<(String, u64)> = systems
        .iter()
        .filter(|v| !v.processes.is_empty())
        .map(|v| (v.name.clone(), v.ports()))
        .collect();
    laps.lap("start");
    let result = super::measure::measure(profile, parts, &systems, oha.as_deref(), &runtimes);
    // Stop what we started, whatever happened.
    runtimes.control.block_on(async {
        for v in systems {
            v.stop().await;
        }
    });
    laps.lap("load");
    let (runs, variants) = result?;
    let mut raw = Raw {
        env: environment(&run_id, &settings),
        profile: profile.clone(),
        variants,
        runs: runs.runs,
        faults: Vec::new(),
        fanout: runs.fanout,
        cost: None,
        wrk: runs.wrk,
        containers,
        cross_check: runs.cross_check,
    };
    let mut failed: Option<anyhow::Error> = None;
    if *deploy == Deploy::Compose && parts.contains(&Part::Faults) {
        let instances = Instances::Compose {
            workspace: &workspace(),
        };
        match faults(profile, instances, &runtimes) {
            Ok(f) => raw.faults = f,
            Err(e) => failed = Some(e),
        }
        laps.lap("faults");
    }
    // The cost part measures code, builds and the fabric's features, none
    // of which depends on where the variants run: under compose it runs on
    // local processes, and the operations row keeps the containers'.
    if *deploy == Deploy::Compose && parts.contains(&Part::Cost) && failed.is_none() {
        let measured = build::build_binaries(&workspace())
            .and_then(|()| build::release_dir())
            .and_then(|bin| costs(profile, &bin, &scratch, budget, &runtimes));
        match measured {
            Ok(mut cost) => {
                cost.ports = ports.clone();
                raw.cost = Some(cost);
            }
            Err(e) => failed = Some(e),
        }
    }
    if let Some(bin) = bin_for_faults {
        if parts.contains(&Part::Faults) {
            let instances = Instances::Local {
                bin: &bin,
                scratch: &scratch,
                budget: *budget,
            };
            match faults(profile, instances, &runtimes) {
                Ok(f) => raw.faults = f,
                Err(e) => failed = Some(e),
            }
            laps.lap("faults");
        }
        if parts.contains(&Part::Cost) && failed.is_none() && *deploy == Deploy::Local {
            match costs(profile, &bin, &scratch, budget, &runtimes) {
                Ok(mut cost) => {
                    cost.ports = ports;
                    raw.cost = Some(cost);
                }
                Err(e) => failed = Some(e),
            }
        }
    }
    laps.lap("cost");
    raw.env.elapsed_s = Some(laps.done());
    let _ = std::fs::remove_dir_all(&scratch);
    raw.write(&dir)?;
    println!("\n{}", crate::output::report::render(&raw));
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

/// Both variants as local processes on loopback, with `storage` (durable
/// files under `scratch`).
async fn start_local(
    bin: &Path,
    scratch: &Path,
    storage: Storage,
    budget: &Budget,
) -> anyhow::Result<Vec<Variant>> {
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
    let lith = Variant::microlith(bin, &lith_args, budget).await?;
    let services = Variant::microservices(bin, scratch, &services_args, budget).await?;
    Ok(vec![lith, services])
}

/// oha, built into `target/tools` if it is not there yet.
fn build_oha() -> anyhow::Result<PathBuf> {
    use crate::part::cross_check;
    let spinner = ProgressBar::new_spinner();
    spinner.enable_steady_tick(Duration::from_millis(200));
    spinner.set_message("oha for the cross-check");
    let oha = cross_check::ensure_installed(&workspace(), |n| {
        spinner.set_message(format!(
            "building oha {}: {n} crates compiled",
            cross_check::OHA_VERSION
        ))
    })?;
    spinner.finish_and_clear();
    Ok(oha)
}

/// Where and how the run ran, and what it started.
fn environment(run_id: &str, settings: &Settings) -> Env {
    let machine = crate::procfs::machine();
    let compose = settings.deploy == Deploy::Compose;
    let external = !settings.targets.is_empty();
    let budget = &settings.budget;
    Env {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        cores: std::thread::available_parallelism().map_or(0, |n| n.get() as u64),
        cpu_model: machine.cpu_model,
        deploy: if compose { "compose" } else { "local" }.to_owned(),
        elapsed_s: None,
        git_commit: command_output("git", &["rev-parse", "--short=12", "HEAD"]),
        git_dirty: !command_output("git", &["status", "--porcelain"]).is_empty(),
        kernel: machine.kernel,
        knobs: "each variant's defaults (see README)".to_owned(),
        memory_gib: (machine.memory_kib / 1048576.0).round(),
        parts: settings
            .parts
            .iter()
            .map(|p| format!("{p:?}").to_lowercase())
            .collect(),
        placement: if compose {
            "load generator on the host; each variant's containers on the same machine, unpinned"
        } else {
            "load generator, microlith and every microservice on the same machine, unpinned"
        }
        .to_owned(),
        profile: settings.profile.clone(),
        run_id: run_id.to_owned(),
        // The core budget and every process's workers (local processes;
        // under compose each container runs its image's defaults, as
        // deployed).
        runtimes: Some(if !external && !compose {
            EnvRuntimes {
                core_budget: Some(budget.cores),
                policy: budget.describe(),
                processes: budget.processes(),
                sizing: Some(budget.sizing),
            }
        } else {
            EnvRuntimes {
                core_budget: None,
                policy: "as deployed: each process's default (one tokio worker per core it sees)"
                    .to_owned(),
                processes: Vec::new(),
                sizing: None,
            }
        }),
        rustc: command_output("rustc", &["-V"]),
        storage: if external {
            "as deployed (not started by the harness)"
        } else if compose && settings.storage == Storage::Durable {
            "durable (Docker volumes)"
        } else {
            settings.storage.name()
        }
        .to_owned(),
    }
}

/// The trimmed standard output of a command run in the workspace (empty
/// when it cannot run).
fn command_output(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .current_dir(workspace())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// What the fabric costs: code, builds, binaries, and tracing, mTLS and
/// tokens under load.
fn costs(
    profile: &Profile,
    bin: &Path,
    scratch: &Path,
    budget: &Budget,
    runtimes: &Runtimes,
) -> anyhow::Result<Cost> {
    use crate::part::cost;
    let root = workspace();
    let mut measured = Cost {
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
        runtimes,
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
        measured.builds.push(BuildCost {
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
    instances: Instances<'_>,
    runtimes: &Runtimes,
) -> anyhow::Result<Vec<FaultRecord>> {
    let plans = match instances {
        Instances::Local { .. } => faults::plans(profile),
        Instances::Compose { .. } => faults::container_plans(profile),
    };
    let bar = progress(plans.len() as u64, "faults");
    let mut started = false;
    let records = faults::run_all(profile, &plans, instances, runtimes, |plan| {
        if started {
            bar.inc(1);
        }
        started = true;
        bar.set_message(format!("{} {}: {}", plan.variant, plan.kind, plan.describe));
    });
    bar.finish_with_message("faults done");
    records
}
