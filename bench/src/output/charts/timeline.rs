//! A fault's timeline: answers per second and the worst latency, the
//! fault marked.

use plotters::prelude::*;

use super::log_axis;
use super::{ChartResult, HEIGHT, color};
use crate::output::micros;
use crate::record::{FaultRecord, Scenario};

/// How many of a fault run's buckets cover its sending window: the
/// answers that come in after the last request was sent fill a partial
/// bucket past it, which would read as a drop at the end of the chart.
pub(super) fn sending_window(f: &FaultRecord) -> usize {
    let sent = (f.ok + f.failed) as f64;
    let window =
        (sent / f.rate.max(1e-9) / (f.bucket_ms as f64 / 1000.0).max(1e-9)).round() as usize;
    f.timeline.len().min(window.max(1))
}

/// Two panels over the run's time: answers per second (ok solid, failed
/// dashed) and the worst latency of each 100 ms bucket; the fault is the
/// vertical line.
pub(super) fn timeline<DB: DrawingBackend>(
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
            back_s: None,
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
