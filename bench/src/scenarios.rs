//! The scenarios: latency at fixed rates for balance reads, transfers
//! (with hot-account skew) and chat posts, the generator's floor against
//! a trivial echo endpoint, and the invariant checks after each variant's
//! runs. Every scenario runs against every variant in the same run,
//! interleaved repeat by repeat so drift on a shared machine hits both.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use shared_domain::invariant::check_acked_posts;
use shared_domain::workload::{Workload, WorkloadConfig};

use crate::cpu::CpuMeter;
use crate::load::{self, Outcome, Plan, RunStats};

/// How long and how hard.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    /// `quick` or `full`.
    pub name: String,
    /// Recorded seconds per run.
    pub duration_s: f64,
    /// Warm-up seconds per run.
    pub warmup_s: f64,
    /// Runs per scenario and variant.
    pub repeats: u32,
    /// Balance reads per second.
    pub read_rate: f64,
    /// Transfers per second.
    pub transfer_rate: f64,
    /// Chat posts per second.
    pub post_rate: f64,
    /// Accounts opened.
    pub accounts: u32,
    /// Share of transfers touching the hot accounts.
    pub hot_fraction: f64,
    /// How many accounts are hot.
    pub hot_accounts: u32,
    /// Transfer rates of the throughput–latency curve, stepped up until a
    /// variant saturates.
    pub curve_rates: Vec<f64>,
    /// Recorded seconds per curve step.
    pub curve_step_s: f64,
    /// The report also gives the highest curve step whose p99 stayed
    /// under this bound, ms: the knee rule (rate kept, median not grown
    /// fivefold) says nothing of the tail.
    #[serde(default = "curve_p99_bound_ms")]
    pub curve_p99_bound_ms: f64,
    /// Rates past the curve's at which only the generator's floor is
    /// stepped, to find the most the generator itself sustains, when wrk
    /// is not installed.
    #[serde(default)]
    pub generator_rates: Vec<f64>,
    /// With wrk installed, the generator's ceiling is stepped at these
    /// fractions of the rate wrk reached in the same run instead.
    #[serde(default = "wrk_fractions")]
    pub generator_wrk_fractions: Vec<f64>,
    /// Transfers per second during a fault run.
    #[serde(default)]
    pub fault_rate: f64,
    /// Length of a fault run; the fault comes at 30 % of it.
    #[serde(default)]
    pub fault_seconds: f64,
    /// How long a paused process stays stopped, seconds.
    #[serde(default)]
    pub fault_pause_s: f64,
    /// Transfers per second while measuring what tracing, mTLS and tokens
    /// cost.
    #[serde(default)]
    pub cost_rate: f64,
    /// Time the release build of each variant from scratch.
    #[serde(default)]
    pub build_cost: bool,
    /// WebSocket subscribers of the fan-out room.
    #[serde(default)]
    pub fanout_subscribers: u32,
    /// Posts per second into the fan-out room.
    #[serde(default)]
    pub fanout_rate: f64,
    /// Cross-check the generator against oha (built into `target/tools`
    /// first if needed) at the floor and against the microlith.
    #[serde(default)]
    pub cross_check: bool,
}

/// The tail bound of the curve's second reading: 10 ms at p99.
fn curve_p99_bound_ms() -> f64 {
    10.0
}

/// The generator's ceiling steps when wrk ran: from 80 % to 110 % of its rate.
fn wrk_fractions() -> Vec<f64> {
    vec![0.8, 0.9, 1.0, 1.1]
}

impl Profile {
    /// The README default: under 5 minutes here.
    pub fn quick() -> Self {
        Self {
            name: "quick".into(),
            duration_s: 3.0,
            warmup_s: 1.0,
            repeats: 2,
            read_rate: 400.0,
            transfer_rate: 250.0,
            post_rate: 150.0,
            accounts: 1000,
            hot_fraction: 0.2,
            hot_accounts: 10,
            curve_rates: vec![
                500.0, 1000.0, 2000.0, 4000.0, 6000.0, 8000.0, 12000.0, 16000.0, 24000.0, 32000.0,
                40000.0, 48000.0,
            ],
            curve_step_s: 1.5,
            curve_p99_bound_ms: curve_p99_bound_ms(),
            generator_rates: vec![64000.0, 96000.0, 128000.0, 160000.0, 192000.0],
            generator_wrk_fractions: wrk_fractions(),
            fault_rate: 300.0,
            fault_seconds: 6.0,
            fault_pause_s: 1.5,
            cost_rate: 1000.0,
            build_cost: false,
            fanout_subscribers: 100,
            fanout_rate: 50.0,
            cross_check: false,
        }
    }

    /// Longer runs, more repeats, higher rates.
    pub fn full() -> Self {
        Self {
            name: "full".into(),
            duration_s: 15.0,
            warmup_s: 3.0,
            repeats: 3,
            read_rate: 1000.0,
            transfer_rate: 600.0,
            post_rate: 300.0,
            curve_rates: vec![
                500.0, 1000.0, 2000.0, 3000.0, 4000.0, 6000.0, 8000.0, 12000.0, 16000.0, 20000.0,
                24000.0, 32000.0, 40000.0, 48000.0, 56000.0,
            ],
            curve_step_s: 6.0,
            fault_rate: 500.0,
            fault_seconds: 20.0,
            fault_pause_s: 3.0,
            cost_rate: 2000.0,
            build_cost: true,
            fanout_subscribers: 500,
            fanout_rate: 100.0,
            cross_check: true,
            ..Self::quick()
        }
    }

    /// A tiny profile for the CI smoke test.
    pub fn smoke() -> Self {
        Self {
            name: "smoke".into(),
            duration_s: 0.5,
            warmup_s: 0.2,
            repeats: 1,
            read_rate: 50.0,
            transfer_rate: 50.0,
            post_rate: 50.0,
            accounts: 50,
            curve_rates: vec![50.0, 100.0],
            curve_step_s: 0.3,
            generator_rates: vec![200.0],
            generator_wrk_fractions: vec![0.05],
            fault_rate: 50.0,
            fault_seconds: 2.0,
            fault_pause_s: 0.5,
            cost_rate: 50.0,
            fanout_subscribers: 5,
            fanout_rate: 20.0,
            ..Self::quick()
        }
    }

    /// The plan of one curve step.
    pub fn curve_plan(&self, rate: f64) -> Plan {
        Plan {
            rate,
            duration: Duration::from_secs_f64(self.curve_step_s),
            warmup: Duration::from_secs_f64(0.5_f64.min(self.curve_step_s)),
            max_in_flight: 1024,
            drain: Duration::from_secs(3),
            timeline: None,
        }
    }

    /// The plan of one step of the generator's own ceiling: a curve step
    /// with as many requests in flight as wrk has connections.
    ///
    /// The curve lets up to 1024 requests be in flight, so that a system's
    /// stall meets the burst real users would make. Against the echo at
    /// its highest rates that costs the generator itself: each hiccup
    /// opens connections, and the extra sockets' wake-ups and segments
    /// made the floor saturate at 160 000/s where 32 in flight sustained
    /// 170 000/s (`cargo run --release -p bench --example floor -- 160000
    /// 5 1024`, against `... 32`; 2026-11-27, Intel Xeon, 2 cores).
    pub fn ceiling_plan(&self, rate: f64) -> Plan {
        Plan {
            max_in_flight: crate::report::WRK_CONNECTIONS,
            ..self.curve_plan(rate)
        }
    }

    /// The plan of one fixed-rate run.
    pub fn plan(&self, rate: f64) -> Plan {
        Plan {
            rate,
            duration: Duration::from_secs_f64(self.duration_s),
            warmup: Duration::from_secs_f64(self.warmup_s),
            max_in_flight: 512,
            drain: Duration::from_secs(5),
            timeline: None,
        }
    }

    /// The workload of a variant (seeded: both variants get the same).
    pub fn workload(&self) -> anyhow::Result<Workload> {
        self.workload_prefixed("b")
    }

    /// The same workload with its ids under another prefix (a run against
    /// a deployment that already holds the first one's).
    pub fn workload_prefixed(&self, prefix: &str) -> anyhow::Result<Workload> {
        let mut config = WorkloadConfig::small(42, prefix);
        config.accounts = self.accounts;
        config.hot_accounts = self.hot_accounts.min(self.accounts);
        config.hot_fraction = self.hot_fraction;
        Ok(Workload::new(config)?)
    }

    /// Every run's scenario and rate, in order.
    pub fn scenarios(&self) -> Vec<(Scenario, f64)> {
        vec![
            (Scenario::Balance, self.read_rate),
            (Scenario::Transfer, self.transfer_rate),
            (Scenario::Post, self.post_rate),
        ]
    }

    /// Seconds of load per variant and scenario run.
    pub fn run_seconds(&self) -> f64 {
        self.duration_s + self.warmup_s
    }
}

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
    pub breakdown: Option<crate::breakdown::Breakdown>,
}

/// CPU seconds per recorded answer, in µs (`None` without answers).
fn per_answer(cpu_s: f64, stats: &RunStats) -> Option<f64> {
    let answered: u64 = stats.outcomes.iter().map(|(_, n)| n).sum();
    (answered > 0).then(|| cpu_s * 1e6 / answered as f64)
}

/// CPU per request of the harness's own parts during a floor run.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HarnessCpu {
    /// The generator (every thread of this process but the echo's), µs.
    pub generator_us: f64,
    /// The echo server's thread, µs.
    pub echo_us: f64,
}

/// CPU seconds used so far by this process's threads: the echo server's
/// thread (named `echo`) and all the others, from each thread's
/// `schedstat` (nanoseconds on the CPU). `None` off Linux.
pub fn harness_cpu_seconds() -> Option<(f64, f64)> {
    let threads = crate::procfs::threads(crate::procfs::Proc::This)?;
    let (rest, echo) = split_cpu(threads.iter().map(|t| (t.name.as_str(), t.run_ns)));
    Some((rest as f64 / 1e9, echo as f64 / 1e9))
}

/// CPU nanoseconds used so far by this process's threads, summed by thread
/// name, in the order the names are first met. `None` off Linux.
pub fn cpu_by_thread_name() -> Option<Vec<(String, u64)>> {
    let threads = crate::procfs::threads(crate::procfs::Proc::This)?;
    Some(cpu_by_name(
        threads.iter().map(|t| (t.name.as_str(), t.run_ns)),
    ))
}

/// Sums the threads' CPU nanoseconds by name.
fn cpu_by_name<'a>(threads: impl IntoIterator<Item = (&'a str, u64)>) -> Vec<(String, u64)> {
    let mut by_name: Vec<(String, u64)> = Vec::new();
    for (name, ns) in threads {
        match by_name.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 += ns,
            None => by_name.push((name.to_owned(), ns)),
        }
    }
    by_name
}

/// Sums the threads' CPU nanoseconds into the rest and the echo thread's.
fn split_cpu<'a>(threads: impl IntoIterator<Item = (&'a str, u64)>) -> (u64, u64) {
    let by_name = cpu_by_name(threads);
    let echo = by_name
        .iter()
        .filter(|(n, _)| n == ECHO_THREAD)
        .map(|(_, ns)| ns)
        .sum();
    let rest = by_name
        .iter()
        .filter(|(n, _)| n != ECHO_THREAD)
        .map(|(_, ns)| ns)
        .sum();
    (rest, echo)
}

const ECHO_THREAD: &str = "echo";

fn transfer() -> Scenario {
    Scenario::Transfer
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

impl RunRecord {
    fn of(variant: &str, scenario: Scenario, repeat: u32, rate: f64, stats: &RunStats) -> Self {
        let h = &stats.latency;
        let q = |p: f64| {
            if h.is_empty() {
                0.0
            } else {
                us(h.value_at_quantile(p))
            }
        };
        let lag = &stats.send_lag;
        let lq = |p: f64| {
            if lag.is_empty() {
                0.0
            } else {
                us(lag.value_at_quantile(p))
            }
        };
        Self {
            variant: variant.to_owned(),
            scenario,
            repeat,
            rate,
            achieved_rate: stats.achieved_rate,
            saturated: stats.saturated,
            p50_us: q(0.5),
            p90_us: q(0.9),
            p99_us: q(0.99),
            p999_us: q(0.999),
            max_us: if h.is_empty() { 0.0 } else { us(h.max()) },
            send_lag_p50_us: lq(0.5),
            send_lag_p99_us: lq(0.99),
            outcomes: stats
                .outcomes
                .iter()
                .map(|(o, n)| (o.name().to_owned(), *n))
                .collect(),
            scheduled: stats.scheduled,
            unfinished: stats.unfinished,
            histogram: crate::report::encode_histogram(h),
            curve: false,
            harness_cpu: None,
            in_flight_limit: None,
            cpu_us_per_request: stats.system_cpu_s.and_then(|cpu| per_answer(cpu, stats)),
            cpu_us_by_process: stats
                .system_cpu_by_process
                .iter()
                .filter_map(|(name, cpu)| Some((name.clone(), per_answer(*cpu, stats)?)))
                .collect(),
            breakdown: None,
        }
    }
}

/// A prepared request: method, path, JSON body.
#[derive(Clone)]
pub(crate) struct Call {
    pub(crate) post: bool,
    pub(crate) path: String,
    pub(crate) body: Option<bytes::Bytes>,
}

/// Opens the workload's accounts and rooms on a variant (32 at a time).
pub async fn prepare(api: &contract::Api, workload: &Workload) -> anyhow::Result<()> {
    use futures::StreamExt;
    let mut opened = futures::stream::iter(workload.accounts().into_iter().map(
        |(id, opening)| async move { api.open(id.as_str(), opening.balance().minor_units()).await },
    ))
    .buffer_unordered(32);
    while let Some(result) = opened.next().await {
        result?;
    }
    for room in workload.rooms() {
        api.room(room.as_str()).await?;
    }
    Ok(())
}

fn calls(scenario: Scenario, workload: &mut Workload, n: u64) -> Vec<Call> {
    (0..n)
        .map(|_| match scenario {
            Scenario::Balance => Call {
                post: false,
                path: format!("/v1/accounts/{}", workload.next_balance()),
                body: None,
            },
            Scenario::Transfer => {
                let t = workload.next_transfer();
                Call {
                    post: true,
                    path: "/v1/transfers".into(),
                    body: Some(
                        serde_json::json!({
                            "transfer_id": t.transfer_id.as_str(),
                            "from": t.from.as_str(),
                            "to": t.to.as_str(),
                            "amount": t.amount.minor_units(),
                        })
                        .to_string()
                        .into(),
                    ),
                }
            }
            Scenario::Post => {
                let p = workload.next_post();
                Call {
                    post: true,
                    path: format!("/v1/rooms/{}/messages", p.room),
                    body: Some(
                        serde_json::json!({
                            "author": p.author.as_str(),
                            "text": p.text.as_str(),
                            "client_msg_id": p.client_msg_id.as_str(),
                        })
                        .to_string()
                        .into(),
                    ),
                }
            }
            Scenario::Floor => Call {
                post: false,
                path: "/echo".into(),
                body: None,
            },
        })
        .collect()
}

/// Sends one prepared request; its outcome once the whole answer is read.
pub(crate) fn send(
    http: &crate::client::Client,
    base: &str,
    call: &Call,
) -> impl Future<Output = Outcome> + Send + use<> {
    let answer = send_raw(http, base, call, None);
    async move {
        answer
            .await
            .map_or(Outcome::Error, |(status, _)| Outcome::of_status(status))
    }
}

/// What a run is aimed at: a variant (or the echo floor) by name, its
/// base URL, and the meter of its processes' CPU when the harness started
/// them.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The variant's name (`floor` for the echo endpoint).
    pub name: &'a str,
    /// `http://host:port`.
    pub base: &'a str,
    /// Reads its processes' CPU, for the CPU per request of each run.
    pub meter: Option<&'a CpuMeter>,
}

/// Runs one scenario at `rate` against `target`; blocks this thread.
pub fn run_one(
    runtime: &tokio::runtime::Handle,
    http: &crate::client::Client,
    plan: Plan,
    target: Target<'_>,
    scenario: Scenario,
    repeat: u32,
    workload: &mut Workload,
) -> RunRecord {
    let rate = plan.rate;
    let prepared = Arc::new(calls(scenario, workload, plan.total()));
    let (http, base) = (http.clone(), target.base.to_owned());
    let before = (scenario == Scenario::Floor)
        .then(harness_cpu_seconds)
        .flatten();
    let total = plan.total();
    let samples = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let kept = samples.clone();
    let stats = load::run_metered(runtime, plan, target.meter, move |i| {
        let call = &prepared[i as usize];
        // A share of the recorded requests ask for their timing.
        let timed = (!plan.in_warmup(i) && crate::breakdown::sampled(i, total))
            .then(|| (crate::breakdown::traceparent(i), kept.clone()));
        let answer = send_raw(&http, &base, call, timed);
        async move {
            answer
                .await
                .map_or(Outcome::Error, |(status, _)| Outcome::of_status(status))
        }
    });
    let mut record = RunRecord::of(target.name, scenario, repeat, rate, &stats);
    record.breakdown = crate::breakdown::of(&samples.lock());
    record.in_flight_limit = Some(plan.max_in_flight);
    // Warm-up requests ran too: divide by every request the run made.
    let made = (stats.latency.len() + plan.total().saturating_sub(stats.scheduled)).max(1) as f64;
    record.harness_cpu = before
        .zip(harness_cpu_seconds())
        .map(|((g0, e0), (g1, e1))| HarnessCpu {
            generator_us: (g1 - g0) * 1e6 / made,
            echo_us: (e1 - e0) * 1e6 / made,
        });
    record
}

/// Serves `GET /echo` on a runtime of its own: the floor of the harness
/// (client, loopback, HTTP server) with no system behind it.
pub fn start_echo() -> anyhow::Result<(String, tokio_util::sync::DropGuard)> {
    let (tx, rx) = std::sync::mpsc::channel();
    let stop = tokio_util::sync::CancellationToken::new();
    let stopped = stop.clone();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(ECHO_THREAD)
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::bind("127.0.0.1:0").await else {
                return;
            };
            let Ok(addr) = listener.local_addr() else {
                return;
            };
            let _ = tx.send(addr);
            let app = axum::Router::new().route("/echo", axum::routing::get(|| async { "ok" }));
            // As the systems' edges: Nagle off.
            use axum::serve::ListenerExt;
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stopped.cancelled_owned())
                .await;
        });
    });
    let addr = rx.recv_timeout(Duration::from_secs(10))?;
    Ok((format!("http://{addr}"), stop.drop_guard()))
}

/// After a variant's runs: money conserved and nothing left pending.
pub async fn check_invariants(
    api: &contract::Api,
    workload: &Workload,
) -> anyhow::Result<serde_json::Value> {
    let audit = api.settled_audit().await?;
    let expected = workload.opening_total().0;
    let accounts = u64::from(workload.config().accounts);
    let total = audit["total_balance"].as_i64().map(i128::from);
    anyhow::ensure!(
        total == Some(expected) && audit["accounts"] == accounts && audit["pending_transfers"] == 0,
        "INVARIANT VIOLATED: expected {accounts} accounts holding {expected} with nothing pending, audit says {audit}"
    );
    Ok(audit)
}

/// A fault injected under steady load, and what it did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultRecord {
    /// Variant.
    pub variant: String,
    /// The kind of fault (`crash`, `pause`, …), the same for both variants.
    #[serde(default)]
    pub kind: String,
    /// The load: transfers or posts.
    #[serde(default = "transfer")]
    pub scenario: Scenario,
    /// What was done.
    pub fault: String,
    /// Transfers per second during the run.
    pub rate: f64,
    /// Width of a timeline bucket, milliseconds.
    pub bucket_ms: u64,
    /// When the fault was injected, seconds from the start of the run.
    pub injected_at_s: f64,
    /// From the fault to the first failed answer, seconds (none: no
    /// client saw a failure).
    pub first_failure_s: Option<f64>,
    /// From the fault to the end of the last bucket with a failure or a
    /// latency over ten times the pre-fault norm, seconds (0: no visible
    /// impact).
    pub impact_s: f64,
    /// Answers that failed (429, 503, 202, errors) over the whole run.
    pub failed: u64,
    /// Answers that succeeded.
    pub ok: u64,
    /// The timeline.
    pub timeline: Vec<crate::load::Bucket>,
    /// The audit after the run (money conserved, nothing pending).
    pub audit: serde_json::Value,
    /// Every answer by kind (`ok`, `unavailable_503`, `error`, ...), so a
    /// failure can be read as shed, refused for a breaker or broken; not
    /// recorded before 2026-11-27.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outcomes: Vec<(String, u64)>,
    /// Requests still unanswered when the drain ended.
    #[serde(default)]
    pub unfinished: u64,
}

impl FaultRecord {
    /// Reads the impact off a run's timeline.
    pub fn of(
        variant: &str,
        fault: &str,
        plan: &Plan,
        injected_at: Duration,
        stats: &RunStats,
    ) -> Self {
        let width = plan.timeline.unwrap_or(Duration::from_millis(100));
        let mut record = Self {
            variant: variant.to_owned(),
            kind: String::new(),
            scenario: Scenario::Transfer,
            fault: fault.to_owned(),
            rate: plan.rate,
            bucket_ms: width.as_millis() as u64,
            injected_at_s: injected_at.as_secs_f64(),
            first_failure_s: None,
            impact_s: 0.0,
            failed: stats.timeline.iter().map(|b| b.failed).sum(),
            ok: stats.timeline.iter().map(|b| b.ok).sum(),
            timeline: stats.timeline.clone(),
            audit: serde_json::Value::Null,
            outcomes: stats
                .outcomes
                .iter()
                .map(|(o, n)| (o.name().to_owned(), *n))
                .collect(),
            unfinished: stats.unfinished,
        };
        let at = record.fault_bucket();
        let bucket_s = width.as_secs_f64();
        record.first_failure_s = record
            .timeline
            .iter()
            .enumerate()
            .skip(at)
            .find(|(_, b)| b.failed > 0)
            .map(|(i, _)| ((i - at) as f64 + 1.0) * bucket_s);
        record.impact_s = record.recovery_s();
        record
    }

    /// The failures by kind, e.g. `unavailable_503 500, error 17`
    /// (empty when none failed or the kinds were not recorded).
    pub fn failure_kinds(&self) -> String {
        let mut kinds: Vec<String> = self
            .outcomes
            .iter()
            .filter(|(o, n)| *n > 0 && o != "ok" && o != "refused_409")
            .map(|(o, n)| format!("{o} {n}"))
            .collect();
        if self.unfinished > 0 && !self.outcomes.is_empty() {
            kinds.push(format!("unanswered {}", self.unfinished));
        }
        kinds.join(", ")
    }

    fn fault_bucket(&self) -> usize {
        (self.injected_at_s * 1000.0 / self.bucket_ms.max(1) as f64) as usize
    }

    /// From the fault to the end of the hurt stretch it caused: the last
    /// bucket with a failed answer or a worst latency over ten times the
    /// pre-fault norm (the median of the worst latencies in the buckets
    /// before the fault) that comes before a full second of healthy
    /// buckets. A blip of the shared machine seconds later is not counted;
    /// 0 when the fault hurt no bucket.
    pub fn recovery_s(&self) -> f64 {
        let at = self.fault_bucket();
        let mut sorted: Vec<u64> = self
            .timeline
            .iter()
            .take(at)
            .skip(at / 2)
            .map(|b| b.max_latency_ns)
            .filter(|v| *v > 0)
            .collect();
        sorted.sort_unstable();
        let norm = sorted.get(sorted.len() / 2).copied().unwrap_or(1_000_000);
        let hurt = |b: &crate::load::Bucket| {
            b.failed > 0 || b.max_latency_ns > norm.saturating_mul(10) || b.ok + b.failed == 0
        };
        let healthy_second = (1000 / self.bucket_ms.max(1)).max(1) as usize;
        let (mut last_hurt, mut healthy) = (None, 0);
        for (i, b) in self.timeline.iter().enumerate().skip(at) {
            if hurt(b) {
                last_hurt = Some(i);
                healthy = 0;
            } else {
                healthy += 1;
                if healthy >= healthy_second {
                    break;
                }
            }
        }
        last_hurt.map_or(0.0, |i| {
            (i - at + 1) as f64 * self.bucket_ms as f64 / 1000.0
        })
    }
}

/// An answer that acknowledged something: the call's index, its status
/// and its body (200/201, and 409 for a transfer: rejected for good).
pub type Ack = (u64, u16, serde_json::Value);

/// Sends one prepared request and keeps the answer if it acknowledged
/// something, so the invariants can check it was not lost.
fn send_keeping_acks(
    http: &crate::client::Client,
    base: &str,
    call: &Call,
    i: u64,
    acks: Arc<parking_lot::Mutex<Vec<Ack>>>,
) -> impl Future<Output = Outcome> + Send + use<> {
    let answer = send_raw(http, base, call, None);
    async move {
        match answer.await {
            Some((status, body)) => {
                if matches!(status, 200 | 201 | 409) {
                    let value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                    acks.lock().push((i, status, value));
                }
                Outcome::of_status(status)
            }
            None => Outcome::Error,
        }
    }
}

/// A sample's `traceparent` and where its timing goes.
type Timed = (
    String,
    Arc<parking_lot::Mutex<Vec<crate::breakdown::Sample>>>,
);

/// Sends `call`; when `timed`, asks for its timing and keeps the sample
/// (a correct answer with a `Server-Timing` tree) with its time from
/// sending to the whole answer.
fn send_raw(
    http: &crate::client::Client,
    base: &str,
    call: &Call,
    timed: Option<Timed>,
) -> impl Future<Output = Option<(u16, bytes::Bytes)>> + Send + use<> {
    let (http, base, post, path, body) = (
        http.clone(),
        base.to_owned(),
        call.post,
        call.path.clone(),
        call.body.clone(),
    );
    async move {
        let Some((traceparent, samples)) = timed else {
            return http.request(&base, post, &path, body).await;
        };
        let sent = std::time::Instant::now();
        let (status, answer, timing) = http
            .request_timed(&base, post, &path, body, &traceparent)
            .await?;
        let latency = sent.elapsed();
        if let Some(timing) =
            timing.filter(|_| matches!(Outcome::of_status(status), Outcome::Ok | Outcome::Refused))
        {
            samples.lock().push(crate::breakdown::Sample {
                latency,
                spans: edge::timing::decode(&timing),
            });
        }
        Some((status, answer))
    }
}

/// A fault run's load and what its clients were told.
pub struct FaultRun {
    /// The timeline and its reading.
    pub record: FaultRecord,
    calls: Arc<Vec<Call>>,
    acks: Vec<Ack>,
    scenario: Scenario,
}

/// Runs `scenario` at `rate` for `seconds` against `base`, calling
/// `inject` (on another thread) `at` into the run; blocks this thread.
#[allow(clippy::too_many_arguments)]
pub fn run_fault(
    runtime: &tokio::runtime::Handle,
    http: &crate::client::Client,
    variant: &str,
    base: &str,
    fault: &str,
    scenario: Scenario,
    rate: f64,
    seconds: f64,
    at: Duration,
    workload: &mut Workload,
    inject: impl FnOnce() + Send + 'static,
) -> FaultRun {
    let plan = Plan {
        rate,
        duration: Duration::from_secs_f64(seconds),
        warmup: Duration::ZERO,
        max_in_flight: 1024,
        drain: Duration::from_secs(5),
        timeline: Some(Duration::from_millis(100)),
    };
    let prepared = Arc::new(calls(scenario, workload, plan.total()));
    let acks = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let (http, base, calls, kept) = (
        http.clone(),
        base.to_owned(),
        prepared.clone(),
        acks.clone(),
    );
    let injector = std::thread::spawn(move || {
        std::thread::sleep(at);
        inject();
    });
    let stats = load::run(runtime, plan, move |i| {
        send_keeping_acks(&http, &base, &calls[i as usize], i, kept.clone())
    });
    let _ = injector.join();
    let mut record = FaultRecord::of(variant, fault, &plan, at, &stats);
    record.scenario = scenario;
    let acks = std::mem::take(&mut *acks.lock());
    FaultRun {
        record,
        calls: prepared,
        acks,
        scenario,
    }
}

impl FaultRun {
    /// The invariants once the fault is over: money conserved and nothing
    /// pending; every acknowledged transfer still has its outcome; every
    /// acknowledged post is in its room's history at its seq, and every
    /// history is gap-free. Fills in the record's audit.
    pub async fn check(
        mut self,
        api: &contract::Api,
        workload: &Workload,
    ) -> anyhow::Result<FaultRecord> {
        let mut audit = check_invariants(api, workload).await?;
        let checked = match self.scenario {
            Scenario::Transfer => self.check_transfers(api).await?,
            Scenario::Post => self.check_posts(api, workload).await?,
            _ => 0,
        };
        audit["acknowledged_checked"] = checked.into();
        self.record.audit = audit;
        Ok(self.record)
    }

    async fn check_transfers(&self, api: &contract::Api) -> anyhow::Result<u64> {
        use futures::StreamExt;
        let expected: Vec<(String, &'static str)> = self
            .acks
            .iter()
            .filter_map(|(i, status, _)| {
                let body: serde_json::Value =
                    serde_json::from_slice(self.calls.get(*i as usize)?.body.as_deref()?).ok()?;
                let id = body["transfer_id"].as_str()?.to_owned();
                Some((
                    id,
                    if *status == 409 {
                        "rejected"
                    } else {
                        "committed"
                    },
                ))
            })
            .collect();
        let mut lookups = futures::stream::iter(expected.iter().map(|(id, want)| async move {
            // A system still recovering may shed the lookups (429/503):
            // ask again for up to 30 s; only an answer counts.
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            let answer = loop {
                let answer = api.get(&format!("/v1/transfers/{id}")).await?;
                if !matches!(answer.status.as_u16(), 429 | 503)
                    || std::time::Instant::now() > deadline
                {
                    break answer;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            let status = answer.expect_status(200)?["status"].clone();
            anyhow::ensure!(
                status == *want,
                "INVARIANT VIOLATED: transfer {id} was acknowledged {want}, now {status}"
            );
            anyhow::Ok(())
        }))
        .buffer_unordered(16);
        while let Some(result) = lookups.next().await {
            result?;
        }
        Ok(expected.len() as u64)
    }

    async fn check_posts(&self, api: &contract::Api, workload: &Workload) -> anyhow::Result<u64> {
        let mut acked: Vec<(String, String, String, String, u64)> = Vec::new();
        for (i, status, answer) in &self.acks {
            let Some(call) = self.calls.get(*i as usize) else {
                continue;
            };
            let body: serde_json::Value =
                serde_json::from_slice(call.body.as_deref().unwrap_or(b"null"))?;
            let room = call
                .path
                .trim_start_matches("/v1/rooms/")
                .trim_end_matches("/messages")
                .to_owned();
            let seq = answer["seq"].as_u64();
            anyhow::ensure!(
                *status != 409 && seq.is_some(),
                "INVARIANT VIOLATED: post {i} answered {status} {answer}"
            );
            acked.push((
                room,
                body["author"].as_str().unwrap_or_default().to_owned(),
                body["client_msg_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                body["text"].as_str().unwrap_or_default().to_owned(),
                seq.unwrap_or(0),
            ));
        }
        for room in workload.rooms() {
            let history = api.seen_history(room.as_str()).await?;
            let here = acked
                .iter()
                .filter(|p| p.0 == room.as_str())
                .map(|(_, a, k, t, s)| (a.as_str(), k.as_str(), t.as_str(), *s));
            check_acked_posts(room.as_str(), &history, here)
                .map_err(|v| anyhow::anyhow!("INVARIANT VIOLATED: {v}"))?;
        }
        Ok(acked.len() as u64)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// A thread named like the echo server's burns 50 ms of its own CPU;
    /// the accounting puts it on the echo's side, not the generator's.
    #[test]
    fn harness_cpu_is_split_between_the_echo_thread_and_the_rest() {
        let (_, e0) = harness_cpu_seconds().expect("schedstat");
        let (burnt_tx, burnt_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let burner = std::thread::Builder::new()
            .name(ECHO_THREAD.into())
            .spawn(move || {
                let goal = rustix::time::Timespec {
                    tv_sec: 0,
                    tv_nsec: 50_000_000,
                };
                let mut x = 0u64;
                while rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime) < goal {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
                let _ = burnt_tx.send(());
                // Alive until measured: a thread is counted while it lives.
                let _ = done_rx.recv();
            })
            .expect("spawn");
        burnt_rx.recv().expect("burnt");
        let (_, e1) = harness_cpu_seconds().expect("schedstat");
        drop(done_tx);
        let _ = burner.join();
        // At least what the echo thread burnt. (Not an equality, nor a
        // check of the rest: tests in parallel start and end threads of
        // their own, named echo or not, between the two readings.)
        assert!(e1 - e0 >= 0.05, "echo {:.3} s", e1 - e0);
    }

    #[test]
    fn cpu_is_summed_by_thread_name() {
        let threads = [
            ("echo", 100),
            ("tokio-runtime-w", 50),
            ("echo", 20),
            ("bench", 7),
        ];
        assert_eq!(split_cpu(threads), (57, 120));
    }
}
