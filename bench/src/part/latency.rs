//! The latency part: one run of a scenario (balance reads, transfers with
//! hot-account skew, chat posts, or the generator's floor against the echo
//! endpoint) at a fixed rate against one target, its record, and the
//! invariant checks after a variant's runs. The comparison interleaves
//! the runs repeat by repeat, so drift on a shared machine hits both.

use std::sync::Arc;

use shared_domain::workload::Workload;

use crate::cpu::CpuMeter;
use crate::generator::echo::harness_cpu_seconds;
use crate::generator::load::{self, Plan, RunStats};
use crate::generator::requests::{calls, send_raw};
use crate::record::{Audit, HarnessCpu, Outcome, RunRecord, Scenario};

/// CPU seconds per recorded answer, in µs (`None` without answers).
fn per_answer(cpu_s: f64, stats: &RunStats) -> Option<f64> {
    let answered: u64 = stats.outcomes.iter().map(|(_, n)| n).sum();
    (answered > 0).then(|| cpu_s * 1e6 / answered as f64)
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// A run's record, read off its statistics.
pub fn record_of(
    variant: &str,
    scenario: Scenario,
    repeat: u32,
    rate: f64,
    stats: &RunStats,
) -> RunRecord {
    let h = &stats.latency;
    let q = |p: f64| {
        if h.is_empty() {
            0.0
        } else {
            us(h.value_at_quantile(p))
        }
    };
    let lag = &stats.send_lag;
    let lq = |p: f64| {
        if lag.is_empty() {
            0.0
        } else {
            us(lag.value_at_quantile(p))
        }
    };
    RunRecord {
        variant: variant.to_owned(),
        scenario,
        repeat,
        rate,
        achieved_rate: stats.achieved_rate,
        saturated: stats.saturated,
        p50_us: q(0.5),
        p90_us: q(0.9),
        p99_us: q(0.99),
        p999_us: q(0.999),
        max_us: if h.is_empty() { 0.0 } else { us(h.max()) },
        send_lag_p50_us: lq(0.5),
        send_lag_p99_us: lq(0.99),
        outcomes: stats
            .outcomes
            .iter()
            .map(|(o, n)| (o.name().to_owned(), *n))
            .collect(),
        scheduled: stats.scheduled,
        unfinished: stats.unfinished,
        histogram: crate::record::histogram::encode_histogram(h),
        curve: false,
        harness_cpu: None,
        in_flight_limit: None,
        cpu_us_per_request: stats.system_cpu_s.and_then(|cpu| per_answer(cpu, stats)),
        cpu_us_by_process: stats
            .system_cpu_by_process
            .iter()
            .filter_map(|(name, cpu)| Some((name.clone(), per_answer(*cpu, stats)?)))
            .collect(),
        breakdown: None,
        disk: None,
        rerun: false,
    }
}

/// What a run is aimed at: a variant (or the echo floor) by name, its
/// base URL, and the meter of its processes' CPU when the harness started
/// them.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The variant's name (`floor` for the echo endpoint).
    pub name: &'a str,
    /// `http://host:port`.
    pub base: &'a str,
    /// Reads its processes' CPU, for the CPU per request of each run.
    pub meter: Option<&'a CpuMeter>,
}

/// Runs one scenario at `rate` against `target`; blocks this thread.
pub fn run_one(
    runtime: &tokio::runtime::Handle,
    http: &crate::generator::client::Client,
    plan: Plan,
    target: Target<'_>,
    scenario: Scenario,
    repeat: u32,
    workload: &mut Workload,
) -> RunRecord {
    let rate = plan.rate;
    let prepared = Arc::new(calls(scenario, workload, plan.total()));
    let (http, base) = (http.clone(), target.base.to_owned());
    let before = (scenario == Scenario::Floor)
        .then(harness_cpu_seconds)
        .flatten();
    let total = plan.total();
    let samples = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let kept = samples.clone();
    let stats = load::run_metered(runtime, plan, target.meter, move |i| {
        let call = &prepared[i as usize];
        // A share of the recorded requests ask for their timing.
        let timed = (!plan.in_warmup(i) && crate::part::breakdown::sampled(i, total))
            .then(|| (crate::part::breakdown::traceparent(i), kept.clone()));
        let answer = send_raw(&http, &base, call, timed);
        async move {
            answer
                .await
                .map_or(Outcome::Error, |(status, _)| Outcome::of_status(status))
        }
    });
    let mut record = record_of(target.name, scenario, repeat, rate, &stats);
    record.breakdown = crate::part::breakdown::of(&samples.lock());
    record.in_flight_limit = Some(plan.max_in_flight);
    // Warm-up requests ran too: divide by every request the run made.
    let made = (stats.latency.len() + plan.total().saturating_sub(stats.scheduled)).max(1) as f64;
    record.harness_cpu = before
        .zip(harness_cpu_seconds())
        .map(|((g0, e0), (g1, e1))| HarnessCpu {
            generator_us: (g1 - g0) * 1e6 / made,
            echo_us: (e1 - e0) * 1e6 / made,
        });
    record
}

/// After a variant's runs: money conserved and nothing left pending.
pub async fn check_invariants(api: &contract::Api, workload: &Workload) -> anyhow::Result<Audit> {
    let answered = api.settled_audit().await?;
    let audit: Audit = serde_json::from_value(answered.clone())
        .map_err(|e| anyhow::anyhow!("INVARIANT VIOLATED: the audit answered {answered}: {e}"))?;
    let expected = workload.opening_total().0;
    let accounts = u64::from(workload.config().accounts);
    anyhow::ensure!(
        i128::from(audit.total_balance) == expected
            && audit.accounts == accounts
            && audit.pending_transfers == 0,
        "INVARIANT VIOLATED: expected {accounts} accounts holding {expected} with nothing pending, audit says {answered}"
    );
    Ok(audit)
}
