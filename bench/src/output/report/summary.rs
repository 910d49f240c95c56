//! The summary at the top of the report: each finding read off the
//! sections below.

use std::fmt::Write as _;

use super::breakdown;
use crate::record::{FanoutRecord, Raw, Scenario};

/// The findings, each read off the sections below.
pub(super) fn render(raw: &Raw, md: &mut String) {
    let (a, b) = ("microlith", "microservices");
    if !raw.variants.iter().any(|v| v.name == a) || !raw.variants.iter().any(|v| v.name == b) {
        return;
    }
    let mut lines: Vec<String> = Vec::new();
    for (scenario, rate) in raw.profile.scenarios() {
        let (ra, rb) = (raw.runs_of(a, scenario), raw.runs_of(b, scenario));
        if let (Some(a50), Some(b50), Some(a99), Some(b99)) = (
            Raw::spread(&ra, |r| r.p50_us),
            Raw::spread(&rb, |r| r.p50_us),
            Raw::spread(&ra, |r| r.p99_us),
            Raw::spread(&rb, |r| r.p99_us),
        ) {
            lines.push(format!(
                "{} at {rate:.0}/s: the microservices take {:.2}x the microlith's time at p50 ({:.0} vs {:.0} µs) and {:.2}x at p99 ({:.0} vs {:.0} µs).",
                scenario.name(),
                b50.0 / a50.0.max(1e-9),
                b50.0,
                a50.0,
                b99.0 / a99.0.max(1e-9),
                b99.0,
                a99.0
            ));
        }
    }
    lines.extend(supervision(raw));
    lines.extend(breakdown::summary(raw));
    if let (Some((sa, top_a)), Some((sb, top_b))) = (raw.sustained(a), raw.sustained(b)) {
        let generator = raw.generator_reach().unwrap_or(f64::MAX);
        let mark = |top: bool, rate: f64| {
            if top {
                " (the highest step tried: at least that)"
            } else if rate >= generator {
                " (as far as the load generator itself went: at least that)"
            } else {
                ""
            }
        };
        let monolith = raw.sustained("monolith").map_or(String::new(), |(s, top)| {
            format!("monolith {s:.0}/s{}, ", mark(top, s))
        });
        lines.push(format!(
            "Transfers sustained before the knee: {monolith}microlith {sa:.0}/s{}, microservices {sb:.0}/s{} ({:.1}x){}.",
            mark(top_a, sa),
            mark(top_b, sb),
            sa / sb.max(1.0),
            match (raw.within_tail_bound(a), raw.within_tail_bound(b)) {
                (Some(ta), Some(tb)) => format!("; with p99 under {:.0} ms: {ta:.0}/s and {tb:.0}/s", raw.profile.curve_p99_bound_ms),
                _ => String::new(),
            }
        ));
    }
    let va = raw.variants.iter().find(|v| v.name == a);
    let vb = raw.variants.iter().find(|v| v.name == b);
    if let (Some(va), Some(vb)) = (va, vb) {
        let per_scenario: Vec<String> = raw
            .profile
            .scenarios()
            .into_iter()
            .filter_map(|(scenario, rate)| {
                let (ca, cb) = (
                    raw.cpu_per_request(a, scenario)?,
                    raw.cpu_per_request(b, scenario)?,
                );
                Some(format!(
                    "{} at {rate:.0}/s {ca:.0} vs {cb:.0} µs ({:.1}x)",
                    scenario.name(),
                    cb / ca.max(1e-9)
                ))
            })
            .collect();
        let cpu = if !per_scenario.is_empty() {
            format!(
                "CPU per request, recorded windows only: {}",
                per_scenario.join(", ")
            )
        } else if let (Some(ca), Some(cb)) = (va.cpu_ms_per_request, vb.cpu_ms_per_request) {
            // Runs recorded before 2026-11-28 kept only this figure.
            format!(
                "CPU per request over the whole run (warm-ups included, every part's mix: the older accounting, about 1.2x too high): {:.0} vs {:.0} µs ({:.1}x)",
                ca * 1000.0,
                cb * 1000.0,
                cb / ca.max(1e-9)
            )
        } else {
            "CPU per request not measured".to_owned()
        };
        lines.push(format!(
            "{cpu}; resident memory idle {:.1} vs {:.1} MiB; {} process{} vs {}.",
            va.rss_idle_bytes.unwrap_or(0) as f64 / 1048576.0,
            vb.rss_idle_bytes.unwrap_or(0) as f64 / 1048576.0,
            raw.own_processes(va),
            if raw.own_processes(va) == 1 { "" } else { "es" },
            raw.own_processes(vb)
        ));
    }
    let fan = |v: &str| {
        let runs: Vec<&FanoutRecord> = raw.fanout.iter().filter(|f| f.variant == v).collect();
        let mut p50: Vec<f64> = runs.iter().map(|f| f.p50_us).collect();
        p50.sort_by(f64::total_cmp);
        let lost: u64 = runs
            .iter()
            .map(|f| f.lost + f.duplicates + f.out_of_order)
            .sum();
        p50.get(p50.len() / 2).map(|m| (*m, lost))
    };
    if let (Some((fa, la)), Some((fb, lb)), Some(f0)) = (fan(a), fan(b), raw.fanout.first()) {
        lines.push(format!(
            "Chat fan-out to {} WebSocket subscribers: delivery p50 {:.1} vs {:.1} ms ({:.2}x); messages lost, duplicated or reordered: {la} vs {lb}.",
            f0.subscribers,
            fa / 1000.0,
            fb / 1000.0,
            fb / fa.max(1e-9)
        ));
    }
    let mut kinds: Vec<&str> = Vec::new();
    for f in &raw.faults {
        if !kinds.contains(&f.kind.as_str()) {
            kinds.push(&f.kind);
        }
    }
    for kind in kinds {
        let of = |v: &str| {
            raw.faults
                .iter()
                .find(|f| f.kind == kind && f.variant == v)
                .map(|f| {
                    format!(
                        "{} of {} requests failed, impact {:.1} s",
                        f.failed,
                        f.failed + f.ok,
                        f.recovery_s()
                    )
                })
        };
        let each: Vec<String> = raw
            .variants
            .iter()
            // A variant without faults (a placement in the quick profile)
            // is left out rather than listed as having no counterpart.
            .filter(|v| raw.faults.iter().any(|f| f.variant == v.name))
            .map(|v| {
                let name = v.name.as_str();
                let missing = if name == b {
                    "not run"
                } else {
                    "has no counterpart"
                };
                format!("{name} {}", of(name).unwrap_or_else(|| missing.to_owned()))
            })
            .collect();
        lines.push(format!(
            "Fault `{kind}`: {}; invariants held after each.",
            each.join("; ")
        ));
    }
    if let Some(cost) = &raw.cost {
        let only = |v: &str| {
            cost.code
                .iter()
                .filter(|c| c.variant == v && !c.area.starts_with("tests"))
                .map(|c| c.code)
                .sum::<u64>()
        };
        let monolith = if raw.variants.iter().any(|v| v.name == "monolith") {
            format!("{} lines in the monolith, ", only("monolith"))
        } else {
            String::new()
        };
        lines.push(format!(
            "Code that exists only for the fabric: {monolith}{} lines in the microlith, {} in the microservices; {} lines of business logic, storage, edge and contract suite are shared.",
            only(a),
            only(b),
            only("both")
        ));
    }
    let floor = raw.runs_of("floor", Scenario::Floor);
    if let (Some(f50), Some(ceiling)) = (Raw::spread(&floor, |r| r.p50_us), raw.sustained("floor"))
    {
        lines.push(format!(
            "The load generator's own floor: {:.0} µs p50 against a trivial echo at {:.0}/s; it sustained {:.0}/s open loop and answered up to {:.0}/s overdriven{}.",
            f50.0,
            raw.floor_rate(),
            ceiling.0,
            raw.peak("floor"),
            raw.wrk.as_ref().map_or(String::new(), |w| format!(" (wrk, closed loop: {:.0}/s)", w.requests_per_s))
        ));
    }
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(md, "## Summary\n");
    for line in lines {
        let _ = writeln!(md, "- {line}");
    }
    let _ = writeln!(md);
}

/// What the microlith's actors and supervision cost over the plain
/// monolith, scenario by scenario, in the same run.
fn supervision(raw: &Raw) -> Vec<String> {
    let (base, actors) = ("monolith", "microlith");
    raw.profile
        .scenarios()
        .into_iter()
        .filter_map(|(scenario, rate)| {
            let p50 = |v: &str| Raw::spread(&raw.runs_of(v, scenario), |r| r.p50_us).map(|s| s.0);
            let (m, l) = (p50(base)?, p50(actors)?);
            let cpu = match (
                raw.cpu_per_request(base, scenario),
                raw.cpu_per_request(actors, scenario),
            ) {
                (Some(cm), Some(cl)) => format!(
                    " and {:.2}x its CPU per request ({cl:.0} vs {cm:.0} µs)",
                    cl / cm.max(1e-9)
                ),
                _ => String::new(),
            };
            Some(format!(
                "{} at {rate:.0}/s: the microlith's actors and supervision take {:.2}x the plain monolith's time at p50 ({l:.0} vs {m:.0} µs){cpu}.",
                scenario.name(),
                l / m.max(1e-9)
            ))
        })
        .collect()
}
