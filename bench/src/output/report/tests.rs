//! The report rendered from fixtures and from stored runs.

mod fixture;

use fixture::fixture;

use super::*;
use crate::record::Runtimes;
use crate::record::histogram::decode_histogram;

#[test]
fn renders_medians_spreads_and_ratios_from_raw_data() {
    let md = render(&fixture());
    assert!(
        md.contains("| balance | 400 | microlith | 300 (100–300) |"),
        "{md}"
    );
    assert!(
        md.contains("| balance | 400 | microservices | 600 (400–600) |"),
        "{md}"
    );
    assert!(
        md.contains("| balance | microservices / microlith | 2.00x | 2.00x |"),
        "{md}"
    );
    assert!(md.contains("| floor |"), "{md}");
    // Where the time goes, and the hop budget: the round trip into the
    // edge (120 + 50) plus 4 hops of 15 µs.
    assert!(md.contains("## Where the time goes"), "{md}");
    assert!(
        md.contains("| balance | microlith | 120 | 60 | 30 | 30 | 50 | 290 | 300 | 0.97 | 80 |"),
        "{md}"
    );
    assert!(
        md.contains("| balance | microlith | 170 | 4.0 | 15.0 | 230 | 300 | 1.30x | 90 |"),
        "{md}"
    );
    assert!(
        md.contains("| 4 | 0/2 |"),
        "errors counted over repeats: {md}"
    );
    assert!(md.contains("commit `abc`"));
    assert!(
        md.contains("| crash | microservices | SIGKILL accounts | 300 transfers | 0.1 s | 0.04 s (+0.06 s) | 0.2 s | 40 / 1800 (unavailable_503 38, error 2) | 0.9 / 50.0 ms | money conserved (1000), 0 pending, 1700 acknowledged found |"),
        "{md}"
    );
    assert!(
        md.contains("| 1000 | microlith | 99 | 90 | 180 | 40 | 2 | yes |"),
        "{md}"
    );
    // The cross-check: 15 % apart at p50 is still agreement; the sign says whose is higher.
    assert!(
        md.contains(
            "| floor | `/echo` | 400 | 230 | 200 (+15 %) | 900 | 1000 (-10 %) | 399 | 0 | yes |"
        ),
        "{md}"
    );
    // CPU per request: each run's own window, per scenario.
    assert!(
        md.contains("| 99 | 600 | 4 | 0/2 |"),
        "the fixed-rate table's CPU column: {md}"
    );
    assert!(
        md.contains(
            "CPU per request, recorded windows only: balance at 400/s 40 vs 600 µs (15.0x)"
        ),
        "{md}"
    );
    assert!(
        md.contains("- microlith: 750/s; the highest step with p99 under 10 ms: 500/s"),
        "{md}"
    );
    assert!(
        md.contains("- microservices: 500/s; the highest step with p99 under 10 ms: 0/s"),
        "{md}"
    );
    assert!(
        md.contains("Transfers sustained before the knee: microlith 750/s"),
        "{md}"
    );
    assert!(
        md.contains("; with p99 under 10 ms: 500/s and 0/s."),
        "{md}"
    );
    assert!(md.contains("| containers / orchestration | –; 1 image(s), 7.0 MB; start to ready 12 ms | –; 2 image(s), 14.0 MB; start to ready 12 ms |"), "{md}");
    assert!(md.contains("| supervision / fault detection | crash: not run; pause: not run | crash: first failure 0.1 s, impact 0.2 s, 40 of 1800 failed; pause: not run |"), "{md}");
    // Containers: per image, and per variant in all.
    assert!(
        md.contains("| `mvm/accounts:local` | microservices | 7.0 MB | 6.9 MB | 5.0 s |"),
        "{md}"
    );
    assert!(md.contains("- microservices: 2 image(s), 14.0 MB in all; deployed by `microservices/compose.yml` (60 lines)."), "{md}");
    // A history read that waited out a 503 is said.
    assert!(
        md.contains("answered 503 for 2.5 s before it could be read"),
        "{md}"
    );
    // The read model's lag, from the histogram's difference.
    assert!(md.contains("its lag over this run's load (`ledger_replication_lag_seconds`): mean 1.50 ms over 1200 entries, 99 % applied within 10 ms |"), "{md}");
    // Each container: its start and its memory, and per variant.
    assert!(
        md.contains("| microservices | accounts | 14 ms | 12.0 MiB | 16.0 MiB |"),
        "{md}"
    );
    assert!(md.contains("- microservices: 2 container(s), 21.0 MiB resident once ready (10.5 MiB per container on average); slowest start to listening 14 ms."), "{md}");
    assert!(md.contains("- microlith: 1 container(s), 8.0 MiB resident once ready (8.0 MiB per container on average); slowest start to listening 10 ms."), "{md}");
    // Where the cores went at the generator's ceiling: (6 + 9) µs × 500/s.
    assert!(md.contains("At 500/s the generator spent 6.0 µs of CPU per request and the echo server 9.0 µs: 0.01 of the machine's 2 cores"), "{md}");
    // Curve steps stay out of the fixed-rate table.
    assert!(!md.contains("| transfer |"), "{md}");
    // Fan-out: deliveries per second over the whole run (5 s), a loss is
    // shown and fails the run, and refused subscriptions are counted.
    assert!(md.contains("| microlith | 5000 | 100 (100–100) | 150 | 300 (300–300) | 400 | 500 | 0 | 0 / 0 / 0 | 1 |"), "{md}");
    assert!(md.contains("| microservices | 5000 | 200 (200–200) | 150 | 600 (600–600) | 400 | 500 | 0 | 3 / 0 / 0 | 1 (7 subscriptions refused, then made) |"), "{md}");
    // The cost table, from the cost record.
    assert!(
        md.contains("| communication fabric | 800 lines (actor runtime and supervision 800,"),
        "{md}"
    );
    assert!(
        md.contains("| 520 lines (proto 120, codecs 0, servers 400,"),
        "{md}"
    );
    assert!(md.contains("| private CA / mTLS | none | 12 CA and certificate files generated per run; mTLS on: CPU +60 µs/request (1.10x), p50 +100 µs (1.10x) |"), "{md}");
    assert!(
        md.contains("2 versioned proto package(s) (bank.v1, chat.v1), 120 lines"),
        "{md}"
    );
    assert!(md.contains("| microlith | 8.0 MiB | 61 s | 150 |"), "{md}");
    assert!(
        md.contains("Only for the microservices: 520 (+ 900 of tests)"),
        "{md}"
    );
    assert!(
        md.contains(
            "The run took 4.2 min: build 30 s, start 0 s, load 120 s, faults 60 s, cost 40 s."
        ),
        "{md}"
    );
    assert!(md.contains("(the floor, stepped on alone past the curve, at most 32 requests in flight at that step) sustained 500/s open loop against the echo endpoint with its latency intact, and answered up to 800/s when overdriven"), "{md}");
    assert!(md.contains("Beside a variant, the generator kept 750/s in this same curve: the floor's own higher step was disturbed"), "{md}");
    assert!(md.contains("reached 1000 requests/s at 80 µs p50: our generator's sustained rate is 50 % of it, its peak 80 %"), "{md}");
    let violations = fixture().violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0].starts_with("microservices fan-out repeat 0: 3 lost"),
        "{violations:?}"
    );
}

#[test]
fn the_fairness_ledger_gives_each_switch_its_measured_effect() {
    let mut raw = fixture();
    assert!(
        !render(&raw).contains("## Fairness ledger"),
        "a run without a runtime record predates the ledger"
    );
    raw.env.runtimes = Some(Runtimes {
        core_budget: None,
        policy: "2 core(s) shared".into(),
        processes: Vec::new(),
        sizing: Some(crate::record::Sizing::Sized),
    });
    if let Some(cost) = raw.cost.as_mut() {
        let base = cost.features[0].clone();
        cost.features.push(crate::record::FeatureCost {
            config: crate::record::FINE_PATH.into(),
            p50_us: 2500.0,
            cpu_us_per_request: Some(1200.0),
            ..base
        });
    }
    let md = render(&raw);
    // CPU by process: the transfer's path first, a row per configuration.
    assert!(
        md.contains("| variant | configuration | gateway | transfers | accounts | total |"),
        "{md}"
    );
    assert!(
        md.contains("| microservices | mtls | 250 µs | 310 µs | 100 µs | 660 µs |"),
        "{md}"
    );
    assert!(md.contains("## Fairness ledger"), "{md}");
    assert!(md.contains("fine: p50 1000 → 2500 µs (2.50x), p99 3000 → 3000 µs, CPU 600 → 1200 µs per transfer (2.00x), at 1000 transfers/s"), "{md}");
    assert!(
        md.contains("2 core(s) shared. tokio-default: not measured"),
        "{md}"
    );
    // The page caches: the bound without a soak, what a soak filled with one.
    assert!(
        md.contains(
            "up to 16.0 MiB more for the monolith and the microlith, 48.0 MiB for the microservices"
        ),
        "{md}"
    );
    raw.soak = vec![crate::record::SoakRecord {
        variant: "microservices".into(),
        rate: 1000.0,
        samples: Vec::new(),
        fill: Some(crate::record::SoakFill {
            rate: 2000.0,
            seconds: 30.0,
            store_bytes: 50 << 20,
            cache_bytes: 48 << 20,
            reached: true,
        }),
    }];
    assert!(
        render(&raw).contains("the caches the soak filled in this run: microservices 48.0 MiB"),
        "{md}"
    );
}

#[test]
fn the_upgrade_row_reads_the_upgrade_runs() {
    let mut raw = fixture();
    let mut upgrade = raw.faults[0].clone();
    upgrade.variant = "microlith".into();
    upgrade.kind = "upgrade".into();
    upgrade.failed = 0;
    raw.faults.push(upgrade);
    let md = render(&raw);
    // The worst latency from the fault on: the 50 ms bucket.
    assert!(
        md.contains("| blue/green vs hot upgrade | a new process takes the socket and the state over (upgrade): 0 of 1760 requests failed under 300/s, worst latency after it 50 ms | not run |"),
        "{md}"
    );
}

/// The fixture's microlith curve steps, as a durable curve.
fn microlith_curve(raw: &Raw) -> Vec<RunRecord> {
    raw.runs
        .iter()
        .filter(|r| r.curve && r.variant == "microlith")
        .cloned()
        .collect()
}

#[test]
fn the_durable_curve_gets_its_own_section_and_chart_beside_the_memory_knee() {
    let mut raw = fixture();
    assert!(
        !render(&raw).contains("## Durable storage"),
        "no durable curve, no section"
    );
    raw.durable_runs = microlith_curve(&raw);
    // Durable, its second step is already past the knee.
    for (i, r) in raw.durable_runs.iter_mut().enumerate() {
        r.saturated = i >= 1;
        r.p99_us *= 10.0;
    }
    let durable = raw.durable_runs[0].rate;
    let memory = raw.sustained("microlith").expect("a curve").0;
    assert!(memory > durable, "the fixture's memory knee is higher");
    let md = render(&raw);
    assert!(md.contains("## Durable storage: throughput and latency (transfers)"));
    assert!(
        md.contains(&format!(
            "- microlith: {durable:.0}/s durable, the highest step with p99 under"
        )),
        "{md}"
    );
    assert!(
        md.contains(&format!(
            "; {memory:.0}/s in memory in this run ({:.2}x of it durable)",
            durable / memory
        )),
        "{md}"
    );
    assert!(
        crate::output::charts::names(&raw).contains(&"throughput-p99-transfer-durable".to_owned())
    );
    assert!(md.contains("(charts/throughput-p99-transfer-durable.png)"));
}

#[test]
fn a_durable_step_the_disk_stalled_in_is_named_and_its_rerun_stands_in_the_knee() {
    use crate::record::DiskRecord;
    let mut raw = fixture();
    raw.durable_runs = microlith_curve(&raw);
    let disk = |max_ms: f64| DiskRecord {
        syncs: 300,
        p50_us: 400.0,
        p99_us: 1_100.0,
        max_us: max_ms * 1000.0,
        stalls: u64::from(max_ms > crate::record::DISK_STALL_MS),
    };
    for r in &mut raw.durable_runs {
        r.saturated = false;
        r.disk = Some(disk(3.0));
    }
    // The second step saturated while the disk stalled for 404 ms and was
    // run again, and held.
    let second = raw.durable_runs[1].rate;
    let mut stalled = raw.durable_runs[1].clone();
    stalled.saturated = true;
    stalled.rerun = true;
    stalled.disk = Some(disk(404.0));
    stalled.p99_us = 450_000.0;
    raw.durable_runs.insert(1, stalled);
    let md = render(&raw);
    assert!(
        md.contains("| errors | disk sync p99 / max ms | saturated |"),
        "{md}"
    );
    assert!(
        md.contains(&format!("| {second:.0} | microlith |"))
            && md.contains("| 1.1 / **404** | yes, while the disk stalled: run again |"),
        "{md}"
    );
    assert!(md.contains("| 1.1 / 3.0 | no |"), "{md}");
    assert!(md.contains("*disk sync*: beside each durable step"), "{md}");
    let best = crate::analysis::highest_step(&raw.durable_runs, "microlith", |r| !r.saturated);
    assert!(
        best.is_some_and(|b| b >= second),
        "the rerun stands: {best:?}"
    );
    assert!(
        crate::analysis::sustained(&raw.durable_runs, "microlith").is_some_and(|(_, last)| last),
        "a step run again is not a knee"
    );
    let series = crate::output::charts::curve_series_of(&raw.durable_runs);
    let points = &series
        .iter()
        .find(|(n, _)| n == "microlith")
        .expect("microlith")
        .1;
    assert_eq!(
        points.len(),
        raw.durable_runs.len() - 1,
        "the stalled step is not drawn"
    );
    // A run without the probe keeps the old table.
    let old = render(&fixture());
    assert!(!old.contains("disk sync"), "{old}");
}

#[test]
fn under_compose_the_published_ports_proxy_share_of_the_cpu_is_named() {
    let mut raw = fixture();
    assert!(!render(&raw).contains("userland proxy"), "local: no proxy");
    raw.env.deploy = "compose".into();
    let step = raw
        .runs
        .iter_mut()
        .find(|r| r.curve && r.variant == "microlith" && r.rate == 750.0)
        .expect("the microlith's sustained step");
    step.cpu_us_by_process = vec![
        ("microlith".into(), 30.0),
        (crate::record::PUBLISHED_PORT_PROXY.into(), 10.0),
    ];
    let md = render(&raw);
    assert!(
        md.contains(
            "Its share at each variant's highest sustained step: microlith 10 of 40 µs at 750/s.\n"
        ),
        "{md}"
    );
}

#[test]
fn the_ledger_names_the_gateways_room_hubs_only_for_runs_that_had_them() {
    let mut raw = fixture();
    raw.env.runtimes = Some(Runtimes {
        core_budget: None,
        policy: "2 core(s) shared".into(),
        processes: Vec::new(),
        sizing: Some(crate::record::Sizing::Sized),
    });
    let md = render(&raw);
    assert!(
        md.contains("| Chat fan-out: the microservices' gateway follows each room with one stream")
            && md.contains("`microservices --room-streams per-subscriber`"),
        "{md}"
    );
    raw.env.room_hubs = false;
    assert!(!render(&raw).contains("--room-streams"));
}

#[test]
fn the_soak_says_which_variant_held_and_draws_its_memory_and_tail() {
    use crate::record::{SoakFill, SoakRecord, SoakSample};
    let sample = |i: u32, rss_mib: u64, p99: f64| SoakSample {
        t_s: 10.0 * f64::from(i + 1),
        rss_bytes: rss_mib << 20,
        store_bytes: u64::from(i) << 20,
        p50_us: p99 / 3.0,
        p99_us: p99,
        achieved_rate: 500.0,
        errors: 0,
        error_kinds: Vec::new(),
    };
    let mut raw = fixture();
    raw.profile.soak_s = 200.0;
    raw.profile.soak_sample_s = 10.0;
    let mut stalled: Vec<SoakSample> = (0..20).map(|i| sample(i, 120, 900.0)).collect();
    stalled[15].errors = 1648;
    stalled[15].p99_us = 159_000.0;
    stalled[15].error_kinds = vec![("shed_429".into(), 1600), ("error".into(), 48)];
    stalled[16].errors = 2;
    stalled[16].error_kinds = vec![("shed_429".into(), 2)];
    raw.soak = vec![
        SoakRecord {
            variant: "microlith".into(),
            rate: 500.0,
            samples: stalled,
            fill: Some(SoakFill {
                rate: 1000.0,
                seconds: 40.0,
                store_bytes: 17 << 20,
                cache_bytes: 16 << 20,
                reached: true,
            }),
        },
        SoakRecord {
            variant: "microservices".into(),
            rate: 250.0,
            samples: (0..20)
                .map(|i| sample(i, 100 + 10 * u64::from(i), 900.0))
                .collect(),
            fill: Some(SoakFill {
                rate: 500.0,
                seconds: 100.0,
                store_bytes: 30 << 20,
                cache_bytes: 48 << 20,
                reached: false,
            }),
        },
    ];
    let md = render(&raw);
    assert!(
        md.contains("## Soak (durable, half the durable knee)"),
        "{md}"
    );
    assert!(
        md.contains("| microlith | 500 | 120.0 MiB | 120.0 MiB | 19.0 MiB |")
            && md.contains("| yes |"),
        "{md}"
    );
    assert!(
        md.contains(
            "The microlith's errors: 2 of 20 windows had any (48 error, 1602 shed_429); \
             the worst, ending at 160 s, had 1648 with a p99 of 159 ms."
        ),
        "{md}"
    );
    assert!(!md.contains("The microservices's errors"), "{md}");
    assert!(
        md.contains(
            "the microlith, 16.0 MiB of caches, at 1000/s: filled in 40 s (store 17.0 MiB); the \
             microservices, 48.0 MiB of caches, at 500/s: **not reached** within 100 s (the \
             store held 30.0 MiB"
        ),
        "{md}"
    );
    // 110 MiB after the first tenth, 290 at the end.
    assert!(
        md.contains("| microservices | 250 | 110.0 MiB | 290.0 MiB |")
            && md.contains("| **no**: RSS grew 164 % |"),
        "{md}"
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/test-tmp")
        .join(format!("report-soak-{}", std::process::id()));
    let written = crate::output::charts::render(&raw, &dir).expect("charts");
    let _ = std::fs::remove_dir_all(&dir);
    for chart in ["soak-rss", "soak-p99"] {
        assert!(written.iter().any(|w| w == chart), "{written:?}");
        assert!(md.contains(&format!("(charts/{chart}.png)")));
    }
    // A soak recorded before the fill says it began on an empty store.
    for soak in &mut raw.soak {
        soak.fill = None;
    }
    let md = render(&raw);
    assert!(
        md.contains("These soaks began on an empty store") && !md.contains("**not reached**"),
        "{md}"
    );
}

/// An overload run of `variant`: 1 s at the base, 1 s of surge with
/// `surge_ok` answers and 100 refusals a bucket, slow for `back` buckets
/// after it, then back (buckets of 100 ms).
fn overload_record(variant: &str, surge_ok: u64, back: usize) -> crate::record::OverloadRecord {
    use crate::record::{OverloadBucket, OverloadRecord};
    let bucket = |ok: u64, shed: u64, p99_ms: f64| OverloadBucket {
        ok,
        shed,
        errors: 0,
        unsent: 0,
        ok_p99_us: p99_ms * 1000.0,
        shed_max_us: if shed > 0 { 2_000.0 } else { 0.0 },
    };
    let mut buckets = vec![bucket(50, 0, 2.0); 10];
    buckets.extend(vec![bucket(surge_ok, 100, 40.0); 10]);
    buckets.extend(vec![bucket(50, 0, 90.0); back]);
    buckets.extend(vec![bucket(50, 0, 2.0); 30 - back]);
    OverloadRecord {
        variant: variant.into(),
        knee: 1000.0,
        base_rate: 500.0,
        surge_rate: 2000.0,
        surge_at_s: 1.0,
        surge_s: 1.0,
        bucket_ms: 100,
        buckets,
        rss: vec![(0.9, 100 << 20), (1.5, 120 << 20)],
        unfinished: 0,
        send_lag_p99_us: 300.0,
        audit: None,
        exact: crate::record::OverloadExact {
            p99_before_us: 2_000.0,
            shed_p99_us: Some(2_000.0),
            back_after_s: Some(back as f64 / 10.0),
        },
        peak_connections: Some(640),
        storage: None,
    }
}

#[test]
fn the_overload_part_says_which_variant_held_and_draws_its_answers() {
    use crate::record::OverloadRecord;
    let record = overload_record;
    let mut raw = fixture();
    raw.profile.overload_s = 1.0;
    raw.profile.overload_settle_s = 1.0;
    // Past what the generator could send beside it: not judged.
    let past_the_generator = {
        let mut r = OverloadRecord {
            knee: 3000.0,
            surge_rate: 6000.0,
            ..record("monolith", 90, 2)
        };
        r.buckets[12].unsent = 40;
        r
    };
    // Held, while the generator lagged: judged, and marked.
    let lagging = OverloadRecord {
        send_lag_p99_us: 2_000.0,
        ..record("microservices@one", 90, 2)
    };
    raw.overload = vec![
        record("microlith", 90, 2),
        record("microservices", 60, 15),
        past_the_generator,
        lagging,
    ];
    let md = render(&raw);
    assert!(md.contains("## Overload (twice the knee)"), "{md}");
    assert!(
        md.contains("| microlith | 1000 | 2000 | 900 (0.90) | 1000 (2.0 ms) | 0, 0, 0 | 100.0 MiB → 120.0 MiB (1.20x, 640 connections) | 2.0 ms | 0.2 s | 0.30 ms | yes |"),
        "{md}"
    );
    assert!(
        md.contains("| 600 (0.60) |") && md.contains("| **no**: goodput 0.60, back after 1.5 s |"),
        "{md}"
    );
    assert!(
        md.contains("| monolith | 3000 | 6000 | 900 (0.30) | 1000 (2.0 ms) | 0, 0, 40 |")
            && md.contains("| not judged: the generator could not send 6000/s beside it (as measured: goodput 0.30) |"),
        "{md}"
    );
    assert!(
        md.contains("| 2.00 ms | yes (the generator fell behind: it measured itself too) |"),
        "{md}"
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/test-tmp")
        .join(format!("report-overload-{}", std::process::id()));
    let written = crate::output::charts::render(&raw, &dir).expect("charts");
    let _ = std::fs::remove_dir_all(&dir);
    for chart in ["overload-goodput", "overload-p99"] {
        assert!(written.iter().any(|w| w == chart), "{written:?}");
        assert!(md.contains(&format!("(charts/{chart}.png)")));
    }
}

#[test]
fn an_overload_on_durable_storage_says_so_and_reads_the_durable_curve() {
    let mut raw = fixture();
    raw.profile.overload_s = 1.0;
    raw.profile.overload_settle_s = 1.0;
    let memory = render(&raw);
    // The microlith held every step of its durable curve: no knee there.
    raw.durable_runs = microlith_curve(&raw);
    for r in &mut raw.durable_runs {
        r.saturated = false;
    }
    let top = raw.durable_runs.iter().map(|r| r.rate).fold(0.0, f64::max);
    raw.overload = vec![crate::record::OverloadRecord {
        storage: Some("durable".into()),
        ..overload_record("microservices", 90, 2)
    }];
    let md = render(&raw);
    assert!(
        md.contains("Each variant, started afresh on durable storage with the durable curve below")
            && md.contains("on durable storage the settled transfers leave memory"),
        "{md}"
    );
    assert!(
        md.contains("| 100.0 MiB → 120.0 MiB (1.20x, 640 connections: +32.0 KiB per connection) |"),
        "{md}"
    );
    assert!(
        md.contains(&format!(
            "past what the generator sends beside them): microlith (held {top:.0}/s)."
        )),
        "{md}"
    );
    raw.overload[0].storage = None;
    let md = render(&raw);
    assert!(
        md.contains("Each variant, as in the curve above,")
            && md.contains("with memory storage the surge's transfers stay in memory too")
            && md.contains("| 100.0 MiB → 120.0 MiB (1.20x, 640 connections) |"),
        "{md}"
    );
    assert!(!memory.contains("durable storage with the durable curve"));
    // A run all durable: its curve above is the durable one.
    raw.env.storage = "durable".into();
    let md = render(&raw);
    assert!(
        md.contains("Each variant, as in the curve above,")
            && md.contains("on durable storage the settled transfers leave memory")
            && md.contains("(1.20x, 640 connections: +32.0 KiB per connection) |"),
        "{md}"
    );
}

#[test]
fn the_method_says_which_storage_the_variants_ran_on() {
    let mut raw = fixture();
    raw.env.deploy = "local".into();
    raw.env.storage = "memory".into();
    assert!(render(&raw).contains("Storage is in memory for"));
    raw.env.storage = "durable".into();
    let md = render(&raw);
    assert!(
        md.contains("Storage is durable for every variant") && !md.contains("Storage is in memory"),
        "{md}"
    );
}

#[test]
fn a_run_without_fixed_rate_runs_has_no_empty_latency_table() {
    let mut raw = fixture();
    assert!(render(&raw).contains("## Latency at fixed rates"));
    raw.runs.retain(|r| r.curve);
    let md = render(&raw);
    assert!(
        !md.contains("## Latency at fixed rates")
            && !md.contains("## From one process to split")
            && md.contains("## Throughput and latency"),
        "{md}"
    );
}

#[test]
fn a_stored_step_answering_errors_reads_as_saturated() {
    // Stored by a harness that did not yet count errors: 1000/s kept,
    // 87 % of the answers 503.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/test-tmp")
        .join(format!("report-errors-{}", std::process::id()));
    let mut raw = fixture();
    let mut steps = 0;
    for step in raw
        .runs
        .iter_mut()
        .filter(|r| r.curve && r.variant == "microlith" && !r.saturated)
    {
        step.outcomes = vec![("ok".into(), 800), ("unavailable_503".into(), 5200)];
        steps += 1;
    }
    assert_eq!(steps, 2, "the fixture's sustained steps");
    raw.write(&dir).expect("write");
    let again = Raw::read(&dir).expect("read");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        again
            .runs
            .iter()
            .filter(|r| r.curve && r.variant == "microlith")
            .all(|r| r.saturated)
    );
    assert!(
        render(&again).contains("- microlith: 0/s"),
        "{}",
        render(&again)
    );
}

#[test]
fn re_rendering_stored_results_gives_the_same_report() {
    // Inside the project tree: target/test-tmp.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/test-tmp")
        .join(format!("report-fixture-{}", std::process::id()));
    let raw = fixture();
    raw.write(&dir).expect("write");
    let again = Raw::read(&dir).expect("read");
    assert_eq!(
        render(&again),
        std::fs::read_to_string(dir.join("REPORT.md")).expect("report")
    );
    let h = decode_histogram(&again.runs[0].histogram).expect("histogram");
    assert_eq!(h.len(), 3);
    // Re-rendering leaves the recorded measurements as they were, byte for
    // byte (here stored compact, as no run writes them).
    let recorded = serde_json::to_vec(&again).expect("json");
    std::fs::write(dir.join("raw.json"), &recorded).expect("write");
    std::fs::write(dir.join("REPORT.md"), "stale").expect("write");
    again.render_into(&dir).expect("render");
    assert_eq!(
        std::fs::read(dir.join("raw.json")).expect("raw.json"),
        recorded
    );
    assert_eq!(
        render(&again),
        std::fs::read_to_string(dir.join("REPORT.md")).expect("report")
    );
    assert!(
        std::fs::read_to_string(dir.join("runs.csv"))
            .expect("csv")
            .lines()
            .count()
            == 12,
        "a header and a row per run"
    );
    let hlog =
        std::fs::read_to_string(dir.join("hdr").join("microlith-balance.hlog")).expect("hdr log");
    assert_eq!(
        hlog.lines().filter(|l| l.starts_with("Tag=fixed-")).count(),
        2,
        "{hlog}"
    );
    for chart in ["spectrum-balance", "throughput-p99-transfer"] {
        for ext in ["png", "svg"] {
            let file = dir.join("charts").join(format!("{chart}.{ext}"));
            assert!(
                std::fs::metadata(&file)
                    .map(|m| m.len() > 1000)
                    .unwrap_or(false),
                "{} missing or empty",
                file.display()
            );
        }
        assert!(render(&again).contains(&format!("(charts/{chart}.png)")));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_slow_clients_part_compares_the_ordinary_clients_alone_and_beside_them() {
    use crate::record::{AttackRecord, SlowRecord};
    let mut raw = fixture();
    let run = |p99_ms: f64, errors: u64| {
        let mut r = raw.runs[0].clone();
        r.p99_us = p99_ms * 1000.0;
        r.outcomes = vec![("ok".into(), 1000), ("error".into(), errors)];
        r
    };
    let attack = |kind: &str, cut: u64, answered: u64, longest_s: f64| AttackRecord {
        kind: kind.into(),
        held: 10,
        opened: 10 + cut,
        cut,
        answered,
        longest_s,
        refused: 0,
    };
    let attacks = |non_readers_cut: u64| {
        vec![
            attack("trickled heads", 10, 0, 10.1),
            attack("silent connections", 10, 0, 10.0),
            attack("trickled bodies", 50, 50, 2.1),
            attack("WebSocket non-readers", non_readers_cut, 0, 0.0),
        ]
    };
    raw.profile.slow_clients_s = 12.0;
    raw.profile.slow_clients = 10;
    raw.slow = vec![
        SlowRecord {
            variant: "microlith".into(),
            without: run(2.0, 0),
            decoy: Some(run(2.5, 0)),
            with: run(3.0, 0),
            rss_without: 100 << 20,
            rss_with: 110 << 20,
            attacks: attacks(3),
        },
        SlowRecord {
            variant: "microservices".into(),
            without: run(2.0, 0),
            decoy: None,
            with: run(5.0, 4),
            rss_without: 100 << 20,
            rss_with: 150 << 20,
            attacks: attacks(0),
        },
    ];
    let md = render(&raw);
    assert!(md.contains("## Slow and abandoned clients"), "{md}");
    assert!(
        md.contains("| microlith | 2.00 → 3.00 ms (1.50x) | 2.50 ms: machine 1.25x, edge 1.20x | 0 | 100.0 MiB → 110.0 MiB (1.10x) | 10 of 20, ≤ 10.1 s | 10 of 20, ≤ 10.0 s | 50 of 60 (50), ≤ 2.1 s | 3 of 13 | yes |"),
        "{md}"
    );
    assert!(md.contains("| **no**: p99 2.5x, errors |"), "{md}");
    // No decoy in that run: nothing to split.
    assert!(
        md.contains("| microservices | 2.00 → 5.00 ms (2.50x) | – | 4 |"),
        "{md}"
    );
    // A run whose edges also held each reader to a byte budget says so.
    assert!(
        md.contains("a message or 1 024 messages of backlog"),
        "{md}"
    );
    raw.env.session_bytes = Some(1 << 20);
    let md = render(&raw);
    assert!(
        md.contains("a message or 1 024 messages (or 1.0 MiB of their text) of backlog"),
        "{md}"
    );
}

#[test]
fn the_chaos_rounds_are_listed_with_their_seeds_and_what_was_re_read() {
    use crate::record::{ChaosFault, ChaosRecord, FaultRecord};
    let mut raw = fixture();
    let Some(fault) = raw.faults.first().cloned() else {
        panic!("the fixture has a fault run");
    };
    let with = |ok: u64, failed: u64, checked: u64| FaultRecord {
        ok,
        failed,
        audit: fault.audit.clone().map(|mut a| {
            a.acknowledged_checked = Some(checked);
            a
        }),
        ..fault.clone()
    };
    raw.profile.chaos_seconds = 10.0;
    raw.profile.chaos_faults = 2;
    raw.chaos = vec![ChaosRecord {
        variant: "microservices".into(),
        seed: 42,
        faults: vec![
            ChaosFault {
                kind: "crash".into(),
                at_s: 1.3,
                back_s: Some(0.4),
            },
            ChaosFault {
                kind: "pause".into(),
                at_s: 5.5,
                back_s: None,
            },
        ],
        transfers: with(1400, 12, 1400),
        posts: with(700, 3, 700),
        follows_restarts: false,
    }];
    let md = render(&raw);
    assert!(
        md.contains("## Chaos (seeded faults, then the invariants)"),
        "{md}"
    );
    assert!(
        md.contains("| microservices | 42 | crash 1.3 (0.40), pause 5.5 | 1400 / 12 | 700 / 3 | 2100 | held |"),
        "{md}"
    );
    // The microservices' restarts are the launcher's: nothing to mark.
    assert!(!md.contains('†'), "{md}");
    // The same faults on the monolith, recorded before the harness
    // followed restarts: the pause went to the crashed process.
    let mut monolith = raw.chaos[0].clone();
    monolith.variant = "monolith".into();
    monolith.seed = 43;
    raw.chaos.push(monolith.clone());
    let md = render(&raw);
    assert!(
        md.contains("| monolith | 43 † | crash 1.3 (0.40), pause 5.5 |"),
        "{md}"
    );
    assert!(md.contains("† Milder than drawn"), "{md}");
    // Recorded since: no mark.
    raw.chaos[1].follows_restarts = true;
    assert!(!render(&raw).contains('†'));
    // A pause before the crash reached the process serving then.
    monolith.faults.reverse();
    raw.chaos[1] = monolith;
    assert!(!render(&raw).contains('†'));
}

#[test]
fn the_generator_reaches_what_any_variant_sustained_past_its_floor() {
    let mut raw = fixture();
    // The microlith sustained 750/s, past the floor's 500/s.
    assert_eq!(raw.generator_reach(), Some(750.0));
    for r in raw
        .runs
        .iter_mut()
        .filter(|r| r.variant == "floor" && r.curve)
    {
        r.rate *= 8.0;
        r.achieved_rate *= 8.0;
    }
    assert_eq!(raw.generator_reach(), Some(4000.0));
    let md = render(&raw);
    assert!(!md.contains("Beside a variant, the generator kept"), "{md}");
    raw.runs.retain(|r| r.variant != "floor");
    assert_eq!(raw.generator_reach(), None);
}
