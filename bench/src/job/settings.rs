//! What a comparison is asked to do: the command line's options, and the
//! settings they resolve to.

use std::path::PathBuf;

use super::{Part, default_results};
use crate::budget::Budget;
use crate::record::{Profile, Sizing};
use store::StorageKind;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Every part, shorter runs (the default; about 11 minutes on a
    /// 2-core VM once built, the report says how long each phase took).
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
    /// compose (on Docker volumes). The fault runs are always durable, and
    /// so is the overload part under `--full` (with the durable curve).
    #[arg(long, value_enum, conflicts_with = "targets")]
    pub storage: Option<StorageKind>,
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
    /// Also step the variants up the transfer curve on durable storage,
    /// then soak each alone, durable, at half its durable knee for this
    /// many seconds (`--full`: 600; 0: no soak). Local processes with
    /// memory storage for the rest.
    #[arg(long, value_name = "SECONDS", conflicts_with_all = ["targets", "smoke"])]
    pub soak_seconds: Option<f64>,
    /// The first chaos round's seed (each next round's is one more).
    /// Default: from the clock, recorded in env.json.
    #[arg(long)]
    pub chaos_seed: Option<u64>,
    /// Chaos rounds per variant (quick 2, full 6).
    #[arg(long)]
    pub chaos_rounds: Option<u32>,
    /// Chaos rounds of this variant only (to run a failing round again).
    #[arg(long, value_parser = ["monolith", "microlith", "microservices"])]
    pub chaos_variant: Option<String>,
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
    pub storage: StorageKind,
    /// The cores both variants share, and the microservices' sizing.
    pub budget: Budget,
    /// Chaos rounds of this variant only.
    pub chaos_variant: Option<String>,
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
        if let Some(seconds) = self.soak_seconds {
            anyhow::ensure!(
                seconds.is_finite() && seconds >= 0.0,
                "--soak-seconds must be zero or more"
            );
            profile.durable_curve = true;
            profile.soak_s = seconds;
        }
        // A fresh seed each run unless one is asked for: rounds explore;
        // the report names each round's seed, so any can be run again.
        profile.chaos_seed = self.chaos_seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs() % 1_000_000)
        });
        if let Some(rounds) = self.chaos_rounds {
            profile.chaos_rounds = rounds;
        }
        let storage = self.storage.unwrap_or(if self.deploy == Deploy::Compose {
            StorageKind::Durable
        } else {
            StorageKind::Memory
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
            chaos_variant: self.chaos_variant,
        })
    }
}
