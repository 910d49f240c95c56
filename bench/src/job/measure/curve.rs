//! The throughput–latency curve of transfers, stepped up until each
//! variant and the floor saturate, and the generator's own ceiling past it.

use shared_domain::workload::Workload;

use super::{Session, Subject};
use crate::generator::load::Plan;
use crate::record::{RunRecord, Scenario, WrkRecord};

/// One series of curve steps (a variant's, or the floor's): the p50 of its
/// first step and whether it saturated.
#[derive(Debug, Default)]
struct Knee {
    saturated: bool,
    first_p50: Option<f64>,
}

impl Knee {
    /// Marks `record` a curve step and judges it: saturated when the run
    /// did not keep its rate, or past the knee, where requests queue and
    /// the median grew fivefold over the first step's (a stall of the
    /// shared machine moves the tail of one step, not its median). The
    /// first step judged `setting_reference` sets that median; the
    /// generator's ceiling compares with the curve's floor instead.
    fn judge(&mut self, record: &mut RunRecord, setting_reference: bool) {
        record.curve = true;
        if setting_reference {
            self.first_p50.get_or_insert(record.p50_us);
        }
        record.saturated |= record.p50_us > 5.0 * self.first_p50.unwrap_or(f64::MAX);
        self.saturated = record.saturated;
    }
}

/// Where the curve left the floor: its knee and its workload.
pub(super) struct Floor {
    knee: Knee,
    workload: Workload,
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
        knee: Knee::default(),
        workload: profile.workload()?,
    };
    let mut knees: Vec<Knee> = subjects.iter().map(|_| Knee::default()).collect();
    let stepped: Vec<bool> = subjects
        .iter()
        .map(|s| profile.placements_curve || !s.placed())
        .collect();
    for rate in &profile.curve_rates {
        step(session, subjects, &mut knees, &stepped, *rate, runs);
        session.bar.inc(1);
        if floor.knee.saturated {
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
        floor.knee.judge(&mut record, true);
        runs.push(record);
    }
    Ok(floor)
}

/// One step of the curve at `rate` for every subject `stepped` says,
/// unless it saturated at an earlier step.
fn step(
    session: &Session<'_>,
    subjects: &mut [Subject<'_>],
    knees: &mut [Knee],
    stepped: &[bool],
    rate: f64,
    runs: &mut Vec<RunRecord>,
) {
    for ((s, knee), _) in subjects
        .iter_mut()
        .zip(knees.iter_mut())
        .zip(stepped)
        .filter(|(_, stepped)| **stepped)
    {
        session.bar.inc(1);
        if knee.saturated {
            continue;
        }
        session
            .bar
            .set_message(format!("curve: {} at {rate:.0}/s", s.variant.name));
        let (target, workload) = s.target();
        let plan = Plan::curve_step(session.profile, rate);
        let mut record = session.run(plan, target, Scenario::Transfer, 0, workload);
        knee.judge(&mut record, true);
        runs.push(record);
    }
}

/// The curve of every subject alone (no floor): for a second pass on
/// another storage. Stops early once every subject saturated.
pub(super) fn subjects_only(
    session: &Session<'_>,
    subjects: &mut [Subject<'_>],
    runs: &mut Vec<RunRecord>,
) {
    let mut knees: Vec<Knee> = subjects.iter().map(|_| Knee::default()).collect();
    let stepped = vec![true; subjects.len()];
    for rate in &session.profile.curve_rates {
        if knees.iter().all(|k| k.saturated) {
            break;
        }
        step(session, subjects, &mut knees, &stepped, *rate, runs);
    }
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
        if floor.knee.saturated {
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
        floor.knee.judge(&mut record, false);
        runs.push(record);
    }
    Ok(wrk)
}
