//! The profile of a run: how long, how hard, how often (stored in
//! `raw.json` and `env.json`).

use serde::{Deserialize, Serialize};
use shared_domain::workload::{Workload, WorkloadConfig};

use super::Scenario;

/// How long and how hard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Step the placed microservices (`microservices@<preset>`) up the
    /// transfer curve too; without it they run the fixed-rate transfers
    /// only.
    #[serde(default)]
    pub placements_curve: bool,
    /// Step the monolith, the microlith and the split microservices up
    /// the transfer curve a second time, started afresh on durable
    /// storage (local processes, when the rest ran in memory).
    #[serde(default)]
    pub durable_curve: bool,
    /// Seconds each variant runs durable at half its durable knee, after
    /// the durable curve (0: no soak).
    #[serde(default)]
    pub soak_s: f64,
    /// Seconds per soak sample (RSS, store size and latency read once
    /// each).
    #[serde(default)]
    pub soak_sample_s: f64,
    /// The overload part's surge: seconds at twice each variant's knee
    /// (0: no overload part).
    #[serde(default)]
    pub overload_s: f64,
    /// Seconds at half the knee before the surge and after it.
    #[serde(default)]
    pub overload_settle_s: f64,
    /// The slow-clients part: seconds of ordinary transfers alone, then as
    /// many beside slow clients (0: no slow-clients part).
    #[serde(default)]
    pub slow_clients_s: f64,
    /// Slow clients of each kind (the WebSocket non-readers are a quarter
    /// as many).
    #[serde(default)]
    pub slow_clients: usize,
    /// Seeded chaos rounds per variant (0: no chaos part).
    #[serde(default)]
    pub chaos_rounds: u32,
    /// Seconds of load per chaos round.
    #[serde(default)]
    pub chaos_seconds: f64,
    /// Faults per chaos round.
    #[serde(default)]
    pub chaos_faults: usize,
    /// The first round's seed (each next round's is one more; the same
    /// for every variant).
    #[serde(default)]
    pub chaos_seed: u64,
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
    /// The README default: every part, shorter (about 11 minutes here).
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
            placements_curve: false,
            durable_curve: false,
            soak_s: 0.0,
            soak_sample_s: 10.0,
            overload_s: 15.0,
            overload_settle_s: 3.0,
            // Past the edges' 10 s for a request head, so every kind is
            // cut off at least once.
            slow_clients_s: 12.0,
            slow_clients: 200,
            chaos_rounds: 2,
            chaos_seconds: 10.0,
            chaos_faults: 3,
            chaos_seed: 1,
        }
    }

    /// Longer runs, more repeats, higher rates.
    pub fn full() -> Self {
        Self {
            name: "full".into(),
            duration_s: 15.0,
            warmup_s: 3.0,
            // Five repeats: their range is a 94 % confidence interval for
            // the median (see the report's "At a glance").
            repeats: 5,
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
            placements_curve: true,
            durable_curve: true,
            soak_s: 600.0,
            overload_s: 60.0,
            overload_settle_s: 10.0,
            slow_clients_s: 30.0,
            slow_clients: 400,
            chaos_rounds: 6,
            chaos_seconds: 20.0,
            chaos_faults: 5,
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
            // What `--full` adds for the placements and durable storage,
            // tried small.
            placements_curve: true,
            durable_curve: true,
            soak_s: 2.0,
            soak_sample_s: 0.5,
            overload_s: 1.0,
            overload_settle_s: 1.0,
            slow_clients_s: 1.0,
            slow_clients: 8,
            chaos_rounds: 2,
            chaos_seconds: 3.0,
            chaos_faults: 2,
            ..Self::quick()
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
