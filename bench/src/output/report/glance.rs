//! The table at the top of the report, in the shape of Service Weaver's
//! Table 2 (HotOS 2023): every variant at the same transfer load, with
//! the cores it used, its median and p99 latency, its memory, its
//! processes, and what the standard fault (`crash`) cost it. Every cell
//! and sentence is read off the record.

use std::fmt::Write as _;

use crate::output::mib;
use crate::record::{Raw, Scenario};

/// How often `[min, max]` of `n` independent repeats holds the true
/// median: `1 - 2^(1-n)` (a distribution-free interval from order
/// statistics).
pub(super) fn coverage_of_range(n: usize) -> f64 {
    if n < 2 {
        return 0.0;
    }
    1.0 - 0.5f64.powi(i32::try_from(n).unwrap_or(i32::MAX) - 1)
}

/// The table and the sentences under it; nothing for a run of one
/// variant or without transfers at the fixed rate.
pub(super) fn render(raw: &Raw, md: &mut String) {
    let rate = raw.profile.transfer_rate;
    // Simplest first: the order of the continuum.
    let steps = raw.continuum();
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    if names.len() < 2 {
        return;
    }
    let _ = writeln!(md, "## At a glance\n");
    let repeats = raw.profile.repeats as usize;
    let _ = writeln!(
        md,
        "Transfers at {rate:.0}/s, open loop, every variant in the same run. Cores are the CPU every process of the \
         variant used per recorded answer, times the rate; latency is the median over {repeats} repeat(s) with the \
         range of the repeats in brackets{}; RSS is after the load; *crash* is the standard fault of the fault table \
         (requests failed, seconds with failures). {}\n",
        if repeats >= 2 {
            format!(
                " (for {repeats} repeats, a {:.0} % distribution-free confidence interval for the median: the true \
                 median lies between the lowest and the highest repeat unless all repeats fall on one side of it)",
                100.0 * coverage_of_range(repeats)
            )
        } else {
            String::new()
        },
        if raw.env.deploy == "compose" {
            "Processes are containers."
        } else {
            "Processes are the system's own: the microservices' launcher (their supervisor, as systemd would be) is \
             not counted; its memory is in their RSS."
        }
    );
    let _ = writeln!(
        md,
        "| variant | processes | cores used | p50 µs | p99 µs | p50 vs {first} | RSS | crash: failed, s |",
        first = names[0]
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
    let p50 = |name: &str| Raw::spread(&raw.runs_of(name, Scenario::Transfer), |r| r.p50_us);
    let base = p50(names[0]).map(|s| s.0);
    for (step, name) in steps.iter().zip(&names) {
        let variant = raw.variants.iter().find(|v| v.name == *name);
        let runs = raw.runs_of(name, Scenario::Transfer);
        let cell = |s: Option<(f64, f64, f64)>| {
            s.map_or("–".to_owned(), |(m, lo, hi)| {
                format!("{m:.0} ({lo:.0}–{hi:.0})")
            })
        };
        let cores = raw
            .cpu_per_request(name, Scenario::Transfer)
            .map_or("–".to_owned(), |us| format!("{:.2}", us * rate / 1e6));
        let ratio = match (p50(name), base) {
            (Some((m, _, _)), Some(b)) if b > 0.0 => format!("{:.2}x", m / b),
            _ => "–".to_owned(),
        };
        let crash = raw
            .faults
            .iter()
            // Under compose the container's crash stands in for it.
            .find(|f| f.variant == *name && (f.kind == "crash" || f.kind == "container-crash"))
            .map_or("–".to_owned(), |f| {
                format!("{}, {:.1}", f.failed, f.impact_s)
            });
        let _ = writeln!(
            md,
            "| {name} | {} | {cores} | {} | {} | {ratio} | {} | {crash} |",
            step.processes,
            cell(Raw::spread(&runs, |r| r.p50_us)),
            cell(Raw::spread(&runs, |r| r.p99_us)),
            mib(variant.and_then(|v| v.rss_loaded_bytes)),
        );
    }
    if crate::output::charts::has_continuum(raw) {
        let _ = writeln!(
            md,
            "\n![from one process to split: p50, p99 and cores by process boundaries](charts/continuum.png) \
             ([SVG](charts/continuum.svg))"
        );
    }
    md.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_of_five_repeats_covers_the_median_94_percent_of_the_time() {
        assert_eq!(coverage_of_range(1), 0.0);
        assert_eq!(coverage_of_range(2), 0.5);
        assert_eq!(coverage_of_range(5), 0.9375);
    }
}
