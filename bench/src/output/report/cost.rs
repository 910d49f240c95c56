//! The cost table: code by purpose, builds and binaries, and what
//! tracing, mTLS and service tokens cost under load.

use std::fmt::Write as _;

use crate::output::mib;

use crate::record::{Cost, FeatureCost, Raw, Scenario};

/// The cost section.
pub(super) fn render(raw: &Raw, md: &mut String, cost: &Cost) {
    let lines = |variant: &str, tests: bool| -> u64 {
        cost.code
            .iter()
            .filter(|a| a.variant == variant && a.area.starts_with("tests") == tests)
            .map(|a| a.code)
            .sum()
    };
    let area = |prefix: &str| {
        cost.code
            .iter()
            .filter(|a| a.area.starts_with(prefix))
            .map(|a| a.code)
            .sum::<u64>()
    };
    let feature = |variant: &str, config: &str| {
        cost.features
            .iter()
            .find(|f| f.variant == variant && f.config == config)
    };
    let delta = |config: &str| -> String {
        match (
            feature("microservices", "baseline"),
            feature("microservices", config),
        ) {
            (Some(base), Some(on)) => {
                let cpu = match (base.cpu_us_per_request, on.cpu_us_per_request) {
                    (Some(b), Some(o)) => {
                        format!("CPU {:+.0} µs/request ({:.2}x)", o - b, o / b.max(1e-9))
                    }
                    _ => "CPU –".to_owned(),
                };
                format!(
                    "{cpu}, p50 {:+.0} µs ({:.2}x)",
                    on.p50_us - base.p50_us,
                    on.p50_us / base.p50_us.max(1e-9)
                )
            }
            _ => "not measured".to_owned(),
        }
    };
    // Under compose the containers' faults stand in for the processes'.
    let fault = |variant: &str, kind: &str| {
        let run = [kind.to_owned(), format!("container-{kind}")]
            .into_iter()
            .find_map(|k| {
                raw.faults
                    .iter()
                    .find(|f| f.variant == variant && f.kind == k)
            });
        run.map_or(format!("{kind}: not run"), |f| {
            format!(
                "{}: first failure {}, impact {:.1} s, {} of {} failed",
                f.kind,
                f.first_failure_s
                    .map_or("none".to_owned(), |s| format!("{s:.1} s")),
                f.recovery_s(),
                f.failed,
                f.failed + f.ok
            )
        })
    };
    let variant = |name: &str| raw.variants.iter().find(|v| v.name == name);
    let ops = |name: &str| {
        variant(name).map_or("–".to_owned(), |v| {
            format!(
                "{} process(es), {} port(s), RSS {} idle / {} loaded, CPU {} per 1k transfers",
                raw.own_processes(v),
                cost.ports
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or("–".to_owned(), |(_, p)| p.to_string()),
                mib(v.rss_idle_bytes),
                mib(v.rss_loaded_bytes),
                raw.cpu_per_request(name, Scenario::Transfer)
                    .or(v.cpu_ms_per_request.map(|ms| ms * 1000.0))
                    .map_or("–".to_owned(), |us| format!("{us:.0} ms")),
            )
        })
    };
    let cpu_of = |name: &str| {
        feature(name, "baseline")
            .and_then(|f| f.cpu_us_per_request)
            .map_or("–".to_owned(), |c| format!("{c:.0} µs"))
    };
    let _ = writeln!(md, "\n## The cost table\n");
    let _ = writeln!(
        md,
        "The usual Yes/No/Maybe table of extra work, with what this project needed and what it cost, measured in \
         this run. Lines are lines of code (no comments, doc comments or blanks; unit tests inside a source file count with it) counted with {} in this checkout; CPU is of \
         every process of the variant, per answered request, under {:.0} transfers/s.\n",
        cost.line_counter.as_deref().unwrap_or("tokei"),
        raw.profile.cost_rate
    );
    // (what, monolith, microlith, microservices); the monolith's column
    // only in runs that had it.
    let mut rows: Vec<(&str, String, String, String)> = Vec::new();
    rows.push((
        "communication fabric",
        format!(
            "{} lines (wiring only: the shared components called directly); CPU {} per transfer",
            lines("monolith", false),
            cpu_of("monolith"),
        ),
        format!(
            "{} lines (actor runtime and supervision {}, components as actors {}, wiring {}); CPU {} per transfer",
            lines("microlith", false),
            area("actor runtime"),
            area("components as actors"),
            area("wiring"),
            cpu_of("microlith"),
        ),
        format!(
            "{} lines (proto {}, codecs {}, servers {}, clients {}, resilience {}, tracing and metrics {}, tokens and CA {}, read model {}, launcher {}); CPU {} per transfer",
            lines("microservices", false),
            area("proto"),
            area("codecs"),
            area("gRPC servers"),
            area("gRPC clients"),
            area("resilience"),
            area("tracing and metrics"),
            area("service tokens"),
            area("HTTP/JSON read model"),
            area("processes, launcher"),
            cpu_of("microservices"),
        ),
    ));
    rows.push((
        "internal API versioning",
        "none: one compiled program".to_owned(),
        "none: one compiled program".to_owned(),
        format!(
            "{} versioned proto package(s) ({}), {} lines; no compatibility check runs yet",
            cost.proto_packages.len(),
            cost.proto_packages.join(", "),
            area("proto"),
        ),
    ));
    rows.push((
        "contract tests / tests of the split",
        format!(
            "{} lines of variant tests (a panic, kill -9 under load)",
            lines("monolith", true)
        ),
        format!(
            "{} lines of variant tests (supervision, crashes)",
            lines("microlith", true)
        ),
        format!(
            "{} lines of variant tests (per-service gRPC contracts, failures, security); the shared black-box suite ({} lines) runs against both",
            lines("microservices", true),
            area("black-box contract suite"),
        ),
    ));
    let spans = feature("microservices", "spans logged").and_then(|f| f.spans_per_request);
    rows.push((
        "distributed tracing",
        "none needed: one process".to_owned(),
        "none needed: one process".to_owned(),
        format!(
            "traceparent on every hop; {} span records per transfer when logged; logging them: {}",
            spans.map_or("–".to_owned(), |s| format!("{s:.1}")),
            delta("spans logged"),
        ),
    ));
    rows.push((
        "private CA / mTLS",
        "none".to_owned(),
        "none".to_owned(),
        format!(
            "{} CA and certificate files generated per run; mTLS on: {}",
            cost.pki_files.map_or("–".to_owned(), |n| n.to_string()),
            delta("mtls"),
        ),
    ));
    rows.push((
        "service-to-service auth",
        "none".to_owned(),
        "none".to_owned(),
        format!(
            "a signed token checked on every internal call; tokens on: {}; both: {}",
            delta("tokens"),
            delta("mtls+tokens"),
        ),
    ));
    let deploy = |name: &str| {
        let files = cost
            .code
            .iter()
            .find(|a| a.variant == name && a.area.starts_with("deployment"))
            .map_or("–".to_owned(), |a| {
                format!("{} files, {} lines (compose, k8s)", a.files, a.code)
            });
        let images = raw.containers.as_ref().map_or(
            "images sized under `--deploy compose`".to_owned(),
            |c| {
                let mine: Vec<_> = c
                    .images
                    .images
                    .iter()
                    .filter(|i| crate::target::images::variant_of(&i.name) == name)
                    .collect();
                format!(
                    "{} image(s), {:.1} MB",
                    mine.len(),
                    mine.iter().map(|i| i.bytes).sum::<u64>() as f64 / 1e6
                )
            },
        );
        format!("{files}; {images}")
    };
    let ready = |name: &str| {
        variant(name)
            .and_then(|v| v.start_to_ready_ms)
            .map_or("–".to_owned(), |ms| format!("{ms:.0} ms"))
    };
    rows.push((
        "containers / orchestration",
        format!(
            "{}; start to ready {}",
            deploy("monolith"),
            ready("monolith")
        ),
        format!(
            "{}; start to ready {}",
            deploy("microlith"),
            ready("microlith")
        ),
        format!(
            "{}; start to ready {}",
            deploy("microservices"),
            ready("microservices")
        ),
    ));
    let lag = raw.variants.iter().find_map(|v| v.replication_lag.as_ref()).map_or_else(
        || "its lag is exported as `ledger_replication_lag_seconds` (not sampled by this run)".to_owned(),
        |l| {
            let p99 = l.bound_for(0.99).map_or("over 10 s".to_owned(), |s| format!("within {}", crate::output::micros(s * 1e6)));
            format!("its lag over this run's load (`ledger_replication_lag_seconds`): mean {:.2} ms over {} entries, 99 % applied {p99}", l.mean_ms, l.entries)
        },
    );
    rows.push((
        "eventual consistency",
        "none: the audit reads the accounts and the journal in the same process".to_owned(),
        "none: the audit reads the accounts and the journal in the same process".to_owned(),
        format!(
            "one replicated read model (the ledger, fed asynchronously over HTTP/JSON); the audit reads it once it has caught up; {lag}"
        ),
    ));
    let upgrade = |variant: &str, how: &str| {
        let run = ["upgrade", "rolling-restart"].iter().find_map(|k| {
            raw.faults
                .iter()
                .find(|f| f.variant == variant && f.kind == *k)
        });
        run.map_or("not run".to_owned(), |f| {
            let worst = f.timeline.iter().skip((f.injected_at_s * 1000.0 / f.bucket_ms.max(1) as f64) as usize).map(|b| b.max_latency_ns).max().unwrap_or(0);
            let how = if f.kind == "upgrade" { how } else { "its container restarted (docker restart)" };
            format!("{how} ({}): {} of {} requests failed under {:.0}/s, worst latency after it {:.0} ms", f.kind, f.failed, f.failed + f.ok, f.rate, worst as f64 / 1e6)
        })
    };
    rows.push((
        "blue/green vs hot upgrade",
        upgrade("monolith", "stopped, then started again"),
        upgrade(
            "microlith",
            "a new process takes the socket and the state over",
        ),
        upgrade("microservices", "one service restarted gracefully"),
    ));
    rows.push((
        "supervision / fault detection",
        format!(
            "{}; {}",
            fault("monolith", "crash"),
            fault("monolith", "pause")
        ),
        format!(
            "{}; {}",
            fault("microlith", "crash"),
            fault("microlith", "pause")
        ),
        format!(
            "{}; {}",
            fault("microservices", "crash"),
            fault("microservices", "pause")
        ),
    ));
    rows.push((
        "operations",
        ops("monolith"),
        ops("microlith"),
        ops("microservices"),
    ));
    let monolith = variant("monolith").is_some();
    if monolith {
        let _ = writeln!(md, "| extra work | monolith | microlith | microservices |");
        let _ = writeln!(md, "|---|---|---|---|");
    } else {
        let _ = writeln!(md, "| extra work | microlith | microservices |");
        let _ = writeln!(md, "|---|---|---|");
    }
    for (what, mono, lith, services) in rows {
        if monolith {
            let _ = writeln!(md, "| {what} | {mono} | {lith} | {services} |");
        } else {
            let _ = writeln!(md, "| {what} | {lith} | {services} |");
        }
    }

    let _ = writeln!(md, "\n### Code by purpose\n");
    let _ = writeln!(
        md,
        "| variant | area | files | lines of code | comment lines |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|");
    for a in &cost.code {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            a.variant, a.area, a.files, a.code, a.comments
        );
    }
    let _ = writeln!(
        md,
        "\nWritten once and used by {}: {} lines.{} Only for the microlith: {} (+ {} of tests). Only for the microservices: {} (+ {} of tests).",
        if variant("monolith").is_some() {
            "every variant"
        } else {
            "both"
        },
        lines("both", false),
        if variant("monolith").is_some() {
            format!(
                " Only for the monolith: {} (+ {} of tests).",
                lines("monolith", false),
                lines("monolith", true)
            )
        } else {
            String::new()
        },
        lines("microlith", false),
        lines("microlith", true),
        lines("microservices", false),
        lines("microservices", true),
    );
    if !cost.builds.is_empty() {
        let _ = writeln!(md, "\n### Builds and binaries\n");
        let _ = writeln!(
            md,
            "| variant | release binary | release build from scratch | crates compiled |"
        );
        let _ = writeln!(md, "|---|---|---|---|");
        for b in &cost.builds {
            let _ = writeln!(
                md,
                "| {} | {:.1} MiB | {} | {} |",
                b.variant,
                b.binary_bytes as f64 / 1048576.0,
                b.seconds.map_or(
                    "not timed (`--build-cost` or `--full`)".to_owned(),
                    |s| format!("{s:.0} s")
                ),
                b.crates.map_or("–".to_owned(), |n| n.to_string()),
            );
        }
        let _ = writeln!(
            md,
            "\nThe microservices binary holds all five services (one image per service would each carry it)."
        );
    }
    if !cost.features.is_empty() {
        let _ = writeln!(md, "\n### Tracing, mTLS and service tokens under load\n");
        let _ = writeln!(
            md,
            "The same transfer load at {:.0}/s for {} s (after {} s of warm-up) against a fresh instance of each configuration, one at a time.\n",
            raw.profile.cost_rate, raw.profile.duration_s, raw.profile.warmup_s
        );
        let _ = writeln!(
            md,
            "| variant | configuration | p50 µs | p99 µs | CPU per request | errors |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|");
        for f in &cost.features {
            let _ = writeln!(
                md,
                "| {} | {} | {:.0} | {:.0} | {} | {} |",
                f.variant,
                f.config,
                f.p50_us,
                f.p99_us,
                f.cpu_us_per_request
                    .map_or("–".to_owned(), |c| format!("{c:.0} µs")),
                f.errors
            );
        }
        render_cpu_by_process(md, &cost.features, raw.profile.cost_rate);
    }
}

/// The microservices' CPU per transfer split by process, one row per
/// configuration of the cost part (nothing when no run recorded it).
fn render_cpu_by_process(md: &mut String, features: &[FeatureCost], rate: f64) {
    let rows: Vec<&FeatureCost> = features
        .iter()
        .filter(|f| !f.cpu_us_by_process.is_empty())
        .collect();
    let Some(first) = rows.first() else {
        return;
    };
    // Along a transfer's path, then the rest.
    const PATH: [&str; 6] = [
        "gateway",
        "transfers",
        "accounts",
        "ledger",
        "chat",
        "launcher",
    ];
    let mut processes: Vec<&str> = first
        .cpu_us_by_process
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    processes.sort_by_key(|p| PATH.iter().position(|q| q == p).unwrap_or(PATH.len()));
    let _ = writeln!(md, "\n### CPU per transfer by process\n");
    let _ = writeln!(
        md,
        "The same runs, each process's CPU in the recorded window per answered transfer ({rate:.0}/s). On the coarse \
     path a transfer is one HTTP request into the gateway, one gRPC call from the gateway to transfers and one \
     from transfers to accounts; the ledger gets the committed transfers in batched posts, accounts the settled \
     ones in batched `Settle` calls. The microlith is one process: its total is in the table above.\n"
    );
    let _ = writeln!(
        md,
        "| variant | configuration | {} | total |",
        processes.join(" | ")
    );
    let _ = writeln!(md, "|---|---|{}---|", "---|".repeat(processes.len()));
    for f in rows {
        let cells: Vec<String> = processes
            .iter()
            .map(|p| {
                f.cpu_us_by_process
                    .iter()
                    .find(|(name, _)| name == p)
                    .map_or("–".to_owned(), |(_, us)| format!("{us:.0} µs"))
            })
            .collect();
        let total: f64 = f.cpu_us_by_process.iter().map(|(_, us)| us).sum();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {total:.0} µs |",
            f.variant,
            f.config,
            cells.join(" | ")
        );
    }
}
