//! Charts rendered headless with plotters, as SVG and PNG, from `raw.json`
//! alone: the latency percentile spectrum of each fixed-rate scenario
//! (both variants and the floor, repeats merged), and the throughput–p99
//! curve of transfers, the fan-out's delivery CDF, and a timeline of each
//! kind of fault (both variants in one chart). Text uses a bundled DejaVu Sans (no system fonts).

use std::path::{Path, PathBuf};

use plotters::coord::combinators::WithKeyPoints;
use plotters::prelude::*;

mod breakdown;
mod continuum;
mod cost;
mod fanout;
mod latency;
#[cfg(test)]
pub(crate) use latency::curve_series_of;
mod soak;
mod timeline;

use crate::record::{FaultRecord, Raw};

const WIDTH: u32 = 1000;
const HEIGHT: u32 = 600;

/// The bundled font, for the charts (see [`bench_support::register_font`]).
pub fn register_font() {
    bench_support::register_font();
}

fn color(variant: &str) -> RGBColor {
    // A variant's refusals (the overload chart): its colour, paler.
    if let Some(base) = variant.strip_suffix(" refused") {
        let RGBColor(r, g, b) = color(base);
        let pale = |c: u8| c + (255 - c) / 2;
        return RGBColor(pale(r), pale(g), pale(b));
    }
    match variant {
        "monolith" => RGBColor(44, 160, 44),
        "microlith" => RGBColor(31, 119, 180),
        "microservices" => RGBColor(214, 39, 40),
        // The microservices placed in fewer processes: oranges.
        placed if placed.starts_with("microservices@") => RGBColor(255, 127, 14),
        _ => RGBColor(120, 120, 120),
    }
}

type ChartResult = Result<(), Box<dyn std::error::Error>>;

/// Draws `$draw(area, args…)` into `<dir>/<name>.svg` and `.png`.
macro_rules! both {
    ($dir:expr, $name:expr, $draw:path, ( $($arg:expr),* )) => {{
        for (path, svg) in targets($dir, $name) {
            let result = if svg {
                $draw(SVGBackend::new(&path, (WIDTH, HEIGHT)).into_drawing_area(), $($arg),*)
            } else {
                $draw(BitMapBackend::new(&path, (WIDTH, HEIGHT)).into_drawing_area(), $($arg),*)
            };
            result.map_err(|e| anyhow::anyhow!("drawing {}: {e}", path.display()))?;
        }
    }};
}

/// The charts `raw` makes, by name (what [`render`] writes).
pub fn names(raw: &Raw) -> Vec<String> {
    let mut names: Vec<String> = raw
        .profile
        .scenarios()
        .into_iter()
        .filter(|(scenario, _)| !latency::spectrum_series(raw, *scenario).is_empty())
        .map(|(scenario, _)| format!("spectrum-{}", scenario.name()))
        .collect();
    if !latency::curve_series(raw).is_empty() {
        names.push("throughput-p99-transfer".into());
    }
    if !latency::curve_series_of(&raw.durable_runs).is_empty() {
        names.push(DURABLE_CURVE.into());
    }
    if !soak::series(raw, |s| s.p99_us).is_empty() {
        names.extend(SOAK.map(Into::into));
    }
    if !raw.overload.is_empty() {
        names.extend(OVERLOAD.map(Into::into));
    }
    if has_continuum(raw) {
        names.push("continuum".into());
    }
    if !crate::output::report::breakdown::rows(raw).is_empty() {
        names.push("time-breakdown".into());
    }
    if !fanout::fanout_series(raw).is_empty() {
        names.push("fanout-cdf".into());
    }
    if !cost::cost_bars(raw).is_empty() {
        names.push("cost-bars".into());
    }
    names.extend(fault_kinds(raw).into_iter().map(|k| format!("fault-{k}")));
    names
}

/// The transfer curve on durable storage.
const DURABLE_CURVE: &str = "throughput-p99-transfer-durable";
/// The soak's charts: resident memory, p99.
const SOAK: [&str; 2] = ["soak-rss", "soak-p99"];
/// The overload part's charts: answers per second by kind, p99.
const OVERLOAD: [&str; 2] = ["overload-goodput", "overload-p99"];

/// Writes every chart into `dir` (as `<name>.svg` and `<name>.png`) and
/// returns their names.
pub fn render(raw: &Raw, dir: &Path) -> anyhow::Result<Vec<String>> {
    register_font();
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (scenario, _) in raw.profile.scenarios() {
        let series = latency::spectrum_series(raw, scenario);
        if series.is_empty() {
            continue;
        }
        let name = format!("spectrum-{}", scenario.name());
        let title = format!(
            "{} latency by percentile (open loop, {} repeats merged)",
            scenario.name(),
            raw.profile.repeats
        );
        both!(dir, &name, latency::spectrum, (&title, &series));
        written.push(name);
    }
    let curve = latency::curve_series(raw);
    if !curve.is_empty() {
        let name = "throughput-p99-transfer".to_owned();
        let title = "transfers: achieved throughput vs p99 latency";
        both!(dir, &name, latency::throughput, (title, &curve));
        written.push(name);
    }
    let durable = latency::curve_series_of(&raw.durable_runs);
    if !durable.is_empty() {
        let title = "transfers on durable storage: achieved throughput vs p99 latency";
        both!(dir, DURABLE_CURVE, latency::throughput, (title, &durable));
        written.push(DURABLE_CURVE.to_owned());
    }
    let rss = soak::series(raw, |s| s.rss_bytes as f64 / 1048576.0);
    if !rss.is_empty() {
        let [rss_name, p99_name] = SOAK;
        let mib: fn(f64) -> String = |v| format!("{v:.0} MiB");
        let title = "soak, durable, half the durable knee: resident memory";
        both!(dir, rss_name, soak::soak, (title, "RSS (log)", mib, &rss));
        let p99 = soak::series(raw, |s| s.p99_us);
        let title = "soak, durable, half the durable knee: p99 latency per window";
        let us: fn(f64) -> String = crate::output::micros;
        both!(
            dir,
            p99_name,
            soak::soak,
            (title, "p99 latency (log)", us, &p99)
        );
        written.extend(SOAK.map(Into::into));
    }
    if !raw.overload.is_empty() {
        let [goodput_name, p99_name] = OVERLOAD;
        let per_s: fn(f64) -> String = |v| format!("{v:.0}/s");
        let mut answers = soak::overload_series(raw, |b, w| Some(b.ok as f64 / w));
        for (variant, points) in
            soak::overload_series(raw, |b, w| (b.shed > 0).then(|| b.shed as f64 / w))
        {
            answers.push((format!("{variant} refused"), points));
        }
        let title = "overload: half the knee, twice the knee, half again: answers per second";
        both!(
            dir,
            goodput_name,
            soak::over_time,
            (title, "answers/s (log)", per_s, &answers, "the run")
        );
        let p99 = soak::overload_series(raw, |b, _| (b.ok > 0).then_some(b.ok_p99_us));
        let title = "overload: p99 of successful answers per 100 ms (from the schedule)";
        let us: fn(f64) -> String = crate::output::micros;
        both!(
            dir,
            p99_name,
            soak::over_time,
            (title, "p99 latency (log)", us, &p99, "the run")
        );
        written.extend(OVERLOAD.map(Into::into));
    }
    if has_continuum(raw) {
        let name = "continuum".to_owned();
        let title = format!(
            "from one process to split: transfers at {:.0}/s (filled p50, ring p99)",
            raw.profile.transfer_rate
        );
        both!(dir, &name, continuum::continuum, (&title, &raw.continuum()));
        written.push(name);
    }
    let rows = crate::output::report::breakdown::rows(raw);
    if !rows.is_empty() {
        let name = "time-breakdown".to_owned();
        both!(dir, &name, breakdown::time_breakdown, (&rows));
        written.push(name);
    }
    let cdf = fanout::fanout_series(raw);
    if !cdf.is_empty() {
        let name = "fanout-cdf".to_owned();
        let f0 = &raw.fanout[0];
        let title = format!(
            "chat fan-out: delivery latency to {} WebSocket subscribers at {:.0} posts/s",
            f0.subscribers, f0.rate
        );
        both!(dir, &name, fanout::fanout_cdf, (&title, &cdf));
        written.push(name);
    }
    let bars = cost::cost_bars(raw);
    if !bars.is_empty() {
        let name = "cost-bars".to_owned();
        both!(dir, &name, cost::cost_chart, (&bars));
        written.push(name);
    }
    for kind in fault_kinds(raw) {
        let name = format!("fault-{kind}");
        let faults: Vec<&FaultRecord> = raw.faults.iter().filter(|f| f.kind == kind).collect();
        both!(dir, &name, timeline::timeline, (&kind, &faults));
        written.push(name);
    }
    Ok(written)
}

/// Whether the run measured placements of the microservices.
pub(crate) fn has_continuum(raw: &Raw) -> bool {
    raw.variants.iter().any(|v| v.placement.is_some()) && raw.continuum().len() > 1
}

/// The kinds of fault in `raw`, in run order.
fn fault_kinds(raw: &Raw) -> Vec<String> {
    let mut kinds: Vec<String> = Vec::new();
    for f in &raw.faults {
        if !f.kind.is_empty() && !kinds.contains(&f.kind) {
            kinds.push(f.kind.clone());
        }
    }
    kinds
}

fn targets(dir: &Path, name: &str) -> [(PathBuf, bool); 2] {
    [
        (dir.join(format!("{name}.svg")), true),
        (dir.join(format!("{name}.png")), false),
    ]
}

type Chart<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<plotters::coord::types::RangedCoordf64, WithKeyPoints<LogCoord<f64>>>,
>;

/// Draws each variant's line with its points and the legend.
fn draw_lines<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    series: &[(String, Vec<(f64, f64)>)],
    x: impl Fn(f64) -> f64,
) -> ChartResult
where
    DB::ErrorType: 'static,
{
    for (name, points) in series {
        let c = color(name);
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|(px, v)| (x(*px), *v)),
                c.stroke_width(3),
            ))?
            .label(name.as_str())
            .legend(move |(lx, ly)| {
                PathElement::new(vec![(lx, ly), (lx + 20, ly)], c.stroke_width(3))
            });
        chart.draw_series(
            points
                .iter()
                .map(|(px, v)| Circle::new((x(*px), *v), 4, c.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 18))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// A log axis from `lo` to `hi` labelled at 1-2-5 steps.
fn log_axis(lo: f64, hi: f64) -> WithKeyPoints<LogCoord<f64>> {
    let mut keys = Vec::new();
    let mut decade = 10f64.powf(lo.max(1e-9).log10().floor());
    while decade <= hi {
        for m in [1.0, 2.0, 5.0] {
            let v = decade * m;
            if v >= lo && v <= hi {
                keys.push(v);
            }
        }
        decade *= 10.0;
    }
    (lo..hi).log_scale().with_key_points(keys)
}

/// The x position of a percentile on a "nines" axis: -log10(1 - p).
fn nines(percentile: f64) -> f64 {
    -(1.0 - percentile / 100.0).max(1e-6).log10()
}

#[cfg(test)]
mod tests {
    #[test]
    fn nines_axis() {
        assert!((super::nines(90.0) - 1.0).abs() < 1e-9);
        assert!((super::nines(99.9) - 3.0).abs() < 1e-9);
        assert_eq!(super::nines(0.0), 0.0);
    }
}
