//! A run's folder: `raw.json` (everything measured, histograms
//! included), `env.json`, `runs.csv`, `REPORT.md`, the charts and the
//! HdrHistogram logs, every file but the first rendered from it.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;

use hdrhistogram::serialization::V2Serializer;

use crate::record::histogram::decode_histogram;
use crate::record::{Outcome, Raw, Scenario, too_many_errors};

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
        raw.render_into(dir)
    }

    /// Renders `runs.csv`, `REPORT.md`, the charts and the HdrHistogram
    /// logs into `dir` from this record (read from its `raw.json`), leaving
    /// `raw.json` and `env.json` as they were recorded: `bench render`
    /// re-renders a stored run without rewriting its measurements (an
    /// older record would otherwise gain every field added since, and the
    /// saturation judged on reading).
    pub fn render_into(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::write(dir.join("runs.csv"), self.csv())?;
        std::fs::write(dir.join("REPORT.md"), crate::output::report::render(self))?;
        crate::output::charts::render(self, &dir.join("charts"))?;
        self.write_hdr_logs(&dir.join("hdr"))?;
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
            let outcomes: Vec<(Outcome, u64)> = r
                .outcomes
                .iter()
                .filter_map(|(name, n)| Some((Outcome::of_name(name)?, *n)))
                .collect();
            r.saturated |= too_many_errors(&outcomes);
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
}
