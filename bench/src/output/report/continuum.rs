//! From one process to split: every variant at the same transfer rate,
//! by the process boundaries a transfer crosses, with the speed goal of
//! the in-process placement checked against the plain monolith.

use std::fmt::Write as _;

use crate::output::mib;
use crate::record::Raw;

/// The goal: every component in one process within this factor of the
/// plain monolith's p50 and CPU per transfer, in the same run.
const ONE_PROCESS_GOAL: f64 = 1.2;

/// The section; nothing for a run without placements or without
/// fixed-rate runs (another part alone).
pub(super) fn render(raw: &Raw, md: &mut String) {
    if !raw.variants.iter().any(|v| v.placement.is_some()) || !raw.has_fixed_rate_runs() {
        return;
    }
    let steps = raw.continuum();
    let rate = raw.profile.transfer_rate;
    let _ = writeln!(md, "\n## From one process to split\n");
    let _ = writeln!(
        md,
        "Transfers at {rate:.0}/s against every variant and every placement of the microservices' components \
         (`microservices up --layout`): the same binary and business code, components of one process calling each \
         other in-process, the rest over gRPC (and HTTP/JSON for the ledger) with the same resilience layers. \
         *Boundaries* are the process boundaries a transfer crosses on its critical path (gateway → transfers → \
         accounts). Loopback has no network round trip: each boundary costs here what the hop itself costs. \
         *Idle CPU* is what the processes use over a second without requests (CPU milliseconds per second).\n"
    );
    let _ = writeln!(
        md,
        "| variant | processes | boundaries | p50 µs | p99 µs | CPU/transfer µs | cores | idle CPU | RSS idle | RSS loaded | start to ready |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|");
    for step in &steps {
        let v = raw.variants.iter().find(|v| v.name == step.name);
        let layout = v
            .and_then(|v| v.placement.as_ref())
            // A `|` would end the table's cell.
            .map_or(String::new(), |p| {
                format!(" (`{}`)", p.layout.replace('|', "\\|"))
            });
        let _ = writeln!(
            md,
            "| {}{layout} | {} | {} | {:.0} ({:.0}–{:.0}) | {:.0} ({:.0}–{:.0}) | {} | {} | {} | {} | {} | {} |",
            step.name,
            step.processes,
            step.boundaries,
            step.p50.0,
            step.p50.1,
            step.p50.2,
            step.p99.0,
            step.p99.1,
            step.p99.2,
            step.cpu_us.map_or("–".to_owned(), |c| format!("{c:.0}")),
            step.cores.map_or("–".to_owned(), |c| format!("{c:.3}")),
            v.and_then(|v| v.cpu_idle_cores)
                .map_or("–".to_owned(), |c| format!("{:.1} ms/s", c * 1000.0)),
            mib(v.and_then(|v| v.rss_idle_bytes)),
            mib(v.and_then(|v| v.rss_loaded_bytes)),
            v.and_then(|v| v.start_to_ready_ms)
                .map_or("–".to_owned(), |ms| format!("{ms:.0} ms")),
        );
    }
    let monolith = steps.iter().find(|s| s.name == "monolith");
    let one = steps
        .iter()
        .find(|s| s.processes == 1 && s.name.starts_with("microservices@"));
    if let (Some(m), Some(o)) = (monolith, one) {
        let p50 = o.p50.0 / m.p50.0.max(1e-9);
        let cpu = match (o.cpu_us, m.cpu_us) {
            (Some(a), Some(b)) => Some(a / b.max(1e-9)),
            _ => None,
        };
        let met = p50 <= ONE_PROCESS_GOAL && cpu.is_none_or(|c| c <= ONE_PROCESS_GOAL);
        let _ = writeln!(
            md,
            "\nEvery component in one process (`{}`) took {p50:.2}x the plain monolith's p50{} in this run: the goal \
             of at most {ONE_PROCESS_GOAL}x is {}.{}",
            o.name,
            cpu.map_or(String::new(), |c| format!(
                " and {c:.2}x its CPU per transfer"
            )),
            if met { "met" } else { "missed" },
            if met {
                ""
            } else {
                " What stays in that process besides plain calls: every component still serves its own gRPC or HTTP port \
                 (idle), the accounts keep the settlement fence's bookkeeping, and the gateway's edge adds the \
                 deadline middleware and trace context the split system needs."
            }
        );
    }
    let _ = writeln!(
        md,
        "\nThe chart at the top of the report (`charts/continuum.svg`) draws this table."
    );
}
