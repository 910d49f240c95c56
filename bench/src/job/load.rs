//! `bench load`: one fixed-rate run of one scenario against a deployment
//! that is already running, with the comparison's generator (open loop,
//! latency from the scheduled time) and workload. For looking at one
//! change under `perf`, or for setting two builds side by side, without
//! the whole comparison around it. Nothing is written; one line is
//! printed.

use std::time::Duration;

use anyhow::Context;
use shared_domain::workload::Workload;

use crate::cpu::CpuMeter;
use crate::generator::load::Plan;
use crate::part::latency::{self, Target};
use crate::record::{Outcome, Profile, RunRecord, Scenario};

/// What to run.
#[derive(Debug, Clone)]
pub struct Load {
    /// `http://host:port` of the deployment's edge.
    pub base: String,
    /// What every request asks.
    pub scenario: Scenario,
    /// Requests per second.
    pub rate: f64,
    /// Recorded seconds.
    pub seconds: f64,
    /// Seconds run before the recording, not recorded.
    pub warmup: f64,
    /// Processes whose CPU is read over the recorded window (the
    /// deployment's), for the CPU per request.
    pub pids: Vec<u32>,
}

/// The most requests a second a closed loop is given: it stops early (and
/// says so) if a system answers faster.
pub const CLOSED_MAX_RATE: f64 = 25_000.0;

/// Opens a fresh set of accounts and rooms (ids prefixed by the clock, so
/// runs against one deployment do not collide), then runs `load`.
pub fn run(load: &Load) -> anyhow::Result<RunRecord> {
    anyhow::ensure!(
        load.rate > 0.0 && load.rate.is_finite(),
        "the rate must be positive"
    );
    let (profile, mut workload, runtime) = prepared(load)?;
    // One group per process, so the line gives each one's share.
    let meter = (!load.pids.is_empty()).then(|| {
        CpuMeter::of_groups(
            load.pids
                .iter()
                .map(|pid| (format!("pid {pid}"), vec![*pid]))
                .collect(),
        )
    });
    let http = crate::generator::client::Client::new(Duration::from_secs(10));
    Ok(latency::run_one(
        runtime.handle(),
        &http,
        Plan::fixed(&profile, load.rate),
        Target {
            name: "target",
            base: &load.base,
            meter: meter.as_ref(),
        },
        load.scenario,
        0,
        &mut workload,
    ))
}

/// A closed loop of `connections` against `load.base` (its rate unused),
/// one line: the answers a second and their latency from sending.
pub fn run_closed(load: &Load, connections: usize) -> anyhow::Result<String> {
    anyhow::ensure!(connections > 0, "a closed loop needs a connection");
    let (_, mut workload, runtime) = prepared(load)?;
    let total = ((load.seconds + load.warmup) * CLOSED_MAX_RATE).ceil() as u64;
    let prepared = std::sync::Arc::new(crate::generator::requests::calls(
        load.scenario,
        &mut workload,
        total,
    ));
    let http = crate::generator::client::Client::new(Duration::from_secs(10));
    let base = load.base.clone();
    let stats = crate::generator::closed::run(
        runtime.handle(),
        connections,
        Duration::from_secs_f64(load.warmup),
        Duration::from_secs_f64(load.seconds),
        total,
        move |i| {
            let answer =
                crate::generator::requests::send_raw(&http, &base, &prepared[i as usize], None);
            async move {
                answer
                    .await
                    .map_or(Outcome::Error, |(status, _)| Outcome::of_status(status))
            }
        },
    );
    let q = |p: f64| stats.latency.value_at_quantile(p) as f64 / 1000.0;
    let answers: Vec<String> = stats
        .outcomes
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(outcome, n)| format!("{n} {}", outcome.name()))
        .collect();
    Ok(format!(
        "{} closed loop of {connections}: {:.0}/s over {:.1} s, p50 {:.0} µs, p90 {:.0} µs, \
         p99 {:.0} µs, max {:.0} µs, answers {}{}",
        load.scenario.name(),
        stats.rate,
        stats.seconds,
        q(0.5),
        q(0.9),
        q(0.99),
        stats.latency.max() as f64 / 1000.0,
        answers.join(", "),
        if stats.seconds + 0.5 < load.seconds {
            " (ran out of prepared requests)"
        } else {
            ""
        },
    ))
}

/// The run's profile, a fresh workload opened on the deployment (unless
/// the scenario is the floor), and the generator's runtime (one worker).
fn prepared(load: &Load) -> anyhow::Result<(Profile, Workload, tokio::runtime::Runtime)> {
    anyhow::ensure!(
        load.seconds > 0.0 && load.warmup >= 0.0,
        "the run needs recorded seconds and a warm-up of zero or more"
    );
    let profile = Profile {
        duration_s: load.seconds,
        warmup_s: load.warmup,
        ..Profile::quick()
    };
    let workload = fresh_workload(&profile)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    if load.scenario != Scenario::Floor {
        let api = contract::Api::new(&load.base)?;
        runtime
            .block_on(crate::generator::requests::prepare(&api, &workload))
            .with_context(|| {
                format!("opening the workload's accounts and rooms on {}", load.base)
            })?;
    }
    Ok((profile, workload, runtime))
}

fn fresh_workload(profile: &Profile) -> anyhow::Result<Workload> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    profile.workload_prefixed(&format!("l{:x}", now.as_millis()))
}

/// The run in one line.
pub fn summary(record: &RunRecord) -> String {
    let answers: Vec<String> = record
        .outcomes
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(outcome, n)| format!("{n} {outcome}"))
        .collect();
    let cpu = record
        .cpu_us_per_request
        .map_or_else(|| "–".to_owned(), |us| format!("{us:.0} µs"));
    let by_process: Vec<String> = record
        .cpu_us_by_process
        .iter()
        .map(|(name, us)| format!("{name} {us:.0} µs"))
        .collect();
    let by_process = if by_process.is_empty() {
        String::new()
    } else {
        format!(" ({})", by_process.join(", "))
    };
    format!(
        "{} at {:.0}/s: achieved {:.0}/s, p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs, max {:.0} µs, \
         answers {} of {} scheduled, CPU per request {cpu}{by_process}{}",
        record.scenario.name(),
        record.rate,
        record.achieved_rate,
        record.p50_us,
        record.p90_us,
        record.p99_us,
        record.max_us,
        answers.join(", "),
        record.scheduled,
        if record.saturated { " (saturated)" } else { "" },
    )
}
