//! Charts rendered headless with plotters, as SVG and PNG, from `raw.json`
//! alone: the latency percentile spectrum of each fixed-rate scenario
//! (both variants and the floor, repeats merged), and the throughput–p99
//! curve of transfers. Text uses a bundled DejaVu Sans (no system fonts).

use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use plotters::prelude::*;

use crate::report::{Raw, decode_histogram};
use crate::scenarios::Scenario;

const WIDTH: u32 = 1000;
const HEIGHT: u32 = 600;

fn register_font() {
    let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
}

fn color(variant: &str) -> RGBColor {
    match variant {
        "microlith" => RGBColor(31, 119, 180),
        "microservices" => RGBColor(214, 39, 40),
        _ => RGBColor(120, 120, 120),
    }
}

type ChartResult = Result<(), Box<dyn std::error::Error>>;

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
        let title = format!("{} latency by percentile (open loop, {} repeats merged)", scenario.name(), raw.profile.repeats);
        for (path, svg) in targets(dir, &name) {
            let result = if svg {
                spectrum(SVGBackend::new(&path, (WIDTH, HEIGHT)).into_drawing_area(), &title, &series)
            } else {
                spectrum(BitMapBackend::new(&path, (WIDTH, HEIGHT)).into_drawing_area(), &title, &series)
            };
            result.map_err(|e| anyhow::anyhow!("drawing {}: {e}", path.display()))?;
        }
        written.push(name);
    }
    let curve = curve_series(raw);
    if !curve.is_empty() {
        let name = "throughput-p99-transfer".to_owned();
        for (path, svg) in targets(dir, &name) {
            let result = if svg {
                throughput(SVGBackend::new(&path, (WIDTH, HEIGHT)).into_drawing_area(), &curve)
            } else {
                throughput(BitMapBackend::new(&path, (WIDTH, HEIGHT)).into_drawing_area(), &curve)
            };
            result.map_err(|e| anyhow::anyhow!("drawing {}: {e}", path.display()))?;
        }
        written.push(name);
    }
    Ok(written)
}

fn targets(dir: &Path, name: &str) -> [(PathBuf, bool); 2] {
    [(dir.join(format!("{name}.svg")), true), (dir.join(format!("{name}.png")), false)]
}

/// (variant, [(percentile, latency µs)]) with the floor last.
fn spectrum_series(raw: &Raw, scenario: Scenario) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut names: Vec<String> = raw.variants.iter().map(|v| v.name.clone()).collect();
    names.push("floor".into());
    let mut out = Vec::new();
    for name in names {
        let wanted = if name == "floor" { Scenario::Floor } else { scenario };
        let mut merged: Option<Histogram<u64>> = None;
        for run in raw.runs.iter().filter(|r| !r.curve && r.variant == name && r.scenario == wanted) {
            if let Some(h) = decode_histogram(&run.histogram) {
                match &mut merged {
                    Some(m) => {
                        let _ = m.add(&h);
                    }
                    None => merged = Some(h),
                }
            }
        }
        let Some(h) = merged.filter(|h| !h.is_empty()) else { continue };
        let points = [0.0, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999]
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

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, LogCoord<f64>>>;

/// Draws each variant's line with its points and the legend.
fn draw_lines<'a, DB: DrawingBackend + 'a>(chart: &mut Chart<'a, DB>, series: &[(String, Vec<(f64, f64)>)], x: impl Fn(f64) -> f64) -> ChartResult
where
    DB::ErrorType: 'static,
{
    for (name, points) in series {
        let c = color(name);
        chart
            .draw_series(LineSeries::new(points.iter().map(|(px, v)| (x(*px), *v)), c.stroke_width(3)))?
            .label(name.as_str())
            .legend(move |(lx, ly)| PathElement::new(vec![(lx, ly), (lx + 20, ly)], c.stroke_width(3)));
        chart.draw_series(points.iter().map(|(px, v)| Circle::new((x(*px), *v), 4, c.filled())))?;
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

/// The x position of a percentile on a "nines" axis: -log10(1 - p).
fn nines(percentile: f64) -> f64 {
    -(1.0 - percentile / 100.0).max(1e-6).log10()
}

fn spectrum<DB: DrawingBackend>(area: DrawingArea<DB, plotters::coord::Shift>, title: &str, series: &[(String, Vec<(f64, f64)>)]) -> ChartResult
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let max = series.iter().flat_map(|(_, p)| p.iter().map(|(_, v)| *v)).fold(1.0, f64::max);
    let min = series.iter().flat_map(|(_, p)| p.iter().map(|(_, v)| *v)).fold(max, f64::min).max(1.0);
    let mut chart = ChartBuilder::on(&area)
        .caption(title, ("sans-serif", 24))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..4.0, (min * 0.5..max * 1.5).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency from the scheduled send (µs, log)")
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

fn throughput<DB: DrawingBackend>(area: DrawingArea<DB, plotters::coord::Shift>, series: &[(String, Vec<(f64, f64)>)]) -> ChartResult
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let max_x = series.iter().flat_map(|(_, p)| p.iter().map(|(x, _)| *x)).fold(1.0, f64::max);
    let max_y = series.iter().flat_map(|(_, p)| p.iter().map(|(_, y)| *y)).fold(10.0, f64::max);
    let min_y = series.iter().flat_map(|(_, p)| p.iter().map(|(_, y)| *y)).fold(max_y, f64::min).max(1.0);
    let mut chart = ChartBuilder::on(&area)
        .caption("transfers: achieved throughput vs p99 latency", ("sans-serif", 24))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..max_x * 1.1, (min_y * 0.5..max_y * 1.5).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("achieved requests per second")
        .y_desc("p99 latency (µs, log)")
        .label_style(("sans-serif", 16))
        .draw()?;
    draw_lines(&mut chart, series, |x| x)?;
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
}
