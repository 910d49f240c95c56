//! What the output reads off the records: medians over repeats with
//! their spread, the knee of the throughput curve, the floor's rate. Read
//! only; nothing here measures.

use crate::record::{Raw, RunRecord, Scenario};

pub mod model;

/// The median of `values` (the upper one of an even count); `None` when
/// there are none.
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(values[values.len() / 2])
}

impl Raw {
    pub fn runs_of(&self, variant: &str, scenario: Scenario) -> Vec<&RunRecord> {
        self.runs
            .iter()
            .filter(|r| !r.curve && r.variant == variant && r.scenario == scenario)
            .collect()
    }

    /// Median of a field over repeats, with its min and max.
    pub fn spread(
        runs: &[&RunRecord],
        field: impl Fn(&RunRecord) -> f64,
    ) -> Option<(f64, f64, f64)> {
        let mut values: Vec<f64> = runs.iter().map(|r| field(r)).collect();
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        Some((
            values[values.len() / 2],
            values[0],
            values[values.len() - 1],
        ))
    }

    /// The median over the fixed-rate runs of `variant`'s CPU per request
    /// in `scenario` (recorded windows only), µs.
    pub fn cpu_per_request(&self, variant: &str, scenario: Scenario) -> Option<f64> {
        let runs: Vec<&RunRecord> = self
            .runs_of(variant, scenario)
            .into_iter()
            .filter(|r| r.cpu_us_per_request.is_some())
            .collect();
        Self::spread(&runs, |r| r.cpu_us_per_request.unwrap_or(0.0)).map(|(median, _, _)| median)
    }

    /// The highest curve step `variant` sustained, and whether it was the
    /// last step tried (so the true limit may be higher).
    pub fn sustained(&self, variant: &str) -> Option<(f64, bool)> {
        sustained(&self.runs, variant)
    }

    /// Whether the run has fixed-rate runs (not only curve steps): a run
    /// of another part alone (`bench run overload`, say) has none.
    pub fn has_fixed_rate_runs(&self) -> bool {
        self.runs.iter().any(|r| !r.curve)
    }

    /// The highest rate the generator is known to have kept: the floor's
    /// own knee, or a higher curve step some variant sustained (the
    /// generator sent that too, beside a system; a floor step disturbed by
    /// the shared machine does not make the generator the limit). `None`
    /// without a floor curve.
    pub fn generator_reach(&self) -> Option<f64> {
        let (floor, _) = self.sustained("floor")?;
        Some(
            self.runs
                .iter()
                .filter(|r| r.curve && !r.saturated)
                .map(|r| r.rate)
                .fold(floor, f64::max),
        )
    }

    /// The highest curve step `variant` kept without saturating and with
    /// its p99 under the profile's bound (`None`: no curve for it; 0: no
    /// step stayed under).
    pub fn within_tail_bound(&self, variant: &str) -> Option<f64> {
        let bound_us = self.profile.curve_p99_bound_ms * 1000.0;
        self.highest_step(variant, |r| !r.saturated && r.p99_us <= bound_us)
    }

    /// The highest rate among `variant`'s curve steps that pass `keep`
    /// (`None`: no curve for it; 0: none passed).
    pub fn highest_step(&self, variant: &str, keep: impl Fn(&RunRecord) -> bool) -> Option<f64> {
        highest_step(&self.runs, variant, keep)
    }

    /// The most a variant answered per second on the curve, overdriven
    /// steps included: what a closed-loop tool reports as its rate (its
    /// latency then all queueing).
    pub fn peak(&self, variant: &str) -> f64 {
        self.runs
            .iter()
            .filter(|r| r.curve && r.variant == variant)
            .map(|r| r.achieved_rate)
            .fold(0.0, f64::max)
    }

    pub fn floor_rate(&self) -> f64 {
        self.runs
            .iter()
            .find(|r| r.scenario == Scenario::Floor)
            .map_or(0.0, |r| r.rate)
    }
}

/// One variant on the way from one process to split, at the fixed
/// transfer rate.
#[derive(Debug, Clone)]
pub struct Step {
    /// The variant (`monolith`, `microlith`, `microservices@one`, …).
    pub name: String,
    /// Its processes (the launcher not counted).
    pub processes: usize,
    /// Process boundaries a transfer crosses on its critical path.
    pub boundaries: usize,
    /// p50 and p99, µs: median over repeats, min, max.
    pub p50: (f64, f64, f64),
    /// See [`Step::p50`].
    pub p99: (f64, f64, f64),
    /// CPU per transfer, µs (every process of the variant).
    pub cpu_us: Option<f64>,
    /// Cores the variant used at that rate.
    pub cores: Option<f64>,
}

impl Raw {
    /// The processes that are the system itself: a container each under
    /// compose; locally, the microservices' launcher (their supervisor, as
    /// systemd would be) is not one of them.
    pub fn own_processes(&self, v: &crate::record::VariantRecord) -> usize {
        match (v.name.as_str(), &v.placement) {
            ("monolith" | "microlith", _) => 1,
            (_, Some(p)) => p.processes.len(),
            _ if self.env.deploy == "compose" => v.replicas.len().max(1),
            _ => v.processes.saturating_sub(1).max(1),
        }
    }

    /// Every variant with transfers at the fixed rate, simplest first:
    /// the monolith, the microlith, then the microservices from one
    /// process to split (by process boundaries on a transfer's path, then
    /// by processes).
    pub fn continuum(&self) -> Vec<Step> {
        let rate = self.profile.transfer_rate;
        let mut steps: Vec<(usize, Step)> = self
            .variants
            .iter()
            .filter_map(|v| {
                let runs = self.runs_of(&v.name, Scenario::Transfer);
                let p50 = Self::spread(&runs, |r| r.p50_us)?;
                let p99 = Self::spread(&runs, |r| r.p99_us)?;
                let (rank, boundaries) = match (v.name.as_str(), &v.placement) {
                    ("monolith", _) => (0, 0),
                    ("microlith", _) => (1, 0),
                    (_, Some(p)) => (2, p.boundaries),
                    // A split run from before placements were recorded.
                    ("microservices", None) => (2, 2),
                    _ => return None,
                };
                let processes = self.own_processes(v);
                let cpu_us = self.cpu_per_request(&v.name, Scenario::Transfer);
                Some((
                    rank,
                    Step {
                        name: v.name.clone(),
                        processes,
                        boundaries,
                        p50,
                        p99,
                        cpu_us,
                        cores: cpu_us.map(|us| us * rate / 1e6),
                    },
                ))
            })
            .collect();
        steps.sort_by_key(|(rank, s)| (*rank, s.boundaries, s.processes));
        steps.into_iter().map(|(_, s)| s).collect()
    }
}

/// The highest curve step of `variant` in `runs` it sustained, and
/// whether it was the last step tried (no step saturated: the true limit
/// may be higher).
pub fn sustained(runs: &[RunRecord], variant: &str) -> Option<(f64, bool)> {
    let best = highest_step(runs, variant, |r| !r.saturated)?;
    Some((
        best,
        !runs
            .iter()
            .any(|r| r.curve && r.variant == variant && r.saturated && !r.rerun),
    ))
}

/// The highest rate among `variant`'s curve steps in `runs` that pass
/// `keep` (`None`: no curve for it; 0: none passed).
pub fn highest_step(
    runs: &[RunRecord],
    variant: &str,
    keep: impl Fn(&RunRecord) -> bool,
) -> Option<f64> {
    let mut steps = runs
        .iter()
        .filter(|r| r.curve && r.variant == variant)
        .peekable();
    steps.peek()?;
    Some(
        steps
            .filter(|r| keep(r))
            .map(|r| r.rate)
            .fold(0.0, f64::max),
    )
}
