//! A run's records as a fixture: both variants, the floor, faults,
//! fan-out, cost, containers and the cross-check.

use hdrhistogram::Histogram;

use crate::record::histogram::encode_histogram;
use crate::record::*;

/// The fixture run.
pub(super) fn fixture() -> Raw {
    let mut h = Histogram::<u64>::new(3).expect("histogram");
    for v in [100_000u64, 200_000, 300_000] {
        h.record(v).expect("record");
    }
    let run = |variant: &str, scenario: Scenario, repeat: u32, p50: f64| RunRecord {
        variant: variant.into(),
        scenario,
        repeat,
        rate: 100.0,
        achieved_rate: 99.0,
        saturated: false,
        p50_us: p50,
        p90_us: p50 * 1.5,
        p99_us: p50 * 2.0,
        p999_us: p50 * 3.0,
        max_us: p50 * 4.0,
        send_lag_p50_us: 50.0,
        send_lag_p99_us: 90.0,
        outcomes: vec![("ok".into(), 300), ("unavailable_503".into(), 2)],
        scheduled: 302,
        unfinished: 0,
        histogram: encode_histogram(&h),
        curve: false,
        harness_cpu: None,
        in_flight_limit: None,
        cpu_us_by_process: Vec::new(),
        cpu_us_per_request: (variant != "floor").then_some(if variant == "microlith" {
            40.0
        } else {
            600.0
        }),
        // Parts of 0.8 of the p50; the 50 µs send lag makes up the rest
        // at p50 = 250.
        breakdown: (variant != "floor").then(|| crate::record::Breakdown {
            samples: 40,
            band: 8,
            outside_us: p50 * 0.4,
            edge_us: p50 * 0.2,
            hops_us: p50 * 0.1,
            handlers_us: p50 * 0.1,
            hops: if variant == "microlith" { 4.0 } else { 2.0 },
            hop_us: p50 * 0.05,
        }),
        disk: None,
        rerun: false,
    };
    Raw {
        env: Env {
            command: "bench compare --quick".into(),
            cores: 2,
            cpu_model: "cpu".into(),
            deploy: "local".into(),
            elapsed_s: Some(crate::record::Elapsed {
                build: Some(30.0),
                start: Some(0.5),
                load: Some(120.0),
                faults: Some(60.0),
                cost: Some(40.0),
                total: 250.5,
            }),
            git_commit: "abc".into(),
            git_dirty: false,
            shared_syncs: true,
            room_hubs: true,
            session_bytes: None,
            kernel: "k".into(),
            knobs: String::new(),
            memory_gib: 24.0,
            parts: Vec::new(),
            placement: String::new(),
            profile: Profile::quick(),
            run_id: "fixture".into(),
            runtimes: None,
            rustc: "rustc".into(),
            storage: "memory".into(),
        },
        profile: Profile { repeats: 2, duration_s: 4.0, ..Profile::quick() },
        variants: ["microlith", "microservices"]
            .iter()
            .map(|n| VariantRecord {
                name: (*n).into(),
                processes: 1,
                start_to_ready_ms: Some(12.0),
                rss_idle_bytes: Some(10 << 20),
                rss_loaded_bytes: Some(20 << 20),
                cpu_idle_cores: Some(0.002),
                cpu_ms_per_request: Some(0.05),
                audit: Some(Audit {
                    accounts: 1000,
                    acknowledged_checked: None,
                    pending_transfers: 0,
                    total_balance: 1000,
                }),
                replicas: if *n == "microlith" { vec![("microlith", 9.5, 8u64)] } else { vec![("accounts", 14.0, 12), ("gateway", 6.0, 9)] }
                    .into_iter()
                    .map(|(service, ms, mib)| ReplicaRecord {
                        service: service.into(),
                        start_to_listening_ms: Some(ms),
                        rss_idle_bytes: Some(mib << 20),
                        rss_loaded_bytes: Some((mib + 4) << 20),
                    })
                    .collect(),
                replication_lag: (*n == "microservices").then(|| crate::record::LagRecord { entries: 1200, mean_ms: 1.5, within: vec![(0.0001, 0.0), (0.001, 0.4), (0.01, 0.995), (0.1, 1.0)] }),
                placement: None,
            })
            .collect(),
        faults: vec![crate::record::FaultRecord {
            variant: "microservices".into(),
            kind: "crash".into(),
            scenario: Scenario::Transfer,
            fault: "SIGKILL accounts".into(),
            rate: 300.0,
            bucket_ms: 100,
            injected_at_s: 0.2,
            first_failure_s: Some(0.1),
            impact_s: 0.6,
            back_s: Some(0.04),
            failed: 40,
            ok: 1760,
            // Healthy, the fault at 0.2 s: a failed bucket, a slow one,
            // a healthy second, then a blip the recovery must ignore.
            timeline: {
                let healthy = crate::record::Bucket { ok: 30, failed: 0, max_latency_ns: 900_000 };
                let mut t = vec![healthy; 2];
                t.push(crate::record::Bucket { ok: 0, failed: 40, max_latency_ns: 50_000_000 });
                t.push(crate::record::Bucket { ok: 30, failed: 0, max_latency_ns: 20_000_000 });
                t.extend([healthy; 10]);
                t.push(crate::record::Bucket { ok: 30, failed: 0, max_latency_ns: 30_000_000 });
                t
            },
            audit: Some(Audit {
                accounts: 10,
                acknowledged_checked: Some(1700),
                pending_transfers: 0,
                total_balance: 1000,
            }),
            outcomes: vec![("ok".into(), 1700), ("refused_409".into(), 60), ("unavailable_503".into(), 38), ("error".into(), 2), ("shed_429".into(), 0)],
            unfinished: 0,
        }],
        wrk: Some(WrkRecord { command: "wrk -t1 -c32 -d 2s --latency http://x/echo".into(), requests_per_s: 1000.0, p50_us: Some(80.0) }),
        containers: Some(crate::record::Containers {
            images: crate::record::ImagesRecord {
                cargo_build_s: 190.0,
                images: ["microlith", "accounts", "gateway"]
                    .iter()
                    .map(|n| crate::record::ImageRecord { name: (*n).into(), reference: format!("mvm/{n}:local"), bytes: 7_000_000, binary_bytes: 6_900_000, build_s: 5.0 })
                    .collect(),
            },
            files: vec![("microlith".into(), "microlith/compose.yml".into(), 18), ("microservices".into(), "microservices/compose.yml".into(), 60)],
        }),
        hops: Vec::new(),
        durable_runs: Vec::new(),
        soak: Vec::new(),
        overload: Vec::new(),
        slow: Vec::new(),
        chaos: Vec::new(),
        cross_check: Some(crate::record::CrossCheckRecord {
            oha_version: "oha 1.16.0".into(),
            checks: vec![crate::record::CrossCheck {
                target: "floor".into(),
                path: "/echo".into(),
                rate: 400.0,
                seconds: 3.0,
                ours_p50_us: 230.0,
                ours_p99_us: 900.0,
                oha_p50_us: 200.0,
                oha_p99_us: 1000.0,
                oha_rate: 399.0,
                oha_errors: 0,
                command: "oha -q 400 -z 3s -c 16 --latency-correction --no-tui --output-format json http://127.0.0.1:1/echo".into(),
            }],
        }),
        cost: Some(crate::record::Cost {
            code: vec![
                crate::record::CodeArea { variant: "both".into(), area: "business rules".into(), files: 10, code: 3000, comments: 500 },
                crate::record::CodeArea { variant: "microlith".into(), area: "actor runtime and supervision".into(), files: 4, code: 800, comments: 100 },
                crate::record::CodeArea { variant: "microservices".into(), area: "proto definitions".into(), files: 2, code: 120, comments: 30 },
                crate::record::CodeArea { variant: "microservices".into(), area: "gRPC servers".into(), files: 1, code: 400, comments: 40 },
                crate::record::CodeArea { variant: "microservices".into(), area: "tests of this variant".into(), files: 3, code: 900, comments: 40 },
            ],
            proto_packages: vec!["bank.v1".into(), "chat.v1".into()],
            builds: vec![crate::record::BuildCost { variant: "microlith".into(), seconds: Some(61.0), crates: Some(150), binary_bytes: 8 << 20 }],
            features: ["baseline", "mtls"]
                .iter()
                .enumerate()
                .map(|(i, c)| crate::record::FeatureCost {
                    variant: "microservices".into(),
                    config: (*c).into(),
                    rate: 1000.0,
                    p50_us: 1000.0 + 100.0 * i as f64,
                    p99_us: 3000.0,
                    cpu_us_per_request: Some(600.0 + 60.0 * i as f64),
                    cpu_us_by_process: vec![
                        ("transfers".into(), 250.0 + 60.0 * i as f64),
                        ("gateway".into(), 250.0),
                        ("accounts".into(), 100.0),
                    ],
                    errors: 0,
                    spans_per_request: None,
                })
                .collect(),
            pki_files: Some(12),
            ports: vec![("microservices".into(), 5)],
            line_counter: None,
        }),
        fanout: ["microlith", "microservices"]
            .iter()
            .enumerate()
            .map(|(i, n)| crate::record::FanoutRecord {
                variant: (*n).into(),
                repeat: 0,
                subscribers: 100,
                rate: 50.0,
                posts_ok: 250,
                posts_failed: 0,
                messages: 250,
                deliveries: 25_000,
                lost: i as u64 * 3,
                duplicates: 0,
                out_of_order: 0,
                reconnects: 1,
                refused_upgrades: i as u64 * 7,
                history_wait_s: (i == 1).then_some(2.5),
                p50_us: 100.0 * (i + 1) as f64,
                p90_us: 150.0,
                p99_us: 300.0 * (i + 1) as f64,
                p999_us: 400.0,
                max_us: 500.0,
                histogram: encode_histogram(&h),
            })
            .collect(),
        runs: vec![
            run("microlith", Scenario::Balance, 0, 100.0),
            run("microlith", Scenario::Balance, 1, 300.0),
            run("microservices", Scenario::Balance, 0, 400.0),
            run("microservices", Scenario::Balance, 1, 600.0),
            run("floor", Scenario::Floor, 0, 50.0),
            RunRecord { curve: true, rate: 500.0, ..run("microlith", Scenario::Transfer, 0, 80.0) },
            // Kept by the knee rule, but its tail is past the bound.
            RunRecord { curve: true, rate: 750.0, p99_us: 25_000.0, ..run("microlith", Scenario::Transfer, 0, 85.0) },
            RunRecord { curve: true, rate: 1000.0, saturated: true, ..run("microlith", Scenario::Transfer, 0, 90.0) },
            RunRecord { curve: true, rate: 500.0, p99_us: 30_000.0, ..run("microservices", Scenario::Transfer, 0, 300.0) },
            RunRecord { curve: true, rate: 500.0, harness_cpu: Some(crate::record::HarnessCpu { generator_us: 6.0, echo_us: 9.0 }), in_flight_limit: Some(32), ..run("floor", Scenario::Floor, 0, 40.0) },
            // Overdriven: it answered 800/s of 1000/s.
            RunRecord { curve: true, rate: 1000.0, saturated: true, achieved_rate: 800.0, ..run("floor", Scenario::Floor, 0, 9000.0) },
        ],
    }
}
