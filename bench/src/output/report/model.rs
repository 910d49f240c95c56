//! The cost model's check: each placement's p50 and CPU per transfer as
//! the model fitted on the run's two ends predicts them, beside what they
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
        "| placement | boundaries | p50 predicted µs | p50 measured µs | error | CPU predicted µs | CPU measured µs | error | p50 from the timed hop µs | error |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|");
    let mut misses = Vec::new();
    for check in model.checks(raw) {
        let e50 = error(check.p50.0, check.p50.1);
        let ecpu = check.cpu.map(|(p, m)| error(p, m));
        let mark = |e: f64| {
            if check.fitted {
                "fitted".to_owned()
            } else {
                format!("{:+.0} %", e * 100.0)
            }
        };
        if !check.fitted && (e50.abs() > GOAL || ecpu.is_some_and(|e| e.abs() > GOAL)) {
            misses.push(check.name.clone());
        }
        let timed = check.p50_timed.map_or("– | –".to_owned(), |p| {
            if check.name == model.one.name {
                format!("{p:.0} | base")
            } else {
                format!("{p:.0} | {:+.0} %", error(p, check.p50.1) * 100.0)
            }
        });
        let _ = writeln!(
            md,
            "| {} | {} | {:.0} | {:.0} | {} | {} | {} | {} | {timed} |",
            check.name,
            check.boundaries,
            check.p50.0,
            check.p50.1,
            mark(e50),
            check.cpu.map_or("–".to_owned(), |(p, _)| format!("{p:.0}")),
            check.cpu.map_or("–".to_owned(), |(_, m)| format!("{m:.0}")),
            ecpu.map_or("–".to_owned(), mark),
        );
    }
    let _ = writeln!(
        md,
        "\n{}",
        if misses.is_empty() {
            format!(
                "Every placement between the ends is within {:.0} % of its prediction in this run.",
                GOAL * 100.0
            )
        } else {
            format!(
                "Missed the {:.0} % goal: {}. The model counts only the boundaries on a transfer's critical path; \
                 the others (the ledger's feed, settlement reports, the gateway's audit path) cost CPU in batches \
                 and differ between placements with the same count, and at this rate a run's p50 moves by tens of \
                 microseconds between repeats (see the spread in the table above).",
                GOAL * 100.0,
                misses.join(", ")
            )
        }
    );
    if let Some(hop) = model.timed_hop_us {
        let _ = writeln!(
            md,
            "\nThe last two columns predict from another measurement of the same run: one hop as the split system's \
             sampled requests timed it themselves (`Server-Timing`, caller to callee: {hop:.0} µs, median over the \
             run's hops), which the ends do not enter, so every placement, split included, is a prediction there."
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
