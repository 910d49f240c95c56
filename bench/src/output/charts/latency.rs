//! Latency charts: each fixed-rate scenario's percentile spectrum, and the
//! throughput–p99 curve of transfers.

use plotters::prelude::*;

use super::ChartResult;
use hdrhistogram::Histogram;

use super::{draw_lines, log_axis, nines};
use crate::output::micros;
use crate::record::histogram::decode_histogram;
use crate::record::{Raw, RunRecord, Scenario};

/// (variant, [(percentile, latency µs)]) with the floor last.
pub(super) fn spectrum_series(raw: &Raw, scenario: Scenario) -> Vec<(String, Vec<(f64, f64)>)> {
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
pub(super) fn curve_series(raw: &Raw) -> Vec<(String, Vec<(f64, f64)>)> {
    curve_series_of(&raw.runs)
}

/// (variant, [(achieved rate, p99 µs)]) of the curve steps in `runs`.
pub(crate) fn curve_series_of(runs: &[RunRecord]) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut out: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    // A step run again after the disk stalled is stood in for by its rerun.
    for run in runs.iter().filter(|r| r.curve && !r.rerun) {
        let point = (run.achieved_rate, run.p99_us.max(1.0));
        match out.iter_mut().find(|(n, _)| *n == run.variant) {
            Some((_, points)) => points.push(point),
            None => out.push((run.variant.clone(), vec![point])),
        }
    }
    out
}

pub(super) fn spectrum<DB: DrawingBackend>(
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

pub(super) fn throughput<DB: DrawingBackend>(
    area: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
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
        .caption(title, ("sans-serif", 24))
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
