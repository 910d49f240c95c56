//! A smoke run of `bench compare` at a tiny rate and duration: the three
//! variants and the microservices' placements start, every scenario
//! (fan-out and faults too) runs against the variants and transfers
//! against the placements, the invariants hold,
//! and the results directory holds raw.json, runs.csv, env.json and a
//! REPORT.md that re-renders identically. Uses the debug binaries (built
//! here if missing) so CI needs no release build.

mod common;

use std::path::Path;
use std::process::Command;

#[test]
fn compare_smoke_run_writes_a_full_result_set() -> anyhow::Result<()> {
    let bin_dir = common::built(&["monolith", "microlith", "microservices"])?;
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("smoke-{}", std::process::id()));
    let status = Command::new(env!("CARGO_BIN_EXE_bench"))
        // Fixed seeds: CI runs the same chaos rounds every time (a run of
        // `compare` draws new ones).
        .args(["compare", "--smoke", "--chaos-seed", "7", "--out"])
        .arg(&out)
        .arg("--bin-dir")
        .arg(&bin_dir)
        .status()?;
    anyhow::ensure!(status.success(), "bench compare --smoke failed: {status}");
    let run = std::fs::read_dir(&out)?
        .next()
        .expect("a run directory")?
        .path();
    for file in ["raw.json", "runs.csv", "env.json", "REPORT.md"] {
        anyhow::ensure!(run.join(file).exists(), "{file} missing");
    }
    let raw: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("raw.json"))?)?;
    let runs = raw["runs"].as_array().expect("runs");
    for variant in ["monolith", "microlith", "microservices", "floor"] {
        anyhow::ensure!(
            runs.iter().any(|r| r["variant"] == variant),
            "no run of {variant}"
        );
    }
    // The curve again on durable storage, for the three variants.
    let durable = raw["durable_runs"].as_array().expect("durable_runs");
    for variant in ["monolith", "microlith", "microservices"] {
        anyhow::ensure!(
            durable
                .iter()
                .any(|r| r["variant"] == variant && r["curve"] == true),
            "no durable curve step of {variant}"
        );
    }
    // A short soak of each, at half its durable knee, after its store was
    // filled towards its page caches' bound (16 MiB a database; the
    // smoke's short soak caps the filling, so it need not reach it).
    let soaks = raw["soak"].as_array().expect("soak");
    for variant in ["monolith", "microlith", "microservices"] {
        anyhow::ensure!(
            soaks.iter().any(|s| s["variant"] == variant
                && s["samples"].as_array().is_some_and(|w| w.len() >= 2)
                && s["samples"][0]["rss_bytes"].as_u64() > Some(0)
                && s["samples"][0]["store_bytes"].as_u64() > Some(0)
                && s["fill"]["cache_bytes"].as_u64() >= Some(16 << 20)
                && s["fill"]["rate"].as_f64() > Some(0.0)),
            "no soak of {variant}: {soaks:?}"
        );
    }
    // The overload part: each variant whose curve found its knee at twice
    // it between stretches at half of it, every request answered (the
    // run's audit passed); one whose tiny curve held to its top step is
    // named as not overloaded (`tests/overload.rs` drives the part itself).
    let overload = raw["overload"].as_array().cloned().unwrap_or_default();
    let report = std::fs::read_to_string(run.join("REPORT.md"))?;
    let skipped = report
        .lines()
        .find(|l| l.starts_with("Not overloaded"))
        .unwrap_or("");
    for variant in ["monolith", "microlith", "microservices"] {
        let Some(o) = overload.iter().find(|o| o["variant"] == variant) else {
            anyhow::ensure!(
                skipped.contains(&format!("{variant} (held")),
                "{variant} neither overloaded nor named as skipped: {skipped:?}"
            );
            continue;
        };
        let answered: u64 = o["buckets"].as_array().map_or(0, |b| {
            b.iter()
                .map(|b| {
                    ["ok", "shed", "errors"]
                        .iter()
                        .filter_map(|k| b[k].as_u64())
                        .sum::<u64>()
                })
                .sum()
        });
        let (knee, surge) = (
            o["knee"].as_f64().unwrap_or(0.0),
            o["surge_rate"].as_f64().unwrap_or(0.0),
        );
        anyhow::ensure!(
            knee > 0.0 && surge == 2.0 * knee && answered > 0,
            "{variant}: {o}"
        );
        anyhow::ensure!(
            o["rss"].as_array().is_some_and(|r| !r.is_empty()),
            "{variant}'s memory sampled: {o}"
        );
        anyhow::ensure!(run.join("charts").join("overload-goodput.svg").exists());
    }
    // The slow-clients part: the transfers alone, beside the slow clients
    // at a decoy (the variants run locally here), then beside slow clients
    // of every kind at the edge, each kind connected.
    let slow = raw["slow"].as_array().expect("slow");
    for variant in ["monolith", "microlith", "microservices"] {
        let s = slow
            .iter()
            .find(|s| s["variant"] == variant)
            .unwrap_or_else(|| panic!("no slow-clients run of {variant}: {slow:?}"));
        for run in ["without", "decoy", "with"] {
            anyhow::ensure!(
                s[run]["achieved_rate"].as_f64() > Some(0.0),
                "{variant} {run}: {s}"
            );
        }
        let attacks = s["attacks"].as_array().expect("attacks");
        anyhow::ensure!(
            attacks.len() == 4 && attacks.iter().all(|a| a["opened"].as_u64() > Some(0)),
            "{variant}'s slow clients: {attacks:?}"
        );
    }
    // Two chaos rounds of each, seeds 7 and 8, their invariants held
    // (a broken one fails the run above).
    let chaos = raw["chaos"].as_array().expect("chaos");
    for variant in ["monolith", "microlith", "microservices"] {
        let seeds: Vec<u64> = chaos
            .iter()
            .filter(|c| c["variant"] == variant)
            .filter(|c| c["faults"].as_array().is_some_and(|f| f.len() == 2))
            .filter(|c| c["transfers"]["audit"].is_object() && c["posts"]["audit"].is_object())
            .filter_map(|c| c["seed"].as_u64())
            .collect();
        anyhow::ensure!(seeds == [7, 8], "{variant}'s chaos rounds: {chaos:?}");
    }
    // The placements: transfers only, each with its layout's boundaries.
    for (variant, boundaries) in [
        ("microservices@one", 0),
        ("microservices@bank", 1),
        ("microservices@edge+saga", 1),
        ("microservices", 2),
    ] {
        let mine: Vec<_> = runs.iter().filter(|r| r["variant"] == variant).collect();
        anyhow::ensure!(!mine.is_empty(), "no run of {variant}");
        if variant.contains('@') {
            anyhow::ensure!(
                mine.iter().all(|r| r["scenario"] == "transfer"),
                "{variant} ran more than transfers"
            );
        }
        let record = raw["variants"]
            .as_array()
            .and_then(|v| v.iter().find(|v| v["name"] == variant))
            .expect("a variant record");
        anyhow::ensure!(
            record["placement"]["boundaries"] == boundaries,
            "{variant}: {}",
            record["placement"]
        );
    }
    for v in raw["variants"].as_array().expect("variants") {
        anyhow::ensure!(v["audit"]["pending_transfers"] == 0, "{v}");
        anyhow::ensure!(
            v["cpu_idle_cores"].as_f64().is_some_and(|c| c >= 0.0),
            "{v}"
        );
    }
    // One hop alone, per protocol and repeat, each side's CPU read.
    let hops = raw["hops"].as_array().expect("the hop probe ran");
    for protocol in ["grpc", "http/json"] {
        let hop = hops
            .iter()
            .find(|h| h["protocol"] == protocol)
            .unwrap_or_else(|| panic!("no {protocol} hop in {hops:?}"));
        anyhow::ensure!(
            hop["calls"].as_u64() > Some(0) && hop["failed"] == 0,
            "{hop}"
        );
        anyhow::ensure!(hop["p50_us"].as_f64() > Some(0.0), "{hop}");
        anyhow::ensure!(hop["caller_cpu_us"].as_f64() > Some(0.0), "{hop}");
        anyhow::ensure!(hop["callee_cpu_us"].as_f64().is_some(), "{hop}");
    }
    let faults = raw["faults"].as_array().expect("faults");
    // crash, chat-crash, pause and upgrade for each variant,
    // dependency-down for the microservices only, and (as in `--full`)
    // the crash of each placement.
    anyhow::ensure!(faults.len() == 16, "every fault: {faults:?}");
    for preset in bench::budget::PRESETS {
        let variant = preset.variant;
        anyhow::ensure!(
            faults
                .iter()
                .any(|f| f["variant"] == variant && f["kind"] == "crash"),
            "no crash of {variant}"
        );
        anyhow::ensure!(
            runs.iter()
                .any(|r| r["variant"] == variant && r["curve"] == true),
            "{variant} was not stepped up the curve"
        );
    }
    // The microlith's upgrade hands the socket and the state over: the
    // successor serves (every acknowledged answer was checked above), and
    // at most one request fails: one that raced the old process closing a
    // kept-alive connection idle through the whole drain (HTTP/1.1 has no
    // race-free way to close one; see microlith/README.md, the upgrade).
    let upgrade = faults
        .iter()
        .find(|f| f["kind"] == "upgrade" && f["variant"] == "microlith")
        .expect("the microlith's upgrade");
    anyhow::ensure!(
        matches!(upgrade["failed"].as_u64(), Some(0..=1)) && upgrade["ok"].as_u64() > Some(0),
        "{upgrade}"
    );
    // When a restarted or resumed part is back is measured: after the
    // fault, before the run's end.
    for (kind, variant) in [
        ("crash", "microservices"),
        ("crash", "monolith"),
        ("pause", "microservices"),
    ] {
        let f = faults
            .iter()
            .find(|f| f["kind"] == kind && f["variant"] == variant)
            .expect("the fault ran");
        let back = f["back_s"].as_f64().unwrap_or(-1.0);
        anyhow::ensure!(back > 0.0 && back < 30.0, "back: {f}");
    }
    for f in faults {
        anyhow::ensure!(
            f["audit"]["pending_transfers"] == 0 && f["ok"].as_u64() > Some(0),
            "{f}"
        );
        anyhow::ensure!(
            f["audit"]["acknowledged_checked"].as_u64() > Some(0),
            "acknowledged answers checked: {f}"
        );
        // Every answer is kept by kind: the kinds add up to the timeline's.
        let by_kind: u64 = f["outcomes"]
            .as_array()
            .map_or(0, |o| o.iter().filter_map(|k| k[1].as_u64()).sum());
        anyhow::ensure!(
            Some(by_kind)
                == f["ok"]
                    .as_u64()
                    .zip(f["failed"].as_u64())
                    .map(|(ok, failed)| ok + failed),
            "answers by kind: {f}"
        );
    }
    let fanout = raw["fanout"].as_array().expect("fanout");
    anyhow::ensure!(fanout.len() == 3, "a fan-out run per variant: {fanout:?}");
    for f in fanout {
        // Every subscriber got every message of the room.
        let expected = f["messages"].as_u64().unwrap_or(0) * f["subscribers"].as_u64().unwrap_or(0);
        anyhow::ensure!(
            expected > 0 && f["deliveries"].as_u64() == Some(expected) && f["lost"] == 0,
            "{f}"
        );
    }
    let cost = &raw["cost"];
    anyhow::ensure!(
        cost["features"].as_array().map(Vec::len)
            == Some(bench::part::cost::feature_configs().len()),
        "every cost configuration: {cost}"
    );
    // Each fixed-rate run of a variant has its own window's CPU; the floor
    // (the harness's own echo) has none.
    for r in runs.iter().filter(|r| r["curve"] != true) {
        let metered = r["cpu_us_per_request"].as_f64().is_some_and(|c| c > 0.0);
        anyhow::ensure!(
            metered == (r["variant"] != "floor"),
            "CPU per request of {r}"
        );
    }
    // The runtime budget: every process and its workers.
    let env: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("env.json"))?)?;
    let processes = env["runtimes"]["processes"].as_array().map_or(0, Vec::len);
    anyhow::ensure!(
        processes == 8 + bench::budget::PRESETS.len()
            && env["runtimes"]["core_budget"].as_u64() > Some(0),
        "{}",
        env["runtimes"]
    );
    anyhow::ensure!(
        cost["pki_files"].as_u64() > Some(0)
            && cost["code"].as_array().is_some_and(|c| c.len() > 10),
        "{cost}"
    );
    let report = std::fs::read_to_string(run.join("REPORT.md"))?;
    anyhow::ensure!(report.contains("## The cost table"), "{report}");
    anyhow::ensure!(
        report.contains("## Fairness ledger") && report.contains("| Transfer decomposition"),
        "{report}"
    );
    anyhow::ensure!(
        report.contains("| transfer | 50 | microservices |"),
        "{report}"
    );
    for section in [
        "## At a glance",
        "## From one process to split",
        "## A cost model of process boundaries",
        "## Durable storage: throughput and latency (transfers)",
        "## Soak (durable, half the durable knee)",
    ] {
        anyhow::ensure!(report.contains(section), "{section} missing:\n{report}");
    }
    anyhow::ensure!(run.join("charts").join("continuum.svg").exists());
    // `bench model` answers from this run.
    let model = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["model", "--hops", "3", "--rtt", "200us", "--qps", "1000"])
        .args(["--processes", "4", "--run"])
        .arg(&run)
        .output()?;
    let said = String::from_utf8_lossy(&model.stdout);
    anyhow::ensure!(
        model.status.success() && said.contains("p50 ≈") && said.contains("200 µs round trip"),
        "{said}{}",
        String::from_utf8_lossy(&model.stderr)
    );
    // Re-rendering from raw.json gives the same report.
    let status = Command::new(env!("CARGO_BIN_EXE_bench"))
        .arg("render")
        .arg(&run)
        .status()?;
    anyhow::ensure!(status.success());
    let again = std::fs::read_to_string(run.join("REPORT.md"))?;
    let changed: Vec<String> = report
        .lines()
        .zip(again.lines())
        .filter(|(a, b)| a != b)
        .take(5)
        .map(|(a, b)| format!("- {a}\n+ {b}"))
        .collect();
    anyhow::ensure!(
        again == report,
        "re-rendering changed the report ({} lines against {}):\n{}",
        report.lines().count(),
        again.lines().count(),
        changed.join("\n")
    );
    let _ = std::fs::remove_dir_all(&out);
    Ok(())
}
