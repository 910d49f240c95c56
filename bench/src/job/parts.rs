//! The parts that start instances of their own (faults, cost), with their
//! progress bars.

use std::path::Path;
use std::time::Duration;

use indicatif::ProgressBar;

use super::{progress, workspace};
use crate::budget::Budget;
use crate::generator::Runtimes;
use crate::part::faults::{self, Instances};
use crate::record::{BuildCost, Cost, FaultRecord, Profile};

/// What the fabric costs: code, builds, binaries, and tracing, mTLS and
/// tokens under load.
pub(super) fn costs(
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
        line_counter: Some(cost::LINE_COUNTER.to_owned()),
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
    for variant in ["monolith", "microlith", "microservices"] {
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
pub(super) fn faults(
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

/// The seeded chaos rounds: `profile.chaos_rounds` per variant (of `only`,
/// when given), seeds from `profile.chaos_seed` on; stops at the first
/// broken invariant, naming the command that runs that round again.
pub(super) fn chaos(
    profile: &Profile,
    instances: Instances<'_>,
    runtimes: &Runtimes,
    only: Option<&str>,
) -> anyhow::Result<Vec<crate::record::ChaosRecord>> {
    let variants: Vec<&'static str> = ["monolith", "microlith", "microservices"]
        .into_iter()
        .filter(|v| only.is_none_or(|o| o == *v))
        .collect();
    let rounds = u64::from(profile.chaos_rounds);
    let bar = progress(variants.len() as u64 * rounds, "chaos rounds");
    let mut records = Vec::new();
    for variant in variants {
        for r in 0..rounds {
            let seed = profile.chaos_seed + r;
            bar.set_message(format!("{variant} seed {seed}"));
            records.push(faults::chaos::round(
                profile, variant, seed, instances, runtimes,
            )?);
            bar.inc(1);
        }
    }
    bar.finish_with_message("chaos done");
    Ok(records)
}
