//! A cost model of process boundaries, fitted on one run and checked on
//! the same run.
//!
//! What a transfer costs in a placement of the microservices is taken to
//! be what it costs with every component in one process, plus a price per
//! process boundary on its critical path (gateway → transfers →
//! accounts): latency `p50 = p50(one) + boundaries × hop`, CPU `cpu =
//! cpu(one) + boundaries × hop_cpu`. The price of a boundary is read off
//! the two ends of the same run (every component in one process, and
//! fully split), and, independently of the ends, taken from the hop the
//! split system's sampled requests timed and from a call measured alone
//! ([`Probe`]); every placement is checked against each. Loopback has no
//! network round trip, so a reviewer's own round-trip time enters the
//! projection explicitly.

use crate::analysis::Step;
use crate::record::Raw;

/// The model, as fitted on one run.
#[derive(Debug, Clone)]
pub struct Model {
    /// Every component in one process: the in-process base.
    pub one: Step,
    /// Fully split: the other end.
    pub split: Step,
    /// Latency one boundary adds at p50, µs (on loopback: no round trip).
    pub hop_us: f64,
    /// CPU one boundary adds per transfer, µs (both sides of the call).
    pub hop_cpu_us: Option<f64>,
    /// One hop as the split system's sampled requests timed it themselves
    /// (`Server-Timing`, caller to callee, median over the run's hops),
    /// µs: a measurement independent of the ends' p50.
    pub timed_hop_us: Option<f64>,
    /// Resident memory one more process adds while idle, bytes.
    pub process_rss: Option<f64>,
    /// CPU one more process uses while idle, cores (timers, health
    /// checks, the ledger's polling).
    pub process_idle_cores: Option<f64>,
    /// A gRPC call measured alone in the same run (the protocol of a
    /// transfer's boundaries): a micro-measurement the ends do not enter.
    pub probe: Option<Probe>,
    /// The HTTP/JSON hop (the ledger's) measured alone.
    pub probe_http: Option<Probe>,
    /// What mTLS with service tokens adds per boundary, from the cost
    /// part (split, same load): latency and CPU, µs.
    pub secured: Option<(f64, Option<f64>)>,
    /// The fixed transfer rate of the run.
    pub rate: f64,
}

/// One hop measured alone (`crate::part::hop`): medians over the run's
/// repeats.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    /// A call's latency at p50, µs.
    pub p50_us: f64,
    /// The caller's CPU per call, µs.
    pub caller_cpu_us: Option<f64>,
    /// The callee's CPU per call, µs.
    pub callee_cpu_us: Option<f64>,
}

impl Probe {
    /// Both sides' CPU per call, µs.
    pub fn cpu_us(&self) -> Option<f64> {
        Some(self.caller_cpu_us? + self.callee_cpu_us?)
    }

    /// The run's hops of `protocol`, if it measured any.
    fn of(raw: &Raw, protocol: &str) -> Option<Self> {
        let hops: Vec<_> = raw.hops.iter().filter(|h| h.protocol == protocol).collect();
        let median_of = |f: &dyn Fn(&crate::record::HopRecord) -> Option<f64>| {
            crate::analysis::median(hops.iter().filter_map(|h| f(h)).collect())
        };
        Some(Self {
            p50_us: median_of(&|h| Some(h.p50_us))?,
            caller_cpu_us: median_of(&|h| h.caller_cpu_us),
            callee_cpu_us: median_of(&|h| h.callee_cpu_us),
        })
    }
}

/// What the model says of one placement, beside what it measured.
#[derive(Debug, Clone)]
pub struct Check {
    /// The placement.
    pub name: String,
    /// Its boundaries.
    pub boundaries: usize,
    /// p50 predicted and measured, µs.
    pub p50: (f64, f64),
    /// p50 predicted from the timed hop instead of the ends, µs.
    pub p50_timed: Option<f64>,
    /// p50 and CPU per transfer predicted from the hop measured alone, µs.
    pub probed: Option<(f64, Option<f64>)>,
    /// CPU per transfer predicted and measured, µs.
    pub cpu: Option<(f64, f64)>,
    /// Whether it is an end the model was fitted on (exact by
    /// construction).
    pub fitted: bool,
}

/// A reviewer's system, for [`Model::project`].
#[derive(Debug, Clone, Copy)]
pub struct System {
    /// Process boundaries on a request's critical path.
    pub hops: usize,
    /// Network round trip per boundary, µs.
    pub rtt_us: f64,
    /// Requests per second.
    pub qps: f64,
    /// Processes.
    pub processes: usize,
    /// mTLS and service tokens on every boundary.
    pub secured: bool,
}

/// What [`Model::project`] predicts.
#[derive(Debug, Clone, Copy)]
pub struct Projection {
    /// Median latency, µs.
    pub p50_us: f64,
    /// CPU per request, µs.
    pub cpu_us: Option<f64>,
    /// Cores at the rate.
    pub cores: Option<f64>,
    /// Idle resident memory the processes beyond the first add, bytes.
    pub rss: Option<f64>,
    /// Idle CPU the processes beyond the first add, cores.
    pub idle_cores: Option<f64>,
}

impl Model {
    /// Fits the model on `raw`'s placements; `None` without both ends.
    pub fn fit(raw: &Raw) -> Option<Self> {
        let steps = raw.continuum();
        let placed: Vec<&Step> = steps
            .iter()
            .filter(|s| s.name.starts_with("microservices"))
            .collect();
        let one = (*placed.iter().find(|s| s.boundaries == 0)?).clone();
        let split = (*placed.iter().max_by_key(|s| (s.boundaries, s.processes))?).clone();
        let span = split
            .boundaries
            .checked_sub(one.boundaries)
            .filter(|n| *n > 0)? as f64;
        let hop_us = (split.p50.0 - one.p50.0) / span;
        let hop_cpu_us = match (split.cpu_us, one.cpu_us) {
            (Some(s), Some(o)) => Some((s - o) / span),
            _ => None,
        };
        let variant = |name: &str| raw.variants.iter().find(|v| v.name == name);
        let per_process = |of: &dyn Fn(&crate::record::VariantRecord) -> Option<f64>| {
            let (s, o) = (of(variant(&split.name)?)?, of(variant(&one.name)?)?);
            (split.processes > one.processes)
                .then(|| (s - o) / (split.processes - one.processes) as f64)
        };
        let process_rss = per_process(&|v| v.rss_idle_bytes.map(|b| b as f64));
        let process_idle_cores = per_process(&|v| v.cpu_idle_cores);
        let secured = raw.cost.as_ref().and_then(|cost| {
            let feature = |config: &str| {
                cost.features
                    .iter()
                    .find(|f| f.variant == "microservices" && f.config == config)
            };
            let (base, on) = (feature("baseline")?, feature("mtls+tokens")?);
            let hops = split.boundaries.max(1) as f64;
            Some((
                (on.p50_us - base.p50_us) / hops,
                match (on.cpu_us_per_request, base.cpu_us_per_request) {
                    (Some(a), Some(b)) => Some((a - b) / hops),
                    _ => None,
                },
            ))
        });
        let timed_hop_us = crate::analysis::median(
            raw.runs_of(&split.name, crate::record::Scenario::Transfer)
                .iter()
                .filter_map(|r| r.breakdown.as_ref().map(|b| b.hop_us))
                .filter(|us| *us > 0.0)
                .collect(),
        );
        Some(Self {
            one,
            split,
            hop_us,
            hop_cpu_us,
            timed_hop_us,
            process_rss,
            process_idle_cores,
            probe: Probe::of(raw, "grpc"),
            probe_http: Probe::of(raw, "http/json"),
            secured,
            rate: raw.profile.transfer_rate,
        })
    }

    /// Predicted against measured, for every placement of the run.
    pub fn checks(&self, raw: &Raw) -> Vec<Check> {
        raw.continuum()
            .into_iter()
            .filter(|s| s.name.starts_with("microservices"))
            .map(|s| {
                let n = s.boundaries.saturating_sub(self.one.boundaries) as f64;
                Check {
                    fitted: s.name == self.one.name || s.name == self.split.name,
                    p50: (self.one.p50.0 + n * self.hop_us, s.p50.0),
                    p50_timed: self.timed_hop_us.map(|hop| self.one.p50.0 + n * hop),
                    probed: self.probe.map(|hop| {
                        (
                            self.one.p50.0 + n * hop.p50_us,
                            self.one
                                .cpu_us
                                .zip(hop.cpu_us())
                                .map(|(base, cpu)| base + n * cpu),
                        )
                    }),
                    cpu: match (self.one.cpu_us, self.hop_cpu_us, s.cpu_us) {
                        (Some(base), Some(hop), Some(measured)) => Some((base + n * hop, measured)),
                        _ => None,
                    },
                    boundaries: s.boundaries,
                    name: s.name,
                }
            })
            .collect()
    }

    /// A reviewer's system: the in-process base, plus each boundary's
    /// price measured here and its network round trip.
    pub fn project(&self, system: System) -> Projection {
        let hops = system.hops as f64;
        let (secure_us, secure_cpu) = match (system.secured, self.secured) {
            (true, Some((us, cpu))) => (us, cpu.unwrap_or(0.0)),
            _ => (0.0, 0.0),
        };
        let p50_us = self.one.p50.0 + hops * (self.hop_us + secure_us + system.rtt_us);
        let cpu_us = match (self.one.cpu_us, self.hop_cpu_us) {
            (Some(base), Some(hop)) => Some(base + hops * (hop + secure_cpu)),
            _ => None,
        };
        Projection {
            p50_us,
            cpu_us,
            cores: cpu_us.map(|c| c * system.qps / 1e6),
            rss: self
                .process_rss
                .map(|per| per * system.processes.saturating_sub(1) as f64),
            idle_cores: self
                .process_idle_cores
                .map(|per| per.max(0.0) * system.processes.saturating_sub(1) as f64),
        }
    }
}

/// The relative error of a prediction, signed (`+0.1`: 10 % too high).
pub fn error(predicted: f64, measured: f64) -> f64 {
    (predicted - measured) / measured.max(1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, boundaries: usize, p50: f64, cpu: f64) -> Step {
        Step {
            name: name.into(),
            processes: boundaries * 2 + 1,
            boundaries,
            p50: (p50, p50, p50),
            p99: (p50 * 2.0, p50 * 2.0, p50 * 2.0),
            cpu_us: Some(cpu),
            cores: None,
        }
    }

    #[test]
    fn a_boundary_costs_the_difference_of_the_ends_and_a_round_trip_adds_per_hop() {
        let model = Model {
            one: step("microservices@one", 0, 300.0, 200.0),
            split: step("microservices", 2, 900.0, 1000.0),
            hop_us: 300.0,
            hop_cpu_us: Some(400.0),
            timed_hop_us: Some(280.0),
            process_rss: Some(10.0 * 1048576.0),
            process_idle_cores: Some(0.002),
            probe: None,
            probe_http: None,
            secured: Some((50.0, Some(30.0))),
            rate: 250.0,
        };
        let p = model.project(System {
            hops: 3,
            rtt_us: 200.0,
            qps: 1000.0,
            processes: 4,
            secured: true,
        });
        assert_eq!(p.p50_us, 300.0 + 3.0 * (300.0 + 50.0 + 200.0));
        assert_eq!(p.cpu_us, Some(200.0 + 3.0 * 430.0));
        assert_eq!(p.cores, Some((200.0 + 3.0 * 430.0) * 1000.0 / 1e6));
        assert_eq!(p.rss, Some(3.0 * 10.0 * 1048576.0));
        assert_eq!(p.idle_cores, Some(3.0 * 0.002));
        assert!((error(110.0, 100.0) - 0.1).abs() < 1e-12);
    }
}
