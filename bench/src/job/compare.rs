//! `bench compare` and `bench run <part>`: start the variants (or reach
//! running deployments), run the parts against them, check the
//! invariants, write the run's folder.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::ProgressBar;

use super::parts::{chaos, costs, faults};
use super::settings::{Deploy, Settings};
use super::{Part, workspace};
use crate::budget::Budget;
use crate::generator::Runtimes;
use crate::part::faults::Instances;
use crate::record::{
    Containers, Elapsed, Env, Phase, Profile, Raw, RunRecord, Runtimes as EnvRuntimes,
};
use crate::target::build;
use crate::target::local::Variant;
use store::StorageKind;

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
    fn lap(&mut self, phase: Phase) {
        self.elapsed.add(phase, self.last.elapsed().as_secs_f64());
        self.last = Instant::now();
    }

    /// Every phase, and the whole run so far.
    fn done(mut self) -> Elapsed {
        self.elapsed.finish(self.began.elapsed().as_secs_f64());
        self.elapsed
    }
}

/// The run's scratch data (stores, ports files) is removed however the run
/// ends, and its directory too when nothing was written into it (a run
/// that failed before its first record).
struct Scratch {
    run: std::path::PathBuf,
    scratch: std::path::PathBuf,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
        // Only ever an empty directory.
        let _ = std::fs::remove_dir(&self.run);
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
        chaos_variant,
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
    let _cleanup = Scratch {
        run: dir.clone(),
        scratch: scratch.clone(),
    };
    let mut laps = Laps::new();
    let runtimes = Runtimes::new()?;
    crate::target::compose::tear_down_on_interrupt(runtimes.control.handle(), dir.clone());

    // oha for the cross-check, built before anything is measured.
    let oha = if profile.cross_check && parts.contains(&Part::Latency) {
        let oha = build_oha()?;
        laps.lap(Phase::Build);
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
        for name in ["monolith", "microlith", "microservices"] {
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
                laps.lap(Phase::Build);
                build::release_dir()?
            }
        };
        bin_for_faults = Some(bin.clone());
        runtimes
            .control
            .block_on(start_local(&bin, &scratch, *storage, budget, true))
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
    laps.lap(Phase::Start);
    // The slow clients' decoy is a local monolith: only where the
    // variants' binaries are at hand.
    let decoy = bin_for_faults
        .as_deref()
        .map(|bin| super::measure::Decoy { bin, budget });
    // Durable systems this harness started share the disk with its probe.
    let disk =
        (*storage == StorageKind::Durable && targets.is_empty()).then(|| scratch.join("disk"));
    // The curve again on durable storage (below), when the rest runs in
    // memory and the profile steps one. The overload part runs with it
    // then: in memory every transfer stays by design, and the RSS under
    // the surge would read them rather than what the surge holds in
    // flight.
    let durable_again =
        bin_for_faults.is_some() && profile.durable_curve && *storage == StorageKind::Memory;
    let overload_durable = durable_again && parts.contains(&Part::Overload);
    let here: Vec<Part> = parts
        .iter()
        .copied()
        .filter(|p| !(overload_durable && *p == Part::Overload))
        .collect();
    let result = super::measure::measure(
        profile,
        &here,
        &systems,
        oha.as_deref(),
        decoy,
        &runtimes,
        disk.as_deref(),
    );
    // Stop what we started, whatever happened.
    runtimes.control.block_on(async {
        for v in systems {
            v.stop().await;
        }
    });
    laps.lap(Phase::Load);
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
        hops: runs.hops,
        durable_runs: Vec::new(),
        soak: Vec::new(),
        overload: runs.overload,
        slow: runs.slow,
        chaos: Vec::new(),
    };
    let mut failed: Option<anyhow::Error> = None;
    // The curve again on durable storage; the overload part with it.
    if let Some(bin) = &bin_for_faults
        && durable_again
        && (parts.contains(&Part::Curve) || overload_durable)
    {
        match durable_curve(
            profile,
            bin,
            &scratch.join("durable"),
            budget,
            &runtimes,
            overload_durable,
        ) {
            Ok((runs, overload)) => {
                raw.durable_runs = runs;
                raw.overload.extend(overload);
            }
            Err(e) => failed = Some(e),
        }
        if profile.soak_s > 0.0 && failed.is_none() && parts.contains(&Part::Curve) {
            match soaks(
                profile,
                bin,
                &scratch.join("soak"),
                budget,
                &runtimes,
                &raw.durable_runs,
            ) {
                Ok(soaks) => raw.soak = soaks,
                Err(e) => failed = Some(e),
            }
        }
        laps.lap(Phase::Load);
    }
    // The fault and chaos runs start fresh instances where the variants
    // ran: compose projects of the images, or processes of the binaries.
    let workspace = workspace();
    let instances = match (bin_for_faults.as_deref(), deploy) {
        (_, Deploy::Compose) => Some(Instances::Compose {
            workspace: &workspace,
        }),
        (Some(bin), _) => Some(Instances::Local {
            bin,
            scratch: &scratch,
            budget: *budget,
        }),
        (None, _) => None,
    };
    if let Some(instances) = instances {
        if parts.contains(&Part::Faults) {
            match faults(profile, instances, &runtimes) {
                Ok(f) => raw.faults = f,
                Err(e) => failed = Some(e),
            }
            laps.lap(Phase::Faults);
        }
        if parts.contains(&Part::Chaos) && failed.is_none() {
            match chaos(profile, instances, &runtimes, chaos_variant.as_deref()) {
                Ok(c) => raw.chaos = c,
                Err(e) => failed = Some(e),
            }
            laps.lap(Phase::Faults);
        }
    }
    // The cost part measures code, builds and the fabric's features, none
    // of which depends on where the variants run: under compose it runs on
    // local processes (built here), and the operations row keeps the
    // containers'. Against external targets there is nothing to measure.
    if parts.contains(&Part::Cost) && failed.is_none() {
        let bin = match (bin_for_faults, deploy) {
            (_, Deploy::Compose) => {
                Some(build::build_binaries(&workspace).and_then(|()| build::release_dir()))
            }
            (bin, _) => bin.map(Ok),
        };
        if let Some(bin) = bin {
            match bin.and_then(|bin| costs(profile, &bin, &scratch, budget, &runtimes)) {
                Ok(mut cost) => {
                    cost.ports = ports;
                    raw.cost = Some(cost);
                }
                Err(e) => failed = Some(e),
            }
        }
    }
    laps.lap(Phase::Cost);
    raw.env.elapsed_s = Some(laps.done());
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

/// Every variant as local processes on loopback, with `storage` (durable
/// files under `scratch`), one after the other so each cold start has the
/// machine to itself.
async fn start_local(
    bin: &Path,
    scratch: &Path,
    storage: StorageKind,
    budget: &Budget,
    placements: bool,
) -> anyhow::Result<Vec<Variant>> {
    let durable = |name: &str| match storage {
        StorageKind::Memory => Vec::new(),
        StorageKind::Durable => vec![
            "--storage".to_owned(),
            "durable".to_owned(),
            "--data-dir".to_owned(),
            scratch.join(name).display().to_string(),
        ],
    };
    let mono = Variant::monolith(bin, &durable("monolith"), budget).await?;
    let lith = Variant::microlith(bin, &durable("microlith"), budget).await?;
    // The launcher puts each service's store under its own --data-dir.
    let services_args = match storage {
        StorageKind::Memory => Vec::new(),
        StorageKind::Durable => vec!["--storage".to_owned(), "durable".to_owned()],
    };
    let services = Variant::microservices(bin, scratch, &services_args, budget).await?;
    let mut systems = vec![mono, lith, services];
    if !placements {
        return Ok(systems);
    }
    // The placements between one process and split, on transfers.
    for preset in crate::budget::PRESETS {
        let dir = scratch.join(format!("placed-{}", preset.name.replace('+', "-")));
        systems
            .push(Variant::microservices_placed(bin, &dir, &preset, &services_args, budget).await?);
    }
    Ok(systems)
}

/// The transfer curve of the monolith, the microlith and the split
/// microservices started afresh on durable storage, and with `overload`
/// the overload part after it; audited after.
fn durable_curve(
    profile: &Profile,
    bin: &Path,
    scratch: &Path,
    budget: &Budget,
    runtimes: &Runtimes,
    overload: bool,
) -> anyhow::Result<(Vec<RunRecord>, Vec<crate::record::OverloadRecord>)> {
    let systems = runtimes
        .control
        .block_on(start_local(
            bin,
            scratch,
            StorageKind::Durable,
            budget,
            false,
        ))
        .context("starting the variants on durable storage")?;
    let result =
        super::measure::durable_curve(profile, &systems, runtimes, &scratch.join("disk"), overload);
    runtimes.control.block_on(async {
        for v in systems {
            v.stop().await;
        }
    });
    result
}

/// Each variant alone, started afresh on durable storage, soaked at half
/// the highest step it sustained on the durable curve (none for a
/// variant without one).
fn soaks(
    profile: &Profile,
    bin: &Path,
    scratch: &Path,
    budget: &Budget,
    runtimes: &Runtimes,
    durable_runs: &[RunRecord],
) -> anyhow::Result<Vec<crate::record::SoakRecord>> {
    let mut out = Vec::new();
    for name in ["monolith", "microlith", "microservices"] {
        let knee =
            crate::analysis::highest_step(durable_runs, name, |r| !r.saturated).unwrap_or(0.0);
        if knee <= 0.0 {
            continue;
        }
        let dir = scratch.join(name);
        let variant = runtimes
            .control
            .block_on(start_durable(name, bin, &dir, budget))
            .with_context(|| format!("starting {name} for its soak"))?;
        let result = super::measure::soak(profile, &variant, &dir, knee / 2.0, runtimes);
        runtimes.control.block_on(variant.stop());
        out.push(result?);
    }
    Ok(out)
}

/// One variant as local processes on durable storage under `dir`.
async fn start_durable(
    name: &str,
    bin: &Path,
    dir: &Path,
    budget: &Budget,
) -> anyhow::Result<Variant> {
    let durable = vec!["--storage".to_owned(), "durable".to_owned()];
    let mut one_file = durable.clone();
    one_file.extend(["--data-dir".to_owned(), dir.display().to_string()]);
    match name {
        "monolith" => Variant::monolith(bin, &one_file, budget).await,
        "microlith" => Variant::microlith(bin, &one_file, budget).await,
        // The launcher puts each service's store under `dir`.
        _ => Variant::microservices(bin, dir, &durable, budget).await,
    }
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
        shared_syncs: true,
        room_hubs: true,
        session_bytes: Some(edge::session::SESSION_BYTES as u64),
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
            "load generator, monolith, microlith and every microservice on the same machine, unpinned"
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
        } else if compose && settings.storage == StorageKind::Durable {
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
