//! The overload part: each variant at twice its knee between stretches
//! at half of it, against issue 16's targets.

use std::fmt::Write as _;

use crate::output::{mib, seconds as trim};
use crate::record::Raw;

/// The section, when the run overloaded anything.
pub(super) fn render(raw: &Raw, md: &mut String) {
    if raw.overload.is_empty() {
        return;
    }
    let _ = writeln!(md, "\n## Overload (twice the knee)\n");
    let _ = writeln!(
        md,
        "Each variant, as in the curve above, posting transfers at half its knee (the highest step it \
         sustained) for {settle} s, then at twice its knee for {surge} s, then at half again for {settle} s: \
         one open-loop schedule, no pause between the stretches. Every answer is kept and read per 100 ms \
         bucket. *Goodput*: successful answers (2xx, or a correct 409) per second during the surge, and \
         over the knee. *Refusals*: answers shed for load (429, 503) during the surge, with the 99th \
         percentile of their time from sending (the system's refusal, not the generator's queue; an upper \
         bound read from each bucket's slowest). *RSS*: the peak of the variant's processes during the \
         surge over their RSS just before it (sampled every 250 ms). *Back after*: from the end of the \
         surge to the first of a full second of buckets with nothing refused or failed and a p99 (from the \
         scheduled time) within twice the p99 of the two seconds before the surge. *Send lag*: the \
         generator's own delay (p99); past a millisecond the generator, which shares the machine, could \
         not keep the schedule either. Up to 6 144 requests are in flight (more than any edge admits before \
         answering 429); a request the generator could not send within 5 s of its schedule is given up, as \
         a user's client would, and counted *not sent*: the generator's failing, not the system's (a row with \
         any is marked so). The targets (issue 16): goodput at least 0.8 of the knee, refusals' \
         p99 at most 10 ms, RSS at most 1.5x, back within 1 s. The audit after the load must pass.\n",
        settle = trim(raw.profile.overload_settle_s),
        surge = trim(raw.profile.overload_s),
    );
    let _ = writeln!(
        md,
        "| variant | knee/s | surge/s | goodput/s (of knee) | refused (p99) | errors, unanswered, not sent | RSS before → peak | p99 before | back after | send lag p99 | holds |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|");
    for o in &raw.overload {
        let v = o.verdict();
        let mut missed = Vec::new();
        if v.goodput_ratio < 0.8 {
            missed.push(format!("goodput {:.2}", v.goodput_ratio));
        }
        if v.shed_p99_ms.is_some_and(|ms| ms > 10.0) {
            missed.push("slow refusals".to_owned());
        }
        if v.rss_ratio > 1.5 {
            missed.push(format!("RSS {:.1}x", v.rss_ratio));
        }
        match v.back_after_s {
            Some(s) if s <= 1.0 => {}
            Some(s) => missed.push(format!("back after {s:.1} s")),
            None => missed.push("not back in the run".to_owned()),
        }
        if v.errors > 0 {
            missed.push("errors".to_owned());
        }
        let mut holds = if missed.is_empty() {
            "yes".to_owned()
        } else {
            format!("**no**: {}", missed.join(", "))
        };
        if v.unsent > 0 || o.send_lag_p99_us > 1000.0 {
            holds.push_str(" (the generator fell behind: it measured itself too)");
        }
        let _ = writeln!(
            md,
            "| {} | {:.0} | {:.0} | {:.0} ({:.2}) | {}{} | {}, {}, {} | {} → {} ({:.2}x) | {:.1} ms | {} | {:.2} ms | {holds} |",
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
            v.p99_before_ms,
            v.back_after_s
                .map_or("–".to_owned(), |s| format!("{s:.1} s")),
            o.send_lag_p99_us / 1000.0,
        );
    }
}
