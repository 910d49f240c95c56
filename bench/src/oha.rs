//! An independent cross-check of the load generator: oha, a field-standard
//! open-loop Rust load generator (`-q RATE --latency-correction`, latency
//! from the schedule as ours), against the same endpoints at the same
//! rates, in the same run. If the two disagree by more than
//! [`AGREEMENT`], the report says by how much.
//!
//! oha is built from crates.io by the harness itself, pinned and
//! `--locked` (its newest dependencies want a newer rustc), into
//! `target/tools/`, when a run asks for the cross-check (`--full`, or
//! `--cross-check`); never by hand.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// The oha release the harness builds.
pub const OHA_VERSION: &str = "1.16.0";

/// How far apart the two generators' p50 and p99 may be before the report
/// flags the difference: 15 %.
pub const AGREEMENT: f64 = 0.15;

/// oha's connections: enough for the rates of the cross-check (a few
/// thousand per second at sub-millisecond latency).
pub const CONNECTIONS: usize = 16;

/// One endpoint at one rate, measured by both generators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossCheck {
    /// `floor` (the echo endpoint) or a variant.
    pub target: String,
    /// What was requested (path).
    pub path: String,
    /// Requests per second, both.
    pub rate: f64,
    /// Seconds each generator ran.
    pub seconds: f64,
    /// Ours: p50 and p99 from the schedule, µs.
    pub ours_p50_us: f64,
    /// Ours.
    pub ours_p99_us: f64,
    /// oha's p50 with `--latency-correction`, µs.
    pub oha_p50_us: f64,
    /// oha's p99.
    pub oha_p99_us: f64,
    /// oha's achieved rate.
    pub oha_rate: f64,
    /// Answers oha got that were not 200.
    pub oha_errors: u64,
    /// The exact oha command.
    pub command: String,
}

impl CrossCheck {
    /// Whether both percentiles agree within [`AGREEMENT`] (as a share of
    /// oha's).
    pub fn agrees(&self) -> bool {
        let close = |ours: f64, theirs: f64| (ours - theirs).abs() <= AGREEMENT * theirs.max(1e-9);
        close(self.ours_p50_us, self.oha_p50_us) && close(self.ours_p99_us, self.oha_p99_us)
    }
}

/// The cross-check of a run: oha's version and every comparison.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CrossCheckRecord {
    /// `oha --version`.
    pub oha_version: String,
    /// Each endpoint and rate.
    pub checks: Vec<CrossCheck>,
}

/// Where the harness keeps oha.
pub fn binary(workspace: &Path) -> PathBuf {
    workspace
        .join("target")
        .join("tools")
        .join("bin")
        .join("oha")
}

/// oha, built first if it is not there yet (several minutes on two cores;
/// `progress` hears each crate compiled).
pub fn ensure_installed(workspace: &Path, progress: impl FnMut(u64)) -> anyhow::Result<PathBuf> {
    let oha = binary(workspace);
    if oha.exists() {
        return Ok(oha);
    }
    let mut command = crate::variants::cargo();
    command
        .args([
            "install",
            "oha",
            "--version",
            &format!("={OHA_VERSION}"),
            "--locked",
            "--root",
        ])
        .arg(workspace.join("target").join("tools"));
    let installed = crate::variants::cargo_counting(command, progress)?;
    if !installed.status.success() || !oha.exists() {
        bail!(
            "cargo install oha {OHA_VERSION} failed: {}\n{}",
            installed.status,
            installed.tail
        );
    }
    Ok(oha)
}

/// `oha --version`.
pub fn version(oha: &Path) -> String {
    Command::new(oha)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// What oha measured: p50 and p99 (µs), its rate, and its non-200 answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OhaRun {
    /// Median latency, µs.
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// Requests per second it achieved.
    pub rate: f64,
    /// Answers other than 200, and errors.
    pub errors: u64,
}

/// The command line of one run.
pub fn command(oha: &Path, url: &str, rate: f64, seconds: f64) -> Command {
    let mut command = Command::new(oha);
    command.args([
        "-q",
        &format!("{rate:.0}"),
        "-z",
        &format!("{seconds:.0}s"),
        "-c",
        &CONNECTIONS.to_string(),
        "--latency-correction",
        "--no-tui",
        "--output-format",
        "json",
        url,
    ]);
    command
}

/// Runs oha at `rate` against `url` for `seconds`.
pub fn run(oha: &Path, url: &str, rate: f64, seconds: f64) -> anyhow::Result<OhaRun> {
    let output = command(oha, url, rate, seconds)
        .output()
        .context("running oha")?;
    if !output.status.success() {
        bail!("oha failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    parse(&String::from_utf8_lossy(&output.stdout))
}

/// Reads oha's JSON output (`--output-format json`; latencies in seconds).
pub fn parse(json: &str) -> anyhow::Result<OhaRun> {
    let value: serde_json::Value = serde_json::from_str(json).context("oha's JSON output")?;
    let seconds = |v: &serde_json::Value| v.as_f64().context("a number in oha's output");
    let statuses = value["statusCodeDistribution"]
        .as_object()
        .context("statusCodeDistribution")?;
    let not_ok: u64 = statuses
        .iter()
        .filter(|(code, _)| code.as_str() != "200")
        .filter_map(|(_, n)| n.as_u64())
        .sum();
    // `-z` aborts what is in flight when the time is up: not an error of
    // the system.
    let errors: u64 = value["errorDistribution"].as_object().map_or(0, |e| {
        e.iter()
            .filter(|(kind, _)| !kind.contains("deadline"))
            .filter_map(|(_, n)| n.as_u64())
            .sum()
    });
    Ok(OhaRun {
        p50_us: seconds(&value["latencyPercentiles"]["p50"])? * 1e6,
        p99_us: seconds(&value["latencyPercentiles"]["p99"])? * 1e6,
        rate: seconds(&value["summary"]["requestsPerSec"])?,
        errors: not_ok + errors,
    })
}

/// One endpoint of the cross-check: a target's name, its base URL and the
/// scenario our generator runs there (oha requests one URL of it).
pub struct Endpoint<'a> {
    /// `floor` or the variant's name.
    pub name: &'a str,
    /// Its base URL.
    pub base: &'a str,
    /// `Floor` (GET /echo) or `Balance` (GET /v1/accounts/{id}).
    pub scenario: crate::scenarios::Scenario,
    /// The scenario's workload (ours draws its account ids from it).
    pub workload: &'a mut shared_domain::workload::Workload,
}

/// At each of `rates`, on each endpoint: our generator for the profile's
/// run (warm-up excluded), then oha for the recorded seconds.
pub fn cross_check(
    oha: &Path,
    runtime: &tokio::runtime::Handle,
    http: &crate::client::Client,
    profile: &crate::scenarios::Profile,
    rates: &[f64],
    endpoints: &mut [Endpoint<'_>],
    mut progress: impl FnMut(&str, f64),
) -> anyhow::Result<CrossCheckRecord> {
    use crate::scenarios::{Scenario, Target};
    let mut record = CrossCheckRecord {
        oha_version: version(oha),
        checks: Vec::new(),
    };
    for rate in rates {
        for endpoint in endpoints.iter_mut() {
            progress(endpoint.name, *rate);
            let path = match endpoint.scenario {
                Scenario::Balance => format!("/v1/accounts/{}", endpoint.workload.account(0)),
                _ => "/echo".to_owned(),
            };
            let target = Target {
                name: endpoint.name,
                base: endpoint.base,
                meter: None,
            };
            let ours = crate::scenarios::run_one(
                runtime,
                http,
                profile.plan(*rate),
                target,
                endpoint.scenario,
                0,
                endpoint.workload,
            );
            let url = format!("{}{path}", endpoint.base);
            let theirs = run(oha, &url, *rate, profile.duration_s)
                .with_context(|| format!("oha against {url}"))?;
            let argv = command(oha, &url, *rate, profile.duration_s);
            record.checks.push(CrossCheck {
                target: endpoint.name.to_owned(),
                path,
                rate: *rate,
                seconds: profile.duration_s,
                ours_p50_us: ours.p50_us,
                ours_p99_us: ours.p99_us,
                oha_p50_us: theirs.p50_us,
                oha_p99_us: theirs.p99_us,
                oha_rate: theirs.rate,
                oha_errors: theirs.errors,
                command: std::iter::once("oha".to_owned())
                    .chain(argv.get_args().map(|a| a.to_string_lossy().into_owned()))
                    .collect::<Vec<_>>()
                    .join(" "),
            });
        }
    }
    Ok(record)
}

/// The report's section.
pub fn render(record: &CrossCheckRecord, md: &mut String) {
    use std::fmt::Write as _;
    let _ = writeln!(md, "\n## The generator cross-checked against oha\n");
    let _ = writeln!(
        md,
        "The same endpoints at the same rates, one generator after the other: ours (warm-up excluded) and `{}` \
         (open loop with `--latency-correction`, its {CONNECTIONS} connections, latency from the schedule too). \
         They should agree within {:.0} % at p50 and p99; a row that does not is marked.\n",
        if record.oha_version.is_empty() {
            "oha"
        } else {
            &record.oha_version
        },
        AGREEMENT * 100.0
    );
    let _ = writeln!(
        md,
        "| target | path | rate/s | ours p50 µs | oha p50 µs | ours p99 µs | oha p99 µs | oha achieved/s | oha errors | agree |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|");
    for c in &record.checks {
        let _ = writeln!(
            md,
            "| {} | `{}` | {:.0} | {:.0} | {:.0} ({:+.0} %) | {:.0} | {:.0} ({:+.0} %) | {:.0} | {} | {} |",
            c.target,
            c.path,
            c.rate,
            c.ours_p50_us,
            c.oha_p50_us,
            100.0 * (c.ours_p50_us - c.oha_p50_us) / c.oha_p50_us.max(1e-9),
            c.ours_p99_us,
            c.oha_p99_us,
            100.0 * (c.ours_p99_us - c.oha_p99_us) / c.oha_p99_us.max(1e-9),
            c.oha_rate,
            c.oha_errors,
            if c.agrees() { "yes" } else { "**no**" }
        );
    }
    if let Some(c) = record.checks.first() {
        let _ = writeln!(md, "\nCommand (for the first row): `{}`.", c.command);
    }
    if record
        .checks
        .iter()
        .any(|c| !c.agrees() && c.rate <= TIMER_TICKS_PER_S)
    {
        let _ = writeln!(
            md,
            "\nAt every rate oha also hands each request from its scheduler to a connection task through a channel (a wake-up across the threads \
             of its own runtime, on the cores the system under test uses) before it is sent, and that wait is in its figures; ours sends from the \
             worker that was released. This run does not separate that hand-off from the rest, so a row at or below {TIMER_TICKS_PER_S:.0}/s that \
             disagrees (mostly at p99) is marked, not explained."
        );
    }
    if record
        .checks
        .iter()
        .any(|c| !c.agrees() && c.rate > TIMER_TICKS_PER_S)
    {
        let _ = writeln!(
            md,
            "\nWhy the rows above {TIMER_TICKS_PER_S:.0}/s are not expected to agree: oha releases `-q` requests by sleeping on tokio's timer, \
             whose resolution is one millisecond, and `--latency-correction` starts each request's clock when the scheduler wakes, not at its \
             scheduled time (oha 1.16.0, `src/client.rs`, `work_until_with_qps_latency_correction`). Above {TIMER_TICKS_PER_S:.0}/s it therefore sends \
             its requests in bursts, rate/1000 at each tick, through a channel to its connection tasks: each burst queues at the server and in oha itself, \
             and that queueing is in its figures. Ours releases every request at its own time (a `timerfd`, microseconds) and measures from it \
             (`bench/src/load.rs`). At {TIMER_TICKS_PER_S:.0}/s and below, one request per tick, their medians should agree."
        );
    }
}

/// Ticks per second of tokio's timer, on which oha schedules its requests.
const TIMER_TICKS_PER_S: f64 = 1000.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_oha_json_and_judges_agreement() {
        let json = r#"{"summary":{"successRate":1.0,"total":5.0,"slowest":0.01,"fastest":0.0001,"average":0.0002,"requestsPerSec":999.5,"totalData":10,"sizePerRequest":2,"sizePerSec":4.0},
            "latencyPercentiles":{"p10":0.0001,"p25":0.00015,"p50":0.0002,"p75":0.0003,"p90":0.0004,"p95":0.0005,"p99":0.001,"p99.9":0.002,"p99.99":0.003},
            "statusCodeDistribution":{"200":4990,"503":7},"errorDistribution":{"connection closed":3,"aborted due to deadline":16}}"#;
        let run = parse(json).expect("parses");
        assert!(
            (run.p50_us - 200.0).abs() < 1e-6 && (run.p99_us - 1000.0).abs() < 1e-6,
            "{run:?}"
        );
        assert_eq!((run.rate, run.errors), (999.5, 10));
        assert!(
            parse("{}").is_err(),
            "a missing field is an error, not a zero"
        );
        let check = |ours_p50: f64| CrossCheck {
            target: "floor".into(),
            path: "/echo".into(),
            rate: 1000.0,
            seconds: 5.0,
            ours_p50_us: ours_p50,
            ours_p99_us: 1100.0,
            oha_p50_us: 200.0,
            oha_p99_us: 1000.0,
            oha_rate: 999.5,
            oha_errors: 0,
            command: String::new(),
        };
        assert!(check(225.0).agrees());
        assert!(!check(240.0).agrees(), "20 % apart");
        // Disagreement past oha's one request per timer tick is explained;
        // at or below it, it is only marked.
        let render_of = |checks: Vec<CrossCheck>| {
            let mut md = String::new();
            render(
                &CrossCheckRecord {
                    oha_version: "oha 1.16.0".into(),
                    checks,
                },
                &mut md,
            );
            md
        };
        let below = render_of(vec![check(240.0)]);
        assert!(
            below.contains("**no**") && !below.contains("Why the rows above"),
            "{below}"
        );
        assert!(below.contains("is marked, not explained"), "{below}");
        assert!(
            !render_of(vec![check(225.0)]).contains("hands each request"),
            "agreement needs no note"
        );
        let above = render_of(vec![
            check(225.0),
            CrossCheck {
                rate: 4000.0,
                ..check(100.0)
            },
        ]);
        assert!(
            above.contains("Why the rows above 1000/s are not expected to agree"),
            "{above}"
        );
    }
}
