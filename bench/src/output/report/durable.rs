//! The transfer curve on durable storage (`--full`, local): each variant
//! started afresh on redb and stepped up the same curve, its highest
//! sustained step beside the one it reached in memory.

use std::fmt::Write as _;

use crate::analysis::highest_step;
use crate::record::{Raw, RunRecord};

/// The section, when the run has a durable curve.
pub(super) fn render(raw: &Raw, md: &mut String) {
    let runs = &raw.durable_runs;
    if runs.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "\n## Durable storage: throughput and latency (transfers)\n"
    );
    let _ = writeln!(
        md,
        "The monolith, the microlith and the split microservices again, started afresh with \
         `--storage durable` (redb; a transfer is answered only once its records are synced, and \
         commits waiting for a sync share the next one), stepped up the same curve ({} s per step) \
         with the same knee rule. The sections above measure the fabric in memory; this one is \
         what a deployment that keeps its data pays on this machine's disk.\n",
        raw.profile.curve_step_s
    );
    super::curve_table(md, runs);
    let _ = writeln!(md, "\nHighest step sustained without saturating:\n");
    let bound_us = raw.profile.curve_p99_bound_ms * 1000.0;
    for name in names(runs) {
        let durable = highest_step(runs, name, |r| !r.saturated).unwrap_or(0.0);
        let tail =
            highest_step(runs, name, |r| !r.saturated && r.p99_us <= bound_us).unwrap_or(0.0);
        let memory = raw
            .sustained(name)
            .map(|(best, _)| best)
            .filter(|best| *best > 0.0);
        let _ = writeln!(
            md,
            "- {name}: {durable:.0}/s durable, the highest step with p99 under {:.0} ms: \
             {tail:.0}/s{}",
            raw.profile.curve_p99_bound_ms,
            match memory {
                Some(m) => format!(
                    "; {m:.0}/s in memory in this run ({:.2}x of it durable)",
                    durable / m
                ),
                None => String::new(),
            }
        );
    }
}

/// The variants of `runs`, in run order.
fn names(runs: &[RunRecord]) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for r in runs {
        if !names.contains(&r.variant.as_str()) {
            names.push(&r.variant);
        }
    }
    names
}
