//! The cross-check section: the generator against oha at the same rates.

use crate::record::{AGREEMENT, CrossCheckRecord, OHA_CONNECTIONS};

/// The report's section.
pub(super) fn render(record: &CrossCheckRecord, md: &mut String) {
    use std::fmt::Write as _;
    let _ = writeln!(md, "\n## The generator cross-checked against oha\n");
    let _ = writeln!(
        md,
        "The same endpoints at the same rates, one generator after the other: ours (warm-up excluded) and `{}` \
         (open loop with `--latency-correction`, its {OHA_CONNECTIONS} connections, latency from the schedule too). \
         They should agree within {:.0} % at p50 and p99; a row that does not is marked.\n",
        if record.oha_version.is_empty() {
            "oha"
        } else {
            &record.oha_version
        },
        AGREEMENT * 100.0
    );
    let _ = writeln!(
        md,
        "| target | path | rate/s | ours p50 µs | oha p50 µs | ours p99 µs | oha p99 µs | oha achieved/s | oha errors | agree |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|");
    for c in &record.checks {
        let _ = writeln!(
            md,
            "| {} | `{}` | {:.0} | {:.0} | {:.0} ({:+.0} %) | {:.0} | {:.0} ({:+.0} %) | {:.0} | {} | {} |",
            c.target,
            c.path,
            c.rate,
            c.ours_p50_us,
            c.oha_p50_us,
            100.0 * (c.ours_p50_us - c.oha_p50_us) / c.oha_p50_us.max(1e-9),
            c.ours_p99_us,
            c.oha_p99_us,
            100.0 * (c.ours_p99_us - c.oha_p99_us) / c.oha_p99_us.max(1e-9),
            c.oha_rate,
            c.oha_errors,
            if c.agrees() { "yes" } else { "**no**" }
        );
    }
    if let Some(c) = record.checks.first() {
        let _ = writeln!(md, "\nCommand (for the first row): `{}`.", c.command);
    }
    if record
        .checks
        .iter()
        .any(|c| !c.agrees() && c.rate <= TIMER_TICKS_PER_S)
    {
        let _ = writeln!(
            md,
            "\nAt every rate oha also hands each request from its scheduler to a connection task through a channel (a wake-up across the threads \
             of its own runtime, on the cores the system under test uses) before it is sent, and that wait is in its figures; ours sends from the \
             worker that was released. This run does not separate that hand-off from the rest, so a row at or below {TIMER_TICKS_PER_S:.0}/s that \
             disagrees (mostly at p99) is marked, not explained."
        );
    }
    if record
        .checks
        .iter()
        .any(|c| !c.agrees() && c.rate > TIMER_TICKS_PER_S)
    {
        let _ = writeln!(
            md,
            "\nWhy the rows above {TIMER_TICKS_PER_S:.0}/s are not expected to agree: oha releases `-q` requests by sleeping on tokio's timer, \
             whose resolution is one millisecond, and `--latency-correction` starts each request's clock when the scheduler wakes, not at its \
             scheduled time (oha 1.16.0, `src/client.rs`, `work_until_with_qps_latency_correction`). Above {TIMER_TICKS_PER_S:.0}/s it therefore sends \
             its requests in bursts, rate/1000 at each tick, through a channel to its connection tasks: each burst queues at the server and in oha itself, \
             and that queueing is in its figures. Ours releases every request at its own time (a `timerfd`, microseconds) and measures from it \
             (`bench/src/generator/load.rs`). At {TIMER_TICKS_PER_S:.0}/s and below, one request per tick, their medians should agree."
        );
    }
}

/// Ticks per second of tokio's timer, on which oha schedules its requests.
const TIMER_TICKS_PER_S: f64 = 1000.0;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::CrossCheck;

    #[test]
    fn agreement_is_judged_and_disagreement_explained_or_marked() {
        let check = |ours_p50: f64| CrossCheck {
            target: "floor".into(),
            path: "/echo".into(),
            rate: 1000.0,
            seconds: 5.0,
            ours_p50_us: ours_p50,
            ours_p99_us: 1100.0,
            oha_p50_us: 200.0,
            oha_p99_us: 1000.0,
            oha_rate: 999.5,
            oha_errors: 0,
            command: String::new(),
        };
        assert!(check(225.0).agrees());
        assert!(!check(240.0).agrees(), "20 % apart");
        // Disagreement past oha's one request per timer tick is explained;
        // at or below it, it is only marked.
        let render_of = |checks: Vec<CrossCheck>| {
            let mut md = String::new();
            render(
                &CrossCheckRecord {
                    oha_version: "oha 1.16.0".into(),
                    checks,
                },
                &mut md,
            );
            md
        };
        let below = render_of(vec![check(240.0)]);
        assert!(
            below.contains("**no**") && !below.contains("Why the rows above"),
            "{below}"
        );
        assert!(below.contains("is marked, not explained"), "{below}");
        assert!(
            !render_of(vec![check(225.0)]).contains("hands each request"),
            "agreement needs no note"
        );
        let above = render_of(vec![
            check(225.0),
            CrossCheck {
                rate: 4000.0,
                ..check(100.0)
            },
        ]);
        assert!(
            above.contains("Why the rows above 1000/s are not expected to agree"),
            "{above}"
        );
    }
}
