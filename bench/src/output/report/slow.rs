//! The slow-clients part: the ordinary transfers alone, then beside slow
//! and abandoned clients, against issue 16's target.

use std::fmt::Write as _;

use crate::output::{mib, seconds};
use crate::record::{Raw, SLOW_P99_RATIO};

/// The section, when the run had slow clients.
pub(super) fn render(raw: &Raw, md: &mut String) {
    if raw.slow.is_empty() {
        return;
    }
    let p = &raw.profile;
    let _ = writeln!(md, "\n## Slow and abandoned clients\n");
    let _ = writeln!(
        md,
        "Each variant's transfers at {rate:.0}/s for {secs} s alone, then for {secs} s again beside \
         {n} connections of each kind of slow client, held the whole run (one the edge closes is \
         opened again): *trickled heads* (a request head sent a byte every 500 ms, never finished), \
         *silent* (opened, nothing sent), *trickled bodies* (a head announcing 1 000 bytes, then a byte \
         every 500 ms) and *WebSocket non-readers* ({ws} subscribers that never read, while 4 KB \
         messages are posted into their room 100 times a second, in both runs). The slow clients and the \
         poster run in the harness, on the same two cores. The edges give a head 10 s, a body the \
         request deadline (2 s: then 408), and a subscriber 5 s to take a message or 1 024 messages{bytes} of \
         backlog. *cut* counts the \
         connections the edge closed, with the longest any was held (a non-reader is read only at the \
         end, so its time is not known; it is cut once the kernel's socket buffers, up to a few MiB, are \
         full and a send has waited 5 s, or 1 024 messages{bytes} behind, which a short run may not reach: its \
         count is shown, not judged). The target (issue 16): the ordinary clients' p99 within \
         {SLOW_P99_RATIO}x of the same run alone, memory bounded, the slow ones cut off.\n\n\
         Where the variants' binaries are at hand (not under compose), a run between the two measures \
         the same transfers while the same slow clients, and a poster of their own, are at a *decoy*: an \
         in-memory monolith started for it, on the same cores. What that costs the ordinary clients \
         (*machine*: decoy over alone) is the share of the slow clients' harm that comes from sharing \
         two cores with the harness's slow clients and a server serving them; *edge* (beside over \
         decoy) is what they add by being at the measured edge itself. The target is judged as the \
         issue states it, beside over alone.\n",
        rate = p.transfer_rate,
        secs = seconds(p.slow_clients_s),
        n = p.slow_clients,
        ws = p.slow_clients.div_ceil(4),
        bytes = raw.env.session_bytes.map_or(String::new(), |b| format!(
            " (or {} of their text)",
            mib(Some(b))
        )),
    );
    let _ = writeln!(
        md,
        "| variant | p99 alone → beside | p99 with them at a decoy | errors beside | RSS alone → beside | trickled heads cut | silent cut | trickled bodies cut (408) | non-readers cut | holds |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|");
    for r in &raw.slow {
        let v = r.verdict();
        let cut = |kind: &str| {
            r.attacks
                .iter()
                .find(|a| a.kind == kind)
                .map_or("–".to_owned(), |a| {
                    let mut cell = format!("{} of {}", a.cut, a.opened);
                    if a.kind.starts_with("trickled bodies") {
                        let _ = write!(cell, " ({})", a.answered);
                    }
                    if a.longest_s > 0.0 {
                        let _ = write!(cell, ", ≤ {:.1} s", a.longest_s);
                    }
                    if a.refused > 0 {
                        let _ = write!(cell, "; {} refused", a.refused);
                    }
                    cell
                })
        };
        let mut missed = Vec::new();
        if v.p99_ratio > SLOW_P99_RATIO {
            missed.push(format!("p99 {:.1}x", v.p99_ratio));
        }
        if v.errors_with > 0 {
            missed.push("errors".to_owned());
        }
        if !v.all_cut {
            missed.push("an HTTP kind never cut".to_owned());
        }
        let decoy = match (&r.decoy, v.machine_ratio, v.edge_ratio) {
            (Some(d), Some(machine), Some(edge)) => format!(
                "{:.2} ms: machine {machine:.2}x, edge {edge:.2}x",
                d.p99_us / 1000.0
            ),
            _ => "–".to_owned(),
        };
        let holds = if missed.is_empty() {
            "yes".to_owned()
        } else {
            format!("**no**: {}", missed.join(", "))
        };
        let _ = writeln!(
            md,
            "| {} | {:.2} → {:.2} ms ({:.2}x) | {} | {} | {} → {} ({:.2}x) | {} | {} | {} | {} | {holds} |",
            r.variant,
            r.without.p99_us / 1000.0,
            r.with.p99_us / 1000.0,
            v.p99_ratio,
            decoy,
            v.errors_with,
            mib(Some(r.rss_without)),
            mib(Some(r.rss_with)),
            v.rss_ratio,
            cut("trickled heads"),
            cut("silent connections"),
            cut("trickled bodies"),
            cut("WebSocket non-readers"),
        );
    }
}
