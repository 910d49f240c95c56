//! `REPORT.md`, rendered from a run's records alone, so re-rendering a
//! stored `raw.json` gives the same report. Each section is its own
//! module; this one puts them in order.

pub mod breakdown;
mod chaos;
mod containers;
mod continuum;
mod cost;
mod cross_check;
mod durable;
mod fairness;
mod fanout;
mod glance;
mod model;
mod overload;
mod slow;
mod soak;
mod summary;
#[cfg(test)]
mod tests;

use std::fmt::Write as _;

use crate::output::mib;
use crate::record::{Audit, DISK_PROBE_EVERY_MS, DISK_STALL_MS, Raw, RunRecord, Scenario};

/// The variants compared: `a vs b`, or `a, b and c`.
fn title(raw: &Raw) -> String {
    let names: Vec<&str> = raw.variants.iter().map(|v| v.name.as_str()).collect();
    match names.as_slice() {
        [] => "microlith vs microservices".to_owned(),
        [one] => (*one).to_owned(),
        [a, b] => format!("{a} vs {b}"),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// `REPORT.md`, from the record alone.
pub fn render(raw: &Raw) -> String {
    let mut md = String::new();
    let env = &raw.env;
    let _ = writeln!(md, "# {}: {} run\n", title(raw), raw.profile.name);
    let _ = writeln!(
        md,
        "Run `{}` at commit `{}` on {} ({} cores, {:?} GiB), kernel {}, {}. Command: `{}`.\n",
        env.run_id,
        env.git_commit,
        env.cpu_model,
        env.cores,
        // `{:?}` as JSON writes it: `24.0`.
        env.memory_gib,
        env.kernel,
        env.rustc,
        env.command,
    );
    if let Some(elapsed) = &env.elapsed_s {
        let parts: Vec<String> = elapsed
            .phases()
            .iter()
            .map(|(k, v)| format!("{k} {v:.0} s"))
            .collect();
        let _ = writeln!(
            md,
            "The run took {:.1} min: {}.\n",
            elapsed.total / 60.0,
            parts.join(", ")
        );
    }
    let _ = writeln!(
        md,
        "Open-loop load at constant rates: each request is scheduled by the clock and its latency is measured from \
         its scheduled time, so a stall cannot hide (no coordinated omission). {} repeat(s) per scenario and variant, \
         interleaved; {} s warm-up excluded, {} s recorded. Numbers are medians over repeats with the min–max spread. \
         {} ran {}, one after the other within each repeat.\n",
        raw.profile.repeats,
        raw.profile.warmup_s,
        raw.profile.duration_s,
        if raw.variants.len() > 2 {
            "Every variant"
        } else {
            "Both variants"
        },
        {
            let place = if env.deploy == "compose" {
                "in containers under Docker Compose"
            } else {
                "as processes on this machine"
            };
            let storage = match env.storage.as_str() {
                "memory" => "in-memory storage (the fabric alone)".to_owned(),
                "durable" => "durable storage (redb, every commit synced to disk)".to_owned(),
                "durable (Docker volumes)" => {
                    "durable storage on Docker volumes (redb, every commit synced to disk)"
                        .to_owned()
                }
                other => format!("storage {other}"),
            };
            format!("{place} with {storage}")
        }
    );
    glance::render(raw, &mut md);
    summary::render(raw, &mut md);
    // Runs from before 2026-11-28 had other differences (no shared
    // payee cache, no coarse path): their ledger would be wrong.
    if raw.env.runtimes.is_some() && raw.variants.len() > 1 {
        fairness::render(raw, &mut md);
        md.push('\n');
    }
    fixed_rates(raw, &mut md);
    continuum::render(raw, &mut md);
    model::render(raw, &mut md);
    breakdown::render(raw, &mut md);
    let curve: Vec<&RunRecord> = raw.runs.iter().filter(|r| r.curve).collect();
    if !curve.is_empty() {
        let _ = writeln!(
            md,
            "\n## Throughput and latency (transfers; the floor is the echo endpoint)\n"
        );
        let _ = writeln!(
            md,
            "The rate is stepped up ({} s per step, one pass) until a variant saturates: its achieved \
                              rate falls below 95 % of the target, requests are left unfinished, more than 1 % of its answers are errors, or its median grows past five \
                              times its median at the first step (the knee: requests queue). Later steps are skipped for it. The knee rule says nothing of \
                              the tail, so the highest step whose p99 stayed under {} ms is given beside it.\n",
            raw.profile.curve_step_s, raw.profile.curve_p99_bound_ms
        );
        curve_table(&mut md, curve.iter().copied());
        let _ = writeln!(md, "\nHighest step sustained without saturating:\n");
        let mut names: Vec<&str> = Vec::new();
        for r in &curve {
            if !names.contains(&r.variant.as_str()) {
                names.push(&r.variant);
            }
        }
        for name in names {
            let best = raw.sustained(name).map_or(0.0, |(best, _)| best);
            let tail = raw.within_tail_bound(name).unwrap_or(0.0);
            let _ = writeln!(
                md,
                "- {name}: {best:.0}/s; the highest step with p99 under {:.0} ms: {tail:.0}/s",
                raw.profile.curve_p99_bound_ms
            );
        }
        let floor_best = raw.sustained("floor").map_or(0.0, |(best, _)| best);
        let floor_peak = raw.peak("floor");
        let _ = writeln!(
            md,
            "\nThe generator itself (the floor, stepped on alone past the curve{}) sustained {floor_best:.0}/s open loop against the echo endpoint with its latency intact, and answered up to {floor_peak:.0}/s when overdriven{}.",
            match curve
                .iter()
                .filter(|r| r.variant == "floor" && r.rate == floor_best)
                .find_map(|r| r.in_flight_limit)
            {
                Some(n) => format!(", at most {n} requests in flight at that step"),
                None => String::new(),
            },
            match &raw.wrk {
                Some(w) => format!(
                    "; in the same run `{}` (closed loop, the usual yardstick, its latency all queueing at that rate) reached {:.0} requests/s{}: our generator's sustained rate is {:.0} % of it, its peak {:.0} %",
                    w.command,
                    w.requests_per_s,
                    w.p50_us
                        .map_or(String::new(), |p| format!(" at {p:.0} µs p50")),
                    100.0 * floor_best / w.requests_per_s.max(1.0),
                    100.0 * floor_peak / w.requests_per_s.max(1.0)
                ),
                None => " (wrk was not installed, so no closed-loop yardstick was run)".to_owned(),
            }
        );
        if let Some(reach) = raw.generator_reach().filter(|&r| r > floor_best) {
            let _ = writeln!(
                md,
                "Beside a variant, the generator kept {reach:.0}/s in this same curve: the floor's own higher step was disturbed (the machine is shared), so the floor's knee is not the generator's limit here."
            );
        }
        // Where the machine went at the generator's highest steps.
        let cores = raw.env.cores as f64;
        for r in curve
            .iter()
            .filter(|r| r.variant == "floor" && r.rate >= floor_best)
        {
            if let Some(c) = r.harness_cpu {
                let share = (c.generator_us + c.echo_us) * r.rate / 1e6;
                let _ = writeln!(
                    md,
                    "At {:.0}/s{} the generator spent {:.1} µs of CPU per request and the echo server {:.1} µs: {:.2} of the machine's {cores:.0} cores busy with the harness alone.",
                    r.rate,
                    if r.saturated { " (saturated)" } else { "" },
                    c.generator_us,
                    c.echo_us,
                    share,
                );
            }
        }
    }
    durable::render(raw, &mut md);
    soak::render(raw, &mut md);
    overload::render(raw, &mut md);
    slow::render(raw, &mut md);
    chaos::render(raw, &mut md);
    if !raw.fanout.is_empty() {
        fanout::render(raw, &mut md);
    }
    if !raw.faults.is_empty() {
        let _ = writeln!(md, "\n## Failure recovery under load\n");
        let _ = writeln!(
            md,
            "A constant load (transfers, or chat posts) with durable storage in both variants; the fault comes \
             at 30 % of the run, each against a fresh instance. *First failure*: from the fault to the first failed answer a \
             client saw. Latency runs from each request's scheduled send, so a request held up by the fault \
             counts all of its wait. *Back*: from the fault to when the part it hit answered again (a restarted \
             process its health check, a paused one its SIGCONT), and how long failures went on after that; – where \
             not measured (a panic's actors restart inside the process). *Impact*: from the fault to the end of the hurt stretch it caused: the last 100 ms bucket \
             with a failed answer, no answer at all, or a worst latency over ten times the pre-fault norm, before a \
             full healthy second. Afterwards the audit must show money conserved and nothing \
             pending, every acknowledged transfer must still have its outcome and every acknowledged post must be \
             in its room at its seq, with no gaps; otherwise the run fails.\n"
        );
        let _ = writeln!(
            md,
            "| kind | variant | fault | load/s | first failure | back (then failing) | impact | failed / answered | worst latency, 1 s before / after the fault | checked after |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|");
        for f in &raw.faults {
            let at = (f.injected_at_s * 1000.0 / f.bucket_ms.max(1) as f64) as usize;
            let window = (1000 / f.bucket_ms.max(1)) as usize;
            let worst = |from: usize, to: usize| {
                f.timeline
                    .iter()
                    .skip(from)
                    .take(to.saturating_sub(from))
                    .map(|b| b.max_latency_ns)
                    .max()
                    .unwrap_or(0) as f64
                    / 1e6
            };
            let checked = match &f.audit {
                Some(audit) if audit.pending_transfers == 0 => format!(
                    "money conserved ({}), 0 pending, {} acknowledged found",
                    audit.total_balance,
                    audit
                        .acknowledged_checked
                        .map_or("–".to_owned(), |n| n.to_string())
                ),
                audit => audit_text(audit.as_ref()),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.0} {} | {} | {} | {:.1} s | {} / {}{} | {:.1} / {:.1} ms | {checked} |",
                if f.kind.is_empty() { "crash" } else { &f.kind },
                f.variant,
                f.fault,
                f.rate,
                if f.scenario == Scenario::Post {
                    "posts"
                } else {
                    "transfers"
                },
                f.first_failure_s
                    .map_or("none".to_owned(), |s| format!("{s:.1} s")),
                match (f.back_s, f.failing_after_back_s()) {
                    (Some(back), Some(after)) => format!("{back:.2} s (+{after:.2} s)"),
                    _ => "–".to_owned(),
                },
                f.recovery_s(),
                f.failed,
                f.failed + f.ok,
                match f.failure_kinds() {
                    k if k.is_empty() => String::new(),
                    k => format!(" ({k})"),
                },
                worst(at.saturating_sub(window), at),
                worst(at, f.timeline.len()),
            );
        }
        if raw.faults.iter().any(|f| f.kind == "dependency-down")
            && !raw
                .faults
                .iter()
                .any(|f| f.kind == "dependency-down" && f.variant == "microlith")
        {
            let _ = writeln!(
                md,
                "\n`dependency-down` has no microlith row: its ledger read model is in the same process, so there is no dependency to lose."
            );
        }
    }
    if let Some(cost) = &raw.cost {
        cost::render(raw, &mut md, cost);
    }
    if let Some(cross_check) = &raw.cross_check {
        cross_check::render(cross_check, &mut md);
    }
    let charts = crate::output::charts::names(raw);
    if !charts.is_empty() {
        let _ = writeln!(md, "\n## Charts\n");
        for name in &charts {
            let _ = writeln!(
                md,
                "![{name}](charts/{name}.png) ([SVG](charts/{name}.svg))\n"
            );
        }
    }
    let _ = writeln!(md, "\n## Operations\n");
    let _ = writeln!(
        md,
        "| variant | processes | start to ready | RSS idle | RSS after load | CPU per transfer | audit after the runs |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    for v in &raw.variants {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            v.name,
            raw.own_processes(v),
            v.start_to_ready_ms
                .map_or("–".to_owned(), |ms| format!("{ms:.0} ms")),
            mib(v.rss_idle_bytes),
            mib(v.rss_loaded_bytes),
            raw.cpu_per_request(&v.name, Scenario::Transfer)
                .or(v.cpu_ms_per_request.map(|ms| ms * 1000.0))
                .map_or("–".to_owned(), |us| format!("{us:.0} µs")),
            audit_text(v.audit.as_ref()),
        );
    }
    containers::render(raw, &mut md);
    let _ = writeln!(
        md,
        "\n## Method and threats to validity\n\n\
         - The floor row is the same load generator against a trivial `GET /echo` served by the harness itself: \
         what the client, loopback and an HTTP server cost with no system behind them. Compare each variant with it.\n\
         - One 2-core VM runs the load generator and the system under test: they compete for the same cores, and \
         the machine is shared with other tenants. Repeats are interleaved and reported with their spread; ratios are \
         taken within one run.\n\
         - `errors` counts 429, 503, 202 and other failures; a 409 (insufficient funds, a conflict) is a correct \
         answer of the system and is counted apart (`refused_409` in `raw.json`).\n\
         - Latency is measured from the scheduled send time; `send lag` (scheduled → sent) in `raw.json` is the \
         generator's own delay. A run whose achieved rate fell below 95 % of the target, that left requests \
         unfinished, or more than 1 % of whose answers were errors, is flagged saturated.\n\
         - At low rates the cores idle between requests and every hop pays the wake-up of an idle core \
         (tens to hundreds of microseconds on this VM): latencies there are dominated by it, for the floor too, \
         and fall as the rate rises. Read the fixed-rate table against the floor row and the curve.\n\
         - {}\n{}\
         - Raw data: `raw.json` (every run, with its HdrHistogram), `runs.csv`, `env.json`, and `hdr/*.hlog` \
         (HdrHistogram interval logs, one per variant and scenario). `bench render <dir>` \
         re-renders this report from `raw.json`.\n",
        match (raw.env.deploy.as_str(), raw.variants.len() > 2) {
            ("local", _) if raw.env.storage == "durable" =>
                "Storage is durable for every variant (redb files, every commit synced to disk before it is \
             answered): this measures the fabric and the disk together.",
            _ if raw.env.storage.starts_with("as deployed") =>
                "Storage is as the deployments measured were set up (not started by the harness).",
            ("compose", false) =>
                "Both variants ran in containers under Docker Compose (`microlith/compose.yml`, `microservices/compose.yml`), \
             with durable storage on Docker volumes and the same limits per container; the load came from the host over the \
             published loopback port.",
            ("compose", true) =>
                "Every variant ran in containers under Docker Compose (`monolith/compose.yml`, `microlith/compose.yml`, \
             `microservices/compose.yml`), with durable storage on Docker volumes and the same limits per container; the load came \
             from the host over the published loopback port.",
            (_, false) =>
                "Storage is in memory for both variants: this measures the fabric, not the disk.",
            (_, true) =>
                "Storage is in memory for every variant: this measures the fabric, not the disk.",
        },
        proxy_share(raw)
    );
    md
}

/// The fixed-rate latency table and the ratios between the variants;
/// nothing for a run of other parts only (`bench run overload`, say).
fn fixed_rates(raw: &Raw, md: &mut String) {
    if !raw.has_fixed_rate_runs() {
        return;
    }
    let variants: Vec<String> = raw.variants.iter().map(|v| v.name.clone()).collect();
    let _ = writeln!(md, "## Latency at fixed rates\n");
    let _ = writeln!(
        md,
        "CPU/req is the CPU of every process of the variant in the recorded window (warm-up excluded), per recorded answer.\n"
    );
    let _ = writeln!(
        md,
        "| scenario | rate/s | variant | p50 µs | p99 µs | p99.9 µs | max µs | achieved/s | CPU/req µs | errors | saturated |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|");
    let mut ratios = Vec::new();
    for (scenario, rate) in raw
        .profile
        .scenarios()
        .into_iter()
        .chain([(Scenario::Floor, raw.floor_rate())])
    {
        let names: Vec<String> = if scenario == Scenario::Floor {
            vec!["floor".into()]
        } else {
            variants.clone()
        };
        let mut p50s = Vec::new();
        for name in &names {
            let runs = raw.runs_of(name, scenario);
            let (Some(p50), Some(p99), Some(p999), Some(max), Some(achieved)) = (
                Raw::spread(&runs, |r| r.p50_us),
                Raw::spread(&runs, |r| r.p99_us),
                Raw::spread(&runs, |r| r.p999_us),
                Raw::spread(&runs, |r| r.max_us),
                Raw::spread(&runs, |r| r.achieved_rate),
            ) else {
                continue;
            };
            let errors: u64 = runs.iter().map(|r| r.errors()).sum();
            let saturated = runs.iter().filter(|r| r.saturated).count();
            let _ = writeln!(
                md,
                "| {} | {rate:.0} | {name} | {:.0} ({:.0}–{:.0}) | {:.0} ({:.0}–{:.0}) | {:.0} | {:.0} | {:.0} | {} | {errors} | {saturated}/{} |",
                scenario.name(),
                p50.0,
                p50.1,
                p50.2,
                p99.0,
                p99.1,
                p99.2,
                p999.0,
                max.0,
                achieved.0,
                raw.cpu_per_request(name, scenario)
                    .map_or("–".to_owned(), |c| format!("{c:.0}")),
                runs.len()
            );
            p50s.push((name.clone(), p50.0, p99.0));
        }
        // Every variant against the run's first (the simplest).
        if let [(a, a50, a99), rest @ ..] = p50s.as_slice() {
            for (b, b50, b99) in rest {
                ratios.push((scenario, b.clone(), a.clone(), b50 / a50, b99 / a99));
            }
        }
    }
    if !ratios.is_empty() {
        let _ = writeln!(md, "\n## Ratios (same run)\n");
        if raw.variants.len() > 2 {
            let _ = writeln!(
                md,
                "Each variant against `{}`, the first of the run, on every scenario it ran.\n",
                variants[0]
            );
        }
        let _ = writeln!(md, "| scenario | ratio | p50 | p99 |");
        let _ = writeln!(md, "|---|---|---|---|");
        for (scenario, b, a, r50, r99) in &ratios {
            let _ = writeln!(
                md,
                "| {} | {b} / {a} | {r50:.2}x | {r99:.2}x |",
                scenario.name()
            );
        }
    }
}

/// Under compose, the published port's proxy's share of each variant's
/// CPU per request, at the highest curve step it sustained, as a method
/// bullet (empty when no run metered the proxy).
fn proxy_share(raw: &Raw) -> String {
    let proxy = crate::record::PUBLISHED_PORT_PROXY;
    let shares: Vec<String> = raw
        .variants
        .iter()
        .filter_map(|v| {
            let best = raw.sustained(&v.name)?.0;
            let step = raw
                .runs
                .iter()
                .find(|r| r.curve && r.variant == v.name && r.rate == best && !r.saturated)?;
            let (_, us) = step.cpu_us_by_process.iter().find(|(n, _)| n == proxy)?;
            let total = step.cpu_us_per_request?;
            Some(format!(
                "{} {us:.0} of {total:.0} µs at {best:.0}/s",
                v.name
            ))
        })
        .collect();
    if shares.is_empty() {
        return String::new();
    }
    format!(
        "- CPU per request under compose counts every container's processes and the published port's userland \
         proxy (`{proxy}`, a process on the host outside the containers that carries each connection from \
         loopback into the container: one per variant). Its share at each variant's highest sustained step: {}.\n",
        shares.join("; ")
    )
}

/// An audit as the reports show it: compact JSON, `null` when none was
/// taken.
fn audit_text(audit: Option<&Audit>) -> String {
    audit.map_or("null".to_owned(), Audit::to_string)
}

/// A table of curve steps: rate, variant, what it achieved, errors,
/// whether it saturated; and, for steps the disk probe watched, its
/// sync's p99 and slowest (with a note on how to read them).
fn curve_table<'a>(md: &mut String, steps: impl IntoIterator<Item = &'a RunRecord>) {
    let steps: Vec<&RunRecord> = steps.into_iter().collect();
    let probed = steps.iter().any(|r| r.disk.is_some());
    let _ = writeln!(
        md,
        "| target/s | variant | achieved/s | p50 µs | p99 µs | CPU/req µs | errors | {}saturated |",
        if probed {
            "disk sync p99 / max ms | "
        } else {
            ""
        }
    );
    let _ = writeln!(
        md,
        "|---|---|---|---|---|---|---|{}---|",
        if probed { "---|" } else { "" }
    );
    for r in &steps {
        let disk = match (&r.disk, probed) {
            (_, false) => String::new(),
            (None, true) => "– | ".to_owned(),
            (Some(d), true) => format!(
                "{:.1} / {} | ",
                d.p99_us / 1000.0,
                if d.stalled() {
                    format!("**{:.0}**", d.max_us / 1000.0)
                } else {
                    format!("{:.1}", d.max_us / 1000.0)
                }
            ),
        };
        let _ = writeln!(
            md,
            "| {:.0} | {} | {:.0} | {:.0} | {:.0} | {} | {} | {disk}{} |",
            r.rate,
            r.variant,
            r.achieved_rate,
            r.p50_us,
            r.p99_us,
            r.cpu_us_per_request
                .map_or("–".to_owned(), |c| format!("{c:.0}")),
            r.errors(),
            match (r.saturated, r.rerun) {
                (true, true) => "yes, while the disk stalled: run again",
                (true, false) => "yes",
                (false, _) => "no",
            }
        );
    }
    if probed {
        let _ = writeln!(
            md,
            "\n*disk sync*: beside each durable step a probe wrote 4 KiB to a file of its own on the \
             stores' disk and synced it every {DISK_PROBE_EVERY_MS} ms, sharing nothing with the \
             system but the disk. A sync over {DISK_STALL_MS:.0} ms (in bold; the edges' latency \
             target, past which they refuse rather than queue) is the disk stalling under every \
             process alike. A step that saturated while it did was run once more, and the second \
             reading stands in the knee and the chart."
        );
    }
}
