//! From one process to split: p50 and p99 of transfers, and the cores
//! used, against the process boundaries a transfer crosses; the monolith
//! and the microlith beside the microservices' placements.

use plotters::prelude::*;

use super::{ChartResult, color};

use crate::analysis::Step;

/// Where a step is drawn: its boundaries, the one-process variants set a
/// little to the left of the one-process placement.
fn x_of(step: &Step) -> f64 {
    match step.name.as_str() {
        "monolith" => -0.4,
        "microlith" => -0.2,
        _ => step.boundaries as f64,
    }
}

/// A tick of the boundaries axis: whole counts only.
fn boundary_label(x: &f64) -> String {
    if x.fract() == 0.0 && *x >= 0.0 {
        format!("{x:.0}")
    } else {
        String::new()
    }
}

pub(super) fn continuum<DB: DrawingBackend>(
    area: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    steps: &[Step],
) -> ChartResult
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let area = area.titled(title, ("sans-serif", 20))?;
    let (left, right) = area.split_horizontally(area.dim_in_pixel().0 * 3 / 5);
    let max_boundaries = steps.iter().map(|s| s.boundaries).max().unwrap_or(2) as f64;
    let x_range = -0.6..max_boundaries + 0.4;
    let top = steps.iter().map(|s| s.p99.0).fold(1.0, f64::max) * 1.3;
    let mut latency = ChartBuilder::on(&left)
        .caption(
            "latency of a transfer (µs, median over repeats)",
            ("sans-serif", 14),
        )
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .build_cartesian_2d(x_range.clone(), 0.0..top)?;
    latency
        .configure_mesh()
        .x_desc("process boundaries on a transfer's path")
        .x_labels(max_boundaries as usize + 1)
        .x_label_formatter(&boundary_label)
        .y_label_formatter(&|v: &f64| format!("{v:.0}"))
        .label_style(("sans-serif", 12))
        .draw()?;
    let cores_top = steps.iter().filter_map(|s| s.cores).fold(1e-3, f64::max) * 1.3;
    let mut cores = ChartBuilder::on(&right)
        .caption("cores used", ("sans-serif", 14))
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .build_cartesian_2d(x_range, 0.0..cores_top)?;
    cores
        .configure_mesh()
        .x_desc("process boundaries")
        .x_labels(max_boundaries as usize + 1)
        .x_label_formatter(&boundary_label)
        .y_label_formatter(&|v: &f64| format!("{v:.2}"))
        .label_style(("sans-serif", 12))
        .draw()?;
    // The placements joined by a line: p50 thick, p99 thin.
    let placed: Vec<&Step> = steps
        .iter()
        .filter(|s| s.name.starts_with("microservices"))
        .collect();
    let red = color("microservices");
    for (value, width) in [
        (&(|s: &Step| s.p50.0) as &dyn Fn(&Step) -> f64, 2),
        (&|s: &Step| s.p99.0, 1),
    ] {
        latency.draw_series(LineSeries::new(
            placed
                .iter()
                .map(|s| (x_of(s), value(s)))
                .collect::<Vec<_>>(),
            red.stroke_width(width),
        ))?;
    }
    for step in steps {
        let c = color(&step.name);
        let x = x_of(step);
        latency.draw_series([Circle::new((x, step.p99.0), 4, c.stroke_width(2))])?;
        latency
            .draw_series([Circle::new((x, step.p50.0), 5, c.filled())])?
            .label(format!(
                "{} ({} boundaries)",
                step.name.replace("microservices@", "placed: "),
                step.boundaries
            ))
            .legend(move |(x, y)| Circle::new((x, y), 4, c.filled()));
        if let Some(used) = step.cores {
            cores.draw_series([Circle::new((x, used), 5, c.filled())])?;
        }
    }
    latency
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 11))
        .draw()?;
    cores.draw_series(LineSeries::new(
        placed
            .iter()
            .filter_map(|s| s.cores.map(|c| (x_of(s), c)))
            .collect::<Vec<_>>(),
        red.stroke_width(2),
    ))?;
    area.present()?;
    Ok(())
}
