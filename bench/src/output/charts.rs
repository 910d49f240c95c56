//! Charts rendered headless with plotters, as SVG and PNG, from `raw.json`
//! alone: the latency percentile spectrum of each fixed-rate scenario
//! (both variants and the floor, repeats merged), and the throughput–p99
//! curve of transfers, the fan-out's delivery CDF, and a timeline of each
//! kind of fault (both variants in one chart). Text uses a bundled DejaVu Sans (no system fonts).

use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use plotters::coord::combinators::WithKeyPoints;
use plotters::prelude::*;

use crate::output::micros;
use crate::record::histogram::decode_histogram;
use crate::record::{FaultRecord, Raw, Scenario};

const WIDTH: u32 = 1000;
const HEIGHT: u32 = 600;

/// The bundled font, for the charts (see [`bench_support::register_font`]).
pub fn register_font() {
    bench_support::register_font();
}

fn color(variant: &str) -> RGBColor {
    match variant {
        "microlith" => RGBColor(31, 119, 180),
        "microservices" => RGBColor(214, 39, 40),
        _ => RGBColor(120, 120, 120),
    }
}

type ChartResult = Result<(), Box<dyn std::error::Error>>;

/// Draws `$draw(area, args…)` into `<dir>/<name>.svg` and `.png`.
macro_rules! both {
    ($dir:expr, $name:expr, $draw:ident ( $($arg:expr),* )) => {{
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
        .filter(|(scenario, _)| !spectrum_series(raw, *scenario).is_empty())
        .map(|(scenario, _)| format!("spectrum-{}", scenario.name()))
        .collect();
    if !curve_series(raw).is_empty() {
        names.push("throughput-p99-transfer".into());
    }
    if !crate::output::report::breakdown::rows(raw).is_empty() {
        names.push("time-breakdown".into());
    }
    if !fanout_series(raw).is_empty() {
        names.push("fanout-cdf".into());
    }
    if !cost_bars(raw).is_empty() {
        names.push("cost-bars".into());
    }
    names.extend(fault_kinds(raw).into_iter().map(|k| format!("fault-{k}")));
    names
}

/// Writes every chart into `dir` (as `<name>.svg` and `<name>.png`) and
/// returns their names.
pub fn render(raw: &Raw, dir: &Path) -> anyhow::Result<Vec<String>> {
    register_font();
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (scenario, _) in raw.profile.scenarios() {
        let series = spectrum_series(raw, scenario);
        if series.is_empty() {
            continue;
        }
        let name = format!("spectrum-{}", scenario.name());
        let title = format!(
            "{} latency by percentile (open loop, {} repeats merged)",
            scenario.name(),
            raw.profile.repeats
        );
        both!(dir, &name, spectrum(&title, &series));
        written.push(name);
    }
    let curve = curve_series(raw);
    if !curve.is_empty() {
        let name = "throughput-p99-transfer".to_owned();
        both!(dir, &name, throughput(&curve));
        written.push(name);
    }
    let rows = crate::output::report::breakdown::rows(raw);
    if !rows.is_empty() {
        let name = "time-breakdown".to_owned();
        both!(dir, &name, time_breakdown(&rows));
        written.push(name);
    }
    let cdf = fanout_series(raw);
    if !cdf.is_empty() {
        let name = "fanout-cdf".to_owned();
        let f0 = &raw.fanout[0];
        let title = format!(
            "chat fan-out: delivery latency to {} WebSocket subscribers at {:.0} posts/s",
            f0.subscribers, f0.rate
        );
        both!(dir, &name, fanout_cdf(&title, &cdf));
        written.push(name);
    }
    let bars = cost_bars(raw);
    if !bars.is_empty() {
        let name = "cost-bars".to_owned();
        both!(dir, &name, cost_chart(&bars));
        written.push(name);
    }
    for kind in fault_kinds(raw) {
        let name = format!("fault-{kind}");
        let faults: Vec<&FaultRecord> = raw.faults.iter().filter(|f| f.kind == kind).collect();
        both!(dir, &name, timeline(&kind, &faults));
        written.push(name);
    }
    Ok(written)
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

/// One panel of the cost bars: its title and each variant's value.
type CostPanel = (String, Vec<(String, f64)>);

/// The costs measured for both variants, one panel each.
fn cost_bars(raw: &Raw) -> Vec<CostPanel> {
    let names = ["microlith", "microservices"];
    let variant = |n: &str| raw.variants.iter().find(|v| v.name == n);
    let mut panels: Vec<CostPanel> = Vec::new();
    let mut panel = |title: &str, value: &dyn Fn(&str) -> Option<f64>| {
        let values: Option<Vec<(String, f64)>> = names
            .iter()
            .map(|n| value(n).map(|v| ((*n).to_owned(), v)))
            .collect();
        if let Some(values) = values {
            panels.push((title.to_owned(), values));
        }
    };
    panel("processes", &|n| variant(n).map(|v| v.processes as f64));
    panel("start to ready (ms)", &|n| {
        variant(n).and_then(|v| v.start_to_ready_ms)
    });
    panel("RSS idle (MiB)", &|n| {
        variant(n)
            .and_then(|v| v.rss_idle_bytes)
            .map(|b| b as f64 / 1048576.0)
    });
    panel("CPU per transfer (µs)", &|n| {
        raw.cpu_per_request(n, crate::record::Scenario::Transfer)
            .or_else(|| {
                variant(n)
                    .and_then(|v| v.cpu_ms_per_request)
                    .map(|ms| ms * 1000.0)
            })
    });
    if let Some(cost) = &raw.cost {
        panel("fabric-only lines", &|n| {
            Some(
                cost.code
                    .iter()
                    .filter(|c| c.variant == n && !c.area.starts_with("tests"))
                    .map(|c| c.code as f64)
                    .sum(),
            )
        });
        panel("release binary (MiB)", &|n| {
            cost.builds
                .iter()
                .find(|b| b.variant == n)
                .map(|b| b.binary_bytes as f64 / 1048576.0)
        });
    }
    panels
}

fn cost_chart<DB: DrawingBackend>(
    area: DrawingArea<DB, plotters::coord::Shift>,
    panels: &[CostPanel],
) -> ChartResult
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let area = area.titled(
        "what each variant costs to run and to own (measured in this run)",
        ("sans-serif", 22),
    )?;
    let cells = area.split_evenly((1, panels.len().max(1)));
    for (cell, (title, values)) in cells.iter().zip(panels) {
        let max = values.iter().map(|(_, v)| *v).fold(0.0, f64::max).max(1e-9);
        let mut chart = ChartBuilder::on(cell)
            .caption(title, ("sans-serif", 15))
            .margin(12)
            .x_label_area_size(25)
            .y_label_area_size(45)
            .build_cartesian_2d(0.0..values.len() as f64, 0.0..max * 1.2)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_labels(5)
            .y_label_formatter(&|v: &f64| {
                if *v >= 100.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.1}")
                }
            })
            .label_style(("sans-serif", 12))
            .draw()?;
        for (i, (name, value)) in values.iter().enumerate() {
            let c = color(name);
            let x = i as f64;
            chart.draw_series([Rectangle::new(
                [(x + 0.15, 0.0), (x + 0.85, *value)],
                c.filled(),
            )])?;
            let label = if *value >= 100.0 {
                format!("{value:.0}")
            } else {
                format!("{value:.1}")
            };
            chart.draw_series([Text::new(
                label,
                (x + 0.2, *value + max * 0.03),
                ("sans-serif", 13),
            )])?;
            chart.draw_series([Text::new(
                name.chars().take(12).collect::<String>(),
                (x + 0.12, -max * 0.02),
                ("sans-serif", 11),
            )])?;
        }
    }
    area.present()?;
    Ok(())
}

/// (variant, [(delivery latency µs, fraction delivered by then)]).
fn fanout_series(raw: &Raw) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut out: Vec<(String, Histogram<u64>)> = Vec::new();
    for f in &raw.fanout {
        let Some(h) = decode_histogram(&f.histogram) else {
            continue;
        };
        match out.iter_mut().find(|(n, _)| *n == f.variant) {
            Some((_, m)) => {
                let _ = m.add(&h);
            }
            None => out.push((f.variant.clone(), h)),
        }
    }
    out.into_iter()
        .filter(|(_, h)| !h.is_empty())
        .map(|(name, h)| {
            let mut qs: Vec<f64> = (0..=99).map(|i| f64::from(i) / 100.0).collect();
            qs.extend([0.995, 0.999, 0.9999, 1.0]);
            let points = qs
                .iter()
                .map(|q| ((h.value_at_quantile(*q) as f64 / 1000.0).max(1.0), *q))
                .collect();
            (name, points)
        })
        .collect()
}

fn targets(dir: &Path, name: &str) -> [(PathBuf, bool); 2] {
    [
        (dir.join(format!("{name}.svg")), true),
        (dir.join(format!("{name}.png")), false),
    ]
}

/// (variant, [(percentile, latency µs)]) with the floor last.
fn spectrum_series(raw: &Raw, scenario: Scenario) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut names: Vec<String> = raw.variants.iter().map(|v| v.name.clone()).collect();
    names.push("floor".into());
    let mut out = Vec::new();
    for name in names {
        let wanted = if name == "floor" {
            Scenario::Floor
        } else {
            scenario
        };
        let mut merged: Option<Histogram<u64>> = None;
        for run in raw
            .runs
            .iter()
            .filter(|r| !r.curve && r.variant == name && r.scenario == wanted)
        {
            if let Some(h) = decode_histogram(&run.histogram) {
                match &mut merged {
                    Some(m) => {
                        let _ = m.add(&h);
                    }
                    None => merged = Some(h),
                }
            }
        }
        let Some(h) = merged.filter(|h| !h.is_empty()) else {
            continue;
        };
        let points = [
            0.0, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999,
        ]
        .iter()
        .map(|q| (*q * 100.0, h.value_at_quantile(*q) as f64 / 1000.0))
        .collect();
        out.push((name, points));
    }
    out
}

/// (variant, [(achieved rate, p99 µs)]).
fn curve_series(raw: &Raw) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut out: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for run in raw.runs.iter().filter(|r| r.curve) {
        let point = (run.achieved_rate, run.p99_us.max(1.0));
        match out.iter_mut().find(|(n, _)| *n == run.variant) {
            Some((_, points)) => points.push(point),
            None => out.push((run.variant.clone(), vec![point])),
        }
    }
    out
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

fn spectrum<DB: DrawingBackend>(
    area: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> ChartResult
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let max = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, v)| *v))
        .fold(1.0, f64::max);
    let min = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, v)| *v))
        .fold(max, f64::min)
        .max(1.0);
    let mut chart = ChartBuilder::on(&area)
        .caption(title, ("sans-serif", 24))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..4.0, log_axis(min * 0.5, max * 1.5))?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency from the scheduled send (log)")
        .y_label_formatter(&|v: &f64| micros(*v))
        .x_label_formatter(&|x: &f64| match x.round() as i32 {
            0 => "0".into(),
            1 => "90".into(),
            2 => "99".into(),
            3 => "99.9".into(),
            _ => "99.99".into(),
        })
        .x_labels(5)
        .label_style(("sans-serif", 16))
        .draw()?;
    draw_lines(&mut chart, series, nines)?;
    area.present()?;
    Ok(())
}

fn throughput<DB: DrawingBackend>(
    area: DrawingArea<DB, plotters::coord::Shift>,
    series: &[(String, Vec<(f64, f64)>)],
) -> ChartResult
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let max_x = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(x, _)| *x))
        .fold(1.0, f64::max);
    let max_y = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
        .fold(10.0, f64::max);
    let min_y = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
        .fold(max_y, f64::min)
        .max(1.0);
    let mut chart = ChartBuilder::on(&area)
        .caption(
            "transfers: achieved throughput vs p99 latency",
            ("sans-serif", 24),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..max_x * 1.1, log_axis(min_y * 0.5, max_y * 1.5))?;
    chart
        .configure_mesh()
        .x_desc("achieved requests per second")
        .y_desc("p99 latency (log)")
        .y_label_formatter(&|v: &f64| micros(*v))
        .x_label_formatter(&|v: &f64| format!("{v:.0}"))
        .label_style(("sans-serif", 16))
        .draw()?;
    draw_lines(&mut chart, series, |x| x)?;
    area.present()?;
    Ok(())
}

/// The parts of a typical request, stacked, one panel per scenario, one
/// bar per variant; a black tick at the measured p50, a dashed one at the
/// hop budget.
fn time_breakdown<DB: DrawingBackend>(
    area: DrawingArea<DB, plotters::coord::Shift>,
    rows: &[crate::output::report::breakdown::Row],
) -> ChartResult
where
    DB::ErrorType: 'static,
{
    const PARTS: [(&str, RGBColor); 5] = [
        ("generator lag", RGBColor(200, 200, 200)),
        ("outside the edge", RGBColor(150, 150, 150)),
        ("edge", RGBColor(44, 160, 44)),
        ("hops", RGBColor(255, 127, 14)),
        ("handlers", RGBColor(148, 103, 189)),
    ];
    area.fill(&WHITE)?;
    let area = area.titled(
        "where a typical request's time goes (sampled requests around the median)",
        ("sans-serif", 22),
    )?;
    let mut scenarios: Vec<Scenario> = Vec::new();
    for r in rows {
        if !scenarios.contains(&r.scenario) {
            scenarios.push(r.scenario);
        }
    }
    let (panels, legend) = area.split_vertically(area.dim_in_pixel().1.saturating_sub(40));
    let cells = panels.split_evenly((scenarios.len().max(1), 1));
    for (cell, scenario) in cells.iter().zip(&scenarios) {
        let of: Vec<&crate::output::report::breakdown::Row> =
            rows.iter().filter(|r| r.scenario == *scenario).collect();
        let max = of
            .iter()
            .map(|r| {
                (r.parts.total_us() + r.send_lag_us)
                    .max(r.p50_us)
                    .max(r.budget_us)
            })
            .fold(1.0, f64::max);
        let names: Vec<String> = of.iter().map(|r| r.variant.clone()).collect();
        let mut chart = ChartBuilder::on(cell)
            .caption(scenario.name(), ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(22)
            .y_label_area_size(110)
            .build_cartesian_2d(0.0..max * 1.08, 0.0..of.len() as f64)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(of.len() * 2 + 1)
            .y_label_formatter(&|y: &f64| {
                let i = (*y - 0.5).round();
                if (*y - 0.5 - i).abs() < 1e-6 && i >= 0.0 {
                    names.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .x_label_formatter(&|v: &f64| micros(*v))
            .light_line_style(WHITE)
            .label_style(("sans-serif", 12))
            .draw()?;
        for (i, r) in of.iter().enumerate() {
            let y = i as f64;
            let b = &r.parts;
            let mut x = 0.0;
            for ((_, colour), value) in PARTS.iter().zip([
                r.send_lag_us,
                b.outside_us,
                b.edge_us,
                b.hops_us,
                b.handlers_us,
            ]) {
                chart.draw_series([Rectangle::new(
                    [(x, y + 0.2), (x + value, y + 0.8)],
                    colour.filled(),
                )])?;
                x += value;
            }
            chart.draw_series([Rectangle::new(
                [(r.p50_us, y + 0.1), (r.p50_us + max * 0.004, y + 0.9)],
                BLACK.filled(),
            )])?;
            chart.draw_series(DashedLineSeries::new(
                [(r.budget_us, y + 0.1), (r.budget_us, y + 0.9)],
                4,
                3,
                BLACK.stroke_width(2),
            ))?;
            chart.draw_series([Text::new(
                format!("p50 {}", micros(r.p50_us)),
                (r.p50_us + max * 0.01, y + 0.15),
                ("sans-serif", 12),
            )])?;
        }
    }
    let mut x = 20;
    for (name, colour) in PARTS {
        legend.draw(&Rectangle::new([(x, 12), (x + 16, 28)], colour.filled()))?;
        legend.draw(&Text::new(name, (x + 22, 13), ("sans-serif", 14)))?;
        x += 40 + 8 * name.len() as i32;
    }
    legend.draw(&Text::new(
        "▮ p50   ┆ hop budget",
        (x, 13),
        ("sans-serif", 14),
    ))?;
    area.present()?;
    Ok(())
}

fn fanout_cdf<DB: DrawingBackend>(
    area: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> ChartResult
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let max = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(x, _)| *x))
        .fold(10.0, f64::max);
    let min = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(x, _)| *x))
        .fold(max, f64::min)
        .max(1.0);
    let mut chart = ChartBuilder::on(&area)
        .caption(title, ("sans-serif", 22))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(log_axis(min * 0.8, max * 1.25), 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc("from the scheduled post to the frame read (log)")
        .y_desc("share of deliveries")
        .x_label_formatter(&|v: &f64| micros(*v))
        .x_labels(8)
        .label_style(("sans-serif", 16))
        .draw()?;
    for (name, points) in series {
        let c = color(name);
        chart
            .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(3)))?
            .label(name.as_str())
            .legend(move |(lx, ly)| {
                PathElement::new(vec![(lx, ly), (lx + 20, ly)], c.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font(("sans-serif", 18))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    area.present()?;
    Ok(())
}

/// How many of a fault run's buckets cover its sending window: the
/// answers that come in after the last request was sent fill a partial
/// bucket past it, which would read as a drop at the end of the chart.
fn sending_window(f: &FaultRecord) -> usize {
    let sent = (f.ok + f.failed) as f64;
    let window =
        (sent / f.rate.max(1e-9) / (f.bucket_ms as f64 / 1000.0).max(1e-9)).round() as usize;
    f.timeline.len().min(window.max(1))
}

/// Two panels over the run's time: answers per second (ok solid, failed
/// dashed) and the worst latency of each 100 ms bucket; the fault is the
/// vertical line.
fn timeline<DB: DrawingBackend>(
    area: DrawingArea<DB, plotters::coord::Shift>,
    kind: &str,
    faults: &[&FaultRecord],
) -> ChartResult
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let (top, bottom) = area.split_vertically(HEIGHT / 2 + 20);
    let bucket_s = |f: &FaultRecord| f.bucket_ms as f64 / 1000.0;
    let shown = sending_window;
    let span = faults
        .iter()
        .map(|f| shown(f) as f64 * bucket_s(f))
        .fold(1.0, f64::max);
    let per_s = |f: &FaultRecord, n: u64| n as f64 / bucket_s(f).max(1e-9);
    let max_rate = faults
        .iter()
        .flat_map(|f| {
            f.timeline[..shown(f)]
                .iter()
                .map(move |b| per_s(f, b.ok.max(b.failed)))
        })
        .fold(10.0, f64::max);
    let load = if faults.iter().any(|f| f.scenario == Scenario::Post) {
        "posts"
    } else {
        "transfers"
    };
    let mut rates = ChartBuilder::on(&top)
        .caption(
            format!("fault `{kind}` under load: {load} answered per second"),
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(30)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..span, 0.0..max_rate * 1.15)?;
    rates
        .configure_mesh()
        .y_desc("answers/s (failed dashed)")
        .y_label_formatter(&|v: &f64| format!("{v:.0}"))
        .label_style(("sans-serif", 14))
        .draw()?;
    for f in faults {
        let c = color(&f.variant);
        let w = bucket_s(f);
        let ok: Vec<(f64, f64)> = f.timeline[..shown(f)]
            .iter()
            .enumerate()
            .map(|(i, b)| ((i as f64 + 0.5) * w, per_s(f, b.ok)))
            .collect();
        rates
            .draw_series(LineSeries::new(ok, c.stroke_width(2)))?
            .label(format!("{}: {}", f.variant, f.fault))
            .legend(move |(lx, ly)| {
                PathElement::new(vec![(lx, ly), (lx + 20, ly)], c.stroke_width(3))
            });
        let failed: Vec<(f64, f64)> = f.timeline[..shown(f)]
            .iter()
            .enumerate()
            .map(|(i, b)| ((i as f64 + 0.5) * w, per_s(f, b.failed)))
            .collect();
        rates.draw_series(DashedLineSeries::new(failed, 6, 4, c.stroke_width(2)))?;
        rates.draw_series(DashedLineSeries::new(
            [(f.injected_at_s, 0.0), (f.injected_at_s, max_rate * 1.15)],
            3,
            3,
            BLACK.stroke_width(1),
        ))?;
    }
    rates
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    let max_ms = faults
        .iter()
        .flat_map(|f| {
            f.timeline[..shown(f)]
                .iter()
                .map(|b| b.max_latency_ns as f64 / 1e6)
        })
        .fold(1.0, f64::max);
    let mut latency = ChartBuilder::on(&bottom)
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..span, log_axis(0.1, max_ms * 2.0))?;
    latency
        .configure_mesh()
        .x_desc("seconds from the start of the run (fault at the dashed line)")
        .y_desc("worst latency per 100 ms (log)")
        .y_label_formatter(&|v: &f64| micros(v * 1000.0))
        .label_style(("sans-serif", 14))
        .draw()?;
    for f in faults {
        let c = color(&f.variant);
        let w = bucket_s(f);
        // One line per stretch of buckets with answers: a gap (nothing
        // answered) stays a gap instead of a line across it.
        let mut stretches: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (i, b) in f.timeline[..shown(f)].iter().enumerate() {
            if b.max_latency_ns == 0 {
                if stretches.last().is_some_and(|s| !s.is_empty()) {
                    stretches.push(Vec::new());
                }
                continue;
            }
            if let Some(stretch) = stretches.last_mut() {
                stretch.push((
                    (i as f64 + 0.5) * w,
                    (b.max_latency_ns as f64 / 1e6).max(0.1),
                ));
            }
        }
        for stretch in stretches {
            latency.draw_series(stretch.iter().map(|p| Circle::new(*p, 2, c.filled())))?;
            latency.draw_series(LineSeries::new(stretch, c.stroke_width(2)))?;
        }
        latency.draw_series(DashedLineSeries::new(
            [(f.injected_at_s, 0.1), (f.injected_at_s, max_ms * 2.0)],
            3,
            3,
            BLACK.stroke_width(1),
        ))?;
    }
    area.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn nines_axis() {
        assert!((super::nines(90.0) - 1.0).abs() < 1e-9);
        assert!((super::nines(99.9) - 3.0).abs() < 1e-9);
        assert_eq!(super::nines(0.0), 0.0);
    }

    #[test]
    fn axis_labels_carry_their_unit() {
        assert_eq!(super::micros(250.0), "250 µs");
        assert_eq!(super::micros(1500.0), "1.5 ms");
        assert_eq!(super::micros(20_000.0), "20 ms");
        assert_eq!(super::micros(2_500_000.0), "2.5 s");
    }

    #[test]
    fn a_fault_timeline_is_drawn_over_its_sending_window_only() {
        // 6 s at 300/s in 100 ms buckets: 60 buckets, and a 61st holding
        // the last answers, which came in after the sending stopped.
        let bucket = crate::record::Bucket {
            ok: 30,
            failed: 0,
            max_latency_ns: 1_000_000,
        };
        let mut timeline = vec![bucket; 60];
        timeline.push(crate::record::Bucket {
            ok: 1,
            failed: 0,
            max_latency_ns: 1_000_000,
        });
        let mut f = crate::record::FaultRecord {
            variant: "microlith".into(),
            kind: "crash".into(),
            scenario: crate::record::Scenario::Transfer,
            fault: "f".into(),
            rate: 300.0,
            bucket_ms: 100,
            injected_at_s: 1.8,
            first_failure_s: None,
            impact_s: 0.0,
            failed: 0,
            ok: 1801,
            timeline,
            audit: None,
            outcomes: Vec::new(),
            unfinished: 0,
        };
        assert_eq!(super::sending_window(&f), 60);
        // A run cut short keeps what it has.
        f.timeline.truncate(20);
        assert_eq!(super::sending_window(&f), 20);
    }
}
