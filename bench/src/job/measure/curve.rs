//! The throughput–latency curve of transfers, stepped up until each
//! variant and the floor saturate, and the generator's own ceiling past it.

use shared_domain::workload::Workload;

use super::{Session, Subject};
use crate::generator::load::Plan;
use crate::part::latency::Target;
use crate::record::{RunRecord, Scenario, WrkRecord};

/// Where the curve left the floor: whether it saturated, the p50 of its
/// first step, and its workload.
pub(super) struct Floor {
    saturated: bool,
    first_p50: Option<f64>,
    workload: Workload,
}

/// Past the knee, requests queue: the median grew fivefold over the
/// first step's (a stall of the shared machine moves the tail of one
/// step, not its median).
fn past_knee(record: &RunRecord, first_p50: f64) -> bool {
    record.p50_us > 5.0 * first_p50
}

/// The throughput–latency curve of transfers: steps the rate up until
/// each variant (and the generator's floor) saturates.
pub(super) fn curve(
    session: &Session<'_>,
    subjects: &mut [Subject<'_>],
    runs: &mut Vec<RunRecord>,
) -> anyhow::Result<Floor> {
    let profile = session.profile;
    let mut floor = Floor {
        saturated: false,
        first_p50: None,
        workload: profile.workload()?,
    };
    let mut saturated = vec![false; subjects.len()];
    let mut first_p50: Vec<Option<f64>> = vec![None; subjects.len()];
    for rate in &profile.curve_rates {
        for (i, s) in subjects.iter_mut().enumerate() {
            session.bar.inc(1);
            if saturated[i] {
                continue;
            }
            session
                .bar
                .set_message(format!("curve: {} at {rate:.0}/s", s.variant.name));
            let target = Target {
                name: &s.variant.name,
                base: &s.variant.base,
                meter: s.meter.as_ref(),
            };
            let mut record = session.run(
                Plan::curve_step(profile, *rate),
                target,
                Scenario::Transfer,
                0,
                &mut s.workload,
            );
            record.curve = true;
            let first = *first_p50[i].get_or_insert(record.p50_us);
            record.saturated |= past_knee(&record, first);
            saturated[i] = record.saturated;
            runs.push(record);
        }
        session.bar.inc(1);
        if floor.saturated {
            continue;
        }
        session
            .bar
            .set_message(format!("curve: floor at {rate:.0}/s"));
        let mut record = session.run(
            Plan::curve_step(profile, *rate),
            session.floor(),
            Scenario::Floor,
            0,
            &mut floor.workload,
        );
        record.curve = true;
        let first = *floor.first_p50.get_or_insert(record.p50_us);
        record.saturated |= past_knee(&record, first);
        floor.saturated = record.saturated;
        runs.push(record);
    }
    Ok(floor)
}

/// The generator's own ceiling. First wrk, a standard closed-loop tool,
/// against the same echo endpoint when it is installed; then the floor
/// alone, with as many requests in flight as wrk has connections,
/// stepped at fractions of wrk's rate (or, without wrk, at the profile's
/// fixed rates) past the curve until it saturates.
pub(super) fn ceiling(
    session: &Session<'_>,
    mut floor: Floor,
    runs: &mut Vec<RunRecord>,
) -> anyhow::Result<Option<WrkRecord>> {
    let profile = session.profile;
    let bar = &session.bar;
    bar.inc_length(1);
    bar.set_message("wrk against the echo endpoint");
    let wrk = crate::generator::wrk::run(
        &format!("{}/echo", session.echo),
        profile.curve_step_s.max(2.0),
    );
    bar.inc(1);
    let last_curve_rate = profile.curve_rates.last().copied().unwrap_or(0.0);
    let rates: Vec<f64> = match &wrk {
        Some(w) => profile
            .generator_wrk_fractions
            .iter()
            .map(|f| (f * w.requests_per_s / 1000.0).round() * 1000.0)
            .collect(),
        None => profile.generator_rates.clone(),
    }
    .into_iter()
    .filter(|r| *r > last_curve_rate)
    .collect();
    bar.inc_length(rates.len() as u64);
    for rate in &rates {
        bar.inc(1);
        if floor.saturated {
            continue;
        }
        bar.set_message(format!("generator ceiling: floor at {rate:.0}/s"));
        let mut record = session.run(
            Plan::ceiling_step(profile, *rate),
            session.floor(),
            Scenario::Floor,
            0,
            &mut floor.workload,
        );
        record.curve = true;
        record.saturated |= past_knee(&record, floor.first_p50.unwrap_or(f64::MAX));
        floor.saturated = record.saturated;
        runs.push(record);
    }
    Ok(wrk)
}
