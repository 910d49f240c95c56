//! Deploy and complexity cost, measured rather than guessed: the code and
//! its build (`code`), and what tracing, mTLS, service tokens and each
//! fairness switch cost per request (the same transfer load with each
//! switched on, one at a time).

mod code;
mod lines;

pub use code::{count_code, proto_packages, timed_build};

/// How [`count_code`] counts, as the report names it.
pub const LINE_COUNTER: &str = "the harness's line scanner (`bench/src/part/cost/lines.rs`)";

use std::io::BufRead;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use crate::budget::Budget;
use crate::generator::Runtimes;
use crate::generator::load::Plan;
use crate::part::latency;
use crate::record::{
    Cost, FINE_PATH, FeatureCost, Outcome, Profile, Scenario, Sizing, TOKIO_DEFAULT,
};
use crate::target::local::Variant;

/// A configuration of [`feature_costs`].
#[derive(Debug, Clone)]
pub struct FeatureConfig {
    /// `monolith`, `microlith` or `microservices`.
    pub variant: &'static str,
    /// Its name in the report.
    pub name: &'static str,
    /// Extra arguments.
    pub args: Vec<&'static str>,
    /// Extra environment.
    pub env: Vec<(&'static str, &'static str)>,
    /// The runtimes' sizing, when not the run's own.
    pub sizing: Option<Sizing>,
}

/// The configurations of [`feature_costs`]: each variant as the run
/// starts it (`baseline`), then the microservices with one switch turned
/// each: the fabric's optional features (tokens, mTLS, spans logged) and
/// the fairness switches (the fine transfer path, tokio's default
/// runtimes), so each is measured both ways in every run.
pub fn feature_configs() -> Vec<FeatureConfig> {
    let config = |variant,
                  name,
                  args: Vec<&'static str>,
                  env: Vec<(&'static str, &'static str)>| FeatureConfig {
        variant,
        name,
        args,
        env,
        sizing: None,
    };
    vec![
        config("monolith", "baseline", vec![], vec![]),
        config("microlith", "baseline", vec![], vec![]),
        config("microservices", "baseline", vec![], vec![]),
        config(
            "microservices",
            FINE_PATH,
            vec!["--transfer-path", "fine"],
            vec![],
        ),
        FeatureConfig {
            sizing: Some(Sizing::TokioDefault),
            ..config("microservices", TOKIO_DEFAULT, vec![], vec![])
        },
        config("microservices", "tokens", vec!["--service-tokens"], vec![]),
        config("microservices", "mtls", vec!["--mtls"], vec![]),
        config(
            "microservices",
            "mtls+tokens",
            vec!["--mtls", "--service-tokens"],
            vec![],
        ),
        config(
            "microservices",
            "spans logged",
            vec![],
            vec![("MICROSERVICES_LOG_SPANS", "1"), ("RUST_LOG", "info")],
        ),
    ]
}

/// Runs the transfer load against each configuration of
/// [`feature_configs`], each a fresh instance (memory storage) sized by
/// `budget` unless the configuration says otherwise; fills in
/// `cost.features` and `cost.pki_files`.
pub fn feature_costs(
    cost: &mut Cost,
    profile: &Profile,
    bin: &Path,
    scratch: &Path,
    budget: &Budget,
    runtimes: &Runtimes,
    mut progress: impl FnMut(&str, &str),
) -> anyhow::Result<()> {
    let http = crate::generator::client::Client::new(Duration::from_secs(10));
    for (
        n,
        FeatureConfig {
            variant,
            name: config,
            args,
            env,
            sizing,
        },
    ) in feature_configs().into_iter().enumerate()
    {
        progress(variant, config);
        let budget = Budget {
            sizing: sizing.unwrap_or(budget.sizing),
            ..*budget
        };
        let dir = scratch.join(format!("cost-{n}"));
        std::fs::create_dir_all(&dir)?;
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        let log = dir.join("services.log");
        let started = runtimes.control.block_on(async {
            if variant == "monolith" {
                Variant::monolith(bin, &args, &budget).await
            } else if variant == "microlith" {
                Variant::microlith(bin, &args, &budget).await
            } else {
                Variant::microservices_with(bin, &dir, &args, &env, Some(&log), &budget).await
            }
        })?;
        let outcome = (|| {
            let (mut workload, _) = runtimes.prepared(profile, &started.base)?;
            let lines_before = count_lines(&log);
            let meter = started.cpu_meter();
            let target = latency::Target {
                name: variant,
                base: &started.base,
                meter: Some(&meter),
            };
            let record = latency::run_one(
                runtimes.client.handle(),
                &http,
                Plan::fixed(profile, profile.cost_rate),
                target,
                Scenario::Transfer,
                0,
                &mut workload,
            );
            let cpu = record.cpu_us_per_request;
            let spans = env
                .iter()
                .any(|(k, _)| *k == "MICROSERVICES_LOG_SPANS")
                .then(|| {
                    // Warm-up requests log spans too: divide by everything sent.
                    let sent = (Plan::fixed(profile, profile.cost_rate).total()).max(1);
                    count_lines(&log).saturating_sub(lines_before) as f64 / sent as f64
                });
            if args.iter().any(|a| a == "--mtls") {
                cost.pki_files = std::fs::read_dir(dir.join("data").join("pki"))
                    .ok()
                    .map(|d| d.count() as u64);
            }
            anyhow::Ok(FeatureCost {
                variant: variant.to_owned(),
                config: config.to_owned(),
                rate: profile.cost_rate,
                p50_us: record.p50_us,
                p99_us: record.p99_us,
                cpu_us_per_request: cpu,
                cpu_us_by_process: record.cpu_us_by_process.clone(),
                errors: record
                    .outcomes
                    .iter()
                    .filter(|(o, _)| o != Outcome::Ok.name() && o != Outcome::Refused.name())
                    .map(|(_, n)| n)
                    .sum(),
                spans_per_request: spans,
            })
        })();
        runtimes.control.block_on(started.stop());
        cost.features
            .push(outcome.with_context(|| format!("{variant} {config}"))?);
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

fn count_lines(path: &Path) -> u64 {
    std::fs::File::open(path)
        .map(|f| std::io::BufReader::new(f).lines().count() as u64)
        .unwrap_or(0)
}
