//! The soak: each variant's resident memory and p99 over the soak.

use plotters::prelude::*;

use super::{ChartResult, draw_lines, log_axis};
use crate::record::{Raw, SoakSample};

/// (variant, [(seconds, value)]) of every soak, `pick` reading a sample.
pub(super) fn series(
    raw: &Raw,
    pick: impl Fn(&SoakSample) -> f64,
) -> Vec<(String, Vec<(f64, f64)>)> {
    raw.soak
        .iter()
        .filter(|s| !s.samples.is_empty())
        .map(|s| {
            (
                s.variant.clone(),
                s.samples
                    .iter()
                    .map(|x| (x.t_s, pick(x).max(1e-3)))
                    .collect(),
            )
        })
        .collect()
}

/// A line per variant over the soak (in minutes, or seconds for a soak
/// under two minutes), on a log axis labelled by `label`.
pub(super) fn soak<DB: DrawingBackend>(
    area: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    y_desc: &str,
    label: fn(f64) -> String,
    series: &[(String, Vec<(f64, f64)>)],
) -> ChartResult
where
    DB::ErrorType: 'static,
{
    over_time(area, title, y_desc, label, series, "the soak")
}

/// A line per variant over `what` (in minutes, or seconds when it lasts
/// under two minutes), on a log axis labelled by `label`.
pub(super) fn over_time<DB: DrawingBackend>(
    area: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    y_desc: &str,
    label: fn(f64) -> String,
    series: &[(String, Vec<(f64, f64)>)],
    what: &str,
) -> ChartResult
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let values = || series.iter().flat_map(|(_, p)| p.iter().map(|(_, v)| *v));
    let max_y = values().fold(1e-3, f64::max);
    let min_y = values().fold(max_y, f64::min);
    let max_s = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(x, _)| *x))
        .fold(1e-3, f64::max);
    let (per, x_desc) = if max_s < 120.0 {
        (1.0, format!("seconds into {what}"))
    } else {
        (60.0, format!("minutes into {what}"))
    };
    let max_x = max_s / per;
    let mut chart = ChartBuilder::on(&area)
        .caption(title, ("sans-serif", 24))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..max_x * 1.05, log_axis(min_y * 0.8, max_y * 1.25))?;
    chart
        .configure_mesh()
        .x_desc(x_desc.as_str())
        .y_desc(y_desc)
        .y_label_formatter(&|v: &f64| label(*v))
        .x_label_formatter(&|v: &f64| format!("{v:.1}"))
        .label_style(("sans-serif", 16))
        .draw()?;
    draw_lines(&mut chart, series, |x| x / per)?;
    area.present()?;
    Ok(())
}

/// (variant, [(seconds, value)]) of every overload run, per bucket with
/// an answer, `pick` reading a bucket and its width in seconds.
pub(super) fn overload_series(
    raw: &Raw,
    pick: impl Fn(&crate::record::OverloadBucket, f64) -> Option<f64>,
) -> Vec<(String, Vec<(f64, f64)>)> {
    raw.overload
        .iter()
        .filter(|o| !o.buckets.is_empty())
        .map(|o| {
            let width = o.bucket_ms.max(1) as f64 / 1000.0;
            (
                o.variant.clone(),
                o.buckets
                    .iter()
                    .enumerate()
                    .filter_map(|(i, b)| {
                        pick(b, width).map(|v| ((i as f64 + 1.0) * width, v.max(1e-3)))
                    })
                    .collect(),
            )
        })
        .collect()
}
