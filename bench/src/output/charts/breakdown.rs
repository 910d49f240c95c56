//! Where a typical request's time goes: the parts stacked per variant.

use plotters::prelude::*;

use super::ChartResult;
use crate::output::micros;
use crate::record::Scenario;

/// The parts of a typical request, stacked, one panel per scenario, one
/// bar per variant; a black tick at the measured p50, a dashed one at the
/// hop budget.
pub(super) fn time_breakdown<DB: DrawingBackend>(
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
