//! The cost bars: what each variant costs to build, ship and run.

use plotters::prelude::*;

use super::{ChartResult, color};

use crate::record::Raw;

/// One panel of the cost bars: its title and each variant's value.
pub(super) type CostPanel = (String, Vec<(String, f64)>);

/// The costs measured for every variant of the run, one panel each.
pub(super) fn cost_bars(raw: &Raw) -> Vec<CostPanel> {
    let variant = |n: &str| raw.variants.iter().find(|v| v.name == n);
    let names: Vec<&str> = ["monolith", "microlith", "microservices"]
        .into_iter()
        .filter(|n| variant(n).is_some())
        .collect();
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
    panel("processes", &|n| {
        variant(n).map(|v| raw.own_processes(v) as f64)
    });
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

pub(super) fn cost_chart<DB: DrawingBackend>(
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
