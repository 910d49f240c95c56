//! The cost model's check: each placement's p50 and CPU per transfer as
//! the model predicts them (fitted on the run's two ends, from the hop the
//! requests timed, from the hop measured alone), beside what they
//! measured ([`crate::analysis::model`]).

use std::fmt::Write as _;

use crate::analysis::model::{Model, error};
use crate::record::Raw;

/// The goal: every prediction within this fraction of the measurement.
const GOAL: f64 = 0.25;

/// The section; nothing for a run without both ends of the continuum.
pub(super) fn render(raw: &Raw, md: &mut String) {
    let Some(model) = Model::fit(raw) else {
        return;
    };
    let _ = writeln!(md, "\n## A cost model of process boundaries\n");
    let cpu = model.hop_cpu_us.map_or(String::new(), |c| {
        format!(" and {c:.0} µs of CPU per transfer")
    });
    let _ = writeln!(
        md,
        "A transfer in a placement costs what it costs with every component in one process (`{}`: p50 {:.0} µs{}), \
         plus a price per process boundary on its critical path. That price is read off the two ends of this run \
         (`{}` and `{}`, {} boundaries apart): **{:.0} µs at p50{cpu} per boundary**, on loopback (no network round \
         trip: a real network adds its round trip per boundary, which `bench model --rtt` takes). The placements in \
         between are predictions, checked here against what they measured (goal: within {:.0} %).\n",
        model.one.name,
        model.one.p50.0,
        model
            .one
            .cpu_us
            .map_or(String::new(), |c| format!(", CPU {c:.0} µs")),
        model.one.name,
        model.split.name,
        model.split.boundaries - model.one.boundaries,
        model.hop_us,
        GOAL * 100.0,
    );
    let _ = writeln!(
        md,
        "Three predictions per placement, each with its error against the measurement: **ends**, the price of a \
         boundary read off the two ends (exact on the ends by construction); **timed hop**, the hop as the split \
         system's sampled requests timed it themselves (`Server-Timing`), p50 only; **hop alone**, a gRPC call \
         measured by itself in the same run (below), p50 and CPU. The last two do not enter the ends, so every \
         placement, split included, is a prediction there.\n"
    );
    let _ = writeln!(
        md,
        "| placement | boundaries | p50 µs | p50: ends | p50: timed hop | p50: hop alone | CPU/transfer µs | CPU: ends | CPU: hop alone |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
    // Misses of the goal, by method.
    let mut misses: [(&str, Vec<String>); 3] = [
        ("fitted on the ends", Vec::new()),
        ("from the timed hop", Vec::new()),
        ("from the hop alone", Vec::new()),
    ];
    let checks = model.checks(raw);
    for check in &checks {
        let base = check.name == model.one.name;
        // A prediction beside its measurement; a miss noted under `method`.
        let mut cell = |predicted: Option<f64>, measured: f64, method: usize, fitted: bool| {
            let Some(p) = predicted else {
                return "–".to_owned();
            };
            if base {
                return format!("{p:.0} (base)");
            }
            if fitted {
                return format!("{p:.0} (fitted)");
            }
            let e = error(p, measured);
            if e.abs() > GOAL && !misses[method].1.contains(&check.name) {
                misses[method].1.push(check.name.clone());
            }
            format!("{p:.0} ({:+.0} %)", e * 100.0)
        };
        let measured_cpu = check.cpu.map(|(_, m)| m);
        let row = format!(
            "| {} | {} | {:.0} | {} | {} | {} | {} | {} | {} |",
            check.name,
            check.boundaries,
            check.p50.1,
            cell(Some(check.p50.0), check.p50.1, 0, check.fitted),
            cell(check.p50_timed, check.p50.1, 1, false),
            cell(check.probed.map(|p| p.0), check.p50.1, 2, false),
            measured_cpu.map_or("–".to_owned(), |m| format!("{m:.0}")),
            measured_cpu.map_or("–".to_owned(), |m| cell(
                check.cpu.map(|(p, _)| p),
                m,
                0,
                check.fitted
            )),
            measured_cpu.map_or("–".to_owned(), |m| cell(
                check.probed.and_then(|p| p.1),
                m,
                2,
                false
            )),
        );
        let _ = writeln!(md, "{row}");
    }
    let _ = writeln!(md);
    for (method, missed) in &misses {
        let _ = writeln!(
            md,
            "- {method}: {}",
            if missed.is_empty() {
                format!("every prediction within {:.0} %", GOAL * 100.0)
            } else {
                format!(
                    "missed the {:.0} % goal for {}",
                    GOAL * 100.0,
                    missed.join(", ")
                )
            }
        );
    }
    if misses.iter().any(|(_, m)| !m.is_empty()) {
        let _ = writeln!(
            md,
            "\nWhere a prediction misses: the model counts only the boundaries on a transfer's critical path; the \
             others (the ledger's feed, settlement reports, the gateway's audit path) cost CPU in batches and differ \
             between placements with the same count, and at this rate a run's p50 moves by tens of microseconds \
             between repeats (see the spread in the table above)."
        );
    }
    let split = checks.iter().find(|c| c.name == model.split.name);
    if let (Some(probe), Some(split)) = (model.probe, split) {
        let n = split.boundaries.saturating_sub(model.one.boundaries).max(1) as f64;
        // What a boundary costs beyond a bare call, in words.
        let rest = |measured: f64, predicted: f64| {
            let per = (measured - predicted) / n;
            format!(
                "{:.0} µs {}",
                per.abs(),
                if per < 0.0 { "less" } else { "more" }
            )
        };
        let _ = writeln!(
            md,
            "\n**The hop alone**: `bank.v1.Accounts/Balance` called by the harness straight at the split system's \
             accounts process through the microservices' own client (deadline, breaker, concurrency limit, retry \
             budget), one call at a time at {rate:.0}/s from a thread doing nothing else: p50 {:.0} µs{}.{} Against \
             the fully split system, each of its {n:.0} boundaries costs {} at p50{} than a bare call: what \
             a transfer's boundary carries besides (larger messages, the saga's deadline and trace headers, a busier \
             process) and what crosses boundaries off the critical path.",
            probe.p50_us,
            probe.cpu_us().map_or(String::new(), |c| format!(
                ", CPU {c:.0} µs per call ({:.0} µs the caller's, {:.0} µs the callee's)",
                probe.caller_cpu_us.unwrap_or(0.0),
                probe.callee_cpu_us.unwrap_or(0.0)
            )),
            model.probe_http.map_or(String::new(), |h| format!(
                " The HTTP/JSON hop (the ledger's `GET /v1/summary`, reqwest to axum) alone: p50 {:.0} µs{}.",
                h.p50_us,
                h.cpu_us()
                    .map_or(String::new(), |c| format!(", CPU {c:.0} µs per call"))
            )),
            rest(split.p50.1, split.probed.map_or(split.p50.1, |p| p.0)),
            match (split.cpu, split.probed.and_then(|p| p.1)) {
                (Some((_, measured)), Some(predicted)) => {
                    format!(" and {} CPU", rest(measured, predicted))
                }
                _ => String::new(),
            },
            rate = model.rate,
        );
    }
    if let Some(hop) = model.timed_hop_us {
        let _ = writeln!(
            md,
            "\n**The timed hop**: {hop:.0} µs, the median over every hop the split system's sampled requests timed \
             (caller to callee, less the callee's own time)."
        );
    }
    if let Some(rss) = model.process_rss {
        let _ = writeln!(
            md,
            "\nA process more (the same ends, by their processes) adds {:.1} MiB of resident memory while idle{}.",
            rss / 1048576.0,
            model.process_idle_cores.map_or(String::new(), |c| format!(
                " and uses {:.2} ms of CPU per second with nothing to do",
                c * 1000.0
            ))
        );
    }
    if let Some((us, cpu)) = model.secured {
        let _ = writeln!(
            md,
            "\nmTLS with service tokens (the cost part, split, same load) add {us:.0} µs at p50{} per boundary.",
            cpu.map_or(String::new(), |c| format!(
                " and {c:.0} µs of CPU per transfer"
            ))
        );
    }
}
