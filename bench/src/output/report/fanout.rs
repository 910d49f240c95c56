//! The chat fan-out section.

use std::fmt::Write as _;

use crate::record::{FanoutRecord, Raw};

/// The fan-out runs: delivery latency and completeness.
pub(super) fn render(raw: &Raw, md: &mut String) {
    let f0 = &raw.fanout[0];
    let _ = writeln!(md, "\n## Chat fan-out\n");
    let _ = writeln!(
        md,
        "{} WebSocket subscribers in one room; posts over HTTP at {:.0}/s (open loop). Delivery latency runs from a \
         post's scheduled send time to the frame read by a subscriber, over every subscriber and message of the \
         recorded part. Every subscriber must end holding the room's whole history, in order, once: *lost* counts \
         messages some subscriber never got (after resuming from a slow-reader disconnect, if any). A subscription \
         the edge refused as overloaded is sent again after a pause, as API.md asks of clients: the refusals \
         are counted beside the reconnects.\n",
        f0.subscribers, f0.rate
    );
    let _ = writeln!(
        md,
        "| variant | deliveries/s | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | posts failed | lost / dup / reordered | reconnects |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|");
    let mut names: Vec<&str> = Vec::new();
    for f in &raw.fanout {
        if !names.contains(&f.variant.as_str()) {
            names.push(&f.variant);
        }
    }
    let span = raw.profile.duration_s + raw.profile.warmup_s;
    for name in names {
        let runs: Vec<&FanoutRecord> = raw.fanout.iter().filter(|f| f.variant == name).collect();
        let med = |field: fn(&FanoutRecord) -> f64| {
            let mut v: Vec<f64> = runs.iter().map(|f| field(f)).collect();
            v.sort_by(f64::total_cmp);
            let (lo, hi) = (
                v.first().copied().unwrap_or(0.0),
                v.last().copied().unwrap_or(0.0),
            );
            (v.get(v.len() / 2).copied().unwrap_or(0.0), lo, hi)
        };
        let (p50, lo50, hi50) = med(|f| f.p50_us);
        let (p99, lo99, hi99) = med(|f| f.p99_us);
        let sum = |field: fn(&FanoutRecord) -> u64| runs.iter().map(|f| field(f)).sum::<u64>();
        let _ = writeln!(
            md,
            "| {name} | {:.0} | {p50:.0} ({lo50:.0}–{hi50:.0}) | {:.0} | {p99:.0} ({lo99:.0}–{hi99:.0}) | {:.0} | {:.0} | {} | {} / {} / {} | {} |",
            med(|f| f.deliveries as f64).0 / span.max(1e-9),
            med(|f| f.p90_us).0,
            med(|f| f.p999_us).0,
            med(|f| f.max_us).0,
            sum(|f| f.posts_failed),
            sum(|f| f.lost),
            sum(|f| f.duplicates),
            sum(|f| f.out_of_order),
            {
                let (reconnects, refused) = (sum(|f| f.reconnects), sum(|f| f.refused_upgrades));
                if refused > 0 {
                    format!("{reconnects} ({refused} subscriptions refused, then made)")
                } else {
                    reconnects.to_string()
                }
            },
        );
    }
    // A history that could not be read at once after a run: said, with
    // how long it answered 503.
    for f in raw.fanout.iter().filter(|f| f.history_wait_s.is_some()) {
        let _ = writeln!(
            md,
            "\n{} (repeat {}): right after the posts the room's history answered 503 for {:.1} s before it could be read (load shed while the last deliveries went out).",
            f.variant,
            f.repeat + 1,
            f.history_wait_s.unwrap_or(0.0)
        );
    }
}
