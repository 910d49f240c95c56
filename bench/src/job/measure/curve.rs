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
    ///
    /// A step that saturated while the disk probe saw the disk stall is
    /// not judged yet when `may_rerun`: it is marked to be run once more
    /// (`true`), and the rerun is judged in its place.
    fn judge(&mut self, record: &mut RunRecord, setting_reference: bool, may_rerun: bool) -> bool {
        record.curve = true;
        let reference = match (self.first_p50, setting_reference) {
            (Some(p50), _) => p50,
            (None, true) => record.p50_us,
            (None, false) => f64::MAX,
        };
        record.saturated |= record.p50_us > 5.0 * reference;
        if may_rerun && record.saturated && record.disk.as_ref().is_some_and(|d| d.stalled()) {
            record.rerun = true;
            return true;
        }
        if setting_reference {
            self.first_p50.get_or_insert(record.p50_us);
        }
        self.saturated = record.saturated;
        false
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
        floor.knee.judge(&mut record, true, false);
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
        let at_rate = |s: &mut Subject<'_>| {
            let (target, workload) = s.target();
            let plan = Plan::curve_step(session.profile, rate);
            session.run(plan, target, Scenario::Transfer, 0, workload)
        };
        let mut record = at_rate(s);
        if knee.judge(&mut record, true, true) {
            session.bar.inc_length(1);
            session.bar.set_message(format!(
                "curve: {} at {rate:.0}/s again (the disk stalled)",
                s.variant.name
            ));
            runs.push(record);
            record = at_rate(s);
            knee.judge(&mut record, true, false);
            session.bar.inc(1);
        }
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
        floor.knee.judge(&mut record, false, false);
        runs.push(record);
    }
    Ok(wrk)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::DiskRecord;

    fn step(p50_us: f64, saturated: bool, stalls: u64) -> RunRecord {
        let empty = || hdrhistogram::Histogram::<u64>::new(3).expect("histogram");
        let stats = crate::generator::load::RunStats {
            latency: empty(),
            send_lag: empty(),
            outcomes: Vec::new(),
            scheduled: 0,
            unfinished: 0,
            achieved_rate: 1000.0,
            timeline: Vec::new(),
            saturated: false,
            system_cpu_s: None,
            system_cpu_by_process: Vec::new(),
        };
        let mut r =
            crate::part::latency::record_of("microlith", Scenario::Transfer, 0, 1000.0, &stats);
        r.p50_us = p50_us;
        r.saturated = saturated;
        r.disk = Some(DiskRecord {
            syncs: 300,
            p50_us: 400.0,
            p99_us: 900.0,
            max_us: if stalls > 0 { 300_000.0 } else { 2_000.0 },
            stalls,
        });
        r
    }

    #[test]
    fn a_step_that_saturated_while_the_disk_stalled_is_run_again_and_the_rerun_judged() {
        let mut knee = Knee::default();
        let mut first = step(2_000.0, false, 0);
        assert!(!knee.judge(&mut first, true, true));
        // Errors while the disk stalled: run again, the knee not yet set.
        let mut stalled = step(3_000.0, true, 2);
        assert!(knee.judge(&mut stalled, true, true));
        assert!(stalled.rerun && stalled.curve && !knee.saturated);
        // The rerun held: the curve goes on.
        let mut again = step(2_500.0, false, 0);
        assert!(!knee.judge(&mut again, true, false));
        assert!(!again.rerun && !knee.saturated);
        // A rerun is never run again, stalled or not.
        let mut stalled = step(3_000.0, true, 1);
        assert!(knee.judge(&mut stalled, true, true));
        let mut again = step(3_000.0, true, 1);
        assert!(!knee.judge(&mut again, true, false));
        assert!(knee.saturated && !again.rerun);
    }

    #[test]
    fn a_step_that_saturated_on_a_quiet_disk_or_unprobed_is_the_knee() {
        let mut knee = Knee::default();
        let mut quiet = step(2_000.0, true, 0);
        assert!(!knee.judge(&mut quiet, true, true));
        assert!(knee.saturated && !quiet.rerun);
        let mut knee = Knee::default();
        let mut unprobed = step(2_000.0, true, 0);
        unprobed.disk = None;
        assert!(!knee.judge(&mut unprobed, true, true));
        assert!(knee.saturated);
    }

    #[test]
    fn a_stalled_first_step_does_not_set_the_median_reference() {
        let mut knee = Knee::default();
        let mut stalled = step(90_000.0, true, 3);
        assert!(knee.judge(&mut stalled, true, true));
        let mut again = step(2_000.0, false, 0);
        assert!(!knee.judge(&mut again, true, false));
        // Five times the rerun's median, not the stalled one's, is the knee.
        let mut queued = step(12_000.0, false, 0);
        assert!(!knee.judge(&mut queued, true, true));
        assert!(queued.saturated, "12 ms is past five times 2 ms");
    }
}
