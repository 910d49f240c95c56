//! The soak (`--full`): each variant alone, durable, at half its durable
//! knee for a long while; its memory, store and latency from the first
//! tenth to the last, against issue 18's targets.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::output::{mib, micros, seconds as trim};
use crate::record::{Raw, SoakRecord, SoakSample};

/// The section, when the run soaked anything.
pub(super) fn render(raw: &Raw, md: &mut String) {
    if raw.soak.is_empty() {
        return;
    }
    let _ = writeln!(md, "\n## Soak (durable, half the durable knee)\n");
    let _ = writeln!(
        md,
        "Each variant alone, started afresh with `--storage durable`, posting transfers at half \
         the highest step it sustained on the durable curve for {} s after {}a warm-up of {} s, in \
         back-to-back windows of {} s (open loop; each window's latency from its requests' scheduled times); its \
         processes' resident memory and its store's files are read after each window, and the \
         audit runs at the end. *Early* is the first tenth of the windows, *late* the last tenth. \
         It holds when the RSS at the end is within 10 % of the RSS after the first tenth and the \
         late p99 (the median of the late windows' p99) is within 1.5x of the early one.\n",
        trim(raw.profile.soak_s),
        if raw.soak.iter().any(|s| s.fill.is_some()) {
            "its store is filled past its page caches (below) and "
        } else {
            ""
        },
        trim(raw.profile.warmup_s.max(raw.profile.soak_sample_s)),
        trim(raw.profile.soak_sample_s)
    );
    let _ = writeln!(
        md,
        "| variant | transfers/s | RSS early | RSS at end | store at end | p99 early | p99 late | errors | holds |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
    for soak in &raw.soak {
        let Some(v) = soak.verdict() else {
            continue;
        };
        let mib = |b: u64| mib(Some(b));
        let store = soak.samples.last().map_or(0, |s| s.store_bytes);
        let errors: u64 = soak.samples.iter().map(|s| s.errors).sum();
        let holds = match (v.rss_flat, v.p99_flat) {
            (true, true) => "yes".to_owned(),
            (rss, p99) => {
                let mut grew = Vec::new();
                if !rss {
                    grew.push(format!(
                        "RSS grew {:.0} %",
                        100.0 * (v.rss_late as f64 / v.rss_early.max(1) as f64 - 1.0)
                    ));
                }
                if !p99 {
                    grew.push(format!("p99 {:.1}x", v.p99_late / v.p99_early.max(1.0)));
                }
                format!("**no**: {}", grew.join(", "))
            }
        };
        let _ = writeln!(
            md,
            "| {} | {:.0} | {} | {} | {} | {} | {} | {errors} | {holds} |",
            soak.variant,
            soak.rate,
            mib(v.rss_early),
            mib(v.rss_late),
            mib(store),
            micros(v.p99_early),
            micros(v.p99_late),
        );
    }
    let _ = writeln!(md, "\n{}", fill_line(&raw.soak));
    for soak in &raw.soak {
        if let Some(line) = errors_line(soak) {
            let _ = writeln!(md, "\n{line}");
        }
    }
}

/// How each store was filled past its page caches before the first window
/// (each database caches up to `store::kv::CACHE_BYTES` of its pages: begun on an empty
/// store at a low rate, the caches fill during the soak, and the RSS
/// grows by up to that bound before it stays flat).
fn fill_line(soaks: &[SoakRecord]) -> String {
    let filled: Vec<String> = soaks
        .iter()
        .filter_map(|soak| {
            let fill = soak.fill.as_ref()?;
            let how = if fill.reached {
                format!(
                    "filled in {} s (store {})",
                    trim(fill.seconds),
                    mib(Some(fill.store_bytes))
                )
            } else {
                format!(
                    "**not reached** within {} s (the store held {}: its early RSS may still \
                     include caches filling)",
                    trim(fill.seconds),
                    mib(Some(fill.store_bytes))
                )
            };
            Some(format!(
                "the {}, {} of caches, at {:.0}/s: {how}",
                soak.variant,
                mib(Some(fill.cache_bytes)),
                fill.rate
            ))
        })
        .collect();
    let bound = format!(
        "Each database caches up to {} of its pages; begun on an empty store, the \
         caches fill during the first minutes and the RSS grows by up to that bound, \
         then stays flat.",
        mib(Some(store::kv::CACHE_BYTES as u64))
    );
    if filled.is_empty() {
        format!(
            "{bound} These soaks began on an empty store (recorded before the soak filled its \
             store first), so their early RSS includes caches still filling."
        )
    } else {
        format!(
            "{bound} So before its first window each store is filled past its databases' \
             caches, at the variant's durable knee, for at most half the soak's length: {}.",
            filled.join("; ")
        )
    }
}

/// Where a soak's errors were and of which kind: how many windows had any,
/// the worst window, and the kinds over the run (when recorded).
fn errors_line(soak: &SoakRecord) -> Option<String> {
    let with: Vec<&SoakSample> = soak.samples.iter().filter(|s| s.errors > 0).collect();
    let worst = with.iter().max_by_key(|s| s.errors)?;
    let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
    for s in &with {
        for (kind, n) in &s.error_kinds {
            *kinds.entry(kind.as_str()).or_default() += n;
        }
    }
    let kinds = if kinds.is_empty() {
        "kinds not recorded".to_owned()
    } else {
        kinds
            .iter()
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Some(format!(
        "The {}'s errors: {} of {} windows had any ({kinds}); the worst, ending at {} s, \
         had {} with a p99 of {}.",
        soak.variant,
        with.len(),
        soak.samples.len(),
        trim(worst.t_s),
        worst.errors,
        micros(worst.p99_us)
    ))
}
