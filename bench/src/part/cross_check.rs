//! An independent cross-check of the load generator: oha, a field-standard
//! open-loop Rust load generator (`-q RATE --latency-correction`, latency
//! from the schedule as ours), against the same endpoints at the same
//! rates, in the same run. If the two disagree by more than
//! `AGREEMENT`, the report says by how much.
//!
//! oha is built from crates.io by the harness itself, pinned and
//! `--locked` (its newest dependencies want a newer rustc), into
//! `target/tools/`, when a run asks for the cross-check (`--full`, or
//! `--cross-check`); never by hand.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::generator::load::Plan;
use crate::record::{CrossCheck, CrossCheckRecord, OHA_CONNECTIONS, Profile, Scenario};
use anyhow::{Context, bail};

/// The oha release the harness builds.
pub const OHA_VERSION: &str = "1.16.0";

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
    let mut command = crate::target::build::cargo();
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
    let installed = crate::target::build::cargo_counting(command, progress)?;
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
        &OHA_CONNECTIONS.to_string(),
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
    pub scenario: Scenario,
    /// The scenario's workload (ours draws its account ids from it).
    pub workload: &'a mut shared_domain::workload::Workload,
}

/// At each of `rates`, on each endpoint: our generator for the profile's
/// run (warm-up excluded), then oha for the recorded seconds.
pub fn cross_check(
    oha: &Path,
    runtime: &tokio::runtime::Handle,
    http: &crate::generator::client::Client,
    profile: &Profile,
    rates: &[f64],
    endpoints: &mut [Endpoint<'_>],
    mut progress: impl FnMut(&str, f64),
) -> anyhow::Result<CrossCheckRecord> {
    use crate::part::latency::Target;
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
            let ours = crate::part::latency::run_one(
                runtime,
                http,
                Plan::fixed(profile, *rate),
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
        assert!(
            parse(json).is_ok_and(|r| r.p99_us > r.p50_us),
            "oha's p99 is read apart from its p50"
        );
    }
}
