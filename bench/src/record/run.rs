//! One fixed-rate run or curve step, as `raw.json` stores it.

use serde::{Deserialize, Serialize};

use super::Breakdown;

/// What a run asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// `GET /v1/accounts/{id}`.
    Balance,
    /// `POST /v1/transfers`, hot-account skew.
    Transfer,
    /// `POST /v1/rooms/{room}/messages`.
    Post,
    /// `GET /echo` on the harness's own trivial server: the floor.
    Floor,
}

impl Scenario {
    /// Its name in results.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Balance => "balance",
            Scenario::Transfer => "transfer",
            Scenario::Post => "post",
            Scenario::Floor => "floor",
        }
    }
}

/// One run's measurements, as stored in `raw.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// Variant name (`floor` for the generator's floor).
    pub variant: String,
    /// Scenario.
    pub scenario: Scenario,
    /// Repeat number, from 0.
    pub repeat: u32,
    /// Target rate, requests per second.
    pub rate: f64,
    /// Achieved rate of answered requests.
    pub achieved_rate: f64,
    /// Rate not kept (see `load::RunStats::saturated`).
    pub saturated: bool,
    /// Latency percentiles from the schedule, microseconds.
    pub p50_us: f64,
    /// 90th.
    pub p90_us: f64,
    /// 99th.
    pub p99_us: f64,
    /// 99.9th.
    pub p999_us: f64,
    /// Max.
    pub max_us: f64,
    /// Scheduled → sent, median, microseconds (the generator's lag).
    pub send_lag_p50_us: f64,
    /// Scheduled → sent, 99th.
    pub send_lag_p99_us: f64,
    /// Recorded requests by outcome.
    pub outcomes: Vec<(String, u64)>,
    /// Requests scheduled in the recorded part.
    pub scheduled: u64,
    /// Still running when the drain ended.
    pub unfinished: u64,
    /// The latency histogram, HdrHistogram V2 log form (base64), so the
    /// report can be re-rendered and percentiles recomputed.
    pub histogram: String,
    /// A step of the throughput–latency curve (not a fixed-rate run).
    #[serde(default)]
    pub curve: bool,
    /// For the floor: the CPU the harness itself spent per request, the
    /// generator's threads and the echo server's apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harness_cpu: Option<HarnessCpu>,
    /// The most requests the generator had in flight at once (its
    /// connections); not recorded before 2026-11-27.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight_limit: Option<usize>,
    /// CPU of every process of the system under test in the recorded
    /// window (warm-up excluded), per recorded answer, µs; not recorded
    /// before 2026-11-28.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_us_per_request: Option<f64>,
    /// The same by process of a system of several (µs per recorded answer,
    /// in the order the variant lists its processes); not recorded before
    /// 2026-11-28's session 11.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpu_us_by_process: Vec<(String, f64)>,
    /// Where the sampled requests' time went (`breakdown`); not recorded
    /// before 2026-11-28's session 10, nor for a target that does not time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<Breakdown>,
    /// What the disk probe saw during a durable run; not recorded before
    /// 2026-11-29's session 22, nor for a run on memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<super::DiskRecord>,
    /// A curve step that saturated while the disk stalled, run once more:
    /// the step after it (its variant, the same rate) stands in the knee
    /// and the chart instead; this one stays in the table.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rerun: bool,
}

impl RunRecord {
    /// Answers that were neither a success nor a correct refusal.
    pub fn errors(&self) -> u64 {
        self.error_kinds().map(|(_, n)| n).sum()
    }

    /// Those errors by outcome name, in record order.
    pub fn error_kinds(&self) -> impl Iterator<Item = (&str, u64)> {
        self.outcomes
            .iter()
            .filter(|(o, n)| o != "ok" && o != "refused_409" && *n > 0)
            .map(|(o, n)| (o.as_str(), *n))
    }
}

/// CPU per request of the harness's own parts during a floor run.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HarnessCpu {
    /// The generator (every thread of this process but the echo's), µs.
    pub generator_us: f64,
    /// The echo server's thread, µs.
    pub echo_us: f64,
}
/// One bucket of a run's timeline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Bucket {
    /// Answered ok (or refused with a correct 409).
    pub ok: u64,
    /// Answered otherwise (429, 503, 202, errors).
    pub failed: u64,
    /// The slowest latency from the schedule among them, ns.
    pub max_latency_ns: u64,
}

/// How a request ended, as the load generator counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// A success answer.
    Ok,
    /// A domain refusal that is a correct answer (409: insufficient funds,
    /// a conflict): the system worked.
    Refused,
    /// Refused for load (429).
    Shed,
    /// Unavailable (503).
    Unavailable,
    /// Accepted but not finished in time (202).
    Pending,
    /// Any other error answer (4xx/5xx), a transport error, or a timeout.
    Error,
}

impl Outcome {
    /// Every outcome, in report order.
    pub const ALL: [Outcome; 6] = [
        Outcome::Ok,
        Outcome::Refused,
        Outcome::Shed,
        Outcome::Unavailable,
        Outcome::Pending,
        Outcome::Error,
    ];

    /// Its name in results.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused_409",
            Outcome::Shed => "shed_429",
            Outcome::Unavailable => "unavailable_503",
            Outcome::Pending => "pending_202",
            Outcome::Error => "error",
        }
    }

    /// The outcome of a name in results.
    pub fn of_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.name() == name)
    }

    /// Reads an HTTP status.
    pub fn of_status(status: u16) -> Self {
        match status {
            200..=201 => Outcome::Ok,
            202 => Outcome::Pending,
            409 => Outcome::Refused,
            429 => Outcome::Shed,
            503 => Outcome::Unavailable,
            _ => Outcome::Error,
        }
    }
}

/// Whether errors (shed, unavailable, pending, failed) are over 1 % of the
/// answers: a system answering fast by refusing is not keeping the rate.
/// Refusals (409) are correct answers.
pub fn too_many_errors(outcomes: &[(Outcome, u64)]) -> bool {
    let answered: u64 = outcomes.iter().map(|(_, n)| n).sum();
    let errors: u64 = outcomes
        .iter()
        .filter(|(o, _)| !matches!(o, Outcome::Ok | Outcome::Refused))
        .map(|(_, n)| n)
        .sum();
    errors as f64 > 0.01 * answered as f64
}
