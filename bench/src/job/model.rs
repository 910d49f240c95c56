//! `bench model`: a reviewer's own system projected from a run's cost
//! model of process boundaries ([`crate::analysis::model`]), with every
//! assumption printed beside the answer.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::analysis::model::{Model, System};
use crate::record::Raw;

/// What the reviewer asks about.
#[derive(Debug, Clone)]
pub struct Ask {
    /// The run to read; default: the newest under `results` with the
    /// microservices' placements measured.
    pub run: Option<PathBuf>,
    /// Where runs are.
    pub results: PathBuf,
    /// The reviewer's system.
    pub system: System,
}

/// A round-trip time: `200us`, `0.2ms`, `1ms`, or microseconds alone.
pub fn parse_rtt(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix("µs") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1000.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1e6)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is no duration (say 200us or 0.2ms)"))?;
    if !(value.is_finite() && value >= 0.0) {
        return Err(format!("{text:?}: a round trip is a non-negative time"));
    }
    Ok(value * scale)
}

/// The newest run under `results` whose model can be fitted.
fn latest(results: &Path) -> anyhow::Result<(PathBuf, Raw, Model)> {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(results)
        .with_context(|| format!("reading {}", results.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("raw.json").exists())
        .collect();
    // Run ids start with their Unix time.
    runs.sort_by_key(|p| std::cmp::Reverse(p.file_name().map(|n| n.to_owned())));
    for dir in runs {
        let Ok(raw) = Raw::read(&dir) else { continue };
        if let Some(model) = Model::fit(&raw) {
            return Ok((dir, raw, model));
        }
    }
    anyhow::bail!(
        "no run under {} measured the microservices' placements; run `bench compare` first",
        results.display()
    )
}

/// The projection and its assumptions, as text.
pub fn run(ask: &Ask) -> anyhow::Result<String> {
    let (dir, raw, model) = match &ask.run {
        Some(dir) => {
            let raw = Raw::read(dir)?;
            let model = Model::fit(&raw).with_context(|| {
                format!(
                    "{} did not measure the microservices' placements",
                    dir.display()
                )
            })?;
            (dir.clone(), raw, model)
        }
        None => latest(&ask.results)?,
    };
    let s = ask.system;
    let p = model.project(s);
    let mut out = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(
        out,
        "From run {} ({}, {} cores, commit {}), transfers at {:.0}/s:",
        dir.display(),
        raw.env.cpu_model,
        raw.env.cores,
        raw.env.git_commit,
        model.rate
    );
    let _ = writeln!(
        out,
        "  in-process base ({}): p50 {:.0} µs{}",
        model.one.name,
        model.one.p50.0,
        model
            .one
            .cpu_us
            .map_or(String::new(), |c| format!(", CPU {c:.0} µs per request"))
    );
    let _ = writeln!(
        out,
        "  per process boundary (read off {} and {}): {:.0} µs at p50{}, on loopback",
        model.one.name,
        model.split.name,
        model.hop_us,
        model
            .hop_cpu_us
            .map_or(String::new(), |c| format!(", {c:.0} µs of CPU"))
    );
    if let Some(hop) = model.probe {
        let _ = writeln!(
            out,
            "  a bare gRPC call measured alone in that run: {:.0} µs at p50{} (a boundary on a transfer's path costs more: see REPORT.md)",
            hop.p50_us,
            hop.cpu_us()
                .map_or(String::new(), |c| format!(", {c:.0} µs of CPU"))
        );
    }
    if s.secured {
        match model.secured {
            Some((us, cpu)) => {
                let _ = writeln!(
                    out,
                    "  mTLS and service tokens per boundary: {us:.0} µs{}",
                    cpu.map_or(String::new(), |c| format!(", {c:.0} µs of CPU"))
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "  mTLS and tokens: not measured in that run (left out)"
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "  your network: {:.0} µs round trip per boundary (loopback has none; this is yours, not measured)",
        s.rtt_us
    );
    let _ = writeln!(
        out,
        "  assumed: your requests cost what a transfer costs here (an edge, a saga of two calls, a journal), \
         latency adds up along the critical path, and CPU scales with the rate (no saturation)"
    );
    let _ = writeln!(
        out,
        "\nYour system ({} boundaries on the critical path, {} processes, {:.0} requests/s):",
        s.hops, s.processes, s.qps
    );
    let _ = writeln!(out, "  p50 ≈ {:.0} µs", p.p50_us);
    if let (Some(cpu), Some(cores)) = (p.cpu_us, p.cores) {
        let _ = writeln!(out, "  CPU ≈ {cpu:.0} µs per request, {cores:.2} cores");
    }
    if let Some(rss) = p.rss {
        let _ = writeln!(
            out,
            "  memory the extra processes add while idle ≈ {:.0} MiB",
            rss / 1048576.0
        );
    }
    if let Some(idle) = p.idle_cores {
        let _ = writeln!(
            out,
            "  CPU the extra processes use while idle ≈ {:.1} ms per second",
            idle * 1000.0
        );
    }
    let in_process = model.project(System {
        hops: 0,
        rtt_us: 0.0,
        processes: 1,
        ..s
    });
    let _ = writeln!(
        out,
        "  the same in one process: p50 ≈ {:.0} µs{}",
        in_process.p50_us,
        in_process
            .cores
            .map_or(String::new(), |c| format!(", {c:.2} cores"))
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_read_in_the_units_people_write() {
        assert_eq!(parse_rtt("200us"), Ok(200.0));
        assert_eq!(parse_rtt("0.2ms"), Ok(200.0));
        assert_eq!(parse_rtt("1s"), Ok(1e6));
        assert_eq!(parse_rtt("150"), Ok(150.0));
        assert!(parse_rtt("fast").is_err());
        assert!(parse_rtt("-1ms").is_err());
    }
}
