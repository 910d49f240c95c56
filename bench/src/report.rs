//! Results: `raw.json` (everything measured, histograms included),
//! `runs.csv`, `env.json`, and `REPORT.md` rendered from `raw.json` alone,
//! so re-rendering stored results gives the same report.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use serde::{Deserialize, Serialize};

use crate::scenarios::{Profile, RunRecord, Scenario};

/// A latency histogram as base64 of its HdrHistogram V2 encoding.
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    match V2Serializer::new().serialize(h, &mut bytes) {
        Ok(_) => STANDARD.encode(bytes),
        Err(_) => String::new(),
    }
}

/// The inverse of [`encode_histogram`].
pub fn decode_histogram(text: &str) -> Option<Histogram<u64>> {
    let bytes = STANDARD.decode(text).ok()?;
    Deserializer::new().deserialize(&mut bytes.as_slice()).ok()
}

/// Bytes as MiB with one decimal, or a dash.
fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("–".to_owned(), |b| {
        format!("{:.1} MiB", b as f64 / 1048576.0)
    })
}

/// What was measured about a variant as a whole.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VariantRecord {
    /// Name.
    pub name: String,
    /// Processes.
    pub processes: usize,
    /// Start to ready, milliseconds (when the harness started it).
    pub start_to_ready_ms: Option<f64>,
    /// Resident memory once ready, bytes.
    pub rss_idle_bytes: Option<u64>,
    /// Resident memory after the load, bytes.
    pub rss_loaded_bytes: Option<u64>,
    /// CPU seconds per 1000 answered requests over the whole load, warm-ups
    /// included: written by runs before 2026-11-28 only (each run now
    /// records its own window, [`RunRecord::cpu_us_per_request`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms_per_request: Option<f64>,
    /// The audit after the runs (money conserved, nothing pending).
    pub audit: serde_json::Value,
    /// Under `--deploy compose`: each container.
    #[serde(default)]
    pub replicas: Vec<ReplicaRecord>,
    /// The replicated read model's lag over the run's load (the
    /// microservices' ledger, when the harness could reach it).
    #[serde(default)]
    pub replication_lag: Option<crate::lag::LagRecord>,
}

/// One container of a variant under `--deploy compose`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplicaRecord {
    /// Its compose service.
    pub service: String,
    /// From the engine starting its process to the process announcing that
    /// it serves (state loaded, socket bound), milliseconds.
    pub start_to_listening_ms: Option<f64>,
    /// Resident memory of its process once ready, bytes.
    pub rss_idle_bytes: Option<u64>,
    /// Resident memory of its process after the load, bytes.
    pub rss_loaded_bytes: Option<u64>,
}

/// Everything a run of the harness measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Raw {
    /// When and where (see `env.json`).
    pub env: serde_json::Value,
    /// The profile.
    pub profile: Profile,
    /// Per variant.
    pub variants: Vec<VariantRecord>,
    /// Every run.
    pub runs: Vec<RunRecord>,
    /// Faults injected under load, per variant.
    #[serde(default)]
    pub faults: Vec<crate::scenarios::FaultRecord>,
    /// Chat fan-out runs.
    #[serde(default)]
    pub fanout: Vec<crate::fanout::FanoutRecord>,
    /// Deploy and complexity cost (when the harness started the variants).
    #[serde(default)]
    pub cost: Option<crate::cost::Cost>,
    /// wrk against the same echo endpoint, when wrk is installed.
    #[serde(default)]
    pub wrk: Option<WrkRecord>,
    /// Images and deployment files, under `--deploy compose`.
    #[serde(default)]
    pub containers: Option<crate::images::Containers>,
    /// The generator against oha, at the same rates (`--full`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_check: Option<crate::oha::CrossCheckRecord>,
}

/// What wrk (closed loop) reached against the harness's echo endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WrkRecord {
    /// The command run.
    pub command: String,
    /// Its `Requests/sec`.
    pub requests_per_s: f64,
    /// Its 50th percentile latency, microseconds (closed loop: it does not
    /// see coordinated omission).
    pub p50_us: Option<f64>,
}

/// wrk's connections, and the generator's requests in flight when its
/// ceiling is measured beside it: like for like.
pub const WRK_CONNECTIONS: usize = 32;

/// Runs `wrk -t1 -c32 --latency` (one thread, like the generator's client
/// runtime) for `seconds` against `url`; `None` when wrk is not installed
/// or its output does not parse.
pub fn run_wrk(url: &str, seconds: f64) -> Option<WrkRecord> {
    let duration = format!("{}s", seconds.ceil() as u64);
    let connections = format!("-c{WRK_CONNECTIONS}");
    let args = [
        "-t1",
        connections.as_str(),
        "-d",
        duration.as_str(),
        "--latency",
        url,
    ];
    let output = std::process::Command::new("wrk").args(args).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    parse_wrk(&text).map(|(rps, p50)| WrkRecord {
        command: format!("wrk {}", args.join(" ")),
        requests_per_s: rps,
        p50_us: p50,
    })
}

/// (requests/s, p50 µs) from wrk's output.
fn parse_wrk(text: &str) -> Option<(f64, Option<f64>)> {
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))?
        .trim()
        .parse()
        .ok()?;
    let p50 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("50%"))
        .and_then(|v| {
            let v = v.trim();
            let (number, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
            let number: f64 = number.parse().ok()?;
            Some(match unit {
                "us" => number,
                "ms" => number * 1000.0,
                "s" => number * 1e6,
                _ => return None,
            })
        });
    Some((rps, p50))
}

impl Raw {
    /// Writes `raw.json`, `runs.csv`, `env.json` and `REPORT.md` into `dir`.
    ///
    /// Everything but raw.json is rendered from raw.json as written, read
    /// back, not from this record: a value JSON cannot carry exactly (a
    /// non-finite float, say) would otherwise make the first report differ
    /// from every re-rendering of it.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        let json = serde_json::to_vec_pretty(self)?;
        std::fs::write(dir.join("raw.json"), &json)?;
        let raw: Raw = serde_json::from_slice(&json).context("reading back raw.json")?;
        std::fs::write(dir.join("env.json"), serde_json::to_vec_pretty(&raw.env)?)?;
        std::fs::write(dir.join("runs.csv"), raw.csv())?;
        std::fs::write(dir.join("REPORT.md"), raw.render())?;
        crate::charts::render(&raw, &dir.join("charts"))?;
        raw.write_hdr_logs(&dir.join("hdr"))?;
        Ok(())
    }

    /// One HdrHistogram interval log per variant and scenario (every repeat
    /// and curve step an interval, tagged), readable by the standard
    /// HdrHistogram tools; values in nanoseconds, reported in ms.
    fn write_hdr_logs(&self, dir: &Path) -> anyhow::Result<()> {
        use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
        std::fs::create_dir_all(dir)?;
        let mut keys: Vec<(String, Scenario)> = Vec::new();
        for r in &self.runs {
            if !keys
                .iter()
                .any(|(v, s)| *v == r.variant && *s == r.scenario)
            {
                keys.push((r.variant.clone(), r.scenario));
            }
        }
        for (variant, scenario) in keys {
            let mut bytes = Vec::new();
            let mut serializer = V2Serializer::new();
            {
                let mut log = IntervalLogWriterBuilder::new()
                    .add_comment(&format!(
                        "{variant} {} latency from the scheduled send, ns",
                        scenario.name()
                    ))
                    .with_max_value_divisor(1_000_000.0)
                    .begin_log_with(&mut bytes, &mut serializer)?;
                let step = std::time::Duration::from_secs_f64(self.profile.duration_s);
                for (i, r) in self
                    .runs
                    .iter()
                    .filter(|r| r.variant == variant && r.scenario == scenario)
                    .enumerate()
                {
                    let Some(h) = decode_histogram(&r.histogram) else {
                        continue;
                    };
                    let tag = format!(
                        "{}-r{}-{}",
                        if r.curve { "curve" } else { "fixed" },
                        r.repeat,
                        r.rate as u64
                    );
                    log.write_histogram(&h, step * i as u32, step, Tag::new(&tag))
                        .map_err(|e| anyhow::anyhow!("writing an interval: {e:?}"))?;
                }
            }
            std::fs::write(
                dir.join(format!("{variant}-{}.hlog", scenario.name())),
                bytes,
            )?;
        }
        Ok(())
    }

    /// Invariants broken in the stored runs (the audits are checked as
    /// they are taken; this covers what is only known from the records).
    pub fn violations(&self) -> Vec<String> {
        self.fanout
            .iter()
            .filter(|f| !f.complete())
            .map(|f| {
                format!(
                    "{} fan-out repeat {}: {} lost, {} duplicated, {} out of order over {} subscribers",
                    f.variant, f.repeat, f.lost, f.duplicates, f.out_of_order, f.subscribers
                )
            })
            .collect()
    }

    /// Reads a stored `raw.json`.
    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        let mut raw: Self = serde_json::from_slice(&std::fs::read(dir.join("raw.json"))?)?;
        // Runs stored before errors counted towards saturation (over 1 % of
        // the answers, `load::too_many_errors`) are judged by it too.
        for r in &mut raw.runs {
            let outcomes: Vec<(crate::load::Outcome, u64)> = r
                .outcomes
                .iter()
                .filter_map(|(name, n)| Some((crate::load::Outcome::of_name(name)?, *n)))
                .collect();
            r.saturated |= crate::load::too_many_errors(&outcomes);
        }
        Ok(raw)
    }

    fn csv(&self) -> String {
        let mut out = String::from(
            "variant,scenario,repeat,rate,achieved_rate,saturated,p50_us,p90_us,p99_us,p999_us,max_us,send_lag_p50_us,send_lag_p99_us,scheduled,unfinished\n",
        );
        for r in &self.runs {
            let _ = writeln!(
                out,
                "{},{},{},{},{:.1},{},{:.1},{:.1},{:.1},{:.1},{:.1},{:.1},{:.1},{},{}",
                r.variant,
                r.scenario.name(),
                r.repeat,
                r.rate,
                r.achieved_rate,
                r.saturated,
                r.p50_us,
                r.p90_us,
                r.p99_us,
                r.p999_us,
                r.max_us,
                r.send_lag_p50_us,
                r.send_lag_p99_us,
                r.scheduled,
                r.unfinished
            );
        }
        out
    }

    fn runs_of(&self, variant: &str, scenario: Scenario) -> Vec<&RunRecord> {
        self.runs
            .iter()
            .filter(|r| !r.curve && r.variant == variant && r.scenario == scenario)
            .collect()
    }

    /// Median of a field over repeats, with its min and max.
    fn spread(runs: &[&RunRecord], field: impl Fn(&RunRecord) -> f64) -> Option<(f64, f64, f64)> {
        let mut values: Vec<f64> = runs.iter().map(|r| field(r)).collect();
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        Some((
            values[values.len() / 2],
            values[0],
            values[values.len() - 1],
        ))
    }

    /// `REPORT.md`, from this record alone.
    /// The median over the fixed-rate runs of `variant`'s CPU per request
    /// in `scenario` (recorded windows only), µs.
    pub(crate) fn cpu_per_request(&self, variant: &str, scenario: Scenario) -> Option<f64> {
        let runs: Vec<&RunRecord> = self
            .runs_of(variant, scenario)
            .into_iter()
            .filter(|r| r.cpu_us_per_request.is_some())
            .collect();
        Self::spread(&runs, |r| r.cpu_us_per_request.unwrap_or(0.0)).map(|(median, _, _)| median)
    }

    pub fn render(&self) -> String {
        let mut md = String::new();
        let env = &self.env;
        let _ = writeln!(
            md,
            "# microlith vs microservices: {} run\n",
            self.profile.name
        );
        let _ = writeln!(
            md,
            "Run `{}` at commit `{}` on {} ({} cores, {} GiB), kernel {}, {}. Command: `{}`.\n",
            env["run_id"].as_str().unwrap_or("?"),
            env["git_commit"].as_str().unwrap_or("?"),
            env["cpu_model"].as_str().unwrap_or("?"),
            env["cores"],
            env["memory_gib"],
            env["kernel"].as_str().unwrap_or("?"),
            env["rustc"].as_str().unwrap_or("?"),
            env["command"].as_str().unwrap_or("?"),
        );
        if let Some(phases) = env["elapsed_s"].as_object() {
            let parts: Vec<String> = ["build", "start", "load", "faults", "cost"]
                .iter()
                .filter_map(|k| {
                    phases
                        .get(*k)
                        .and_then(serde_json::Value::as_f64)
                        .map(|v| format!("{k} {v:.0} s"))
                })
                .collect();
            let _ = writeln!(
                md,
                "The run took {:.1} min: {}.\n",
                env["elapsed_s"]["total"].as_f64().unwrap_or(0.0) / 60.0,
                parts.join(", ")
            );
        }
        let _ = writeln!(
            md,
            "Open-loop load at constant rates: each request is scheduled by the clock and its latency is measured from \
             its scheduled time, so a stall cannot hide (no coordinated omission). {} repeat(s) per scenario and variant, \
             interleaved; {} s warm-up excluded, {} s recorded. Numbers are medians over repeats with the min–max spread. \
             Both variants ran {}, one after the other within each repeat.\n",
            self.profile.repeats,
            self.profile.warmup_s,
            self.profile.duration_s,
            {
                let place = if env["deploy"] == "compose" {
                    "in containers under Docker Compose"
                } else {
                    "as processes on this machine"
                };
                let storage = match env["storage"].as_str().unwrap_or("memory") {
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
        self.render_summary(&mut md);
        // Runs from before 2026-11-28 had other differences (no shared
        // payee cache, no coarse path): their ledger would be wrong.
        if !self.env["runtimes"].is_null() && self.variants.len() > 1 {
            crate::fairness::render(self, &mut md);
            md.push('\n');
        }
        let variants: Vec<String> = self.variants.iter().map(|v| v.name.clone()).collect();
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
        for (scenario, rate) in self
            .profile
            .scenarios()
            .into_iter()
            .chain([(Scenario::Floor, self.floor_rate())])
        {
            let names: Vec<String> = if scenario == Scenario::Floor {
                vec!["floor".into()]
            } else {
                variants.clone()
            };
            let mut p50s = Vec::new();
            for name in &names {
                let runs = self.runs_of(name, scenario);
                let (Some(p50), Some(p99), Some(p999), Some(max), Some(achieved)) = (
                    Self::spread(&runs, |r| r.p50_us),
                    Self::spread(&runs, |r| r.p99_us),
                    Self::spread(&runs, |r| r.p999_us),
                    Self::spread(&runs, |r| r.max_us),
                    Self::spread(&runs, |r| r.achieved_rate),
                ) else {
                    continue;
                };
                let errors: u64 = runs
                    .iter()
                    .flat_map(|r| r.outcomes.iter())
                    .filter(|(o, _)| o != "ok" && o != "refused_409")
                    .map(|(_, n)| n)
                    .sum();
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
                    self.cpu_per_request(name, scenario)
                        .map_or("–".to_owned(), |c| format!("{c:.0}")),
                    runs.len()
                );
                p50s.push((name.clone(), p50.0, p99.0));
            }
            if let [(a, a50, a99), (b, b50, b99)] = p50s.as_slice() {
                ratios.push((scenario, b.clone(), a.clone(), b50 / a50, b99 / a99));
            }
        }
        if !ratios.is_empty() {
            let _ = writeln!(md, "\n## Ratios (same run)\n");
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
        crate::breakdown::render(self, &mut md);
        let curve: Vec<&RunRecord> = self.runs.iter().filter(|r| r.curve).collect();
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
                self.profile.curve_step_s, self.profile.curve_p99_bound_ms
            );
            let _ = writeln!(
                md,
                "| target/s | variant | achieved/s | p50 µs | p99 µs | CPU/req µs | errors | saturated |"
            );
            let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
            for r in &curve {
                let errors: u64 = r
                    .outcomes
                    .iter()
                    .filter(|(o, _)| o != "ok" && o != "refused_409")
                    .map(|(_, n)| n)
                    .sum();
                let _ = writeln!(
                    md,
                    "| {:.0} | {} | {:.0} | {:.0} | {:.0} | {} | {errors} | {} |",
                    r.rate,
                    r.variant,
                    r.achieved_rate,
                    r.p50_us,
                    r.p99_us,
                    r.cpu_us_per_request
                        .map_or("–".to_owned(), |c| format!("{c:.0}")),
                    if r.saturated { "yes" } else { "no" }
                );
            }
            let _ = writeln!(md, "\nHighest step sustained without saturating:\n");
            let mut names: Vec<&str> = Vec::new();
            for r in &curve {
                if !names.contains(&r.variant.as_str()) {
                    names.push(&r.variant);
                }
            }
            for name in names {
                let best = self.sustained(name).map_or(0.0, |(best, _)| best);
                let tail = self.within_tail_bound(name).unwrap_or(0.0);
                let _ = writeln!(
                    md,
                    "- {name}: {best:.0}/s; the highest step with p99 under {:.0} ms: {tail:.0}/s",
                    self.profile.curve_p99_bound_ms
                );
            }
            let floor_best = self.sustained("floor").map_or(0.0, |(best, _)| best);
            let floor_peak = self.peak("floor");
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
                match &self.wrk {
                    Some(w) => format!(
                        "; in the same run `{}` (closed loop, the usual yardstick, its latency all queueing at that rate) reached {:.0} requests/s{}: our generator's sustained rate is {:.0} % of it, its peak {:.0} %",
                        w.command,
                        w.requests_per_s,
                        w.p50_us
                            .map_or(String::new(), |p| format!(" at {p:.0} µs p50")),
                        100.0 * floor_best / w.requests_per_s.max(1.0),
                        100.0 * floor_peak / w.requests_per_s.max(1.0)
                    ),
                    None =>
                        " (wrk was not installed, so no closed-loop yardstick was run)".to_owned(),
                }
            );
            // Where the machine went at the generator's highest steps.
            let cores = self.env["cores"].as_f64().unwrap_or(0.0);
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
        if !self.fanout.is_empty() {
            self.render_fanout(&mut md);
        }
        if !self.faults.is_empty() {
            let _ = writeln!(md, "\n## Failure recovery under load\n");
            let _ = writeln!(
                md,
                "A constant load (transfers, or chat posts) with durable storage in both variants; the fault comes \
                 at 30 % of the run, each against a fresh instance. *First failure*: from the fault to the first failed answer a \
                 client saw. Latency runs from each request's scheduled send, so a request held up by the fault \
                 counts all of its wait. *Impact*: from the fault to the end of the hurt stretch it caused: the last 100 ms bucket \
                 with a failed answer, no answer at all, or a worst latency over ten times the pre-fault norm, before a \
                 full healthy second. Afterwards the audit must show money conserved and nothing \
                 pending, every acknowledged transfer must still have its outcome and every acknowledged post must be \
                 in its room at its seq, with no gaps; otherwise the run fails.\n"
            );
            let _ = writeln!(
                md,
                "| kind | variant | fault | load/s | first failure | impact | failed / answered | worst latency, 1 s before / after the fault | checked after |"
            );
            let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
            for f in &self.faults {
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
                let audit = &f.audit;
                let checked =
                    if audit["pending_transfers"] == 0 && audit["total_balance"].is_number() {
                        format!(
                            "money conserved ({}), 0 pending, {} acknowledged found",
                            audit["total_balance"],
                            audit["acknowledged_checked"]
                                .as_u64()
                                .map_or("–".to_owned(), |n| n.to_string())
                        )
                    } else {
                        audit.to_string()
                    };
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {:.0} {} | {} | {:.1} s | {} / {}{} | {:.1} / {:.1} ms | {checked} |",
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
            if self.faults.iter().any(|f| f.kind == "dependency-down")
                && !self
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
        if let Some(cost) = &self.cost {
            self.render_cost(&mut md, cost);
        }
        if let Some(cross_check) = &self.cross_check {
            crate::oha::render(cross_check, &mut md);
        }
        let charts = crate::charts::names(self);
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
        for v in &self.variants {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} |",
                v.name,
                v.processes,
                v.start_to_ready_ms
                    .map_or("–".to_owned(), |ms| format!("{ms:.0} ms")),
                mib(v.rss_idle_bytes),
                mib(v.rss_loaded_bytes),
                self.cpu_per_request(&v.name, Scenario::Transfer)
                    .or(v.cpu_ms_per_request.map(|ms| ms * 1000.0))
                    .map_or("–".to_owned(), |us| format!("{us:.0} µs")),
                v.audit,
            );
        }
        self.containers_section(&mut md);
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
             - {}\n\
             - Raw data: `raw.json` (every run, with its HdrHistogram), `runs.csv`, `env.json`, and `hdr/*.hlog` \
             (HdrHistogram interval logs, one per variant and scenario). `bench render <dir>` \
             re-renders this report from `raw.json`.\n",
            if self.env["deploy"] == "compose" {
                "Both variants ran in containers under Docker Compose (`microlith/compose.yml`, `microservices/compose.yml`), \
                 with durable storage on Docker volumes and the same limits per container; the load came from the host over the \
                 published loopback port."
            } else {
                "Storage is in memory for both variants: this measures the fabric, not the disk."
            }
        );
        md
    }

    /// Images, their bytes and build times, the deployment files and the
    /// cold start of each variant in containers.
    fn containers_section(&self, md: &mut String) {
        let Some(c) = &self.containers else { return };
        let _ = writeln!(md, "\n## Containers\n");
        let _ = writeln!(
            md,
            "Static musl release binaries in `FROM scratch` images, built by `bench images` (the static build took {:.0} s this run, incremental). \
             Start to ready in the table above is the cold start of the whole variant: from `compose up` to the first ready answer at its edge.\n",
            c.images.cargo_build_s
        );
        let _ = writeln!(md, "| image | variant | bytes | binary | docker build |");
        let _ = writeln!(md, "|---|---|---|---|---|");
        let mb = |b: u64| format!("{:.1} MB", b as f64 / 1e6);
        let mut totals: Vec<(&str, u64, u64)> = Vec::new();
        for i in &c.images.images {
            let variant = if i.name == "microlith" {
                "microlith"
            } else {
                "microservices"
            };
            let _ = writeln!(
                md,
                "| `{}` | {variant} | {} | {} | {:.1} s |",
                i.reference,
                mb(i.bytes),
                mb(i.binary_bytes),
                i.build_s
            );
            match totals.iter_mut().find(|t| t.0 == variant) {
                Some(t) => {
                    t.1 += 1;
                    t.2 += i.bytes;
                }
                None => totals.push((variant, 1, i.bytes)),
            }
        }
        let _ = writeln!(md);
        for (variant, images, bytes) in totals {
            let files: Vec<String> = c
                .files
                .iter()
                .filter(|f| f.0 == variant)
                .map(|f| format!("`{}` ({} lines)", f.1, f.2))
                .collect();
            let _ = writeln!(
                md,
                "- {variant}: {images} image(s), {} in all; deployed by {}.",
                mb(bytes),
                if files.is_empty() {
                    "–".to_owned()
                } else {
                    files.join(", ")
                }
            );
        }
        // Each container: its own start (the engine's clock, from its
        // process starting to its announcing that it serves) and its memory.
        let replicas: Vec<(&str, &ReplicaRecord)> = self
            .variants
            .iter()
            .flat_map(|v| v.replicas.iter().map(move |r| (v.name.as_str(), r)))
            .collect();
        if !replicas.is_empty() {
            let _ = writeln!(
                md,
                "\nPer container: start to listening is the Docker engine's time from starting the container's process to the process announcing \
                 that it serves (state loaded, socket bound; its first `listening` line on stdout), RSS that of its process once ready and after the load.\n"
            );
            let _ = writeln!(
                md,
                "| variant | container | start to listening | RSS ready | RSS after load |"
            );
            let _ = writeln!(md, "|---|---|---|---|---|");
            for (variant, r) in &replicas {
                let ms = r
                    .start_to_listening_ms
                    .map_or("–".to_owned(), |ms| format!("{ms:.0} ms"));
                let _ = writeln!(
                    md,
                    "| {variant} | {} | {ms} | {} | {} |",
                    r.service,
                    mib(r.rss_idle_bytes),
                    mib(r.rss_loaded_bytes)
                );
            }
            let _ = writeln!(md);
            for v in self.variants.iter().filter(|v| !v.replicas.is_empty()) {
                let n = v.replicas.len();
                let idle: u64 = v.replicas.iter().filter_map(|r| r.rss_idle_bytes).sum();
                let slowest = v
                    .replicas
                    .iter()
                    .filter_map(|r| r.start_to_listening_ms)
                    .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
                let _ = writeln!(
                    md,
                    "- {}: {n} container(s), {} resident once ready ({} per container on average); slowest start to listening {}.",
                    v.name,
                    mib(Some(idle)),
                    mib(Some(idle / n as u64)),
                    slowest.map_or("–".to_owned(), |ms| format!("{ms:.0} ms"))
                );
            }
        }
    }

    /// The highest curve step `variant` sustained, and whether it was the
    /// last step tried (so the true limit may be higher).
    fn sustained(&self, variant: &str) -> Option<(f64, bool)> {
        let best = self.highest_step(variant, |r| !r.saturated)?;
        Some((
            best,
            !self
                .runs
                .iter()
                .any(|r| r.curve && r.variant == variant && r.saturated),
        ))
    }

    /// The highest curve step `variant` kept without saturating and with
    /// its p99 under the profile's bound (`None`: no curve for it; 0: no
    /// step stayed under).
    fn within_tail_bound(&self, variant: &str) -> Option<f64> {
        let bound_us = self.profile.curve_p99_bound_ms * 1000.0;
        self.highest_step(variant, |r| !r.saturated && r.p99_us <= bound_us)
    }

    /// The highest rate among `variant`'s curve steps that pass `keep`
    /// (`None`: no curve for it; 0: none passed).
    fn highest_step(&self, variant: &str, keep: impl Fn(&RunRecord) -> bool) -> Option<f64> {
        let mut steps = self
            .runs
            .iter()
            .filter(|r| r.curve && r.variant == variant)
            .peekable();
        steps.peek()?;
        Some(
            steps
                .filter(|r| keep(r))
                .map(|r| r.rate)
                .fold(0.0, f64::max),
        )
    }

    /// The most a variant answered per second on the curve, overdriven
    /// steps included: what a closed-loop tool reports as its rate (its
    /// latency then all queueing).
    fn peak(&self, variant: &str) -> f64 {
        self.runs
            .iter()
            .filter(|r| r.curve && r.variant == variant)
            .map(|r| r.achieved_rate)
            .fold(0.0, f64::max)
    }

    /// The findings, each read off the sections below.
    fn render_summary(&self, md: &mut String) {
        let (a, b) = ("microlith", "microservices");
        if !self.variants.iter().any(|v| v.name == a) || !self.variants.iter().any(|v| v.name == b)
        {
            return;
        }
        let mut lines: Vec<String> = Vec::new();
        for (scenario, rate) in self.profile.scenarios() {
            let (ra, rb) = (self.runs_of(a, scenario), self.runs_of(b, scenario));
            if let (Some(a50), Some(b50), Some(a99), Some(b99)) = (
                Self::spread(&ra, |r| r.p50_us),
                Self::spread(&rb, |r| r.p50_us),
                Self::spread(&ra, |r| r.p99_us),
                Self::spread(&rb, |r| r.p99_us),
            ) {
                lines.push(format!(
                    "{} at {rate:.0}/s: the microservices take {:.2}x the microlith's time at p50 ({:.0} vs {:.0} µs) and {:.2}x at p99 ({:.0} vs {:.0} µs).",
                    scenario.name(),
                    b50.0 / a50.0.max(1e-9),
                    b50.0,
                    a50.0,
                    b99.0 / a99.0.max(1e-9),
                    b99.0,
                    a99.0
                ));
            }
        }
        lines.extend(crate::breakdown::summary(self));
        if let (Some((sa, top_a)), Some((sb, top_b))) = (self.sustained(a), self.sustained(b)) {
            let generator = self.sustained("floor").map_or(f64::MAX, |(g, _)| g);
            let mark = |top: bool, rate: f64| {
                if top {
                    " (the highest step tried: at least that)"
                } else if rate >= generator {
                    " (as far as the load generator itself went: at least that)"
                } else {
                    ""
                }
            };
            lines.push(format!(
                "Transfers sustained before the knee: microlith {sa:.0}/s{}, microservices {sb:.0}/s{} ({:.1}x){}.",
                mark(top_a, sa),
                mark(top_b, sb),
                sa / sb.max(1.0),
                match (self.within_tail_bound(a), self.within_tail_bound(b)) {
                    (Some(ta), Some(tb)) => format!("; with p99 under {:.0} ms: {ta:.0}/s and {tb:.0}/s", self.profile.curve_p99_bound_ms),
                    _ => String::new(),
                }
            ));
        }
        let va = self.variants.iter().find(|v| v.name == a);
        let vb = self.variants.iter().find(|v| v.name == b);
        if let (Some(va), Some(vb)) = (va, vb) {
            let per_scenario: Vec<String> = self
                .profile
                .scenarios()
                .into_iter()
                .filter_map(|(scenario, rate)| {
                    let (ca, cb) = (
                        self.cpu_per_request(a, scenario)?,
                        self.cpu_per_request(b, scenario)?,
                    );
                    Some(format!(
                        "{} at {rate:.0}/s {ca:.0} vs {cb:.0} µs ({:.1}x)",
                        scenario.name(),
                        cb / ca.max(1e-9)
                    ))
                })
                .collect();
            let cpu = if !per_scenario.is_empty() {
                format!(
                    "CPU per request, recorded windows only: {}",
                    per_scenario.join(", ")
                )
            } else if let (Some(ca), Some(cb)) = (va.cpu_ms_per_request, vb.cpu_ms_per_request) {
                // Runs recorded before 2026-11-28 kept only this figure.
                format!(
                    "CPU per request over the whole run (warm-ups included, every part's mix: the older accounting, about 1.2x too high): {:.0} vs {:.0} µs ({:.1}x)",
                    ca * 1000.0,
                    cb * 1000.0,
                    cb / ca.max(1e-9)
                )
            } else {
                "CPU per request not measured".to_owned()
            };
            lines.push(format!(
                "{cpu}; resident memory idle {:.1} vs {:.1} MiB; {} process{} vs {}.",
                va.rss_idle_bytes.unwrap_or(0) as f64 / 1048576.0,
                vb.rss_idle_bytes.unwrap_or(0) as f64 / 1048576.0,
                va.processes,
                if va.processes == 1 { "" } else { "es" },
                vb.processes
            ));
        }
        let fan = |v: &str| {
            let runs: Vec<&crate::fanout::FanoutRecord> =
                self.fanout.iter().filter(|f| f.variant == v).collect();
            let mut p50: Vec<f64> = runs.iter().map(|f| f.p50_us).collect();
            p50.sort_by(f64::total_cmp);
            let lost: u64 = runs
                .iter()
                .map(|f| f.lost + f.duplicates + f.out_of_order)
                .sum();
            p50.get(p50.len() / 2).map(|m| (*m, lost))
        };
        if let (Some((fa, la)), Some((fb, lb)), Some(f0)) = (fan(a), fan(b), self.fanout.first()) {
            lines.push(format!(
                "Chat fan-out to {} WebSocket subscribers: delivery p50 {:.1} vs {:.1} ms ({:.2}x); messages lost, duplicated or reordered: {la} vs {lb}.",
                f0.subscribers,
                fa / 1000.0,
                fb / 1000.0,
                fb / fa.max(1e-9)
            ));
        }
        let mut kinds: Vec<&str> = Vec::new();
        for f in &self.faults {
            if !kinds.contains(&f.kind.as_str()) {
                kinds.push(&f.kind);
            }
        }
        for kind in kinds {
            let of = |v: &str| {
                self.faults
                    .iter()
                    .find(|f| f.kind == kind && f.variant == v)
                    .map(|f| {
                        format!(
                            "{} of {} requests failed, impact {:.1} s",
                            f.failed,
                            f.failed + f.ok,
                            f.recovery_s()
                        )
                    })
            };
            lines.push(format!(
                "Fault `{kind}`: microlith {}; microservices {}; invariants held after each.",
                of(a).unwrap_or_else(|| "has no counterpart".to_owned()),
                of(b).unwrap_or_else(|| "not run".to_owned())
            ));
        }
        if let Some(cost) = &self.cost {
            let only = |v: &str| {
                cost.code
                    .iter()
                    .filter(|c| c.variant == v && !c.area.starts_with("tests"))
                    .map(|c| c.code)
                    .sum::<u64>()
            };
            lines.push(format!(
                "Code that exists only for the fabric: {} lines in the microlith, {} in the microservices; {} lines of business logic, storage, edge and contract suite are shared.",
                only(a),
                only(b),
                only("both")
            ));
        }
        let floor = self.runs_of("floor", Scenario::Floor);
        if let (Some(f50), Some(ceiling)) =
            (Self::spread(&floor, |r| r.p50_us), self.sustained("floor"))
        {
            lines.push(format!(
                "The load generator's own floor: {:.0} µs p50 against a trivial echo at {:.0}/s; it sustained {:.0}/s open loop and answered up to {:.0}/s overdriven{}.",
                f50.0,
                self.floor_rate(),
                ceiling.0,
                self.peak("floor"),
                self.wrk.as_ref().map_or(String::new(), |w| format!(" (wrk, closed loop: {:.0}/s)", w.requests_per_s))
            ));
        }
        if lines.is_empty() {
            return;
        }
        let _ = writeln!(md, "## Summary\n");
        for line in lines {
            let _ = writeln!(md, "- {line}");
        }
        let _ = writeln!(md);
    }

    fn render_cost(&self, md: &mut String, cost: &crate::cost::Cost) {
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
                    self.faults
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
        let variant = |name: &str| self.variants.iter().find(|v| v.name == name);
        let ops = |name: &str| {
            variant(name).map_or("–".to_owned(), |v| {
                format!(
                    "{} process(es), {} port(s), RSS {} idle / {} loaded, CPU {} per 1k transfers",
                    v.processes,
                    cost.ports
                        .iter()
                        .find(|(n, _)| n == name)
                        .map_or("–".to_owned(), |(_, p)| p.to_string()),
                    mib(v.rss_idle_bytes),
                    mib(v.rss_loaded_bytes),
                    self.cpu_per_request(name, Scenario::Transfer)
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
             this run. Lines are lines of code (no comments, doc comments or blanks; unit tests inside a source file count with it) counted with tokei in this checkout; CPU is of \
             every process of the variant, per answered request, under {:.0} transfers/s.\n",
            self.profile.cost_rate
        );
        let _ = writeln!(md, "| extra work | microlith | microservices |");
        let _ = writeln!(md, "|---|---|---|");
        let _ = writeln!(
            md,
            "| communication fabric | {} lines (actor runtime and supervision {}, components as actors {}, wiring {}); CPU {} per transfer | {} lines (proto {}, codecs {}, servers {}, clients {}, resilience {}, tracing and metrics {}, tokens and CA {}, read model {}, launcher {}); CPU {} per transfer |",
            lines("microlith", false),
            area("actor runtime"),
            area("components as actors"),
            area("wiring"),
            cpu_of("microlith"),
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
        );
        let _ = writeln!(
            md,
            "| internal API versioning | none: one compiled program | {} versioned proto package(s) ({}), {} lines; no compatibility check runs yet |",
            cost.proto_packages.len(),
            cost.proto_packages.join(", "),
            area("proto"),
        );
        let _ = writeln!(
            md,
            "| contract tests / tests of the split | {} lines of variant tests (supervision, crashes) | {} lines of variant tests (per-service gRPC contracts, failures, security); the shared black-box suite ({} lines) runs against both |",
            lines("microlith", true),
            lines("microservices", true),
            area("black-box contract suite"),
        );
        let spans = feature("microservices", "spans logged").and_then(|f| f.spans_per_request);
        let _ = writeln!(
            md,
            "| distributed tracing | none needed: one process | traceparent on every hop; {} span records per transfer when logged; logging them: {} |",
            spans.map_or("–".to_owned(), |s| format!("{s:.1}")),
            delta("spans logged"),
        );
        let _ = writeln!(
            md,
            "| private CA / mTLS | none | {} CA and certificate files generated per run; mTLS on: {} |",
            cost.pki_files.map_or("–".to_owned(), |n| n.to_string()),
            delta("mtls"),
        );
        let _ = writeln!(
            md,
            "| service-to-service auth | none | a signed token checked on every internal call; tokens on: {}; both: {} |",
            delta("tokens"),
            delta("mtls+tokens"),
        );
        let deploy = |name: &str| {
            let files = cost
                .code
                .iter()
                .find(|a| a.variant == name && a.area.starts_with("deployment"))
                .map_or("–".to_owned(), |a| {
                    format!("{} files, {} lines (compose, k8s)", a.files, a.code)
                });
            let images = self.containers.as_ref().map_or(
                "images sized under `--deploy compose`".to_owned(),
                |c| {
                    let mine: Vec<_> = c
                        .images
                        .images
                        .iter()
                        .filter(|i| (i.name == "microlith") == (name == "microlith"))
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
        let _ = writeln!(
            md,
            "| containers / orchestration | {}; start to ready {} | {}; start to ready {} |",
            deploy("microlith"),
            ready("microlith"),
            deploy("microservices"),
            ready("microservices"),
        );
        let lag = self.variants.iter().find_map(|v| v.replication_lag.as_ref()).map_or_else(
            || "its lag is exported as `ledger_replication_lag_seconds` (not sampled by this run)".to_owned(),
            |l| {
                let p99 = l.bound_for(0.99).map_or("over 10 s".to_owned(), |s| format!("within {}", crate::charts::micros(s * 1e6)));
                format!("its lag over this run's load (`ledger_replication_lag_seconds`): mean {:.2} ms over {} entries, 99 % applied {p99}", l.mean_ms, l.entries)
            },
        );
        let _ = writeln!(
            md,
            "| eventual consistency | none: the audit reads the accounts and the journal in the same process | one replicated read model (the ledger, fed asynchronously over HTTP/JSON); the audit reads it once it has caught up; {lag} |"
        );
        let upgrade = |variant: &str, how: &str| {
            let run = ["upgrade", "rolling-restart"].iter().find_map(|k| {
                self.faults
                    .iter()
                    .find(|f| f.variant == variant && f.kind == *k)
            });
            run.map_or("not run".to_owned(), |f| {
                let worst = f.timeline.iter().skip((f.injected_at_s * 1000.0 / f.bucket_ms.max(1) as f64) as usize).map(|b| b.max_latency_ns).max().unwrap_or(0);
                let how = if f.kind == "upgrade" { how } else { "its container restarted (docker restart)" };
                format!("{how} ({}): {} of {} requests failed under {:.0}/s, worst latency after it {:.0} ms", f.kind, f.failed, f.failed + f.ok, f.rate, worst as f64 / 1e6)
            })
        };
        let _ = writeln!(
            md,
            "| blue/green vs hot upgrade | {} | {} |",
            upgrade(
                "microlith",
                "a new process takes the socket and the state over"
            ),
            upgrade("microservices", "one service restarted gracefully"),
        );
        let _ = writeln!(
            md,
            "| supervision / fault detection | {}; {} | {}; {} |",
            fault("microlith", "crash"),
            fault("microlith", "pause"),
            fault("microservices", "crash"),
            fault("microservices", "pause"),
        );
        let _ = writeln!(
            md,
            "| operations | {} | {} |",
            ops("microlith"),
            ops("microservices")
        );

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
            "\nWritten once and used by both: {} lines. Only for the microlith: {} (+ {} of tests). Only for the microservices: {} (+ {} of tests).",
            lines("both", false),
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
                self.profile.cost_rate, self.profile.duration_s, self.profile.warmup_s
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
            render_cpu_by_process(md, &cost.features, self.profile.cost_rate);
        }
    }

    fn render_fanout(&self, md: &mut String) {
        let f0 = &self.fanout[0];
        let _ = writeln!(md, "\n## Chat fan-out\n");
        let _ = writeln!(
            md,
            "{} WebSocket subscribers in one room; posts over HTTP at {:.0}/s (open loop). Delivery latency runs from a \
             post's scheduled send time to the frame read by a subscriber, over every subscriber and message of the \
             recorded part. Every subscriber must end holding the room's whole history, in order, once: *lost* counts \
             messages some subscriber never got (after resuming from a slow-reader disconnect, if any).\n",
            f0.subscribers, f0.rate
        );
        let _ = writeln!(
            md,
            "| variant | deliveries/s | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | posts failed | lost / dup / reordered | reconnects |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|");
        let mut names: Vec<&str> = Vec::new();
        for f in &self.fanout {
            if !names.contains(&f.variant.as_str()) {
                names.push(&f.variant);
            }
        }
        let span = self.profile.duration_s + self.profile.warmup_s;
        for name in names {
            let runs: Vec<&crate::fanout::FanoutRecord> =
                self.fanout.iter().filter(|f| f.variant == name).collect();
            let med = |field: fn(&crate::fanout::FanoutRecord) -> f64| {
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
            let sum = |field: fn(&crate::fanout::FanoutRecord) -> u64| {
                runs.iter().map(|f| field(f)).sum::<u64>()
            };
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
                sum(|f| f.reconnects),
            );
        }
        // A history that could not be read at once after a run: said, with
        // how long it answered 503.
        for f in self.fanout.iter().filter(|f| f.history_wait_s.is_some()) {
            let _ = writeln!(
                md,
                "\n{} (repeat {}): right after the posts the room's history answered 503 for {:.1} s before it could be read (load shed while the last deliveries went out).",
                f.variant,
                f.repeat + 1,
                f.history_wait_s.unwrap_or(0.0)
            );
        }
    }

    fn floor_rate(&self) -> f64 {
        self.runs
            .iter()
            .find(|r| r.scenario == Scenario::Floor)
            .map_or(0.0, |r| r.rate)
    }
}

/// The microservices' CPU per transfer split by process, one row per
/// configuration of the cost part (nothing when no run recorded it).
fn render_cpu_by_process(md: &mut String, features: &[crate::cost::FeatureCost], rate: f64) {
    let rows: Vec<&crate::cost::FeatureCost> = features
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Raw {
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
            breakdown: (variant != "floor").then(|| crate::breakdown::Breakdown {
                samples: 40,
                band: 8,
                outside_us: p50 * 0.4,
                edge_us: p50 * 0.2,
                hops_us: p50 * 0.1,
                handlers_us: p50 * 0.1,
                hops: if variant == "microlith" { 4.0 } else { 2.0 },
                hop_us: p50 * 0.05,
            }),
        };
        Raw {
            env: serde_json::json!({"run_id": "fixture", "git_commit": "abc", "cpu_model": "cpu", "cores": 2, "memory_gib": 24, "kernel": "k", "rustc": "rustc", "command": "bench compare --quick", "elapsed_s": {"build": 30.0, "start": 0.5, "load": 120.0, "faults": 60.0, "cost": 40.0, "total": 250.5}}),
            profile: Profile { repeats: 2, duration_s: 4.0, ..Profile::quick() },
            variants: ["microlith", "microservices"]
                .iter()
                .map(|n| VariantRecord {
                    name: (*n).into(),
                    processes: 1,
                    start_to_ready_ms: Some(12.0),
                    rss_idle_bytes: Some(10 << 20),
                    rss_loaded_bytes: Some(20 << 20),
                    cpu_ms_per_request: Some(0.05),
                    audit: serde_json::json!({"accounts": 1000}),
                    replicas: if *n == "microlith" { vec![("microlith", 9.5, 8u64)] } else { vec![("accounts", 14.0, 12), ("gateway", 6.0, 9)] }
                        .into_iter()
                        .map(|(service, ms, mib)| ReplicaRecord {
                            service: service.into(),
                            start_to_listening_ms: Some(ms),
                            rss_idle_bytes: Some(mib << 20),
                            rss_loaded_bytes: Some((mib + 4) << 20),
                        })
                        .collect(),
                    replication_lag: (*n == "microservices").then(|| crate::lag::LagRecord { entries: 1200, mean_ms: 1.5, within: vec![(0.0001, 0.0), (0.001, 0.4), (0.01, 0.995), (0.1, 1.0)] }),
                })
                .collect(),
            faults: vec![crate::scenarios::FaultRecord {
                variant: "microservices".into(),
                kind: "crash".into(),
                scenario: Scenario::Transfer,
                fault: "SIGKILL accounts".into(),
                rate: 300.0,
                bucket_ms: 100,
                injected_at_s: 0.2,
                first_failure_s: Some(0.1),
                impact_s: 0.6,
                failed: 40,
                ok: 1760,
                // Healthy, the fault at 0.2 s: a failed bucket, a slow one,
                // a healthy second, then a blip the recovery must ignore.
                timeline: {
                    let healthy = crate::load::Bucket { ok: 30, failed: 0, max_latency_ns: 900_000 };
                    let mut t = vec![healthy; 2];
                    t.push(crate::load::Bucket { ok: 0, failed: 40, max_latency_ns: 50_000_000 });
                    t.push(crate::load::Bucket { ok: 30, failed: 0, max_latency_ns: 20_000_000 });
                    t.extend([healthy; 10]);
                    t.push(crate::load::Bucket { ok: 30, failed: 0, max_latency_ns: 30_000_000 });
                    t
                },
                audit: serde_json::json!({"pending_transfers": 0, "total_balance": 1000, "acknowledged_checked": 1700}),
                outcomes: vec![("ok".into(), 1700), ("refused_409".into(), 60), ("unavailable_503".into(), 38), ("error".into(), 2), ("shed_429".into(), 0)],
                unfinished: 0,
            }],
            wrk: Some(WrkRecord { command: "wrk -t1 -c32 -d 2s --latency http://x/echo".into(), requests_per_s: 1000.0, p50_us: Some(80.0) }),
            containers: Some(crate::images::Containers {
                images: crate::images::ImagesRecord {
                    cargo_build_s: 190.0,
                    images: ["microlith", "accounts", "gateway"]
                        .iter()
                        .map(|n| crate::images::ImageRecord { name: (*n).into(), reference: format!("mvm/{n}:local"), bytes: 7_000_000, binary_bytes: 6_900_000, build_s: 5.0 })
                        .collect(),
                },
                files: vec![("microlith".into(), "microlith/compose.yml".into(), 18), ("microservices".into(), "microservices/compose.yml".into(), 60)],
            }),
            cross_check: Some(crate::oha::CrossCheckRecord {
                oha_version: "oha 1.16.0".into(),
                checks: vec![crate::oha::CrossCheck {
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
            cost: Some(crate::cost::Cost {
                code: vec![
                    crate::cost::CodeArea { variant: "both".into(), area: "business rules".into(), files: 10, code: 3000, comments: 500 },
                    crate::cost::CodeArea { variant: "microlith".into(), area: "actor runtime and supervision".into(), files: 4, code: 800, comments: 100 },
                    crate::cost::CodeArea { variant: "microservices".into(), area: "proto definitions".into(), files: 2, code: 120, comments: 30 },
                    crate::cost::CodeArea { variant: "microservices".into(), area: "gRPC servers".into(), files: 1, code: 400, comments: 40 },
                    crate::cost::CodeArea { variant: "microservices".into(), area: "tests of this variant".into(), files: 3, code: 900, comments: 40 },
                ],
                proto_packages: vec!["bank.v1".into(), "chat.v1".into()],
                builds: vec![crate::cost::BuildCost { variant: "microlith".into(), seconds: Some(61.0), crates: Some(150), binary_bytes: 8 << 20 }],
                features: ["baseline", "mtls"]
                    .iter()
                    .enumerate()
                    .map(|(i, c)| crate::cost::FeatureCost {
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
            }),
            fanout: ["microlith", "microservices"]
                .iter()
                .enumerate()
                .map(|(i, n)| crate::fanout::FanoutRecord {
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
                RunRecord { curve: true, rate: 500.0, harness_cpu: Some(crate::scenarios::HarnessCpu { generator_us: 6.0, echo_us: 9.0 }), in_flight_limit: Some(32), ..run("floor", Scenario::Floor, 0, 40.0) },
                // Overdriven: it answered 800/s of 1000/s.
                RunRecord { curve: true, rate: 1000.0, saturated: true, achieved_rate: 800.0, ..run("floor", Scenario::Floor, 0, 9000.0) },
            ],
        }
    }

    #[test]
    fn renders_medians_spreads_and_ratios_from_raw_data() {
        let md = fixture().render();
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
            md.contains(
                "| balance | microlith | 120 | 60 | 30 | 30 | 50 | 290 | 300 | 0.97 | 80 |"
            ),
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
            md.contains("| crash | microservices | SIGKILL accounts | 300 transfers | 0.1 s | 0.2 s | 40 / 1800 (unavailable_503 38, error 2) | 0.9 / 50.0 ms | money conserved (1000), 0 pending, 1700 acknowledged found |"),
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
        // Fan-out: deliveries per second over the whole run (5 s), and a
        // loss is shown and fails the run.
        assert!(md.contains("| microlith | 5000 | 100 (100–100) | 150 | 300 (300–300) | 400 | 500 | 0 | 0 / 0 / 0 | 1 |"), "{md}");
        assert!(md.contains("| microservices | 5000 | 200 (200–200) | 150 | 600 (600–600) | 400 | 500 | 0 | 3 / 0 / 0 | 1 |"), "{md}");
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
            !raw.render().contains("## Fairness ledger"),
            "a run without a runtime record predates the ledger"
        );
        raw.env["runtimes"] = serde_json::json!({"policy": "2 core(s) shared", "sizing": "sized"});
        if let Some(cost) = raw.cost.as_mut() {
            let base = cost.features[0].clone();
            cost.features.push(crate::cost::FeatureCost {
                config: crate::cost::FINE_PATH.into(),
                p50_us: 2500.0,
                cpu_us_per_request: Some(1200.0),
                ..base
            });
        }
        let md = raw.render();
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
    }

    #[test]
    fn wrk_output_is_read() {
        let text = "Running 2s test @ http://127.0.0.1:1/echo\n  Latency Distribution\n     50%  152.00us\n     75%  1.20ms\nRequests/sec:  41234.56\nTransfer/sec:      5.00MB\n";
        assert_eq!(parse_wrk(text), Some((41234.56, Some(152.0))));
        assert_eq!(
            parse_wrk("     50%    1.50ms\nRequests/sec: 10\n"),
            Some((10.0, Some(1500.0)))
        );
        assert_eq!(parse_wrk("nothing"), None);
    }

    #[test]
    fn the_upgrade_row_reads_the_upgrade_runs() {
        let mut raw = fixture();
        let mut upgrade = raw.faults[0].clone();
        upgrade.variant = "microlith".into();
        upgrade.kind = "upgrade".into();
        upgrade.failed = 0;
        raw.faults.push(upgrade);
        let md = raw.render();
        // The worst latency from the fault on: the 50 ms bucket.
        assert!(
            md.contains("| blue/green vs hot upgrade | a new process takes the socket and the state over (upgrade): 0 of 1760 requests failed under 300/s, worst latency after it 50 ms | not run |"),
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
            again.render().contains("- microlith: 0/s"),
            "{}",
            again.render()
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
            again.render(),
            std::fs::read_to_string(dir.join("REPORT.md")).expect("report")
        );
        let h = decode_histogram(&again.runs[0].histogram).expect("histogram");
        assert_eq!(h.len(), 3);
        assert!(
            std::fs::read_to_string(dir.join("runs.csv"))
                .expect("csv")
                .lines()
                .count()
                == 12,
            "a header and a row per run"
        );
        let hlog = std::fs::read_to_string(dir.join("hdr").join("microlith-balance.hlog"))
            .expect("hdr log");
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
            assert!(again.render().contains(&format!("(charts/{chart}.png)")));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
