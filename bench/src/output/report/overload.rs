//! The overload part: each variant at twice its knee between stretches
//! at half of it, against issue 16's targets.

use std::fmt::Write as _;

use crate::output::{mib, seconds as trim};
use crate::record::Raw;
use crate::record::overload_target as target;

/// The section, when the run overloaded anything.
pub(super) fn render(raw: &Raw, md: &mut String) {
    if raw.overload.is_empty() && !raw.env.parts.iter().any(|p| p == "overload") {
        return;
    }
    let _ = writeln!(md, "\n## Overload (twice the knee)\n");
    let with_durable_curve = with_durable_curve(raw);
    let _ = writeln!(
        md,
        "Each variant, {deployed} posting transfers at half its knee (the highest step it \
         sustained) for {settle} s, then at twice its knee for {surge} s, then at half again for {settle} s: \
         one open-loop schedule, no pause between the stretches. A variant whose curve held up to its top \
         step has no knee in this run, and twice an unknown knee would measure the generator: it is not \
         overloaded (listed under the table). Every answer is kept and read per 100 ms \
         bucket. *Goodput*: successful answers (2xx, or a correct 409) per second during the surge, and \
         over the knee. *Refusals*: answers shed for load (429, 503) during the surge, with the 99th \
         percentile of their time from sending (the system's refusal, not the generator's queue). *RSS*: the peak of the variant's processes during the \
         surge over their RSS just before it (sampled every 250 ms), with the most connections the \
         generator held open at once (one per request in flight, each with the edge's buffers; {kept}). *Back after*: from the end of the \
         surge to the start of the first second (read every 100 ms) with nothing refused or failed and a \
         p99 (from the scheduled time) within twice the p99 of the two seconds before the surge, both read \
         off every answer. *Send lag*: the \
         generator's own delay (p99); past a millisecond the generator, which shares the machine, could \
         not keep the schedule either. Up to 6 144 requests are in flight (more than any edge admits before \
         answering 429); a request the generator could not send within 5 s of its schedule is given up, as \
         a user's client would, and counted *not sent*: the generator's failing, not the system's (a row with \
         any is marked so). A row with requests not sent is not judged: the surge did not reach the system, and \
         the row measures the generator. The targets (issue 16): goodput at least {goodput} of the knee, refusals' \
         p99 at most {shed} ms, RSS at most {rss}x, back within {back} s. The audit after the load must pass.\n",
        goodput = target::GOODPUT_RATIO,
        shed = target::SHED_P99_MS,
        rss = target::RSS_RATIO,
        back = target::BACK_S,
        settle = trim(raw.profile.overload_settle_s),
        surge = trim(raw.profile.overload_s),
        deployed = if with_durable_curve {
            "started afresh on durable storage with the durable curve below, whose knee it takes,"
        } else {
            "as in the curve above,"
        },
        kept = if raw.overload.iter().any(|o| durable_row(raw, o)) {
            "on durable storage the settled transfers leave memory (a journal keeps only its \
             latest), so the RSS reads what the surge holds in flight: the buffers and the queues; \
             its growth over the connections is given"
        } else {
            "with memory storage the surge's transfers stay in memory too"
        },
    );
    if !raw.overload.is_empty() {
        table(raw, md);
    }
    not_overloaded(raw, md);
}

/// The table: one row per variant overloaded.
fn table(raw: &Raw, md: &mut String) {
    let _ = writeln!(
        md,
        "| variant | knee/s | surge/s | goodput/s (of knee) | refused (p99) | errors, unanswered, not sent | RSS before → peak | p99 before | back after | send lag p99 | holds |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|");
    for o in &raw.overload {
        let v = o.verdict();
        let missed = v.missed();
        let holds = if v.unsent > 0 {
            // Requests scheduled and never sent: the surge did not reach
            // the system, so the row measures the generator.
            format!(
                "not judged: the generator could not send {:.0}/s beside it{}",
                o.surge_rate,
                if missed.is_empty() {
                    String::new()
                } else {
                    format!(" (as measured: {})", missed.join(", "))
                }
            )
        } else {
            let verdict = if missed.is_empty() {
                "yes".to_owned()
            } else {
                format!("**no**: {}", missed.join(", "))
            };
            if o.send_lag_p99_us > 1000.0 {
                format!("{verdict} (the generator fell behind: it measured itself too)")
            } else {
                verdict
            }
        };
        let _ = writeln!(
            md,
            "| {} | {:.0} | {:.0} | {:.0} ({:.2}) | {}{} | {}, {}, {} | {} → {} ({:.2}x{}) | {:.1} ms | {} | {:.2} ms | {holds} |",
            o.variant,
            o.knee,
            o.surge_rate,
            v.goodput,
            v.goodput_ratio,
            v.shed,
            v.shed_p99_ms
                .map_or(String::new(), |ms| format!(" ({ms:.1} ms)")),
            v.errors - o.unfinished.min(v.errors),
            o.unfinished,
            v.unsent,
            mib(Some(v.rss_before)),
            mib(Some(v.rss_peak)),
            v.rss_ratio,
            o.peak_connections.map_or(String::new(), |n| {
                connections(n, v.rss_before, v.rss_peak, durable_row(raw, o))
            }),
            v.p99_before_ms,
            v.back_after_s
                .map_or("–".to_owned(), |s| format!("{s:.1} s")),
            o.send_lag_p99_us / 1000.0,
        );
    }
}

/// The connections the generator held at most and, on durable storage
/// (`growth`) when the RSS grew, the growth over them: what each held
/// connection cost, buffers and the request it carried, at most (the RSS
/// grows by other things too). In memory the surge's transfers stay, and
/// would read as the connections' cost.
fn connections(n: u64, before: u64, peak: u64, growth: bool) -> String {
    let grown = peak.saturating_sub(before);
    if !growth || n == 0 || grown == 0 {
        return format!(", {n} connections");
    }
    format!(
        ", {n} connections: +{:.1} KiB per connection",
        grown as f64 / 1024.0 / n as f64
    )
}

/// Whether `o` ran on durable storage (with the durable curve, or in a
/// run all durable).
fn durable_row(raw: &Raw, o: &crate::record::OverloadRecord) -> bool {
    o.storage.as_deref() == Some("durable") || raw.env.storage.starts_with("durable")
}

/// Whether the variants were overloaded with the durable curve, whose
/// knees they took, while the rest of the run was in memory.
fn with_durable_curve(raw: &Raw) -> bool {
    raw.overload
        .iter()
        .any(|o| o.storage.as_deref() == Some("durable"))
}

/// The variants whose curve never found its knee, named.
fn not_overloaded(raw: &Raw, md: &mut String) {
    let runs = if with_durable_curve(raw) {
        &raw.durable_runs
    } else {
        &raw.runs
    };
    let mut unknown: Vec<String> = Vec::new();
    for v in &raw.variants {
        let name = &v.name;
        if name.contains('@') || raw.overload.iter().any(|o| &o.variant == name) {
            continue;
        }
        if let Some((top, true)) = crate::analysis::sustained(runs, name) {
            unknown.push(format!("{name} (held {top:.0}/s)"));
        }
    }
    if !unknown.is_empty() {
        let _ = writeln!(
            md,
            "\nNot overloaded, their curve holding up to its top step (the knee is past it; on this \
             machine, past what the generator sends beside them): {}.",
            unknown.join(", ")
        );
    }
}
