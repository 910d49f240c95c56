//! The fan-out's delivery-latency CDF.

use plotters::prelude::*;

use super::{ChartResult, color};
use hdrhistogram::Histogram;

use super::log_axis;
use crate::output::micros;
use crate::record::Raw;
use crate::record::histogram::decode_histogram;

/// (variant, [(delivery latency µs, fraction delivered by then)]).
pub(super) fn fanout_series(raw: &Raw) -> Vec<(String, Vec<(f64, f64)>)> {
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

pub(super) fn fanout_cdf<DB: DrawingBackend>(
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
