//! The breakdown section: where a typical request's time goes, and each
//! variant against its hop budget.

use std::fmt::Write as _;

use crate::analysis::median;
use crate::record::{Breakdown, Raw, RunRecord, STRIDE, Scenario};

/// How far apart the parts' sum and the measured p50 may be before the
/// report flags it.
pub const TOLERANCE: f64 = 0.15;

/// One variant's breakdown of one scenario over the run's repeats (each
/// part the median of the repeats'), with the run's p50 and send lag.
#[derive(Debug, Clone)]
pub struct Row {
    /// The variant.
    pub variant: String,
    /// The scenario.
    pub scenario: Scenario,
    /// Parts (medians over the repeats).
    pub parts: Breakdown,
    /// The generator's send lag, median over the repeats, µs.
    pub send_lag_us: f64,
    /// The measured p50, median over the repeats, µs.
    pub p50_us: f64,
    /// The hop budget: the round trip into the edge (outside and lag)
    /// plus hops x one hop's cost, µs.
    pub budget_us: f64,
}

impl Row {
    /// The parts' sum with the send lag, over the measured p50.
    pub fn sum_over_p50(&self) -> f64 {
        (self.parts.total_us() + self.send_lag_us) / self.p50_us.max(1e-9)
    }
}

fn median_of(runs: &[&RunRecord], f: impl Fn(&RunRecord) -> Option<f64>) -> Option<f64> {
    median(runs.iter().filter_map(|r| f(r)).collect())
}

/// Every (scenario, variant) of the fixed-rate runs with a breakdown, in
/// report order.
pub fn rows(raw: &Raw) -> Vec<Row> {
    let mut rows = Vec::new();
    for (scenario, _) in raw.profile.scenarios() {
        for variant in raw.variants.iter().map(|v| v.name.as_str()) {
            let runs: Vec<&RunRecord> = raw
                .runs
                .iter()
                .filter(|r| {
                    r.variant == variant
                        && r.scenario == scenario
                        && !r.curve
                        && r.breakdown.is_some()
                })
                .collect();
            let part = |f: fn(&Breakdown) -> f64| median_of(&runs, |r| r.breakdown.as_ref().map(f));
            let (
                Some(outside),
                Some(edge),
                Some(hops_us),
                Some(handlers),
                Some(hops),
                Some(hop_us),
                Some(p50),
                Some(lag),
            ) = (
                part(|b| b.outside_us),
                part(|b| b.edge_us),
                part(|b| b.hops_us),
                part(|b| b.handlers_us),
                part(|b| b.hops),
                part(|b| b.hop_us),
                median_of(&runs, |r| Some(r.p50_us)),
                median_of(&runs, |r| Some(r.send_lag_p50_us)),
            )
            else {
                continue;
            };
            let samples = runs
                .iter()
                .filter_map(|r| r.breakdown.as_ref())
                .map(|b| b.samples)
                .sum();
            let band = runs
                .iter()
                .filter_map(|r| r.breakdown.as_ref())
                .map(|b| b.band)
                .sum();
            rows.push(Row {
                variant: variant.to_owned(),
                scenario,
                parts: Breakdown {
                    samples,
                    band,
                    outside_us: outside,
                    edge_us: edge,
                    hops_us,
                    handlers_us: handlers,
                    hops,
                    hop_us,
                },
                send_lag_us: lag,
                p50_us: p50,
                budget_us: outside + lag + hops * hop_us,
            });
        }
    }
    rows
}

/// The summary's line: a transfer's parts in each variant, and each
/// against its hop budget (nothing without a breakdown of transfers).
pub fn summary(raw: &Raw) -> Option<String> {
    let rows: Vec<Row> = rows(raw)
        .into_iter()
        .filter(|r| r.scenario == Scenario::Transfer)
        .collect();
    if rows.is_empty() {
        return None;
    }
    let each: Vec<String> = rows
        .iter()
        .map(|r| {
            let b = &r.parts;
            format!(
                "{} outside the edge {:.0}, edge {:.0}, hops {:.0} ({:.1} of {:.0} µs each), handlers {:.0} µs; p50 {:.2}x its hop budget of {:.0} µs",
                r.variant,
                b.outside_us,
                b.edge_us,
                b.hops_us,
                b.hops,
                b.hop_us,
                b.handlers_us,
                r.p50_us / r.budget_us.max(1e-9),
                r.budget_us
            )
        })
        .collect();
    Some(format!(
        "Where a typical transfer's time goes (sampled requests around the median): {}.",
        each.join("; ")
    ))
}

/// The "Where the time goes" section of REPORT.md (nothing when no run
/// has a breakdown).
pub fn render(raw: &Raw, md: &mut String) {
    let rows = rows(raw);
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(md, "\n## Where the time goes\n");
    let _ = writeln!(
        md,
        "About {STRIDE} requests of each fixed-rate run, evenly spread, asked for their timing (a sampled `traceparent`; both variants run with `--server-timing`) \
         and was answered with the tree of its hops in `Server-Timing`, each duration read in the process it describes. Parts are the means over the sampled \
         requests between the 40th and 60th percentile of the sample, the median over the repeats; chart `time-breakdown`. \
         **outside**: the generator, kernel and HTTP/1 around the edge's router; **edge**: the edge's own time; **hops**: each call or actor call minus what its callee \
         reports of itself (network stack, HTTP/2 and protobuf, or mailbox and wake-ups); **handlers**: the callees' own time (rules, locks, store); \
         **lag**: the generator's median send lag. The sum is checked against the run's p50 (flagged past {:.0} %).\n",
        TOLERANCE * 100.0
    );
    let _ = writeln!(
        md,
        "| scenario | variant | outside µs | edge µs | hops µs | handlers µs | lag µs | sum µs | p50 µs | sum/p50 | samples |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let b = &r.parts;
        let ratio = r.sum_over_p50();
        let flag = if (ratio - 1.0).abs() > TOLERANCE {
            " ⚠"
        } else {
            ""
        };
        let _ = writeln!(
            md,
            "| {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {ratio:.2}{flag} | {} |",
            r.scenario.name(),
            r.variant,
            b.outside_us,
            b.edge_us,
            b.hops_us,
            b.handlers_us,
            r.send_lag_us,
            b.total_us() + r.send_lag_us,
            r.p50_us,
            b.samples
        );
    }
    let _ = writeln!(md, "\n### The hop budget\n");
    let _ = writeln!(
        md,
        "Each variant against its own floor: what its typical request would take if its own code (edge and handlers) were free: the round trip \
         into the edge as the same requests measured it (outside and lag above, at the scenario's rate) plus the hops on its critical path times \
         one hop's median cost in this run and placement. p50/budget is what the variant's own code adds on top.\n"
    );
    let _ = writeln!(
        md,
        "| scenario | variant | round trip to the edge µs | hops | one hop µs | budget µs | p50 µs | p50/budget | edge + handlers µs |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let _ = writeln!(
            md,
            "| {} | {} | {:.0} | {:.1} | {:.1} | {:.0} | {:.0} | {:.2}x | {:.0} |",
            r.scenario.name(),
            r.variant,
            r.parts.outside_us + r.send_lag_us,
            r.parts.hops,
            r.parts.hop_us,
            r.budget_us,
            r.p50_us,
            r.p50_us / r.budget_us.max(1e-9),
            r.parts.edge_us + r.parts.handlers_us,
        );
    }
}
